"""Tests of the Clockwork RNN against numbers: a NumPy reference of the equations, the clock,
the mask through training, finite differences, saved files, masking and state."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.clockwork import ClockworkRNN, recurrent_kernel_mask
from models.depth_gated import DepthGatedLSTM
from models.depth_gated_test import assert_gradients_match_finite_differences
from models.peephole_test import load_in_fresh_process, saved_and_loaded

BATCH, STEPS, FEATURES = 3, 9, 4
PERIODS = (1, 2, 4)
UNITS = 6  # two units per module


def numpy_clockwork(
    sequences: np.ndarray,
    kernel: np.ndarray,
    recurrent: np.ndarray,
    bias: np.ndarray,
    periods: tuple[int, ...] = PERIODS,
) -> np.ndarray:
    """Koutnik et al.'s equations, unit by unit, step by step: outputs `(batch, steps, units)`."""
    batch, steps, _ = sequences.shape
    units = recurrent.shape[0]
    module_size = units // len(periods)
    period = [periods[unit // module_size] for unit in range(units)]
    output = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        previous = output.copy()
        for i in range(units):
            if t % period[i]:
                continue  # this module keeps its value
            feeding = [j for j in range(units) if period[j] >= period[i]]
            z = sequences[:, t] @ kernel[:, i] + previous[:, feeding] @ recurrent[feeding, i]
            output[:, i] = np.tanh(z + bias[i])
        outputs.append(output.copy())
    return np.stack(outputs, axis=1)


def random_layer(
    seed: int, periods: tuple[int, ...] = PERIODS, **arguments: object
) -> tuple[ClockworkRNN, dict[str, np.ndarray]]:
    """A built layer whose weights are random everywhere, masked blocks included."""
    layer = ClockworkRNN(UNITS, periods=periods, **arguments)
    layer.build((BATCH if arguments.get("stateful") else None, None, FEATURES))
    rng = np.random.default_rng(seed)
    values = {}
    for weight in layer.weights:
        value = rng.normal(scale=0.5, size=weight.shape).astype(weight.dtype)
        weight.assign(value)
        values[weight.name] = value.astype("float64")
    return layer, values


def random_sequences(seed: int, steps: int = STEPS, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, steps, FEATURES)).astype(dtype)


@pytest.mark.parametrize(
    ("periods", "unroll"), [(PERIODS, False), (PERIODS, True), ((3, 1, 2), False)]
)
def test_matches_numpy_reference_even_with_weights_in_the_masked_blocks(
    periods: tuple[int, ...], unroll: bool
) -> None:
    # (3, 1, 2): unsorted, and a cycle of 6 longer than the largest period.
    layer, weights = random_layer(seed=1, periods=periods, return_sequences=True, unroll=unroll)
    sequences = random_sequences(seed=2)
    expected = numpy_clockwork(
        sequences.astype("float64"),
        weights["kernel"],
        weights["recurrent_kernel"],
        weights["bias"],
        periods,
    )
    np.testing.assert_allclose(layer(sequences), expected, atol=1e-5)


def test_a_module_of_period_4_keeps_its_state_on_steps_1_to_3() -> None:
    layer, _ = random_layer(seed=3, return_sequences=True)
    outputs = keras.ops.convert_to_numpy(layer(random_sequences(seed=4)))
    slow = outputs[:, :, 4:6]  # the third module, period 4
    for t in range(1, STEPS):
        same = np.array_equal(slow[:, t], slow[:, t - 1])
        assert same == (t % 4 != 0), t
    fast = outputs[:, :, 0:2]
    assert not any(np.array_equal(fast[:, t], fast[:, t - 1]) for t in range(1, STEPS))


def test_masked_weights_start_at_zero_and_stay_zero_through_training() -> None:
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            ClockworkRNN(UNITS, periods=PERIODS),
            keras.layers.Dense(1),
        ]
    )
    recurrent = model.layers[0].cell.recurrent_kernel
    blocked = recurrent_kernel_mask(PERIODS, UNITS) == 0
    assert blocked.sum() == 12  # 3 modules of 2: (1 + 2) blocks of 2 x 2 fed the wrong way
    np.testing.assert_array_equal(recurrent.numpy()[blocked], 0.0)
    before = recurrent.numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(random_sequences(6), np.ones((BATCH, 1)), epochs=3, verbose=0)
    after = recurrent.numpy()
    np.testing.assert_array_equal(after[blocked], 0.0)
    assert not np.allclose(after[~blocked], before[~blocked])


