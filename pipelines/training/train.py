"""Training: prepare -> windows -> zoo model -> fit with early stopping -> evaluate. No MLflow.

`train_model(config)` seeds Python, NumPy and Keras, prepares the data (or takes them
prepared), fits the zoo model with early stopping on the validation part (best weights
restored) and evaluates it beside the naive baselines `last` and `repeat` on the validation and
test windows (`pipelines.training.evaluation`). Logging the result is
`pipelines.tracking.training_run`'s job; the command line is `pipelines.cli.train`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from models import zoo
from models.quantiles import MedianAbsoluteError, PinballLoss, head_quantiles_of
from pipelines.config.schema import HEADED_FAMILIES, RunConfig, TrainingConfig
from pipelines.data.prepare import PrepareResult
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.contract import PART_NAMES, DataValidationError
from pipelines.runtime.intervals import Calibration
from pipelines.runtime.monitoring import MonitoringReference
from pipelines.runtime.windows import WindowedData, WindowSpec
from pipelines.training.calibration import (
    IntervalEvaluation,
    interval_evaluations,
    validation_calibration,
    validation_reference,
)
from pipelines.training.evaluation import (
    EVALUATED_PARTS,
    Evaluation,
    ForecastSample,
    evaluate_baselines,
    evaluate_forecast,
    forecast_sample,
    mase_scales,
    point_forecast,
    predict_part,
    target_windows,
)

SAMPLE_WINDOWS = 4
"""Test windows kept for the forecast-vs-actual plot."""


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
        calibration: the conformal calibration of the validation residuals the logged model
            carries (None: `intervals.calibration` none, or too few validation windows).
        reference: the monitoring reference of the validation windows (logged with the run,
            read by `monitor`).
        interval_evaluations: `{part: IntervalEvaluation}` (validation, test, and test_static
            with a rolling update), empty without a calibration.
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
    calibration: Calibration | None
    reference: MonitoringReference | None
    interval_evaluations: dict[str, IntervalEvaluation]
    window_counts: dict[str, int]
    prepared: PrepareResult
    sample: ForecastSample
    notes: list[str] = field(default_factory=list)


def model_shape(spec: WindowSpec, quantiles: tuple[float, ...] = ()) -> zoo.ModelShape:
    """The zoo's shape for a window spec: targets are read from their feature positions; with
    `quantiles`, the model has a quantile head at those levels."""
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
        quantiles=quantiles,
    )


def head_quantiles(config: RunConfig, model: str | None = None) -> tuple[float, ...]:
    """The levels of the quantile head `model` (default `model.name`) is trained with: those
    of `intervals.method` cqr for a direct or single-shot recurrent model, else none."""
    family = zoo.model_family(model or config.model.name)
    return config.intervals.head_quantiles() if family in HEADED_FAMILIES else ()


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
    if prepared is None:
        prepared = prepare_data(config.data)
    windowed = windowed_data(prepared)
    _require_windows(prepared, windowed, EVALUATED_PARTS)
    fitted = fit_model(config, prepared, windowed)
    model, shape = fitted.model, model_shape(prepared.spec)

    actuals = {part: target_windows(prepared, windowed, part) for part in EVALUATED_PARTS}
    scales, notes = mase_scales(prepared)
    outputs = {
        part: predict_part(model, windowed, part, training.batch_size) for part in EVALUATED_PARTS
    }
    quantiles = head_quantiles_of(model)
    forecasts = {part: point_forecast(outputs[part], quantiles) for part in EVALUATED_PARTS}
    heads = outputs if quantiles else None
    evaluations = {
        part: evaluate_forecast(forecasts[part], prepared, actuals[part], scales)
        for part in EVALUATED_PARTS
    }
    calibration = validation_calibration(
        config.intervals,
        actuals["validation"].scaled,
        forecasts["validation"],
        actuals["validation"].series_ids,
        notes,
        heads and (heads["validation"], quantiles),
    )
    reference = validation_reference(
        config.intervals,
        calibration,
        actuals["validation"].scaled,
        forecasts["validation"],
        actuals["validation"].series_ids,
        prepared.spec.targets,
        heads and (heads["validation"], quantiles),
    )
    interval_scores = interval_evaluations(
        config.intervals,
        calibration,
        forecasts,
        actuals,
        windowed.starts,
        prepared.scaler,
        prepared.spec.targets,
        notes,
        heads,
    )
    baseline_evaluations = evaluate_baselines(
        prepared, windowed, shape, actuals, scales, training.batch_size, notes
    )
    sample = forecast_sample(model, prepared, windowed, SAMPLE_WINDOWS)
    return TrainResult(
        model=model,
        model_name=config.model.name,
        hparams=fitted.hparams,
        history=fitted.history,
        best_epoch=fitted.best_epoch,
        training_seconds=fitted.seconds,
        samples_per_second=fitted.samples_per_second,
        evaluations=evaluations,
        baseline_evaluations=baseline_evaluations,
        calibration=calibration,
        reference=reference,
        interval_evaluations=interval_scores,
        window_counts={part: len(windowed.starts[part]) for part in PART_NAMES},
        prepared=prepared,
        sample=sample,
        notes=notes,
    )


@dataclass
class FittedModel:
    """A zoo model fitted on the training windows, early-stopped on the validation windows.

    Attributes:
        model: the Keras model, best validation weights restored.
        hparams: every hyper-parameter it was built with (defaults resolved).
        history: Keras' per-epoch history; empty for models without weights.
        best_epoch: 1-based epoch whose weights were kept (None when nothing was fitted).
        seconds: wall time of `fit`.
        samples_per_second: training windows processed per second of `fit`.
    """

    model: keras.Model
    hparams: dict[str, Any]
    history: dict[str, list[float]]
    best_epoch: int | None
    seconds: float
    samples_per_second: float


def fit_model(
    config: RunConfig, prepared: PrepareResult, windowed: WindowedData | None = None
) -> FittedModel:
    """Seeds Python, NumPy and Keras, builds the configured zoo model for the prepared data
    and fits it on the training windows with early stopping on the validation windows.

    Only the training and validation parts are read: what `train` and every backtest fold
    share. Models without weights (the baselines) are built and returned unfitted.

    Raises:
        DataValidationError: no training or no validation window.
        ValueError: the model cannot be built for this shape (e.g. a season longer than the
            input window).
    """
    keras.utils.set_random_seed(config.training.seed)
    windowed = windowed or windowed_data(prepared)
    _require_windows(prepared, windowed, ("train", "validation"))
    hparams = config.model.hparams_for()
    quantiles = head_quantiles(config)
    model = zoo.build_model(config.model.name, model_shape(prepared.spec, quantiles), **hparams)
    steps_per_epoch = math.ceil(len(windowed.starts["train"]) / config.training.batch_size)
    # A quantile head learns its quantiles from the pinball loss, whatever training.loss says.
    zoo.compile_model(
        model,
        learning_rate=learning_rate_schedule(config.training, steps_per_epoch),
        loss=PinballLoss(quantiles) if quantiles else config.training.loss,
        metrics=[MedianAbsoluteError(quantiles)] if quantiles else ("mae",),
        ema_momentum=config.training.ema_momentum,
    )
    fit = _fit(model, windowed, config)
    return FittedModel(
        model=model,
        hparams=hparams,
        history=fit.history,
        best_epoch=fit.best_epoch,
        seconds=fit.seconds,
        samples_per_second=fit.samples_per_second,
    )


def learning_rate_schedule(
    training: TrainingConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: the configured constant, or a cosine decay from it to 0 over every
    step of `training.epochs` epochs (`plateau` is a callback, see `_callbacks`)."""
    if training.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            training.learning_rate, decay_steps=max(1, training.epochs * steps_per_epoch)
        )
    return training.learning_rate


