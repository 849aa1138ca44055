"""ProbTS's long-term scores, computed as its evaluator computes them (`--probts`).

ProbTS (Zhang et al., NeurIPS 2024 datasets track; microsoft/ProbTS at 66f826c, read in
`probts/utils/evaluator.py`, `probts/utils/metrics.py`, `probts/data/data_utils/data_utils.py`)
scores the long-term setting (L=96, 70/10/20 split, z-score fitted on the training rows) on:

- rolling test windows of stride 96 whose first targets start at the first test row,
  `ceil((test rows - H) / 96)` of them: every 96th of our stride-1 test windows;
- original units (its forecasts are inverse-transformed before scoring);
- per window, over every step and channel: the weighted quantile loss
  `sum 2 |q_hat - y| |1{y <= q_hat} - q| / sum |y|` at q = 0.05, 0.10, ..., 0.95, averaged over
  the 19 levels (its "CRPS"), and `sum |y - median| / sum |y|` (its "NMAE"); then the mean over
  windows (not a ratio of sums over all windows).

A point model's quantiles all equal its forecast, so its CRPS equals its NMAE: the published
point models (PatchTST 0.087 / 0.090 / 0.092 / 0.094 on Weather at H = 96 / 192 / 336 / 720,
ProbTS's long-term table, docs/benchmark/supervised_model, mean of 5 seeds) have one figure for
both. Our NMAE is that of the point forecast; our CRPS that of the calibrated quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.quantiles import head_quantiles_of
from pipelines.config.schema import RunConfig
from pipelines.training.calibration import CRPS_QUANTILES, rolling_test_calibration
from pipelines.training.evaluation import point_forecast, predict_part, target_windows
from pipelines.training.interval_metrics import weighted_quantile_loss
from pipelines.training.train import windowed_data

PROBTS_STRIDE = 96
"""ProbTS's `test_rolling_length`: its test windows start 96 rows apart."""

PUBLISHED_PATCHTST_CRPS = {96: 0.087, 192: 0.090, 336: 0.092, 720: 0.094}
"""PatchTST's CRPS (= its NMAE) on Weather, L=96, in ProbTS's long-term table (5 seeds)."""


def window_indices(windows: int, stride: int = PROBTS_STRIDE) -> np.ndarray:
    """The positions, among our stride-1 test windows (`windows` = test rows - H + 1), of
    ProbTS's rolling test windows: every `stride`-th, `ceil((test rows - H) / stride)` of them.

    Raises:
        ValueError: no ProbTS window fits (a single test window).
    """
    count = math.ceil((windows - 1) / stride)
    if count < 1:
        raise ValueError(f"ProbTS scores: {windows} test window(s) hold no {stride}-step window")
    return np.arange(count) * stride


def probts_scores(
    actual: np.ndarray,
    point: np.ndarray,
    quantile_forecast: Callable[[float], np.ndarray],
    levels: Sequence[float],
) -> tuple[float, float]:
    """ProbTS's CRPS and NMAE of some windows, in original units.

    Args:
        actual: (windows, horizon, channels) actual values.
        point: the point forecasts, same shape.
        quantile_forecast: the forecast of one quantile level, same shape.
        levels: the quantile levels of the CRPS (0.05..0.95 in ProbTS).

    Returns:
        (CRPS, NMAE): per window, then averaged over windows.
    """
    quantiles = np.stack([quantile_forecast(level) for level in levels])
    crps = [
        weighted_quantile_loss(actual[window], quantiles[:, window], levels)
        for window in range(len(actual))
    ]
    nmae = np.abs(actual - point).sum(axis=(1, 2)) / np.abs(actual).sum(axis=(1, 2))
    return float(np.mean(crps)), float(nmae.mean())


def probts_figures(trained: Any, config: RunConfig) -> dict[str, float]:
    """ProbTS's CRPS (rolling and static calibrations) and NMAE of a trained model on
    ProbTS's test windows (`ltsf_probts`), in original units."""
    prepared = trained.prepared
    windowed = windowed_data(prepared)
    parts = ("validation", "test")
    actuals = {part: target_windows(prepared, windowed, part) for part in parts}
    outputs = {
        part: predict_part(trained.model, windowed, part, config.training.batch_size)
        for part in parts
    }
    head_levels = head_quantiles_of(trained.model)
    forecasts = {part: point_forecast(outputs[part], head_levels) for part in parts}
    heads = outputs if head_levels else None
    chosen = window_indices(len(forecasts["test"]))
    ids, targets = actuals["test"].series_ids[chosen], prepared.spec.targets
    forecast = forecasts["test"][chosen]
    head = None if heads is None else heads["test"][chosen]

    def quantiles(calibration: Any, groups: np.ndarray) -> Callable[[float], np.ndarray]:
        def at(quantile: float) -> np.ndarray:
            bound = calibration.bounds([quantile], forecast, groups, head)[0]
            return prepared.scaler.inverse_transform(bound, ids, targets)

        return at

    actual = actuals["test"].original[chosen]
    point = prepared.scaler.inverse_transform(forecast, ids, targets)
    static_crps, nmae = probts_scores(
        actual, point, quantiles(trained.calibration, ids), CRPS_QUANTILES
    )
    figures = {"probts_nmae": nmae, "probts_crps_static": static_crps}
    if config.intervals.update == "rolling":
        rolling, groups = rolling_test_calibration(
            config.intervals, forecasts, actuals, windowed.starts, heads, head_levels
        )
        figures["probts_crps"], _ = probts_scores(
            actual, point, quantiles(rolling, groups[chosen]), CRPS_QUANTILES
        )
    else:
        figures["probts_crps"] = static_crps
    return figures
