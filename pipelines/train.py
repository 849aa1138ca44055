"""Training pipeline: prepare -> scale -> windows -> zoo model -> fit -> evaluate -> MLflow.

Usage:
    python -m pipelines.train                                  # defaults (catalog's data set)
    python -m pipelines.train --model gru --epochs 5 --set model.hparams.units=16
    python -m pipelines.train --config configs/weather-ltsf.yaml --horizon 96

The module has a pure core and a thin edge:

- `train_model(config)` seeds everything, prepares the data, fits the zoo model with early
  stopping on the validation part (best weights restored) and evaluates it, beside the naive
  baselines `last` and `repeat`, on the validation and test windows. It knows no MLflow.
- `log_training_run(result, config)` writes one `TrainResult` to the active MLflow run (params,
  the resolved config, per-epoch losses, metrics, plots, dataset lineage, the model) and moves
  the registered model's `champion` alias when the new version is better on validation.
- `main(argv)` reads the configuration (a bad key or value is one `error: ...` line and exit
  status 2, before any run exists), uses the run that `mlflow run` started or starts one, and
  marks it FAILED with an `error` tag when training raises.

Metric keys (every unit system and part uses the same names, so runs line up in the MLflow UI):

- `val_<metric>` / `test_<metric>`: scaled units (what the model was fitted on), overall;
  `..._original`: original units (after the inverse transform of each window's series).
- `<key>_by_step`: the same per horizon step, logged with `step` = horizon step (1-based).
- `baseline_last_<key>`, `baseline_repeat_<key>`: the naive baselines on the same windows.
- `loss`, `val_loss` (and Keras' other metrics as `epoch_<name>`): per epoch, `step` = epoch
  (1-based, as Keras prints it). Keras' own `val_mae` is logged as `epoch_val_mae` so it does
  not mix with the final `val_mae` of the restored model.

Decisions:
    - MASE is scaled by the in-sample seasonal-naive error of each series' TRAINING rows with
      season 1 (`MASE_SEASON`), i.e. the plain naive forecast. A target that is constant in the
      training part of some series has no such scale; MASE is then left out (with a warning)
      rather than reported as infinite.
    - A window's series is the series of its start row: windows never cross a series boundary.
    - Test metrics never choose: the champion alias moves on `val_mae` (scaled units) only.
    - The dataset lineage logs the whole prepared frame through `mlflow.data.from_pandas`:
      MLflow stores its schema, profile and a digest of at most its first rows, never the rows
      themselves, so the cost does not grow with the data.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import math
import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from models import zoo
from pipelines import metrics as metric_functions
from pipelines import tracking
from pipelines.config import (
    FLAT_PARAMETERS,
    MAX_PARAM_LENGTH,
    ConfigError,
    RunConfig,
    TrackingConfig,
    dump_yaml,
    flatten,
    load_config,
    parameters_given,
    parse_assignments,
)
from pipelines.prepare import PrepareResult
from pipelines.prepare import run as prepare_data
from pipelines.split import PART_NAMES, TRAIN
from pipelines.validate import SERIES_COLUMN, TIMESTAMP_COLUMN, DataValidationError
from pipelines.windows import WindowedData, WindowSpec

__all__ = [
    "BASELINES",
    "CHAMPION_ALIAS",
    "EVALUATED_PARTS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "MASE_SEASON",
    "SELECTION_METRIC",
    "Evaluation",
    "ForecastSample",
    "LoggedRun",
    "TrainResult",
    "log_training_run",
    "main",
    "metric_values",
    "model_family",
    "register_and_promote",
    "train_model",
    "update_champion",
]

BASELINES = ("last", "repeat")
"""Naive baselines evaluated beside every model on the same windows."""
EVALUATED_PARTS = ("validation", "test")
PART_PREFIXES = {"validation": "val", "test": "test"}
MASE_SEASON = 1
"""Season of the seasonal-naive MASE scale (1: the plain naive forecast)."""
SELECTION_METRIC = "val_mae"
"""The metric (lower is better) that decides whether a new version becomes the champion."""
CHAMPION_ALIAS = "champion"
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
SAMPLE_WINDOWS = 4
"""Test windows kept for the forecast-vs-actual plot."""
ERROR_TAG_LENGTH = tracking.ERROR_TAG_LENGTH
_METRICS_PER_BATCH = 1000


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Evaluation:
    """Metrics of one forecaster on one part, in scaled and original units.

    Attributes:
        overall: `{"mae", "mse", "rmse", "mape", "smape"[, "mase"], "mape_excluded"}` floats,
            scaled units.
        overall_original: the same in original units.
        by_step: the same metrics (without "mape_excluded") per horizon step, arrays of
            length horizon, scaled units.
        by_step_original: the same in original units.
    """

    overall: dict[str, float]
    overall_original: dict[str, float]
    by_step: dict[str, np.ndarray]
    by_step_original: dict[str, np.ndarray]


@dataclass
class ForecastSample:
    """A few test windows in original units, for plotting.

    Attributes:
        series_ids: series of each window, shape (windows,).
        input_timestamps: (windows, input_width) times of the history.
        target_timestamps: (windows, horizon) times of the forecasts.
        history: (windows, input_width, targets) observed target values before the forecast.
        actual: (windows, horizon, targets) observed values.
        forecast: (windows, horizon, targets) the model's forecasts.
        targets: target names, in the order of the last axis.
    """

    series_ids: np.ndarray
    input_timestamps: np.ndarray
    target_timestamps: np.ndarray
    history: np.ndarray
    actual: np.ndarray
    forecast: np.ndarray
    targets: tuple[str, ...]


@dataclass
class TrainResult:
    """Everything one training run produced.

    Attributes:
        model: the fitted Keras model (best validation weights restored).
        model_name: the zoo name.
        hparams: every hyper-parameter the model was built with (defaults resolved).
        history: Keras' per-epoch history (`loss`, `val_loss`, ...); empty for baselines.
        best_epoch: 1-based epoch whose weights were kept (None when nothing was fitted).
        training_seconds: wall time of `fit`.
        samples_per_second: training windows processed per second of `fit`.
        evaluations: `{"validation": Evaluation, "test": Evaluation}` of the model.
        baseline_evaluations: `{baseline name: {part: Evaluation}}` on the same windows.
        window_counts: windows per part.
        prepared: the prepared data the model was trained on.
        sample: a few test windows with forecasts, for plots.
        notes: what was left out and why (MASE without a scale, a baseline that does not fit).
    """

    model: keras.Model
    model_name: str
    hparams: dict[str, Any]
    history: dict[str, list[float]]
    best_epoch: int | None
    training_seconds: float
    samples_per_second: float
    evaluations: dict[str, Evaluation]
    baseline_evaluations: dict[str, dict[str, Evaluation]]
    window_counts: dict[str, int]
    prepared: PrepareResult
    sample: ForecastSample
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The pure core


def model_family(name: str) -> str:
    """The zoo family of a model name: baseline, direct, recurrent or autoregressive."""
    families = {
        "baseline": zoo.BASELINE_NAMES,
        "direct": zoo.DIRECT_NAMES,
        "recurrent": zoo.RECURRENT_NAMES,
        "autoregressive": zoo.AUTOREGRESSIVE_NAMES,
    }
    for family, names in families.items():
        if name in names:
            return family
    raise ValueError(f"unknown model {name!r}; valid: {', '.join(zoo.MODEL_NAMES)}")


def model_shape(spec: WindowSpec) -> zoo.ModelShape:
    """The zoo's shape for a window spec: targets are read from their feature positions."""
    missing = [target for target in spec.targets if target not in spec.features]
    if missing:
        raise DataValidationError(
            f"window spec: targets {missing} are not among the features {list(spec.features)}; "
            "every zoo model reads its targets from the inputs"
        )
    return zoo.ModelShape(
        input_width=spec.input_width,
        horizon=spec.horizon,
        n_features=len(spec.features),
        target_indices=tuple(spec.features.index(target) for target in spec.targets),
    )


