"""What a trained recurrent layer's gates do over a sequence: Olah's diagrams on our data.

The layers return only their hidden (and cell) states; these functions recompute every gate from
the layer's weights, step by step, with the layer's own equations (NumPy, float64), for one
sequence at a time. Their tests check the recomputed states against the layer's output, so a
picture drawn from them shows what the layer computed.

- `lstm_gates`: `keras.layers.LSTM` or `PeepholeLSTM` (peepholes and CIFG included): input,
  forget and output gates, cell input, cell state and output per step.
- `gru_gates`: `keras.layers.GRU` (either `reset_after`): update and reset gates, candidate
  and output per step.
- `clockwork_schedule`: which units of a `ClockworkRNN` update at each step.
- `layer_input`, `recurrent_reading`: what a layer inside a zoo model reads for a window (after
  normalisation, channel folding and segment embedding), to feed the functions above.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from models.clockwork import ClockworkRNN, unit_periods
from models.peephole import PeepholeLSTM

__all__ = [
    "clockwork_schedule",
    "gru_gates",
    "layer_input",
    "lstm_gates",
    "recurrent_layers",
    "recurrent_reading",
]


def _weights(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    cell = layer.cell
    bias = None if cell.bias is None else np.asarray(cell.bias, dtype="float64")
    return (
        np.asarray(cell.kernel, dtype="float64"),
        np.asarray(cell.recurrent_kernel, dtype="float64"),
        bias,
    )


def _activation(function: Any) -> Any:
    return lambda values: np.asarray(keras.ops.convert_to_numpy(function(values)), "float64")


def _check_sequence(sequence: np.ndarray, layer: Any) -> np.ndarray:
    values = np.asarray(sequence, dtype="float64")
    features = layer.cell.kernel.shape[0]
    if values.ndim != 2 or values.shape[1] != features:
        raise ValueError(
            f"sequence: expected shape (steps, {features}) for layer {layer.name!r}, "
            f"got {values.shape}"
        )
    return values


def lstm_gates(layer: keras.layers.LSTM | PeepholeLSTM, sequence: np.ndarray) -> dict[str, Any]:
    """Every gate of an LSTM (plain, peephole or CIFG) over one `(steps, features)` sequence,
    from zero initial states.

    Returns:
        `{"input", "forget", "output", "cell_input", "cell", "hidden"}`, each `(steps, units)`.
    """
    values = _check_sequence(sequence, layer)
    kernel, recurrent_kernel, bias = _weights(layer)
    sigmoid = _activation(layer.cell.recurrent_activation)
    tanh = _activation(layer.cell.activation)
    coupled = getattr(layer.cell, "coupled_input_forget", False)
    peepholes = [
        None if weight is None else np.asarray(weight, "float64")
        for weight in (
            layer.cell.peephole_weights() if isinstance(layer, PeepholeLSTM) else (None,) * 3
        )
    ]
    units = recurrent_kernel.shape[0]
    hidden, cell = np.zeros(units), np.zeros(units)
    names = ("input", "forget", "output", "cell_input", "cell", "hidden")
    trace: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for inputs in values:
        z = inputs @ kernel + hidden @ recurrent_kernel + (0.0 if bias is None else bias)
        blocks = np.split(z, 3 if coupled else 4)
        if coupled:
            z_forget, z_cell, z_output = blocks
        else:
            z_input, z_forget, z_cell, z_output = blocks
        peep_input, peep_forget, peep_output = peepholes
        forget = sigmoid(z_forget + (0.0 if peep_forget is None else peep_forget * cell))
        if coupled:
            input_gate = 1.0 - forget
        else:
            input_gate = sigmoid(z_input + (0.0 if peep_input is None else peep_input * cell))
        cell_input = tanh(z_cell)
        cell = forget * cell + input_gate * cell_input
        output = sigmoid(z_output + (0.0 if peep_output is None else peep_output * cell))
        hidden = output * tanh(cell)
        for name, value in zip(
            names, (input_gate, forget, output, cell_input, cell, hidden), strict=True
        ):
            trace[name].append(value)
    return {name: np.stack(steps) for name, steps in trace.items()}


def gru_gates(layer: keras.layers.GRU, sequence: np.ndarray) -> dict[str, Any]:
    """The update and reset gates of `keras.layers.GRU` over one `(steps, features)` sequence.

    Keras' gate order is z (update), r (reset), h; `h_t = z * h_{t-1} + (1 - z) * candidate`.

    Returns:
        `{"update", "reset", "candidate", "hidden"}`, each `(steps, units)`.
    """
    values = _check_sequence(sequence, layer)
    kernel, recurrent_kernel, bias = _weights(layer)
    sigmoid = _activation(layer.cell.recurrent_activation)
    tanh = _activation(layer.cell.activation)
    reset_after = layer.cell.reset_after
    units = recurrent_kernel.shape[0]
    if bias is None:
        input_bias = recurrent_bias = np.zeros(3 * units)
    elif reset_after:
        input_bias, recurrent_bias = bias
    else:
        input_bias, recurrent_bias = bias, np.zeros(3 * units)
    hidden = np.zeros(units)
    trace: dict[str, list[np.ndarray]] = {"update": [], "reset": [], "candidate": [], "hidden": []}
    for inputs in values:
        x_update, x_reset, x_candidate = np.split(inputs @ kernel + input_bias, 3)
        u_update, u_reset, u_candidate = np.split(recurrent_kernel, 3, axis=1)
        b_update, b_reset, b_candidate = np.split(recurrent_bias, 3)
        update = sigmoid(x_update + hidden @ u_update + b_update)
        reset = sigmoid(x_reset + hidden @ u_reset + b_reset)
        if reset_after:
            candidate = tanh(x_candidate + reset * (hidden @ u_candidate + b_candidate))
        else:
            candidate = tanh(x_candidate + (reset * hidden) @ u_candidate)
        hidden = update * hidden + (1.0 - update) * candidate
        for name, value in zip(trace, (update, reset, candidate, hidden), strict=True):
            trace[name].append(value)
    return {name: np.stack(steps) for name, steps in trace.items()}


def clockwork_schedule(layer: ClockworkRNN, steps: int) -> np.ndarray:
    """`(steps, units)` booleans: whether each unit of the layer updates at step t (from 0):
    `t % period == 0` for its module's period."""
    periods = unit_periods(tuple(layer.cell.periods), layer.cell.units)
    return np.arange(steps)[:, None] % periods[None, :] == 0


