"""The model zoo's settings: unknown names and bad values named, every declared hyper-parameter
reaching the built model, and the options of the long-input models (channels read alone,
segments, the parallel decoder, the linear skip, channel embeddings, Clockwork periods)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from models.zoo import (
    MODEL_NAMES,
    RECURRENT_NAMES,
    AutoregressiveForecaster,
    ModelShape,
    build_model,
    compile_model,
    hyperparameters,
)
from models.zoo_test import SHAPES, TINY, predict, random_inputs, seed, tiny_hparams  # noqa: F401

# --------------------------------------------------------------------------------------------
# Errors


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'lstm_ar'") as error:
        build_model("lstm_ar", SHAPES[0])
    assert "did you mean 'lstm-ar'?" in str(error.value)
    assert "valid: " + ", ".join(MODEL_NAMES) in str(error.value)


def test_unknown_hyperparameter_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as error:
        build_model("lstm", SHAPES[0], unit=8)
    assert str(error.value) == (
        "model 'lstm': unknown hyper-parameter 'unit' (did you mean 'units'?); valid: "
        "normalization, affine, units, layers, dropout, recurrent_dropout, channel_independent, "
        "segment_length, decoder, channel_embedding, head_dropout, linear_skip"
    )


def test_baseline_without_hyperparameters_says_so() -> None:
    with pytest.raises(
        ValueError, match="model 'last': unknown hyper-parameter 'units'; valid: none"
    ):
        build_model("last", SHAPES[0], units=8)


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        (
            "lstm",
            {"units": 0},
            "model 'lstm': hyper-parameter 'units': expected a positive integer, got 0",
        ),
        ("gru", {"dropout": 1.0}, "hyper-parameter 'dropout': expected a number in [0, 1)"),
        ("dense", {"normalization": "batch"}, "expected one of none, last, revin, got 'batch'"),
        ("dense", {"normalization": "revn"}, "got 'revn'; did you mean 'revin'?"),
        ("peephole", {"peepholes": ("input", "cell")}, "expected one of input, forget, output"),
        ("peephole", {"peepholes": "forget,forget"}, "expected each gate once"),
        ("lstm-ar", {"teacher_forcing": "maybe"}, "expected true or false, got 'maybe'"),
        ("lstm", {"units": True}, "expected a positive integer, got True"),
        ("lstm", {"dropout": True}, "expected a number in [0, 1), got True"),
        ("lstm", {"units": 2.5}, "expected a positive integer, got 2.5"),
        (
            "repeat",
            {"season": 7},
            "model 'repeat': hyper-parameter 'season': expected at most the input width 6, got 7",
        ),
        ("conv", {"kernel_size": 9}, "hyper-parameter 'kernel_size': expected at most the input"),
        ("linear", {"lookback": 7}, "hyper-parameter 'lookback': expected at most the input"),
    ],
)
def test_bad_hyperparameter_values_are_named(
    name: str, hparams: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        build_model(name, SHAPES[0], **hparams)
    assert message in str(error.value)


def test_build_model_needs_a_model_shape() -> None:
    with pytest.raises(ValueError, match="parameter shape: expected a ModelShape"):
        build_model("last", (6, 3, 4, (2,)))


@pytest.mark.parametrize("learning_rate", [0, -1e-3, True, "0.01"])
def test_compile_model_rejects_bad_learning_rate(learning_rate: object) -> None:
    with pytest.raises(ValueError, match="parameter learning_rate: expected a positive number"):
        compile_model(build_model("linear", SHAPES[0]), learning_rate=learning_rate)


def test_every_registered_builder_takes_exactly_its_hyperparameters() -> None:
    """A builder that names its keyword arguments takes exactly the entry's hyper-parameters;
    every entry's builder and cell resolve."""
    import inspect

    from models.registry import MODELS, load_attribute

    checked = 0
    for name, entry in MODELS.items():
        builder = load_attribute(entry.builder)
        if entry.cell is not None:
            assert load_attribute(entry.cell.layer) is not None
        parameters = inspect.signature(builder).parameters
        if any(item.kind is inspect.Parameter.VAR_KEYWORD for item in parameters.values()):
            continue
        assert list(parameters)[:2] == ["entry", "shape"]
        assert set(list(parameters)[2:]) == set(hyperparameters(name)), name
        checked += 1
    assert checked == 6  # last, repeat, mean, linear, dense, conv


def test_an_unknown_cell_name_raises() -> None:
    from models.autoregressive import recurrent_layer

    with pytest.raises(ValueError, match="unknown cell 'peepole' \\(did you mean 'peephole'\\?\\)"):
        recurrent_layer("peepole", 4, 0.0, 0.0, {}, return_sequences=False, name="x")
    with pytest.raises(ValueError, match="parameter cell: unknown cell 'clockwork'"):
        AutoregressiveForecaster(4, 2, 1, (0,), cell="clockwork")