def train_model(config: RunConfig, prepared: PrepareResult | None = None) -> TrainResult:
    """Fits and evaluates the configured model; no MLflow.

    Args:
        config: the run configuration.
        prepared: data already prepared from `config.data` (saves preparing it again);
            None prepares it here.

    Returns:
        The fitted model, its history, timings and metrics beside the baselines'.

    Raises:
        DataValidationError: the data cannot be read or cut into windows.
        ConfigError: hyper-parameters that do not fit the model.
        ValueError: the model cannot be built for this shape.
    """
    training = config.training
    keras.utils.set_random_seed(training.seed)
    if prepared is None:
        prepared = prepare_data(config.data.to_prepare_config())
    windowed = _windowed(prepared)
    counts = {part: len(windowed.starts[part]) for part in PART_NAMES}
    empty = [part for part in EVALUATED_PARTS if counts[part] == 0]
    if empty:
        raise DataValidationError(
            f"{prepared.summary.get('source')}: no {' or '.join(empty)} window fits "
            f"(windows per part: {counts}); lower the input width or horizon, or change the split"
        )
    shape = model_shape(prepared.spec)
    hparams = config.model.hparams_for()
    model = zoo.build_model(config.model.name, shape, **hparams)
    zoo.compile_model(model, learning_rate=training.learning_rate, loss=training.loss)
    fit = _fit(model, windowed, config)

    actuals = {part: _target_windows(prepared, windowed, part) for part in EVALUATED_PARTS}
    scales, notes = _mase_scales(prepared)
    evaluations = {
        part: _evaluate(model, prepared, windowed, part, actuals[part], scales, training.batch_size)
        for part in EVALUATED_PARTS
    }
    baseline_evaluations = _evaluate_baselines(
        prepared, windowed, shape, actuals, scales, training.batch_size, notes
    )
    sample = _forecast_sample(model, prepared, windowed, SAMPLE_WINDOWS)
    return TrainResult(
        model=model,
        model_name=config.model.name,
        hparams=hparams,
        history=fit.history,
        best_epoch=fit.best_epoch,
        training_seconds=fit.seconds,
        samples_per_second=fit.samples_per_second,
        evaluations=evaluations,
        baseline_evaluations=baseline_evaluations,
        window_counts=counts,
        prepared=prepared,
        sample=sample,
        notes=notes,
    )


