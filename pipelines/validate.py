"""Validation: turn a raw table into a clean, regular frame, or say exactly what is wrong.

The output frame follows the project's data contract: columns `series_id`, `segment`,
`timestamp` (UTC), then the numeric value columns; sorted by (`series_id`, `timestamp`); one
regular step per series; no missing values. Problems that cannot be repaired safely raise
`DataValidationError`, whose message names the source, the column and the first offending rows.
Repairs that are safe (identical duplicate rows, unsorted rows, sentinel values, short gaps) are
made by an explicit policy and counted in a `ValidationReport`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

SERIES_COLUMN = "series_id"
SEGMENT_COLUMN = "segment"
TIMESTAMP_COLUMN = "timestamp"
TRADING_DAYS = "trading-days"
"""Frequency whose grid is the sorted union of the timestamps observed in the data set.

For exchange data the calendar is the set of trading days; deriving it from the data avoids a
holiday calendar, and a day one ticker lacks but others have is a gap of that ticker.
"""

FillMethod = Literal["time", "ffill"]
DuplicatePolicy = Literal["error", "first", "last", "mean"]
MAX_LISTED = 5
MAX_GAPS_LISTED = 20


class DataValidationError(ValueError):
    """Input data or a parameter that the pipeline cannot use; the message says where and why."""


@dataclass(frozen=True)
class SourceTable:
    """A table as read from its source, before any validation.

    Attributes:
        frame: the rows as read; the index is the data-row number, starting at 0.
        origin: where it came from (a path or a description), used in every message.
        first_data_line: file line of data row 0 for text files (so messages can name lines),
            or None where lines mean nothing (Parquet, API responses).
        encoding: the text encoding that decoded the file, where there was one.
        notes: facts worth reporting, e.g. a fallback encoding or blank lines skipped.
        sha256: checksum of the (uncompressed) file content, where there was a file.
    """

    frame: pd.DataFrame
    origin: str
    first_data_line: int | None = None
    encoding: str | None = None
    notes: tuple[str, ...] = ()
    sha256: str | None = None

    def describe_rows(self, rows: Sequence[int] | np.ndarray, total: int | None = None) -> str:
        """Names data rows the way a user finds them: file lines for text, row numbers else."""
        rows = [int(row) for row in list(rows)[:MAX_LISTED]]
        total = len(rows) if total is None else total
        if self.first_data_line is not None:
            label = "line" if len(rows) == 1 else "lines"
            listed = ", ".join(str(row + self.first_data_line) for row in rows)
        else:
            label = "row" if len(rows) == 1 else "rows"
            listed = ", ".join(str(row) for row in rows)
        more = f" (first {len(rows)} of {total})" if total > len(rows) else ""
        return f"{label} {listed}{more}"


@dataclass(frozen=True)
class TableSchema:
    """Which columns mean what in a source table.

    Attributes:
        timestamp_column: the column holding timestamps; None when `timestamp_parts` is used.
        timestamp_parts: for tables that spread the time over columns, a mapping from
            `year`/`month`/`day`/`hour`/`minute` to column names.
        timestamp_format: a `strftime` format, when the text is not ISO 8601.
        timezone: the zone of naive timestamps; all output is converted to UTC.
        series_column: the column naming each series (e.g. a ticker); None for one series.
        value_columns: numeric columns to keep; None keeps every numeric column.
        targets: the columns to forecast; they are always kept.
        frequency: a pandas offset alias ('10min', 'D', 'B', 'MS'), `trading-days`, or None to
            infer it from the data.
        default_series_id: the id given to a table that has no series column.
    """

    timestamp_column: str | None
    targets: tuple[str, ...]
    timestamp_parts: dict[str, str] | None = None
    timestamp_format: str | None = None
    timezone: str = "UTC"
    series_column: str | None = None
    value_columns: tuple[str, ...] | None = None
    frequency: str | None = None
    default_series_id: str = "series"


@dataclass(frozen=True)
class CleaningPolicy:
    """How repairs are made; every repair is counted in the report.

    Attributes:
        sentinels: values that mean "missing" (the Jena station writes -9999).
        max_gap: the longest run of missing steps filled; longer runs split the series.
        fill_method: `time` interpolates linearly in time between the neighbours; `ffill`
            repeats the last value (for prices, where interpolating would use a later price).
        duplicates: what to do with rows that share a timestamp but differ: `error`, keep the
            `first` or `last`, or take their `mean`. Identical rows are always dropped.
    """

    sentinels: tuple[float, ...] = ()
    max_gap: int = 0
    fill_method: FillMethod = "time"
    duplicates: DuplicatePolicy = "error"

    def __post_init__(self) -> None:
        if self.max_gap < 0:
            raise DataValidationError(
                f"parameter max_gap: expected an integer >= 0, got {self.max_gap}"
            )
        if self.fill_method not in ("time", "ffill"):
            raise DataValidationError(
                f"parameter fill_method: expected 'time' or 'ffill', got {self.fill_method!r}"
            )
        if self.duplicates not in ("error", "first", "last", "mean"):
            raise DataValidationError(
                "parameter duplicates: expected one of 'error', 'first', 'last', 'mean', "
                f"got {self.duplicates!r}"
            )


@dataclass
class ValidationReport:
    """What validation found and repaired, in numbers a summary can print."""

    origin: str
    rows_read: int = 0
    series_read: int = 0
    frequency: str = ""
    rows_unsorted: int = 0
    blank_rows_dropped: int = 0
    duplicate_rows_dropped: int = 0
    conflicting_duplicates_resolved: int = 0
    sentinel_values: dict[str, int] = field(default_factory=dict)
    missing_timestamps: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    gap_counts: dict[str, int] = field(default_factory=dict)
    values_filled: dict[str, int] = field(default_factory=dict)
    fills_before_part_start: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    dropped_series: list[dict[str, Any]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count_dropped(self, reason: str, rows: int) -> None:
        if rows:
            self.rows_dropped[reason] = self.rows_dropped.get(reason, 0) + int(rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "rows_read": self.rows_read,
            "series_read": self.series_read,
            "frequency": self.frequency,
            "rows_unsorted": self.rows_unsorted,
            "blank_rows_dropped": self.blank_rows_dropped,
            "duplicate_rows_dropped": self.duplicate_rows_dropped,
            "conflicting_duplicates_resolved": self.conflicting_duplicates_resolved,
            "sentinel_values": dict(self.sentinel_values),
            "missing_timestamps": self.missing_timestamps,
            "gaps": {
                "count": sum(self.gap_counts.values()),
                **{
                    action: self.gap_counts.get(action, 0)
                    for action in ("filled", "split", "trimmed")
                },
                "first": list(self.gaps),
            },
            "values_filled": dict(self.values_filled),
            "fills_before_part_start": self.fills_before_part_start,
            "rows_dropped": dict(self.rows_dropped),
            "dropped_series": list(self.dropped_series),
            "ignored_columns": list(self.ignored_columns),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ValidatedFrame:
    frame: pd.DataFrame
    report: ValidationReport
    value_columns: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Parameters


def epoch_nanoseconds(timestamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC nanoseconds since the epoch as int64 (tz-aware `to_numpy()` would give objects)."""
    return np.asarray(timestamps.to_numpy(dtype="datetime64[ns]")).view("int64")


