"""Features derived from a validated frame: calendar cycles, wind vectors and log returns.

Each function takes the frame and returns a new one (inputs are never modified). None of them
looks at more than the row itself or the row before it in the same segment, so none leaks the
future into a window's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.runtime.contract import (
    SEGMENT_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
    ValidationReport,
    epoch_nanoseconds,
)

SECONDS_PER_DAY = 24 * 60 * 60
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
SECONDS_PER_YEAR = 365.2425 * SECONDS_PER_DAY
CALENDAR_PERIODS = {"day": SECONDS_PER_DAY, "week": SECONDS_PER_WEEK, "year": SECONDS_PER_YEAR}


@dataclass(frozen=True)
class FeatureOptions:
    """Which derived features to add.

    Attributes:
        calendar: add sin/cos of the time of day, week and year (only cycles longer than two
            steps of the data, since a daily series has no time-of-day signal).
        wind_vector: replace a wind direction in degrees by x/y components scaled by speed.
        log_returns: add `<column>_log_return` = log(p_t / p_{t-1}) for price columns.
    """

    calendar: bool = False
    wind_vector: bool = False
    log_returns: bool = False


def add_calendar_features(
    frame: pd.DataFrame, step_seconds: float
) -> tuple[pd.DataFrame, list[str]]:
    """Adds `<cycle>_sin`/`<cycle>_cos` for each calendar cycle longer than two steps.

    Example: for hourly data the day, week and year cycles are added; for daily data only week
    and year.
    """
    seconds = epoch_nanoseconds(frame[TIMESTAMP_COLUMN]) / 1e9
    result = frame.copy()
    added = []
    for name, period in CALENDAR_PERIODS.items():
        if period <= 2 * step_seconds:
            continue
        angle = 2 * np.pi * (seconds % period) / period
        result[f"{name}_sin"] = np.sin(angle)
        result[f"{name}_cos"] = np.cos(angle)
        added += [f"{name}_sin", f"{name}_cos"]
    return result, added


def add_wind_vector(
    frame: pd.DataFrame, speed_column: str, direction_column: str
) -> tuple[pd.DataFrame, list[str]]:
    """Replaces the direction (degrees) by `wind_x`, `wind_y` = speed * (cos, sin) of it.

    Degrees wrap (359 and 1 are neighbours), which a network cannot see; the vector does not.
    """
    for column in (speed_column, direction_column):
        if column not in frame.columns:
            raise DataValidationError(f"wind vector: column {column!r} not found")
    radians = np.deg2rad(frame[direction_column].to_numpy(dtype="float64"))
    speed = frame[speed_column].to_numpy(dtype="float64")
    result = frame.drop(columns=[direction_column])
    result["wind_x"] = speed * np.cos(radians)
    result["wind_y"] = speed * np.sin(radians)
    return result, ["wind_x", "wind_y"]


def add_log_returns(
    frame: pd.DataFrame, price_columns: Sequence[str], report: ValidationReport
) -> tuple[pd.DataFrame, list[str]]:
    """Adds log returns of each price column within each segment; drops each segment's first row.

    Raises:
        DataValidationError: a price that is zero or negative (its log return is undefined).
    """
    result = frame.copy()
    added = []
    segment = frame[SEGMENT_COLUMN].to_numpy()
    first_of_segment = np.r_[True, segment[1:] != segment[:-1]]
    for column in price_columns:
        prices = frame[column].to_numpy(dtype="float64")
        bad = prices <= 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"log returns: column {column!r}: non-positive price {prices[row]} at "
                f"{frame[TIMESTAMP_COLUMN].iloc[row]} (series {frame.iloc[row, 0]!r})"
            )
        log_prices = np.log(prices)
        returns = np.r_[np.nan, np.diff(log_prices)]
        returns[first_of_segment] = np.nan
        result[f"{column}_log_return"] = returns
        added.append(f"{column}_log_return")
    report.count_dropped("first_row_of_segment_log_return", int(first_of_segment.sum()))
    return result.loc[~first_of_segment].reset_index(drop=True), added
