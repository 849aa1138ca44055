"""Depth-gated LSTM (Yao et al. 2015): stacked LSTMs whose cells are linked through a gate.

A stack of `layers` LSTM layers of `units` each, run as one recurrent cell. The first layer is a
plain LSTM over the inputs. Each upper layer `l` reads the output `x_t = h_t^{l-1}` of the layer
below and also receives that layer's new cell state `c_t^{l-1}` through a depth gate:

```
i_t, f_t, o_t = sigmoid(W_{i,f,o} x_t + U_{i,f,o} h_{t-1} + b_{i,f,o})
g_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
d_t = sigmoid(W_d x_t + w_cd * c_{t-1} + w_ld * c_t^{l-1} + b_d)
c_t = d_t * c_t^{l-1} + f_t * c_{t-1} + i_t * g_t
h_t = o_t * tanh(c_t)
```

with `*` elementwise and `w_cd`, `w_ld` vectors of length `units`. Each layer's `kernel`,
`recurrent_kernel` and `bias` are laid out as in `keras.layers.LSTMCell` (gates i, f, c, o), so
with the depth gate shut every layer computes what `keras.layers.LSTM` computes. The states are
`[h^1, c^1, ..., h^N, c^N]`; the layer's output is the top layer's `h`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import (
    DropoutRNNCell,
)  # Keras' mask cache; no public name

from models.cell_layer import (
    CellLayer,
    dropout_rate_argument,
    fresh_initializer,
    positive_integer_argument,
)


@keras.saving.register_keras_serializable(package="forecaster")
class DepthGatedLSTMCell(keras.layers.Layer, DropoutRNNCell):
    """Cell class for `DepthGatedLSTM`: one step of the whole stack.

    Args:
        units: Width of every layer of the stack.
        layers: Number of stacked LSTM layers (1 is a plain LSTM).
        kernel_initializer: Initializer of the input and depth kernels.
        recurrent_initializer: Initializer of the recurrent kernels.
        bias_initializer: Initializer of the gate biases; the forget gate's starts at 1
            (`unit_forget_bias`, as in `keras.layers.LSTM`).
        depth_initializer: Initializer of the depth gate's peek vectors `w_cd` and `w_ld`.
        dropout: Fraction of the inputs to the first layer to drop (one mask per sequence).
        recurrent_dropout: Fraction of each layer's previous output to drop (one mask per
            sequence, shared by the layers).
        seed: Random seed for dropout.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        units: int,
        layers: int = 2,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        depth_initializer: Any = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = positive_integer_argument("units", units)
        self.layers = positive_integer_argument("layers", layers)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.depth_initializer = keras.initializers.get(depth_initializer)
        self.dropout = dropout_rate_argument("dropout", dropout)
        self.recurrent_dropout = dropout_rate_argument("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.state_size = [units] * (2 * layers)
        self.output_size = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Creates each layer's LSTM weights and, above the first, its depth gate's."""
        units = self.units

        def bias_initializer(_shape: Any, *args: Any, **kwargs: Any) -> Any:
            blocks = [
                fresh_initializer(self.bias_initializer)((units,), *args, **kwargs)
                for _ in range(4)
            ]
            blocks[1] = ops.ones((units,), dtype=kwargs.get("dtype"))
            return ops.concatenate(blocks)

        self.stack = []
        for layer in range(self.layers):
            features = input_shape[-1] if layer == 0 else units
            weights = {
                "kernel": self.add_weight(
                    shape=(features, 4 * units),
                    name=f"layer_{layer}_kernel",
                    initializer=fresh_initializer(self.kernel_initializer),
                ),
                "recurrent_kernel": self.add_weight(
                    shape=(units, 4 * units),
                    name=f"layer_{layer}_recurrent_kernel",
                    initializer=fresh_initializer(self.recurrent_initializer),
                ),
                "bias": self.add_weight(
                    shape=(4 * units,), name=f"layer_{layer}_bias", initializer=bias_initializer
                ),
            }
            if layer > 0:
                weights["depth_kernel"] = self.add_weight(
                    shape=(units, units),
                    name=f"layer_{layer}_depth_kernel",
                    initializer=fresh_initializer(self.kernel_initializer),
                )
                for name in ("depth_cell_weights", "depth_lower_weights"):
                    weights[name] = self.add_weight(
                        shape=(units,),
                        name=f"layer_{layer}_{name}",
                        initializer=fresh_initializer(self.depth_initializer),
                    )
                weights["depth_bias"] = self.add_weight(
                    shape=(units,), name=f"layer_{layer}_depth_bias", initializer="zeros"
                )
            self.stack.append(weights)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        """One step of the stack: `inputs` `(batch, features)` -> `(h^N, [h^1, c^1, ...])`."""
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        new_states: list[Any] = []
        lower_cell = None
        layer_input = inputs
        for layer, weights in enumerate(self.stack):
            previous_output, previous_cell = states[2 * layer], states[2 * layer + 1]
            if training and self.recurrent_dropout > 0:
                previous_output = previous_output * self.get_recurrent_dropout_mask(previous_output)
            z = (
                ops.matmul(layer_input, weights["kernel"])
                + ops.matmul(previous_output, weights["recurrent_kernel"])
                + weights["bias"]
            )
            z_input, z_forget, z_cell, z_output = ops.split(z, 4, axis=1)
            cell = ops.sigmoid(z_forget) * previous_cell + ops.sigmoid(z_input) * ops.tanh(z_cell)
            if lower_cell is not None:
                depth_gate = ops.sigmoid(
                    ops.matmul(layer_input, weights["depth_kernel"])
                    + weights["depth_cell_weights"] * previous_cell
                    + weights["depth_lower_weights"] * lower_cell
                    + weights["depth_bias"]
                )
                cell = cell + depth_gate * lower_cell
            output = ops.sigmoid(z_output) * ops.tanh(cell)
            new_states.extend([output, cell])
            layer_input, lower_cell = output, cell
        return layer_input, new_states

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        """Zero outputs and cells for every layer."""
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(2 * self.layers)
        ]

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, serialised."""
        return {
            **super().get_config(),
            "units": self.units,
            "layers": self.layers,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "depth_initializer": keras.initializers.serialize(self.depth_initializer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="forecaster")
class DepthGatedLSTM(CellLayer):
    """Depth-gated LSTM layer: a `DepthGatedLSTMCell` stack over a sequence (see the module).

    Args:
        units: Width of every layer of the stack.
        layers: Number of stacked layers (default 2).
        kernel_initializer, recurrent_initializer, bias_initializer, depth_initializer, dropout,
            recurrent_dropout, seed: see `DepthGatedLSTMCell`.
        return_sequences, return_state, go_backwards, stateful, unroll: as in
            `keras.layers.RNN`; the states are `[h^1, c^1, ..., h^N, c^N]`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`, `zero_output_for_mask`).

    Example:
        >>> DepthGatedLSTM(4, layers=3)(np.zeros((2, 5, 3), "float32")).shape
        TensorShape([2, 4])
    """

    def __init__(
        self,
        units: int,
        layers: int = 2,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        depth_initializer: Any = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        **kwargs: Any,
    ) -> None:
        cell = DepthGatedLSTMCell(
            units,
            layers=layers,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            depth_initializer=depth_initializer,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="depth_gated_lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)
