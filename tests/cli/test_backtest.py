"""`mlflow run . -e backtest` on the default data set: a parent run, one nested run per model
with per-fold metric history, aggregates and artifacts; bad settings stop before any run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import backtest as backtest_cli
from pipelines.paths import REPOSITORY_ROOT

EXPERIMENT = "backtest-test"


def test_mlflow_run_backtest_logs_a_parent_nested_runs_and_fold_metrics(
    tracking_store: MlflowClient, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        # `mlflow run --env-manager local` runs `python -m ...` from PATH: this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(REPOSITORY_ROOT),
        "-e",
        "backtest",
        "--env-manager=local",
        f"--experiment-name={EXPERIMENT}",
        *("-P", "models=linear", "-P", "epochs=1", "-P", "folds=2", "-P", "fold_step=14"),
        *("-P", "input_width=14", "-P", "horizon=7"),
    ]
    finished = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]
    assert "backtest of seattle-weather: 2 folds, horizon 7" in finished.stdout

    experiment = tracking_store.get_experiment_by_name(EXPERIMENT)
    (parent,) = tracking_store.search_runs(
        [experiment.experiment_id], filter_string="tags.mlflow.parentRunId IS NULL"
    )
    children = tracking_store.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert parent.info.status == "FINISHED"
    assert parent.data.params["backtest.folds"] == "2"
    assert parent.data.params["backtest.step"] == "14"
    assert parent.data.tags["kind"] == "backtest"
    by_model = {child.info.run_name: child for child in children}
    assert sorted(by_model) == ["last", "linear", "repeat"]

    linear = by_model["linear"]
    # Resolved settings, named as a training run names them: no `none` left for the defaults.
    for run in (parent, linear):
        assert run.data.params["data.dataset"] == "seattle-weather"
        assert run.data.params["data.frequency"] == "D"
        assert run.data.params["data.input_width"] == "14"
        assert run.data.params["data.targets"] == parent.data.params["data.targets"] != "none"
    assert linear.data.params["model.name"] == "linear"
    assert linear.data.params["tracking.run_name"] == linear.info.run_name == "linear"
    assert "model.hparams.season" in by_model["repeat"].data.params
    history = tracking_store.get_metric_history(linear.info.run_id, "fold_mae")
    assert sorted(metric.step for metric in history) == [0, 1]
    values = [metric.value for metric in sorted(history, key=lambda metric: metric.step)]
    assert linear.data.metrics["mean_mae"] == pytest.approx(sum(values) / 2)
    assert linear.data.metrics["std_mae"] == pytest.approx(pd.Series(values).std())
    assert {"mean_mae_original", "std_mse", "mean_mase"} <= set(linear.data.metrics)

    artifacts = {item.path for item in tracking_store.list_artifacts(linear.info.run_id)}
    assert "forecasts.csv" in artifacts
    plots = {item.path for item in tracking_store.list_artifacts(linear.info.run_id, "plots")}
    assert plots == {"plots/error_by_fold.png", "plots/forecasts_vs_actuals.png"}
    forecasts = pd.read_csv(
        tracking_store.download_artifacts(linear.info.run_id, "forecasts.csv", str(tmp_path))
    )
    assert sorted(forecasts["fold"].unique()) == [0, 1]
    assert len(forecasts) == 2 * 7  # folds x steps, one series, one target
    parent_artifacts = {item.path for item in tracking_store.list_artifacts(parent.info.run_id)}
    assert {"backtest.csv", "folds.csv", "error_by_fold.png", "config.yaml"} <= parent_artifacts


def test_more_folds_than_the_data_holds_is_bad_input_before_any_run(
    tracking_store: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    status = backtest_cli.main(["--folds", "5000", "--experiment-name", EXPERIMENT])
    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert error[0].startswith("error: config key 'backtest.folds': expected at most")
    assert tracking_store.get_experiment_by_name(EXPERIMENT) is None