def _callbacks(training: TrainingConfig) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if training.ema_momentum > 0:
        # Before early stopping, so that its epoch end sees, and keeps, the averaged weights
        # that the validation loss was computed with.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=training.patience, restore_best_weights=True
        )
    )
    if training.lr_schedule == "plateau":
        # Halving before early stopping gives up: half its patience, at least one epoch.
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(1, training.patience // 2)
            )
        )
    return callbacks


def _require_windows(
    prepared: PrepareResult, windowed: WindowedData, parts: tuple[str, ...]
) -> None:
    counts = {part: len(windowed.starts[part]) for part in PART_NAMES}
    empty = [part for part in parts if counts[part] == 0]
    if empty:
        raise DataValidationError(
            f"{prepared.summary.get('source')}: no {' or '.join(empty)} window fits "
            f"(windows per part: {counts}); lower the input width or horizon, or change the split"
        )


def windowed_data(prepared: PrepareResult) -> WindowedData:
    """The prepared frame scaled by its scaler, with its window starts per part."""
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
    started = time.perf_counter()
    history = model.fit(
        windowed.dataset("train", batch_size=training.batch_size, shuffle=True, seed=training.seed),
        validation_data=windowed.dataset("validation", batch_size=training.batch_size),
        epochs=training.epochs,
        callbacks=_callbacks(training),
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
