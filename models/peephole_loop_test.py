"""The peephole layer's loop (`models.peephole_loop`): looped and unrolled, masked, compiled with
XLA and with an unknown batch, against the NumPy reference and the cell stepped by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.peephole import (
    AUTO_UNROLL_MAX_STEPS,
    PeepholeLSTM,
    PeepholeLSTMCell,
)
from models.peephole_test import (
    FEATURES,
    STEPS,
    UNITS,
    numpy_peephole_lstm,
    random_sequences,
    randomise,
)


@pytest.mark.parametrize("unroll", [False, True])
def test_loop_and_unrolled_give_the_reference_numbers_with_a_mask(unroll: bool) -> None:
    layer = PeepholeLSTM(UNITS, return_sequences=True, return_state=True, unroll=unroll)
    sequences = random_sequences(seed=21)
    layer(sequences)
    weights = randomise(layer, seed=22)
    outputs, _, last_cell = layer(sequences)
    expected_outputs, expected_cell = numpy_peephole_lstm(sequences.astype("float64"), weights)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    np.testing.assert_allclose(last_cell, expected_cell, atol=1e-5)
    # A row whose last two steps are masked ends with the state of its first STEPS - 2 steps.
    mask = np.ones(sequences.shape[:2], dtype=bool)
    mask[0, -2:] = False
    _, _, masked_cell = layer(sequences, mask=tf.constant(mask))
    _, expected_short_cell = numpy_peephole_lstm(sequences[:1, :-2].astype("float64"), weights)
    np.testing.assert_allclose(masked_cell[:1], expected_short_cell, atol=1e-5)


def test_default_unrolls_short_sequences_only() -> None:
    layer = PeepholeLSTM(UNITS)
    assert layer.get_config()["unroll"] is None
    layer(random_sequences(seed=23, steps=AUTO_UNROLL_MAX_STEPS))
    assert layer.unroll is True
    layer(random_sequences(seed=24, steps=AUTO_UNROLL_MAX_STEPS + 1))
    assert layer.unroll is False
    assert PeepholeLSTM.from_config(layer.get_config()).get_config()["unroll"] is None
    assert PeepholeLSTM(UNITS, unroll=False).get_config()["unroll"] is False


@pytest.mark.parametrize("steps", [STEPS, AUTO_UNROLL_MAX_STEPS + 4])
def test_jit_compiled_prediction_equals_default_prediction(steps: int) -> None:
    # The benchmark's fast prediction path must compute the same numbers.
    inputs = keras.Input((steps, FEATURES))
    outputs = keras.layers.Dense(2)(
        PeepholeLSTM(UNITS, peephole_initializer="random_normal")(inputs)
    )
    model = keras.Model(inputs, outputs)
    sequences = random_sequences(seed=25, steps=steps)
    expected = model.predict(sequences, verbose=0)
    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict(sequences, verbose=0), expected, atol=1e-5)


def outputs_and_gradients(
    layer: keras.layers.Layer, sequences: tf.Tensor, mask: tf.Tensor | None, training: bool
) -> list[np.ndarray]:
    """Outputs, final states and the gradients of their weighted sum (inputs, then weights)."""
    with tf.GradientTape() as tape:
        tape.watch(sequences)
        results = layer(sequences, mask=mask, training=training)
        loss = sum(
            tf.reduce_sum(tensor * np.linspace(-1.0, 1.0, tensor.shape[-1])) for tensor in results
        )
    gradients = tape.gradient(loss, [sequences, *layer.trainable_weights])
    return [tensor.numpy() for tensor in [*results, *gradients]]


@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("coupled_input_forget", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("masked", [False, True])
def test_layer_loop_matches_the_cell_step_by_step(
    unroll: bool, coupled_input_forget: bool, dropout: float, masked: bool
) -> None:
    # PeepholeLSTM runs its own loop with the peepholes broadcast once per sequence;
    # keras.layers.RNN around the cell goes through PeepholeLSTMCell.call step by step. With the
    # same seed both draw the same dropout masks, so outputs and gradients must agree with
    # dropout on too.
    arguments = {
        "coupled_input_forget": coupled_input_forget,
        "dropout": dropout,
        "recurrent_dropout": dropout,
        "seed": 3,
    }
    layer = PeepholeLSTM(
        UNITS, return_sequences=True, return_state=True, unroll=unroll, **arguments
    )
    stepwise = keras.layers.RNN(
        PeepholeLSTMCell(UNITS, **arguments),
        return_sequences=True,
        return_state=True,
        unroll=unroll,
    )
    sequences = tf.constant(random_sequences(seed=26, steps=STEPS + 2))
    layer(sequences)
    stepwise(sequences)
    randomise(layer, seed=27)
    stepwise.set_weights(layer.get_weights())
    mask = None
    if masked:
        lengths = np.array([STEPS + 2, STEPS - 1, 2])
        mask = tf.constant(np.arange(STEPS + 2)[None, :] < lengths[:, None])
    training = dropout > 0.0
    ours = outputs_and_gradients(layer, sequences, mask, training)
    theirs = outputs_and_gradients(stepwise, sequences, mask, training)
    assert len(ours) == 3 + 1 + len(layer.trainable_weights)
    for our, their in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(our, their, atol=1e-5)


@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize(
    ("peepholes", "coupled_input_forget", "activations"),
    [
        (("input", "forget", "output"), False, ("tanh", "sigmoid")),
        (("output",), False, ("tanh", "sigmoid")),
        ((), False, ("tanh", "sigmoid")),
        (("forget", "output"), True, ("tanh", "sigmoid")),
        (("input", "forget", "output"), False, ("relu", "hard_sigmoid")),
    ],
)
def test_unmasked_loop_with_an_unknown_batch_matches_the_cell_step_by_step(
    unroll: bool,
    peepholes: tuple[str, ...],
    coupled_input_forget: bool,
    activations: tuple[str, str],
) -> None:
    # Without a mask the layer runs its transposed loop, whose gate update has a hand-written
    # gradient for sigmoid and tanh (the traced one otherwise). Traced with the batch size
    # unknown, as `fit` traces it, against keras.layers.RNN around the cell; this also covers
    # go_backwards and an initial state.
    arguments = {
        "peepholes": peepholes,
        "coupled_input_forget": coupled_input_forget,
        "activation": activations[0],
        "recurrent_activation": activations[1],
    }
    common = {"return_sequences": True, "return_state": True, "go_backwards": True}
    layer = PeepholeLSTM(UNITS, unroll=unroll, **common, **arguments)
    stepwise = keras.layers.RNN(PeepholeLSTMCell(UNITS, **arguments), unroll=unroll, **common)
    sequences = tf.constant(random_sequences(seed=31, steps=STEPS + 1))
    initial_state = [
        tf.constant(random_sequences(seed=seed, steps=UNITS)[:, :, 0]) for seed in (32, 33)
    ]
    layer(sequences)
    stepwise(sequences)
    randomise(layer, seed=34)
    stepwise.set_weights(layer.get_weights())

    def outputs_and_gradients_traced(rnn: keras.layers.Layer) -> list[np.ndarray]:
        @tf.function(
            input_signature=[
                tf.TensorSpec((None, STEPS + 1, FEATURES)),
                tf.TensorSpec((None, UNITS)),
                tf.TensorSpec((None, UNITS)),
            ]
        )
        def run(sequences: tf.Tensor, output: tf.Tensor, cell: tf.Tensor) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch([sequences, output, cell])
                results = rnn(sequences, initial_state=[output, cell])
                loss = sum(
                    tf.reduce_sum(tensor * np.linspace(-1.0, 1.0, tensor.shape[-1]))
                    for tensor in results
                )
            return [
                *results,
                *tape.gradient(loss, [sequences, output, cell, *rnn.trainable_weights]),
            ]

        return [tensor.numpy() for tensor in run(sequences, *initial_state)]

    ours = outputs_and_gradients_traced(layer)
    theirs = outputs_and_gradients_traced(stepwise)
    assert len(ours) == 3 + 3 + len(layer.trainable_weights)
    for our, their in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(our, their, atol=1e-5)
