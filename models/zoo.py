"""The model zoo: every forecaster maps (batch, input_width, n_features) to (batch, horizon, T).

One function builds any model by name, so one training and evaluation path serves them all:

    shape = ModelShape(input_width=24, horizon=24, n_features=19, target_indices=(1,))
    model = build_model("lstm", shape, units=64, normalization="revin")
    compile_model(model, learning_rate=1e-3)
    model.fit(train_dataset, validation_data=validation_dataset, epochs=20)

Families (`MODEL_NAMES`):

- baselines `last`, `repeat`, `mean`: exact naive forecasts with no trainable weights.
- `linear`, `dense`, `conv`: direct multi-step heads on the last steps of the window.
- `lstm`, `gru`, `peephole`: single-shot recurrent models; the last hidden state goes through a
  Dense head to all `horizon * T` outputs at once.
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

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers as keras_layers
from keras import ops

from models.normalization import WindowDenormalization, WindowNormalization
from models.peephole import PEEPHOLE_GATES, PeepholeLSTM, PeepholeLSTMCell

BASELINE_NAMES = ("last", "repeat", "mean")
DIRECT_NAMES = ("linear", "dense", "conv")
RECURRENT_NAMES = ("lstm", "gru", "peephole")
AUTOREGRESSIVE_NAMES = ("lstm-ar", "gru-ar", "peephole-ar")
MODEL_NAMES = BASELINE_NAMES + DIRECT_NAMES + RECURRENT_NAMES + AUTOREGRESSIVE_NAMES
NORMALIZATIONS = ("none", "last", "revin")
CELL_TYPES = RECURRENT_NAMES


# --------------------------------------------------------------------------------------------
# Shapes


def _require_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"parameter {name}: expected a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ModelShape:
    """The array shapes a model maps between.

    Attributes:
        input_width: steps of history in each input window.
        horizon: steps to forecast.
        n_features: input features per step.
        target_indices: positions of the target columns among the input features, in the order
            of the forecast's last axis. Baselines read the targets from these columns, and
            autoregressive models write their predictions back into them.

    Example:
        >>> ModelShape(input_width=14, horizon=7, n_features=4, target_indices=(1,)).n_targets
        1
    """

    input_width: int
    horizon: int
    n_features: int
    target_indices: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("input_width", "horizon", "n_features"):
            # Frozen dataclass: normalise NumPy integers to int in place of the given values.
            object.__setattr__(self, name, _require_positive(name, getattr(self, name)))
        indices = self.target_indices
        if isinstance(indices, int | np.integer) or not isinstance(indices, Sequence):
            raise ValueError(
                f"parameter target_indices: expected a sequence of integers, got {indices!r}"
            )
        if not indices:
            raise ValueError("parameter target_indices: expected at least one index, got none")
        for index in indices:
            if (
                isinstance(index, bool)
                or not isinstance(index, int | np.integer)
                or not 0 <= index < self.n_features
            ):
                raise ValueError(
                    f"parameter target_indices: expected integers in [0, {self.n_features}), "
                    f"got {index!r} in {list(indices)}"
                )
        if len(set(indices)) != len(indices):
            raise ValueError(f"parameter target_indices: indices repeat in {list(indices)}")
        object.__setattr__(self, "target_indices", tuple(int(index) for index in indices))

    @property
    def n_targets(self) -> int:
        return len(self.target_indices)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(input_width, n_features): the shape of one input window."""
        return self.input_width, self.n_features

    @property
    def output_shape(self) -> tuple[int, int]:
        """(horizon, n_targets): the shape of one forecast."""
        return self.horizon, self.n_targets


# --------------------------------------------------------------------------------------------
# Baselines: weightless layers with exact outputs


class _TargetForecast(keras.layers.Layer):
    """Base of the baselines: holds the horizon and the target positions."""

    def __init__(self, horizon: int, target_indices: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.horizon = _require_positive("horizon", horizon)
        self.target_indices = tuple(int(index) for index in target_indices)

    def _targets(self, inputs: Any) -> Any:
        return ops.take(inputs, list(self.target_indices), axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape[0], self.horizon, len(self.target_indices)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"horizon": self.horizon, "target_indices": list(self.target_indices)})
        return config


