"""`mlflow models serve` on the registered champion: JSON history in, the forecast out.

One server (a subprocess on a free loopback port) serves every test of this module; it starts in
about 13 s on a 2-core machine (TensorFlow import and model load) and is stopped, with its whole
process group, when the module ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate
from tests.loopback import free_port, loopback_server
from tests.three_series import SPEC, register_untrained_champion, series_frame

MODEL_NAME = "forecaster"
MODEL_URI = f"models:/{MODEL_NAME}@champion"
STARTUP_DEADLINE_S = 90.0
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Server:
    """A running scoring server and what it serves."""

    url: str
    process: subprocess.Popen[bytes]
    model: mlflow.pyfunc.PyFuncModel
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The champion registered in a SQLite store under tmp, served on a free loopback port."""
    root = tmp_path_factory.mktemp("serve")
    tracking_uri = f"sqlite:///{root}/mlflow.db"
    frame = series_frame(days=60, seed=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(None)  # read the variable again
        experiment_id = mlflow.MlflowClient().create_experiment(
            "serve-test", artifact_location=(root / "artifacts").as_uri()
        )
        # A calibrated champion: it forecasts intervals and takes `levels` as a parameter.
        residuals = np.random.default_rng(0).normal(size=(200, SPEC.horizon, 1))
        register_untrained_champion(frame, MODEL_NAME, experiment_id, calibrate(residuals))
        model = mlflow.pyfunc.load_model(MODEL_URI)
    mlflow.set_tracking_uri(None)

    port = free_port()
    # `mlflow models serve` execs `uvicorn` by name, so the venv's bin must be on PATH.
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", MODEL_URI]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    started = time.monotonic()
    with loopback_server(command, root, environment, port, "/ping", STARTUP_DEADLINE_S) as process:
        print(f"scoring server ready in {time.monotonic() - started:.1f} s")
        yield Server(f"http://127.0.0.1:{port}", process, model, frame)


def post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """POSTs JSON to /invocations; returns the status and the decoded JSON answer."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def split_payload(history: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": json.loads(history.to_json(orient="split", index=False))}


def records_payload(history: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_records": json.loads(history.to_json(orient="records"))}


@pytest.mark.slow
@pytest.mark.parametrize("payload", [split_payload, records_payload], ids=["split", "records"])
def test_served_forecast_equals_pyfunc_predict(server: Server, payload: Any) -> None:
    history = to_model_input(server.frame, SPEC.features, last_rows=12)
    status, answer = post(server.url, payload(history))

    assert status == 200, answer
    served = pd.DataFrame(answer["predictions"])
    expected = server.model.predict(history)
    assert list(served.columns) == [
        *("series_id", "timestamp", "step", "level"),
        *("level_lo_90", "level_lo_80", "level_hi_80", "level_hi_90"),
    ]
    assert served["series_id"].tolist() == expected["series_id"].tolist()
    assert served["step"].tolist() == expected["step"].tolist() == [1, 2, 3] * 3
    served_times = pd.to_datetime(served["timestamp"], utc=True)
    assert served_times.tolist() == expected["timestamp"].tolist()
    assert served_times.iloc[0] == pd.Timestamp("2024-03-01", tz="UTC")  # day after history
    np.testing.assert_allclose(served[expected.columns[3:]], expected.iloc[:, 3:], atol=1e-6)
    # Each series is put back in its own units by the per-series scaler.
    means = served.groupby("series_id")["level"].mean()
    assert means["alpha"] < 10 < means["beta"] < 100 < means["gamma"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda h: h.drop(columns="temperature"), ["'temperature' not found"]),
        (lambda h: h.groupby("series_id").tail(3), ["history too short", "needs the last 8"]),
        (lambda h: h.assign(series_id="atlantis"), ["'atlantis'", "unknown"]),
    ],
    ids=["missing-column", "too-short", "unknown-series"],
)
def test_bad_history_gets_a_json_error_naming_the_problem(
    server: Server, change: Any, named: list[str]
) -> None:
    history = to_model_input(server.frame, SPEC.features, last_rows=12)
    status, answer = post(server.url, split_payload(change(history)))

    assert status == 400
    assert answer["error_code"] == "BAD_REQUEST"
    # MLflow's `message` is generic; the model's own DataValidationError is in `stack_trace`.
    assert "DataValidationError" in answer["stack_trace"]
    for text in named:
        assert text in answer["stack_trace"]


@pytest.mark.slow
def test_server_keeps_serving_after_an_error(server: Server) -> None:
    history = to_model_input(server.frame, SPEC.features, last_rows=SPEC.input_width)
    status, answer = post(server.url, {"dataframe_split": {"columns": ["x"], "data": [[1]]}})
    assert status == 400
    assert "'timestamp' not found" in answer["stack_trace"]
    status, answer = post(server.url, split_payload(history))
    assert status == 200
    assert len(answer["predictions"]) == 3 * SPEC.horizon
    assert server.process.poll() is None


@pytest.mark.slow
def test_levels_in_the_payload_pick_the_bands(server: Server) -> None:
    history = to_model_input(server.frame, SPEC.features, last_rows=SPEC.input_width)
    status, answer = post(server.url, {**split_payload(history), "params": {"levels": [95]}})
    assert status == 200, answer
    served = pd.DataFrame(answer["predictions"])
    expected = server.model.predict(history, params={"levels": [95]})
    assert list(served.columns[3:]) == ["level", "level_lo_95", "level_hi_95"]
    np.testing.assert_allclose(served[expected.columns[3:]], expected.iloc[:, 3:], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("levels", "named"),
    [([0], "levels: expected numbers in (0, 100), got 0"), ([-5], "got -5"), (["high"], "levels")],
)
def test_a_bad_level_is_an_http_400_naming_it(server: Server, levels: list, named: str) -> None:
    history = to_model_input(server.frame, SPEC.features, last_rows=SPEC.input_width)
    status, answer = post(server.url, {**split_payload(history), "params": {"levels": levels}})
    assert status == 400, answer
    assert named in answer.get("stack_trace", "") + answer["message"]
