"""`recalibrate`: the logged model recalibrates its intervals on the history it is sent, as the
rolling scheme scored on the test part does (`pipelines.training.calibration`)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate
from pipelines.training.calibration import rolling_calibration
from tests.three_series import SERIES, SPEC, save_untrained_forecaster, series_frame

TARGET = SPEC.targets[0]
WINDOWS = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> mlflow.pyfunc.PyFuncModel:
    residuals = np.random.default_rng(0).normal(size=(400, SPEC.horizon, 1))
    folder = tmp_path_factory.mktemp("recalibration")
    path = save_untrained_forecaster(folder / "model", series_frame(60, 0), calibrate(residuals))
    return mlflow.pyfunc.load_model(str(path))


def test_recalibration_equals_the_rolling_scheme_at_the_forecast_origin(model) -> None:
    frame = series_frame(45, 1)
    forecaster = model.unwrap_python_model()
    forecast = model.predict(
        to_model_input(frame, SPEC.features), params={"levels": [80], "recalibrate": WINDOWS}
    )
    width, horizon = SPEC.input_width, SPEC.horizon
    for series_id in SERIES:
        rows = frame.loc[frame["series_id"] == series_id].reset_index(drop=True)
        scaled = forecaster.scaler.transform(rows, SPEC.features)
        actual = forecaster.scaler.transform(rows, SPEC.targets)
        # Every window of the series, one at a time; the last is the forecast (start n - L).
        starts = np.arange(len(rows) - width + 1)
        predicted = np.stack(
            [
                forecaster.keras_model.predict(scaled[None, s : s + width], verbose=0)[0]
                for s in starts
            ]
        )
        residuals = np.zeros_like(predicted)
        for s in starts[:-1]:
            known = min(horizon, len(rows) - s - width)
            residuals[s, :known] = actual[s + width : s + width + known] - predicted[s, :known]
        rolling, groups = rolling_calibration(
            residuals,
            starts,
            np.array([series_id] * len(starts)),
            starts == starts[-1],
            window=WINDOWS,
            every=1,
        )
        low, high = rolling.quantile_offsets([0.1, 0.9], groups)[:, 0, :, 0]
        slope = forecaster.scaler.slopes(np.array([series_id]), SPEC.targets)[0, 0]
        mine = forecast.loc[forecast["series_id"] == series_id]
        np.testing.assert_allclose(mine[f"{TARGET}_lo_80"], mine[TARGET] + low / slope, rtol=1e-6)
        np.testing.assert_allclose(mine[f"{TARGET}_hi_80"], mine[TARGET] + high / slope, rtol=1e-6)
    # Recalibrated bands are not the logged calibration's.
    logged = model.predict(to_model_input(frame, SPEC.features), params={"levels": [80]})
    assert not np.allclose(logged[f"{TARGET}_lo_80"], forecast[f"{TARGET}_lo_80"])
    assert (forecast[f"{TARGET}_lo_80"] <= forecast[f"{TARGET}_hi_80"]).all()


def test_recalibrate_zero_is_the_logged_calibration(model) -> None:
    history = to_model_input(series_frame(45, 1), SPEC.features)
    pd.testing.assert_frame_equal(
        model.predict(history, params={"recalibrate": 0}), model.predict(history)
    )


@pytest.mark.parametrize("value", [-1, 2.5, "many", True])
def test_a_bad_recalibrate_value_is_one_clear_error(model, value) -> None:
    history = to_model_input(series_frame(45, 1), SPEC.features)
    with pytest.raises(DataValidationError, match=r"^recalibrate: expected a whole number"):
        model.unwrap_python_model().predict(None, history, params={"recalibrate": value})


def test_too_few_windows_for_a_level_or_too_short_a_history_is_refused(model) -> None:
    forecaster = model.unwrap_python_model()
    history = to_model_input(series_frame(45, 1), SPEC.features)
    with pytest.raises(
        DataValidationError, match=r"10 windows cannot hold level 90, which needs 19"
    ):
        forecaster.predict(None, history, params={"recalibrate": 10})
    short = to_model_input(series_frame(45, 1), SPEC.features, last_rows=29)
    with pytest.raises(
        DataValidationError,
        match=r"alpha.*recalibrate=20 reads the last 30 rows \(input_width \+ recalibrate \+ "
        r"horizon - 1\): history too short: 29 rows",
    ):
        forecaster.predict(None, short, params={"recalibrate": WINDOWS})
    # Paths that skip series list it and forecast the rest.
    mixed = pd.concat(
        [short.loc[short["series_id"] == "alpha"], history.loc[history["series_id"] != "alpha"]]
    )
    forecast, not_ready = forecaster.forecast_ready(mixed, {"recalibrate": WINDOWS})
    assert sorted(set(forecast["series_id"])) == ["beta", "gamma"]
    assert [(item.series_id, item.reason) for item in not_ready] == [("alpha", "too_short")]


def test_no_series_ready_to_recalibrate_keeps_the_interval_columns(model) -> None:
    short = to_model_input(series_frame(45, 1), SPEC.features, last_rows=29)
    forecast, not_ready = model.unwrap_python_model().forecast_ready(
        short, {"recalibrate": WINDOWS}
    )
    assert forecast.empty and len(not_ready) == len(SERIES)
    assert list(forecast.columns[3:]) == [
        TARGET,
        f"{TARGET}_lo_90",
        f"{TARGET}_lo_80",
        f"{TARGET}_hi_80",
        f"{TARGET}_hi_90",
    ]
