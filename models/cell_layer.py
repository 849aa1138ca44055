"""A `keras.layers.RNN` around one cell whose constructor arguments are the layer's own.

`ClockworkRNN` and `DepthGatedLSTM` take their cell's arguments directly, as `keras.layers.LSTM`
does, and save them flat in their configuration, so a saved layer is rebuilt by calling the
class with its configuration.
"""

from __future__ import annotations

from typing import Any

import keras


class CellLayer(keras.layers.RNN):
    """`keras.layers.RNN` with the cell's arguments in the layer's configuration."""

    def call(
        self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False
    ) -> Any:
        """Runs the cell over `sequences` `(batch, steps, features)`."""
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

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