def require_positive(name: str, value: int) -> int:
    """Rejects a width, horizon, stride or batch size that is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise DataValidationError(f"parameter {name}: expected a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Columns


def closest_name_hint(name: str, candidates: Sequence[str]) -> str:
    """A '; did you mean ...?' hint for a misspelled name, or the list of valid names.

    Case-insensitive equality wins, then a name contained in a candidate ('date' in
    'Date Time'), then the closest spelling.
    """
    lowered = {candidate.lower(): candidate for candidate in candidates}
    key = name.lower().strip()
    match = lowered.get(key)
    if match is None and key:
        match = next((c for c in candidates if key in c.lower() or c.lower() in key), None)
    if match is None:
        close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.5)
        match = lowered[close[0]] if close else None
    if match is not None:
        return f"; did you mean {match!r}?"
    return f"; available: {', '.join(repr(c) for c in candidates)}"


def _require_columns(table: SourceTable, columns: Sequence[str], role: str) -> None:
    available = [str(column) for column in table.frame.columns]
    for column in columns:
        if column not in table.frame.columns:
            raise DataValidationError(
                f"{table.origin}: {role} column {column!r} not found"
                f"{closest_name_hint(column, available)}"
            )


def _resolve_value_columns(
    table: SourceTable, schema: TableSchema
) -> tuple[tuple[str, ...], list[str]]:
    """Chooses the numeric columns to keep; named ones must exist, others must look numeric."""
    reserved = {schema.timestamp_column, schema.series_column}
    reserved.update((schema.timestamp_parts or {}).values())
    clash = [c for c in (*(schema.value_columns or ()), *schema.targets) if c in reserved]
    if clash:
        raise DataValidationError(
            f"{table.origin}: column {clash[0]!r} is the timestamp or series column; it cannot "
            "also be a target or value column"
        )
    if schema.value_columns is not None:
        chosen = list(dict.fromkeys([*schema.value_columns, *schema.targets]))
        _require_columns(table, chosen, "value")
        return tuple(chosen), []
    _require_columns(table, schema.targets, "target")
    chosen, ignored = [], []
    for column in table.frame.columns:
        if column in reserved:
            continue
        if column in schema.targets or _looks_numeric(table.frame[column]):
            chosen.append(column)
        else:
            ignored.append(str(column))
    return tuple(chosen), ignored


def _looks_numeric(values: pd.Series) -> bool:
    """True when the column is numeric, or text of which at least one value parses as a number.

    A mostly numeric column with stray text is meant to be numeric and is reported row by row
    later; a column in which nothing parses (a category, a comment) is simply not a value column.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().any())