@keras.saving.register_keras_serializable(package="forecaster")
class LastValueForecast(_TargetForecast):
    """Repeats the last input value of each target over the horizon (the naive forecast).

    Args:
        horizon: steps to forecast.
        target_indices: positions of the targets among the input features.
        **kwargs: base layer arguments.
    """

    def call(self, inputs: Any) -> Any:
        last = self._targets(inputs[:, -1:, :])
        return ops.repeat(last, self.horizon, axis=1)


@keras.saving.register_keras_serializable(package="forecaster")
class SeasonalForecast(_TargetForecast):
    """Repeats the last `season` steps of the targets (the seasonal naive forecast).

    Step `h` of the forecast is the value one or more whole seasons earlier, so when the
    horizon is longer than the season the last season is cycled: with season 3 and horizon 7
    the forecast from `[..., a, b, c]` is `[a, b, c, a, b, c, a]`.

    Args:
        horizon: steps to forecast.
        target_indices: positions of the targets among the input features.
        season: the season length in steps; at most the input width.
        **kwargs: base layer arguments.
    """

    def __init__(
        self, horizon: int, target_indices: Sequence[int], season: int, **kwargs: Any
    ) -> None:
        super().__init__(horizon, target_indices, **kwargs)
        self.season = _require_positive("season", season)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        width = input_shape[1]
        if width is not None and self.season > width:
            raise ValueError(
                f"parameter season: expected at most the input width {width}, got {self.season}"
            )

    def call(self, inputs: Any) -> Any:
        last_season = self._targets(inputs[:, -self.season :, :])
        cycles = -(-self.horizon // self.season)  # ceiling division
        return ops.tile(last_season, (1, cycles, 1))[:, : self.horizon, :]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"season": self.season})
        return config


@keras.saving.register_keras_serializable(package="forecaster")
class MeanForecast(_TargetForecast):
    """Repeats the mean of each target over the input window.

    Args:
        horizon: steps to forecast.
        target_indices: positions of the targets among the input features.
        **kwargs: base layer arguments.
    """

    def call(self, inputs: Any) -> Any:
        mean = ops.mean(self._targets(inputs), axis=1, keepdims=True)
        return ops.repeat(mean, self.horizon, axis=1)


# --------------------------------------------------------------------------------------------
# Recurrent building blocks


def _recurrent_cell(
    cell_type: str,
    units: int,
    dropout: float,
    recurrent_dropout: float,
    cell_options: Mapping[str, Any],
    name: str,
) -> keras.layers.Layer:
    arguments = {"dropout": dropout, "recurrent_dropout": recurrent_dropout, "name": name}
    if cell_type == "lstm":
        return keras_layers.LSTMCell(units, **arguments)
    if cell_type == "gru":
        return keras_layers.GRUCell(units, **arguments)
    return PeepholeLSTMCell(units, **arguments, **cell_options)


def _recurrent_layer(
    cell_type: str,
    units: int,
    dropout: float,
    recurrent_dropout: float,
    cell_options: Mapping[str, Any],
    return_sequences: bool,
    name: str,
) -> keras.layers.Layer:
    arguments = {
        "dropout": dropout,
        "recurrent_dropout": recurrent_dropout,
        "return_sequences": return_sequences,
        "name": name,
    }
    if cell_type == "lstm":
        return keras_layers.LSTM(units, **arguments)
    if cell_type == "gru":
        return keras_layers.GRU(units, **arguments)
    return PeepholeLSTM(units, **arguments, **cell_options)


