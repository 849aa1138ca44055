"""`intervals.method: cqr`: a model trained with a quantile head, its bands conformalised on
validation (CQR), scored on test and forecast by the logged model, all equal to hand
computations; bad combinations refused before any work."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pytest

from pipelines.config.options import check_models_to_build
from pipelines.data.prepare import PrepareResult
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate_quantile_head
from pipelines.serving.pyfunc import save_forecast_model
from pipelines.settings import ConfigError
from pipelines.training import train
from pipelines.training.evaluation import predict_part, target_windows
from tests.training.test_train import prepared, tiny_config  # noqa: F401

HEAD = (0.05, 0.1, 0.5, 0.9, 0.95)
CQR = {"intervals.method": "cqr", "learning_rate": "0.01"}


@pytest.fixture(scope="module")
def trained(prepared: PrepareResult) -> train.TrainResult:  # noqa: F811
    return train.train_model(tiny_config(**CQR), prepared)


@pytest.fixture(scope="module")
def model(
    trained: train.TrainResult, tmp_path_factory: pytest.TempPathFactory
) -> mlflow.pyfunc.PyFuncModel:
    """The trained model saved as the pyfunc a run logs, and loaded back."""
    prepared_data = trained.prepared
    path = tmp_path_factory.mktemp("cqr") / "model"
    save_forecast_model(
        path,
        trained.model,
        prepared_data.scaler,
        prepared_data.spec,
        frequency="D",
        model_name="dense",
        input_example=prepared_data.frame,
        calibration=trained.calibration,
    )
    return mlflow.pyfunc.load_model(str(path))


def test_the_head_is_trained_for_the_levels_bounds_and_the_median(
    trained: train.TrainResult,
) -> None:
    assert trained.calibration is not None
    assert trained.calibration.head_quantiles == HEAD
    assert trained.history["loss"][0] > trained.history["loss"][-1]  # the pinball loss fell
    # The point forecast scored is the head's median.
    prepared_data = trained.prepared
    windowed = train.windowed_data(prepared_data)
    outputs = predict_part(trained.model, windowed, "test", 64)
    assert outputs.shape[2] == len(HEAD) and (np.diff(outputs, axis=2) >= 0).all()
    actual = target_windows(prepared_data, windowed, "test")
    median = prepared_data.scaler.inverse_transform(
        outputs[:, :, 2], actual.series_ids, prepared_data.spec.targets
    )
    mae = np.abs(actual.original - median).mean()
    assert trained.evaluations["test"].overall_original["mae"] == pytest.approx(mae)


def test_test_coverage_is_that_of_the_cqr_bounds_by_hand(trained: train.TrainResult) -> None:
    prepared_data = trained.prepared
    windowed = train.windowed_data(prepared_data)
    head = {
        part: predict_part(trained.model, windowed, part, 64) for part in ("validation", "test")
    }
    actual = {part: target_windows(prepared_data, windowed, part) for part in head}
    # CQR on validation: E = max(Q_lo - y, y - Q_hi) per step, its ceil((n + 1) L)-th
    # smallest C_L; the test band is [Q_lo - C_L, Q_hi + C_L], kept around the median, and the
    # bounds of 80 and 90 sorted together (an 80% bound outside the 90% one swaps with it).
    validation, test = head["validation"], head["test"]
    count, median = len(validation), test[:, :, 2]

    def band(low: int, high: int, level: float) -> tuple[np.ndarray, np.ndarray]:
        truth = actual["validation"].scaled
        scores = np.maximum(validation[:, :, low] - truth, truth - validation[:, :, high])
        correction = np.sort(scores, axis=0)[int(np.ceil((count + 1) * level)) - 1]
        return (
            np.minimum(test[:, :, low] - correction, median),
            np.maximum(test[:, :, high] + correction, median),
        )

    (lower_80, upper_80), (lower_90, upper_90) = band(1, 3, 0.8), band(0, 4, 0.9)
    lower, upper = np.maximum(lower_80, lower_90), np.minimum(upper_80, upper_90)
    lower, upper = (
        prepared_data.scaler.inverse_transform(
            bound, actual["test"].series_ids, prepared_data.spec.targets
        )
        for bound in (lower, upper)
    )
    inside = (lower <= actual["test"].original) & (actual["test"].original <= upper)
    evaluation = trained.interval_evaluations["test"]
    assert evaluation.coverage["80"] == pytest.approx(inside.mean())
    assert evaluation.width["80"] == pytest.approx((upper - lower).mean())
    # On validation, CQR covers at least its level by construction.
    assert trained.interval_evaluations["validation"].coverage["80"] >= 0.8


def test_the_logged_model_forecasts_the_cqr_bands(
    trained: train.TrainResult, model: mlflow.pyfunc.PyFuncModel
) -> None:
    prepared_data = trained.prepared
    spec = prepared_data.spec
    history = to_model_input(prepared_data.frame, spec.features)
    forecast = model.predict(history, params={"levels": [80, 95]})
    # By hand: the head on the last window, bounds = its quantiles + the CQR offsets.
    scaled = prepared_data.scaler.transform(prepared_data.frame)[-spec.input_width :]
    head = trained.model.predict(scaled[np.newaxis].astype("float32"), verbose=0)
    ids = np.array([str(prepared_data.frame["series_id"].iloc[-1])])
    target = spec.targets[0]
    for level, (low, high) in ((80, (0.1, 0.9)), (95, (0.025, 0.975))):
        bounds = trained.calibration.bounds([low, high], head[:, :, 2], ids, head)
        lower, upper = (
            prepared_data.scaler.inverse_transform(bound, ids, spec.targets)[0, :, 0]
            for bound in bounds
        )
        np.testing.assert_allclose(forecast[f"{target}_lo_{level}"], lower, rtol=1e-5)
        np.testing.assert_allclose(forecast[f"{target}_hi_{level}"], upper, rtol=1e-5)
    columns = [f"{target}_lo_95", f"{target}_lo_80", target, f"{target}_hi_80", f"{target}_hi_95"]
    assert (np.diff(forecast[columns].to_numpy(), axis=1) >= 0).all()


def test_the_logged_model_recalibrates_its_head_on_the_history_by_hand(
    trained: train.TrainResult, model: mlflow.pyfunc.PyFuncModel
) -> None:
    prepared_data = trained.prepared
    spec = prepared_data.spec
    windows, width, horizon = 40, spec.input_width, spec.horizon
    frame = prepared_data.frame.iloc[-(width + windows + horizon - 1) :]
    forecast = model.predict(
        to_model_input(frame, spec.features), params={"levels": [80], "recalibrate": windows}
    )
    # Step h is calibrated on the last `windows` windows whose step-h actual is in the frame.
    scaled = prepared_data.scaler.transform(frame).astype("float32")
    actual = prepared_data.scaler.transform(frame, spec.targets)
    starts = np.arange(windows + horizon)
    inputs = np.stack([scaled[s : s + width] for s in starts])
    head = trained.model.predict(inputs, verbose=0)  # the last start is the forecast
    known = np.zeros((windows, horizon, 1))
    chosen = np.zeros((windows, horizon, len(HEAD), 1))
    for step in range(1, horizon + 1):
        first = windows + horizon - 1 - step - windows + 1
        for index, start in enumerate(range(first, first + windows)):
            known[index, step - 1] = actual[start + width + step - 1]
            chosen[index, step - 1] = head[start, step - 1]
    ids = np.array([str(frame["series_id"].iloc[-1])])
    recalibrated = calibrate_quantile_head(known, chosen, HEAD, np.repeat(ids, windows))
    bounds = recalibrated.bounds([0.1, 0.9], head[-1:, :, 2], ids, head[-1:])
    lower, upper = (
        prepared_data.scaler.inverse_transform(b, ids, spec.targets)[0, :, 0] for b in bounds
    )
    target = spec.targets[0]
    np.testing.assert_allclose(forecast[f"{target}_lo_80"], lower, rtol=1e-5)
    np.testing.assert_allclose(forecast[f"{target}_hi_80"], upper, rtol=1e-5)


def test_the_rolling_update_recalibrates_the_head_on_the_windows_known_by_hand(
    prepared: PrepareResult,  # noqa: F811
) -> None:
    settings = {
        **CQR,
        "intervals.update": "rolling",
        "intervals.rolling_window": "20",
        "intervals.rolling_every": "1000",  # one recalibration: at the first test window
        "intervals.rolling_feedback": "0",
        "intervals.rolling_horizons": "0",  # the last 20 windows, not spread further back
    }
    trained = train.train_model(tiny_config(**settings), prepared)
    windowed = train.windowed_data(prepared)
    parts = ("validation", "test")
    head = {part: predict_part(trained.model, windowed, part, 64) for part in parts}
    actual = {part: target_windows(prepared, windowed, part) for part in parts}
    # At the first test window (start s), step h rests on the last 20 validation windows whose
    # step-h actual is known (start + h <= s).
    horizon = head["test"].shape[1]
    known = np.zeros((20, horizon, 1))
    chosen = np.zeros((20, horizon, len(HEAD), 1))
    starts, origin = windowed.starts["validation"], windowed.starts["test"][0]
    for step in range(1, horizon + 1):
        last = int(np.flatnonzero(starts + step <= origin)[-1]) + 1
        known[:, step - 1] = actual["validation"].scaled[last - 20 : last, step - 1]
        chosen[:, step - 1] = head["validation"][last - 20 : last, step - 1]
    by_hand = calibrate_quantile_head(known, chosen, HEAD)
    ids = actual["test"].series_ids
    lower, upper = by_hand.bounds([0.1, 0.9], head["test"][:, :, 2], ids, head["test"])
    lower_90, upper_90 = by_hand.bounds([0.05, 0.95], head["test"][:, :, 2], ids, head["test"])
    lower, upper = np.maximum(lower, lower_90), np.minimum(upper, upper_90)
    lower, upper = (
        prepared.scaler.inverse_transform(bound, ids, prepared.spec.targets)
        for bound in (lower, upper)
    )
    inside = (lower <= actual["test"].original) & (actual["test"].original <= upper)
    scores = trained.interval_evaluations
    assert scores["test"].coverage["80"] == pytest.approx(inside.mean())
    assert scores["test"].width["80"] == pytest.approx((upper - lower).mean())
    assert "test_static" in scores


@pytest.mark.parametrize(
    ("overrides", "entry_point", "message"),
    [
        ({"model": "gru-ar"}, "train", r"intervals\.method.*'gru-ar' is autoregressive"),
        ({"model.models": "last,repeat"}, "compare", r"intervals\.method.*'last' is baseline"),
    ],
)
def test_cqr_without_a_model_to_take_a_head_is_refused_before_any_work(
    overrides: dict[str, str], entry_point: str, message: str
) -> None:
    config = tiny_config(**{"intervals.method": "cqr", **overrides})
    with pytest.raises(ConfigError, match=message):
        check_models_to_build(config, entry_point)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"intervals.update": "rolling"},
            r"intervals\.rolling_feedback.*0 with method cqr and the rolling update",
        ),
        ({"intervals.calibration": "none"}, r"intervals\.method.*levels and a calibration"),
        ({"intervals.method": "quantile"}, r"intervals\.method"),
    ],
)
def test_cqr_combinations_that_cannot_work_are_refused(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(**{"intervals.method": "cqr", **overrides})
