"""Clockwork RNN (Koutnik et al. 2014): hidden modules that tick at different periods.

The `units` hidden units are split into `len(periods)` modules of equal size. At step `t`
(counted from 0 at the first input) module `i` is updated only when `t % periods[i] == 0`:

```
h_{t,i} = tanh(W_{I,i} x_t + sum_{j: T_j >= T_i} W_{H,ij} h_{t-1,j} + b_i)   if t % T_i == 0
h_{t,i} = h_{t-1,i}                                                        otherwise
```

Slow modules feed fast ones, never the reverse: with `h @ recurrent_kernel`, the block from
module `j` (rows) to module `i` (columns) is used only where `T_j >= T_i`. The other blocks are
multiplied by a fixed 0/1 mask in every step and start at zero, so they get no gradient and stay
exactly zero through training (`recurrent_kernel_mask`).

The states are `[h, clock]`: the clock is the step count modulo the least common multiple of the
periods, so it stays exact however long a stateful stream runs (a cycle longer than the compute
dtype counts exactly, e.g. 256 in bfloat16, is refused). With `go_backwards` the clock starts at
the last step of the sequence, the first one read. Masked steps leave both states
unchanged, as in every Keras RNN: the clock only counts the steps that are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
from keras import ops

from models.cell_layer import CellLayer, dropout_rate_argument, positive_integer_argument

DEFAULT_PERIODS = (1, 2, 4, 8, 16)
"""Koutnik et al.'s exponential clock periods."""
EXACT_INTEGERS = {"float16": 2**11, "bfloat16": 2**8, "float64": 2**53}
"""Largest count each float dtype holds exactly (float32: 2**24), for the clock state."""


def _periods(periods: Iterable[int], units: int) -> tuple[int, ...]:
    values = tuple(periods)
    if not values or any(
        isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1 for p in values
    ):
        raise ValueError(
            "Received an invalid value for argument `periods`, expected a non-empty sequence of "
            f"positive integers, got {periods!r}."
        )
    positive_integer_argument("units", units)
    if units % len(values):
        raise ValueError(
            f"Received units={units} for {len(values)} periods {values}: the units are split into "
            f"one module per period, so units must be a multiple of {len(values)}."
        )
    return tuple(int(p) for p in values)


def unit_periods(periods: tuple[int, ...], units: int) -> np.ndarray:
    """The period of every hidden unit, `(units,)`: module `i`'s units have `periods[i]`."""
    return np.repeat(np.asarray(periods), units // len(periods))


def recurrent_kernel_mask(periods: tuple[int, ...], units: int) -> np.ndarray:
    """`(units, units)` 0/1 mask of `recurrent_kernel`: row unit j feeds column unit i iff
    `T_j >= T_i` (slow to fast and within a module)."""
    per_unit = unit_periods(periods, units)
    return (per_unit[:, np.newaxis] >= per_unit[np.newaxis, :]).astype("float32")


@keras.saving.register_keras_serializable(package="forecaster")
class ClockworkRNNCell(keras.layers.SimpleRNNCell):
    """Cell class for `ClockworkRNN`: `keras.layers.SimpleRNNCell` with clocked modules.

    Args:
        units: Positive integer, a multiple of `len(periods)`.
        periods: Clock period of each module, in steps (default `(1, 2, 4, 8, 16)`).
        **kwargs: `keras.layers.SimpleRNNCell`'s arguments (activation, use_bias,
            initializers, regularizers, constraints, dropout, recurrent_dropout, seed, name,
            dtype).
    """

    def __init__(self, units: int, periods: Iterable[int] = DEFAULT_PERIODS, **kwargs: Any):
        checked = _periods(periods, units)
        for name in ("dropout", "recurrent_dropout"):
            dropout_rate_argument(name, kwargs.get(name, 0.0))
        super().__init__(units, **kwargs)
        self.periods = checked
        self.clock_cycle = math.lcm(*self.periods)
        self.state_size = [self.units, 1]
        self._mask = recurrent_kernel_mask(self.periods, self.units)
        self._unit_periods = unit_periods(self.periods, self.units)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Creates `kernel`, `recurrent_kernel` (initialised with the masked blocks at zero) and
        `bias`."""
        exact = EXACT_INTEGERS.get(self.compute_dtype, 2**24)
        if self.clock_cycle > exact:
            raise ValueError(
                f"periods {self.periods}: the clock counts up to their least common multiple "
                f"{self.clock_cycle}, more than {self.compute_dtype} counts exactly ({exact})"
            )
        mask, initializer = self._mask, self.recurrent_initializer

        def masked_initializer(shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
            return initializer(shape, dtype=dtype, **kwargs) * ops.cast(mask, dtype)

        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            name="recurrent_kernel",
            initializer=masked_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        """One step: `inputs` `(batch, features)`, `states` `[h, clock]` -> `(h, [h, clock])`."""
        previous_output, clock = states[0], states[1]
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        recurrent_input = previous_output
        if training and self.recurrent_dropout > 0:
            recurrent_input = previous_output * self.get_recurrent_dropout_mask(previous_output)
        # The mask in every step, not only at initialisation: the masked blocks get no gradient,
        # so no optimizer moves them off zero.
        mask = ops.convert_to_tensor(self._mask, dtype=self.recurrent_kernel.dtype)
        z = ops.matmul(inputs, self.kernel) + ops.matmul(
            recurrent_input, self.recurrent_kernel * mask
        )
        if self.use_bias:
            z = z + self.bias
        candidate = self.activation(z)
        # (batch, 1) clock against (units,) periods: which units tick at this step.
        periods = ops.convert_to_tensor(self._unit_periods, dtype=clock.dtype)
        output = ops.where(ops.equal(ops.mod(clock, periods), 0), candidate, previous_output)
        return output, [output, ops.mod(clock + 1, self.clock_cycle)]

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        """Zero output, clock at step 0."""
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
            ops.zeros((batch_size, 1), dtype=self.compute_dtype),
        ]

    def get_config(self) -> dict[str, Any]:
        """`SimpleRNNCell`'s configuration plus `periods`."""
        return {**super().get_config(), "periods": list(self.periods)}


@keras.saving.register_keras_serializable(package="forecaster")
class ClockworkRNN(CellLayer):
    """Clockwork RNN layer: a `ClockworkRNNCell` over a sequence (equations in the module).

    Args:
        units: Positive integer, a multiple of `len(periods)`.
        periods: Clock period of each module in steps (default `(1, 2, 4, 8, 16)`).
        activation, use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: as in
            `keras.layers.SimpleRNN`.
        return_sequences, return_state, go_backwards, stateful, unroll: as in
            `keras.layers.RNN`; the states are `[h, clock]`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`, `activity_regularizer`,
            `zero_output_for_mask`).

    Example:
        >>> ClockworkRNN(8, periods=(1, 4))(np.zeros((2, 5, 3), "float32")).shape
        TensorShape([2, 8])
    """

    def __init__(
        self,
        units: int,
        periods: Iterable[int] = DEFAULT_PERIODS,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
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
        cell = ClockworkRNNCell(
            units,
            periods=periods,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="clockwork_rnn_cell",
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
