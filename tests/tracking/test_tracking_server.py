"""`mlflow run . -e compare` on the Weather data against an MLflow tracking server on loopback.

The server is a real `mlflow server` subprocess on a free 127.0.0.1 port with its own SQLite
store and artifact folder under tmp_path. It runs under `timeout`, so it stops by itself even
if this test process dies, and the fixture kills its process group when the module ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines.paths import REPOSITORY_ROOT
from tests.loopback import mlflow_server

SERVER_LIFETIME_SECONDS = 600
SERVER_START_SECONDS = 90
COMPARE_SECONDS = 420
MODELS = ("last", "linear", "peephole")
"""A baseline, a Keras model and our own layer: every kind of model the server stores."""
EXPERIMENT = "weather-compare"
REGISTERED = "weather-compare-model"


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an `mlflow server` on 127.0.0.1 (store and artifacts in a temp folder)."""
    folder = tmp_path_factory.mktemp("tracking-server")
    with mlflow_server(
        folder,
        f"--backend-store-uri=sqlite:///{folder}/server.db",
        f"--artifacts-destination={folder}/artifacts",
        lifetime_s=SERVER_LIFETIME_SECONDS,
        start_s=SERVER_START_SECONDS,
    ) as url:
        yield url


def test_compare_on_weather_logs_a_parent_and_one_child_per_model(
    tracking_server: str, shared_datasets: Path, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_server,
        # `mlflow run --env-manager local` runs `python -m ...` from PATH: this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        environment.pop(name, None)
    # Every 48th window (a few hundred per split): the test is about what is logged, and all
    # 52,000 steps of Weather still go through the prepare step.
    config = tmp_path / "sparse-windows.yaml"
    config.write_text("data:\n  stride: 48\n")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(REPOSITORY_ROOT),
        "-e",
        "compare",
        "--env-manager=local",
        f"--experiment-name={EXPERIMENT}",
        "-P",
        f"config={config}",
        "-P",
        "dataset=weather-ltsf",
        "-P",
        f"source={shared_datasets / 'weather.csv.gz'}",
        "-P",
        f"models={','.join(MODELS)}",
        "-P",
        "epochs=1",
        "-P",
        "input_width=24",
        "-P",
        "horizon=24",
        "-P",
        "batch_size=256",
        "-P",
        f"registered_model_name={REGISTERED}",
    ]
    finished = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMPARE_SECONDS,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]

    client = MlflowClient(tracking_uri=tracking_server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.mlflow.parentRunId IS NULL"
    )
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert parent.info.status == "FINISHED"
    assert parent.data.params["data.dataset"] == "weather-ltsf"
    assert parent.data.params["data.stride"] == "48"
    by_model = {child.data.tags["model_name"]: child for child in children}
    assert sorted(by_model) == sorted(MODELS)
    assert len(children) == len(MODELS)
    key_sets = {frozenset(child.data.metrics) for child in children}
    assert len(key_sets) == 1, "children differ in metric keys"
    (keys,) = key_sets
    assert {"val_mae", "test_mae", "test_skill_vs_last", "loss", "val_loss"} <= keys
    assert all(child.info.status == "FINISHED" for child in children)
    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison.md", "comparison.png"} <= artifacts

    best = min(children, key=lambda child: child.data.metrics["val_mae"])
    assert parent.data.tags["best_model"] == best.data.tags["model_name"]
    champion = client.get_model_version_by_alias(REGISTERED, "champion")
    assert champion.run_id == best.info.run_id
