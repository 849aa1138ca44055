"""Whether a series can be forecast: one rule that every path calls.

A series is ready when a model can read its last `input_width` rows: the model knows it (a
per-series scaler was fitted on it), its last row is not stale at the forecast's cut, it has
`input_width` rows, they are consecutive steps of the model's frequency, and every feature value
in them is a finite number. `unready_series` returns, for each series that is not, the first
reason in that order with the details a person needs to fix it.

The paths differ only in what they do with the answer: the logged model
(`pipelines.runtime.forecaster`) raises on the first one, since its caller sent the history;
the batch forecast, the backtest and Spark skip those series and list them with their reasons.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.runtime.contract import SEGMENT_COLUMN, SERIES_COLUMN, TIMESTAMP_COLUMN, TRADING_DAYS

UNKNOWN, STALE, TOO_SHORT, GAP, NON_FINITE = "unknown", "stale", "too_short", "gap", "non_finite"
REASONS = (UNKNOWN, STALE, TOO_SHORT, GAP, NON_FINITE)
"""Why a series is not ready, in the order they are checked."""


@dataclass(frozen=True)
class NotReady:
    """A series that cannot be forecast, and why.

    Attributes:
        series_id: the series.
        reason: one of `REASONS`.
        detail: what is wrong, with times, counts and columns, for a person to fix it.
    """

    series_id: str
    reason: str
    detail: str


def format_time(value: object) -> str:
    """A time as ISO 8601 text, as every readiness and history message writes it."""
    return pd.Timestamp(value).isoformat()


def unready_series(
    history: pd.DataFrame,
    *,
    input_width: int,
    features: Sequence[str],
    frequency: str,
    as_of: pd.Timestamp | None = None,
    known_series: Collection[str] | None = None,
) -> list[NotReady]:
    """The series of `history` that cannot be forecast, each with its first reason.

    Args:
        history: rows with `series_id`, `timestamp` (naive is read as UTC) and the feature
            columns, without duplicate timestamps in a series; a validated frame's `segment`
            column, where present, marks gaps too long to fill (the only gaps trading-days
            data can show).
        input_width: rows of history the model reads.
        features: the model's feature columns.
        frequency: the model's frequency (a pandas alias, or `trading-days`, whose calendar is
            the data's own days: only staleness is checked against it, never gaps).
        as_of: the forecast's cut; None checks no staleness (the caller sent the history).
        known_series: the series a per-series scaler knows; None when any series will do.

    Returns:
        One `NotReady` per series that is not ready, sorted by series id.

    Example:
        >>> history = pd.DataFrame({
        ...     "series_id": ["a", "a", "b"],
        ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"], utc=True),
        ...     "value": [1.0, 2.0, 3.0]})
        >>> [(item.series_id, item.reason) for item in unready_series(
        ...     history, input_width=2, features=["value"], frequency="D")]
        [('b', 'too_short')]
    """
    history = history.assign(**{SERIES_COLUMN: history[SERIES_COLUMN].astype(str)})
    history = history.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    history = history.reset_index(drop=True)
    series = history[SERIES_COLUMN].to_numpy()
    times = pd.DatetimeIndex(history[TIMESTAMP_COLUMN])
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    if as_of is not None:
        as_of = pd.Timestamp(as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    known = None if known_series is None else frozenset(known_series)
    segments = history[SEGMENT_COLUMN].to_numpy() if SEGMENT_COLUMN in history else None
    from_end = pd.Series(series).groupby(series, sort=False).cumcount(ascending=False).to_numpy()
    names, first_rows, counts = np.unique(series, return_index=True, return_counts=True)
    last_rows = first_rows + counts - 1
    stale = _stale(times, last_rows, frequency, as_of)
    in_window = from_end < input_width
    broken = _broken_steps(series, times, in_window, frequency, segments)
    values = history[list(features)].apply(pd.to_numeric, errors="coerce").to_numpy("float64")
    non_finite = ~np.isfinite(values) & in_window[:, None]
    found = []
    for index, name in enumerate(names):
        rows = slice(first_rows[index], last_rows[index] + 1)
        last = format_time(times[last_rows[index]])
        if known is not None and name not in known:
            detail = "unknown to this model: its scaler was fitted per series and never saw it"
            found.append(NotReady(name, UNKNOWN, detail))
        elif stale[index]:
            detail = f"stale: its last row is at {last}, more than one step before as_of"
            found.append(NotReady(name, STALE, f"{detail} {format_time(as_of)}"))
        elif counts[index] < input_width:
            found.append(
                NotReady(
                    name,
                    TOO_SHORT,
                    f"history too short: {counts[index]} rows; the model needs the last "
                    f"{input_width} (input_width)",
                )
            )
        elif broken[rows].any():
            pair = first_rows[index] + int(np.flatnonzero(broken[rows])[-1])
            detail = _gap_detail(times, pair, input_width, frequency)
            found.append(NotReady(name, GAP, detail))
        elif non_finite[rows].any():
            row, column = np.argwhere(non_finite[rows])[0]
            row += first_rows[index]
            value = history[features[column]].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            found.append(
                NotReady(
                    name,
                    NON_FINITE,
                    f"column {features[column]!r} at {format_time(times[row])} is {value!r}; "
                    f"the last {input_width} rows must be finite numbers "
                    f"({int(non_finite[rows].sum())} such values)",
                )
            )
    return found


def _stale(
    times: pd.DatetimeIndex, last_rows: np.ndarray, frequency: str, as_of: pd.Timestamp | None
) -> np.ndarray:
    """True where a series' last row is more than one step before `as_of`."""
    if as_of is None:
        return np.zeros(len(last_rows), dtype=bool)
    last_times = times[last_rows]
    if frequency == TRADING_DAYS:
        # The calendar is the data's own days: a series is stale when the data holds more than
        # one day after its last row (a business-day rule would flag every holiday).
        days = np.unique(times.to_numpy("datetime64[ns]"))
        after = len(days) - np.searchsorted(days, last_times.to_numpy("datetime64[ns]"), "right")
        return after > 1
    return np.asarray((last_times + pd.tseries.frequencies.to_offset(frequency)) < as_of)


