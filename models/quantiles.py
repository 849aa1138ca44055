"""The quantile head: a model that forecasts K quantiles of every value instead of one.

A zoo model built with `ModelShape(..., quantiles=(0.1, 0.5, 0.9))` maps (batch, input_width,
n_features) to (batch, horizon, K, T): its head has K outputs where it had one.
`MonotoneQuantiles` turns them into a median and positive increments on either side of it (so
the quantiles are ordered by construction and each head output keeps its quantile); after the
window is denormalised `SortedQuantiles` sorts them along the quantile axis, which only
reverses them where RevIN's learnt scale is negative. Sorting alone would also keep them from
crossing, but heads trained through a sort swap roles and stall (tried: a linear head's 0.1
quantile stuck 0.23 from the truth). `PinballLoss` trains them; `MedianAbsoluteError` tracks
the median, the point forecast.

Registered as serializable (package "forecaster"): a saved quantile model loads with
`keras.saving.load_model(path)` once `models.zoo` is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from models.shape import check_quantiles


@keras.saving.register_keras_serializable(package="forecaster")
class MonotoneQuantiles(keras.layers.Layer):
    """(batch, horizon, K, T) head outputs -> quantiles increasing along K: the output at the
    median's position is the median; the others are it plus (above) or minus (below) running
    sums of softplus. The layer keeps the K levels, so a saved model says what it forecasts
    (`head_quantiles_of`).

    Args:
        quantiles: the K levels (`models.shape.check_quantiles`).

    Example:
        >>> layer = MonotoneQuantiles((0.1, 0.5, 0.9))
        >>> keras.ops.convert_to_numpy(layer(np.array([[[[-9.0], [2.0], [9.0]]]]))).ravel()
        array([ 1.9998766,  2.       , 11.000123 ], dtype=float32)
    """

    def __init__(self, quantiles: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quantiles = check_quantiles(quantiles)
        self.median = self.quantiles.index(0.5)

    def call(self, inputs: Any) -> Any:
        center = inputs[..., self.median : self.median + 1, :]
        above = center + ops.cumsum(ops.softplus(inputs[..., self.median + 1 :, :]), axis=-2)
        below_nearest_first = ops.flip(inputs[..., : self.median, :], axis=-2)
        below = center - ops.cumsum(ops.softplus(below_nearest_first), axis=-2)
        return ops.concatenate([ops.flip(below, axis=-2), center, above], axis=-2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantiles": list(self.quantiles)}


def head_quantiles_of(model: keras.Model) -> tuple[float, ...]:
    """The levels of a model's quantile head (its forecasts' K axis), or () for a point
    forecaster."""
    for layer in model.layers:
        if isinstance(layer, MonotoneQuantiles):
            return layer.quantiles
    return ()


@keras.saving.register_keras_serializable(package="forecaster")
class SortedQuantiles(keras.layers.Layer):
    """Sorts (batch, horizon, K, T) quantile forecasts along K, lowest first.

    Example:
        >>> values = np.array([[[[3.0], [1.0], [2.0]]]])  # (1, 1, 3, 1)
        >>> keras.ops.convert_to_numpy(SortedQuantiles()(values)).ravel().tolist()
        [1.0, 2.0, 3.0]
    """

    def call(self, inputs: Any) -> Any:
        # ops.sort sorts the last axis; the quantile axis is moved there and back.
        return ops.swapaxes(ops.sort(ops.swapaxes(inputs, -1, -2), axis=-1), -1, -2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="forecaster")
class PinballLoss(keras.losses.Loss):
    """The mean pinball loss of (batch, horizon, K, T) quantile forecasts of (batch, horizon, T)
    actual values: max(q (y - y_q), (q - 1) (y - y_q)) averaged over every value and level.

    Args:
        quantiles: the K levels, in the order of the forecast's quantile axis.
    """

    def __init__(self, quantiles: Sequence[float], name: str = "pinball", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.quantiles = check_quantiles(quantiles)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        levels = ops.reshape(ops.convert_to_tensor(self.quantiles, y_pred.dtype), (-1, 1))
        error = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -2) - y_pred
        return ops.mean(ops.maximum(levels * error, (levels - 1) * error), axis=(-2, -1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantiles": list(self.quantiles)}


@keras.saving.register_keras_serializable(package="forecaster")
class MedianAbsoluteError(keras.metrics.MeanMetricWrapper):
    """The mean absolute error of the median of (batch, horizon, K, T) quantile forecasts.

    Args:
        quantiles: the K levels of the forecast's quantile axis (0.5 among them).
    """

    def __init__(self, quantiles: Sequence[float], name: str = "mae", **kwargs: Any) -> None:
        self.quantiles = check_quantiles(quantiles)
        median = self.quantiles.index(0.5)

        def median_error(y_true: Any, y_pred: Any) -> Any:
            return ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred[..., median, :])

        super().__init__(median_error, name=name, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "quantiles": list(self.quantiles)}
