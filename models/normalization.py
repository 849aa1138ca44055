"""Per-window normalisation layers: subtract the last value, or RevIN, and their inverse.

A forecaster that sees each window relative to itself learns shapes instead of levels, which is
what makes recurrent models competitive on drifting data such as the Weather set (see
`REFERENCE.md` section 3). The pair of layers here wraps any model:

    normalized, location, scale = WindowNormalization("revin")(inputs)
    outputs = core_model(normalized)                        # (batch, horizon, n_targets)
    outputs = WindowDenormalization(target_indices)([outputs, location, scale])

`normalized_model` builds exactly that functional model around a forecasting function.

`WindowNormalization` returns `location` and `scale` such that `inputs == normalized * scale +
location` for every feature, with the learnable affine transform (if any) already folded in. The
inverse layer therefore holds no weights of its own, and the gradient still reaches the affine
weights through `location` and `scale`.

Both layers are registered as serializable (package "forecaster"), so models that contain them
load from `.keras` files without `custom_objects` once this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from models.quantiles import MonotoneQuantiles, SortedQuantiles
from models.shape import ModelShape

NORMALIZATION_METHODS = ("last", "revin")


@keras.saving.register_keras_serializable(package="forecaster")
class WindowNormalization(keras.layers.Layer):
    """Normalises each window per feature with statistics of that window alone.

    Methods:
        - `"last"`: subtracts the window's last value of each feature (scale 1).
        - `"revin"`: reversible instance normalisation (Kim et al. 2022): subtracts the window's
          mean and divides by its standard deviation, per feature, then optionally applies a
          learnable per-feature affine transform `normalized * gamma + beta`.

    The statistics are treated as constants (no gradient flows into them), as in RevIN: they
    come from the inputs, which are not trained, and the constant saves work in the backward
    pass.

    Args:
        method: `"last"` or `"revin"`.
        affine: learn a per-feature `gamma` (ones) and `beta` (zeros) applied after normalising.
        epsilon: added to the variance before the square root (RevIN); its square is added to
            `gamma` where it divides, as in RevIN's code, so that a `gamma` trained to zero
            cannot divide by zero while the inverse stays exact to float precision.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (batch, steps, features).

    Returns:
        A tuple `(normalized, location, scale)`: `normalized` has the shape of `inputs`;
        `location` and `scale` are (batch, 1, features) with
        `inputs == normalized * scale + location`.
    """

    def __init__(
        self, method: str = "revin", affine: bool = False, epsilon: float = 1e-5, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if method not in NORMALIZATION_METHODS:
            raise ValueError(
                f"parameter method: expected one of {list(NORMALIZATION_METHODS)}, got {method!r}"
            )
        if not isinstance(affine, bool):
            raise ValueError(f"parameter affine: expected a bool, got {affine!r}")
        if not epsilon > 0:
            raise ValueError(f"parameter epsilon: expected a positive number, got {epsilon!r}")
        self.method = method
        self.affine = affine
        self.epsilon = float(epsilon)
        self.gamma = None
        self.beta = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"expected inputs of shape (batch, steps, features), got {tuple(input_shape)}"
            )
        if self.affine:
            features = input_shape[-1]
            self.gamma = self.add_weight(shape=(features,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(features,), initializer="zeros", name="beta")

    def call(self, inputs: Any) -> tuple[Any, Any, Any]:
        if self.method == "last":
            location = ops.stop_gradient(inputs[:, -1:, :])
            scale = ops.ones_like(location)
        else:
            location = ops.stop_gradient(ops.mean(inputs, axis=1, keepdims=True))
            variance = ops.var(inputs, axis=1, keepdims=True)
            scale = ops.stop_gradient(ops.sqrt(variance + self.epsilon))
        normalized = (inputs - location) / scale
        if self.affine:
            normalized = normalized * self.gamma + self.beta
            # Fold the affine transform into location and scale so that the inverse is one
            # multiply-add: x = (n - beta) / gamma * s + m = n * s' + (m - beta * s'), where
            # s' = s / gamma.
            scale = scale / (self.gamma + self.epsilon**2)
            location = location - self.beta * scale
        return normalized, location, scale

    def compute_output_shape(
        self, input_shape: tuple[int | None, ...]
    ) -> tuple[tuple[int | None, ...], ...]:
        statistics_shape = (input_shape[0], 1, input_shape[-1])
        return tuple(input_shape), statistics_shape, statistics_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"method": self.method, "affine": self.affine, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="forecaster")
class WindowDenormalization(keras.layers.Layer):
    """Undoes `WindowNormalization` on forecasts of the target features.

    Args:
        target_indices: positions of the target features among the input features, in the
            order of the forecast's last axis.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: a list `[outputs, location, scale]`: `outputs` (batch, horizon, n_targets) in
            normalised units; `location` and `scale` (batch, 1, features) from
            `WindowNormalization`.

    Returns:
        `outputs * scale[targets] + location[targets]`, shape (batch, horizon, n_targets).
    """

    def __init__(self, target_indices: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        indices = tuple(target_indices)
        if not indices or any(
            isinstance(index, bool) or not isinstance(index, int) or index < 0 for index in indices
        ):
            raise ValueError(
                "parameter target_indices: expected a non-empty sequence of non-negative "
                f"integers, got {target_indices!r}"
            )
        self.target_indices = indices

    def call(self, inputs: Sequence[Any]) -> Any:
        outputs, location, scale = inputs
        target_location = ops.take(location, list(self.target_indices), axis=-1)
        target_scale = ops.take(scale, list(self.target_indices), axis=-1)
        if len(outputs.shape) == 4:  # quantile forecasts (batch, horizon, K, T)
            target_location = ops.expand_dims(target_location, -2)
            target_scale = ops.expand_dims(target_scale, -2)
        return outputs * target_scale + target_location

    def compute_output_shape(
        self, input_shape: Sequence[tuple[int | None, ...]]
    ) -> tuple[int | None, ...]:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"target_indices": list(self.target_indices)})
        return config


def normalized_model(
    name: str,
    shape: ModelShape,
    forecast: Callable[[Any], Any],
    normalization: str,
    affine: bool,
) -> keras.Model:
    """Input -> [normalise] -> `forecast` -> [denormalise], as one functional model.

    Args:
        name: the model's name.
        shape: input and output shapes and the target positions.
        forecast: maps the (normalised) inputs `(batch, input_width, n_features)` to forecasts
            `(batch, horizon, n_targets)` in the same units. It creates its layers when called,
            after the normalisation layer, so that seeded weights are drawn in model order.
        normalization: "none", or a method of `WindowNormalization`.
        affine: RevIN's learnable affine transform (used with "revin" only).
    """
    inputs = keras.Input(shape=shape.input_shape, name="inputs")

    def ordered_forecast(features: Any) -> Any:
        outputs = forecast(features)
        if shape.quantiles:
            outputs = MonotoneQuantiles(shape.quantiles, name="monotone_quantiles")(outputs)
        return outputs

    if normalization == "none":
        outputs = ordered_forecast(inputs)
    else:
        features, location, scale = WindowNormalization(
            normalization, affine=affine and normalization == "revin", name="normalization"
        )(inputs)
        outputs = WindowDenormalization(shape.target_indices, name="denormalization")(
            [ordered_forecast(features), location, scale]
        )
    if shape.quantiles:
        # After denormalising: RevIN's affine weight may be negative and flip their order.
        outputs = SortedQuantiles(name="quantiles")(outputs)
    return keras.Model(inputs, outputs, name=name)
