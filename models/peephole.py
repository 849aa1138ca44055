"""Peephole LSTM: an LSTM whose gates also see the cell state (Gers & Schmidhuber 2000).

Equations, in Graves' (2013) notation, with `*` elementwise and `p_i, p_f, p_o` diagonal
(one vector of length `units` each):

```
i_t = sigmoid(W_i x_t + U_i h_{t-1} + p_i * c_{t-1} + b_i)
f_t = sigmoid(W_f x_t + U_f h_{t-1} + p_f * c_{t-1} + b_f)
g_t = tanh   (W_c x_t + U_c h_{t-1} + b_c)
c_t = f_t * c_{t-1} + i_t * g_t
o_t = sigmoid(W_o x_t + U_o h_{t-1} + p_o * c_t + b_o)      # the NEW cell state
h_t = o_t * tanh(c_t)
```

`sigmoid` is `recurrent_activation` and `tanh` is `activation`, as in `keras.layers.LSTM`.
The weights are named and shaped as in `keras.layers.LSTMCell` (`kernel`, `recurrent_kernel`,
`bias`, gate order i, f, c, o), so LSTM weights copy into this cell; with the peephole weights at
zero (their default initialiser) the cell computes exactly what `keras.layers.LSTM` computes.

With `coupled_input_forget=True` (CIFG, Greff et al. 2017) the input gate is `i_t = 1 - f_t`:
there are no input-gate weights, `kernel` is `(features, 3 * units)`, `recurrent_kernel` is
`(units, 3 * units)` and `bias` is `(3 * units,)`, in gate order f, c, o, and there is no input
peephole.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, NamedTuple

import keras
from keras import ops
from keras.src.backend import rnn as rnn_loop  # keras.layers.RNN's loop; no public name

from models.cell_layer import (
    dropout_rate_argument,
    fresh_initializer,
    positive_integer_argument,
)
from models.names import PEEPHOLE_GATES
from models.peephole_loop import feature_major_loop


class GateValues(NamedTuple):
    """One step's gates and states; the output is `output_gate * squashed_cell`."""

    input_gate: Any  # 1 - forget_gate under CIFG
    forget_gate: Any
    candidate: Any  # activation(W_c x + U_c h + b_c)
    cell: Any  # the new cell state
    output_gate: Any
    squashed_cell: Any  # activation(cell)


AUTO_UNROLL_MAX_STEPS = 48
"""Longest sequence that `PeepholeLSTM(unroll=None)` unrolls (see `PeepholeLSTM`'s `unroll`)."""


def _gate_names(peepholes: str | Iterable[str], coupled_input_forget: bool) -> tuple[str, ...]:
    """Validates `peepholes` and returns the gates that peek, in canonical order."""
    names = (peepholes,) if isinstance(peepholes, str) else tuple(peepholes)
    unknown = [name for name in names if name not in PEEPHOLE_GATES]
    if unknown:
        raise ValueError(
            "Received an invalid value for argument `peepholes`, expected gate names among "
            f"{PEEPHOLE_GATES}, got {peepholes!r} (unknown: {unknown})."
        )
    # Under CIFG the input gate is 1 - f: it has no weights of its own, so no peephole either.
    # The default asks for all three gates, hence dropping "input" quietly instead of raising.
    return tuple(
        name
        for name in PEEPHOLE_GATES
        if name in names and not (coupled_input_forget and name == "input")
    )