def _windowed(prepared: PrepareResult) -> WindowedData:
    scaled = prepared.scaler.transform(prepared.frame)
    return WindowedData.from_frame(
        prepared.frame, scaled, prepared.parts, prepared.spec, prepared.scaler.columns
    )


@dataclass
class _Fit:
    history: dict[str, list[float]]
    best_epoch: int | None
    seconds: float
    samples_per_second: float


def _fit(model: keras.Model, windowed: WindowedData, config: RunConfig) -> _Fit:
    """Fits with early stopping on the validation loss; baselines have nothing to fit."""
    if not model.trainable_weights:
        return _Fit(history={}, best_epoch=None, seconds=0.0, samples_per_second=0.0)
    training = config.training
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=training.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        windowed.dataset("train", batch_size=training.batch_size, shuffle=True, seed=training.seed),
        validation_data=windowed.dataset("validation", batch_size=training.batch_size),
        epochs=training.epochs,
        callbacks=[early_stopping],
        shuffle=False,  # the dataset shuffles itself, seeded; Keras cannot shuffle a dataset
        verbose=2,  # one line per epoch: readable in `mlflow run` logs, unlike progress bars
    )
    seconds = time.perf_counter() - started
    values = {key: [float(value) for value in series] for key, series in history.history.items()}
    epochs_run = len(values.get("loss", []))
    samples = len(windowed.starts["train"]) * epochs_run
    validation_losses = values.get("val_loss", [])
    best_epoch = int(np.argmin(validation_losses)) + 1 if validation_losses else None
    return _Fit(
        history=values,
        best_epoch=best_epoch,
        seconds=seconds,
        samples_per_second=samples / seconds if seconds > 0 else 0.0,
    )


@dataclass
class _Actual:
    """Observed target windows of one part, in both unit systems."""

    scaled: np.ndarray
    original: np.ndarray
    series_ids: np.ndarray
    series_index: np.ndarray


