"""Forecast intervals of a trained model: calibrated on its validation residuals, scored on the
validation and test windows in original units. No fitting, no MLflow.

The calibration is split conformal (`pipelines.runtime.intervals`) on the validation part, which
early stopping watched but the weights never trained on; the logged model carries it, so the
intervals scored here are those the model forecasts. Validation scores measure the calibration
on its own residuals (close to nominal by construction); the test part is the honest check.

CRPS is the quantile-averaged CRPS over `CRPS_QUANTILES` (0.05, 0.10, ..., 0.95, the levels
ProbTS averages), each quantile the point forecast plus its conformal offset.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from pipelines.config.schema import IntervalConfig
from pipelines.runtime.intervals import (
    Calibration,
    calibrate,
    interval_quantiles,
    level_name,
)
from pipelines.runtime.scaling import FittedScaler
from pipelines.training import interval_metrics

CRPS_QUANTILES = tuple(round(0.05 * step, 2) for step in range(1, 20))
"""Quantile levels of the quantile-averaged CRPS (0.05 to 0.95)."""


@dataclass
class IntervalEvaluation:
    """Interval scores of one part in original units, by level name ('80', '90', ...).

    Attributes:
        coverage: the share of actual values inside each interval.
        width: the mean width of each interval.
        interval_score: the mean Winkler score of each interval.
        coverage_by_step: coverage per horizon step, arrays of length horizon.
        crps: the quantile-averaged CRPS, or None when the calibration has too few residuals
            for quantiles 0.05 and 0.95.
        width_scaled, crps_scaled: the same in scaled units (the LTSF protocol's).
    """

    coverage: dict[str, float] = field(default_factory=dict)
    width: dict[str, float] = field(default_factory=dict)
    interval_score: dict[str, float] = field(default_factory=dict)
    coverage_by_step: dict[str, np.ndarray] = field(default_factory=dict)
    crps: float | None = None
    width_scaled: dict[str, float] = field(default_factory=dict)
    crps_scaled: float | None = None


def validation_calibration(
    settings: IntervalConfig,
    actual_scaled: np.ndarray,
    forecast_scaled: np.ndarray,
    series_ids: np.ndarray,
    notes: list[str],
) -> Calibration | None:
    """The calibration of the validation residuals, or None when intervals are off or the
    residuals are too few for a level (noted and warned: the model then forecasts points)."""
    if settings.calibration == "none" or not settings.levels:
        return None
    per_series = series_ids if settings.calibration == "per_series" else None
    calibration = calibrate(actual_scaled - forecast_scaled, per_series, source="validation")
    quantiles = [q for level in settings.levels for q in interval_quantiles(level)]
    if calibration.missing(quantiles):
        needed = max(settings.levels)
        notes.append(
            f"intervals left out: {int(calibration.windows.min())} validation windows "
            f"({settings.calibration}); level {level_name(needed)} needs "
            f"{(100 + needed) / (100 - needed):.0f}"
        )
        warnings.warn(notes[-1], stacklevel=2)
        return None
    return calibration


def evaluate_intervals(
    calibration: Calibration,
    levels: tuple[float, ...],
    forecast_scaled: np.ndarray,
    actual_scaled: np.ndarray,
    actual_original: np.ndarray,
    series_ids: np.ndarray,
    scaler: FittedScaler,
    targets: tuple[str, ...],
) -> IntervalEvaluation:
    """Coverage, width and Winkler score per level, and the CRPS, of one part's windows; widths
    and CRPS also in scaled units. One quantile's bounds are in memory at a time."""

    def bound(quantile: float) -> tuple[np.ndarray, np.ndarray]:
        scaled = forecast_scaled + calibration.quantile_offsets([quantile], series_ids)[0]
        return scaled, scaler.inverse_transform(scaled, series_ids, targets)

    result = IntervalEvaluation()
    for level in levels:
        name = level_name(level)
        (lower_scaled, lower), (upper_scaled, upper) = map(bound, interval_quantiles(level))
        result.coverage[name] = interval_metrics.coverage(actual_original, lower, upper)
        result.width[name] = interval_metrics.width(lower, upper)
        result.width_scaled[name] = interval_metrics.width(lower_scaled, upper_scaled)
        result.interval_score[name] = interval_metrics.interval_score(
            actual_original, lower, upper, level=level
        )
        result.coverage_by_step[name] = interval_metrics.coverage(
            actual_original, lower, upper, per_step=True
        )
    if not calibration.missing(list(CRPS_QUANTILES)):
        losses = np.zeros(2)
        for quantile in CRPS_QUANTILES:
            for index, (actual, value) in enumerate(
                zip((actual_scaled, actual_original), bound(quantile), strict=True)
            ):
                losses[index] += interval_metrics.pinball_loss(actual, value[None], [quantile])
        result.crps_scaled, result.crps = (2 * losses / len(CRPS_QUANTILES)).tolist()
    return result
