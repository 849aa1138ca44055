"""History sent to a forecasting model: checked against the data contract, cut to the last
`input_width` rows of every series, and put in the model's input form.

The logged model (`pipelines.serving.pyfunc`), the batch forecast and Spark all call these, so
what a model accepts is decided once: string series ids, ISO 8601 or datetime timestamps (naive
read as UTC), no duplicate timestamps within a series, finite feature values, and no gap in the
rows the model reads. A model never repairs history: it names the first problem instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.contract import (
    MAX_LISTED,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
    closest_name_hint,
)
from pipelines.data.scaling import FittedScaler
from pipelines.data.windows import WindowSpec

DEFAULT_SERIES_ID = "series"
"""The series id of rows that name none (a model trained on one series)."""


def last_rows_per_series(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The last `count` rows of every series of a frame sorted by series and time.

    Example:
        >>> frame = pd.DataFrame({"series_id": ["a", "a", "a", "b"], "value": [1, 2, 3, 4]})
        >>> last_rows_per_series(frame, 2)["value"].tolist()
        [2, 3, 4]
    """
    from_end = frame.groupby(SERIES_COLUMN, sort=False).cumcount(ascending=False).to_numpy()
    return frame.loc[from_end < count].reset_index(drop=True)


def check_history(
    model_input: Any, spec: WindowSpec, metadata: dict[str, Any], scaler: FittedScaler
) -> pd.DataFrame:
    """The input's needed columns, with string series ids and UTC timestamps, sorted."""
    if not isinstance(model_input, pd.DataFrame):
        try:
            model_input = pd.DataFrame(model_input)
        except (TypeError, ValueError) as error:
            raise DataValidationError(
                f"model input: expected a DataFrame of history, got {type(model_input).__name__}"
            ) from error
    needed = [SERIES_COLUMN, TIMESTAMP_COLUMN, *spec.features]
    # Only columns the model does not use can be the misspelling; MLflow's schema enforcement
    # drops them before `predict`, so the hint shows when the model is called directly.
    others = [str(column) for column in model_input.columns if column not in needed]
    for column in (TIMESTAMP_COLUMN, *spec.features):
        if column not in model_input.columns:
            hint = closest_name_hint(column, others) if others else ""
            raise DataValidationError(
                f"model input: column {column!r} not found{hint}; the model needs {needed}"
            )
    if len(model_input) == 0:
        raise DataValidationError("model input: no rows; send each series' recent history")
    history = pd.DataFrame(
        {
            SERIES_COLUMN: _series_ids(model_input, metadata),
            TIMESTAMP_COLUMN: parse_utc_timestamps(model_input[TIMESTAMP_COLUMN]),
        },
        index=pd.RangeIndex(len(model_input)),
    )
    for column in spec.features:
        history[column] = model_input[column].to_numpy()
    if scaler.per_series:
        known = set(scaler.scalers)
        unknown = [sid for sid in pd.unique(history[SERIES_COLUMN]) if sid not in known]
        if unknown:
            raise DataValidationError(
                f"model input: series {unknown[:MAX_LISTED]} unknown to this model; its scaler "
                f"was fitted per series on {listed_names(sorted(known))}"
            )
    history = history.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    duplicated = history.duplicated([SERIES_COLUMN, TIMESTAMP_COLUMN], keep=False).to_numpy()
    if duplicated.any():
        first = history.loc[duplicated].iloc[0]
        raise DataValidationError(
            f"model input: series {first[SERIES_COLUMN]!r} has duplicate timestamps "
            f"({int(duplicated.sum())} rows share a timestamp, first "
            f"{format_time(first[TIMESTAMP_COLUMN])})"
        )
    return history.reset_index(drop=True)


def _series_ids(model_input: pd.DataFrame, metadata: dict[str, Any]) -> np.ndarray:
    if SERIES_COLUMN in model_input.columns:
        ids = model_input[SERIES_COLUMN]
        if ids.isna().any():
            rows = np.flatnonzero(ids.isna().to_numpy())
            raise DataValidationError(
                f"model input: column {SERIES_COLUMN!r} is empty in rows "
                f"{rows[:MAX_LISTED].tolist()}"
            )
        return ids.astype(str).to_numpy(dtype=object)
    known = metadata.get("series_ids") or []
    if len(known) > 1:
        raise DataValidationError(
            f"model input: column {SERIES_COLUMN!r} not found; this model was trained on "
            f"{len(known)} series ({listed_names(known)}), so each row must name its series"
        )
    default = known[0] if known else DEFAULT_SERIES_ID
    return np.full(len(model_input), default, dtype=object)


