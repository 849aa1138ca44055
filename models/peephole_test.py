"""Tests of the peephole LSTM against numbers: a known answer, Keras' LSTM, a NumPy reference of
the equations, finite differences, saved files, masking and state."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.peephole import (
    PEEPHOLE_GATES,
    PeepholeLSTM,
    PeepholeLSTMCell,
)

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
ALL_SUBSETS = [
    subset for size in range(4) for subset in itertools.combinations(PEEPHOLE_GATES, size)
]


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def numpy_peephole_lstm(
    sequences: np.ndarray,
    weights: dict[str, np.ndarray],
    coupled_input_forget: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The equations of REFERENCE.md section 1, step by step: (outputs per step, last cell)."""
    batch, steps, _ = sequences.shape
    units = weights["recurrent_kernel"].shape[0]
    zeros = np.zeros(units)
    peephole = {
        gate: weights.get(f"{gate}_gate_peephole_weights", zeros) for gate in PEEPHOLE_GATES
    }
    output, cell = np.zeros((batch, units)), np.zeros((batch, units))
    outputs = []
    for step in range(steps):
        z = sequences[:, step] @ weights["kernel"] + output @ weights["recurrent_kernel"]
        z = z + weights["bias"]
        if coupled_input_forget:
            z_forget, z_cell, z_output = np.split(z, 3, axis=1)
            forget_gate = sigmoid(z_forget + peephole["forget"] * cell)
            input_gate = 1.0 - forget_gate
        else:
            z_input, z_forget, z_cell, z_output = np.split(z, 4, axis=1)
            input_gate = sigmoid(z_input + peephole["input"] * cell)
            forget_gate = sigmoid(z_forget + peephole["forget"] * cell)
        cell = forget_gate * cell + input_gate * np.tanh(z_cell)
        output = sigmoid(z_output + peephole["output"] * cell) * np.tanh(cell)
        outputs.append(output)
    return np.stack(outputs, axis=1), cell


def randomise(layer: keras.layers.Layer, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    """Gives every weight of `layer` random values; returns them by short name."""
    rng = np.random.default_rng(seed)
    values = {}
    for weight in layer.weights:
        value = rng.normal(scale=scale, size=weight.shape).astype(weight.dtype)
        weight.assign(value)
        values[weight.name] = value.astype("float64")
    return values


def random_sequences(seed: int, steps: int = STEPS, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, steps, FEATURES)).astype(dtype)


def test_known_answer_one_step_from_zero_state() -> None:
    layer = PeepholeLSTM(
        5,
        kernel_initializer="ones",
        recurrent_initializer="ones",
        bias_initializer="zeros",
        unit_forget_bias=False,
        peephole_initializer="ones",
    )
    rows = np.zeros((2, 1, 3), dtype="float32")
    rows[0, 0, 1] = 1.0  # one-hot row; the second row stays all zeros
    output = keras.ops.convert_to_numpy(layer(rows))
    np.testing.assert_allclose(output[0], np.full(5, 0.4175506), atol=1e-6)
    np.testing.assert_array_equal(output[1], np.zeros(5))


def test_known_answer_needs_the_output_peephole() -> None:
    layer = PeepholeLSTM(
        5,
        kernel_initializer="ones",
        unit_forget_bias=False,
        peephole_initializer="ones",
        peepholes=("input", "forget"),
    )
    output = keras.ops.convert_to_numpy(layer(np.eye(3, dtype="float32")[None, :1]))
    input_gate, candidate = sigmoid(1.0), np.tanh(1.0)
    expected = sigmoid(1.0) * np.tanh(input_gate * candidate)  # o = sigmoid(1), no peek
    np.testing.assert_allclose(output, np.full((1, 5), expected), atol=1e-6)


