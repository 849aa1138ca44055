"""The logged forecast model: numbers, shape, many series in one call, errors, fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from models.zoo import ModelShape, build_model
from pipelines.data.prepare import run
from pipelines.data.settings import DataConfig
from pipelines.data.split import SplitSpec, assign_parts
from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.forecaster import ForecastModel
from pipelines.runtime.history import to_model_input
from pipelines.runtime.scaling import FittedScaler, fit_scaler
from pipelines.runtime.windows import WindowSpec
from pipelines.serving.pyfunc import log_forecast_model, save_forecast_model

INPUT_WIDTH = 14
HORIZON = 7


@dataclass
class SavedModel:
    """A saved pyfunc model with the pieces it was built from."""

    path: Path
    keras_model: Any
    scaler: FittedScaler
    spec: WindowSpec
    frame: pd.DataFrame


def save_seattle_model(path: Path, name: str, **hparams: Any) -> SavedModel:
    """An untrained zoo model `name` (units 4) on the embedded Seattle data, saved as a pyfunc
    model at `path`."""
    prepared = run(DataConfig(dataset="seattle-weather", input_width=INPUT_WIDTH, horizon=HORIZON))
    spec = prepared.spec
    shape = ModelShape(
        input_width=spec.input_width,
        horizon=spec.horizon,
        n_features=len(spec.features),
        target_indices=tuple(spec.features.index(target) for target in spec.targets),
    )
    keras_model = build_model(name, shape, units=4, **hparams)
    save_forecast_model(
        path,
        keras_model,
        prepared.scaler,
        spec,
        frequency=prepared.summary["frequency"],
        model_name=name,
        input_example=prepared.frame,
    )
    return SavedModel(path, keras_model, prepared.scaler, spec, prepared.frame)


@pytest.fixture(scope="module")
def seattle(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """An untrained LSTM (units 4) on the embedded Seattle data, saved as a pyfunc model."""
    return save_seattle_model(tmp_path_factory.mktemp("seattle") / "model", "lstm")


@pytest.fixture(scope="module")
def two_series(seattle: SavedModel, tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """The same Keras model with a per-series scaler over two series of very different levels."""
    base = seattle.frame[["series_id", "segment", "timestamp", *seattle.spec.features]]
    base = base.iloc[:400].reset_index(drop=True)
    high = base.copy()
    high[list(seattle.spec.features)] = high[list(seattle.spec.features)] * 10 + 100
    frame = pd.concat(
        [base.assign(series_id="low", segment=0), high.assign(series_id="high", segment=1)],
        ignore_index=True,
    ).sort_values(["series_id", "timestamp"], ignore_index=True)
    parts = assign_parts(frame, SplitSpec())
    scaler = fit_scaler(frame, parts, seattle.spec.features, per_series=True)
    path = tmp_path_factory.mktemp("two") / "model"
    save_forecast_model(
        path,
        seattle.keras_model,
        scaler,
        seattle.spec,
        frequency="D",
        model_name="lstm",
        input_example=frame,
    )
    return SavedModel(path, seattle.keras_model, scaler, seattle.spec, frame)


@pytest.fixture(scope="module")
def loaded(seattle: SavedModel) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(str(seattle.path))


def json_from_fresh_process(script: str, folder: Path) -> Any:
    """Runs `script` in a new interpreter in `folder`, without PYTHONPATH (so `pipelines` and
    `models` can only come from a loaded model's own code), and parses its last printed line."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def expected_forecast(saved: SavedModel, history: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per series, by hand: scale the last window, run Keras, undo the target's scaling."""
    spec = saved.spec
    result = {}
    for series_id, rows in history.groupby("series_id"):
        window = rows.sort_values("timestamp").iloc[-spec.input_width :]
        scaler = saved.scaler.scalers[str(series_id)]
        values = window[list(spec.features)].to_numpy("float64")
        scaled = (values - scaler.mean_) / scaler.scale_
        output = saved.keras_model.predict(scaled[np.newaxis].astype("float32"), verbose=0)[0]
        target_index = [spec.features.index(target) for target in spec.targets]
        result[str(series_id)] = output * scaler.scale_[target_index] + scaler.mean_[target_index]
    return result


def test_forecast_equals_keras_output_in_original_units(
    seattle: SavedModel, loaded: mlflow.pyfunc.PyFuncModel
) -> None:
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=30)
    forecast = loaded.predict(history)
    expected = expected_forecast(seattle, seattle.frame)["seattle-weather"]
    np.testing.assert_allclose(forecast[["temp_max"]].to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_forecast_shape_columns_and_timestamps(
    seattle: SavedModel, loaded: mlflow.pyfunc.PyFuncModel
) -> None:
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=INPUT_WIDTH)
    forecast = loaded.predict(history.assign(comment="ignored"))
    assert list(forecast.columns) == ["series_id", "timestamp", "step", "temp_max"]
    assert forecast["step"].tolist() == list(range(1, HORIZON + 1))
    last = seattle.frame["timestamp"].max()
    expected_times = pd.date_range(last + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    assert pd.DatetimeIndex(forecast["timestamp"]).equals(expected_times)
    assert str(forecast["timestamp"].dt.tz) == "UTC"


def test_series_id_is_optional_and_datetimes_work_when_called_directly(
    seattle: SavedModel, loaded: mlflow.pyfunc.PyFuncModel
) -> None:
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=INPUT_WIDTH)
    with_ids = loaded.predict(history)
    without_ids = loaded.predict(history.drop(columns="series_id"))
    pd.testing.assert_frame_equal(with_ids, without_ids)
    model = loaded.unwrap_python_model()
    direct = model.predict(None, seattle.frame.iloc[-INPUT_WIDTH:])
    pd.testing.assert_frame_equal(with_ids, direct)


def test_many_series_are_forecast_in_one_keras_call(
    two_series: SavedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = mlflow.pyfunc.load_model(str(two_series.path))
    keras_model = loaded.unwrap_python_model().keras_model
    calls = []
    original = keras_model.predict_on_batch

    def counting_predict(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return original(batch)

    monkeypatch.setattr(keras_model, "predict_on_batch", counting_predict)
    history = to_model_input(two_series.frame, two_series.spec.features, last_rows=20)
    forecast = loaded.predict(history.sample(frac=1.0, random_state=0))  # order must not matter

    assert calls == [(2, INPUT_WIDTH, len(two_series.spec.features))]
    assert forecast["series_id"].tolist() == ["high"] * HORIZON + ["low"] * HORIZON
    expected = expected_forecast(two_series, two_series.frame)
    for series_id, rows in forecast.groupby("series_id"):
        np.testing.assert_allclose(
            rows[["temp_max"]].to_numpy(), expected[series_id], rtol=1e-5, atol=1e-5
        )
    high, low = (
        forecast.loc[forecast["series_id"] == s, "temp_max"].mean() for s in ("high", "low")
    )
    assert high > low + 50  # each series is put back in its own units


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda h: h.drop(columns="temp_min"), ["'temp_min'"]),
        (lambda h: h.iloc[-5:], ["'seattle-weather'", "5", "14"]),
        (lambda h: h.drop(index=h.index[-3]), ["'seattle-weather'", "gap", "2015-12-29"]),
        (lambda h: h.assign(series_id="atlantis"), ["'atlantis'", "unknown"]),
        (lambda h: h.assign(timestamp=["someday", *h["timestamp"].iloc[1:]]), ["'someday'"]),
        (lambda h: h.assign(wind=[*h["wind"].iloc[:-1], np.nan]), ["'wind'", "2015-12-31"]),
        (lambda h: pd.concat([h, h.iloc[-1:]]), ["duplicate", "'seattle-weather'"]),
    ],
    ids=["missing-column", "too-short", "gap", "unknown-series", "bad-time", "nan", "duplicate"],
)
def test_bad_history_is_rejected_with_a_clear_message(
    seattle: SavedModel, loaded: mlflow.pyfunc.PyFuncModel, change: Any, named: list[str]
) -> None:
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=20)
    with pytest.raises(DataValidationError) as caught:
        loaded.predict(change(history))
    for text in named:
        assert text in str(caught.value)


def test_misspelled_column_gets_a_hint_when_called_directly(seattle: SavedModel) -> None:
    model = mlflow.pyfunc.load_model(str(seattle.path)).unwrap_python_model()
    assert isinstance(model, ForecastModel)
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=INPUT_WIDTH)
    with pytest.raises(DataValidationError, match="did you mean 'temp_mn'"):
        model.predict(None, history.rename(columns={"temp_min": "temp_mn"}))


def test_fresh_process_loads_the_model_from_its_own_code(
    seattle: SavedModel, loaded: mlflow.pyfunc.PyFuncModel, tmp_path: Path
) -> None:
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=INPUT_WIDTH)
    history.to_json(tmp_path / "history.json", orient="split")
    script = f"""
import json, sys
import mlflow.pyfunc, pandas as pd
assert "pipelines" not in sys.modules and "models" not in sys.modules
model = mlflow.pyfunc.load_model({str(seattle.path)!r})
forecast = model.predict(pd.read_json("history.json", orient="split", dtype=False))
forecast["timestamp"] = forecast["timestamp"].map(pd.Timestamp.isoformat)
print(json.dumps({{"forecast": forecast.to_dict(orient="list"),
                  "pipelines": sys.modules["pipelines"].__file__}}))
"""
    answer = json_from_fresh_process(script, tmp_path)
    assert answer["pipelines"].startswith(str(seattle.path / "code"))
    fresh = pd.DataFrame(answer["forecast"])
    expected = loaded.predict(history)
    assert fresh["series_id"].tolist() == expected["series_id"].tolist()
    assert fresh["step"].tolist() == expected["step"].tolist()
    assert fresh["timestamp"].tolist() == [time.isoformat() for time in expected["timestamp"]]
    np.testing.assert_allclose(fresh["temp_max"], expected["temp_max"], rtol=1e-6)


@pytest.mark.slow
def test_clockwork_and_depth_gated_models_load_in_a_fresh_process(tmp_path: Path) -> None:
    """Both new layers, in the segment, channel-alone, parallel-decoding setting, load from the
    logged model's own code with no custom objects and forecast what Keras computes here."""
    reading = {"channel_independent": True, "segment_length": 7, "decoder": "parallel"}
    saved = {
        "clockwork": save_seattle_model(
            tmp_path / "clockwork", "clockwork", periods=(1, 2), layers=2, **reading
        ),
        "depth-gated": save_seattle_model(
            tmp_path / "depth-gated", "depth-gated", layers=3, normalization="revin", **reading
        ),
    }
    frame = saved["clockwork"].frame
    history = to_model_input(frame, saved["clockwork"].spec.features, last_rows=INPUT_WIDTH)
    history.to_json(tmp_path / "history.json", orient="split")
    paths = {name: str(model.path) for name, model in saved.items()}
    script = f"""
import json, sys
import mlflow.pyfunc, pandas as pd
assert "pipelines" not in sys.modules and "models" not in sys.modules
history = pd.read_json("history.json", orient="split", dtype=False)
forecasts = {{
    name: mlflow.pyfunc.load_model(path).predict(history)["temp_max"].tolist()
    for name, path in {paths!r}.items()
}}
print(json.dumps(forecasts))
"""
    forecasts = json_from_fresh_process(script, tmp_path)
    for name, model in saved.items():
        expected = expected_forecast(model, frame)["seattle-weather"][:, 0]
        np.testing.assert_allclose(forecasts[name], expected, rtol=1e-5, atol=1e-5)


def test_log_forecast_model_registers_a_loadable_version(
    seattle: SavedModel,
    loaded: mlflow.pyfunc.PyFuncModel,
    tmp_path: Path,
    tracking_store: mlflow.MlflowClient,
) -> None:
    experiment_id = tracking_store.create_experiment(
        "pyfunc-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run():
        info = log_forecast_model(
            seattle.keras_model,
            seattle.scaler,
            seattle.spec,
            frequency="D",
            model_name="lstm",
            input_example=seattle.frame,
            registered_model_name="seattle-lstm",
        )
    assert info.registered_model_version == 1
    history = to_model_input(seattle.frame, seattle.spec.features, last_rows=INPUT_WIDTH)
    registered = mlflow.pyfunc.load_model("models:/seattle-lstm/1")
    pd.testing.assert_frame_equal(registered.predict(history), loaded.predict(history))


@pytest.mark.parametrize("old_module", ["pipelines.pyfunc", "pipelines.serving.pyfunc"])
def test_a_model_pickled_under_an_old_module_path_loads_as_the_forecast_model(
    monkeypatch: pytest.MonkeyPatch, old_module: str
) -> None:
    """Models logged before the runtime package pickled `ForecastModel` under these names."""
    import pickle

    monkeypatch.setattr(ForecastModel, "__module__", old_module)
    pickled = pickle.dumps(ForecastModel())
    monkeypatch.undo()
    assert old_module.encode() in pickled and b"pipelines.runtime" not in pickled
    assert type(pickle.loads(pickled)) is ForecastModel
