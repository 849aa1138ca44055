"""Metrics against hand-computed numbers, sklearn on random data, and their error messages, all
through `evaluate` (the one entry point the training, backtest and tracking code calls)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
)

from pipelines.training.metrics import (
    MAPE_EPSILON,
    PER_HORIZON,
    PER_TARGET,
    Axis,
    evaluate,
    per_horizon,
    seasonal_naive_scale,
)


def metric(name: str, actual, forecast, *, axis: Axis = None, scale=None, epsilon=MAPE_EPSILON):
    """One metric of `evaluate`'s answer."""
    return evaluate(actual, forecast, mase_scale=scale, axis=axis, mape_epsilon=epsilon)[name]


def mae(actual, forecast, *, axis: Axis = None):
    return metric("mae", actual, forecast, axis=axis)


def mse(actual, forecast, *, axis: Axis = None):
    return metric("mse", actual, forecast, axis=axis)


def rmse(actual, forecast, *, axis: Axis = None):
    return metric("rmse", actual, forecast, axis=axis)


def mape(actual, forecast, *, axis: Axis = None, epsilon: float = MAPE_EPSILON):
    return metric("mape", actual, forecast, axis=axis, epsilon=epsilon)


def mape_excluded(actual, *, axis: Axis = None, epsilon: float = MAPE_EPSILON):
    return metric("mape_excluded", actual, actual, axis=axis, epsilon=epsilon)


def smape(actual, forecast, *, axis: Axis = None):
    return metric("smape", actual, forecast, axis=axis)


def mase(actual, forecast, scale, *, axis: Axis = None):
    return metric("mase", actual, forecast, axis=axis, scale=scale)


# Two windows, horizon 2, one target. Absolute errors |y - ŷ|: step 0 -> 1, 3; step 1 -> 0, 3.
ACTUAL = np.array([[[1.0], [2.0]], [[4.0], [5.0]]])
FORECAST = np.array([[[2.0], [2.0]], [[1.0], [8.0]]])


@pytest.fixture(autouse=True)
def no_warnings():
    """Every metric here must run without a single NumPy (or other) warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_pair(
    shape: tuple[int, int, int] = (40, 6, 3), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Actual values in [1, 10) (far from zero) and noisy forecasts of them."""
    rng = np.random.default_rng(seed)
    actual = rng.uniform(1.0, 10.0, size=shape)
    return actual, actual + rng.normal(scale=1.5, size=shape)


# ---------------------------------------------------------------------------------------------
# Hand-computed values


def test_hand_computed_overall_values():
    assert mae(ACTUAL, FORECAST) == pytest.approx(7 / 4)
    assert mse(ACTUAL, FORECAST) == pytest.approx(19 / 4)
    assert rmse(ACTUAL, FORECAST) == pytest.approx(math.sqrt(19 / 4))
    # |e| / |y| = 1/1, 0/2, 3/4, 3/5
    assert mape(ACTUAL, FORECAST) == pytest.approx(100 * (1 + 0 + 0.75 + 0.6) / 4)
    # 2|e| / (|y| + |ŷ|) = 2/3, 0/4, 6/5, 6/13
    assert smape(ACTUAL, FORECAST) == pytest.approx(100 * (2 / 3 + 0 + 6 / 5 + 6 / 13) / 4)
    assert mase(ACTUAL, FORECAST, 2.0) == pytest.approx(7 / 4 / 2)


def test_hand_computed_per_horizon_values():
    np.testing.assert_allclose(mae(ACTUAL, FORECAST, axis=PER_HORIZON), [2.0, 1.5])
    np.testing.assert_allclose(mse(ACTUAL, FORECAST, axis=PER_HORIZON), [5.0, 4.5])
    np.testing.assert_allclose(rmse(ACTUAL, FORECAST, axis=PER_HORIZON), np.sqrt([5.0, 4.5]))
    np.testing.assert_allclose(mape(ACTUAL, FORECAST, axis=PER_HORIZON), [87.5, 30.0])
    np.testing.assert_allclose(
        smape(ACTUAL, FORECAST, axis=PER_HORIZON), [50 * (2 / 3 + 6 / 5), 50 * 6 / 13]
    )
    np.testing.assert_allclose(mase(ACTUAL, FORECAST, 2.0, axis=PER_HORIZON), [1.0, 0.75])