# --------------------------------------------------------------------------------------------
# Timestamps


def time_column_label(schema: TableSchema) -> str:
    """The user's name for the time: its column, or its part columns joined by '/'."""
    if schema.timestamp_parts:
        return "/".join(schema.timestamp_parts.values())
    return str(schema.timestamp_column)


def _parse_timestamps(table: SourceTable, schema: TableSchema) -> pd.Series:
    """Parses the time column(s) into UTC timestamps; names the rows that do not parse."""
    frame = table.frame
    time_label = time_column_label(schema)
    if schema.timestamp_parts:
        parts = {unit: frame[column] for unit, column in schema.timestamp_parts.items()}
        column_label = time_label
        numeric_parts = {
            unit: pd.to_numeric(values, errors="coerce") for unit, values in parts.items()
        }
        bad = np.zeros(len(frame), dtype=bool)
        for values in numeric_parts.values():
            bad |= values.isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            raise DataValidationError(
                f"{table.origin}: timestamp columns {column_label}: missing or non-numeric "
                f"parts at "
                f"{table.describe_rows(frame.index[rows], len(rows))}"
            )
        parsed = pd.to_datetime(pd.DataFrame(numeric_parts), errors="coerce")
        unparseable = parsed.isna().to_numpy()
        if unparseable.any():
            rows = np.flatnonzero(unparseable)
            raise DataValidationError(
                f"{table.origin}: timestamp columns {column_label}: impossible dates at "
                f"{table.describe_rows(frame.index[rows], len(rows))}"
            )
        return _to_utc(parsed, schema.timezone, table, time_label)

    column = schema.timestamp_column
    assert column is not None
    raw = frame[column]
    missing = raw.isna().to_numpy(copy=True)
    if pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw):
        missing |= raw.astype("string").str.strip().eq("").fillna(True).to_numpy(dtype=bool)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise DataValidationError(
            f"{table.origin}: column {column!r}: missing timestamp at "
            f"{table.describe_rows(frame.index[rows], len(rows))}"
        )
    if pd.api.types.is_datetime64_any_dtype(raw):
        return _to_utc(pd.Series(raw), schema.timezone, table, time_label)
    if pd.api.types.is_numeric_dtype(raw):
        raise DataValidationError(
            f"{table.origin}: column {column!r}: expected date/time text, got numbers "
            f"(first value {raw.iloc[0]!r}); is this the right timestamp column?"
        )
    text = raw.astype(str).str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if has_offset.any() and not has_offset.all():
        naive_rows = np.flatnonzero(~has_offset.to_numpy())
        aware_rows = np.flatnonzero(has_offset.to_numpy())
        raise DataValidationError(
            f"{table.origin}: column {column!r}: mixed time zones: timestamps with a UTC offset "
            f"(e.g. {table.describe_rows(frame.index[aware_rows[:1]])}: "
            f"{text.iloc[aware_rows[0]]!r}) "
            f"and without one at {table.describe_rows(frame.index[naive_rows], len(naive_rows))} "
            f"(e.g. {text.iloc[naive_rows[0]]!r}); give every timestamp an offset or none"
        )
    fmt = schema.timestamp_format or ("ISO8601" if has_offset.any() else None)
    try:
        if has_offset.any():
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        else:
            parsed = pd.to_datetime(text, format=fmt or "mixed", errors="coerce")
    except (ValueError, TypeError) as error:
        raise DataValidationError(f"{table.origin}: column {column!r}: {error}") from error
    unparseable = parsed.isna().to_numpy()
    if unparseable.any():
        rows = np.flatnonzero(unparseable)
        examples = ", ".join(repr(value) for value in text.iloc[rows[:3]])
        expected = (
            f" (expected format {schema.timestamp_format!r})" if schema.timestamp_format else ""
        )
        raise DataValidationError(
            f"{table.origin}: column {column!r}: unparseable timestamp at "
            f"{table.describe_rows(frame.index[rows], len(rows))}: {examples}{expected}"
        )
    return _to_utc(parsed, schema.timezone, table, time_label)