def _windows_of(values: np.ndarray, starts: np.ndarray, offset: int, width: int) -> np.ndarray:
    """(len(starts), width, columns) windows of `values` beginning at `starts + offset`."""
    view = np.lib.stride_tricks.sliding_window_view(values, width, axis=0)
    return np.ascontiguousarray(np.swapaxes(view[starts + offset], 1, 2))


def _target_windows(prepared: PrepareResult, windowed: WindowedData, part: str) -> _Actual:
    spec = prepared.spec
    starts = windowed.starts[part]
    original_values = prepared.frame[list(spec.targets)].to_numpy(dtype="float64")
    series = prepared.frame[SERIES_COLUMN].astype(str).to_numpy()
    series_names = _series_names(prepared)
    return _Actual(
        scaled=_windows_of(windowed.targets, starts, spec.input_width, spec.horizon),
        original=_windows_of(original_values, starts, spec.input_width, spec.horizon),
        series_ids=series[starts],
        series_index=np.searchsorted(series_names, series[starts]),
    )


def _series_names(prepared: PrepareResult) -> np.ndarray:
    return np.unique(prepared.frame[SERIES_COLUMN].astype(str).to_numpy())


@dataclass
class _Scales:
    """Seasonal-naive MASE scales per series, shape (series, targets); None if undefined."""

    scaled: np.ndarray | None
    original: np.ndarray | None


def _mase_scales(prepared: PrepareResult) -> tuple[_Scales, list[str]]:
    """MASE scales from each series' training rows (season `MASE_SEASON`), in both units."""
    training_rows = prepared.parts == TRAIN
    frame = prepared.frame.loc[training_rows]
    targets = list(prepared.spec.targets)
    series = frame[SERIES_COLUMN].astype(str).to_numpy()
    original = frame[targets].to_numpy(dtype="float64")
    scaled = prepared.scaler.transform(frame, targets).astype("float64")
    names = _series_names(prepared)
    notes: list[str] = []
    result = []
    for values in (scaled, original):
        try:
            result.append(
                metric_functions.seasonal_naive_scale(
                    [values[series == name] for name in names], season=MASE_SEASON
                )
            )
        except ValueError as error:
            result.append(None)
            if not notes:
                notes.append(f"MASE left out: {error}")
                warnings.warn(notes[-1], stacklevel=2)
    return _Scales(scaled=result[0], original=result[1]), notes


def _predict(model: keras.Model, windowed: WindowedData, part: str, batch_size: int) -> np.ndarray:
    """Scaled forecasts of every window of a part, in time order."""
    dataset = windowed.dataset(part, batch_size=batch_size).map(lambda inputs, _: inputs)
    return np.asarray(model.predict(dataset, verbose=0), dtype="float64")


def _evaluate(
    model: keras.Model,
    prepared: PrepareResult,
    windowed: WindowedData,
    part: str,
    actual: _Actual,
    scales: _Scales,
    batch_size: int,
) -> Evaluation:
    forecast = _predict(model, windowed, part, batch_size)
    forecast_original = prepared.scaler.inverse_transform(
        forecast, actual.series_ids, prepared.spec.targets
    )
    return _evaluation(forecast, forecast_original, actual, scales)


def _evaluation(
    forecast_scaled: np.ndarray, forecast_original: np.ndarray, actual: _Actual, scales: _Scales
) -> Evaluation:
    """Every metric overall and per horizon step, in scaled and original units."""
    scaled_scale = _window_scale(scales.scaled, actual)
    original_scale = _window_scale(scales.original, actual)
    return Evaluation(
        overall=_overall(actual.scaled, forecast_scaled, scaled_scale),
        overall_original=_overall(actual.original, forecast_original, original_scale),
        by_step=_by_step(actual.scaled, forecast_scaled, scaled_scale),
        by_step_original=_by_step(actual.original, forecast_original, original_scale),
    )


def _window_scale(series_scales: np.ndarray | None, actual: _Actual) -> np.ndarray | None:
    """(series, targets) scales -> (windows, 1, targets): each window takes its series'."""
    if series_scales is None:
        return None
    table = np.asarray(series_scales).reshape(len(series_scales), -1)
    return table[actual.series_index][:, np.newaxis, :]


