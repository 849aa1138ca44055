"""Tests of the depth-gated LSTM against numbers: a NumPy reference of the equations, Keras'
LSTM for one layer, finite differences and saved files."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.depth_gated import DepthGatedLSTM
from models.peephole_test import saved_and_loaded

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def numpy_depth_gated(sequences: np.ndarray, weights: dict[str, np.ndarray], layers: int) -> tuple:
    """Yao et al.'s equations, layer by layer, step by step: (top outputs per step, states)."""
    batch, steps, _ = sequences.shape
    outputs = [np.zeros((batch, UNITS)) for _ in range(layers)]
    cells = [np.zeros((batch, UNITS)) for _ in range(layers)]
    top = []
    for t in range(steps):
        layer_input, lower_cell = sequences[:, t], None
        for layer in range(layers):
            w = {
                key[len(f"layer_{layer}_") :]: value
                for key, value in weights.items()
                if key.startswith(f"layer_{layer}_")
            }
            z = layer_input @ w["kernel"] + outputs[layer] @ w["recurrent_kernel"] + w["bias"]
            z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
            cell = sigmoid(z_f) * cells[layer] + sigmoid(z_i) * np.tanh(z_c)
            if lower_cell is not None:
                depth = sigmoid(
                    layer_input @ w["depth_kernel"]
                    + w["depth_cell_weights"] * cells[layer]
                    + w["depth_lower_weights"] * lower_cell
                    + w["depth_bias"]
                )
                cell = cell + depth * lower_cell
            outputs[layer] = sigmoid(z_o) * np.tanh(cell)
            cells[layer] = cell
            layer_input, lower_cell = outputs[layer], cell
        top.append(layer_input)
    states = [value for pair in zip(outputs, cells, strict=True) for value in pair]
    return np.stack(top, axis=1), states


def random_layer(seed: int, layers: int, **arguments: object) -> tuple[DepthGatedLSTM, dict]:
    layer = DepthGatedLSTM(UNITS, layers=layers, **arguments)
    layer.build((None, None, FEATURES))
    rng = np.random.default_rng(seed)
    values = {}
    for weight in layer.weights:
        value = rng.normal(scale=0.5, size=weight.shape).astype(weight.dtype)
        weight.assign(value)
        values[weight.name] = value.astype("float64")
    return layer, values


def random_sequences(seed: int, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype(dtype)


@pytest.mark.parametrize(("layers", "unroll"), [(2, False), (3, False), (3, True)])
def test_matches_numpy_reference(layers: int, unroll: bool) -> None:
    layer, weights = random_layer(
        seed=layers, layers=layers, return_sequences=True, return_state=True, unroll=unroll
    )
    sequences = random_sequences(seed=10 + layers)
    outputs, *states = layer(sequences)
    expected_outputs, expected_states = numpy_depth_gated(
        sequences.astype("float64"), weights, layers
    )
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    assert len(states) == 2 * layers
    for ours, theirs in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_one_layer_is_keras_lstm() -> None:
    layer, weights = random_layer(seed=20, layers=1, return_sequences=True)
    lstm = keras.layers.LSTM(UNITS, return_sequences=True)
    lstm.build((None, None, FEATURES))
    lstm.set_weights(
        [weights["layer_0_kernel"], weights["layer_0_recurrent_kernel"], weights["layer_0_bias"]]
    )
    sequences = random_sequences(seed=21)
    np.testing.assert_allclose(layer(sequences), lstm(sequences), atol=1e-6)


def test_every_weight_starts_from_its_own_draw() -> None:
    layer = DepthGatedLSTM(UNITS, layers=3, depth_initializer="random_normal")
    layer.build((None, None, FEATURES))
    weights = {weight.name: weight.numpy() for weight in layer.weights}
    assert not np.allclose(weights["layer_1_recurrent_kernel"], weights["layer_2_recurrent_kernel"])
    assert not np.allclose(weights["layer_1_kernel"], weights["layer_2_kernel"])
    assert not np.allclose(weights["layer_1_depth_kernel"], weights["layer_2_depth_kernel"])
    assert not np.allclose(
        weights["layer_1_depth_cell_weights"], weights["layer_1_depth_lower_weights"]
    )


def test_forget_gate_bias_starts_at_one() -> None:
    layer = DepthGatedLSTM(UNITS, layers=2)
    layer.build((None, None, FEATURES))
    for name in ("layer_0_bias", "layer_1_bias"):
        bias = next(w for w in layer.weights if w.name == name).numpy()
        np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], 1.0)
        np.testing.assert_array_equal(np.delete(bias, np.s_[UNITS : 2 * UNITS]), 0.0)


def test_gradients_match_finite_differences_in_float64() -> None:
    layer, _ = random_layer(seed=30, layers=2, dtype="float64")
    sequences = tf.constant(random_sequences(seed=31, dtype="float64")[:, :4])
    assert_gradients_match_finite_differences(layer, sequences, seed=32)


def assert_gradients_match_finite_differences(
    layer: keras.layers.Layer, sequences: tf.Tensor, seed: int, masks: dict | None = None
) -> None:
    """Each variable's gradient, along a random direction, against a central difference of the
    loss along it (float64). `masks` zero the directions of weights that are not parameters."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(sequences.shape[0], layer.cell.output_size))

    def loss() -> float:
        return float(tf.reduce_sum(layer(sequences) * direction))

    with tf.GradientTape() as tape:
        value = tf.reduce_sum(layer(sequences) * direction)
    variables = list(layer.trainable_variables)
    for variable, gradient in zip(variables, tape.gradient(value, variables), strict=True):
        tangent = rng.normal(size=variable.shape) * (masks or {}).get(variable.name, 1.0)
        original, step = variable.numpy(), 1e-6
        variable.assign(original + step * tangent)
        above = loss()
        variable.assign(original - step * tangent)
        below = loss()
        variable.assign(original)
        assert float(np.sum(gradient.numpy() * tangent)) == pytest.approx(
            (above - below) / (2 * step), rel=1e-6, abs=1e-8
        ), variable.path


def small_model() -> keras.Model:
    keras.utils.set_random_seed(40)
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            DepthGatedLSTM(UNITS, layers=3, depth_initializer="random_normal"),
            keras.layers.Dense(2),
        ]
    )


def test_keras_file_round_trip(tmp_path: Path) -> None:
    loaded = saved_and_loaded(small_model(), random_sequences(seed=41), tmp_path)
    assert loaded.layers[0].cell.layers == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"units": 0}, "`units`, expected a positive integer, got 0"),
        ({"units": 4, "layers": 0}, "`layers`, expected a positive integer, got 0"),
        ({"units": 4, "dropout": 1.0}, r"`dropout`, expected a float in \[0, 1\), got 1.0"),
    ],
)
def test_bad_arguments_raise_clear_errors(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DepthGatedLSTM(**arguments)
