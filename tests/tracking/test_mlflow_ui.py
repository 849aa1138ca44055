"""The MLflow UI as a user opens it after a comparison: `mlflow ui` on loopback, read by
headless Chromium.

The runs table at the link the commands print (`pipelines.tracking.views.runs_table_url`) must
list every model of the comparison, best validation MAE first, with its headline metrics as
columns, and the compare view must line the models up on those metrics. The README's pictures
(`docs/screenshots.py`, after a real run) close the UI's shared-view banner and Assistant panel
the way this test does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines.cli import compare as compare_command
from pipelines.tracking import runs, training_run, views
from tests.browser import (
    ASSISTANT_PANEL,
    SHARED_VIEW_BANNER,
    DevToolsPage,
    chromium_or_skip,
    close_ui_panels,
    grid_rows,
    page_dom,
    wait_for_grid_rows,
)
from tests.loopback import mlflow_server

EXPERIMENT = "forecaster"  # as `make run` names it
MODELS = ("last", "linear", "dense")
SERVER_LIFETIME_SECONDS = 600
SERVER_START_SECONDS = 120


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()


@pytest.fixture
def compared(
    tracking_store: MlflowClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """A tiny comparison in the test's SQLite store; returns its experiment id. The command
    prints the link to the runs table in the `models` view."""
    tracking_store.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "a").as_uri())
    arguments = [
        "--dataset=seattle-weather",
        "--input-width=14",
        "--horizon=7",
        f"--models={','.join(MODELS)}",
        "--set=model.hparams.units=4",
        "--epochs=1",
        "--batch-size=64",
        f"--experiment-name={EXPERIMENT}",
        "--registered-model-name=ui-compare-model",
    ]
    assert compare_command.main(arguments) == 0
    experiment_id = tracking_store.get_experiment_by_name(EXPERIMENT).experiment_id
    link = views.runs_table_url("http://127.0.0.1:5000", experiment_id)
    assert f"MLflow UI: {link} " in capsys.readouterr().out
    return experiment_id


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[str]:
    """`mlflow ui` (the same server) on a free loopback port, on the test's store."""
    with mlflow_server(
        tmp_path,
        f"--backend-store-uri=sqlite:///{tmp_path}/mlflow.db",
        lifetime_s=SERVER_LIFETIME_SECONDS,
        start_s=SERVER_START_SECONDS,
    ) as url:
        yield url


def test_the_models_view_and_the_compare_view_show_the_comparison(
    compared: str, ui: str, chromium: str, tracking_store: MlflowClient, tmp_path: Path
) -> None:
    """One comparison and one server for both pages: starting them is most of the time."""
    children = tracking_store.search_runs([compared], "tags.model_name != ''")
    by_validation = sorted(children, key=lambda run: run.data.metrics["val_mae"])

    # The runs table at the printed link: every model, best validation MAE first, with the
    # headline metrics as columns.
    runs_url = views.runs_table_url(ui, compared)
    rows = grid_rows(page_dom(chromium, runs_url))
    assert len(rows) == len(MODELS), rows
    for row, run in zip(rows, by_validation, strict=True):
        assert row["attributes.`Run Name`"].endswith(run.info.run_name)
        for name in views.VIEW_METRICS:
            shown = row[f"metrics.`{name}`"]
            assert float(shown) == pytest.approx(run.data.metrics[name], rel=1e-9), name

    # A person closes the shared-view banner and the Assistant panel: the rows stay in the view.
    with DevToolsPage(chromium, (1800, 520)) as page:
        page.open(runs_url)
        wait_for_grid_rows(page, len(MODELS))
        assert close_ui_panels(page) == [SHARED_VIEW_BANNER, ASSISTANT_PANEL]
        dom = page.dom()
        picture = page.screenshot(tmp_path / "runs.png")
    assert "viewing a shared view" not in dom
    assert 'data-component-id="mlflow.assistant.chat_panel' not in dom
    assert [row["attributes.`Run Name`"] for row in grid_rows(dom)] == [
        row["attributes.`Run Name`"] for row in rows
    ]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The compare view of the children, linked from the parent's description.
    compare_url = views.compare_runs_url(ui, compared, [run.info.run_id for run in children])
    dom = page_dom(chromium, compare_url, window=(1600, 3000))
    assert f"Comparing {len(MODELS)} Runs" in dom
    for run in children:
        assert run.info.run_name in dom
    # The metrics table scrolls inside the page and draws only the rows in sight, in
    # alphabetical order: the test metrics come right after the handful of training figures.
    for name in ("test_coverage_80", "test_crps", "test_mae", "test_mse"):
        assert f">{name}<" in dom, f"{name} is not in the compare view"

    # The experiment carries the view and a description that links to it; a description the
    # user wrote is kept.
    tags = tracking_store.get_experiment(compared).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert json.loads(tags["mlflow.sharedViewState.models"]) == views.models_view_state()
    assert (
        f"(/#/experiments/{compared}/runs?workflowType=machine_learning"
        in (tags["mlflow.note.content"])
    )
    tracking_store.set_experiment_tag(compared, "mlflow.note.content", "mine")
    views.publish_models_view(compared, tracking_store.get_experiment(compared).tags)
    assert tracking_store.get_experiment(compared).tags["mlflow.note.content"] == "mine"


def test_an_experiment_in_place_is_not_written_again(
    tracking_store: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    set_tag = MlflowClient.set_experiment_tag

    def recording(self: MlflowClient, experiment_id: str, key: str, value: str) -> None:
        written.append(key)
        set_tag(self, experiment_id, key, value)

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", recording)
    experiment = runs.use_experiment("tagged once")
    assert sorted(written) == sorted(
        ["mlflow.experimentKind", "mlflow.sharedViewState.models", "mlflow.note.content"]
    )
    written.clear()
    assert runs.use_experiment("tagged once").experiment_id == experiment.experiment_id
    assert written == []


def test_the_view_shows_only_headline_metrics() -> None:
    headline = {*training_run.HEADLINE_METRICS, "training_seconds"}
    assert all(
        name in headline or training_run.INTERVAL_HEADLINE.match(name)
        for name in views.VIEW_METRICS
    )
    state = views.models_view_state()
    assert state["orderByKey"] == "metrics.`val_mae`" and state["orderByAsc"] is True


def test_links_to_the_ui() -> None:
    assert views.ui_base_url("sqlite:///mlflow.db") == "http://127.0.0.1:5000"
    assert views.ui_base_url("http://tracking:8080/") == "http://tracking:8080"
    assert views.runs_table_url("http://h:1", "7") == (
        "http://h:1/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=models"
    )
    assert views.compare_runs_url("", "7", ["a", "b"]) == (
        "/#/compare-runs?runs=%5B%22a%22%2C+%22b%22%5D&experiments=%5B%227%22%5D"
    )
