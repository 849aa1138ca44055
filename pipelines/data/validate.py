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
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipelines.data.gaps import (
    drop_unfilled,
    fill_short_gaps,
    infer_frequency,
    record_gaps,
    regularise,
)
from pipelines.data.timestamps import parse_source_timestamps, time_column_label
from pipelines.runtime.contract import (
    MAX_LISTED,
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    CleaningPolicy,
    DataValidationError,
    SourceTable,
    TableSchema,
    ValidatedFrame,
    ValidationReport,
    closest_name_hint,
    epoch_nanoseconds,
)

# --------------------------------------------------------------------------------------------


def _require_columns(table: SourceTable, columns: Sequence[str], role: str) -> None:
    available = [str(column) for column in table.frame.columns]
    for column in columns:
        if column not in table.frame.columns:
            raise DataValidationError(
                f"{table.origin}: {role} column {column!r} not found"
                f"{closest_name_hint(column, available)}"
            )


def _require_header_and_time(table: SourceTable, schema: TableSchema) -> None:
    """A header, and the time column(s) the schema names."""
    if table.frame.shape[1] == 0:
        raise DataValidationError(f"{table.origin}: the file is empty (no header, no rows)")
    if schema.timestamp_parts:
        _require_columns(table, list(schema.timestamp_parts.values()), "timestamp")
    elif schema.timestamp_column is not None:
        _require_columns(table, [schema.timestamp_column], "timestamp")
    else:
        raise DataValidationError("parameter timestamp_column: no timestamp column was given")


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
            interpolation then never reaches across them (see
            `pipelines.data.gaps.fill_short_gaps`).

    Returns:
        The clean frame (`series_id`, `segment`, `timestamp`, value columns), a report of every
        repair, and the value columns kept.

    Raises:
        DataValidationError: naming the source, column and first offending rows.
    """
    report = ValidationReport(origin=table.origin, notes=list(table.notes))
    frame = table.frame
    _require_header_and_time(table, schema)
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

    timestamps = parse_source_timestamps(table, schema)
    values = _numeric_values(table, value_columns, policy, report)
    clean = values
    clean.insert(0, TIMESTAMP_COLUMN, timestamps)
    clean.insert(0, SERIES_COLUMN, _series_ids(table, schema))
    report.series_read = int(clean[SERIES_COLUMN].nunique())

    clean = _sort_rows(clean, report)
    clean = _resolve_duplicates(clean, value_columns, table, policy, report)
    series_codes = pd.factorize(clean[SERIES_COLUMN])[0]
    frequency = schema.frequency or infer_frequency(clean[TIMESTAMP_COLUMN], series_codes, table)
    report.frequency = frequency
    regular, inserted = regularise(
        clean, value_columns, frequency, table, report, time_column_label(schema)
    )
    incomplete_before = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    regular = fill_short_gaps(regular, value_columns, inserted, policy, report, part_starts)
    incomplete_after = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    record_gaps(regular, incomplete_before, incomplete_after, inserted, report)
    result = drop_unfilled(regular, value_columns, inserted, report)
    if result.empty:
        raise DataValidationError(
            f"{table.origin}: no complete rows left after removing missing values"
        )
    return ValidatedFrame(frame=result, report=report, value_columns=tuple(value_columns))


def read_as_published(table: SourceTable, schema: TableSchema) -> ValidatedFrame:
    """The table's rows exactly as the file holds them, for benchmarks that use a file as
    published (the `as_published` policy): one series, file order, no repair.

    Duplicate timestamps, gaps, rows out of order and sentinel values stay as they are, so row
    counts and split borders match the published protocol. What no model can use is still an
    error that names the row: a missing, non-numeric or infinite value, or an unreadable time.

    Raises:
        DataValidationError: naming the source, column and first offending rows.
    """
    frame = table.frame
    _require_header_and_time(table, schema)
    if schema.series_column is not None:
        raise DataValidationError(
            f"parameter series_column: the as_published policy reads one series in file order, "
            f"got series column {schema.series_column!r}; use the validate policy"
        )
    if frame.empty:
        raise DataValidationError(f"{table.origin}: has a header but no data rows")
    value_columns, ignored = _resolve_value_columns(table, schema)
    if not value_columns:
        raise DataValidationError(f"{table.origin}: no numeric value columns found")
    report = ValidationReport(origin=table.origin, notes=list(table.notes))
    report.ignored_columns = ignored
    report.rows_read = len(frame)
    report.series_read = 1
    report.frequency = schema.frequency or "as published"
    report.notes.append("policy as_published: rows kept as in the file, nothing repaired")
    values = _numeric_values(table, value_columns, CleaningPolicy(), report)
    for column in value_columns:
        missing = values[column].isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise DataValidationError(
                f"{table.origin}: column {column!r}: missing value at "
                f"{table.describe_rows(frame.index[rows], len(rows))}; the as_published policy "
                "repairs nothing (use the validate policy to fill gaps)"
            )
    clean = values.reset_index(drop=True)
    clean.insert(0, TIMESTAMP_COLUMN, parse_source_timestamps(table, schema).to_numpy())
    clean.insert(0, SEGMENT_COLUMN, 0)
    clean.insert(0, SERIES_COLUMN, pd.Series(schema.default_series_id, index=clean.index))
    return ValidatedFrame(frame=clean, report=report, value_columns=tuple(value_columns))