def _to_utc(parsed: pd.Series, timezone: str, table: SourceTable, label: str) -> pd.Series:
    parsed = pd.Series(pd.DatetimeIndex(parsed), index=parsed.index)
    if parsed.dt.tz is None:
        try:
            localised = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        except Exception as error:  # unknown zone names raise several types
            raise DataValidationError(f"parameter timezone: {error}") from error
        # Clock changes make some local times ambiguous (repeated) or non-existent (skipped).
        lost = localised.isna().to_numpy() & parsed.notna().to_numpy()
        if lost.any():
            rows = np.flatnonzero(lost)
            raise DataValidationError(
                f"{table.origin}: column {label!r}: local time {parsed.iloc[rows[0]]} does not "
                f"exist or is ambiguous in time zone {timezone!r} (a clock change) at "
                f"{table.describe_rows(table.frame.index[rows], len(rows))}; write timestamps "
                "with a UTC offset or in UTC"
            )
        parsed = localised
    return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


# --------------------------------------------------------------------------------------------
# Values


def _numeric_values(
    table: SourceTable, columns: Sequence[str], policy: CleaningPolicy, report: ValidationReport
) -> pd.DataFrame:
    """Converts value columns to float64, turning sentinels into missing; rejects text and inf."""
    frame = table.frame
    values: dict[str, np.ndarray] = {}
    for column in columns:
        raw = frame[column]
        if pd.api.types.is_bool_dtype(raw):
            converted = raw.astype("float64")
        else:
            converted = pd.to_numeric(raw, errors="coerce").astype("float64")
        not_numeric = converted.isna().to_numpy() & raw.notna().to_numpy()
        if not_numeric.any():
            rows = np.flatnonzero(not_numeric)
            examples = ", ".join(repr(str(value)) for value in raw.iloc[rows[:3]])
            raise DataValidationError(
                f"{table.origin}: column {column!r}: non-numeric value at "
                f"{table.describe_rows(frame.index[rows], len(rows))}: {examples}"
            )
        array = converted.to_numpy(dtype="float64", copy=True)
        infinite = np.isinf(array)
        if infinite.any():
            rows = np.flatnonzero(infinite)
            raise DataValidationError(
                f"{table.origin}: column {column!r}: infinite value at "
                f"{table.describe_rows(frame.index[rows], len(rows))}"
            )
        if policy.sentinels:
            is_sentinel = np.isin(array, np.asarray(policy.sentinels, dtype="float64"))
            if is_sentinel.any():
                report.sentinel_values[str(column)] = int(is_sentinel.sum())
                array[is_sentinel] = np.nan
        if np.isnan(array).all():
            sentinel_note = " after sentinel values were removed" if policy.sentinels else ""
            raise DataValidationError(
                f"{table.origin}: column {column!r}: every value is missing{sentinel_note} "
                f"({table.describe_rows(frame.index[:MAX_LISTED], len(frame))})"
            )
        values[str(column)] = array
    return pd.DataFrame(values, index=frame.index)


# --------------------------------------------------------------------------------------------
# Order and duplicates


def _series_ids(table: SourceTable, schema: TableSchema) -> pd.Series:
    if schema.series_column is None:
        return pd.Series(schema.default_series_id, index=table.frame.index, dtype="string")
    ids = table.frame[schema.series_column]
    missing = ids.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise DataValidationError(
            f"{table.origin}: series column {schema.series_column!r}: missing series id at "
            f"{table.describe_rows(table.frame.index[rows], len(rows))}"
        )
    return ids.astype("string").str.strip()