def test_hand_computed_per_target_values():
    # One window, two steps, two targets; |e| = [[1, 0], [0, 5]].
    actual = np.array([[[1.0, 10.0], [2.0, 20.0]]])
    forecast = np.array([[[2.0, 10.0], [2.0, 25.0]]])
    np.testing.assert_allclose(mae(actual, forecast, axis=PER_TARGET), [0.5, 2.5])
    np.testing.assert_allclose(mse(actual, forecast, axis=PER_TARGET), [0.5, 12.5])
    np.testing.assert_allclose(mape(actual, forecast, axis=PER_TARGET), [50.0, 12.5])
    np.testing.assert_allclose(smape(actual, forecast, axis=PER_TARGET), [100 / 3, 100 * 5 / 45])
    # A scale per target: each target's MAE over its own scale; overall the mean of |e| / s.
    scale = np.array([0.5, 5.0])
    np.testing.assert_allclose(mase(actual, forecast, scale, axis=PER_TARGET), [1.0, 0.5])
    assert mase(actual, forecast, scale) == pytest.approx((1 / 0.5 + 0 + 0 + 5 / 5) / 4)
    # Per window: axis (1, 2) keeps the window axis; negative axes mean the same as positive.
    assert mae(actual, forecast, axis=(1, 2)).tolist() == [1.5]
    np.testing.assert_allclose(mae(actual, forecast, axis=(-3, -2)), [0.5, 2.5])


def test_overall_results_are_python_floats_and_kept_axes_are_arrays():
    assert type(mae(ACTUAL, FORECAST)) is float
    assert type(mase(ACTUAL, FORECAST, 1.0)) is float
    assert mae(ACTUAL, FORECAST, axis=PER_HORIZON).shape == (2,)
    assert mae(ACTUAL, FORECAST, axis=0).shape == (2, 1)


def test_integer_and_float32_inputs_are_computed_in_float64():
    actual = np.array([[[1], [3]]])
    forecast = np.array([[[2], [5]]])
    assert mae(actual, forecast) == 1.5
    assert mae(actual.astype("float32"), forecast.astype("float32")) == 1.5
    assert mae(actual.tolist(), forecast.tolist()) == 1.5


# ---------------------------------------------------------------------------------------------
# sklearn as a reference on random data


def test_overall_values_match_sklearn():
    actual, forecast = random_pair()
    flat_actual, flat_forecast = actual.ravel(), forecast.ravel()
    assert mae(actual, forecast) == pytest.approx(mean_absolute_error(flat_actual, flat_forecast))
    assert mse(actual, forecast) == pytest.approx(mean_squared_error(flat_actual, flat_forecast))
    assert rmse(actual, forecast) == pytest.approx(
        math.sqrt(mean_squared_error(flat_actual, flat_forecast))
    )
    # sklearn's MAPE is a fraction; ours is in percent.
    assert mape(actual, forecast) == pytest.approx(
        100 * mean_absolute_percentage_error(flat_actual, flat_forecast)
    )


def test_per_target_values_match_sklearn_raw_values():
    actual, forecast = random_pair(seed=1)
    targets = actual.shape[2]
    by_target_actual = actual.reshape(-1, targets)
    by_target_forecast = forecast.reshape(-1, targets)
    for ours, reference, factor in (
        (mae, mean_absolute_error, 1),
        (mse, mean_squared_error, 1),
        (mape, mean_absolute_percentage_error, 100),
    ):
        expected = factor * reference(
            by_target_actual, by_target_forecast, multioutput="raw_values"
        )
        np.testing.assert_allclose(ours(actual, forecast, axis=PER_TARGET), expected, rtol=1e-12)