def recurrent_layers(model: keras.Model) -> list[keras.layers.RNN]:
    """The recurrent layers of a (zoo) model and of the models nested in it, in layer order."""
    found: list[keras.layers.RNN] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.RNN):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(recurrent_layers(layer))
    return found


def layer_input(model: keras.Model, layer: keras.layers.Layer, windows: np.ndarray) -> np.ndarray:
    """What `layer` reads when `model` (a functional model that calls it once, directly) forecasts
    `windows` `(batch, steps, features)`: its input `(batch', steps', features')`, after
    normalisation, channel folding or segment embedding."""
    reader = keras.Model(model.inputs, layer.input)
    return np.asarray(reader.predict(np.asarray(windows, "float32"), verbose=0))


def recurrent_reading(model: keras.Model, window: np.ndarray) -> tuple[keras.layers.RNN, Any]:
    """The one recurrent layer of `model` and the sequence it reads for one window
    `(steps, features)`: the arguments of `lstm_gates` / `gru_gates`."""
    layers = recurrent_layers(model)
    if len(layers) != 1:
        raise ValueError(
            f"model {model.name!r}: expected one recurrent layer, found {len(layers)} "
            f"({[layer.name for layer in layers]})"
        )
    (layer,) = layers
    return layer, layer_input(model, layer, np.asarray(window)[np.newaxis])[0]
