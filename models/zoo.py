"""The model zoo: every forecaster maps (batch, input_width, n_features) to (batch, horizon, T).

One function builds any model by name, so one training and evaluation path serves them all:

    shape = ModelShape(input_width=24, horizon=24, n_features=19, target_indices=(1,))
    model = build_model("lstm", shape, units=64, normalization="revin")
    compile_model(model, learning_rate=1e-3)
    model.fit(train_dataset, validation_data=validation_dataset, epochs=20)

Families (`MODEL_NAMES`):

- baselines `last`, `repeat`, `mean`: exact naive forecasts with no trainable weights.
- `linear`, `dense`, `conv`: direct multi-step heads on the last steps of the window.
- `lstm`, `gru`, `peephole`, `clockwork`, `depth-gated`: single-shot recurrent models; by
  default the last hidden state goes through a Dense head to all `horizon * T` outputs at once.
  Options read channels alone, read the window in segments and decode the horizon segments in
  parallel (`models.recurrent`).
- `lstm-ar`, `gru-ar`, `peephole-ar`: autoregressive recurrent models; the cell warms up over the
  window, then predicts one step at a time and feeds each prediction back.

Every trainable model accepts `normalization` in {"none", "last", "revin"} (see
`models.normalization`): the window is normalised per feature on the way in and the target
forecasts are put back in input units on the way out.

`build_model` returns an uncompiled model: compiling is a training decision (optimizer, loss,
learning rate), so it lives in `compile_model`, which the training pipeline may replace. Custom
layers and models are registered as serializable (package "forecaster"): a saved `.keras` file
loads with `keras.saving.load_model(path)` and no `custom_objects` once this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import layers as keras_layers

# The custom layers are imported for their registration: a saved model that holds one loads
# with `keras.saving.load_model` and no custom_objects once this module is imported.
from models import clockwork, depth_gated, peephole  # noqa: F401
from models.autoregressive import AutoregressiveForecaster
from models.baselines import LastValueForecast, MeanForecast, SeasonalForecast
from models.normalization import normalized_model
from models.recurrent import build_recurrent
from models.registry import (
    AUTOREGRESSIVE_NAMES,
    BASELINE_NAMES,
    DIRECT_NAMES,
    MODEL_NAMES,
    MODELS,
    RECURRENT_NAMES,
    ModelEntry,
    cell_arguments,
    default_hyperparameters,
    hyperparameters,
    load_attribute,
    model_entry,
    model_family,
    resolve_for_window,
    resolve_hyperparameters,
)
from models.shape import ModelShape

__all__ = [
    "AUTOREGRESSIVE_NAMES",
    "BASELINE_NAMES",
    "DIRECT_NAMES",
    "MODELS",
    "MODEL_NAMES",
    "RECURRENT_NAMES",
    "ModelShape",
    "build_model",
    "compile_model",
    "default_hyperparameters",
    "hyperparameters",
    "model_family",
    "resolve_hyperparameters",
]


def _direct_model(
    name: str,
    shape: ModelShape,
    core: Callable[[Any], Any],
    normalization: str,
    affine: bool,
) -> keras.Model:
    """Input -> [normalise] -> core -> Dense(horizon * T) -> reshape -> [denormalise]."""

    def forecast(features: Any) -> Any:
        hidden = core(features)  # before the head: seeded weights are drawn in model order
        outputs = keras_layers.Dense(
            shape.horizon * shape.n_quantiles * shape.n_targets, name="head"
        )(hidden)
        return keras_layers.Reshape(shape.output_shape, name="forecast")(outputs)

    return normalized_model(name, shape, forecast, normalization, affine)


def _last_steps(shape: ModelShape, steps: int) -> keras_layers.Layer:
    # Cropping1D keeps the model made of stock, serializable layers.
    return keras_layers.Cropping1D((shape.input_width - steps, 0), name=f"last_{steps}_steps")


def _baseline_inputs(entry: ModelEntry, shape: ModelShape) -> tuple[Any, dict[str, Any]]:
    inputs = keras.Input(shape=shape.input_shape, name="inputs")
    return inputs, {"horizon": shape.horizon, "target_indices": shape.target_indices}


def build_last(entry: ModelEntry, shape: ModelShape) -> keras.Model:
    inputs, arguments = _baseline_inputs(entry, shape)
    return keras.Model(
        inputs, LastValueForecast(**arguments, name="forecast")(inputs), name=entry.name
    )


def build_mean(entry: ModelEntry, shape: ModelShape) -> keras.Model:
    inputs, arguments = _baseline_inputs(entry, shape)
    return keras.Model(inputs, MeanForecast(**arguments, name="forecast")(inputs), name=entry.name)


def build_repeat(entry: ModelEntry, shape: ModelShape, season: int | None) -> keras.Model:
    inputs, arguments = _baseline_inputs(entry, shape)
    layer = SeasonalForecast(**arguments, season=season or shape.horizon, name="forecast")
    return keras.Model(inputs, layer(inputs), name=entry.name)


def build_linear(
    entry: ModelEntry, shape: ModelShape, lookback: int | None, normalization: str, affine: bool
) -> keras.Model:
    crop = _last_steps(shape, lookback or shape.input_width)

    def core(features: Any) -> Any:
        return keras_layers.Flatten(name="flatten")(crop(features))

    return _direct_model(entry.name, shape, core, normalization, affine)


def build_dense(
    entry: ModelEntry,
    shape: ModelShape,
    units: int,
    layers: int,
    dropout: float,
    lookback: int | None,
    normalization: str,
    affine: bool,
) -> keras.Model:
    crop = _last_steps(shape, lookback or shape.input_width)

    def core(features: Any) -> Any:
        hidden = keras_layers.Flatten(name="flatten")(crop(features))
        for index in range(layers):
            hidden = keras_layers.Dense(units, activation="relu", name=f"dense_{index}")(hidden)
            if dropout:
                hidden = keras_layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
        return hidden

    return _direct_model(entry.name, shape, core, normalization, affine)


def build_conv(
    entry: ModelEntry,
    shape: ModelShape,
    filters: int,
    kernel_size: int,
    dropout: float,
    normalization: str,
    affine: bool,
) -> keras.Model:
    crop = _last_steps(shape, kernel_size)

    def core(features: Any) -> Any:
        # One convolution over exactly the last kernel_size steps: a learned feature of the
        # recent past, as in TensorFlow's multi-step tutorial.
        hidden = keras_layers.Conv1D(filters, kernel_size, activation="relu", name="conv")(
            crop(features)
        )
        hidden = keras_layers.Flatten(name="flatten")(hidden)
        if dropout:
            hidden = keras_layers.Dropout(dropout, name="dropout")(hidden)
        return hidden

    return _direct_model(entry.name, shape, core, normalization, affine)


def _split_cell_options(entry: ModelEntry, hparams: dict[str, Any]) -> dict[str, Any]:
    """Takes out of `hparams` the cell's own arguments."""
    options = cell_arguments(entry.name, hparams)
    for key in options:
        del hparams[key]
    return options