def test_a_model_built_by_its_first_fit_keeps_the_masked_blocks_at_zero() -> None:
    keras.utils.set_random_seed(17)
    model = keras.Sequential([ClockworkRNN(UNITS, periods=PERIODS), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    sequences = random_sequences(18)
    model.fit(sequences, np.ones((BATCH, 1)), epochs=1, verbose=0)
    blocked = recurrent_kernel_mask(PERIODS, UNITS) == 0
    np.testing.assert_array_equal(model.layers[0].cell.recurrent_kernel.numpy()[blocked], 0.0)
    assert model.predict(sequences, verbose=0).shape == (BATCH, 1)


def test_gradients_match_finite_differences_in_float64() -> None:
    layer = ClockworkRNN(UNITS, periods=PERIODS, dtype="float64")
    sequences = tf.constant(random_sequences(seed=7, steps=6, dtype="float64"))
    layer(sequences)
    rng = np.random.default_rng(9)
    mask = recurrent_kernel_mask(PERIODS, UNITS)
    for weight in layer.trainable_weights:
        value = rng.normal(scale=0.5, size=weight.shape)
        weight.assign(value * mask if weight.name == "recurrent_kernel" else value)
    # The masked blocks are not parameters of the model: no direction moves them.
    assert_gradients_match_finite_differences(
        layer, sequences, seed=8, masks={"recurrent_kernel": mask}
    )


def small_model() -> keras.Model:
    keras.utils.set_random_seed(10)
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            ClockworkRNN(UNITS, periods=PERIODS, return_sequences=True),
            ClockworkRNN(4, periods=(1, 3)),
            keras.layers.Dense(2),
        ]
    )


def test_keras_file_round_trip(tmp_path: Path) -> None:
    loaded = saved_and_loaded(small_model(), random_sequences(seed=11), tmp_path)
    assert loaded.layers[1].cell.periods == (1, 3)


@pytest.mark.slow
def test_both_new_layers_load_in_a_fresh_process(tmp_path: Path) -> None:
    keras.utils.set_random_seed(12)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            ClockworkRNN(UNITS, periods=PERIODS, return_sequences=True),
            DepthGatedLSTM(4, layers=2, depth_initializer="random_normal"),
            keras.layers.Dense(2),
        ]
    )
    sequences = random_sequences(seed=12)
    path = tmp_path / "model.keras"
    model.save(path)
    predictions = load_in_fresh_process(path, sequences, "import models.zoo")
    np.testing.assert_allclose(predictions, model.predict(sequences, verbose=0), atol=1e-6)


def test_masked_steps_neither_change_the_state_nor_advance_the_clock() -> None:
    layer, _ = random_layer(seed=13, return_state=True)
    sequences = random_sequences(seed=14)
    lengths = [STEPS, 5, 2]
    mask = np.zeros(sequences.shape[:2], dtype=bool)
    for row, length in enumerate(lengths):
        mask[row, :length] = True
    padded = np.where(mask[..., None], sequences, 99.0).astype("float32")
    masked = [keras.ops.convert_to_numpy(r) for r in layer(padded, mask=tf.constant(mask))]
    for row, length in enumerate(lengths):
        unpadded = layer(sequences[row : row + 1, :length])
        for ours, theirs in zip(masked, unpadded, strict=True):
            np.testing.assert_allclose(ours[row : row + 1], theirs, atol=1e-6)
        assert masked[2][row, 0] == length % 4  # the clock counts read steps, modulo lcm 4


def test_stateful_halves_equal_one_full_call() -> None:
    sequences = random_sequences(seed=15, steps=2 * 5)
    stateful, _ = random_layer(seed=16, stateful=True, return_sequences=True)
    stateless = ClockworkRNN(UNITS, periods=PERIODS, return_sequences=True)
    stateless.build((None, None, FEATURES))
    stateless.set_weights(stateful.get_weights())
    stateful(sequences[:, :5])  # 5 steps: the clock continues at 5, not 0
    np.testing.assert_allclose(
        stateful(sequences[:, 5:]),
        keras.ops.convert_to_numpy(stateless(sequences))[:, 5:],
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"units": 5, "periods": (1, 2)}, "units must be a multiple of 2"),
        ({"units": 4, "periods": ()}, "non-empty sequence of positive integers"),
        ({"units": 4, "periods": (1, 0)}, "non-empty sequence of positive integers"),
        ({"units": 0, "periods": (1,)}, "expected a positive integer, got 0"),
        ({"units": 4, "periods": (1,), "dropout": 1.0}, r"`dropout`, expected a float in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClockworkRNN(**arguments)


def test_a_clock_cycle_longer_than_the_dtype_counts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"least common multiple 272, more than bfloat16"):
        ClockworkRNN(2, periods=(16, 17), dtype="bfloat16")(random_sequences(19))