@keras.saving.register_keras_serializable(package="forecaster")
class AutoregressiveForecaster(keras.Model):
    """A recurrent model that forecasts one step at a time and feeds each forecast back.

    The stacked cells first run over the whole input window (`keras.layers.RNN` with
    `return_state`); the head turns the last hidden state into the first forecast step. Each
    further step feeds one input row back into the cells, continuing from their states.

    The fed-back row must have all `n_features` features, but the model only predicts the
    targets. It is the last input row with the predicted targets written into the target
    positions; the other features are carried forward unchanged from the last input row (a
    persistence forecast of the covariates, the only one available without forecasting them
    too). With per-window normalisation the loop runs in normalised units, so the fed-back rows
    are in the same units as the rows the cells were warmed up on.

    Teacher forcing (`teacher_forcing=True`) feeds the true previous target instead of the
    prediction while training. `call` never sees the targets, so it is done in `compute_loss`,
    which recomputes the forecast with the targets fed back; the free-running forecast that
    `fit` computes first is still used for the training metrics, and validation and prediction
    are always free-running. The cost is one extra forward pass per training step (measured:
    1.2x the epoch time at horizon 96, 21 features, 32 units on a 2-core CPU).

    The horizon loop is unrolled in Python, so graph size and tracing time grow linearly with
    the horizon.

    Args:
        input_width: steps in each input window.
        horizon: steps to forecast.
        n_features: input features per step.
        target_indices: positions of the targets among the input features.
        cell: "lstm", "gru" or "peephole".
        units: units of every cell.
        layers: number of stacked cells.
        dropout: input dropout rate of every cell.
        recurrent_dropout: recurrent dropout rate of every cell.
        normalization: "none", "last" or "revin" (see `models.normalization`).
        affine: learnable affine transform in RevIN (ignored by the other normalisations).
        cell_options: extra cell arguments (the peephole cell's `peepholes` and
            `coupled_input_forget`).
        teacher_forcing: feed the true targets back while training.
        **kwargs: base model arguments (`name`, ...).
    """

    def __init__(
        self,
        input_width: int,
        horizon: int,
        n_features: int,
        target_indices: Sequence[int],
        cell: str = "lstm",
        units: int = 32,
        layers: int = 1,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        normalization: str = "none",
        affine: bool = True,
        cell_options: Mapping[str, Any] | None = None,
        teacher_forcing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        shape = ModelShape(input_width, horizon, n_features, tuple(target_indices))
        if cell not in CELL_TYPES:
            raise ValueError(f"parameter cell: expected one of {list(CELL_TYPES)}, got {cell!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"parameter normalization: expected one of {list(NORMALIZATIONS)}, "
                f"got {normalization!r}"
            )
        self.model_shape = shape
        self.cell_type = cell
        self.units = _require_positive("units", units)
        self.layer_count = _require_positive("layers", layers)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.normalization = normalization
        self.affine = bool(affine)
        self.cell_options = dict(cell_options or {})
        self.teacher_forcing = bool(teacher_forcing)

        self.normalizer = None
        self.denormalizer = None
        if normalization != "none":
            self.normalizer = WindowNormalization(
                normalization, affine=self.affine and normalization == "revin", name="normalization"
            )
            self.denormalizer = WindowDenormalization(shape.target_indices, name="denormalization")
        self.recurrent_layers = [
            keras_layers.RNN(
                _recurrent_cell(
                    cell,
                    self.units,
                    self.dropout,
                    self.recurrent_dropout,
                    self.cell_options,
                    name=f"{cell}_cell_{index}",
                ),
                return_sequences=index < self.layer_count - 1,
                return_state=True,
                name=f"{cell}_{index}",
            )
            for index in range(self.layer_count)
        ]
        self.head = keras_layers.Dense(shape.n_targets, name="head")
        # placement[k, target_indices[k]] = 1 writes target k into its feature column with one
        # matmul; keep_mask zeroes the target columns of the carried-forward row.
        placement = np.zeros((shape.n_targets, n_features), dtype="float32")
        placement[np.arange(shape.n_targets), list(shape.target_indices)] = 1.0
        self._placement = placement
        self._keep_mask = 1.0 - placement.sum(axis=0)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        expected = self.model_shape.input_shape
        if len(input_shape) != 3 or tuple(input_shape[1:]) != expected:
            raise ValueError(
                f"expected inputs of shape (batch, {expected[0]}, {expected[1]}), "
                f"got {tuple(input_shape)}"
            )
        batch = input_shape[0]
        if self.normalizer is not None:
            self.normalizer.build(input_shape)
        sequence_shape = tuple(input_shape)
        for layer in self.recurrent_layers:
            layer.build(sequence_shape)
            sequence_shape = (batch, self.model_shape.input_width, self.units)
        self.head.build((batch, self.units))
        if self.denormalizer is not None:
            statistics_shape = (batch, 1, self.model_shape.n_features)
            self.denormalizer.build(
                [(batch, *self.model_shape.output_shape), statistics_shape, statistics_shape]
            )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self._forecast(inputs, targets=None, training=training)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        if self.teacher_forcing and training and y is not None:
            y_pred = self._forecast(x, targets=y, training=True)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape[0], self.model_shape.horizon, self.model_shape.n_targets

    # Functional models have these; the zoo promises one interface for every model.
    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return None, *self.model_shape.input_shape

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return None, *self.model_shape.output_shape

    def _forecast(self, inputs: Any, targets: Any, training: bool | None) -> Any:
        """Free-running forecast, or teacher-forced when `targets` (batch, horizon, T) is given."""
        features = inputs
        if self.normalizer is not None:
            features, location, scale = self.normalizer(inputs)
            if targets is not None:
                indices = list(self.model_shape.target_indices)
                targets = (targets - ops.take(location, indices, axis=-1)) / ops.take(
                    scale, indices, axis=-1
                )
        sequence = features
        states = []
        for layer in self.recurrent_layers:
            sequence, *layer_states = layer(sequence, training=training)
            states.append(list(layer_states))
        prediction = self.head(sequence)
        predictions = [prediction]
        placement = ops.convert_to_tensor(self._placement, dtype=features.dtype)
        carried = features[:, -1, :] * ops.convert_to_tensor(self._keep_mask, features.dtype)
        for step in range(1, self.model_shape.horizon):
            fed_back = prediction if targets is None else targets[:, step - 1, :]
            hidden = carried + ops.matmul(fed_back, placement)
            for index, layer in enumerate(self.recurrent_layers):
                hidden, states[index] = layer.cell(hidden, states[index], training=training)
            prediction = self.head(hidden)
            predictions.append(prediction)
        # The cells cache one dropout mask per sequence (as keras.layers.RNN does); drop it so
        # the next batch draws a new one.
        for layer in self.recurrent_layers:
            if hasattr(layer.cell, "reset_dropout_mask"):
                layer.cell.reset_dropout_mask()
                layer.cell.reset_recurrent_dropout_mask()
        outputs = ops.stack(predictions, axis=1)
        if self.denormalizer is not None:
            outputs = self.denormalizer([outputs, location, scale])
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_width": self.model_shape.input_width,
                "horizon": self.model_shape.horizon,
                "n_features": self.model_shape.n_features,
                "target_indices": list(self.model_shape.target_indices),
                "cell": self.cell_type,
                "units": self.units,
                "layers": self.layer_count,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "normalization": self.normalization,
                "affine": self.affine,
                "cell_options": {
                    key: list(value) if isinstance(value, tuple) else value
                    for key, value in self.cell_options.items()
                },
                "teacher_forcing": self.teacher_forcing,
            }
        )
        return config