def _overall(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray | None
) -> dict[str, float]:
    values = metric_functions.evaluate(actual, forecast, mase_scale=scale)
    return {name: float(value) for name, value in values.items()}


def _by_step(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray | None
) -> dict[str, np.ndarray]:
    values = metric_functions.per_horizon(actual, forecast, scale)
    # A count of left-out values per step is noise in the UI; the overall count is kept.
    values.pop("mape_excluded", None)
    return values


def _evaluate_baselines(
    prepared: PrepareResult,
    windowed: WindowedData,
    shape: zoo.ModelShape,
    actuals: Mapping[str, _Actual],
    scales: _Scales,
    batch_size: int,
    notes: list[str],
) -> dict[str, dict[str, Evaluation]]:
    """The naive baselines through the same zoo models and the same evaluation path."""
    evaluations: dict[str, dict[str, Evaluation]] = {}
    for name in BASELINES:
        try:
            baseline = zoo.build_model(name, shape)
        except ValueError as error:
            # `repeat` repeats the last `horizon` steps, which a window shorter than the
            # horizon does not have; the run goes on without that baseline.
            notes.append(f"baseline {name!r} left out: {error}")
            warnings.warn(notes[-1], stacklevel=2)
            continue
        evaluations[name] = {
            part: _evaluate(baseline, prepared, windowed, part, actuals[part], scales, batch_size)
            for part in EVALUATED_PARTS
        }
    return evaluations


def _forecast_sample(
    model: keras.Model, prepared: PrepareResult, windowed: WindowedData, count: int
) -> ForecastSample:
    """`count` test windows spread evenly over the test part, in original units."""
    spec = prepared.spec
    test_starts = windowed.starts["test"]
    chosen = np.unique(np.linspace(0, len(test_starts) - 1, num=min(count, len(test_starts))))
    starts = test_starts[chosen.astype("int64")]
    inputs = _windows_of(windowed.inputs, starts, 0, spec.input_width)
    forecast = np.asarray(model.predict(inputs, verbose=0), dtype="float64")
    series = prepared.frame[SERIES_COLUMN].astype(str).to_numpy()[starts]
    times = prepared.frame[TIMESTAMP_COLUMN].to_numpy()[:, np.newaxis]
    values = prepared.frame[list(spec.targets)].to_numpy(dtype="float64")
    return ForecastSample(
        series_ids=series,
        input_timestamps=_windows_of(times, starts, 0, spec.input_width)[..., 0],
        target_timestamps=_windows_of(times, starts, spec.input_width, spec.horizon)[..., 0],
        history=_windows_of(values, starts, 0, spec.input_width),
        actual=_windows_of(values, starts, spec.input_width, spec.horizon),
        forecast=prepared.scaler.inverse_transform(forecast, series, spec.targets),
        targets=spec.targets,
    )


# --------------------------------------------------------------------------------------------
# The MLflow edge