def test_every_declared_hyperparameter_reaches_the_built_model() -> None:
    """Changing any declared hyper-parameter from its default changes the built model."""

    shape = ModelShape(input_width=8, horizon=4, n_features=2, target_indices=(0,))
    changed = {
        "units": 4,
        "layers": 3,
        "dropout": 0.25,
        "recurrent_dropout": 0.25,
        "normalization": "last",
        "affine": False,
        "lookback": 5,
        "filters": 3,
        "kernel_size": 2,
        "season": 2,
        "peepholes": ("forget",),
        "coupled_input_forget": True,
        "periods": (1, 2),
        "teacher_forcing": True,
        "channel_independent": True,
        "segment_length": 4,
        "decoder": "parallel",
        "channel_embedding": True,
        "head_dropout": 0.25,
        "linear_skip": True,
    }
    # What a value needs beside it, in the default model and the changed one alike.
    needs = {
        "decoder": {"segment_length": 4},
        "channel_embedding": {
            "channel_independent": True,
            "segment_length": 4,
            "decoder": "parallel",
        },
    }
    for name in MODEL_NAMES:
        table = hyperparameters(name)
        base = {"normalization": "revin"} if "affine" in table else {}
        for key in table:
            default_config = json.dumps(
                build_model(name, shape, **base, **needs.get(key, {})).get_config(),
                sort_keys=True,
                default=str,
            )
            hparams = {**base, **needs.get(key, {}), key: changed[key]}
            config = json.dumps(
                build_model(name, shape, **hparams).get_config(), sort_keys=True, default=str
            )
            assert config != default_config, f"{name}: {key} does not reach the model"


@pytest.mark.parametrize("name", RECURRENT_NAMES)
def test_channel_independent_models_read_each_channel_alone(name: str) -> None:
    """A channel's forecast depends on its own history only, and the model is the same size
    whatever the number of channels (the weights are shared)."""
    shape = ModelShape(input_width=12, horizon=4, n_features=3, target_indices=(2, 0))
    keras.utils.set_random_seed(1)
    model = build_model(name, shape, units=4, channel_independent=True, segment_length=3)
    window = np.random.default_rng(0).normal(size=(2, 12, 3)).astype("float32")
    changed = window.copy()
    changed[..., 2] += 10.0  # only channel 2, the first target
    before, after = model.predict(window, verbose=0), model.predict(changed, verbose=0)
    np.testing.assert_array_equal(before[..., 1], after[..., 1])  # target channel 0: same
    assert not np.allclose(before[..., 0], after[..., 0])
    # Channel 1 is no target: with channels read alone it is never read.
    changed = window.copy()
    changed[..., 1] -= 5.0
    np.testing.assert_array_equal(model.predict(changed, verbose=0), before)
    one_channel = ModelShape(input_width=12, horizon=4, n_features=1, target_indices=(0,))
    alone = build_model(name, one_channel, units=4, channel_independent=True, segment_length=3)
    assert alone.count_params() == model.count_params()


def test_segments_shorten_the_recurrence_and_must_divide_the_window() -> None:
    shape = ModelShape(input_width=12, horizon=4, n_features=2, target_indices=(0,))
    model = build_model("gru", shape, units=5, segment_length=4)
    assert model.get_layer("gru_0").input.shape[1] == 3  # 12 steps read as 3 segments
    assert model.get_layer("segment_embedding").units == 5
    with pytest.raises(ValueError, match="'segment_length': expected a divisor of the input"):
        build_model("gru", shape, segment_length=5)


