"""The naive baselines as weightless Keras layers with exact outputs: the last value, the last
season repeated, and the window mean. Registered as serializable (package "forecaster")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from models.shape import require_positive


class _TargetForecast(keras.layers.Layer):
    """Base of the baselines: holds the horizon and the target positions."""

    def __init__(self, horizon: int, target_indices: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.horizon = require_positive("horizon", horizon)
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
        self.season = require_positive("season", season)

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