# --------------------------------------------------------------------------------------------
# Builders


def _direct_model(
    name: str,
    shape: ModelShape,
    core: Callable[[Any], Any],
    normalization: str,
    affine: bool,
) -> keras.Model:
    """Input -> [normalise] -> core -> Dense(horizon * T) -> reshape -> [denormalise]."""
    inputs = keras.Input(shape=shape.input_shape, name="inputs")
    features = inputs
    if normalization != "none":
        features, location, scale = WindowNormalization(
            normalization, affine=affine and normalization == "revin", name="normalization"
        )(inputs)
    hidden = core(features)
    outputs = keras_layers.Dense(shape.horizon * shape.n_targets, name="head")(hidden)
    outputs = keras_layers.Reshape(shape.output_shape, name="forecast")(outputs)
    if normalization != "none":
        outputs = WindowDenormalization(shape.target_indices, name="denormalization")(
            [outputs, location, scale]
        )
    return keras.Model(inputs, outputs, name=name)


def _last_steps(shape: ModelShape, steps: int, hparam: str) -> keras_layers.Layer:
    if steps > shape.input_width:
        raise ValueError(
            f"hyper-parameter {hparam!r}: expected at most the input width "
            f"{shape.input_width}, got {steps}"
        )
    # Cropping1D keeps the model made of stock, serializable layers.
    return keras_layers.Cropping1D((shape.input_width - steps, 0), name=f"last_{steps}_steps")