def parse_utc_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from datetimes (naive = UTC) or text; unparseable text is an error."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
        parsed = (
            parsed.dt.tz_localize("UTC") if parsed.dt.tz is None else parsed.dt.tz_convert("UTC")
        )
    else:
        # ISO 8601 parses vectorised; the per-value "mixed" parser only sees what ISO rejected.
        parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
        retry = parsed.isna() & values.notna()
        if retry.any():
            parsed[retry] = pd.to_datetime(
                values[retry].astype(str), utc=True, format="mixed", errors="coerce"
            )
    bad = parsed.isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:MAX_LISTED]
        shown = ", ".join(f"row {row}: {values.iloc[row]!r}" for row in rows)
        raise DataValidationError(
            f"model input: column {TIMESTAMP_COLUMN!r} has {int(bad.sum())} unparseable or empty "
            f"timestamps ({shown}); send ISO 8601 text such as '2015-12-31T00:00:00Z'"
        )
    return parsed.astype("datetime64[ns, UTC]").reset_index(drop=True)


def last_windows(history: pd.DataFrame, spec: WindowSpec, frequency: str) -> pd.DataFrame:
    """The last `input_width` rows of every series (sorted), after checking values and gaps."""
    width = spec.input_width
    series = history[SERIES_COLUMN]
    counts = series.value_counts(sort=False)
    short = counts[counts < width]
    if len(short):
        shown = ", ".join(f"{sid!r} has {rows}" for sid, rows in list(short.items())[:MAX_LISTED])
        raise DataValidationError(
            f"model input: history too short for {len(short)} series ({shown} rows); the model "
            f"needs the last {width} rows (input_width) of each series"
        )
    window = last_rows_per_series(history, width)

    values = window[list(spec.features)].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype="float64"))
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise DataValidationError(
            f"model input: series {window[SERIES_COLUMN].iloc[row]!r}: column "
            f"{spec.features[column]!r} at {format_time(window[TIMESTAMP_COLUMN].iloc[row])} is "
            f"{window[spec.features[column]].iloc[row]!r}; the last {width} rows must be finite "
            f"numbers ({int((~finite).sum())} such values)"
        )
    window[list(spec.features)] = values.astype("float64")
    _check_gaps(window, width, frequency)
    return window


def _check_gaps(window: pd.DataFrame, width: int, frequency: str) -> None:
    """Rejects a window whose rows are not consecutive steps of the model's frequency."""
    if width < 2:
        return
    times = pd.DatetimeIndex(window[TIMESTAMP_COLUMN])
    same_series = np.ones(len(window) - 1, dtype=bool)
    same_series[width - 1 :: width] = False  # a pair that straddles two series is no gap
    previous, current = times[:-1], times[1:]
    if frequency == TRADING_DAYS:
        # The trading calendar is whatever days the data holds, so only order can be checked;
        # duplicates were rejected, so sorted rows are strictly increasing here.
        return
    expected = previous + pd.tseries.frequencies.to_offset(frequency)
    broken = np.flatnonzero(same_series & (current != expected))
    if len(broken):
        pair = broken[0]
        missing = _steps_between(previous[pair], current[pair], frequency)
        raise DataValidationError(
            f"model input: series {window[SERIES_COLUMN].iloc[pair]!r} has a gap in its last "
            f"{width} rows: {format_time(previous[pair])} is followed by "
            f"{format_time(current[pair])}, expected {format_time(expected[pair])} "
            f"(frequency {frequency!r}{missing}); fill the gap or send a consecutive history"
        )


def _steps_between(start: pd.Timestamp, end: pd.Timestamp, frequency: str) -> str:
    try:
        steps = len(pd.date_range(start, end, freq=frequency)) - 2
    except (ValueError, OverflowError):
        return ""
    return f", {steps} missing steps" if steps > 0 else ""


def format_time(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def listed_names(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


# --------------------------------------------------------------------------------------------
# Building the model input


def to_model_input(
    frame: pd.DataFrame, features: tuple[str, ...] | list[str], *, last_rows: int | None = None
) -> pd.DataFrame:
    """The model's input form of a history frame (e.g. a prepared frame).

    Args:
        frame: rows with `timestamp`, the feature columns and (optionally) `series_id`.
        features: the model's feature columns, in order.
        last_rows: keep only this many last rows of each series (None keeps all).

    Returns:
        `series_id` (text), `timestamp` (ISO 8601 text in UTC, e.g. '2015-12-31T00:00:00Z') and
        the features as float64, sorted by series and time.
    """
    series = (
        frame[SERIES_COLUMN].astype(str).to_numpy(dtype=object)
        if SERIES_COLUMN in frame.columns
        else np.full(len(frame), DEFAULT_SERIES_ID, dtype=object)
    )
    result = pd.DataFrame(
        {SERIES_COLUMN: series, TIMESTAMP_COLUMN: parse_utc_timestamps(frame[TIMESTAMP_COLUMN])}
    )
    for column in features:
        result[column] = frame[column].to_numpy(dtype="float64")
    result = result.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    if last_rows is not None:
        result = last_rows_per_series(result, last_rows)
    result[TIMESTAMP_COLUMN] = result[TIMESTAMP_COLUMN].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    result[SERIES_COLUMN] = result[SERIES_COLUMN].astype(object)
    return result.reset_index(drop=True)