def build_single_shot(entry: ModelEntry, shape: ModelShape, **hparams: Any) -> keras.Model:
    assert entry.cell is not None, "a single-shot recurrent model has a cell"
    cell_options = _split_cell_options(entry, hparams)
    return build_recurrent(entry.name, entry.cell.name, shape, cell_options, **hparams)


def build_autoregressive(entry: ModelEntry, shape: ModelShape, **hparams: Any) -> keras.Model:
    assert entry.cell is not None, "an autoregressive model has a cell"
    cell_options = _split_cell_options(entry, hparams)
    model = AutoregressiveForecaster(
        shape.input_width,
        shape.horizon,
        shape.n_features,
        shape.target_indices,
        cell=entry.cell.name,
        cell_options=cell_options,
        name=entry.name,
        **hparams,
    )
    # Create the weights now, so that the model can be summarised, counted and saved at once.
    model.build((None, *shape.input_shape))
    return model


def build_model(name: str, shape: ModelShape, **hparams: Any) -> keras.Model:
    """Builds an uncompiled zoo model by name.

    Args:
        name: one of `MODEL_NAMES`.
        shape: the input and output shapes and the target positions.
        **hparams: the model's hyper-parameters (see `hyperparameters(name)`); the others keep
            their defaults.

    Returns:
        A built, uncompiled `keras.Model` mapping (batch, input_width, n_features) to
        (batch, horizon, n_targets). Compile it with `compile_model`.

    Raises:
        HyperParameterError: unknown name, unknown or bad hyper-parameter, or a
            hyper-parameter that does not fit the shape (e.g. a season longer than the input
            window); a ValueError.

    Example:
        >>> shape = ModelShape(input_width=14, horizon=7, n_features=4, target_indices=(1,))
        >>> build_model("gru", shape, units=8, normalization="last").output_shape
        (None, 7, 1)
    """
    if not isinstance(shape, ModelShape):
        raise ValueError(f"parameter shape: expected a ModelShape, got {shape!r}")
    entry = model_entry(name)
    if shape.quantiles and model_family(name) in ("baseline", "autoregressive"):
        raise ValueError(
            f"model {name!r}: no quantile head ({model_family(name)}); the direct and "
            "single-shot recurrent models have one"
        )
    resolved = resolve_for_window(name, hparams, shape.input_width, shape.horizon)
    return load_attribute(entry.builder)(entry, shape, **resolved)


def compile_model(
    model: keras.Model,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    loss: str | keras.losses.Loss = "mse",
    metrics: Sequence[Any] = ("mae",),
    jit_compile: bool | str = "auto",
    ema_momentum: float = 0.0,
) -> keras.Model:
    """Compiles a zoo model with Adam.

    Args:
        model: a model from `build_model`.
        learning_rate: Adam's learning rate, or a Keras schedule of it.
        loss: a Keras loss name or object.
        metrics: Keras metrics to track beside the loss.
        jit_compile: passed to `Model.compile`; "auto" leaves XLA off on CPU-only machines,
            where it made recurrent training slower (REFERENCE.md section 1).
        ema_momentum: above 0, Adam also keeps an exponential moving average of the weights
            with this momentum per step (`use_ema`); `fit` ends on the averaged weights, and
            `keras.callbacks.SwapEMAWeights` evaluates with them during training.

    Returns:
        The same model, compiled.
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, int | float)
            or not learning_rate > 0
        ):
            raise ValueError(
                f"parameter learning_rate: expected a positive number, got {learning_rate!r}"
            )
        learning_rate = float(learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate, use_ema=ema_momentum > 0, ema_momentum=ema_momentum
        ),
        loss=loss,
        metrics=list(metrics),
        jit_compile=jit_compile,
    )
    return model
