"""The recomputed gates reproduce the layers' own states; the clockwork schedule is the clock."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models import zoo
from models.clockwork import ClockworkRNN
from models.gates import (
    clockwork_schedule,
    gru_gates,
    layer_input,
    lstm_gates,
    recurrent_layers,
    recurrent_reading,
)
from models.peephole import PeepholeLSTM
from models.shape import ModelShape

STEPS, FEATURES, UNITS = 9, 3, 4


def sequence(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(STEPS, FEATURES)).astype("float32")


def all_states(layer: keras.layers.RNN, values: np.ndarray) -> np.ndarray:
    """The layer's own outputs at every step, `(steps, units)`."""
    layer.return_sequences = True
    return np.asarray(layer(values[None]))[0]


def random_weights(layer: keras.layers.RNN) -> None:
    """Non-zero everywhere (peepholes start at zero), so every term of the equations counts."""
    rng = np.random.default_rng(7)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.LSTM(UNITS),
        lambda: PeepholeLSTM(UNITS),
        lambda: PeepholeLSTM(UNITS, peepholes=("output",)),
        lambda: PeepholeLSTM(UNITS, peepholes=(), coupled_input_forget=True),
    ],
    ids=["lstm", "peephole", "output peephole", "cifg"],
)
def test_lstm_gates_reproduce_the_layer(make) -> None:
    layer = make()
    layer.build((None, STEPS, FEATURES))
    random_weights(layer)
    values = sequence()
    gates = lstm_gates(layer, values)
    np.testing.assert_allclose(gates["hidden"], all_states(layer, values), atol=1e-5)
    assert all(array.shape == (STEPS, UNITS) for array in gates.values())
    for name in ("input", "forget", "output"):
        assert ((gates[name] > 0) & (gates[name] < 1)).all()
    np.testing.assert_allclose(
        gates["hidden"], gates["output"] * np.tanh(gates["cell"]), rtol=1e-12
    )
    if getattr(layer, "coupled_input_forget", False):
        np.testing.assert_allclose(gates["input"], 1 - gates["forget"], rtol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_reproduce_the_layer(reset_after: bool) -> None:
    layer = keras.layers.GRU(UNITS, reset_after=reset_after)
    layer.build((None, STEPS, FEATURES))
    random_weights(layer)
    values = sequence(1)
    gates = gru_gates(layer, values)
    np.testing.assert_allclose(gates["hidden"], all_states(layer, values), atol=1e-5)
    assert ((gates["update"] > 0) & (gates["update"] < 1)).all()


def test_the_clockwork_schedule_is_the_clock() -> None:
    layer = ClockworkRNN(4, periods=(1, 2))
    schedule = clockwork_schedule(layer, 5)
    assert schedule.tolist() == [[True] * 4, [True, True, False, False]] * 2 + [[True] * 4]
    # A unit that does not update keeps its state: the layer's own states agree.
    layer.build((None, STEPS, FEATURES))
    random_weights(layer)
    states = all_states(layer, sequence(2))
    kept = ~clockwork_schedule(layer, STEPS)[1:]
    np.testing.assert_array_equal(states[1:][kept], states[:-1][kept])


def test_a_sequence_of_the_wrong_width_is_named() -> None:
    layer = keras.layers.LSTM(UNITS)
    layer.build((None, STEPS, FEATURES))
    with pytest.raises(ValueError, match=r"expected shape \(steps, 3\).*got \(9, 2\)"):
        lstm_gates(layer, np.zeros((STEPS, 2)))


def test_the_gates_of_a_zoo_model_come_from_what_its_layer_reads() -> None:
    shape = ModelShape(input_width=STEPS, horizon=2, n_features=FEATURES, target_indices=(0,))
    model = zoo.build_model("lstm", shape, units=UNITS)
    (layer,) = recurrent_layers(model)
    windows = np.random.default_rng(3).normal(size=(2, STEPS, FEATURES))
    read = layer_input(model, layer, windows)
    assert read.shape[1:] == (STEPS, layer.cell.kernel.shape[0])
    last_hidden = keras.Model(model.inputs, layer.output).predict(windows, verbose=0)
    np.testing.assert_allclose(lstm_gates(layer, read[1])["hidden"][-1], last_hidden[1], atol=1e-5)


def test_a_model_with_two_recurrent_layers_is_named() -> None:
    shape = ModelShape(input_width=STEPS, horizon=2, n_features=FEATURES, target_indices=(0,))
    model = zoo.build_model("lstm", shape, units=UNITS, layers=2)
    with pytest.raises(ValueError, match="expected one recurrent layer, found 2"):
        recurrent_reading(model, np.zeros((STEPS, FEATURES)))
    layer, read = recurrent_reading(zoo.build_model("gru", shape, units=UNITS), sequence())
    assert isinstance(layer, keras.layers.GRU) and read.shape == (STEPS, FEATURES)
