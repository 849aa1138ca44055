"""Layers of models that read channels alone: `TargetChannels` picks them, `FoldIntoBatch` and
`UnfoldFromBatch` move them into the batch and back."""

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


@keras.saving.register_keras_serializable(package="forecaster")
class FoldIntoBatch(keras.layers.Layer):
    """`(batch, groups, ...)` -> `(batch * groups, ...)`: each group becomes a row of its own.

    Channel-independent models fold their channels into the batch, so one shared network reads
    every channel in one large batch (row `b * groups + g` is group `g` of example `b`), and
    `UnfoldFromBatch(groups)` puts them back.

    Example:
        >>> keras.ops.convert_to_numpy(FoldIntoBatch()(np.zeros((2, 3, 4)))).shape
        (6, 4)
    """

    def call(self, inputs: Any) -> Any:
        return keras.ops.reshape(inputs, (-1, *inputs.shape[2:]))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (None, *input_shape[2:])


@keras.saving.register_keras_serializable(package="forecaster")
class UnfoldFromBatch(keras.layers.Layer):
    """`(batch * groups, ...)` -> `(batch, groups, ...)`: the inverse of `FoldIntoBatch`.

    Example:
        >>> keras.ops.convert_to_numpy(UnfoldFromBatch(3)(np.zeros((6, 4)))).shape
        (2, 3, 4)
    """

    def __init__(self, groups: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"parameter groups: expected an integer >= 1, got {groups!r}")
        self.groups = groups

    def call(self, inputs: Any) -> Any:
        return keras.ops.reshape(inputs, (-1, self.groups, *inputs.shape[1:]))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (None, self.groups, *input_shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups}
