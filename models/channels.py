"""`TargetChannels`: the target channels of a window, for models that read channels alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="forecaster")
class TargetChannels(keras.layers.Layer):
    """Keeps the target channels of `(batch, steps, features)`, in `target_indices` order.

    Example:
        >>> layer = TargetChannels((2, 0))
        >>> keras.ops.convert_to_numpy(layer(np.arange(6.0).reshape(1, 2, 3))).tolist()
        [[[2.0, 0.0], [5.0, 3.0]]]
    """

    def __init__(self, target_indices: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_indices = tuple(int(index) for index in target_indices)
        if not self.target_indices or min(self.target_indices) < 0:
            raise ValueError(
                f"parameter target_indices: expected indices >= 0, got {target_indices!r}"
            )

    def call(self, inputs: Any) -> Any:
        return keras.ops.take(inputs, list(self.target_indices), axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], len(self.target_indices))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_indices": list(self.target_indices)}