def metric_values(result: TrainResult) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The run's metrics as MLflow keys: (overall values, per-step arrays for `step` = h).

    Keys: `<part>_<metric>[_original]` for the model, `baseline_<name>_<same>` for the
    baselines, and `<key>_by_step` for the per-step arrays (see the module docstring).
    """
    overall: dict[str, float] = {}
    by_step: dict[str, np.ndarray] = {}
    forecasters = {"": result.evaluations}
    forecasters.update(
        {f"baseline_{name}_": parts for name, parts in result.baseline_evaluations.items()}
    )
    for prefix, evaluations in forecasters.items():
        for part, evaluation in evaluations.items():
            key = f"{prefix}{PART_PREFIXES[part]}"
            for units, values, steps in (
                ("", evaluation.overall, evaluation.by_step),
                ("_original", evaluation.overall_original, evaluation.by_step_original),
            ):
                overall.update({f"{key}_{name}{units}": value for name, value in values.items()})
                by_step.update(
                    {f"{key}_{name}{units}_by_step": array for name, array in steps.items()}
                )
    return overall, by_step


@dataclass(frozen=True)
class LoggedRun:
    """Where `log_training_run` put a result.

    Attributes:
        run_id: the run the result was logged to.
        model_uri: the logged model (`models:/<model id>`), loadable with `mlflow.pyfunc`.
        registered_version: the new version of the registered model, None when not registered.
        promoted: whether `registered_version` became the champion.
    """

    run_id: str
    model_uri: str
    registered_version: str | None = None
    promoted: bool = False


def log_training_run(result: TrainResult, config: RunConfig, *, register: bool = True) -> LoggedRun:
    """Logs one training result to the active MLflow run and, by default, registers the model.

    A registered version becomes the `champion` of `config.tracking.registered_model_name`
    when its `val_mae` beats the current champion's (or there is none); see
    `register_and_promote`.

    Args:
        result: what `train_model` returned.
        config: the configuration it was trained with.
        register: False logs the model without registering it (a comparison registers only
            its best child).

    Returns:
        The run, the logged model and, when registered, its version and whether it was promoted.
    """
    import mlflow

    run = mlflow.active_run() or mlflow.start_run()
    run_id = run.info.run_id
    _log_params(result, config)
    mlflow.log_text(dump_yaml(config), "config.yaml")
    mlflow.set_tags(_tags(result, config))
    _log_metrics(run_id, result)
    _log_dataset(result)
    _log_plots(result)
    model_info = _log_model(result, result.prepared.summary["frequency"])
    logged = LoggedRun(run_id=run_id, model_uri=model_info.model_uri)
    if not register:
        return logged
    version, promoted = register_and_promote(
        model_info.model_uri,
        config.tracking.registered_model_name,
        run_id=run_id,
        validation_mae=result.evaluations["validation"].overall["mae"],
    )
    return dataclasses.replace(logged, registered_version=version, promoted=promoted)


def register_and_promote(
    model_uri: str, registered_model_name: str, *, run_id: str, validation_mae: float
) -> tuple[str, bool]:
    """Registers a logged model as a new version and moves `champion` if it is better.

    The run that trained the model gets the tag `champion` = "true" or "false".

    Args:
        model_uri: the logged model (`models:/<model id>` or `runs:/<run id>/<name>`).
        registered_model_name: the registered model (created when missing).
        run_id: the run that logged the model.
        validation_mae: the model's `SELECTION_METRIC` (validation, scaled units).

    Returns:
        The new version and whether it became the champion (`update_champion`'s rule).
    """
    import mlflow

    version = str(mlflow.register_model(model_uri, registered_model_name).version)
    promoted = update_champion(registered_model_name, version, validation_mae)
    mlflow.MlflowClient().set_tag(run_id, "champion", "true" if promoted else "false")
    return version, promoted


def _log_params(result: TrainResult, config: RunConfig) -> None:
    import mlflow

    spec = result.prepared.spec
    resolved = {f"resolved.hparams.{name}": value for name, value in result.hparams.items()}
    resolved.update(
        {
            "resolved.input_width": spec.input_width,
            "resolved.horizon": spec.horizon,
            "resolved.features": ",".join(spec.features),
            "resolved.targets": ",".join(spec.targets),
            "resolved.dataset": result.prepared.summary.get("dataset"),
        }
    )
    texts = {key: _param_text(value) for key, value in resolved.items()}
    mlflow.log_params({**flatten(config), **texts})


def _param_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        value = ",".join(str(item) for item in value)
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _tags(result: TrainResult, config: RunConfig) -> dict[str, str]:
    tags = {
        "model_name": result.model_name,
        "model_family": model_family(result.model_name),
        "seed": str(config.training.seed),
        "dataset": str(result.prepared.summary.get("dataset")),
    }
    for distribution, tag in (
        ("tensorflow-cpu", "tensorflow"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("mlflow", "mlflow"),
        ("pandas", "pandas"),
        ("numpy", "numpy"),
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            tags.setdefault(tag, importlib.metadata.version(distribution))
    if result.notes:
        tags["notes"] = "; ".join(result.notes)[:ERROR_TAG_LENGTH]
    return tags


def _log_metrics(run_id: str, result: TrainResult) -> None:
    """Everything in batches: per-step metrics of long horizons are thousands of values."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    overall, by_step = metric_values(result)
    overall.update(
        {
            "training_seconds": result.training_seconds,
            "samples_per_second": result.samples_per_second,
            "epochs_run": float(len(result.history.get("loss", []))),
        }
    )
    if result.best_epoch is not None:
        overall["best_epoch"] = float(result.best_epoch)
    entries = _with_epoch_steps(result.history, timestamp)
    entries += [
        Metric(key, float(value), timestamp, 0)
        for key, value in overall.items()
        if math.isfinite(value)
    ]
    for key, array in by_step.items():
        entries += [
            Metric(key, float(value), timestamp, step)
            for step, value in enumerate(array.tolist(), start=1)
            if math.isfinite(value)
        ]
    client = MlflowClient()
    for first in range(0, len(entries), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[first : first + _METRICS_PER_BATCH])


def _with_epoch_steps(history: Mapping[str, list[float]], timestamp: int) -> list[Any]:
    """Per-epoch values with `step` = epoch (1-based); Keras' other metrics get `epoch_`."""
    from mlflow.entities import Metric

    entries = []
    for name, values in history.items():
        key = name if name in ("loss", "val_loss") else f"epoch_{name}"
        entries += [
            Metric(key, float(value), timestamp, epoch)
            for epoch, value in enumerate(values, start=1)
            if math.isfinite(value)
        ]
    return entries


def _log_dataset(result: TrainResult) -> None:
    import mlflow

    summary = result.prepared.summary
    targets = result.prepared.spec.targets
    with warnings.catch_warnings():
        # MLflow warns that a local path "can be interpreted in multiple ways" and that integer
        # columns cannot hold missing values; neither applies to lineage.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            result.prepared.frame,
            source=str(summary.get("source")),
            name=str(summary.get("dataset")),
            targets=targets[0] if len(targets) == 1 else None,
        )
        mlflow.log_input(dataset, context="training")