def _sort_rows(frame: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Sorts by (series, time), stable, counting the rows that were out of order.

    A row is out of order when it is earlier than the row before it in the same series, or
    when it starts another block of a series seen before (rows of series interleaved). The
    order of whole series in a file means nothing and is not counted.
    """
    series_codes = pd.factorize(frame[SERIES_COLUMN], sort=True)[0]
    times = epoch_nanoseconds(frame[TIMESTAMP_COLUMN])
    same_series = series_codes[1:] == series_codes[:-1]
    earlier = same_series & (times[1:] < times[:-1])
    block_codes = series_codes[np.r_[True, ~same_series]]
    interleaved = len(block_codes) - len(np.unique(block_codes))
    report.rows_unsorted = int(earlier.sum()) + interleaved
    sorted_already = not earlier.any() and np.all(np.diff(series_codes) >= 0)
    if sorted_already:
        return frame
    order = np.lexsort((times, series_codes))
    return frame.iloc[order]


def _resolve_duplicates(
    frame: pd.DataFrame,
    value_columns: Sequence[str],
    table: SourceTable,
    policy: CleaningPolicy,
    report: ValidationReport,
) -> pd.DataFrame:
    keys = [SERIES_COLUMN, TIMESTAMP_COLUMN]
    identical = frame.duplicated([*keys, *value_columns], keep="first")
    report.duplicate_rows_dropped = int(identical.sum())
    report.count_dropped("duplicate_identical", report.duplicate_rows_dropped)
    frame = frame[~identical.to_numpy()]
    conflicting = frame.duplicated(keys, keep=False)
    if not conflicting.any():
        return frame
    rows = frame.index[conflicting.to_numpy()]
    if policy.duplicates == "error":
        first = frame.loc[rows[0]]
        clash = frame.loc[rows][
            (frame.loc[rows, SERIES_COLUMN] == first[SERIES_COLUMN])
            & (frame.loc[rows, TIMESTAMP_COLUMN] == first[TIMESTAMP_COLUMN])
        ]
        differing = [column for column in value_columns if clash[column].nunique(dropna=False) > 1]
        raise DataValidationError(
            f"{table.origin}: column {differing[0]!r}: conflicting values for the same timestamp "
            f"{first[TIMESTAMP_COLUMN]} (series {first[SERIES_COLUMN]!r}) at "
            f"{table.describe_rows(clash.index, len(clash))}; {len(rows)} rows conflict in all. "
            "Choose a duplicates policy (first, last or mean) to resolve them"
        )
    before = len(frame)
    if policy.duplicates == "mean":
        # groupby(sort=False) keeps first-appearance order, the order of drop_duplicates' index.
        first_rows = frame.drop_duplicates(keys, keep="first").index
        frame = frame.groupby(keys, sort=False, as_index=False)[list(value_columns)].mean()
        frame.index = first_rows
    else:
        frame = frame[~frame.duplicated(keys, keep=policy.duplicates).to_numpy()]
    report.conflicting_duplicates_resolved = before - len(frame)
    report.count_dropped(f"duplicate_conflicting_{policy.duplicates}", before - len(frame))
    return frame


# --------------------------------------------------------------------------------------------
# Frequency and the regular grid


def _infer_frequency(timestamps: pd.Series, series_codes: np.ndarray, table: SourceTable) -> str:
    """The step of the data: a calendar alias where pandas recognises one, else the usual step."""
    times = epoch_nanoseconds(timestamps)
    same_series = series_codes[1:] == series_codes[:-1]
    steps = (times[1:] - times[:-1])[same_series]
    if not len(steps):
        raise DataValidationError(
            f"{table.origin}: cannot infer a frequency from a single row per series; "
            "pass the frequency explicitly"
        )
    first_series = timestamps[series_codes == series_codes[0]]
    if len(first_series) >= 3:
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(pd.DatetimeIndex(first_series.iloc[:1000]))
        if offset is not None:
            return offset.freqstr
    values, counts = np.unique(steps, return_counts=True)
    usual = int(values[np.argmax(counts)])
    step = pd.Timedelta(usual, unit="ns")
    if step == pd.Timedelta(days=1) and not (pd.DatetimeIndex(timestamps).day_of_week >= 5).any():
        return "B"
    return pd.tseries.frequencies.to_offset(step).freqstr


def _grid(timestamps: pd.Series, frequency: str, table: SourceTable) -> pd.DatetimeIndex:
    if frequency == TRADING_DAYS:
        return pd.DatetimeIndex(np.unique(epoch_nanoseconds(timestamps))).tz_localize("UTC")
    try:
        return pd.date_range(timestamps.min(), timestamps.max(), freq=frequency)
    except ValueError as error:
        raise DataValidationError(
            f"parameter frequency: {frequency!r} is not a frequency: {error}"
        ) from error


def _reject_finer_frequency(
    steps: np.ndarray, unit: int, frequency: str, table: SourceTable, label: str
) -> None:
    """Rejects a frequency finer than the data's usual step: it would invent every other row."""
    if len(steps) and np.median(steps) > unit:
        usual = np.median(steps) / unit
        raise DataValidationError(
            f"{table.origin}: column {label!r}: the usual step between rows is {usual:g} steps of "
            f"{frequency!r}; the frequency is finer than the data. Pass the data's own frequency"
        )


def _regularise(
    frame: pd.DataFrame,
    value_columns: Sequence[str],
    frequency: str,
    table: SourceTable,
    report: ValidationReport,
    label: str,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Puts every series on the regular grid; returns the frame and which rows were inserted."""
    times = epoch_nanoseconds(frame[TIMESTAMP_COLUMN])
    series_codes, series_names = pd.factorize(frame[SERIES_COLUMN], sort=False)
    same_series = series_codes[1:] == series_codes[:-1]
    offset = pd.tseries.frequencies.to_offset(frequency) if frequency != TRADING_DAYS else None
    if isinstance(offset, pd.offsets.Tick):
        # Checked before the grid exists: a grid far finer than the data could exhaust memory.
        _reject_finer_frequency(np.diff(times)[same_series], offset.nanos, frequency, table, label)
    grid = _grid(frame[TIMESTAMP_COLUMN], frequency, table)
    grid_times = epoch_nanoseconds(grid)
    positions = np.searchsorted(grid_times, times)
    positions = np.minimum(positions, len(grid_times) - 1)
    off_grid = grid_times[positions] != times
    if off_grid.any():
        rows = frame.index[off_grid]
        example = frame[TIMESTAMP_COLUMN][off_grid].iloc[0]
        raise DataValidationError(
            f"{table.origin}: column {label!r}: irregular frequency: timestamp {example} "
            f"is not on the {frequency!r} grid that starts at {grid[0]}, at "
            f"{table.describe_rows(rows, len(rows))}; resample the data or pass its frequency"
        )
    _reject_finer_frequency(np.diff(positions)[same_series], 1, frequency, table, label)
    starts = np.flatnonzero(np.r_[True, series_codes[1:] != series_codes[:-1]])
    ends = np.r_[starts[1:], len(frame)]
    first_position = positions[starts]
    last_position = positions[ends - 1]
    lengths = last_position - first_position + 1
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    total = int(lengths.sum())
    # Scatter the observed rows into a full grid per series (vectorised reindex).
    row_series = np.repeat(np.arange(len(starts)), ends - starts)
    target_rows = offsets[row_series] + positions - first_position[row_series]
    full_values = np.full((total, len(value_columns)), np.nan)
    full_values[target_rows] = frame[list(value_columns)].to_numpy(dtype="float64")
    full_series = np.repeat(np.arange(len(starts)), lengths)
    full_positions = np.arange(total) - offsets[full_series] + first_position[full_series]
    inserted = np.ones(total, dtype=bool)
    inserted[target_rows] = False
    report.missing_timestamps = int(inserted.sum())
    regular = pd.DataFrame(full_values, columns=list(value_columns))
    regular.insert(0, TIMESTAMP_COLUMN, grid[full_positions])
    regular.insert(
        0,
        SERIES_COLUMN,
        pd.array(np.asarray(series_names)[series_codes[starts]][full_series], dtype="string"),
    )
    return regular, inserted


# --------------------------------------------------------------------------------------------
# Gaps


def _runs(mask: np.ndarray, boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True in `mask`; runs break where `boundary`."""
    starts_flag = mask & (np.r_[True, ~mask[:-1]] | boundary)
    run_ids = np.cumsum(starts_flag) * mask
    run_starts = np.flatnonzero(starts_flag)
    run_lengths = np.bincount(run_ids, minlength=len(run_starts) + 1)[1:]
    return run_starts, run_starts + run_lengths


def _crosses_part_start(
    series: np.ndarray,
    times: np.ndarray,
    rows: np.ndarray,
    after: np.ndarray,
    part_starts: Mapping[str, Sequence[pd.Timestamp]],
) -> np.ndarray:
    """Which filled rows lie before a part start that their right-hand anchor lies at or after."""
    crosses = np.zeros(len(rows), dtype=bool)
    for index, (row, anchor) in enumerate(zip(rows, after, strict=True)):
        for start in part_starts.get(str(series[row]), ()):
            nanoseconds = float(pd.Timestamp(start).value)
            if times[row] < nanoseconds <= times[anchor]:
                crosses[index] = True
    return crosses


def _fill_short_gaps(
    regular: pd.DataFrame,
    value_columns: Sequence[str],
    inserted: np.ndarray,
    policy: CleaningPolicy,
    report: ValidationReport,
    part_starts: Mapping[str, Sequence[pd.Timestamp]] | None = None,
) -> pd.DataFrame:
    """Fills runs of at most `max_gap` missing values that have a known value on both sides.

    With `part_starts` (per series, the first timestamps of the validation and test parts), a
    row before a part start is never interpolated towards a value at or after it: it repeats
    its last earlier value instead, so no training value depends on a validation value.
    """
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    last_of_series = np.r_[new_series[1:], True]
    times = epoch_nanoseconds(regular[TIMESTAMP_COLUMN]).astype("float64")
    values = regular[list(value_columns)].to_numpy(dtype="float64", copy=True)
    for index, column in enumerate(value_columns):
        column_values = values[:, index]
        missing = np.isnan(column_values)
        if not missing.any():
            continue
        run_starts, run_ends = _runs(missing, new_series)
        inside = ~new_series[run_starts] & ~last_of_series[run_ends - 1]
        short = (run_ends - run_starts) <= policy.max_gap
        fillable = inside & short
        if not fillable.any():
            continue
        lengths = (run_ends - run_starts)[fillable]
        rows = np.repeat(run_ends[fillable] - lengths, lengths) + _ranges(lengths)
        before = np.repeat(run_starts[fillable] - 1, lengths)
        after = np.repeat(run_ends[fillable], lengths)
        if policy.fill_method == "ffill":
            column_values[rows] = column_values[before]
        else:
            weight = (times[rows] - times[before]) / (times[after] - times[before])
            interpolated = column_values[before] + weight * (
                column_values[after] - column_values[before]
            )
            if part_starts:
                crosses = _crosses_part_start(series, times, rows, after, part_starts)
                interpolated = np.where(crosses, column_values[before], interpolated)
                report.fills_before_part_start += int(crosses.sum())
            column_values[rows] = interpolated
        report.values_filled[str(column)] = len(rows)
    regular[list(value_columns)] = values
    return regular


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..l0), [0..l1), ... without a Python loop."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts


def _record_gaps(
    regular: pd.DataFrame,
    incomplete_before: np.ndarray,
    incomplete_after: np.ndarray,
    inserted: np.ndarray,
    report: ValidationReport,
) -> None:
    """Counts the gaps: runs of rows missing a timestamp or a value, per series.

    A gap is `filled` when every row of it was filled, `split` when rows inside a series stay
    missing (they are dropped and the series is cut there), and `trimmed` when it touches the
    start or end of a series (nothing to interpolate from; the rows are dropped).
    """
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    last_of_series = np.r_[new_series[1:], True]
    run_starts, run_ends = _runs(incomplete_before, new_series)
    at_edge = new_series[run_starts] | last_of_series[run_ends - 1]
    still_missing = np.add.reduceat(incomplete_after, run_starts) > 0 if len(run_starts) else []
    actions = np.where(at_edge, "trimmed", np.where(still_missing, "split", "filled"))
    report.gap_counts = {
        action: int((actions == action).sum()) for action in ("filled", "split", "trimmed")
    }
    timestamps = regular[TIMESTAMP_COLUMN]
    for start, end, action in zip(
        run_starts[:MAX_GAPS_LISTED], run_ends[:MAX_GAPS_LISTED], actions, strict=False
    ):
        report.gaps.append(
            {
                "series_id": str(series[start]),
                "after": None if new_series[start] else str(timestamps.iloc[start - 1]),
                "before": None if last_of_series[end - 1] else str(timestamps.iloc[end]),
                "steps": int(end - start),
                "missing_timestamps": int(inserted[start:end].sum()),
                "action": str(action),
            }
        )


def _drop_unfilled(
    regular: pd.DataFrame,
    value_columns: Sequence[str],
    inserted: np.ndarray,
    report: ValidationReport,
) -> pd.DataFrame:
    """Drops rows still missing a value; each stretch of kept rows becomes its own segment."""
    incomplete = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    report.count_dropped("long_gap_missing_timestamps", int((incomplete & inserted).sum()))
    report.count_dropped("missing_values_not_filled", int((incomplete & ~inserted).sum()))
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    previous_dropped = np.r_[False, incomplete[:-1]]
    starts_segment = (new_series | previous_dropped) & ~incomplete
    segment = np.cumsum(starts_segment) - 1
    kept = regular.loc[~incomplete].copy()
    kept.insert(1, SEGMENT_COLUMN, segment[~incomplete].astype("int64"))
    return kept.reset_index(drop=True)


def drop_short_segments(
    frame: pd.DataFrame, min_rows: int, report: ValidationReport, origin: str
) -> pd.DataFrame:
    """Drops segments shorter than one window, lists series left with nothing, and renumbers.

    Raises:
        DataValidationError: when no series keeps a segment long enough for one window.
    """
    sizes = frame.groupby(SEGMENT_COLUMN, sort=False)[SEGMENT_COLUMN].transform("size").to_numpy()
    short = sizes < min_rows
    report.count_dropped("segment_shorter_than_window", int(short.sum()))
    before = frame.groupby(SERIES_COLUMN, sort=False).size()
    kept = frame.loc[~short]
    after = kept.groupby(SERIES_COLUMN, sort=False).size()
    for series_id, rows in before.items():
        if series_id not in after.index:
            report.dropped_series.append(
                {
                    "series_id": str(series_id),
                    "rows": int(rows),
                    "reason": f"no stretch of {min_rows} regular rows (input width + horizon)",
                }
            )
    if kept.empty:
        longest = int(sizes.max()) if len(sizes) else 0
        raise DataValidationError(
            f"{origin}: too few rows for the requested windows: a window needs {min_rows} "
            f"consecutive rows (input width + horizon) but the longest clean stretch has {longest}"
        )
    kept = kept.copy()
    kept[SEGMENT_COLUMN] = pd.factorize(kept[SEGMENT_COLUMN])[0].astype("int64")
    return kept.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Entry point


def validate_table(
    table: SourceTable,
    schema: TableSchema,
    policy: CleaningPolicy,
    part_starts: Mapping[str, Sequence[pd.Timestamp]] | None = None,
) -> ValidatedFrame:
    """Checks and repairs a source table into a regular, gap-free frame of segments.

    Args:
        table: the rows as read, with their origin for messages.
        schema: which columns are time, series and values.
        policy: sentinels, gap filling and duplicate handling.
        part_starts: per series id, the first timestamps of its later parts; time
            interpolation then never reaches across them (see `_fill_short_gaps`).

    Returns:
        The clean frame (`series_id`, `segment`, `timestamp`, value columns), a report of every
        repair, and the value columns kept.

    Raises:
        DataValidationError: naming the source, column and first offending rows.
    """
    report = ValidationReport(origin=table.origin, notes=list(table.notes))
    frame = table.frame
    if frame.shape[1] == 0:
        raise DataValidationError(f"{table.origin}: the file is empty (no header, no rows)")
    if schema.timestamp_parts:
        _require_columns(table, list(schema.timestamp_parts.values()), "timestamp")
    elif schema.timestamp_column is not None:
        _require_columns(table, [schema.timestamp_column], "timestamp")
    else:
        raise DataValidationError("parameter timestamp_column: no timestamp column was given")
    if schema.series_column is not None:
        _require_columns(table, [schema.series_column], "series")
    value_columns, ignored = _resolve_value_columns(table, schema)
    report.ignored_columns = ignored
    if not schema.targets:
        raise DataValidationError("parameter targets: expected at least one target column")
    if not value_columns:
        raise DataValidationError(f"{table.origin}: no numeric value columns found")
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        report.blank_rows_dropped = int(blank.sum())
        table = dataclasses.replace(table, frame=frame.loc[~blank])
        frame = table.frame
    if frame.empty:
        raise DataValidationError(f"{table.origin}: has a header but no data rows")
    report.rows_read = len(frame)

    timestamps = _parse_timestamps(table, schema)
    values = _numeric_values(table, value_columns, policy, report)
    clean = values
    clean.insert(0, TIMESTAMP_COLUMN, timestamps)
    clean.insert(0, SERIES_COLUMN, _series_ids(table, schema))
    report.series_read = int(clean[SERIES_COLUMN].nunique())

    clean = _sort_rows(clean, report)
    clean = _resolve_duplicates(clean, value_columns, table, policy, report)
    series_codes = pd.factorize(clean[SERIES_COLUMN])[0]
    frequency = schema.frequency or _infer_frequency(clean[TIMESTAMP_COLUMN], series_codes, table)
    report.frequency = frequency
    regular, inserted = _regularise(
        clean, value_columns, frequency, table, report, time_column_label(schema)
    )
    incomplete_before = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    regular = _fill_short_gaps(regular, value_columns, inserted, policy, report, part_starts)
    incomplete_after = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    _record_gaps(regular, incomplete_before, incomplete_after, inserted, report)
    result = _drop_unfilled(regular, value_columns, inserted, report)
    if result.empty:
        raise DataValidationError(
            f"{table.origin}: no complete rows left after removing missing values"
        )
    return ValidatedFrame(frame=result, report=report, value_columns=tuple(value_columns))