def test_per_horizon_values_match_sklearn_step_by_step():
    actual, forecast = random_pair(seed=2)
    horizon = actual.shape[1]
    for ours, reference, factor in (
        (mae, mean_absolute_error, 1),
        (mse, mean_squared_error, 1),
        (mape, mean_absolute_percentage_error, 100),
    ):
        expected = [
            factor * reference(actual[:, step].ravel(), forecast[:, step].ravel())
            for step in range(horizon)
        ]
        np.testing.assert_allclose(ours(actual, forecast, axis=PER_HORIZON), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# MAPE's zero guard


def test_mape_leaves_out_near_zero_actuals_and_counts_them():
    actual = np.array([[[0.0], [2.0]], [[1e-12], [4.0]]])
    forecast = np.array([[[1.0], [3.0]], [[5.0], [2.0]]])
    # Kept: |3 - 2| / 2 and |2 - 4| / 4, both 0.5.
    assert mape(actual, forecast) == pytest.approx(50.0)
    assert mape_excluded(actual) == 2
    per_step = mape(actual, forecast, axis=PER_HORIZON)
    assert math.isnan(per_step[0])
    assert per_step[1] == pytest.approx(50.0)
    assert mape_excluded(actual, axis=PER_HORIZON).tolist() == [2, 0]


def test_mape_of_all_zero_actuals_is_nan_without_warnings():
    actual = np.zeros((3, 2, 2))
    forecast = np.ones((3, 2, 2))
    assert math.isnan(mape(actual, forecast))
    assert np.isnan(mape(actual, forecast, axis=PER_TARGET)).all()
    assert mape_excluded(actual) == 12
    # The other metrics are still defined.
    assert mae(actual, forecast) == 1.0
    assert smape(actual, forecast) == 200.0


def test_mape_epsilon_sets_the_threshold():
    actual = np.array([[[0.1], [1.0]]])
    forecast = np.array([[[0.2], [1.5]]])
    assert mape(actual, forecast) == pytest.approx(75.0)  # (100% + 50%) / 2
    assert mape(actual, forecast, epsilon=0.5) == pytest.approx(50.0)
    assert mape_excluded(actual, epsilon=0.5) == 1
    with pytest.raises(ValueError, match=r"evaluate: expected epsilon finite and > 0, got 0.0"):
        mape(actual, forecast, epsilon=0.0)


# ---------------------------------------------------------------------------------------------
# sMAPE


@pytest.mark.parametrize(
    ("actual", "forecast", "expected"),
    [
        (100.0, 110.0, 2 * 10 / 210 * 100),
        (110.0, 100.0, 2 * 10 / 210 * 100),  # symmetric in its arguments
        (0.0, 0.0, 0.0),  # 0/0 is a perfect forecast
        (5.0, 0.0, 200.0),
        (0.0, 5.0, 200.0),
        (1.0, -1.0, 200.0),
        (-4.0, -4.0, 0.0),
    ],
)
def test_smape_known_values(actual, forecast, expected):
    assert smape(np.full((1, 1, 1), actual), np.full((1, 1, 1), forecast)) == pytest.approx(
        expected
    )


def test_smape_stays_between_0_and_200_on_random_signed_data():
    rng = np.random.default_rng(3)
    actual = rng.normal(size=(30, 4, 2))
    forecast = rng.normal(size=(30, 4, 2))
    values = smape(actual, forecast, axis=(0,))
    assert ((values >= 0) & (values <= 200)).all()


# ---------------------------------------------------------------------------------------------
# MASE and its seasonal-naive scale


def test_seasonal_naive_scale_hand_computed():
    values = np.array([1.0, 3.0, 2.0, 6.0])
    assert seasonal_naive_scale(values) == pytest.approx(7 / 3)  # (2 + 1 + 4) / 3
    assert seasonal_naive_scale(values, season=2) == pytest.approx(2.0)  # (1 + 3) / 2
    assert seasonal_naive_scale([1.0, 3.0, 2.0, 6.0]).shape == ()
    per_target = seasonal_naive_scale(np.array([[1.0, 0.0], [3.0, 10.0], [2.0, 30.0]]))
    np.testing.assert_allclose(per_target, [1.5, 15.0])


def test_seasonal_naive_scale_per_series_of_different_lengths():
    series = [
        np.array([[1.0, 0.0], [2.0, 4.0]]),
        np.array([[0.0, 1.0], [4.0, 1.5], [4.0, 3.5]]),
    ]
    np.testing.assert_allclose(seasonal_naive_scale(series), [[1.0, 4.0], [2.0, 1.25]])
    np.testing.assert_allclose(seasonal_naive_scale([np.array([1.0, 2.0, 4.0])] * 2), [1.5, 1.5])


def test_mase_of_the_seasonal_naive_forecast_on_its_training_data_is_one():
    rng = np.random.default_rng(4)
    season = 7
    training = rng.normal(size=200).cumsum()
    # Each window forecasts one step, y_t, with the seasonal-naive forecast y_{t-m}.
    actual = training[season:].reshape(-1, 1, 1)
    forecast = training[:-season].reshape(-1, 1, 1)
    scale = seasonal_naive_scale(training, season)
    assert mase(actual, forecast, scale) == 1.0
    assert evaluate(actual, forecast, mase_scale=scale)["mase"] == 1.0


def test_mase_of_the_seasonal_naive_forecast_is_one_per_target_and_series():
    rng = np.random.default_rng(5)
    season, horizon = 3, 3
    # Two series of 3 targets; windows of horizon m tile each series after its first season.
    series = [rng.normal(size=(rows, 3)).cumsum(axis=0) for rows in (33, 63)]
    actual, forecast, window_series = [], [], []
    for index, values in enumerate(series):
        for start in range(season, len(values), horizon):
            actual.append(values[start : start + horizon])
            forecast.append(values[start - season : start - season + horizon])
            window_series.append(index)
    scales = seasonal_naive_scale(series, season)
    per_window_scale = scales[np.array(window_series)][:, np.newaxis, :]
    assert per_window_scale.shape == (len(actual), 1, 3)
    # Each series' scaled errors average to one, so all windows together do too.
    values = mase(np.array(actual), np.array(forecast), per_window_scale, axis=PER_TARGET)
    np.testing.assert_allclose(values, [1.0, 1.0, 1.0], rtol=1e-12)
    for index in range(2):
        rows = np.array(window_series) == index
        value = mase(
            np.array(actual)[rows], np.array(forecast)[rows], scales[index], axis=PER_TARGET
        )
        np.testing.assert_allclose(value, 1.0, rtol=1e-12)


def test_mase_per_window_scale_scales_each_window_by_its_own_series():
    actual = np.zeros((2, 2, 1))
    forecast = np.array([[[1.0], [1.0]], [[10.0], [30.0]]])
    scale = np.array([1.0, 10.0]).reshape(2, 1, 1)  # series of window 0 and of window 1
    # Scaled errors: window 0 -> 1, 1; window 1 -> 1, 3.
    assert mase(actual, forecast, scale) == pytest.approx(1.5)
    np.testing.assert_allclose(mase(actual, forecast, scale, axis=PER_HORIZON), [1.0, 2.0])
    np.testing.assert_allclose(mase(actual, forecast, scale, axis=(1, 2)), [1.0, 2.0])
    # With equal windows per series, the overall value is the mean of the per-series MASE.
    per_series = [mase(actual[i : i + 1], forecast[i : i + 1], scale[i]) for i in range(2)]
    assert mase(actual, forecast, scale) == pytest.approx(np.mean(per_series))


def test_mase_is_mae_over_a_scalar_scale_on_random_data():
    actual, forecast = random_pair(seed=6)
    np.testing.assert_allclose(
        mase(actual, forecast, 0.5, axis=PER_HORIZON),
        mae(actual, forecast, axis=PER_HORIZON) / 0.5,
        rtol=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# evaluate and per_horizon


def test_evaluate_returns_every_metric_as_the_single_functions_do():
    actual, forecast = random_pair(seed=7)
    scale = np.array([0.5, 1.0, 2.0])
    for axis in (None, PER_HORIZON, PER_TARGET):
        results = evaluate(actual, forecast, mase_scale=scale, axis=axis)
        assert list(results) == ["mae", "mse", "rmse", "mape", "smape", "mase", "mape_excluded"]
        for name, function in (("mae", mae), ("mse", mse), ("rmse", rmse), ("smape", smape)):
            np.testing.assert_allclose(results[name], function(actual, forecast, axis=axis))
        np.testing.assert_allclose(results["mape"], mape(actual, forecast, axis=axis))
        np.testing.assert_allclose(results["mase"], mase(actual, forecast, scale, axis=axis))
    overall = evaluate(actual, forecast)
    assert "mase" not in overall
    assert overall["mape_excluded"] == 0
    assert all(isinstance(overall[name], float) for name in ("mae", "rmse", "mape"))


def test_per_horizon_shapes_and_averages_back_to_the_overall_values():
    actual, forecast = random_pair(shape=(25, 5, 2), seed=8)
    steps = per_horizon(actual, forecast, mase_scale=0.7)
    overall = evaluate(actual, forecast, mase_scale=0.7)
    assert set(steps) == set(overall)
    assert all(values.shape == (5,) for values in steps.values())
    # Every step has as many windows and targets, so the step means are the overall values.
    for name in ("mae", "mse", "mape", "smape", "mase"):
        assert np.mean(steps[name]) == pytest.approx(overall[name], rel=1e-12)
    assert math.sqrt(np.mean(steps["mse"])) == pytest.approx(overall["rmse"], rel=1e-12)
    np.testing.assert_allclose(steps["rmse"], np.sqrt(steps["mse"]))
    assert steps["mape_excluded"].tolist() == [0] * 5
    assert "mase" not in per_horizon(actual, forecast)


def test_per_horizon_hand_computed():
    steps = per_horizon(ACTUAL, FORECAST, 2.0)
    np.testing.assert_allclose(steps["mae"], [2.0, 1.5])
    np.testing.assert_allclose(steps["mase"], [1.0, 0.75])


# ---------------------------------------------------------------------------------------------
# Errors


def test_mismatched_shapes_are_named():
    with pytest.raises(
        ValueError,
        match=r"evaluate: expected forecast of the shape of actual \(2, 2, 1\), got \(2, 2\)",
    ):
        mae(ACTUAL, FORECAST[..., 0])


def test_arrays_that_are_not_three_dimensional_are_rejected():
    with pytest.raises(
        ValueError,
        match=r"evaluate: expected actual of shape \(windows, horizon, targets\), got shape \(4,\)",
    ):
        rmse(ACTUAL.ravel(), FORECAST.ravel())
    with pytest.raises(ValueError, match=r"evaluate: expected at least one window.*\(0, 2, 1\)"):
        mae(np.zeros((0, 2, 1)), np.zeros((0, 2, 1)))


@pytest.mark.parametrize("function", [mae, mse, rmse, mape, smape])
def test_nans_are_counted_and_named_by_metric(function):
    forecast = FORECAST.copy()
    forecast[0, 0, 0] = forecast[1, 1, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"evaluate: expected finite forecast values, got 2 NaN value\(s\) among 4"
    ):
        function(ACTUAL, forecast)


def test_nans_and_infinities_in_actual_are_errors_too():
    actual = ACTUAL.copy()
    actual[0, 0, 0] = np.nan
    actual[1, 0, 0] = np.inf
    with pytest.raises(
        ValueError, match=r"evaluate: expected finite actual values, got 1 NaN and 1 infinite"
    ):
        mase(actual, FORECAST, 1.0)
    with pytest.raises(ValueError, match=r"evaluate: expected finite actual values, got 1 NaN"):
        evaluate(actual, FORECAST)


def test_mase_scale_errors():
    with pytest.raises(
        ValueError,
        match=r"evaluate: expected a scale broadcastable to \(windows, 1, targets\) = \(2, 1, 1\).*"
        r"got shape \(3,\)",
    ):
        mase(ACTUAL, FORECAST, np.ones(3))
    # A scale per step is not a MASE scale.
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 1\)"):
        mase(ACTUAL, FORECAST, np.ones((1, 2, 1)))
    with pytest.raises(ValueError, match=r"evaluate: expected a scale > 0, got 1 value\(s\) <= 0"):
        mase(ACTUAL, FORECAST, np.array([1.0, 0.0]).reshape(2, 1, 1))
    with pytest.raises(ValueError, match=r"evaluate: expected finite scale values, got 1 NaN"):
        evaluate(ACTUAL, FORECAST, mase_scale=np.nan)


def test_seasonal_naive_scale_errors():
    with pytest.raises(
        ValueError,
        match=r"expected at least season \+ 1 = 8 training rows in series 1, got 5",
    ):
        seasonal_naive_scale([np.arange(10.0), np.arange(5.0)], season=7)
    with pytest.raises(ValueError, match=r"at least season \+ 1 = 2 training rows in the series"):
        seasonal_naive_scale(np.array([1.0]))
    with pytest.raises(ValueError, match=r"expected season as an int >= 1, got 0"):
        seasonal_naive_scale(np.arange(5.0), season=0)
    with pytest.raises(ValueError, match=r"got 0 in series 0 for target\(s\) \[1\]"):
        seasonal_naive_scale([np.array([[1.0, 2.0], [3.0, 2.0]])])
    with pytest.raises(ValueError, match=r"exactly periodic with season 2"):
        seasonal_naive_scale(np.array([1.0, 5.0, 1.0, 5.0]), season=2)
    with pytest.raises(ValueError, match=r"\(series 0\): expected finite training values, got 1"):
        seasonal_naive_scale([np.array([1.0, np.nan, 3.0])])
    with pytest.raises(ValueError, match=r"expected every series with one number of targets"):
        seasonal_naive_scale([np.ones((3, 2)).cumsum(axis=0), np.ones((3, 1)).cumsum(axis=0)])
    with pytest.raises(ValueError, match=r"expected at least one series"):
        seasonal_naive_scale([])


def test_bad_axes_are_rejected():
    with pytest.raises(ValueError, match=r"evaluate: expected axes in -3..2 of .*got 3"):
        mae(ACTUAL, FORECAST, axis=3)
    with pytest.raises(ValueError, match=r"evaluate: expected each axis once, got \(0, -3\)"):
        smape(ACTUAL, FORECAST, axis=(0, -3))
    with pytest.raises(ValueError, match=r"evaluate: expected axis as int, tuple of ints or None"):
        mse(ACTUAL, FORECAST, axis="horizon")  # type: ignore[arg-type]