def _broken_steps(
    series: np.ndarray,
    times: pd.DatetimeIndex,
    in_window: np.ndarray,
    frequency: str,
    segments: np.ndarray | None,
) -> np.ndarray:
    """True at row i when rows i-1 and i are in the same series' window but not one step
    apart, or (where the frame has them) in different segments; for trading days, whose
    calendar is the data's own, only the segments tell."""
    broken = np.zeros(len(series), dtype=bool)
    if len(series) < 2:
        return broken
    pairs = (series[1:] == series[:-1]) & in_window[1:] & in_window[:-1]
    if segments is not None:
        broken[1:] |= pairs & (segments[1:] != segments[:-1])
    if frequency != TRADING_DAYS:
        expected = times[:-1] + pd.tseries.frequencies.to_offset(frequency)
        broken[1:] |= pairs & np.asarray(times[1:] != expected)
    return broken


def _gap_detail(times: pd.DatetimeIndex, row: int, width: int, frequency: str) -> str:
    previous, current = times[row - 1], times[row]
    if frequency == TRADING_DAYS:
        return (
            f"a gap in its last {width} rows: {format_time(previous)} is followed by "
            f"{format_time(current)} after a gap too long to fill; send a consecutive history"
        )
    expected = previous + pd.tseries.frequencies.to_offset(frequency)
    try:
        missing = len(pd.date_range(previous, current, freq=frequency)) - 2
    except (ValueError, OverflowError):
        missing = 0
    steps = f", {missing} missing steps" if missing > 0 else ""
    return (
        f"a gap in its last {width} rows: {format_time(previous)} is followed by "
        f"{format_time(current)}, expected {format_time(expected)} (frequency {frequency!r}"
        f"{steps}); fill the gap or send a consecutive history"
    )
