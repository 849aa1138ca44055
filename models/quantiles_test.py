"""The quantile head: (batch, horizon, K, T) forecasts from every direct and single-shot
recurrent model, never crossed, trained by the pinball loss to known quantiles."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from models.quantiles import (
    MedianAbsoluteError,
    PinballLoss,
    SortedQuantiles,
    head_quantiles_of,
)
from models.registry import AUTOREGRESSIVE_NAMES, BASELINE_NAMES, DIRECT_NAMES, RECURRENT_NAMES
from models.zoo import ModelShape, build_model, compile_model
from models.zoo_test import SHAPES, predict, random_inputs, seed, tiny_hparams  # noqa: F401

QUANTILES = (0.1, 0.5, 0.9)
HEADED = DIRECT_NAMES + RECURRENT_NAMES
LONG_INPUT = {
    "channel_independent": True,
    "segment_length": 2,
    "decoder": "parallel",
    "linear_skip": True,
    "channel_embedding": True,
}


def quantile_shape(shape: ModelShape, quantiles: tuple[float, ...] = QUANTILES) -> ModelShape:
    return dataclasses.replace(shape, quantiles=quantiles)


@pytest.mark.parametrize("name", HEADED)
@pytest.mark.parametrize("shape", SHAPES, ids=["one_target", "two_targets"])
def test_every_headed_model_forecasts_quantiles_that_never_cross(
    name: str, shape: ModelShape
) -> None:
    model = build_model(name, quantile_shape(shape), **tiny_hparams(name))
    # Random weights pushed far from their initial values, so unsorted heads would cross.
    for weights in model.weights:
        weights.assign(np.random.default_rng(1).normal(size=weights.shape) * 2)
    forecast = predict(model, random_inputs(shape, batch=16))
    assert forecast.shape == (16, shape.horizon, 3, shape.n_targets)
    assert (np.diff(forecast, axis=2) >= 0).all()
    assert np.isfinite(forecast).all()


@pytest.mark.parametrize("name", ("gru", "lstm"))
def test_long_input_options_forecast_each_channel_from_its_own_window(name: str) -> None:
    shape = quantile_shape(
        ModelShape(input_width=8, horizon=6, n_features=3, target_indices=(2, 0))
    )
    model = build_model(
        name, shape, **tiny_hparams(name, **LONG_INPUT, normalization="revin", affine=True)
    )
    # With every weight at zero but RevIN's affine scale (-1), each channel's median is the
    # mean of its own window, and its 0.1 and 0.9 quantiles lie softplus(0) = ln 2 window
    # standard deviations either side (the negative scale reverses them; the sort puts them
    # back): the channel axis comes back in target order.
    for weights in model.weights:
        weights.assign(np.zeros(weights.shape))
    model.get_layer("normalization").gamma.assign(-np.ones(3))
    inputs = random_inputs(shape, batch=4)
    forecast = predict(model, inputs)  # (4, 6, 3, 2)
    channels = inputs[:, :, [2, 0]]
    means, deviations = channels.mean(axis=1), np.sqrt(channels.var(axis=1) + 1e-5)
    spread = np.log(2) * deviations
    expected = np.stack([means - spread, means, means + spread], axis=1)  # (4, 3, 2)
    np.testing.assert_allclose(
        forecast, np.broadcast_to(expected[:, None], forecast.shape), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", BASELINE_NAMES + AUTOREGRESSIVE_NAMES)
def test_models_without_a_head_refuse_quantiles(name: str) -> None:
    with pytest.raises(ValueError, match=f"model '{name}': no quantile head"):
        build_model(name, quantile_shape(SHAPES[0]), **tiny_hparams(name))


@pytest.mark.parametrize("quantiles", [(0.1, 0.9), (0.9, 0.5), (0.0, 0.5), (0.5, 0.5), "0.5"])
def test_bad_quantile_levels_are_one_clear_error(quantiles: object) -> None:
    with pytest.raises(ValueError, match="parameter quantiles: expected increasing levels"):
        quantile_shape(SHAPES[0], quantiles)  # type: ignore[arg-type]


def test_pinball_loss_and_median_error_by_hand() -> None:
    # One step, one target, quantiles 0.1/0.5/0.9 forecast 0, 1, 4; actuals 2 and -1.
    y_true = np.array([[[2.0]], [[-1.0]]])
    y_pred = np.array([[[[0.0], [1.0], [4.0]]]] * 2)
    # y = 2: errors 2, 1, -2 -> 0.1 x 2, 0.5 x 1, 0.1 x 2 = 0.2, 0.5, 0.2.
    # y = -1: errors -1, -2, -5 -> 0.9 x 1, 0.5 x 2, 0.1 x 5 = 0.9, 1.0, 0.5.
    expected = np.mean([0.2, 0.5, 0.2, 0.9, 1.0, 0.5])
    loss = PinballLoss(QUANTILES)(y_true, y_pred)
    assert float(loss) == pytest.approx(expected)
    metric = MedianAbsoluteError(QUANTILES)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx((1 + 2) / 2)


def test_sorting_is_along_the_quantile_axis_only() -> None:
    values = np.array([[[[3.0, -1.0], [1.0, 5.0], [2.0, 0.0]]]])  # (1, 1, K=3, T=2)
    sorted_values = keras.ops.convert_to_numpy(SortedQuantiles()(values))
    np.testing.assert_array_equal(sorted_values[0, 0], [[1.0, -1.0], [2.0, 0.0], [3.0, 5.0]])


def test_a_saved_quantile_model_loads_and_forecasts_the_same(tmp_path) -> None:
    shape = quantile_shape(SHAPES[1])
    model = build_model("gru", shape, **tiny_hparams("gru", **{**LONG_INPUT, "segment_length": 5}))
    compile_model(model, loss=PinballLoss(QUANTILES), metrics=[MedianAbsoluteError(QUANTILES)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = random_inputs(shape)
    np.testing.assert_allclose(predict(loaded, inputs), predict(model, inputs), rtol=1e-6)
    assert loaded.loss.quantiles == QUANTILES
    assert head_quantiles_of(loaded) == QUANTILES
    assert head_quantiles_of(build_model("gru", SHAPES[1], **tiny_hparams("gru"))) == ()


def test_trained_quantiles_reach_the_known_quantiles_of_the_noise() -> None:
    # y = the window's last value + N(0, 1) noise: the 0.1 and 0.9 quantiles of y are the last
    # value -/+ 1.2816, which a linear head on the last step learns from the pinball loss.
    generator = np.random.default_rng(0)
    shape = quantile_shape(ModelShape(input_width=4, horizon=1, n_features=1, target_indices=(0,)))
    inputs = generator.normal(size=(8192, 4, 1)).astype("float32")
    targets = (inputs[:, -1:, :] + generator.normal(size=(8192, 1, 1))).astype("float32")
    model = build_model("linear", shape, normalization="none")
    compile_model(model, learning_rate=0.01, loss=PinballLoss(QUANTILES), metrics=())
    model.fit(inputs, targets, batch_size=512, epochs=60, verbose=0)
    test_inputs = generator.normal(size=(20000, 4, 1)).astype("float32")
    forecast = predict(model, test_inputs)[:, 0, :, 0] - test_inputs[:, -1, :]  # (N, K)
    np.testing.assert_allclose(forecast.mean(axis=0), [-1.2816, 0.0, 1.2816], atol=0.06)