@pytest.mark.parametrize(
    ("name", "cell_hparams"),
    [
        ("lstm", {}),
        ("gru", {}),
        ("peephole", {}),
        # The decoding step continues the clock: at step 3 the period-2 module keeps its state.
        ("clockwork", {"periods": (1, 2, 3)}),
        ("depth-gated", {"layers": 2}),
    ],
)
def test_parallel_decoder_matches_a_hand_assembled_one(name: str, cell_hparams: dict) -> None:
    """Channels alone, 12 steps read as 3 segments of 4, a horizon of 10 decoded as 3 segments
    of 4 (the last 2 steps cropped): every segment is one step of the same cell from the final
    state, fed [position embedding, channel embedding], then the shared head."""
    shape = ModelShape(input_width=12, horizon=10, n_features=3, target_indices=(2, 0))
    hparams = {"segment_length": 4, "decoder": "parallel", "channel_embedding": True}
    model = build_model(name, shape, units=6, channel_independent=True, **hparams, **cell_hparams)
    for index, weight in enumerate(model.weights):  # off the initial zeros and ones
        weight.assign(np.random.default_rng(index).normal(scale=0.4, size=weight.shape))
    window = random_inputs(shape, batch=2)

    embedding = model.get_layer("segment_embedding")
    encoder = model.get_layer(f"{name}_0")
    queries = model.get_layer("segment_queries")
    position = keras.ops.convert_to_numpy(queries.position_embedding)
    channel = keras.ops.convert_to_numpy(queries.channel_embedding)
    head = model.get_layer("head")
    expected = np.zeros((2, 10, 2), "float32")
    for row in range(2):
        for target, feature in enumerate(shape.target_indices):
            segments = window[row, :, feature].reshape(1, 3, 4)
            _, *states = encoder(embedding(segments))
            steps = []
            for segment in range(3):
                query = np.concatenate([position[segment], channel[target]])[None, None]
                decoded, *_ = encoder(query, initial_state=states)
                steps.append(keras.ops.convert_to_numpy(head(decoded))[0])
            expected[row, :, target] = np.concatenate(steps)[:10]
    np.testing.assert_allclose(predict(model, window), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("independent", [True, False])
def test_linear_skip_adds_a_linear_forecast_of_the_window(independent: bool) -> None:
    """With the decoder's head at zero, the model is the linear map alone: each target
    channel's window times one shared matrix (channels alone), or the flattened window times
    one matrix to every target (channels mixed)."""
    shape = ModelShape(input_width=8, horizon=6, n_features=3, target_indices=(2, 0))
    hparams = {"channel_independent": independent, "segment_length": 4, "decoder": "parallel"}
    model = build_model("gru", shape, units=4, linear_skip=True, **hparams)
    for index, weight in enumerate(model.weights):
        weight.assign(np.random.default_rng(index).normal(scale=0.4, size=weight.shape))
    head = model.get_layer("head")
    head.kernel.assign(np.zeros(head.kernel.shape))
    head.bias.assign(np.zeros(head.bias.shape))
    skip = model.get_layer("linear_skip")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (skip.kernel, skip.bias))
    window = random_inputs(shape, batch=2)

    if independent:
        rows = window[:, :, [2, 0]].transpose(0, 2, 1)  # (batch, targets, steps)
        expected = (rows @ kernel + bias).transpose(0, 2, 1)
    else:
        expected = (window.reshape(2, -1) @ kernel + bias).reshape(2, 6, 2)
    np.testing.assert_allclose(predict(model, window), expected, rtol=1e-5, atol=1e-5)
    without = build_model("gru", shape, units=4, **hparams)
    assert model.count_params() - without.count_params() == kernel.size + bias.size


def test_channel_embedding_tells_identical_channels_apart() -> None:
    shape = ModelShape(input_width=8, horizon=4, n_features=2, target_indices=(0, 1))
    window = np.repeat(random_inputs(ModelShape(8, 4, 1, (0,))), 2, axis=2)  # twin channels
    hparams = {"channel_independent": True, "segment_length": 4, "decoder": "parallel"}
    plain = predict(build_model("gru", shape, units=4, **hparams), window)
    np.testing.assert_array_equal(plain[..., 0], plain[..., 1])
    embedded = predict(
        build_model("gru", shape, units=4, channel_embedding=True, **hparams), window
    )
    assert not np.allclose(embedded[..., 0], embedded[..., 1])


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"decoder": "parallel"}, "'decoder': 'parallel' decodes the horizon in segments"),
        (
            {"segment_length": 4, "decoder": "parallel", "channel_embedding": True},
            "'channel_embedding': expected it only with channel_independent=True",
        ),
        (
            {"channel_independent": True, "segment_length": 4, "channel_embedding": True},
            "'channel_embedding': expected it only with channel_independent=True",
        ),
        (
            {
                "units": 1,
                "channel_independent": True,
                "segment_length": 4,
                "decoder": "parallel",
                "channel_embedding": True,
            },
            "'channel_embedding': the query splits units .* expected units >= 2, got 1",
        ),
        ({"decoder": "sideways"}, "'decoder': expected one of dense, parallel, got 'sideways'"),
    ],
)
def test_decoder_options_that_do_not_fit_are_named(hparams: dict, message: str) -> None:
    shape = ModelShape(input_width=8, horizon=4, n_features=2, target_indices=(0,))
    with pytest.raises(ValueError, match=f"model 'gru': hyper-parameter {message}"):
        build_model("gru", shape, **hparams)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        (
            {"units": 30},
            "'periods': .* expected units to be a multiple of 4 for \\[1, 2, 4, 8\\], got 30",
        ),
        ({"periods": "1,2,2"}, "'periods': expected each period once, got \\(1, 2, 2\\)"),
        ({"periods": "1,x"}, "'periods': expected every item to be a positive integer, got 'x'"),
        ({"periods": (2, 0)}, "'periods': expected every item to be a positive integer, got 0"),
        ({"periods": ()}, "'periods': expected at least one value, got \\(\\)"),
    ],
)
def test_clockwork_periods_that_do_not_fit_are_named(hparams: dict, message: str) -> None:
    shape = ModelShape(input_width=8, horizon=4, n_features=2, target_indices=(0,))
    with pytest.raises(ValueError, match=f"model 'clockwork': hyper-parameter {message}"):
        build_model("clockwork", shape, **hparams)
