"""The default job: prepare-run reuse, compare, champion, forecast, and the champion in a fresh
process; plus the prepared-data round trip and the MLproject contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import exit_codes
from pipelines.cli import main as main_job
from pipelines.cli import train as train_command
from pipelines.cli.forecast import DEFAULT_FORECAST_EXPERIMENT
from pipelines.data import prepare as prepare_module
from pipelines.data.prepared import read_outputs, write_outputs
from pipelines.data.settings import DataConfig
from pipelines.paths import REPOSITORY_ROOT
from pipelines.serving import partitions
from pipelines.tracking import lineage, registry

EXPERIMENT = "tiny-main"
REGISTERED = "tiny-main-model"
HORIZON = 7


def arguments(forecast_output: Path, *extra: str) -> list[str]:
    return [
        "--dataset=seattle-weather",
        "--input-width=14",
        f"--horizon={HORIZON}",
        "--models=last,dense",
        "--set=model.hparams.units=4",
        "--epochs=1",
        "--batch-size=64",
        f"--experiment-name={EXPERIMENT}",
        f"--registered-model-name={REGISTERED}",
        f"--forecast-output={forecast_output}",
        *extra,
    ]


@pytest.fixture
def tracking(tracking_store: MlflowClient, tmp_path: Path) -> MlflowClient:
    for name in (EXPERIMENT, DEFAULT_FORECAST_EXPERIMENT):
        tracking_store.create_experiment(name, artifact_location=(tmp_path / name).as_uri())
    return tracking_store


def main_runs(client: MlflowClient) -> list:
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    return client.search_runs(
        [experiment_id],
        filter_string=f"tags.{lineage.STEP_TAG} = '{main_job.MAIN_STEP}'",
        order_by=["attributes.start_time ASC"],
    )


def test_main_reuses_prepare_compares_registers_and_forecasts(
    tracking: MlflowClient, tmp_path: Path
) -> None:
    output = tmp_path / "forecasts"
    assert main_job.main(arguments(output)) == 0
    assert main_job.main(arguments(output, "--seed=7")) == 0

    first, second = main_runs(tracking)
    assert first.info.status == second.info.status == "FINISHED"
    # Same data settings: the second job reads the first job's prepare run.
    assert first.data.tags["prepare_reused"] == "false"
    assert second.data.tags["prepare_reused"] == "true"
    assert second.data.tags["prepare_run_id"] == first.data.tags["prepare_run_id"]
    prepare_run = tracking.get_run(first.data.tags["prepare_run_id"])
    assert prepare_run.data.tags["mlflow.parentRunId"] == first.info.run_id
    assert prepare_run.data.metrics["windows_train"] > 0

    # The comparison lives in the main run: one child per model, the best registered.
    children = tracking.search_runs(
        [first.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first.info.run_id}' and tags.model_name != ''",
    )
    assert sorted(child.data.tags["model_name"] for child in children) == ["dense", "last"]
    assert sorted(child.info.run_name for child in children) == ["dense", "last"]
    assert first.info.run_name == "compare seattle-weather"
    assert first.data.tags["best_model"] in {"dense", "last"}

    # The forecast run is in the `forecasts` experiment and points back at its main run.
    forecast_run = tracking.get_run(first.data.tags["forecast_run_id"])
    assert forecast_run.data.tags["mlflow.parentRunId"] == first.info.run_id
    assert forecast_run.data.metrics["rows"] == HORIZON
    assert forecast_run.info.run_name == "forecast seattle-weather"
    for name in (EXPERIMENT, DEFAULT_FORECAST_EXPERIMENT):  # the UI opens them on model training
        tags = tracking.get_experiment_by_name(name).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
    partition = Path(first.data.tags["forecast_path"])
    assert partition.parent == output
    frame = pd.read_parquet(partition / partitions.FORECAST_FILE)
    assert list(frame["step"]) == list(range(1, HORIZON + 1))
    champion = tracking.get_model_version_by_alias(REGISTERED, registry.CHAMPION_ALIAS)
    assert frame["model_version"].unique().tolist() == [str(champion.version)]


def test_the_champion_forecasts_in_a_fresh_process(tracking: MlflowClient, tmp_path: Path) -> None:
    assert main_job.main(arguments(tmp_path / "forecasts")) == 0
    script = f"""
import json, mlflow.pyfunc
from pipelines.data.settings import DataConfig
from pipelines.data.prepare import run
from pipelines.runtime.history import to_model_input
prepared = run(DataConfig(dataset="seattle-weather", input_width=14, horizon={HORIZON}))
model = mlflow.pyfunc.load_model("models:/{REGISTERED}@champion")
history = to_model_input(prepared.frame, prepared.spec.features, last_rows=40)
forecasts = model.predict(history)
print(json.dumps({{"steps": forecasts.groupby("series_id").size().to_dict(),
                   "first": str(forecasts["timestamp"].iloc[0])}}))
