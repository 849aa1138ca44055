"""The README's MLflow UI pictures, from a real run: the default job (`make run`: prepare,
compare every default model at the default epochs, register the best, forecast) into a fresh
tracking store, then `mlflow server` on that store, read by headless Chromium.

Before each picture the shared-view banner and the Assistant panel are closed by clicking
their close buttons, as a person would, and the compare view's plots and parameters are folded
so that its metrics, which that view rounds, are in sight. MLflow 3.17's runs table has no
setting to round metrics: values show as far as their column's width allows.

Usage:
    python docs/screenshots.py                       # run the job into a temporary store
    python docs/screenshots.py --tracking-uri URI    # pictures of an existing store's runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from mlflow import MlflowClient  # noqa: E402

from pipelines.tracking import views  # noqa: E402
from tests.browser import (  # noqa: E402
    DevToolsPage,
    close_ui_panels,
    find_chromium,
    wait_for_grid_rows,
)
from tests.loopback import mlflow_server  # noqa: E402

DOCS = REPOSITORY_ROOT / "docs"
EXPERIMENT = "forecaster"  # as `make run` names it
RUNS_WINDOW = (1800, 560)
COMPARE_WINDOW = (1600, 900)
SERVER_SECONDS = 900
COLLAPSED_COMPARE_SECTIONS = ("Visualizations", "Parameters", "Artifacts")
"""Folded in the compare view's picture, so that its metrics (rounded there) are in sight. Its
metrics box is 300 px tall and its names do not follow a scroll of its values in MLflow 3.17, so
the picture shows the box as it opens."""


def collapse_sections(page: DevToolsPage, names: tuple[str, ...]) -> None:
    """Folds the compare view's sections `names` by clicking their headers."""
    for name in names:
        arrow = json.dumps(f'[aria-label="collapse {name}"]')
        page.evaluate(f"document.querySelector({arrow}).closest('[role=button]').click()")
        page.wait_for(f"!document.querySelector({arrow})")


def run_default_job(store: Path) -> str:
    """`make run`'s command into a SQLite store under `store`; returns its tracking URI."""
    uri = f"sqlite:///{store / 'mlflow.db'}"
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(REPOSITORY_ROOT),
        "--env-manager",
        "local",
        "--experiment-name",
        EXPERIMENT,
        "-P",
        f"forecast_output={store / 'forecasts'}",
    ]
    subprocess.run(command, cwd=REPOSITORY_ROOT, env=environment, check=True)
    return uri


def take_pictures(tracking_uri: str, folder: Path, chromium: str) -> list[Path]:
    """The runs table of the latest comparison's models and their compare view, as PNGs."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise SystemExit(f"error: no experiment {EXPERIMENT!r} in {tracking_uri}; run the job")
    parents = client.search_runs(
        [experiment.experiment_id],
        "tags.best_model != ''",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not parents:
        raise SystemExit(f"error: no comparison in {tracking_uri}; run the job")
    children = client.search_runs(
        [experiment.experiment_id],
        f"tags.mlflow.parentRunId = '{parents[0].info.run_id}' and tags.model_name != ''",
    )
    with (
        tempfile.TemporaryDirectory(prefix="ui-server-") as server_folder,
        mlflow_server(
            Path(server_folder), f"--backend-store-uri={tracking_uri}", lifetime_s=SERVER_SECONDS
        ) as ui,
    ):
        pictures = []
        with DevToolsPage(chromium, RUNS_WINDOW) as page:
            page.open(views.runs_table_url(ui, experiment.experiment_id))
            wait_for_grid_rows(page, len(children))
            close_ui_panels(page)
            pictures.append(page.screenshot(folder / "mlflow-runs.png"))
        with DevToolsPage(chromium, COMPARE_WINDOW) as page:
            run_ids = [run.info.run_id for run in children]
            page.open(views.compare_runs_url(ui, experiment.experiment_id, run_ids))
            page.wait_for(f"document.body.innerText.includes('Comparing {len(run_ids)} Runs')")
            close_ui_panels(page)
            collapse_sections(page, COLLAPSED_COMPARE_SECTIONS)
            pictures.append(page.screenshot(folder / "mlflow-compare.png"))
    return pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="take the pictures of this store's runs")
    parser.add_argument("--output", type=Path, default=DOCS, help="folder of the PNGs")
    arguments = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("error: headless Chromium is needed (Debian: apt-get install chromium)")
        return 2
    with tempfile.TemporaryDirectory(prefix="ui-run-") as store:
        uri = arguments.tracking_uri or run_default_job(Path(store))
        for path in take_pictures(uri, arguments.output, chromium):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
