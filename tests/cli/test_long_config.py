"""The model that leads the Weather table, inside the app: `mlflow run . -e compare` with
`configs/weather-ltsf-long.yaml` trains it (on a slice of Weather here), registers the best on
validation, and the registered model forecasts every channel from the last 720 steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.config.loading import benchmark_overrides, load_config
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.history import to_model_input

LONG_CONFIG = REPOSITORY_ROOT / "configs" / "weather-ltsf-long.yaml"
SLICE_ROWS = 2_000
"""Enough for the 720 + 96 rows of a window in every part of a 70/10/20 split."""
EXPERIMENT = "long-config"


def test_the_long_config_is_the_benchmark_preset() -> None:
    config = load_config(LONG_CONFIG)
    assert (config.data.input_width, config.data.horizon) == (720, 96)
    assert config.data.policy == "as_published" and len(config.data.targets) == 21
    assert config.model.name == "gru" and config.model.name in config.model.models
    assert config.model.hparams_for()["segment_length"] == 72
    sections = benchmark_overrides(LONG_CONFIG)
    assert sections["per_model"] == {"peephole": {"model.hparams.dropout": "0.2"}}
    assert "dense decoder" in sections["ablations"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_compare_with_the_long_config_registers_a_model_that_forecasts(
    shared_datasets: Path, tracking_store: MlflowClient, tmp_path: Path
) -> None:
    weather = pd.read_csv(shared_datasets / "weather.csv.gz", nrows=SLICE_ROWS)
    source = tmp_path / "weather-slice.csv"
    weather.to_csv(source, index=False)
    environment = {
        **os.environ,
        # `mlflow run --env-manager local` runs `python -m ...` from PATH: this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        environment.pop(name, None)
    command = [
        *(sys.executable, "-m", "mlflow", "run", str(REPOSITORY_ROOT), "-e", "compare"),
        "--env-manager=local",
        f"--experiment-name={EXPERIMENT}",
        *("-P", f"config={LONG_CONFIG}", "-P", "epochs=1", "-P", f"source={source}"),
        *("-P", f"experiment_name={EXPERIMENT}"),
    ]
    finished = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]

    experiment = tracking_store.get_experiment_by_name(EXPERIMENT)
    runs = tracking_store.search_runs([experiment.experiment_id])
    gru = next(run for run in runs if run.data.tags.get("model_name") == "gru")
    assert gru.info.status == "FINISHED"
    assert gru.data.params["data.input_width"] == "720"
    assert gru.data.params["model.hparams.decoder"] == "parallel"

    registered = "weather-ltsf-long-forecaster"
    model = mlflow.pyfunc.load_model(f"models:/{registered}@champion")
    channels = [column for column in weather.columns if column != "date"]
    history = weather.rename(columns={"date": "timestamp"}).tail(720)
    history["timestamp"] = pd.to_datetime(history["timestamp"], utc=True)
    # One series: the model names it itself when the input names none.
    forecast = model.predict(to_model_input(history, channels).drop(columns="series_id"))
    assert len(forecast) == 96
    assert set(channels) <= set(forecast.columns)
    assert forecast[channels].notna().all().all()
