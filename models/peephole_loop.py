"""`PeepholeLSTM`'s time loop for unmasked input, in a transposed layout, with a hand-written
gradient for the gate update. `models/peephole.py` holds the layer and its cell; this module
holds only how the layer runs them fast (measured in benchmarks/README.md, `peephole.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf
from keras import ops

GateValuesFunction = Callable[[Any, Any, tuple[Any, Any, Any]], tuple[Any, ...]]
"""`(z, previous_cell, peepholes) -> (input_gate, forget_gate, candidate, cell, output_gate,
squashed_cell)` for gate blocks along the first axis (the cell's `gate_values`, axis 0)."""


def feature_major_loop(
    sequences: Any,
    initial_state: list[Any],
    *,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any | None,
    peepholes: tuple[Any | None, Any | None, Any | None],
    gate_values: GateValuesFunction,
    sigmoid_and_tanh: bool,
    coupled_input_forget: bool,
    input_mask: Any | None,
    recurrent_mask: Any | None,
    go_backwards: bool,
    unroll: bool,
    return_sequences: bool,
) -> tuple[Any, Any, list[Any]]:
    """`PeepholeLSTM`'s time loop without a mask, computing in the transposed layout: every
    per-step tensor is `(units, batch)` and the pre-activations `(gates * units, batch)`.

    Like `keras.layers.LSTM`'s loop, it takes plain tensors and functions, not the cell.

    Args:
        sequences: `(batch, steps, features)`.
        initial_state: `[h, c]`, each `(batch, units)`.
        kernel: `(features, gates * units)`; `recurrent_kernel`: `(units, gates * units)`;
            `bias`: `(gates * units,)` or None.
        peepholes: the input, forget and output gates' `(units,)` vectors, None where a gate
            has none.
        gate_values: the gate maths (see `GateValuesFunction`).
        sigmoid_and_tanh: whether the activations are Keras' sigmoid (gates) and tanh (cell),
            for which the gate update's gradient is written by hand; otherwise it is traced.
        coupled_input_forget: CIFG (`i = 1 - f`, three gate blocks).
        input_mask: `(batch, features)` dropout mask of the inputs (one per sequence), or None.
        recurrent_mask: `(batch, units)` dropout mask of the previous output, or None.
        go_backwards, unroll, return_sequences: as in `keras.layers.RNN`.

    Returns what `keras.src.backend.rnn` returns: the last output `(batch, units)`, the outputs
    `(batch, steps, units)` (or `(batch, 1, units)` without `return_sequences`) and `[h, c]`.

    Why transposed: at these sizes (batch 256, 32 units) the cost of a step is its ops, and
    splitting the pre-activations into gate blocks along the last axis (and concatenating
    their gradients back) copies 256 short rows each time, where blocks along the first axis
    are contiguous: 11.5 against 2.3 microseconds per split-and-concat in a probe on the 2-core
    machine. The bias rides in the input matmul as a column of ones, and the loop carries only
    the step counter and `h, c` (`rnn_loop` also writes every output to a list). The layer's
    speed against Keras' LSTM, and how far it can be measured: benchmarks/README.md.
    """
    dtype = sequences.dtype
    if input_mask is not None:
        sequences = sequences * input_mask[:, None, :]
    if recurrent_mask is not None:
        recurrent_mask = tf.transpose(recurrent_mask)
    inputs = tf.transpose(sequences, (1, 2, 0))  # (steps, features, batch)
    if go_backwards:
        inputs = tf.reverse(inputs, [0])
    kernel = ops.convert_to_tensor(kernel, dtype=dtype)
    if bias is not None:
        inputs = tf.concat([inputs, tf.ones_like(inputs[:, :1, :])], axis=1)
        kernel = tf.concat([kernel, ops.convert_to_tensor(bias, dtype=dtype)[None, :]], 0)
    kernel = tf.transpose(kernel)  # (gates * units, features [+ 1])
    recurrent_kernel = tf.transpose(ops.convert_to_tensor(recurrent_kernel, dtype=dtype))
    output, state = (tf.transpose(s) for s in initial_state[:2])
    peephole_columns = tuple(
        None if weight is None else ops.convert_to_tensor(weight, dtype=dtype)[:, None]
        for weight in peepholes
    )
    gate_update = _gate_update(
        gate_values, peephole_columns, tf.shape(state), sigmoid_and_tanh, coupled_input_forget
    )

    def step(step_inputs: Any, output: Any, state: Any) -> tuple[Any, Any]:
        if recurrent_mask is not None:
            output = output * recurrent_mask
        z = tf.add_n([tf.matmul(kernel, step_inputs), tf.matmul(recurrent_kernel, output)])
        return gate_update(z, state)

    if unroll:
        outputs = []
        for step_inputs in tf.unstack(inputs):
            output, state = step(step_inputs, output, state)
            outputs.append(output)
        all_outputs = tf.stack(outputs) if return_sequences else None
    else:
        steps = tf.shape(inputs)[0]
        input_list = tf.TensorArray(dtype, size=steps).unstack(inputs)
        output_list = tf.TensorArray(dtype, size=steps if return_sequences else 0)

        def body(time: Any, output: Any, state: Any, output_list: Any) -> tuple[Any, ...]:
            output, state = step(input_list.read(time), output, state)
            if return_sequences:
                output_list = output_list.write(time, output)
            return time + 1, output, state, output_list

        _, output, state, output_list = tf.while_loop(
            lambda time, *_: time < steps,
            body,
            (tf.constant(0), output, state, output_list),
            maximum_iterations=steps,
        )
        all_outputs = output_list.stack() if return_sequences else None
    last_output, last_state = tf.transpose(output), tf.transpose(state)
    if all_outputs is None:
        all_outputs = last_output[:, None, :]
    else:
        all_outputs = tf.transpose(all_outputs, (2, 0, 1))
    return last_output, all_outputs, [last_output, last_state]


def _gate_update(
    gate_values: GateValuesFunction,
    peephole_columns: tuple[Any, Any, Any],
    block_shape: Any,
    sigmoid_and_tanh: bool,
    coupled: bool,
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """The output and new cell state as a function of `z` and `previous_cell`, with a
    hand-written gradient where the activations are Keras' sigmoid and tanh (otherwise the
    traced one), the peephole columns broadcast once to `block_shape`.

    Why by hand: `fit` traces the batch dimension as unknown, and TensorFlow's gradient of
    every `Mul` and `AddV2` whose operand shapes are not fully known adds a
    `BroadcastGradientArgs`, two `Sum`s, two `Reshape`s and their `Shape`s to each step of the
    backward loop (about 100 ops per step for this cell's 13 products and sums). Here the
    operands always have the same shape, so none of that is needed, and each peephole's
    gradient is reduced over the batch in its step: a `(units, 1)` column per step is cheaper
    to pass back than a `(units, batch)` block (stacking three such blocks took, in a profile of
    the 24-step training step, 25 of its 51 concat ops and 0.7 of their 1.8 ms).
    """
    peepholes = tuple(
        None if column is None else tf.broadcast_to(column, block_shape)
        for column in peephole_columns
    )
    if not sigmoid_and_tanh:

        def traced_gate_update(z: Any, previous_cell: Any) -> tuple[Any, Any]:
            gates = gate_values(z, previous_cell, peepholes)
            return gates[4] * gates[5], gates[3]

        return traced_gate_update
    present = [column is not None for column in peephole_columns]
    input_peephole, forget_peephole, output_peephole = peepholes

    @tf.custom_gradient
    def gate_update_with_peepholes(z: Any, previous_cell: Any, *columns: Any) -> Any:
        # The step computes with the broadcast blocks (a broadcasting `Mul` costs three times
        # a same-shape one); `columns` are the peepholes as the gradient sees them.
        del columns
        gates = gate_values(z, previous_cell, peepholes)
        input_gate, forget_gate, candidate, cell_state, output_gate, squashed_cell = gates
        output = output_gate * squashed_cell

        def gradient(output_gradient: Any, cell_gradient: Any) -> Any:
            d_z_output = tf.raw_ops.SigmoidGrad(y=output_gate, dy=output_gradient * squashed_cell)
            cell_terms = [
                cell_gradient,
                tf.raw_ops.TanhGrad(y=squashed_cell, dy=output_gradient * output_gate),
            ]
            if output_peephole is not None:
                cell_terms.append(d_z_output * output_peephole)
            d_cell = tf.add_n(cell_terms)
            d_z_cell = tf.raw_ops.TanhGrad(y=candidate, dy=d_cell * input_gate)
            previous_terms = [d_cell * forget_gate]
            d_z_input = None
            if coupled:
                d_z_forget = tf.raw_ops.SigmoidGrad(
                    y=forget_gate, dy=d_cell * (previous_cell - candidate)
                )
                blocks = [d_z_forget, d_z_cell, d_z_output]
            else:
                d_z_forget = tf.raw_ops.SigmoidGrad(y=forget_gate, dy=d_cell * previous_cell)
                d_z_input = tf.raw_ops.SigmoidGrad(y=input_gate, dy=d_cell * candidate)
                blocks = [d_z_input, d_z_forget, d_z_cell, d_z_output]
                if input_peephole is not None:
                    previous_terms.append(d_z_input * input_peephole)
            if forget_peephole is not None:
                previous_terms.append(d_z_forget * forget_peephole)
            peephole_terms = [
                (d_z_input, previous_cell),
                (d_z_forget, previous_cell),
                (d_z_output, cell_state),
            ]
            return (
                tf.concat(blocks, axis=0),
                tf.add_n(previous_terms),
                *(
                    tf.reduce_sum(d_z * state, axis=1, keepdims=True)
                    for (d_z, state), is_present in zip(peephole_terms, present, strict=True)
                    if is_present
                ),
            )

        return (output, cell_state), gradient

    columns = [column for column in peephole_columns if column is not None]
    return lambda z, previous_cell: gate_update_with_peepholes(z, previous_cell, *columns)
