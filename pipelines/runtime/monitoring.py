"""Watching a model's forecasts as their actuals arrive: the reference its validation windows
give, and the alarm rules a window of scored forecasts is checked against. Pure NumPy.

The reference is made at training from the validation residuals r = y - ŷ (scaled units, the
windows early stopping watched and the calibration was made of), so every rule compares the
model with itself, never with a constant typed in by hand:

- `mae_by_step[h, k]`: the mean |r| at horizon step h of target k. A monitored window's rows
  (any steps: a forecast whose horizon has only partly passed brings only its first steps) are
  compared with the mean of this table over the same (step, target) cells, so early steps'
  smaller errors do not pass for an improvement. The window's **MAE ratio** is
  sum |e| / sum mae_by_step[step, target] over its rows, 1 on the validation part.
- `ratio_sd`: the standard deviation of that ratio over single validation windows (one series'
  forecast from one origin). The last n forecasts (as_of times) alarm when their ratio is above
  both `mae_factor` (default 1.1: a tenth more error than validation) and 1 + `mae_sigmas` x
  ratio_sd / sqrt(n) (default 3: beyond what n forecasts' noise allows), checked for every n
  from 1 to the window: the latest forecast alone catches a sudden change the day it shows,
  the whole window a drift too slow for any one forecast. Requiring both thresholds keeps a
  short window from alarming on noise and a long one from alarming on a change too small to
  matter. Forecasts of several series at one as_of count as one forecast: their errors move
  together (the same storm, the same market day), so n is not multiplied by the series.
- `design_effect[level]`: the variance of a validation window's hit rate over what independent
  hits would give, p (1 - p) / (H K). Hits within one forecast are correlated (a bias at step 3
  persists at step 4), so a window of m hit indicators carries the information of about
  m / design_effect independent ones. The coverage rule alarms when the window's coverage is
  outside the two-sided binomial band (default 99.9%) around the nominal level for that
  effective count. Forecasts made on different days are taken as independent, which they are
  not quite (weather and markets have regimes that last days), hence the wide default band:
  at 99% the replay of Weather's validation weeks alarmed on 2 of 35 clean days, at 99.9% on
  none (`benchmarks/monitoring.py --part validation`).

The skill rule needs no reference: 1 - sum |e| / sum |e_last| over the window, where e_last is
the error of repeating the last actual known at the forecast's as_of; below 0 the model is
worse than that naive forecast over the window. Below 0 means below -`SKILL_TOLERANCE`: a
champion that is the last-value baseline forecasts in float32 and lands within round-off of 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REFERENCE_VERSION = 1
REFERENCE_ARTIFACT = "monitoring/reference.json"
"""Where a training run logs its model's reference (an artifact of the run)."""
SKILL_TOLERANCE = 1e-3
"""How far below 0 the skill must be to alarm (0.1% of the naive forecast's error)."""


@dataclass(frozen=True)
class MonitoringReference:
    """What a model's validation windows say its monitored forecasts should look like.

    Attributes:
        targets: the target columns, in the model's order.
        mae_by_step: (horizon, targets) mean absolute validation residual, scaled units.
        ratio_sd: the standard deviation of one validation window's MAE ratio.
        coverage: validation coverage of each level (by level name, '80').
        design_effect: each level's variance inflation of a window's hit rate (>= 1).
        windows: the validation windows behind it.
    """

    targets: tuple[str, ...]
    mae_by_step: np.ndarray
    ratio_sd: float
    coverage: dict[str, float] = field(default_factory=dict)
    design_effect: dict[str, float] = field(default_factory=dict)
    windows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": REFERENCE_VERSION,
            "targets": list(self.targets),
            "mae_by_step": self.mae_by_step.tolist(),
            "ratio_sd": self.ratio_sd,
            "coverage": dict(self.coverage),
            "design_effect": dict(self.design_effect),
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> MonitoringReference:
        return cls(
            targets=tuple(document["targets"]),
            mae_by_step=np.asarray(document["mae_by_step"], dtype="float64"),
            ratio_sd=float(document["ratio_sd"]),
            coverage={str(key): float(value) for key, value in document["coverage"].items()},
            design_effect={
                str(key): float(value) for key, value in document["design_effect"].items()
            },
            windows=int(document["windows"]),
        )

    @property
    def horizon(self) -> int:
        return int(self.mae_by_step.shape[0])