"""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    answer = json.loads(finished.stdout.strip().splitlines()[-1])
    assert answer["steps"] == {"seattle-weather": HORIZON}
    assert answer["first"].startswith("2016-01-01")  # the day after the data's last


def test_a_config_error_exits_2_before_any_run(
    tracking: MlflowClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main_job.main(arguments(tmp_path / "forecasts", "--models=last,lstmm"))
    assert code == exit_codes.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: config key 'model.models'") and "lstm" in line
    experiment_id = tracking.get_experiment_by_name(EXPERIMENT).experiment_id
    assert not tracking.search_runs([experiment_id])


def test_an_experiment_name_parameter_inside_mlflow_run_redirects_the_work(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = tracking.create_run(tracking.get_experiment_by_name(EXPERIMENT).experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher.info.run_id)
    tracking.create_experiment("elsewhere", artifact_location=(Path.cwd() / "x").as_uri())
    assert train_command.main(["--model=last", "--epochs=1", "--experiment-name=elsewhere"]) == 0
    (work,) = tracking.search_runs([tracking.get_experiment_by_name("elsewhere").experiment_id])
    pointer = tracking.get_run(launcher.info.run_id)
    assert pointer.data.tags["redirected_to_run_id"] == work.info.run_id
    assert work.data.tags["launcher_run_id"] == launcher.info.run_id
    assert "val_mae" in work.data.metrics and "val_mae" not in pointer.data.metrics
    assert work.info.run_name == "train last seattle-weather"
    assert "`elsewhere`" in pointer.data.tags["mlflow.note.content"]


def test_a_bare_mlflow_run_in_the_default_experiment_sends_the_work_to_ours(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow run .` without `--experiment-name` starts its run in MLflow's `Default`
    experiment, which the UI opens in GenAI mode: the work goes to the config's experiment."""
    default = tracking.get_experiment_by_name("Default")
    launcher = tracking.create_run(default.experiment_id)  # MLflow names it
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher.info.run_id)
    assert (
        train_command.main(["--model=last", "--epochs=1", f"--experiment-name={EXPERIMENT}"]) == 0
    )
    (work,) = tracking.search_runs([tracking.get_experiment_by_name(EXPERIMENT).experiment_id])
    pointer = tracking.get_run(launcher.info.run_id)
    assert pointer.data.tags["redirected_to_run_id"] == work.info.run_id
    assert pointer.info.run_name == f"see {EXPERIMENT}"
    assert "mlflow.experimentKind" not in tracking.get_experiment(default.experiment_id).tags


@pytest.mark.parametrize(
    ("launcher_name", "expected"),
    [(None, "train last seattle-weather"), ("my baseline", "my baseline")],
)
def test_a_launcher_run_in_a_chosen_experiment_holds_the_work_under_a_readable_name(
    tracking: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    launcher_name: str | None,
    expected: str,
) -> None:
    """`mlflow run . --experiment-name tiny-main [--run-name ...]`: the launcher's run is the
    work; MLflow's made-up name gives way to ours, a name the user gave is kept."""
    experiment_id = tracking.get_experiment_by_name(EXPERIMENT).experiment_id
    launcher = tracking.create_run(experiment_id, run_name=launcher_name)
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher.info.run_id)
    assert train_command.main(["--model=last", "--epochs=1"]) == 0
    (work,) = tracking.search_runs([experiment_id])
    assert work.info.run_id == launcher.info.run_id
    assert work.info.run_name == expected
    assert "val_mae" in work.data.metrics


# --------------------------------------------------------------------------------------------
# Prepared data: round trip and the reuse key


def test_prepared_outputs_round_trip(tmp_path: Path) -> None:
    prepared = prepare_module.run(DataConfig(dataset="seattle-weather"))
    write_outputs(prepared, tmp_path / "prepared")
    again = read_outputs(tmp_path / "prepared")
    pd.testing.assert_frame_equal(again.frame, prepared.frame)
    assert (again.parts == prepared.parts).all()
    assert again.spec == prepared.spec
    assert again.scaler.to_dict() == prepared.scaler.to_dict()
    assert again.summary == json.loads(json.dumps(prepared.summary, default=str))


def test_the_prepare_key_follows_settings_and_source_content(write_csv) -> None:
    text = "date,value\n" + "".join(f"2024-01-{day:02d},{day}\n" for day in range(1, 29))
    source = write_csv(text)
    config = DataConfig(
        dataset=None, source=str(source), timestamp_column="date", targets=("value",)
    )
    key = lineage.prepare_key(config)
    assert key == lineage.prepare_key(config)
    assert key != lineage.prepare_key(config.model_copy(update={"horizon": 3}))
    source.write_text(text.replace(",28\n", ",29\n"))
    assert key != lineage.prepare_key(config)
    assert lineage.prepare_key(DataConfig(dataset="yfinance")) is None  # no checksum: no reuse
