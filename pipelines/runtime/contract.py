"""The data contract every stage shares: column names, the error type, the source table, the
reading schema and the cleaning policy, and the small checks used at every door.

A frame that passed validation has the columns `series_id`, `segment`, `timestamp` (UTC), then
numeric value columns; sorted by (`series_id`, `timestamp`); one regular step per series; no
missing values. Every stage raises `DataValidationError`, whose message names the source, the
column and the first offending rows or the parameter at fault.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

SERIES_COLUMN = "series_id"
SEGMENT_COLUMN = "segment"
TIMESTAMP_COLUMN = "timestamp"
STEP_COLUMN = "step"
"""Forecast output: the 1-based horizon step of each forecast row."""
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


PART_NAMES = ("train", "validation", "test")
"""The parts of a chronological split, in time order; a part's code is its index."""
TRAIN, VALIDATION, TEST = range(len(PART_NAMES))


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