def test_zero_peepholes_match_keras_lstm_outputs_and_gradients() -> None:
    keyword_arguments = {"return_sequences": True, "return_state": True}
    peephole = PeepholeLSTM(UNITS, **keyword_arguments)
    lstm = keras.layers.LSTM(UNITS, **keyword_arguments)
    sequences = tf.constant(random_sequences(seed=1, steps=7))
    peephole(sequences)
    lstm(sequences)
    randomise(lstm, seed=2)
    peephole.set_weights(lstm.get_weights() + [np.zeros(UNITS)] * 3)

    def run(layer: keras.layers.Layer, kernels: list) -> tuple[list, list]:
        with tf.GradientTape() as tape:
            tape.watch(sequences)
            outputs = layer(sequences)
            # Weighted so that every output and state element contributes differently.
            loss = sum(
                tf.reduce_sum(tensor * np.linspace(-1.0, 1.0, tensor.shape[-1]))
                for tensor in outputs
            )
        gradients = tape.gradient(loss, [sequences, *kernels])
        return [tensor.numpy() for tensor in outputs], [g.numpy() for g in gradients]

    peephole_cell, lstm_cell = peephole.cell, lstm.cell
    peephole_outputs, peephole_gradients = run(
        peephole, [peephole_cell.kernel, peephole_cell.recurrent_kernel, peephole_cell.bias]
    )
    lstm_outputs, lstm_gradients = run(
        lstm, [lstm_cell.kernel, lstm_cell.recurrent_kernel, lstm_cell.bias]
    )
    assert [o.shape for o in peephole_outputs] == [
        (BATCH, 7, UNITS),
        (BATCH, UNITS),
        (BATCH, UNITS),
    ]
    ours_all = peephole_outputs + peephole_gradients
    theirs_all = lstm_outputs + lstm_gradients
    for ours, theirs in zip(ours_all, theirs_all, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("peepholes", ALL_SUBSETS, ids=lambda gates: "+".join(gates) or "none")
def test_matches_numpy_reference_for_every_peephole_subset(peepholes: tuple[str, ...]) -> None:
    layer = PeepholeLSTM(UNITS, peepholes=peepholes, return_sequences=True, return_state=True)
    sequences = random_sequences(seed=3)
    layer(sequences)
    weights = randomise(layer, seed=4)
    assert sorted(name for name in weights if "peephole" in name) == sorted(
        f"{gate}_gate_peephole_weights" for gate in peepholes
    )
    outputs, last_output, last_cell = layer(sequences)
    expected_outputs, expected_cell = numpy_peephole_lstm(sequences.astype("float64"), weights)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    np.testing.assert_allclose(last_output, expected_outputs[:, -1], atol=1e-5)
    np.testing.assert_allclose(last_cell, expected_cell, atol=1e-5)


@pytest.mark.parametrize("peepholes", [PEEPHOLE_GATES, ("output",), ()])
def test_coupled_input_forget_matches_numpy_reference(peepholes: tuple[str, ...]) -> None:
    layer = PeepholeLSTM(
        UNITS, peepholes=peepholes, coupled_input_forget=True, return_sequences=True
    )
    sequences = random_sequences(seed=5)
    layer(sequences)
    cell = layer.cell
    assert cell.kernel.shape == (FEATURES, 3 * UNITS)
    assert cell.recurrent_kernel.shape == (UNITS, 3 * UNITS)
    assert cell.bias.shape == (3 * UNITS,)
    assert cell.input_gate_peephole_weights is None
    # unit_forget_bias puts the ones in the first block: the forget gate, under CIFG.
    np.testing.assert_array_equal(cell.bias.numpy(), np.repeat([1.0, 0.0, 0.0], UNITS))
    weights = randomise(layer, seed=6)
    expected, _ = numpy_peephole_lstm(sequences.astype("float64"), weights, True)
    np.testing.assert_allclose(layer(sequences), expected, atol=1e-5)


def test_gradients_match_finite_differences_in_float64() -> None:
    layer = PeepholeLSTM(3, dtype="float64", peephole_initializer="random_normal")
    sequences = tf.constant(np.random.default_rng(7).normal(size=(2, 3, 2)))
    layer(sequences)
    randomise(layer, seed=8, scale=0.8)
    direction = np.random.default_rng(9).normal(size=(2, 3))

    def loss() -> tf.Tensor:
        return tf.reduce_sum(layer(sequences) * direction)

    with tf.GradientTape() as tape:
        tape.watch(sequences)
        value = loss()
    variables = list(layer.trainable_variables)
    analytic = tape.gradient(value, [sequences, *variables])

    step = 1e-6
    sequences_value = sequences.numpy()
    numeric_inputs = np.zeros_like(sequences_value)
    for index in np.ndindex(sequences_value.shape):
        for sign in (1, -1):
            shifted = sequences_value.copy()
            shifted[index] += sign * step
            numeric_inputs[index] += sign * float(
                tf.reduce_sum(layer(tf.constant(shifted)) * direction)
            )
    np.testing.assert_allclose(analytic[0], numeric_inputs / (2 * step), atol=1e-7)
    for variable, gradient in zip(variables, analytic[1:], strict=True):
        original = variable.numpy()
        numeric = np.zeros_like(original)
        for index in np.ndindex(original.shape):
            for sign in (1, -1):
                shifted = original.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * float(loss())
            variable.assign(original)
        np.testing.assert_allclose(gradient, numeric / (2 * step), atol=1e-7, err_msg=variable.path)


def small_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            PeepholeLSTM(UNITS, peepholes=("forget", "output"), return_sequences=True),
            PeepholeLSTM(UNITS, coupled_input_forget=True),
            keras.layers.Dense(2),
        ]
    )
    randomise(model, seed=10)
    return model