def monitoring_reference(
    actual: np.ndarray,
    forecast: np.ndarray,
    targets: Sequence[str],
    bounds: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> MonitoringReference:
    """The reference of (windows, horizon, targets) scaled validation actuals and forecasts,
    and of each level's (lower, upper) bounds of the same shape (none: a model without
    intervals).

    Raises:
        ValueError: fewer than 2 windows, or shapes that do not match.
    """
    actual, forecast = np.asarray(actual, "float64"), np.asarray(forecast, "float64")
    if actual.shape != forecast.shape or actual.ndim != 3 or len(actual) < 2:
        raise ValueError(
            f"expected two equal (windows >= 2, horizon, targets) arrays, got "
            f"{actual.shape} and {forecast.shape}"
        )
    errors = np.abs(actual - forecast)
    mae_by_step = errors.mean(axis=0)
    expected = mae_by_step.sum()
    ratios = errors.sum(axis=(1, 2)) / expected if expected > 0 else np.ones(len(errors))
    coverage, design_effect = {}, {}
    cells = actual.shape[1] * actual.shape[2]
    for name, (lower, upper) in (bounds or {}).items():
        hits = (actual >= lower) & (actual <= upper)
        share = float(hits.mean())
        coverage[name] = share
        independent = share * (1 - share) / cells
        observed = float(hits.mean(axis=(1, 2)).var(ddof=1))
        design_effect[name] = max(1.0, observed / independent) if independent > 0 else 1.0
    return MonitoringReference(
        targets=tuple(targets),
        mae_by_step=mae_by_step,
        ratio_sd=float(ratios.std(ddof=1)),
        coverage=coverage,
        design_effect=design_effect,
        windows=len(actual),
    )


@dataclass(frozen=True)
class AlarmRules:
    """The settings of the rules (`monitor.*` in the config schema)."""

    window: int = 7
    mae_factor: float = 1.1
    mae_sigmas: float = 3.0
    coverage_band: float = 0.999


@dataclass(frozen=True)
class Alarm:
    """One broken rule: its name and the numbers behind it."""

    rule: str
    detail: str


@dataclass(frozen=True)
class WindowStatus:
    """The rules checked on the forecasts of a window of as_of times.

    Attributes:
        forecasts: as_of times in the window.
        rows: scored rows (series, as_of, step, target) in it.
        mae: mean absolute error, original units.
        mae_ratio: sum |e| / the reference's sum over the same cells (scaled units).
        mae_threshold: the ratio above which the MAE rule alarms.
        skill_vs_last: 1 - MAE / MAE of the last-value forecast (scaled units).
        coverage: level name -> (coverage, lower edge, upper edge of the band).
        alarms: the rules broken.
    """

    forecasts: int
    rows: int
    mae: float
    mae_ratio: float
    mae_threshold: float
    skill_vs_last: float
    coverage: dict[str, tuple[float, float, float]]
    alarms: tuple[Alarm, ...]


def binomial_band(level: float, count: float, probability: float) -> tuple[float, float]:
    """The central `level` band of a binomial share of `count` trials (floored to a whole
    number, at least 1) at success probability `probability`."""
    from scipy.stats import binom

    trials = max(1, math.floor(count))
    tail = (1 - level) / 2
    low = float(binom.ppf(tail, trials, probability))
    high = float(binom.isf(tail, trials, probability))
    return low / trials, high / trials


def skill_against(error: float, naive_error: float) -> float:
    """1 - error / naive_error; when the naive forecast was exact on every row the model can
    only tie (0) or lose (-inf)."""
    if naive_error > 0:
        return 1 - error / naive_error
    return 0.0 if error == 0 else -math.inf


def mae_threshold(rules: AlarmRules, ratio_sd: float, forecasts: float) -> float:
    """The MAE ratio above which a window of `forecasts` forecasts alarms (a forecast whose
    horizon has partly passed counts as a fraction)."""
    return max(rules.mae_factor, 1 + rules.mae_sigmas * ratio_sd / math.sqrt(forecasts))


def check_window(
    *,
    steps: np.ndarray,
    target_index: np.ndarray,
    forecast_index: np.ndarray,
    abs_error: np.ndarray,
    abs_error_scaled: np.ndarray,
    last_abs_error_scaled: np.ndarray,
    hits: Mapping[str, np.ndarray],
    reference: MonitoringReference,
    rules: AlarmRules,
    forecast_weight: np.ndarray | None = None,
) -> WindowStatus:
    """The rules on one window's scored rows (1-based `steps`, the targets' positions in the
    reference, each row's forecast, 0 the oldest, errors, and hits per level name); levels the
    reference lacks are reported but not checked. `forecast_weight`: each forecast's share of
    its whole horizon's reference error that has been scored (default: every forecast whole).

    The MAE rule is checked on the last 1, 2, ..., n forecasts of the window, each against its
    own threshold: the shortest catches a sudden change within a day, the longest a slow drift
    that no single forecast shows. The status reports the whole window's ratio.

    Raises:
        ValueError: no rows, or a step beyond the reference's horizon.
    """
    if len(steps) == 0:
        raise ValueError("a window with no scored rows")
    if steps.max() > reference.horizon or steps.min() < 1:
        raise ValueError(f"steps outside 1..{reference.horizon}")
    forecasts = int(forecast_index.max()) + 1
    # Rows without a finite error (a forecast or bound the model left NaN) say nothing.
    known = np.isfinite(abs_error_scaled)
    cells = reference.mae_by_step[steps - 1, target_index]
    expected_by_forecast = np.bincount(forecast_index[known], cells[known], minlength=forecasts)
    observed_by_forecast = np.bincount(
        forecast_index[known], abs_error_scaled[known], minlength=forecasts
    )
    expected, observed = (
        np.cumsum(expected_by_forecast[::-1]),
        np.cumsum(observed_by_forecast[::-1]),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        trailing = np.where(expected > 0, observed / expected, np.where(observed > 0, np.inf, 1.0))
    # A forecast whose horizon has only begun to pass counts as the share of its reference
    # error that has arrived: its few steps are noisier than a whole forecast, so the
    # threshold of a window holding it is that of fewer forecasts.
    weights = np.ones(forecasts) if forecast_weight is None else np.asarray(forecast_weight)
    counts = np.maximum(np.cumsum(weights[::-1]), 1e-9)
    thresholds = np.array([mae_threshold(rules, reference.ratio_sd, count) for count in counts])
    ratio, threshold = float(trailing[-1]), float(thresholds[-1])
    alarms = []
    worst = int(np.argmax(trailing / thresholds))
    if trailing[worst] > thresholds[worst]:
        alarms.append(
            Alarm(
                "mae",
                f"MAE ratio {trailing[worst]:.3f} to the validation reference over the last "
                f"{worst + 1} forecasts, above the threshold {thresholds[worst]:.3f} (the larger "
                f"of {rules.mae_factor:g} and 1 + {rules.mae_sigmas:g} x "
                f"{reference.ratio_sd:.3f} / sqrt({counts[worst]:.3g}))",
            )
        )
    paired = known & np.isfinite(last_abs_error_scaled)
    naive = float(last_abs_error_scaled[paired].sum())
    model = float(abs_error_scaled[paired].sum())
    skill = skill_against(model, naive)
    if skill < -SKILL_TOLERANCE:
        alarms.append(
            Alarm(
                "skill",
                f"skill against the last value {skill:.3f} over {forecasts} forecasts "
                f"({len(steps)} rows): worse than repeating the last actual",
            )
        )
    coverage = {}
    for name, hit in sorted(hits.items(), key=lambda item: float(item[0])):
        share = float(np.mean(hit))
        if name not in reference.design_effect:
            coverage[name] = (share, math.nan, math.nan)
            continue
        effective = len(hit) / reference.design_effect[name]
        low, high = binomial_band(rules.coverage_band, effective, float(name) / 100)
        coverage[name] = (share, low, high)
        if not low <= share <= high:
            alarms.append(
                Alarm(
                    f"coverage_{name}",
                    f"coverage of the {name}% interval {share:.3f} over {len(hit)} rows, "
                    f"outside the binomial {rules.coverage_band:.0%} band [{low:.3f}, "
                    f"{high:.3f}] of {math.floor(effective)} effective trials (design effect "
                    f"{reference.design_effect[name]:.2f})",
                )
            )
    return WindowStatus(
        forecasts=forecasts,
        rows=len(steps),
        mae=float(np.mean(abs_error)),
        mae_ratio=ratio,
        mae_threshold=threshold,
        skill_vs_last=skill,
        coverage=coverage,
        alarms=tuple(alarms),
    )