def _build_baseline(name: str, shape: ModelShape, **hparams: Any) -> keras.Model:
    inputs = keras.Input(shape=shape.input_shape, name="inputs")
    arguments = {"horizon": shape.horizon, "target_indices": shape.target_indices}
    if name == "last":
        layer = LastValueForecast(**arguments, name="forecast")
    elif name == "mean":
        layer = MeanForecast(**arguments, name="forecast")
    else:
        season = hparams["season"] or shape.horizon
        if season > shape.input_width:
            raise ValueError(
                f"hyper-parameter 'season': expected at most the input width "
                f"{shape.input_width}, got {season}"
            )
        layer = SeasonalForecast(**arguments, season=season, name="forecast")
    return keras.Model(inputs, layer(inputs), name=name)


def _build_linear(
    name: str, shape: ModelShape, lookback: int | None, normalization: str, affine: bool
) -> keras.Model:
    crop = _last_steps(shape, lookback or shape.input_width, "lookback")

    def core(features: Any) -> Any:
        return keras_layers.Flatten(name="flatten")(crop(features))

    return _direct_model(name, shape, core, normalization, affine)


def _build_dense(
    name: str,
    shape: ModelShape,
    units: int,
    layers: int,
    dropout: float,
    lookback: int | None,
    normalization: str,
    affine: bool,
) -> keras.Model:
    crop = _last_steps(shape, lookback or shape.input_width, "lookback")

    def core(features: Any) -> Any:
        hidden = keras_layers.Flatten(name="flatten")(crop(features))
        for index in range(layers):
            hidden = keras_layers.Dense(units, activation="relu", name=f"dense_{index}")(hidden)
            if dropout:
                hidden = keras_layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
        return hidden

    return _direct_model(name, shape, core, normalization, affine)


def _build_conv(
    name: str,
    shape: ModelShape,
    filters: int,
    kernel_size: int,
    dropout: float,
    normalization: str,
    affine: bool,
) -> keras.Model:
    crop = _last_steps(shape, kernel_size, "kernel_size")

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

    return _direct_model(name, shape, core, normalization, affine)


