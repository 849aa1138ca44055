"""The default job: prepare-run reuse, compare, champion, forecast, and the champion in a fresh
process; plus the prepared-data round trip and the MLproject contract."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from pipelines import compare, forecast, lineage, train
from pipelines import main as main_job
from pipelines import prepare as prepare_module
from pipelines.paths import REPOSITORY_ROOT
from pipelines.prepare import PrepareConfig, read_outputs, write_outputs

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
    for name in (EXPERIMENT, forecast.DEFAULT_EXPERIMENT):
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
    assert first.data.tags["best_model"] in {"dense", "last"}

    # The forecast run is in the `forecasts` experiment and points back at its main run.
    forecast_run = tracking.get_run(first.data.tags["forecast_run_id"])
    assert forecast_run.data.tags["mlflow.parentRunId"] == first.info.run_id
    assert forecast_run.data.metrics["rows"] == HORIZON
    partition = Path(first.data.tags["forecast_path"])
    assert partition.parent == output
    frame = pd.read_parquet(partition / forecast.FORECAST_FILE)
    assert list(frame["step"]) == list(range(1, HORIZON + 1))
    champion = tracking.get_model_version_by_alias(REGISTERED, train.CHAMPION_ALIAS)
    assert frame["model_version"].unique().tolist() == [str(champion.version)]


def test_the_champion_forecasts_in_a_fresh_process(tracking: MlflowClient, tmp_path: Path) -> None:
    assert main_job.main(arguments(tmp_path / "forecasts")) == 0
    script = f"""
import json, mlflow.pyfunc
from pipelines.prepare import PrepareConfig, run
from pipelines.pyfunc import to_model_input
prepared = run(PrepareConfig(dataset="seattle-weather", input_width=14, horizon={HORIZON}))
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
    assert code == train.EXIT_BAD_INPUT
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
    assert train.main(["--model=last", "--epochs=1", "--experiment-name=elsewhere"]) == 0
    (work,) = tracking.search_runs([tracking.get_experiment_by_name("elsewhere").experiment_id])
    pointer = tracking.get_run(launcher.info.run_id)
    assert pointer.data.tags["redirected_to_run_id"] == work.info.run_id
    assert work.data.tags["launcher_run_id"] == launcher.info.run_id
    assert "val_mae" in work.data.metrics and "val_mae" not in pointer.data.metrics


# --------------------------------------------------------------------------------------------
# Prepared data: round trip and the reuse key


def test_prepared_outputs_round_trip(tmp_path: Path) -> None:
    prepared = prepare_module.run(PrepareConfig(dataset="seattle-weather"))
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
    config = PrepareConfig(source=str(source), timestamp_column="date", targets=("value",))
    key = lineage.prepare_key(config)
    assert key == lineage.prepare_key(config)
    assert key != lineage.prepare_key(PrepareConfig(**{**config.__dict__, "horizon": 3}))
    source.write_text(text.replace(",28\n", ",29\n"))
    assert key != lineage.prepare_key(config)
    assert lineage.prepare_key(PrepareConfig(dataset="yfinance")) is None  # no checksum: no reuse


# --------------------------------------------------------------------------------------------
# MLproject: every declared parameter is passed, and the command's parser accepts it


PARSERS = {
    "main": main_job.build_parser,
    "prepare": prepare_module.build_parser,
    "train": train.build_parser,
    "compare": compare.build_parser,
    "forecast": forecast.build_parser,
}


@pytest.mark.parametrize("entry_point", sorted(PARSERS))
def test_every_mlproject_parameter_reaches_the_command(entry_point: str) -> None:
    project = yaml.safe_load((REPOSITORY_ROOT / "MLproject").read_text())
    spec = project["entry_points"][entry_point]
    command = " ".join(spec["command"].split())
    for name in spec["parameters"]:
        assert f"{{{name}}}" in command, f"{entry_point}: parameter {name} is not passed"
    # As MLflow runs it with every parameter left empty ("" means "not given").
    filled = command.format(**{name: shlex.quote("") for name in spec["parameters"]})
    words = shlex.split(filled)
    assert words[:2] == ["python", "-m"]
    assert words[2] == f"pipelines.{entry_point}"
    parsed = PARSERS[entry_point]().parse_args(words[3:])
    assert parsed is not None