def _log_plots(result: TrainResult) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: the figures only become PNG artifacts
    import matplotlib.pyplot as plt
    import mlflow

    for figure, path in (
        (_forecast_figure(result.sample, result.model_name), "plots/forecast_vs_actual.png"),
        (_horizon_error_figure(result), "plots/error_by_horizon.png"),
    ):
        try:
            mlflow.log_figure(figure, path)
        finally:
            plt.close(figure)


def _forecast_figure(sample: ForecastSample, model_name: str) -> Any:
    import matplotlib.pyplot as plt

    windows = len(sample.series_ids)
    figure, axes = plt.subplots(windows, 1, figsize=(9, 2.4 * windows), squeeze=False)
    target = sample.targets[0]
    for index, axis in enumerate(axes[:, 0]):
        axis.plot(
            sample.input_timestamps[index],
            sample.history[index, :, 0],
            color="grey",
            label="history",
        )
        axis.plot(
            sample.target_timestamps[index],
            sample.actual[index, :, 0],
            color="black",
            marker=".",
            label="actual",
        )
        axis.plot(
            sample.target_timestamps[index],
            sample.forecast[index, :, 0],
            color="tab:blue",
            marker=".",
            label=model_name,
        )
        axis.set_title(f"{sample.series_ids[index]}: {target}", fontsize=9)
        axis.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    figure.suptitle("Forecast vs actual (test windows, original units)")
    figure.tight_layout()
    return figure


def _horizon_error_figure(result: TrainResult) -> Any:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    lines = {result.model_name: result.evaluations["test"]}
    lines.update(
        {f"baseline {name}": parts["test"] for name, parts in result.baseline_evaluations.items()}
    )
    for label, evaluation in lines.items():
        values = evaluation.by_step_original["mae"]
        axis.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
    axis.set_xlabel("horizon step")
    axis.set_ylabel("test MAE (original units)")
    axis.set_title("Test error by horizon step")
    axis.legend()
    figure.tight_layout()
    return figure


