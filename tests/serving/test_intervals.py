"""Forecast intervals through the logged model: the calibration ships as an artifact, `levels`
is an inference parameter with a default, the bounds are the scaled forecast plus the conformal
offsets in original units, and they never cross."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate
from tests.three_series import SERIES, SPEC, save_untrained_forecaster, series_frame

TARGET = SPEC.targets[0]
DEFAULT_COLUMNS = [
    TARGET,
    f"{TARGET}_lo_90",
    f"{TARGET}_lo_80",
    f"{TARGET}_hi_80",
    f"{TARGET}_hi_90",
]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three-series forecaster with a pooled calibration of skewed residuals."""
    rng = np.random.default_rng(0)
    residuals = rng.gamma(2.0, 0.5, size=(400, SPEC.horizon, 1)) - 0.5
    folder = tmp_path_factory.mktemp("intervals")
    return save_untrained_forecaster(folder / "model", series_frame(60, 0), calibrate(residuals))


def history() -> pd.DataFrame:
    return to_model_input(series_frame(60, 1), SPEC.features, last_rows=SPEC.input_width)


def test_default_levels_give_nixtla_columns_in_original_units(calibrated: Path) -> None:
    model = mlflow.pyfunc.load_model(str(calibrated))
    forecast = model.predict(history())
    value_columns = [c for c in forecast.columns if c not in ("series_id", "timestamp", "step")]
    assert value_columns == DEFAULT_COLUMNS
    # Each bound is the point forecast plus the conformal offset times the series' scale (a
    # standard scaler per series: original = scaled x sd + mean).
    forecaster = model.unwrap_python_model()
    offsets = forecaster.calibration.quantile_offsets([0.05, 0.1, 0.9, 0.95], np.array(["s"]))
    for series_id, rows in forecast.groupby("series_id"):
        scale = forecaster.scaler.scalers[series_id].scale_[SPEC.features.index(TARGET)]
        for column, offset in zip(DEFAULT_COLUMNS[1:], offsets[:, 0, :, 0], strict=True):
            expected = rows[TARGET].to_numpy() + offset * scale
            np.testing.assert_allclose(rows[column].to_numpy(), expected, rtol=1e-6)
    signature = model.metadata.signature
    assert [c.name for c in signature.outputs.inputs][3:] == DEFAULT_COLUMNS
    levels, recalibrate = signature.params.params
    assert (levels.name, list(levels.default), levels.shape) == ("levels", [80.0, 90.0], (-1,))
    assert (recalibrate.name, recalibrate.dtype.name, recalibrate.default) == (
        "recalibrate",
        "long",
        0,
    )


def test_the_levels_parameter_picks_the_bands(calibrated: Path) -> None:
    model = mlflow.pyfunc.load_model(str(calibrated))
    narrow = model.predict(history(), params={"levels": [50, 97.5]})
    assert list(narrow.columns[3:]) == [
        TARGET,
        f"{TARGET}_lo_97.5",
        f"{TARGET}_lo_50",
        f"{TARGET}_hi_50",
        f"{TARGET}_hi_97.5",
    ]
    point_only = model.predict(history(), params={"levels": []})
    assert list(point_only.columns[3:]) == [TARGET]
    default = model.predict(history())
    pd.testing.assert_series_equal(point_only[TARGET], default[TARGET])


def test_bands_never_cross_on_random_weights_and_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    calibration = calibrate(rng.standard_cauchy(size=(300, SPEC.horizon, 1)))
    path = save_untrained_forecaster(tmp_path / "model", series_frame(60, 3), calibration)
    model = mlflow.pyfunc.load_model(str(path))
    frame = series_frame(60, 4)
    frame[["level", "temperature"]] = rng.normal(0, 1000, size=(len(frame), 2))
    levels = list(range(5, 100, 5))
    forecast = model.predict(
        to_model_input(frame, SPEC.features, last_rows=SPEC.input_width), {"levels": levels}
    )
    ordered = [f"{TARGET}_lo_{level}" for level in reversed(levels)]
    ordered += [f"{TARGET}_hi_{level}" for level in levels]
    values = forecast[ordered].to_numpy()
    assert len(values) == len(SERIES) * SPEC.horizon
    assert (np.diff(values, axis=1) >= 0).all()


@pytest.mark.parametrize("level", [0, 100, -5])
def test_a_level_outside_0_100_is_one_clear_error(calibrated: Path, level: float) -> None:
    model = mlflow.pyfunc.load_model(str(calibrated))
    with pytest.raises(
        DataValidationError, match=rf"levels: expected numbers in \(0, 100\), got {level}"
    ):
        model.predict(history(), params={"levels": [80, level]})


def test_a_level_that_is_not_a_number_is_refused_by_the_signature(calibrated: Path) -> None:
    model = mlflow.pyfunc.load_model(str(calibrated))
    with pytest.raises(MlflowException, match="levels"):
        model.predict(history(), params={"levels": ["high"]})


def test_a_level_beyond_the_calibration_names_the_residual_count(tmp_path: Path) -> None:
    calibration = calibrate(np.random.default_rng(6).normal(size=(30, SPEC.horizon, 1)))
    path = save_untrained_forecaster(tmp_path / "model", series_frame(60, 0), calibration)
    model = mlflow.pyfunc.load_model(str(path))
    with pytest.raises(
        DataValidationError, match=r"quantile 0.005 needs more .*\(30 windows of validation"
    ):
        model.predict(history(), params={"levels": [99]})


def test_a_model_without_calibration_forecasts_points_and_refuses_levels(tmp_path: Path) -> None:
    path = save_untrained_forecaster(tmp_path / "model", series_frame(60, 0))
    model = mlflow.pyfunc.load_model(str(path))
    assert list(model.predict(history()).columns[3:]) == [TARGET]
    assert model.metadata.signature.params is None
    with pytest.raises(DataValidationError, match="carries no calibration"):
        model.unwrap_python_model().predict(None, history(), {"levels": [80]})
