"""Timestamps: a source table's time column(s) parsed to UTC, with the rows that fail named."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.runtime.contract import DataValidationError, SourceTable, TableSchema


def time_column_label(schema: TableSchema) -> str:
    """The user's name for the time: its column, or its part columns joined by '/'."""
    if schema.timestamp_parts:
        return "/".join(schema.timestamp_parts.values())
    return str(schema.timestamp_column)


def parse_source_timestamps(table: SourceTable, schema: TableSchema) -> pd.Series:
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
