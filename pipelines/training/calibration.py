"""Forecast intervals of a trained model: calibrated on its validation residuals, scored on the
validation and test windows in original units. No fitting, no MLflow.

The calibration is split conformal (`pipelines.runtime.intervals`) on the validation part, which
early stopping watched but the weights never trained on; the logged model carries it, so the
intervals scored here are those the model forecasts. Validation scores measure the calibration
on its own residuals (close to nominal by construction); the test part is the honest check.

`rolling_calibration` is the adaptive scheme beside it (`intervals.update: rolling`): every
`rolling_every` test windows the calibration is recomputed, per step, from the last
`rolling_window` residuals whose actuals are known at that forecast origin (validation ones at
first, then test ones as they arrive), as a job that forecasts daily and learns each day's
actuals can. The static calibration is scored beside it (`test_static`).

CRPS is the quantile-averaged CRPS over `CRPS_QUANTILES` (0.05, 0.10, ..., 0.95, the levels
ProbTS averages), each quantile the point forecast plus its conformal offset.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, get_args

import numpy as np

from pipelines.config.schema import ROLLING_FEEDBACK_BY, FeedbackGrouping, IntervalConfig
from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.intervals import (
    QUANTILE_GRID,
    Calibration,
    calibrate,
    calibrate_quantile_head,
    interval_quantiles,
    level_name,
)
from pipelines.runtime.monitoring import MonitoringReference, monitoring_reference
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
    head: tuple[np.ndarray, tuple[float, ...]] | None = None,
) -> Calibration | None:
    """The calibration of the validation residuals, or with `head` (a quantile head's
    (windows, horizon, K, T) forecasts and their levels) its CQR; None when intervals are off
    or the windows are too few for a level (noted and warned: the model then forecasts
    points)."""
    if settings.calibration == "none" or not settings.levels:
        return None
    per_series = series_ids if settings.calibration == "per_series" else None
    if head is None:
        calibration = calibrate(actual_scaled - forecast_scaled, per_series, source="validation")
    else:
        calibration = calibrate_quantile_head(actual_scaled, *head, per_series)
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


REFERENCE_LEVELS = (50.0, 80.0, 90.0, 95.0, 99.0)
"""Levels whose hit correlation a monitoring reference keeps besides `intervals.levels` (those
the calibration has residuals for), so a forecast at another common level is watched too."""


def validation_reference(
    settings: IntervalConfig,
    calibration: Calibration | None,
    actual_scaled: np.ndarray,
    forecast_scaled: np.ndarray,
    series_ids: np.ndarray,
    targets: tuple[str, ...],
    head: tuple[np.ndarray, tuple[float, ...]] | None = None,
) -> MonitoringReference | None:
    """The monitoring reference of the validation windows (`pipelines.runtime.monitoring`):
    errors per step and target, and each level's hits under the model's calibration; None with
    fewer than 2 windows (no spread to measure: `monitor` then checks no rule for the model)."""
    if len(actual_scaled) < 2:
        return None
    bounds = {}
    if calibration is not None:
        for level in sorted(set(settings.levels) | set(REFERENCE_LEVELS)):
            quantiles = list(interval_quantiles(level))
            if calibration.missing(quantiles):
                continue
            lower, upper = calibration.bounds(
                quantiles, forecast_scaled, series_ids, head and head[0]
            )
            bounds[level_name(level)] = (lower, upper)
    return monitoring_reference(actual_scaled, forecast_scaled, targets, bounds)


def rolling_calibration(
    residuals: np.ndarray,
    starts: np.ndarray,
    series_ids: np.ndarray,
    first: np.ndarray,
    window: int,
    every: int,
    feedback: float = 0.0,
    levels: tuple[float, ...] = (),
    *,
    feedback_by: str = ROLLING_FEEDBACK_BY,
    delay_scaled: bool = True,
    span: int | None = None,
    head: np.ndarray | None = None,
    head_quantiles: tuple[float, ...] = (),
) -> tuple[Calibration, np.ndarray]:
    """The rolling recalibration of the windows marked `first` and after (the test part).

    Each series is recalibrated on its own residuals, in time order: at every `every`-th
    forecast window of it, each step h is calibrated on the last `window` residuals of step h
    known at that window's origin (their targets at or before it: starts s' with s' + h <= s),
    as many as are known when fewer are; with `span` > `window`, `window` residuals spread
    evenly over the last `span` known. One calibration group per (series, recalibration).

    With `feedback` > 0, each series' intervals are also widened or narrowed by a factor c
    around their median (offsets m + c (o - m), so quantiles never cross) that learns from the
    misses of its own earlier forecast windows as their actuals arrive, as adaptive conformal
    inference does with the miss rate (Gibbs and Candès 2021): at each recalibration,
    log c += rate x the mean over `levels` of (share of the newly known values outside the
    interval - (1 - L / 100)). log c moves by the summed excess, so while c stays bounded the
    excess averaged over recalibrations tends to 0 (each recalibration counts once, however
    many values it learnt from), whatever the residuals' drift.

    A step-h value is known ceil(h / every) recalibrations after its forecast at the soonest, so
    the misses a change of c causes show that many recalibrations late; a feedback loop that
    keeps its rate whatever the delay overshoots (at H=720 on Weather's test part, bands five
    times too wide). rate = feedback / ceil(H / every), the last step's delay, keeps rate x
    delay constant: the full rate while the whole horizon is known within one recalibration
    (H <= every), a fifth of it at H=720 recalibrated daily (every=144).

    `feedback_by` groups the steps that share a factor: `shared` (one per series, at the last
    step's rate), `delay` (one per delay: the steps whose values are known the same number of
    recalibrations after their forecast, each group at its own delay's rate) or `step` (one
    per step, at its own). A shared factor pulls the coverage over every step to nominal, but a
    step whose residuals drift apart from the others' stays off; its rolling window ends h rows
    before the origin, so under a change of volatility the far steps lag the near ones. At
    H <= every the delay groups are the shared factor. `delay_scaled=False` (the full rate) is
    session 17's overshooting variant, kept for `benchmarks/rolling_window.py`.

    `span` reaches further back than `window`: the residuals of a long step are correlated over
    about h consecutive windows, so the last 2016 windows hold about 2016 / h independent ones
    (21 at H=96, under 3 at H=720) and their quantiles swing from day to day; spread over a
    span of a fixed number of horizons, they hold as many at every H. On Weather's validation
    replays (`benchmarks/README.md`) a span of 21 horizons with one shared factor kept the
    worst step nearest nominal at H=336 and H=720 together (3.1 and 2.7 points, against 3.5 and
    3.1 for the last 2016 windows with the delay groups), with narrower bands.

    With `head` (a quantile head's forecasts minus the point forecast, (windows, horizon, K,
    targets), at `head_quantiles`) each recalibration is the head's CQR on the same known
    windows (`calibrate_quantile_head`; a residual is the value minus the point forecast, so
    the corrections are those of the values themselves); the feedback factor, which scales
    residual offsets, is refused with it.

    Args:
        residuals: (windows, horizon, targets) scaled residuals of every window, calibration
            windows (validation) and forecast windows (test) alike.
        starts: each window's first row, on one row axis per series (rows one step apart).
        series_ids: each window's series.
        first: True for the windows to forecast (the rest only calibrate).
        window: residuals per step behind each recalibration.
        span: the known windows they are spread over (default: `window`, the last ones).
        every: forecast windows between recalibrations.
        feedback: the rate at which misses move the width factor (0: none).
        levels: the interval levels whose misses the factor learns from (with `feedback`).

    Returns:
        The calibration, and the group of each forecast window (in `residuals`' order among
        those marked `first`), to pass where `quantile_offsets` wants series ids.

    Raises:
        DataValidationError: a recalibration with no known residual for some step.
        ValueError: feedback with a quantile head.
    """
    if head is not None and feedback > 0:
        raise ValueError(
            "rolling calibration: the feedback factor scales residual offsets, not CQR"
        )
    ids = np.asarray(series_ids).astype(str)
    horizon = residuals.shape[1]
    steps = np.arange(1, horizon + 1)
    groups: list[Calibration] = []
    group_of = np.empty(len(residuals), dtype=object)
    quantiles = [q for level in levels for q in interval_quantiles(level)]
    for series in sorted(set(ids[first].tolist())):
        members = np.flatnonzero(ids == series)
        members = members[np.argsort(starts[members], kind="stable")]
        series_starts = starts[members]
        targets_from = np.flatnonzero(first[members])
        origins = targets_from[::every]
        factor_groups = feedback_groups(horizon, every, feedback_by)
        tracker = _MissTracker(
            residuals[members[targets_from]],
            series_starts[targets_from],
            series_starts[origins],
            every,
            levels,
            factor_groups,
            feedback * feedback_rates(factor_groups, every, delay_scaled),
        )
        for block, origin in enumerate(origins):
            known = np.searchsorted(series_starts, series_starts[origin] - steps, side="right")
            count = min(max(window, span or 0), int(known.min()))
            if count < 1:
                raise DataValidationError(
                    f"rolling calibration: no residual of step {int(steps[known.argmin()])} "
                    f"is known at the first forecast of series {series!r}"
                )
            spread = np.linspace(0, count - 1, min(window, count)).round().astype("int64")
            rows = members[known[np.newaxis, :] - count + spread[:, np.newaxis]]
            name = f"{series}#{block}"
            if head is None:
                group = calibrate(residuals[rows, steps - 1], source="rolling")
            else:
                group = calibrate_quantile_head(
                    residuals[rows, steps - 1],
                    head[rows, steps - 1],
                    head_quantiles,
                    source="rolling",
                )
            group = replace(group, series_ids=(name,))
            if feedback > 0 and levels:
                group = _widened(group, np.exp(tracker.excess_misses(block)))
                tracker.applied.append(group.quantile_offsets(quantiles, np.array([name]))[:, 0])
            groups.append(group)
            covered = targets_from[block * every : (block + 1) * every]
            group_of[members[covered]] = name
    names = tuple(group.series_ids[0] for group in groups)
    order = np.argsort(names)
    calibration = Calibration(
        offsets=np.concatenate([groups[i].offsets for i in order]),
        windows=np.concatenate([groups[i].windows for i in order]),
        series_ids=tuple(names[i] for i in order),
        source="rolling",
        head_quantiles=tuple(head_quantiles) if head is not None else (),
    )
    return calibration, group_of[first].astype(str)


FEEDBACK_BY = get_args(FeedbackGrouping)


def feedback_groups(horizon: int, every: int, feedback_by: str) -> np.ndarray:
    """Each step's width factor (0-based): all steps share one (`shared`), steps share one per
    delay ceil(h / every) (`delay`: the steps known at the same recalibration after their
    forecast), or every step has its own (`step`)."""
    steps = np.arange(1, horizon + 1)
    if feedback_by == "shared":
        return np.zeros(horizon, dtype="int64")
    if feedback_by == "delay":
        return (np.ceil(steps / every) - 1).astype("int64")
    if feedback_by == "step":
        return steps - 1
    raise ValueError(f"feedback_by: one of {', '.join(FEEDBACK_BY)}, not {feedback_by!r}")


def feedback_rates(groups: np.ndarray, every: int, delay_scaled: bool) -> np.ndarray:
    """The feedback rate of each width factor of `groups` (`feedback_groups`, one per step) per
    unit of `rolling_feedback`: one over the recalibrations its last step's value takes to be
    known (ceil(h / every)), or 1 without `delay_scaled`."""
    if not delay_scaled:
        return np.ones(groups.max() + 1)
    last_steps = np.zeros(groups.max() + 1)
    np.maximum.at(last_steps, groups, np.arange(1, len(groups) + 1))
    return 1.0 / np.ceil(last_steps / every)


class _MissTracker:
    """The running log width factors (one per group of steps, `feedback_groups`) of one
    series' rolling recalibrations, learning from the misses of its forecast windows as their
    actuals arrive (`rolling_calibration`)."""

    def __init__(
        self,
        residuals: np.ndarray,
        starts: np.ndarray,
        origin_starts: np.ndarray,
        every: int,
        levels: tuple[float, ...],
        groups: np.ndarray,
        rates: np.ndarray,
    ) -> None:
        self.residuals, self.every, self.levels = residuals, every, levels
        self.groups, self.rates = groups, rates
        horizon = residuals.shape[1]
        steps = np.arange(1, horizon + 1)
        # The recalibration at which the actual of (window, step) is first known.
        known_at = np.searchsorted(origin_starts, starts[:, None] + steps[None, :], side="left")
        order = np.argsort(known_at, axis=None, kind="stable")
        self.pairs = np.unravel_index(order, known_at.shape)
        self.bounds = np.searchsorted(known_at.ravel()[order], np.arange(len(origin_starts) + 1))
        self.applied: list[np.ndarray] = []  # per recalibration: (2 x levels, horizon, targets)
        self.log_factor = np.zeros(len(rates))

    def excess_misses(self, block: int) -> np.ndarray:
        """Each step's log factor after the misses newly known at recalibration `block`: its
        group's, moved by the mean over levels and over the group's newly known values of
        their miss rate above the nominal one, times the group's rate."""
        selected = slice(self.bounds[block], self.bounds[block + 1])
        windows, steps = self.pairs[0][selected], self.pairs[1][selected]
        if len(windows):
            values = self.residuals[windows, steps]  # (pairs, targets)
            bounds = np.stack(self.applied)[windows // self.every, :, steps]  # (pairs, 2L, T)
            excess = np.mean(
                [
                    np.mean((values < bounds[:, 2 * i]) | (values > bounds[:, 2 * i + 1]), axis=1)
                    - (1 - level / 100)
                    for i, level in enumerate(self.levels)
                ],
                axis=0,
            )  # (pairs,)
            groups = self.groups[steps]
            counts = np.bincount(groups, minlength=len(self.rates))
            sums = np.bincount(groups, weights=excess, minlength=len(self.rates))
            known = counts > 0
            self.log_factor[known] += self.rates[known] * sums[known] / counts[known]
        return self.log_factor[self.groups]


def _widened(calibration: Calibration, factors: np.ndarray) -> Calibration:
    """Every offset of step h moved `factors[h]` times as far from the median's (never
    crossing)."""
    median = calibration.offsets[:, [int(np.argmin(np.abs(QUANTILE_GRID - 0.5)))]]
    scale = np.asarray(factors)[None, None, :, None]
    return replace(calibration, offsets=median + scale * (calibration.offsets - median))


def interval_evaluations(
    settings: IntervalConfig,
    calibration: Calibration | None,
    forecasts: dict[str, np.ndarray],
    actuals: dict[str, Any],
    starts: dict[str, np.ndarray],
    scaler: FittedScaler,
    targets: tuple[str, ...],
    notes: list[str],
    heads: dict[str, np.ndarray] | None = None,
) -> dict[str, IntervalEvaluation]:
    """The validation and test parts scored with the calibration (`heads`: each part's
    quantile-head forecasts, for a CQR calibration); with `update: rolling` the test part
    recalibrated as its actuals arrive (`rolling_calibration`), and scored with the static
    calibration as `test_static` (a recalibration with too few known residuals for a level
    leaves the rolling update out: noted and warned). Empty without a calibration."""
    if calibration is None:
        return {}

    def scored(part: str, used: Calibration, groups: np.ndarray | None = None) -> Any:
        actual = actuals[part]
        return evaluate_intervals(
            used,
            settings.levels,
            forecasts[part],
            actual.scaled,
            actual.original,
            actual.series_ids,
            scaler,
            targets,
            groups,
            None if heads is None else heads[part],
        )

    result = {part: scored(part, calibration) for part in ("validation", "test")}
    if settings.update == "rolling":
        try:
            rolling, groups = rolling_test_calibration(
                settings, forecasts, actuals, starts, heads, calibration.head_quantiles
            )
        except DataValidationError as error:  # a series with test windows but no residuals
            notes.append(f"rolling update left out: {error}")
            warnings.warn(notes[-1], stacklevel=2)
            return result
        quantiles = [q for level in settings.levels for q in interval_quantiles(level)]
        if rolling.missing(quantiles):
            notes.append(
                f"rolling update left out: a recalibration rests on {int(rolling.windows.min())} "
                f"known residuals, too few for level {level_name(max(settings.levels))}"
            )
            warnings.warn(notes[-1], stacklevel=2)
            return result
        result["test_static"] = result["test"]
        result["test"] = scored("test", rolling, groups)
    return result


def rolling_test_calibration(
    settings: IntervalConfig,
    forecasts: dict[str, np.ndarray],
    actuals: dict[str, Any],
    starts: dict[str, np.ndarray],
    heads: dict[str, np.ndarray] | None = None,
    head_quantiles: tuple[float, ...] = (),
) -> tuple[Calibration, np.ndarray]:
    """`rolling_calibration` of the test windows on the validation then test residuals (and
    a quantile head's `heads`, for CQR), with the settings' window and cadence: the
    calibration and each test window's group."""
    parts = ("validation", "test")
    head = None
    if heads is not None:
        head = np.concatenate([heads[part] - forecasts[part][:, :, None] for part in parts])
    return rolling_calibration(
        np.concatenate([actuals[part].scaled - forecasts[part] for part in parts]),
        np.concatenate([starts[part] for part in parts]),
        np.concatenate([actuals[part].series_ids for part in parts]),
        np.concatenate([np.full(len(starts[part]), part == "test") for part in parts]),
        settings.rolling_window,
        settings.rolling_every,
        settings.rolling_feedback,
        settings.levels,
        feedback_by=settings.rolling_feedback_by,
        span=settings.rolling_horizons * forecasts["test"].shape[1],
        head=head,
        head_quantiles=head_quantiles,
    )


def evaluate_intervals(
    calibration: Calibration,
    levels: tuple[float, ...],
    forecast_scaled: np.ndarray,
    actual_scaled: np.ndarray,
    actual_original: np.ndarray,
    series_ids: np.ndarray,
    scaler: FittedScaler,
    targets: tuple[str, ...],
    groups: np.ndarray | None = None,
    head: np.ndarray | None = None,
) -> IntervalEvaluation:
    """Coverage, width and Winkler score per level, and the CRPS, of one part's windows; widths
    and CRPS also in scaled units. `groups`: each window's calibration group where it is not its
    series (`rolling_calibration`'s); `head`: the quantile head's forecasts of a CQR
    calibration (`Calibration.bounds`).

    Every score is a mean over windows, so the windows are scored in blocks of about
    `SCORED_VALUES` values and the block means weighted by their windows: memory stays flat
    whatever the part's size (Weather at H=720 has 150 million values per bound)."""
    windows = _Windows(
        forecast_scaled,
        actual_scaled,
        actual_original,
        series_ids,
        series_ids if groups is None else groups,
        head,
    )
    block = max(1, SCORED_VALUES // max(1, int(np.prod(forecast_scaled.shape[1:]))))
    total = len(forecast_scaled)
    with_crps = not calibration.missing(list(CRPS_QUANTILES))
    sums: dict[tuple[str, str], Any] = {}
    for first in range(0, total, block):
        scores = _block_scores(
            calibration, levels, windows.rows(first, first + block), scaler, targets, with_crps
        )
        weight = (min(total, first + block) - first) / total
        for key, value in scores.items():
            sums[key] = sums.get(key, 0.0) + weight * value
    result = IntervalEvaluation()
    for level in levels:
        name = level_name(level)
        result.coverage[name] = float(sums[("coverage", name)])
        result.width[name] = float(sums[("width", name)])
        result.width_scaled[name] = float(sums[("width_scaled", name)])
        result.interval_score[name] = float(sums[("interval_score", name)])
        result.coverage_by_step[name] = sums[("coverage_by_step", name)]
    if with_crps:
        result.crps_scaled = float(2 * sums[("pinball", "scaled")] / len(CRPS_QUANTILES))
        result.crps = float(2 * sums[("pinball", "original")] / len(CRPS_QUANTILES))
    return result


SCORED_VALUES = 4_000_000
"""About how many values `evaluate_intervals` scores at once (a bound's block: 32 MB)."""


@dataclass
class _Windows:
    """One part's windows as `evaluate_intervals` scores them (see its arguments)."""

    forecast_scaled: np.ndarray
    actual_scaled: np.ndarray
    actual_original: np.ndarray
    series_ids: np.ndarray
    groups: np.ndarray
    head: np.ndarray | None

    def rows(self, first: int, stop: int) -> _Windows:
        """The windows first to stop - 1."""
        part = slice(first, stop)
        return _Windows(
            self.forecast_scaled[part],
            self.actual_scaled[part],
            self.actual_original[part],
            self.series_ids[part],
            self.groups[part],
            None if self.head is None else self.head[part],
        )


def _block_scores(
    calibration: Calibration,
    levels: tuple[float, ...],
    windows: _Windows,
    scaler: FittedScaler,
    targets: tuple[str, ...],
    with_crps: bool,
) -> dict[tuple[str, str], Any]:
    """The mean scores of one block of windows, keyed (score, level name)."""
    forecast, series_ids = windows.forecast_scaled, windows.series_ids
    actual_scaled, actual_original = windows.actual_scaled, windows.actual_original

    def bounds(quantiles: list[float]) -> np.ndarray:
        return calibration.bounds(quantiles, forecast, windows.groups, windows.head)

    def bound(quantile: float) -> tuple[np.ndarray, np.ndarray]:
        scaled = bounds([quantile])[0]
        return scaled, scaler.inverse_transform(scaled, series_ids, targets)

    # The levels' bounds asked together, as a forecast asks them (a CQR's are sorted across).
    quantiles = [q for level in levels for q in interval_quantiles(level)]
    scaled_bounds = bounds(quantiles)
    scores: dict[tuple[str, str], Any] = {}
    for index, level in enumerate(levels):
        name = level_name(level)
        lower_scaled, upper_scaled = scaled_bounds[2 * index], scaled_bounds[2 * index + 1]
        lower, upper = (
            scaler.inverse_transform(value, series_ids, targets)
            for value in (lower_scaled, upper_scaled)
        )
        # Coverage is counted where the calibration was made: the scaler is increasing, so
        # inside in scaled units is inside in original ones, but not after round-off. A
        # zero-width interval on an exact forecast (a repeated value, a dry day's 0 mm of
        # rain) inverse-transformed lands 1e-7 off the actual and would count as a miss.
        scores["coverage", name] = interval_metrics.coverage(
            actual_scaled, lower_scaled, upper_scaled
        )
        scores["width", name] = interval_metrics.width(lower, upper)
        scores["width_scaled", name] = interval_metrics.width(lower_scaled, upper_scaled)
        scores["interval_score", name] = interval_metrics.interval_score(
            actual_original, lower, upper, level=level
        )
        scores["coverage_by_step", name] = interval_metrics.coverage(
            actual_scaled, lower_scaled, upper_scaled, per_step=True
        )
    if with_crps:
        losses = np.zeros(2)
        for quantile in CRPS_QUANTILES:
            for index, (actual, value) in enumerate(
                zip((actual_scaled, actual_original), bound(quantile), strict=True)
            ):
                losses[index] += interval_metrics.pinball_loss(actual, value[None], [quantile])
        scores["pinball", "scaled"], scores["pinball", "original"] = losses
    return scores
