"""Rolling-origin backtest: train on the data up to each origin, forecast the horizon after it.

The same steps as `train`, once per fold: `prepare` (validation, features, split, scaler)
reads the source with every row after the fold's origin removed before anything looks at it;
`fit_model` trains the zoo model with early stopping on the last `validation_fraction` of those
rows; the forecast's inputs are the last `input_width` rows of each series up to the origin, as
`load_history` validates them for a forecast made at that time. Nothing a fold fits or reads
to forecast ever held a row after its origin: leak-free by construction, not by care.

Each fit forecasts through the pyfunc model that `train` would log for it
(`pipelines.runtime.forecaster.ForecastModel`, assembled in memory from the same parts): the
same input checks, scaling, Keras call and inverse scaling as `mlflow.pyfunc.load_model(...)
.predict`, so the errors scored (and any interval calibrated on them) are those of the code that
ships.

Only the actual values the forecasts are scored against come from the whole data set (validated
once). A series is scored in a fold when the readiness rule that every forecast path applies
(`pipelines.runtime.readiness`, cut at the origin) lets it be forecast, its history ends at the
origin, and the `horizon` rows after the origin are gap-free; the others are listed with their
reasons.

Decisions:
    - Folds are placed on the timeline of all series' timestamps: the last origin leaves
      exactly one horizon at the end, the others are `step` timeline steps before it.
    - Refit every k folds (`refit`, 0 = never): between refits the last fitted model and its
      scaler forecast from the newer history, as a deployed model would.
    - The naive baselines (`last`, `repeat`) run beside the models through the same path.
    - MASE is scaled by each series' in-sample naive error over its history up to the origin.
No MLflow here: `pipelines.tracking.backtest_run` logs a result, `pipelines.cli.backtest` runs it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models import zoo
from pipelines.config.schema import BacktestConfig, RunConfig
from pipelines.data.prepare import PrepareResult, load_history, resolve_widths
from pipelines.data.prepare import run as prepare_data
from pipelines.data.settings import DataConfig
from pipelines.runtime.contract import (
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
    epoch_nanoseconds,
)
from pipelines.runtime.forecaster import ForecastModel, forecast_spec
from pipelines.runtime.readiness import NotReady, unready_series
from pipelines.runtime.scaling import FittedScaler
from pipelines.runtime.windows import WindowSpec
from pipelines.settings import bad_value, format_utc_time
from pipelines.training import metrics as metric_functions
from pipelines.training.compare import model_configs
from pipelines.training.evaluation import BASELINES
from pipelines.training.train import FittedModel, fit_model, model_shape

SCORED_METRICS = ("mae", "mse", "rmse", "smape", "mape", "mase")
"""Metrics of every fold, each in scaled units and with `_original` in original units."""


@dataclass(frozen=True)
class Fold:
    """One origin of the backtest.

    Attributes:
        index: 0-based fold number (the `step` of its metrics in MLflow).
        origin: the last time the fold's models, scaler and inputs may see.
        training_start: the first time of a sliding window (None: from the start).
        refit: whether the models are trained again at this fold.
    """

    index: int
    origin: pd.Timestamp
    training_start: pd.Timestamp | None
    refit: bool


@dataclass
class FoldScore:
    """One model's forecasts of one fold, scored.

    Attributes:
        fold: the fold's index.
        origin: the fold's origin.
        series: series scored in the fold.
        metrics: `mae`, `mse`, ... in scaled units and `mae_original`, ... in original units.
        train_seconds: seconds of fitting at this fold (0 when it was not refitted).
        best_epoch: the epoch whose weights forecast (None for baselines).
    """

    fold: int
    origin: pd.Timestamp
    series: int
    metrics: dict[str, float]
    train_seconds: float
    best_epoch: int | None


@dataclass
class ModelBacktest:
    """Every fold of one model, and its forecasts in long format."""

    name: str
    hparams: dict[str, Any]
    scores: list[FoldScore] = field(default_factory=list)
    forecasts: list[pd.DataFrame] = field(default_factory=list)
    forecaster: ForecastModel | None = None  # the pyfunc of the latest refit, in memory

    def aggregate(self) -> dict[str, float]:
        """`mean_<metric>` and `std_<metric>` (sample spread, 0 for one fold) over the folds."""
        result: dict[str, float] = {}
        # A metric undefined in some fold (MASE of a constant history) averages the others.
        names = dict.fromkeys(name for score in self.scores for name in score.metrics)
        for name in names:
            values = np.array(
                [score.metrics[name] for score in self.scores if name in score.metrics]
            )
            result[f"mean_{name}"] = float(values.mean())
            result[f"std_{name}"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return result

    def forecast_frame(self) -> pd.DataFrame:
        """Every fold's forecasts: model, fold, origin, series_id, timestamp, step, target,
        forecast, actual (original units)."""
        return pd.concat(self.forecasts, ignore_index=True) if self.forecasts else pd.DataFrame()


@dataclass
class BacktestResult:
    """What a backtest produced: its folds and, per model, its scores and forecasts.

    `spec` and `data_summary` (`PrepareResult.summary`) are those of the last fold's training
    data: the settings every fold resolved to, up to the rows counted.
    """

    dataset: str
    spec: WindowSpec
    data_summary: dict[str, Any]
    folds: list[Fold]
    models: dict[str, ModelBacktest]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """One row per model: mean and spread of the scaled MAE and MSE and the original MAE,
        ordered by mean MAE."""
        rows = []
        for name, model in self.models.items():
            aggregate = model.aggregate()
            rows.append(
                {
                    "model": name,
                    "folds": len(model.scores),
                    "mean_mae": aggregate.get("mean_mae"),
                    "std_mae": aggregate.get("std_mae"),
                    "mean_mse": aggregate.get("mean_mse"),
                    "mean_mae_original": aggregate.get("mean_mae_original"),
                    "train_seconds": sum(score.train_seconds for score in model.scores),
                }
            )
        return pd.DataFrame(rows).sort_values("mean_mae", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Folds


def fold_origins(
    timeline: np.ndarray, settings: BacktestConfig, input_width: int, horizon: int
) -> list[int]:
    """Positions on the timeline (sorted unique epoch nanoseconds) of every fold's origin.

    Raises:
        ConfigError: a fold start outside the data, or more folds than the data holds.
    """
    minimum = input_width + horizon  # the first origin must leave room for a training window
    if settings.fold_starts is not None:
        starts = [pd.Timestamp(start).as_unit("ns") for start in settings.fold_starts]
        origins = [int(np.searchsorted(timeline, start.value, side="left")) - 1 for start in starts]
        last = len(timeline) - horizon - 1  # the last origin with one horizon after it
        for start, origin in zip(starts, origins, strict=True):
            if origin < minimum or origin > last:
                raise bad_value(
                    "backtest.fold_starts",
                    f"expected dates after {_utc(timeline[min(minimum, len(timeline) - 1)])} and "
                    f"up to {_utc(timeline[max(last + 1, 0)])} (the data, less one window of "
                    f"history before and one horizon after), got {start}",
                )
        if sorted(set(origins)) != origins:
            raise bad_value(
                "backtest.fold_starts",
                "expected dates in distinct steps of the data, got "
                + ", ".join(format_utc_time(start) for start in settings.fold_starts),
            )
        return origins
    step = settings.step or horizon
    last = len(timeline) - horizon - 1
    origins = [last - (settings.folds - 1 - k) * step for k in range(settings.folds)]
    if origins[0] < minimum:
        most = max((last - minimum) // step + 1, 0)
        raise bad_value(
            "backtest.folds",
            f"expected at most {most} folds of step {step} in {len(timeline)} steps of data "
            f"(each origin needs {minimum} steps before it), got {settings.folds}",
        )
    return origins


def _utc(nanoseconds: int) -> pd.Timestamp:
    return pd.Timestamp(int(nanoseconds), tz="UTC")


def plan_folds(timeline: np.ndarray, settings: BacktestConfig, origins: list[int]) -> list[Fold]:
    """The folds: origin times, sliding-window starts and which folds refit."""
    training_rows = settings.training_rows or origins[0] + 1
    folds = []
    for index, origin in enumerate(origins):
        start = None
        if settings.window == "sliding":
            start = _utc(timeline[max(origin - training_rows + 1, 0)])
        refit = index == 0 or (settings.refit > 0 and index % settings.refit == 0)
        folds.append(Fold(index, _utc(timeline[origin]), start, refit))
    return folds


# --------------------------------------------------------------------------------------------
# One fold's windows


@dataclass
class FoldWindows:
    """The forecast inputs and the actual values of one fold, one row per scored series."""

    series_ids: np.ndarray
    history: pd.DataFrame  # the scored series' last input_width rows up to the origin
    actual_scaled: np.ndarray  # (series, horizon, targets)
    actual_original: np.ndarray
    timestamps: np.ndarray  # (series, horizon) forecast times, UTC epoch nanoseconds
    mase_scale_scaled: np.ndarray | None  # (series, 1, targets)
    mase_scale_original: np.ndarray | None
    skipped: list[NotReady]  # series of the history that could not be scored, and why


NO_ACTUALS = "no_actuals"
ENDS_BEFORE_ORIGIN = "ends_before_origin"
"""Why a ready series is not scored in a fold, the backtest's own reasons beside the readiness
rule's: fewer than `horizon` gap-free rows after the origin, or a history that ends one step
before it (not stale, so a forecast would use it, but its forecast would not start at the
fold's first forecast time)."""


def fold_windows(
    history: pd.DataFrame,
    full: pd.DataFrame,
    origin: pd.Timestamp,
    spec: WindowSpec,
    scaler: FittedScaler,
    frequency: str,
) -> FoldWindows:
    """Inputs from `history` (rows up to the origin only) and actuals from `full`.

    A series is scored when the readiness rule (`pipelines.runtime.readiness`, with the origin as
    the cut) lets it be forecast, its history ends at the origin, and the `horizon` rows after
    the origin are gap-free; the others are listed with their reasons.

    Args:
        history: validated rows up to the origin, sorted by series and time.
        full: the whole validated data set, sorted by series and time.
        origin: the fold's origin.
        spec: widths, features and targets.
        scaler: the fitted scaler of the model that forecasts.
        frequency: the data's frequency.
    """
    width, horizon = spec.input_width, spec.horizon
    series = history[SERIES_COLUMN].astype(str).to_numpy()
    times = epoch_nanoseconds(history[TIMESTAMP_COLUMN])
    not_ready = unready_series(
        history,
        input_width=width,
        features=spec.features,
        frequency=frequency,
        as_of=origin,
        known_series=sorted(scaler.scalers) if scaler.per_series else None,
    )
    is_last = np.r_[series[1:] != series[:-1], True]
    ends = np.flatnonzero(is_last & ~np.isin(series, [item.series_id for item in not_ready]))
    firsts = ends - width + 1
    at_origin = times[ends] == origin.value
    keep = at_origin.copy()

    full_series = full[SERIES_COLUMN].astype(str).to_numpy()
    full_segments = full[SEGMENT_COLUMN].to_numpy()
    lookup = pd.MultiIndex.from_arrays([full_series, epoch_nanoseconds(full[TIMESTAMP_COLUMN])])
    positions = lookup.get_indexer(pd.MultiIndex.from_arrays([series[ends], times[ends]]))
    last_target = positions + horizon
    inside = (positions >= 0) & (last_target < len(full))
    safe = np.where(inside, last_target, 0)
    inside &= (full_series[safe] == series[ends]) & (
        full_segments[safe] == full_segments[np.maximum(positions, 0)]
    )
    keep &= inside
    no_actuals = [
        NotReady(name, NO_ACTUALS, f"fewer than {horizon} gap-free rows after the origin {origin}")
        if ends_at_origin
        else NotReady(
            name,
            ENDS_BEFORE_ORIGIN,
            f"its last row is at {_utc(last)}, one step before the origin {origin}",
        )
        for name, last, ends_at_origin in zip(
            series[ends[~keep]], times[ends[~keep]], at_origin[~keep], strict=True
        )
    ]
    ends, firsts, positions = ends[keep], firsts[keep], positions[keep]
    skipped = sorted([*not_ready, *no_actuals], key=lambda item: item.series_id)

    ids = series[ends]
    input_rows = firsts[:, np.newaxis] + np.arange(width)
    target_rows = positions[:, np.newaxis] + 1 + np.arange(horizon)
    shape = (len(ends), horizon, len(spec.targets))
    flat_targets = full.iloc[target_rows.ravel()]
    actual_scaled = scaler.transform(flat_targets, spec.targets)
    scales = _mase_scales(history, ids, spec, scaler)
    return FoldWindows(
        series_ids=ids,
        history=history.iloc[input_rows.ravel()].reset_index(drop=True),
        actual_scaled=actual_scaled.astype("float64").reshape(shape),
        actual_original=flat_targets[list(spec.targets)].to_numpy("float64").reshape(shape),
        timestamps=epoch_nanoseconds(full[TIMESTAMP_COLUMN])[target_rows],
        mase_scale_scaled=scales[0],
        mase_scale_original=scales[1],
        skipped=skipped,
    )


def _mase_scales(
    history: pd.DataFrame, ids: np.ndarray, spec: WindowSpec, scaler: FittedScaler
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each scored series' in-sample naive error over its history, in both units."""
    if not len(ids):
        return None, None
    rows = history[history[SERIES_COLUMN].astype(str).isin(ids)]
    groups = rows.groupby(rows[SERIES_COLUMN].astype(str), sort=False)
    result: list[np.ndarray | None] = []
    for scaled in (True, False):
        values = [
            scaler.transform(groups.get_group(sid), spec.targets)
            if scaled
            else groups.get_group(sid)[list(spec.targets)].to_numpy("float64")
            for sid in ids
        ]
        try:
            scale = metric_functions.seasonal_naive_scale(values)
        except ValueError:
            result.append(None)
            continue
        result.append(np.asarray(scale, dtype="float64").reshape(len(ids), 1, -1))
    return result[0], result[1]


def score(windows: FoldWindows, forecast: np.ndarray, forecast_original: np.ndarray) -> dict:
    """The fold's metrics in scaled units and, with `_original`, in original units."""
    metrics: dict[str, float] = {}
    for suffix, actual, predicted, scale in (
        ("", windows.actual_scaled, forecast, windows.mase_scale_scaled),
        ("_original", windows.actual_original, forecast_original, windows.mase_scale_original),
    ):
        values = metric_functions.evaluate(actual, predicted, mase_scale=scale)
        for name in SCORED_METRICS:
            if name in values:
                metrics[f"{name}{suffix}"] = float(values[name])
    return metrics


def forecast_rows(
    model: str, fold: Fold, windows: FoldWindows, forecast_original: np.ndarray, targets
) -> pd.DataFrame:
    """Long-format forecasts of one fold: one row per series, step and target."""
    count, horizon, target_count = forecast_original.shape
    repeat = horizon * target_count
    return pd.DataFrame(
        {
            "model": model,
            "fold": fold.index,
            "origin": fold.origin,
            SERIES_COLUMN: np.repeat(windows.series_ids, repeat),
            TIMESTAMP_COLUMN: pd.to_datetime(
                np.repeat(windows.timestamps.ravel(), target_count), utc=True
            ),
            "step": np.tile(np.repeat(np.arange(1, horizon + 1), target_count), count),
            "target": np.tile(np.asarray(targets), count * horizon),
            "forecast": forecast_original.ravel(),
            "actual": windows.actual_original.ravel(),
        }
    )


# --------------------------------------------------------------------------------------------
# The backtest


def backtest_models(config: RunConfig) -> dict[str, RunConfig]:
    """One config per model: `model.models`, then the baselines not among them."""
    names = tuple(dict.fromkeys((*config.model.models, *BASELINES)))
    with_baselines = config.model_copy(
        update={"model": config.model.model_copy(update={"models": names})}
    )
    return model_configs(with_baselines)


def _fold_data(data: DataConfig, fold: Fold, settings: BacktestConfig) -> PrepareResult:
    """The fold's prepared data: the source cut at its origin (and sliding-window start)."""
    try:
        return prepare_data(data, as_of=fold.origin, since=fold.training_start)
    except DataValidationError as error:
        raise _fold_error(fold, settings, error) from None


def _fold_error(fold: Fold, settings: BacktestConfig, error: Exception) -> DataValidationError:
    """A fold too short to train on, with the settings that decide its size."""
    return DataValidationError(
        f"backtest fold {fold.index} (origin {fold.origin}): {error}; the fold's rows are "
        f"split {1 - settings.validation_fraction:g}/{settings.validation_fraction:g} by "
        f"backtest.validation_fraction ({settings.window} window"
        + (f" of backtest.training_rows {settings.training_rows}" if fold.training_start else "")
        + "): use later origins, more training rows or a smaller data.input_width or horizon"
    )


def _forecaster(fitted: FittedModel, prepared: PrepareResult, name: str) -> ForecastModel:
    """The pyfunc model that `train` would log for this fit, in memory."""
    series_ids = pd.unique(prepared.frame[SERIES_COLUMN].astype(str)).tolist()
    metadata = forecast_spec(
        prepared.spec, prepared.scaler, prepared.summary["frequency"], name, series_ids
    )
    return ForecastModel.assembled(fitted.model, prepared.scaler, prepared.spec, metadata)


def forecast_original(
    forecaster: ForecastModel, windows: FoldWindows, spec: WindowSpec
) -> np.ndarray:
    """The pyfunc's forecasts of a fold's scored series, (series, horizon, targets), in
    original units and in the order of `windows.series_ids`."""
    forecast = forecaster.predict(None, windows.history)
    position = pd.Index(windows.series_ids).get_indexer(forecast[SERIES_COLUMN])
    order = np.lexsort((forecast[STEP_COLUMN].to_numpy(), position))
    values = forecast[list(spec.targets)].to_numpy("float64")[order]
    return values.reshape(len(windows.series_ids), spec.horizon, len(spec.targets))


def _unbuildable_baselines(
    configs: dict[str, RunConfig], config: RunConfig, spec: WindowSpec, notes: list[str]
) -> list[str]:
    """The baselines added beside the models that cannot be built for this window (`repeat`
    needs an input window at least one season long); each is noted."""
    dropped = []
    for name in BASELINES:
        if name not in configs or name in config.model.models:
            continue
        try:
            zoo.build_model(name, model_shape(spec), **configs[name].model.hparams_for())
        except ValueError as error:
            notes.append(f"baseline {name!r} left out: {error}")
            warnings.warn(notes[-1], stacklevel=3)
            dropped.append(name)
    return dropped


def run_backtest(config: RunConfig) -> BacktestResult:
    """Runs every fold for every model (see the module docstring); no MLflow.

    Raises:
        DataValidationError: the data cannot be read, or no series can be scored in a fold.
        ConfigError: folds that do not fit the data, or bad hyper-parameters.
    """
    settings = config.backtest
    if config.data.policy == "as_published":
        raise bad_value(
            "data.policy",
            "expected validate: a backtest places folds on a sorted, duplicate-free timeline, "
            "which the as_published policy does not promise, got 'as_published'",
        )
    input_width, horizon = resolve_widths(config.data)
    full = load_history(config.data)
    timeline = np.unique(epoch_nanoseconds(full.frame[TIMESTAMP_COLUMN]))
    folds = plan_folds(timeline, settings, fold_origins(timeline, settings, input_width, horizon))
    validation = settings.validation_fraction
    fold_data = config.data.model_copy(update={"split": f"{1 - validation:g},{validation:g},0"})
    configs = backtest_models(config)
    fitted: dict[str, FittedModel] = {}
    forecasters: dict[str, ForecastModel] = {}
    scaler: FittedScaler | None = None
    spec: WindowSpec | None = None
    data_summary: dict[str, Any] = {}
    results = {name: ModelBacktest(name, {}) for name in configs}
    notes: list[str] = []
    for fold in folds:
        if fold.refit:
            prepared = _fold_data(fold_data, fold, settings)
            scaler, spec, data_summary = prepared.scaler, prepared.spec, prepared.summary
            for name in _unbuildable_baselines(configs, config, spec, notes):
                del configs[name], results[name]
            for name, model_config in configs.items():
                try:
                    fitted[name] = fit_model(model_config, prepared)
                except DataValidationError as error:
                    raise _fold_error(fold, settings, error) from None
                results[name].hparams = fitted[name].hparams
                forecasters[name] = results[name].forecaster = _forecaster(
                    fitted[name], prepared, name
                )
        assert scaler is not None and spec is not None
        history = load_history(config.data, as_of=fold.origin).frame
        frequency = data_summary["frequency"]
        windows = fold_windows(history, full.frame, fold.origin, spec, scaler, frequency)
        if not len(windows.series_ids):
            raise DataValidationError(
                f"{full.origin}: fold {fold.index} (origin {fold.origin}): no series has "
                f"{input_width} gap-free rows up to the origin and {horizon} after it"
            )
        if windows.skipped:
            shown = [f"{item.series_id} ({item.reason})" for item in windows.skipped[:5]]
            more = " ..." if len(windows.skipped) > 5 else ""
            notes.append(
                f"fold {fold.index}: {len(windows.skipped)} series not scored: "
                + ", ".join(shown)
                + more
            )
        for name in configs:
            model = fitted[name]
            original = forecast_original(forecasters[name], windows, spec)
            forecast = scaler.transform(
                pd.DataFrame(
                    original.reshape(-1, len(spec.targets)),
                    columns=list(spec.targets),
                ).assign(**{SERIES_COLUMN: np.repeat(windows.series_ids, spec.horizon)}),
                spec.targets,
            ).reshape(original.shape)
            results[name].scores.append(
                FoldScore(
                    fold=fold.index,
                    origin=fold.origin,
                    series=len(windows.series_ids),
                    metrics=score(windows, forecast, original),
                    train_seconds=model.seconds if fold.refit else 0.0,
                    best_epoch=model.best_epoch,
                )
            )
            results[name].forecasts.append(
                forecast_rows(name, fold, windows, original, spec.targets)
            )
    assert spec is not None
    return BacktestResult(full.dataset, spec, data_summary, folds, results, notes)
