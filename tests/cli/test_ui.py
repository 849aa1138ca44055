"""`make ui`: the link to the models view first, then `mlflow ui` on the same store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines.cli import exit_codes
from pipelines.cli import ui as ui_command


def test_it_prints_the_models_view_link_and_starts_mlflow_ui_on_the_store(
    tracking_store: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    experiment_id = tracking_store.create_experiment(
        "forecaster", artifact_location=(tmp_path / "a").as_uri()
    )
    started: list[list[str]] = []
    monkeypatch.setattr(ui_command.os, "execvp", lambda program, command: started.append(command))

    assert ui_command.main(["--port", "5055"]) == exit_codes.EXIT_OK

    expected = (
        f"http://127.0.0.1:5055/#/experiments/{experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=models"
    )
    assert capsys.readouterr().out == f"open {expected}\n"
    (command,) = started
    assert command[0] == str(Path(sys.executable).with_name("mlflow"))
    assert command[1:] == [
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        "5055",
        "--backend-store-uri",
        f"sqlite:///{tmp_path}/mlflow.db",
    ]


def test_no_experiment_is_bad_input_naming_the_store(
    tracking_store: MlflowClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert ui_command.main(["--experiment-name", "nope"]) == exit_codes.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: parameter experiment_name: no experiment 'nope' in "
        f"sqlite:///{tmp_path}/mlflow.db; run `make run` first"
    )