def _log_model(result: TrainResult, frequency: str) -> Any:
    from pipelines.pyfunc import log_forecast_model

    prepared = result.prepared
    return log_forecast_model(
        result.model,
        prepared.scaler,
        prepared.spec,
        frequency=frequency,
        model_name=result.model_name,
        input_example=prepared.frame,
    )


def update_champion(registered_model_name: str, version: str, validation_mae: float) -> bool:
    """Points the `champion` alias at `version` if it beats the current champion on validation.

    The current champion's `SELECTION_METRIC` is read from its run. No champion, or one whose
    run has no such metric, is replaced. Ties keep the current champion. Test metrics never
    take part.

    Args:
        registered_model_name: the registered model.
        version: the new version.
        validation_mae: the new version's `val_mae` (scaled units).

    Returns:
        True when the alias now points at `version`.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(registered_model_name, CHAMPION_ALIAS)
    except MlflowException:
        champion = None
    if champion is not None and champion.run_id:
        best = client.get_run(champion.run_id).data.metrics.get(SELECTION_METRIC)
        if best is not None and not validation_mae < best:
            return False
    client.set_registered_model_alias(registered_model_name, CHAMPION_ALIAS, version)
    return True


# --------------------------------------------------------------------------------------------
# Command line

_FLAT_OPTIONS = (
    "dataset",
    "source",
    "targets",
    "input_width",
    "horizon",
    "split",
    "model",
    "epochs",
    "batch_size",
    "learning_rate",
    "patience",
    "seed",
    "experiment_name",
    "registered_model_name",
    "run_name",
)
"""MLproject parameters the CLI takes as options (`--input-width` sets `input_width`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.train",
        description="Train one zoo model, evaluate it beside the naive baselines and track the "
        "run in MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db in this directory).",
    )
    parser.add_argument("--config", help="YAML file with data/model/training/tracking sections")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a dotted config key, e.g. model.hparams.units=16 (repeatable)",
    )
    for name in _FLAT_OPTIONS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, help=f"sets {FLAT_PARAMETERS[name]}"
        )
    return parser


def read_config(arguments: argparse.Namespace) -> RunConfig:
    overrides: dict[str, Any] = parameters_given(
        {name: getattr(arguments, name) for name in _FLAT_OPTIONS}
    )
    overrides.update(parse_assignments(arguments.assignments))
    return load_config(arguments.config or None, overrides)


def tracked_run(config: RunConfig) -> contextlib.AbstractContextManager[Any]:
    """The run to log to: the caller's, the one `mlflow run` started, or a new one in
    `config.tracking.experiment_name` (see `pipelines.tracking.tracked_run`)."""
    return tracking.tracked_run(
        config.tracking.experiment_name,
        default_experiment=TrackingConfig().experiment_name,
        run_name=config.tracking.run_name,
    )


error_tagged = tracking.error_tagged


def _summary_line(result: TrainResult, run_id: str) -> str:
    parts = []
    for part in EVALUATED_PARTS:
        baselines = ", ".join(
            f"{name} {evaluations[part].overall['mae']:.4f}"
            for name, evaluations in result.baseline_evaluations.items()
        )
        parts.append(
            f"{PART_PREFIXES[part]} MAE {result.evaluations[part].overall['mae']:.4f}"
            + (f" (baselines: {baselines})" if baselines else "")
        )
    return f"{result.model_name}: " + "; ".join(parts) + f"; run {run_id}"


def main(argv: Sequence[str] | None = None) -> int:
    """The `train` entry point.

    Returns:
        0 on success, `EXIT_BAD_INPUT` (2) for a bad configuration or bad data (one `error:`
        line on stderr, no run started for a bad configuration), `EXIT_FAILED` (1) when
        training or logging raised (the run is marked FAILED with an `error` tag).
    """
    arguments = build_parser().parse_args(argv)
    try:
        config = read_config(arguments)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        prepared = prepare_data(config.data.to_prepare_config())
    except DataValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with tracked_run(config):
            result = train_model(config, prepared)
            run_id = log_training_run(result, config).run_id
    except Exception as error:
        traceback.print_exc()
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(_summary_line(result, run_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