@keras.saving.register_keras_serializable(package="forecaster")
class PeepholeLSTMCell(keras.layers.LSTMCell):
    """Cell class for the peephole LSTM: `keras.layers.LSTMCell` plus diagonal peepholes.

    Processes one time step; `PeepholeLSTM` runs it over a sequence. The module docstring gives
    the equations and the weight layout.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the cell input and of the cell state on output
            (default `"tanh"`).
        recurrent_activation: Activation of the gates (default `"sigmoid"`).
        use_bias: Whether the cell uses a bias vector.
        kernel_initializer: Initializer for `kernel` (inputs to gates).
        recurrent_initializer: Initializer for `recurrent_kernel` (previous output to gates).
        bias_initializer: Initializer for `bias`.
        unit_forget_bias: If `True`, add 1 to the forget-gate bias at initialisation (and use
            `bias_initializer` for the other gates).
        kernel_regularizer: Regularizer for `kernel`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
        bias_regularizer: Regularizer for `bias`.
        kernel_constraint: Constraint for `kernel`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
        bias_constraint: Constraint for `bias`.
        dropout: Fraction of the inputs to drop (one mask per sequence, shared by all gates).
        recurrent_dropout: Fraction of the previous output to drop (one mask per sequence,
            shared by all gates).
        seed: Random seed for dropout.
        peepholes: The gates that peek at the cell state: any subset of
            `("input", "forget", "output")`. Gates left out get no peephole weight.
        peephole_initializer: Initializer for the peephole vectors (default `"zeros"`, which
            starts training from a plain LSTM).
        peephole_regularizer: Regularizer for each peephole vector.
        peephole_constraint: Constraint for each peephole vector.
        coupled_input_forget: If `True`, use CIFG: `i = 1 - f`, no input-gate weights.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`).

    Attributes:
        input_gate_peephole_weights: `(units,)` variable, or `None` when the gate does not peek.
        forget_gate_peephole_weights: Same for the forget gate.
        output_gate_peephole_weights: Same for the output gate.

    Example:
        >>> layer = keras.layers.RNN(PeepholeLSTMCell(4, peepholes=("output",)))
        >>> layer(np.zeros((2, 3, 5), "float32")).shape
        TensorShape([2, 4])
    """

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        peepholes: str | Iterable[str] = PEEPHOLE_GATES,
        peephole_initializer: Any = "zeros",
        peephole_regularizer: Any = None,
        peephole_constraint: Any = None,
        coupled_input_forget: bool = False,
        **kwargs: Any,
    ) -> None:
        positive_integer_argument("units", units)
        dropout_rate_argument("dropout", dropout)
        dropout_rate_argument("recurrent_dropout", recurrent_dropout)
        # This cell computes all gates with one matmul whatever the dropout, so Keras'
        # per-gate `implementation=1` has no meaning here.
        kwargs.pop("implementation", None)
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
        # LSTMCell switches to four dropout masks (one per gate) when recurrent_dropout > 0;
        # this cell uses one mask for the inputs and one for the previous output, shared by
        # all gates, as LSTMCell's fused implementation does for input dropout.
        self.implementation = 2
        self.dropout_mask_count = None
        self.coupled_input_forget = bool(coupled_input_forget)
        self.peepholes = _gate_names(peepholes, self.coupled_input_forget)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.peephole_regularizer = keras.regularizers.get(peephole_regularizer)
        self.peephole_constraint = keras.constraints.get(peephole_constraint)
        self.input_gate_peephole_weights = None
        self.forget_gate_peephole_weights = None
        self.output_gate_peephole_weights = None

    @property
    def gate_count(self) -> int:
        """Number of gate blocks in `kernel`: 4 (i, f, c, o), or 3 (f, c, o) under CIFG."""
        return 3 if self.coupled_input_forget else 4

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Creates `kernel`, `recurrent_kernel`, `bias` and the peephole vectors."""
        # LSTMCell.build is not called: it would create four gate blocks even under CIFG.
        features = input_shape[-1]
        width = self.units * self.gate_count
        self.kernel = self.add_weight(
            shape=(features, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            forget_block = 0 if self.coupled_input_forget else 1

            def bias_initializer(_shape, *args, **kwargs):
                # One draw per gate block (keras.layers.LSTMCell reuses one), so a random
                # bias initializer gives every gate its own values.
                blocks = [
                    fresh_initializer(self.bias_initializer)((self.units,), *args, **kwargs)
                    for _ in range(self.gate_count)
                ]
                if self.unit_forget_bias:
                    blocks[forget_block] = ops.ones((self.units,), dtype=kwargs.get("dtype"))
                return ops.concatenate(blocks)

            self.bias = self.add_weight(
                shape=(width,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        for gate in self.peepholes:
            weight = self.add_weight(
                shape=(self.units,),
                name=f"{gate}_gate_peephole_weights",
                initializer=fresh_initializer(self.peephole_initializer),
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, f"{gate}_gate_peephole_weights", weight)
        self.built = True

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        """One step: `inputs` `(batch, features)`, `states` `[h, c]` -> `(h, [h, c])`."""
        return self.step(inputs, states, self.peephole_weights(), training=training)

    def peephole_weights(self) -> tuple[Any, Any, Any]:
        """The input, forget and output gates' peephole vectors, `None` where a gate has none."""
        return (
            self.input_gate_peephole_weights,
            self.forget_gate_peephole_weights,
            self.output_gate_peephole_weights,
        )

    def step(
        self,
        inputs: Any,
        states: Any,
        peepholes: tuple[Any, Any, Any],
        training: bool = False,
    ) -> tuple[Any, list[Any]]:
        """`call` with `peephole_weights()` given, or them broadcast to `(batch, units)`."""
        previous_output, previous_cell = states[0], states[1]
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            previous_output = previous_output * self.get_recurrent_dropout_mask(previous_output)

        # This step serves masked input and `keras.layers.RNN(cell)`; `PeepholeLSTM` without a
        # mask runs `feature_major_loop` (models/peephole_loop.py). Two matmuls and an add
        # trained faster than one stacked matmul, peepholes folded into it, or `x W + b` for
        # all steps before the loop (benchmarks/README.md, the cell's step forms).
        z = ops.matmul(inputs, self.kernel) + ops.matmul(previous_output, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        output, cell = self.gate_update(z, previous_cell, peepholes, axis=1)
        return output, [output, cell]

    def gate_update(
        self, z: Any, previous_cell: Any, peepholes: tuple[Any, Any, Any], axis: int
    ) -> tuple[Any, Any]:
        """The output and new cell state from the pre-activations `z`, whose gate blocks lie
        along `axis` (1 for `(batch, gates * units)`, 0 for the transposed layout of
        `PeepholeLSTM`'s loop); `previous_cell` and `peepholes` have the layout of one block.
        """
        gates = self.gate_values(z, previous_cell, peepholes, axis)
        return gates.output_gate * gates.squashed_cell, gates.cell

    def gate_values(
        self, z: Any, previous_cell: Any, peepholes: tuple[Any, Any, Any], axis: int
    ) -> GateValues:
        """Every intermediate of `gate_update` (the hand-written gradient of the layer's loop
        needs them)."""
        input_peephole, forget_peephole, output_peephole = peepholes
        if self.coupled_input_forget:
            z_forget, z_cell, z_output = ops.split(z, 3, axis=axis)
        else:
            z_input, z_forget, z_cell, z_output = ops.split(z, 4, axis=axis)
        if forget_peephole is not None:
            z_forget = z_forget + forget_peephole * previous_cell
        forget_gate = self.recurrent_activation(z_forget)
        if self.coupled_input_forget:
            input_gate = 1.0 - forget_gate
        else:
            if input_peephole is not None:
                z_input = z_input + input_peephole * previous_cell
            input_gate = self.recurrent_activation(z_input)
        candidate = self.activation(z_cell)
        cell = forget_gate * previous_cell + input_gate * candidate
        if output_peephole is not None:
            z_output = z_output + output_peephole * cell
        return GateValues(
            input_gate=input_gate,
            forget_gate=forget_gate,
            candidate=candidate,
            cell=cell,
            output_gate=self.recurrent_activation(z_output),
            squashed_cell=self.activation(cell),
        )

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, serialised."""
        config = super().get_config()
        config.update(
            {
                "peepholes": list(self.peepholes),
                "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
                "peephole_regularizer": keras.regularizers.serialize(self.peephole_regularizer),
                "peephole_constraint": keras.constraints.serialize(self.peephole_constraint),
                "coupled_input_forget": self.coupled_input_forget,
            }
        )
        return config


def _from_cell(name: str) -> property:
    """A read-only layer attribute that is the cell's, as `keras.layers.LSTM` exposes them."""
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


@keras.saving.register_keras_serializable(package="forecaster")
class PeepholeLSTM(keras.layers.RNN):
    """Peephole LSTM layer: `keras.layers.LSTM` with peephole connections.

    Takes the arguments of `keras.layers.LSTM` (except `use_cudnn`: there is no cuDNN kernel
    for peepholes) plus the peephole ones of `PeepholeLSTMCell`, whose docstring describes them.
    Masking, `stateful`, `go_backwards`, `return_sequences` and `return_state` behave as in
    `keras.layers.LSTM`; the states are `[h, c]`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: See `PeepholeLSTMCell`.
        recurrent_activation: See `PeepholeLSTMCell`.
        use_bias: See `PeepholeLSTMCell`.
        kernel_initializer: See `PeepholeLSTMCell`.
        recurrent_initializer: See `PeepholeLSTMCell`.
        bias_initializer: See `PeepholeLSTMCell`.
        unit_forget_bias: See `PeepholeLSTMCell`.
        kernel_regularizer: See `PeepholeLSTMCell`.
        recurrent_regularizer: See `PeepholeLSTMCell`.
        bias_regularizer: See `PeepholeLSTMCell`.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: See `PeepholeLSTMCell`.
        recurrent_constraint: See `PeepholeLSTMCell`.
        bias_constraint: See `PeepholeLSTMCell`.
        dropout: See `PeepholeLSTMCell`.
        recurrent_dropout: See `PeepholeLSTMCell`.
        seed: See `PeepholeLSTMCell`.
        return_sequences: Return the output of every step instead of the last one.
        return_state: Also return the final states `h` and `c`.
        go_backwards: Process the sequence backwards and return the reversed sequence.
        stateful: Carry the final states of each batch into the next batch.
        unroll: Unroll the time loop (`True`), keep a symbolic loop (`False`), or decide per
            call (`None`, the default): unroll when the number of steps is known and at most
            `AUTO_UNROLL_MAX_STEPS`. With the current loop a `tf.while_loop` trained at 0.90x
            keras LSTM at 24 steps against 1.09x unrolled; at 96 and 144 steps unrolling gained
            nothing and costs graph size (benchmarks/README.md, the peephole layer).
        peepholes: See `PeepholeLSTMCell`.
        peephole_initializer: See `PeepholeLSTMCell`.
        peephole_regularizer: See `PeepholeLSTMCell`.
        peephole_constraint: See `PeepholeLSTMCell`.
        coupled_input_forget: See `PeepholeLSTMCell`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`, `zero_output_for_mask`).

    Example:
        >>> layer = PeepholeLSTM(4, return_sequences=True)
        >>> layer(np.zeros((2, 3, 5), "float32")).shape
        TensorShape([2, 3, 4])
    """

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
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
        unroll: bool | None = None,
        peepholes: str | Iterable[str] = PEEPHOLE_GATES,
        peephole_initializer: Any = "zeros",
        peephole_regularizer: Any = None,
        peephole_constraint: Any = None,
        coupled_input_forget: bool = False,
        **kwargs: Any,
    ) -> None:
        cell = PeepholeLSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            peepholes=peepholes,
            peephole_initializer=peephole_initializer,
            peephole_regularizer=peephole_regularizer,
            peephole_constraint=peephole_constraint,
            coupled_input_forget=coupled_input_forget,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="peephole_lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=bool(unroll),
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        if unroll not in (None, True, False):
            raise ValueError(f"Argument `unroll`: expected True, False or None, got {unroll!r}")
        self.unroll_policy = unroll
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def inner_loop(
        self, sequences: Any, initial_state: Any, mask: Any, training: bool = False
    ) -> Any:
        """The time loop: `feature_major_loop` (models/peephole_loop.py) where there is no mask,
        else `keras.layers.RNN`'s own loop (`rnn_loop`) with the peephole vectors broadcast once
        per sequence (a `(units,)` vector times the `(batch, units)` cell state costs a batch
        reduction and broadcast shape ops in every step's gradient; broadcast before the loop,
        one after it).
        """
        if self.unroll_policy is None:
            steps = sequences.shape[1]
            self.unroll = steps is not None and steps <= AUTO_UNROLL_MAX_STEPS
        cell = self.cell
        if not keras.tree.is_nested(initial_state):
            initial_state = [initial_state]
        if mask is None and keras.backend.backend() == "tensorflow":
            dropping_inputs = training and cell.dropout > 0.0
            dropping_outputs = training and cell.recurrent_dropout > 0.0
            return feature_major_loop(
                sequences,
                list(initial_state),
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias if cell.use_bias else None,
                peepholes=cell.peephole_weights(),
                gate_values=functools.partial(cell.gate_values, axis=0),
                sigmoid_and_tanh=cell.activation is keras.activations.tanh
                and cell.recurrent_activation is keras.activations.sigmoid,
                coupled_input_forget=cell.coupled_input_forget,
                input_mask=cell.get_dropout_mask(sequences[:, 0, :]) if dropping_inputs else None,
                recurrent_mask=cell.get_recurrent_dropout_mask(initial_state[0])
                if dropping_outputs
                else None,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
                return_sequences=self.return_sequences,
            )
        state_shape = ops.shape(initial_state[1])
        peepholes = tuple(
            None if weight is None else ops.broadcast_to(weight, state_shape)
            for weight in cell.peephole_weights()
        )

        def step(inputs: Any, states: Any) -> tuple[Any, list[Any]]:
            return cell.step(inputs, states, peepholes, training=training)

        return rnn_loop(
            step,
            sequences,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def call(
        self,
        sequences: Any,
        initial_state: Any = None,
        mask: Any = None,
        training: bool = False,
    ) -> Any:
        """Runs the layer over `sequences` `(batch, steps, features)`."""
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

    units = _from_cell("units")
    activation = _from_cell("activation")
    recurrent_activation = _from_cell("recurrent_activation")
    use_bias = _from_cell("use_bias")
    unit_forget_bias = _from_cell("unit_forget_bias")
    kernel_initializer = _from_cell("kernel_initializer")
    recurrent_initializer = _from_cell("recurrent_initializer")
    bias_initializer = _from_cell("bias_initializer")
    kernel_regularizer = _from_cell("kernel_regularizer")
    recurrent_regularizer = _from_cell("recurrent_regularizer")
    bias_regularizer = _from_cell("bias_regularizer")
    kernel_constraint = _from_cell("kernel_constraint")
    recurrent_constraint = _from_cell("recurrent_constraint")
    bias_constraint = _from_cell("bias_constraint")
    dropout = _from_cell("dropout")
    recurrent_dropout = _from_cell("recurrent_dropout")
    peepholes = _from_cell("peepholes")
    peephole_initializer = _from_cell("peephole_initializer")
    peephole_regularizer = _from_cell("peephole_regularizer")
    peephole_constraint = _from_cell("peephole_constraint")
    coupled_input_forget = _from_cell("coupled_input_forget")

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, serialised (the cell is rebuilt from them)."""
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.cell.seed,
            "peepholes": list(self.peepholes),
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
            "peephole_regularizer": keras.regularizers.serialize(self.peephole_regularizer),
            "peephole_constraint": keras.constraints.serialize(self.peephole_constraint),
            "coupled_input_forget": self.coupled_input_forget,
        }
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config, "unroll": self.unroll_policy}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PeepholeLSTM:
        """Rebuilds the layer from `get_config()`."""
        return cls(**config)
