"""The model zoo: shapes, exact baselines, normalisation invariances, the autoregressive loop
against a hand-written one, training on real data, `.keras` round trips and error messages."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from models.normalization import WindowDenormalization, WindowNormalization
from models.zoo import (
    AUTOREGRESSIVE_NAMES,
    BASELINE_NAMES,
    MODEL_NAMES,
    AutoregressiveForecaster,
    ModelShape,
    build_model,
    compile_model,
    default_hyperparameters,
)

TRAINABLE_NAMES = tuple(name for name in MODEL_NAMES if name not in BASELINE_NAMES)
# Targets neither first nor in feature order, and fewer targets than features.
SHAPES = (
    ModelShape(input_width=6, horizon=3, n_features=4, target_indices=(2,)),
    ModelShape(input_width=5, horizon=4, n_features=3, target_indices=(2, 0)),
)
TINY = {"units": 4}


@pytest.fixture(autouse=True)
def seed() -> None:
    keras.utils.set_random_seed(0)


def tiny_hparams(name: str, **overrides: object) -> dict[str, object]:
    """Small widths so that the whole file runs in seconds."""
    defaults = default_hyperparameters(name)
    hparams = {key: value for key, value in TINY.items() if key in defaults}
    if "filters" in defaults:
        hparams["filters"] = 4
    return {**hparams, **overrides}


def random_inputs(shape: ModelShape, batch: int = 3, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return generator.normal(size=(batch, *shape.input_shape)).astype("float32")


def predict(model: keras.Model, inputs: np.ndarray) -> np.ndarray:
    # A direct call avoids tracing a predict function per model: faster for tiny inputs.
    return keras.ops.convert_to_numpy(model(inputs, training=False))


# --------------------------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=["one_target", "two_targets"])
def test_every_model_maps_windows_to_forecasts(name: str, shape: ModelShape) -> None:
    model = build_model(name, shape, **tiny_hparams(name))

    outputs = predict(model, random_inputs(shape, batch=3))

    assert model.output_shape == (None, shape.horizon, shape.n_targets)
    assert outputs.shape == (3, shape.horizon, shape.n_targets)
    assert np.isfinite(outputs).all()


@pytest.mark.parametrize("normalization", ["last", "revin"])
@pytest.mark.parametrize("name", ["linear", "conv", "gru", "peephole", "gru-ar", "peephole-ar"])
def test_normalized_models_map_windows_to_forecasts(name: str, normalization: str) -> None:
    shape = SHAPES[1]
    model = build_model(name, shape, **tiny_hparams(name, normalization=normalization))

    assert predict(model, random_inputs(shape)).shape == (3, shape.horizon, shape.n_targets)


def test_stacked_and_peephole_options_build() -> None:
    shape = SHAPES[1]
    for name in ("peephole", "peephole-ar"):
        model = build_model(
            name, shape, units=3, layers=2, peepholes="output", coupled_input_forget=True
        )
        peephole_weights = [w.path for w in model.weights if "peephole_weights" in w.path]
        # Two layers, one output-gate peephole each; CIFG has no input gate.
        assert len(peephole_weights) == 2, peephole_weights
        assert all("output_gate" in path for path in peephole_weights)
        assert predict(model, random_inputs(shape)).shape == (3, 4, 2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"input_width": 0}, "parameter input_width: expected a positive integer, got 0"),
        ({"horizon": -1}, "parameter horizon: expected a positive integer, got -1"),
        ({"n_features": 2.0}, "parameter n_features: expected a positive integer, got 2.0"),
        ({"target_indices": ()}, "expected at least one index"),
        ({"target_indices": (3,)}, "expected integers in [0, 3), got 3"),
        ({"target_indices": (1, 1)}, "indices repeat"),
        ({"target_indices": 1}, "expected a sequence of integers, got 1"),
    ],
)
def test_model_shape_rejects_bad_values(arguments: dict[str, object], message: str) -> None:
    values = {"input_width": 4, "horizon": 2, "n_features": 3, "target_indices": (0,)}
    with pytest.raises(ValueError) as error:
        ModelShape(**{**values, **arguments})
    assert message in str(error.value)


def test_model_shape_normalizes_numpy_values() -> None:
    shape = ModelShape(np.int64(4), 2, 3, [np.int64(2), 0])

    assert shape.input_width == 4 and type(shape.input_width) is int
    assert shape.target_indices == (2, 0)
    assert (shape.n_targets, shape.input_shape, shape.output_shape) == (2, (4, 3), (2, 2))


# --------------------------------------------------------------------------------------------
# Baselines: exact outputs


@pytest.fixture
def counting_window() -> tuple[ModelShape, np.ndarray]:
    """One window of 5 steps x 3 features: feature f at step s is 10 * f + s; targets 2 and 0."""
    steps = np.arange(5, dtype="float32")
    inputs = np.stack([steps, 10 + steps, 20 + steps], axis=-1)[np.newaxis]
    return ModelShape(input_width=5, horizon=5, n_features=3, target_indices=(2, 0)), inputs


def test_last_baseline_repeats_last_value(counting_window) -> None:
    shape, inputs = counting_window

    outputs = predict(build_model("last", shape), inputs)

    np.testing.assert_array_equal(outputs[0], np.tile([[24.0, 4.0]], (5, 1)))


def test_repeat_baseline_cycles_last_season(counting_window) -> None:
    shape, inputs = counting_window

    outputs = predict(build_model("repeat", shape, season=2), inputs)

    # The last season is steps 3, 4; a horizon of 5 cycles it: 3, 4, 3, 4, 3.
    expected_steps = np.array([3.0, 4.0, 3.0, 4.0, 3.0])
    np.testing.assert_array_equal(outputs[0], np.stack([20 + expected_steps, expected_steps], -1))


def test_repeat_baseline_defaults_to_the_horizon() -> None:
    shape = ModelShape(input_width=6, horizon=3, n_features=1, target_indices=(0,))
    inputs = np.arange(6, dtype="float32").reshape(1, 6, 1)

    outputs = predict(build_model("repeat", shape), inputs)

    np.testing.assert_array_equal(outputs[0, :, 0], [3.0, 4.0, 5.0])


def test_mean_baseline_repeats_window_mean(counting_window) -> None:
    shape, inputs = counting_window

    outputs = predict(build_model("mean", shape), inputs)

    np.testing.assert_array_equal(outputs[0], np.tile([[22.0, 2.0]], (5, 1)))


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baselines_have_no_weights(name: str) -> None:
    assert build_model(name, SHAPES[1]).weights == []


# --------------------------------------------------------------------------------------------
# Normalisation


def shift_and_scale(inputs: np.ndarray, feature: int, scale: float, shift: float) -> np.ndarray:
    changed = inputs.copy()
    changed[..., feature] = changed[..., feature] * scale + shift
    return changed


@pytest.mark.parametrize("name", ["dense", "lstm", "lstm-ar"])
def test_last_normalization_makes_forecasts_shift_equivariant(name: str) -> None:
    shape = SHAPES[1]  # targets: features 2 and 0
    model = build_model(name, shape, **tiny_hparams(name, normalization="last"))
    inputs = random_inputs(shape)
    outputs = predict(model, inputs)

    shifted_target = predict(model, shift_and_scale(inputs, feature=0, scale=1.0, shift=3.0))
    shifted_covariate = predict(model, shift_and_scale(inputs, feature=1, scale=1.0, shift=3.0))

    # Feature 0 is the second target: its forecast moves by the shift, the other does not.
    np.testing.assert_allclose(shifted_target[..., 1], outputs[..., 1] + 3.0, atol=1e-5)
    np.testing.assert_allclose(shifted_target[..., 0], outputs[..., 0], atol=1e-5)
    np.testing.assert_allclose(shifted_covariate, outputs, atol=1e-5)


@pytest.mark.parametrize("name", ["dense", "gru", "gru-ar"])
def test_revin_makes_forecasts_scale_and_shift_equivariant(name: str) -> None:
    shape = SHAPES[1]
    model = build_model(name, shape, **tiny_hparams(name, normalization="revin"))
    normalizer = model.get_layer("normalization")
    # Equivariance holds for any affine weights, not only the identity they start at.
    normalizer.gamma.assign([0.5, 2.0, 1.5])
    normalizer.beta.assign([0.3, -0.2, 0.1])
    inputs = random_inputs(shape)
    outputs = predict(model, inputs)

    changed = predict(model, shift_and_scale(inputs, feature=2, scale=3.0, shift=-5.0))

    np.testing.assert_allclose(changed[..., 0], outputs[..., 0] * 3.0 - 5.0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(changed[..., 1], outputs[..., 1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("method", "affine"), [("last", False), ("revin", False), ("revin", True)])
def test_window_normalization_inverts_exactly(method: str, affine: bool) -> None:
    inputs = random_inputs(SHAPES[0], batch=4) * 5.0 + 2.0
    normalizer = WindowNormalization(method, affine=affine)
    normalizer.build(inputs.shape)
    if affine:
        normalizer.gamma.assign([0.5, 2.0, 1.5, 1.0])
        normalizer.beta.assign([0.3, -0.2, 0.1, 0.0])

    normalized, location, scale = normalizer(inputs)
    normalized = keras.ops.convert_to_numpy(normalized)
    restored = WindowDenormalization(target_indices=(3, 1))(
        [normalized[..., [3, 1]], location, scale]
    )

    np.testing.assert_allclose(restored, inputs[..., [3, 1]], rtol=1e-5, atol=1e-5)
    if method == "last":
        np.testing.assert_array_equal(normalized[:, -1], 0.0)
    elif not affine:
        np.testing.assert_allclose(normalized.mean(axis=1), 0.0, atol=1e-5)
        np.testing.assert_allclose(normalized.std(axis=1), 1.0, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Autoregressive models


def manual_forecast(
    model: AutoregressiveForecaster, inputs: np.ndarray, fed_targets: np.ndarray | None = None
) -> np.ndarray:
    """The autoregressive loop written out with NumPy row updates (no normalisation)."""
    shape = model.model_shape
    sequence = inputs
    states = []
    for layer in model.recurrent_layers:
        sequence, *layer_states = layer(sequence)
        states.append(list(layer_states))
    prediction = keras.ops.convert_to_numpy(model.head(sequence))
    predictions = [prediction]
    for step in range(1, shape.horizon):
        row = inputs[:, -1, :].copy()
        row[:, list(shape.target_indices)] = (
            prediction if fed_targets is None else fed_targets[:, step - 1]
        )
        hidden = row
        for index, layer in enumerate(model.recurrent_layers):
            hidden, states[index] = layer.cell(hidden, states[index])
        prediction = keras.ops.convert_to_numpy(model.head(hidden))
        predictions.append(prediction)
    return np.stack(predictions, axis=1)


@pytest.mark.parametrize("name", AUTOREGRESSIVE_NAMES)
def test_autoregressive_forecast_matches_hand_written_loop(name: str) -> None:
    shape = SHAPES[1]
    model = build_model(name, shape, units=3, layers=2)
    inputs = random_inputs(shape)

    np.testing.assert_allclose(predict(model, inputs), manual_forecast(model, inputs), atol=1e-5)


@pytest.mark.parametrize("name", AUTOREGRESSIVE_NAMES)
def test_autoregressive_with_zero_head_repeats_last_value(name: str) -> None:
    # With "last" normalisation a zero head predicts "no change" at every step, so whatever the
    # cells compute, the forecast is the last input value of each target.
    shape = SHAPES[1]
    model = build_model(name, shape, units=3, normalization="last")
    for weight in model.head.weights:
        weight.assign(np.zeros(weight.shape))
    inputs = random_inputs(shape)

    outputs = predict(model, inputs)

    expected = np.repeat(inputs[:, -1:, list(shape.target_indices)], shape.horizon, axis=1)
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


def test_teacher_forcing_feeds_true_targets_in_training_loss_only() -> None:
    shape = SHAPES[1]
    model = build_model("lstm-ar", shape, units=3, teacher_forcing=True)
    compile_model(model)
    inputs = random_inputs(shape)
    targets = np.random.default_rng(1).normal(size=(3, *shape.output_shape)).astype("float32")
    free_running = predict(model, inputs)
    teacher_forced = manual_forecast(model, inputs, fed_targets=targets)
    assert not np.allclose(free_running, teacher_forced)

    training_loss = model.compute_loss(inputs, targets, free_running, training=True)
    evaluation_loss = model.compute_loss(inputs, targets, free_running, training=False)

    np.testing.assert_allclose(training_loss, np.mean((teacher_forced - targets) ** 2), rtol=1e-5)
    np.testing.assert_allclose(evaluation_loss, np.mean((free_running - targets) ** 2), rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Training on a small real slice (Seattle weather, shipped inside the vega_datasets wheel)

SEATTLE_FEATURES = ("precipitation", "temp_max", "temp_min", "wind")
SEATTLE_TARGETS = ("temp_max",)


@pytest.fixture(scope="module")
def seattle_windows() -> tuple[ModelShape, np.ndarray, np.ndarray]:
    """256 training windows (14 days in, 7 out), z-scored with the first 70% of the rows."""
    path = importlib.resources.files("vega_datasets") / "_data/seattle-weather.csv"
    with importlib.resources.as_file(path) as csv_path:
        frame = pd.read_csv(csv_path)
    values = frame[list(SEATTLE_FEATURES)].to_numpy(dtype="float64")
    train_rows = int(len(values) * 0.7)
    mean, std = values[:train_rows].mean(axis=0), values[:train_rows].std(axis=0)
    scaled = ((values - mean) / std).astype("float32")
    target_columns = [SEATTLE_FEATURES.index(column) for column in SEATTLE_TARGETS]
    # Plain slicing: models/ (tests included) never imports pipelines/.
    starts = np.arange(0, train_rows - 21, 2)[:256]
    inputs = np.stack([scaled[start : start + 14] for start in starts])
    targets = np.stack([scaled[start + 14 : start + 21, target_columns] for start in starts])
    shape = ModelShape(14, 7, len(SEATTLE_FEATURES), tuple(target_columns))
    return shape, inputs, targets


TRAINING_CASES = {
    "linear": {},
    "dense": {"normalization": "last", "dropout": 0.1},
    "conv": {"normalization": "revin"},
    "lstm": {"normalization": "revin"},
    "gru": {"normalization": "last"},
    "peephole": {},
    "clockwork": {"normalization": "revin"},
    "depth-gated": {"normalization": "last"},
    "lstm-ar": {"normalization": "revin", "dropout": 0.1, "recurrent_dropout": 0.1},
    "gru-ar": {"teacher_forcing": True},
    "peephole-ar": {"normalization": "last"},
}


def test_training_cases_cover_every_trainable_model() -> None:
    assert set(TRAINING_CASES) == set(TRAINABLE_NAMES)


@pytest.mark.parametrize("name", list(TRAINING_CASES))
def test_model_trains_on_real_data(name: str, seattle_windows) -> None:
    shape, inputs, targets = seattle_windows
    model = compile_model(
        build_model(name, shape, **tiny_hparams(name, **TRAINING_CASES[name])), learning_rate=0.01
    )
    before = model.evaluate(inputs, targets, batch_size=64, verbose=0, return_dict=True)["loss"]

    history = model.fit(inputs, targets, batch_size=32, epochs=1, shuffle=False, verbose=0)
    after = model.evaluate(inputs, targets, batch_size=64, verbose=0, return_dict=True)["loss"]

    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(after) and after < before, (before, after)


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baseline_matches_numpy_on_real_data(name: str, seattle_windows) -> None:
    shape, inputs, _ = seattle_windows
    model = build_model(name, shape)
    target_history = inputs[..., list(shape.target_indices)]
    expected = {
        "last": np.repeat(target_history[:, -1:], shape.horizon, axis=1),
        "repeat": target_history[:, -shape.horizon :],
        "mean": np.repeat(target_history.mean(axis=1, keepdims=True), shape.horizon, axis=1),
    }[name]

    assert model.trainable_weights == []
    np.testing.assert_allclose(predict(model, inputs), expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Serialisation


ROUND_TRIP_CASES = {
    "repeat": {"season": 3},
    "dense": {"layers": 2, "normalization": "last"},
    "lstm": {"normalization": "revin"},
    "gru": {
        "layers": 2,
        "channel_independent": True,
        "segment_length": 5,
        "decoder": "parallel",
        "channel_embedding": True,
        "head_dropout": 0.1,
        "linear_skip": True,
        "normalization": "revin",
    },
    "peephole": {
        "peepholes": ("forget", "output"),
        "coupled_input_forget": True,
        "segment_length": 1,
        "decoder": "parallel",
    },
    "clockwork": {
        "periods": "1,3",
        "layers": 2,
        "channel_independent": True,
        "segment_length": 5,
        "decoder": "parallel",
        "normalization": "revin",
    },
    "depth-gated": {"layers": 3, "segment_length": 1, "decoder": "parallel"},
    "lstm-ar": {"normalization": "revin", "layers": 2, "teacher_forcing": True},
    "peephole-ar": {"peepholes": "output"},
}


def as_json(config: dict[str, object]) -> object:
    return json.loads(json.dumps(config))


@pytest.mark.parametrize("name", list(ROUND_TRIP_CASES))
def test_keras_file_round_trip_keeps_predictions(name: str, tmp_path: Path) -> None:
    shape = SHAPES[1]
    model = build_model(name, shape, **tiny_hparams(name, **ROUND_TRIP_CASES[name]))
    # Move every weight off its initial value, so that the load must restore them all
    # (RevIN's affine and the peepholes start at ones and zeros).
    for index, weight in enumerate(model.weights):
        generator = np.random.default_rng(index)
        weight.assign(generator.normal(scale=0.3, size=weight.shape).astype("float32"))
    inputs = random_inputs(shape)
    path = tmp_path / f"{name}.keras"

    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: registration must suffice

    assert type(loaded) is type(model)
    # Compared as JSON, as in the file: tuples and lists are one thing there.
    assert as_json(loaded.get_config()) == as_json(model.get_config())
    np.testing.assert_array_equal(predict(loaded, inputs), predict(model, inputs))