def _cell_options(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    if not name.startswith("peephole"):
        return {}
    return {
        "peepholes": hparams.pop("peepholes"),
        "coupled_input_forget": hparams.pop("coupled_input_forget"),
    }


def _build_recurrent(name: str, shape: ModelShape, **hparams: Any) -> keras.Model:
    cell_options = _cell_options(name, hparams)
    layer_count = hparams["layers"]

    def core(features: Any) -> Any:
        hidden = features
        for index in range(layer_count):
            hidden = _recurrent_layer(
                name,
                hparams["units"],
                hparams["dropout"],
                hparams["recurrent_dropout"],
                cell_options,
                return_sequences=index < layer_count - 1,
                name=f"{name}_{index}",
            )(hidden)
        return hidden

    return _direct_model(name, shape, core, hparams["normalization"], hparams["affine"])


def _build_autoregressive(name: str, shape: ModelShape, **hparams: Any) -> keras.Model:
    cell_options = _cell_options(name, hparams)
    model = AutoregressiveForecaster(
        shape.input_width,
        shape.horizon,
        shape.n_features,
        shape.target_indices,
        cell=name.removesuffix("-ar"),
        cell_options=cell_options,
        name=name,
        **hparams,
    )
    # Create the weights now, so that the model can be summarised, counted and saved at once.
    model.build((None, *shape.input_shape))
    return model


# --------------------------------------------------------------------------------------------
# Hyper-parameters


@dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter of a model: its default and a parser that checks a given value.

    Attributes:
        default: the value used when the hyper-parameter is not given.
        parse: returns the checked value or raises ValueError("expected ..., got ...").
        help: one line on what it does.
    """

    default: Any
    parse: Callable[[Any], Any]
    help: str


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def _optional_positive_int(value: Any) -> int | None:
    return None if value is None else _positive_int(value)


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"expected a number in [0, 1), got {value!r}")
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"expected True or False, got {value!r}")
    return bool(value)


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {list(options)}, got {value!r}")
        return value

    return parse


def _peepholes(value: Any) -> tuple[str, ...]:
    # A comma-separated string is accepted because command lines and MLflow params are strings.
    gates = (
        tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, str)
        else value
    )
    if not isinstance(gates, Sequence) or any(gate not in PEEPHOLE_GATES for gate in gates):
        raise ValueError(f"expected a subset of {list(PEEPHOLE_GATES)}, got {value!r}")
    if len(set(gates)) != len(gates):
        raise ValueError(f"expected each gate once, got {value!r}")
    return tuple(gates)


_NORMALIZATION_HPARAMS = {
    "normalization": HyperParameter(
        "none", _choice(NORMALIZATIONS), "per-window normalisation: none, last or revin"
    ),
    "affine": HyperParameter(True, _boolean, "learnable affine transform in RevIN"),
}
_RECURRENT_HPARAMS = {
    "units": HyperParameter(32, _positive_int, "units of every recurrent layer"),
    "layers": HyperParameter(1, _positive_int, "stacked recurrent layers"),
    "dropout": HyperParameter(0.0, _rate, "input dropout rate of every recurrent layer"),
    "recurrent_dropout": HyperParameter(0.0, _rate, "recurrent dropout rate"),
    **_NORMALIZATION_HPARAMS,
}
_PEEPHOLE_HPARAMS = {
    "peepholes": HyperParameter(PEEPHOLE_GATES, _peepholes, "gates that see the cell state"),
    "coupled_input_forget": HyperParameter(False, _boolean, "input gate = 1 - forget (CIFG)"),
}
_TEACHER_FORCING = {
    "teacher_forcing": HyperParameter(False, _boolean, "feed true targets back in training"),
}


@dataclass(frozen=True)
class _ModelEntry:
    builder: Callable[..., keras.Model]
    hparams: Mapping[str, HyperParameter]


_MODELS: dict[str, _ModelEntry] = {
    "last": _ModelEntry(_build_baseline, {}),
    "repeat": _ModelEntry(
        _build_baseline,
        {
            "season": HyperParameter(
                None, _optional_positive_int, "season length in steps (default: the horizon)"
            )
        },
    ),
    "mean": _ModelEntry(_build_baseline, {}),
    "linear": _ModelEntry(
        _build_linear,
        {
            "lookback": HyperParameter(
                None, _optional_positive_int, "last input steps used (default: all)"
            ),
            **_NORMALIZATION_HPARAMS,
        },
    ),
    "dense": _ModelEntry(
        _build_dense,
        {
            "units": HyperParameter(64, _positive_int, "units of every hidden layer"),
            "layers": HyperParameter(1, _positive_int, "hidden layers"),
            "dropout": HyperParameter(0.0, _rate, "dropout rate after every hidden layer"),
            "lookback": HyperParameter(
                None, _optional_positive_int, "last input steps used (default: all)"
            ),
            **_NORMALIZATION_HPARAMS,
        },
    ),
    "conv": _ModelEntry(
        _build_conv,
        {
            "filters": HyperParameter(32, _positive_int, "convolution filters"),
            "kernel_size": HyperParameter(3, _positive_int, "last input steps convolved"),
            "dropout": HyperParameter(0.0, _rate, "dropout rate before the head"),
            **_NORMALIZATION_HPARAMS,
        },
    ),
    "lstm": _ModelEntry(_build_recurrent, _RECURRENT_HPARAMS),
    "gru": _ModelEntry(_build_recurrent, _RECURRENT_HPARAMS),
    "peephole": _ModelEntry(_build_recurrent, {**_RECURRENT_HPARAMS, **_PEEPHOLE_HPARAMS}),
    "lstm-ar": _ModelEntry(_build_autoregressive, {**_RECURRENT_HPARAMS, **_TEACHER_FORCING}),
    "gru-ar": _ModelEntry(_build_autoregressive, {**_RECURRENT_HPARAMS, **_TEACHER_FORCING}),
    "peephole-ar": _ModelEntry(
        _build_autoregressive,
        {**_RECURRENT_HPARAMS, **_PEEPHOLE_HPARAMS, **_TEACHER_FORCING},
    ),
}
assert tuple(_MODELS) == MODEL_NAMES, "every name in MODEL_NAMES needs exactly one entry"


def _model_entry(name: str) -> _ModelEntry:
    if name not in _MODELS:
        hint = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown model {name!r}{suggestion}; valid: {', '.join(MODEL_NAMES)}")
    return _MODELS[name]


def hyperparameters(name: str) -> dict[str, HyperParameter]:
    """The hyper-parameters a model accepts, with defaults and one-line descriptions.

    Args:
        name: a model name from `MODEL_NAMES`.

    Returns:
        `{hyper-parameter name: HyperParameter}`, in the order they are documented.

    Raises:
        ValueError: the name is not a model.
    """
    return dict(_model_entry(name).hparams)


def default_hyperparameters(name: str) -> dict[str, Any]:
    """`{hyper-parameter: default}` for a model (for configs and logging)."""
    return {key: value.default for key, value in hyperparameters(name).items()}


def resolve_hyperparameters(name: str, **hparams: Any) -> dict[str, Any]:
    """Checks given hyper-parameters and fills in the defaults of the others.

    Args:
        name: a model name from `MODEL_NAMES`.
        **hparams: hyper-parameter values to check.

    Returns:
        Every hyper-parameter of the model with its checked value.

    Raises:
        ValueError: the name is not a model, a hyper-parameter is unknown, or a value is bad;
            the message names the model and lists the valid choices.
    """
    valid = _model_entry(name).hparams
    for key in hparams:
        if key not in valid:
            listing = ", ".join(valid) if valid else "none"
            hint = difflib.get_close_matches(key, list(valid), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"model {name!r}: unknown hyper-parameter {key!r}{suggestion}; valid: {listing}"
            )
    resolved = {}
    for key, spec in valid.items():
        value = hparams.get(key, spec.default)
        try:
            resolved[key] = spec.parse(value)
        except ValueError as error:
            raise ValueError(f"model {name!r}: hyper-parameter {key!r}: {error}") from None
    return resolved


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
        ValueError: unknown name, unknown or bad hyper-parameter, or a hyper-parameter that
            does not fit the shape (e.g. a season longer than the input window).

    Example:
        >>> shape = ModelShape(input_width=14, horizon=7, n_features=4, target_indices=(1,))
        >>> build_model("gru", shape, units=8, normalization="last").output_shape
        (None, 7, 1)
    """
    if not isinstance(shape, ModelShape):
        raise ValueError(f"parameter shape: expected a ModelShape, got {shape!r}")
    resolved = resolve_hyperparameters(name, **hparams)
    try:
        return _MODELS[name].builder(name, shape, **resolved)
    except ValueError as error:
        message = str(error)
        if message.startswith("hyper-parameter"):
            raise ValueError(f"model {name!r}: {message}") from None
        raise


def compile_model(
    model: keras.Model,
    learning_rate: float = 1e-3,
    loss: str | keras.losses.Loss = "mse",
    metrics: Sequence[Any] = ("mae",),
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compiles a zoo model with Adam.

    Args:
        model: a model from `build_model`.
        learning_rate: Adam's learning rate.
        loss: a Keras loss name or object.
        metrics: Keras metrics to track beside the loss.
        jit_compile: passed to `Model.compile`; "auto" leaves XLA off on CPU-only machines,
            where it made recurrent training slower (REFERENCE.md section 1).

    Returns:
        The same model, compiled.
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
        raise ValueError(
            f"parameter learning_rate: expected a positive number, got {learning_rate!r}"
        )
    if not learning_rate > 0:
        raise ValueError(
            f"parameter learning_rate: expected a positive number, got {learning_rate!r}"
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss=loss,
        metrics=list(metrics),
        jit_compile=jit_compile,
    )
    return model
