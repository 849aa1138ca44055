"""History sent to a forecasting model: checked against the data contract, cut to the last
`input_width` rows of every series, and put in the model's input form.

The logged model (`pipelines.runtime.forecaster`), the batch forecast and Spark all call these, so
what a model accepts is decided once: string series ids, ISO 8601 or datetime timestamps (naive
read as UTC), no duplicate timestamps within a series; which series can be forecast is the
readiness rule's (`pipelines.runtime.readiness`). A model never repairs history: it names the first
problem instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from pipelines.runtime.contract import (
    MAX_LISTED,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
    closest_name_hint,
)
from pipelines.runtime.readiness import NotReady, format_time, unready_series
from pipelines.runtime.windows import WindowSpec

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
    model_input: Any,
    spec: WindowSpec,
    metadata: dict[str, Any],
    known_series: Collection[str] | None = None,
) -> pd.DataFrame:
    """The input's needed columns, with string series ids and UTC timestamps, sorted.

    Raises:
        DataValidationError: a missing column, no rows, bad timestamps, or duplicate timestamps
            in a series the model knows (`known_series`; None: any series).
    """
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
    history = history.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    duplicated = history.duplicated([SERIES_COLUMN, TIMESTAMP_COLUMN], keep=False).to_numpy()
    if known_series is not None:
        # A series the model does not know is refused (or skipped) as unknown by the readiness
        # rule, whatever its rows hold.
        duplicated = duplicated & history[SERIES_COLUMN].isin(known_series).to_numpy()
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


def unready_history(
    history: pd.DataFrame,
    spec: WindowSpec,
    frequency: str,
    known_series: Collection[str] | None = None,
    rows: int | None = None,
) -> list[NotReady]:
    """The series of a model's checked input that the readiness rule
    (`pipelines.runtime.readiness`) refuses: no cut, so never stale. `rows`: the rows read
    (default the model's input_width; more to recalibrate on the history)."""
    return unready_series(
        history,
        input_width=spec.input_width if rows is None else rows,
        features=spec.features,
        frequency=frequency,
        known_series=known_series,
    )


def ready_windows(
    history: pd.DataFrame,
    spec: WindowSpec,
    frequency: str,
    known_series: Collection[str] | None = None,
) -> tuple[pd.DataFrame, list[NotReady]]:
    """The last `input_width` rows of every ready series (sorted, values as float64), and the
    series the readiness rule refuses, with their reasons (`unready_history`)."""
    not_ready = unready_history(history, spec, frequency, known_series)
    refused = [item.series_id for item in not_ready]
    ready = history.loc[~history[SERIES_COLUMN].isin(refused)].reset_index(drop=True)
    window = last_rows_per_series(ready, spec.input_width)
    features = list(spec.features)
    window[features] = window[features].apply(pd.to_numeric, errors="coerce").astype("float64")
    return window, not_ready


def refuse_unready(not_ready: list[NotReady]) -> None:
    """Raises, naming the first series that is not ready (what a caller that sent the history
    gets back)."""
    if not_ready:
        first, others = not_ready[0], len(not_ready) - 1
        more = f" ({others} more series not ready)" if others else ""
        raise DataValidationError(f"model input: series {first.series_id!r}: {first.detail}{more}")


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
