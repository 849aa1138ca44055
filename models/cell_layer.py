"""What the recurrent layers of `models/` share: a `keras.layers.RNN` around one cell whose
constructor arguments are the layer's own, their argument checks, and fresh initializers.

`ClockworkRNN` and `DepthGatedLSTM` take their cell's arguments directly, as `keras.layers.LSTM`
does, and save them flat in their configuration, so a saved layer is rebuilt by calling the
class with its configuration.
"""

from __future__ import annotations

from typing import Any

import keras


def fresh_initializer(
    initializer: keras.initializers.Initializer,
) -> keras.initializers.Initializer:
    """A new instance of `initializer`: an unseeded Keras initializer draws one seed when it is
    made and gives the same values at every call, so each weight (or block of a weight) needs
    its own instance, or equal-shaped ones start identical."""
    return initializer.__class__.from_config(initializer.get_config())


def positive_integer_argument(name: str, value: Any) -> int:
    """`value`, or Keras' style of error for a cell argument that must be a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, "
            f"expected a positive integer, got {value!r}."
        )
    return value


def dropout_rate_argument(name: str, rate: float) -> float:
    """`rate`, or an error unless it is in [0, 1): Keras' cells would clamp a bad rate
    silently, and a rate of 1.0 would then drop nothing."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, "
            f"expected a float in [0, 1), got {rate!r}."
        )
    return rate


class CellLayer(keras.layers.RNN):
    """`keras.layers.RNN` with the cell's arguments in the layer's configuration."""

    def get_config(self) -> dict[str, Any]:
        """The layer's and the cell's constructor arguments, flat (the cell is rebuilt from
        them)."""
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config = {**super().get_config(), **cell_config}
        config.pop("cell", None)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CellLayer:
        """Rebuilds the layer from `get_config`."""
        return cls(**config)