def test_keras_file_round_trip(tmp_path: Path) -> None:
    loaded = saved_and_loaded(small_model(), random_sequences(seed=11), tmp_path)
    assert loaded.layers[1].coupled_input_forget
    assert loaded.layers[0].peepholes == ("forget", "output")


def saved_and_loaded(model: keras.Model, sequences: np.ndarray, tmp_path: Path) -> keras.Model:
    """Saves `model` to a `.keras` file and loads it back; asserts equal predictions."""
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(sequences, verbose=0), model.predict(sequences, verbose=0)
    )
    return loaded


def load_in_fresh_process(path: Path, sequences: np.ndarray, imports: str) -> np.ndarray:
    """Loads `path` in a new interpreter that only runs `imports`; returns its predictions."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        {imports}
        import keras
        model = keras.saving.load_model(sys.argv[1])
        inputs = np.array(json.loads(sys.argv[2]), dtype="float32")
        print(json.dumps(model.predict(inputs, verbose=0).tolist()))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path), json.dumps(sequences.tolist())],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return np.array(json.loads(completed.stdout.strip().splitlines()[-1]), dtype="float32")


@pytest.mark.slow
@pytest.mark.parametrize("imports", ["import models.zoo", "import models.peephole"])
def test_loads_in_fresh_process(tmp_path: Path, imports: str) -> None:
    model = small_model()
    sequences = random_sequences(seed=12)
    path = tmp_path / "model.keras"
    model.save(path)
    predictions = load_in_fresh_process(path, sequences, imports)
    np.testing.assert_allclose(predictions, model.predict(sequences, verbose=0), atol=1e-6)


def test_masked_steps_leave_the_state_unchanged() -> None:
    layer = PeepholeLSTM(UNITS, peephole_initializer="random_normal", return_state=True)
    sequences = random_sequences(seed=13, steps=STEPS + 3)
    layer(sequences)
    randomise(layer, seed=14)
    lengths = [STEPS, STEPS - 2, 1]
    mask = np.zeros(sequences.shape[:2], dtype=bool)
    for row, length in enumerate(lengths):
        mask[row, :length] = True
    padded = np.where(mask[..., None], sequences, 99.0).astype("float32")
    masked_results = [r.numpy() for r in layer(padded, mask=tf.constant(mask))]
    for row, length in enumerate(lengths):
        unpadded_results = layer(sequences[row : row + 1, :length])
        for masked, unpadded in zip(masked_results, unpadded_results, strict=True):
            np.testing.assert_allclose(masked[row : row + 1], unpadded, atol=1e-6)


def test_masking_layer_in_a_model_matches_the_unpadded_sequence() -> None:
    layer = PeepholeLSTM(UNITS)
    model = keras.Sequential([keras.Input((None, FEATURES)), keras.layers.Masking(0.0), layer])
    sequences = random_sequences(seed=15)
    randomise(model, seed=16)
    padded = np.concatenate([sequences, np.zeros((BATCH, 2, FEATURES), "float32")], axis=1)
    np.testing.assert_allclose(model(padded), layer(sequences), atol=1e-6)


def test_stateful_halves_equal_one_full_call_and_reset_states() -> None:
    sequences = random_sequences(seed=17, steps=2 * STEPS)
    stateful = PeepholeLSTM(UNITS, stateful=True, peephole_initializer="random_normal")
    stateless = PeepholeLSTM(UNITS)
    stateful(sequences[:, :STEPS])
    stateless(sequences)
    randomise(stateful, seed=18)
    stateless.set_weights(stateful.get_weights())
    stateful.reset_states()

    stateful(sequences[:, :STEPS])
    np.testing.assert_allclose(stateful(sequences[:, STEPS:]), stateless(sequences), atol=1e-6)
    stateful.reset_states()
    np.testing.assert_allclose(
        stateful(sequences[:, STEPS:]), stateless(sequences[:, STEPS:]), atol=1e-6
    )


def test_go_backwards_reads_the_sequence_reversed() -> None:
    backwards = PeepholeLSTM(UNITS, go_backwards=True, peephole_initializer="ones")
    forwards = PeepholeLSTM(UNITS, peephole_initializer="ones")
    sequences = random_sequences(seed=19)
    backwards(sequences)
    forwards(sequences)
    forwards.set_weights(backwards.get_weights())
    np.testing.assert_allclose(backwards(sequences), forwards(sequences[:, ::-1]), atol=1e-6)


def test_dropout_changes_training_outputs_only() -> None:
    layer = PeepholeLSTM(UNITS, dropout=0.5, recurrent_dropout=0.5, seed=1)
    sequences = random_sequences(seed=20)
    inference = layer(sequences)
    np.testing.assert_allclose(layer(sequences, training=False), inference)
    training = layer(sequences, training=True).numpy()
    assert np.all(np.isfinite(training))
    assert not np.allclose(training, inference)


def test_get_config_round_trips_every_argument() -> None:
    layer = PeepholeLSTM(
        7,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=False,
        kernel_initializer="he_normal",
        recurrent_initializer="glorot_normal",
        bias_initializer="ones",
        unit_forget_bias=False,
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l1",
        activity_regularizer="l2",
        kernel_constraint="non_neg",
        recurrent_constraint="unit_norm",
        bias_constraint="max_norm",
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=3,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        stateful=True,
        unroll=True,
        peepholes=["output", "forget"],
        peephole_initializer="ones",
        peephole_regularizer="l2",
        peephole_constraint="non_neg",
        coupled_input_forget=True,
        name="peek",
    )
    config = layer.get_config()
    rebuilt = PeepholeLSTM.from_config(config)
    assert rebuilt.get_config() == config
    assert config["peepholes"] == ["forget", "output"]
    assert rebuilt.peepholes == ("forget", "output") and rebuilt.coupled_input_forget
    assert rebuilt.recurrent_dropout == 0.2 and rebuilt.unroll and rebuilt.go_backwards
    cell_config = layer.cell.get_config()
    assert PeepholeLSTMCell.from_config(cell_config).get_config() == cell_config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "forecaster>PeepholeLSTM"


def test_regularizers_add_one_loss_per_weight() -> None:
    layer = PeepholeLSTM(
        UNITS,
        kernel_regularizer="l2",
        recurrent_regularizer="l2",
        bias_regularizer="l2",
        peephole_regularizer="l2",
    )
    layer(random_sequences(seed=21))
    assert len(layer.losses) == 6


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_random_initializers_give_every_gate_block_and_peephole_its_own_draw(
    unit_forget_bias: bool,
) -> None:
    # An unseeded Keras initializer repeats its values at every call, so sharing one instance
    # would start all gate blocks of the bias (and all three peephole vectors) identical.
    layer = PeepholeLSTM(
        UNITS,
        bias_initializer="random_normal",
        peephole_initializer="random_normal",
        unit_forget_bias=unit_forget_bias,
    )
    layer(random_sequences(seed=22))
    blocks = np.split(keras.ops.convert_to_numpy(layer.cell.bias), 4)
    if unit_forget_bias:
        np.testing.assert_array_equal(blocks.pop(1), np.ones(UNITS, dtype=np.float32))
    peepholes = [keras.ops.convert_to_numpy(weight) for weight in layer.cell.peephole_weights()]
    for group in (blocks, peepholes):
        assert len(group) >= 3
        for first, second in itertools.combinations(group, 2):
            assert not np.allclose(first, second)


def test_cell_works_inside_keras_rnn() -> None:
    layer = keras.layers.RNN(PeepholeLSTMCell(UNITS, peepholes="output"))
    assert layer(random_sequences(seed=22)).shape == (BATCH, UNITS)
    assert layer.cell.output_gate_peephole_weights is not None
    assert layer.cell.forget_gate_peephole_weights is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"units": 0}, "expected a positive integer, got 0"),
        ({"units": 2.5}, "expected a positive integer, got 2.5"),
        ({"units": 4, "peepholes": ("input", "outptu")}, "unknown: ['outptu']"),
        ({"units": 4, "dropout": 1.5}, "`dropout`, expected a float in [0, 1), got 1.5"),
        ({"units": 4, "dropout": 1.0}, "`dropout`, expected a float in [0, 1), got 1.0"),
        ({"units": 4, "recurrent_dropout": -0.1}, "expected a float in [0, 1), got -0.1"),
    ],
)
def test_bad_arguments_raise_clear_errors(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PeepholeLSTM(**arguments)
    with pytest.raises(ValueError, match="expected gate names among"):
        PeepholeLSTMCell(4, peepholes=("hidden",))
