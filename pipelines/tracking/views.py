"""The MLflow UI set up for comparing forecasters: a shared view of the runs table and links.

MLflow 3's UI opens every experiment in GenAI mode unless the link says otherwise
(`workflowType=machine_learning`; its switch is remembered per browser) and shows no metric
columns until the user picks some. An experiment tag `mlflow.sharedViewState.<key>` holds a view
of the runs table that any link can open (`viewStateShareKey=<key>`): `publish_models_view`
writes one, `models`, that lists every model's run (a comparison's children, `train` runs) with
the headline metrics as columns, best validation MAE first. `runs_table_url` and
`compare_runs_url` are the links the commands print and the runs' descriptions carry.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MODELS_VIEW",
    "compare_runs_url",
    "is_tracking_server",
    "models_view_state",
    "publish_models_view",
    "runs_table_url",
    "ui_base_url",
    "where_to_look",
]

MODELS_VIEW = "models"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
DESCRIPTION_TAG = "mlflow.note.content"
VIEW_METRICS = (
    "val_mae",
    "test_mae",
    "test_mse",
    "test_skill_vs_last",
    "test_coverage_80",
    "training_seconds",
)
"""The runs table's metric columns, in this order: the figures a user compares models on."""
DEFAULT_UI_URL = "http://127.0.0.1:5000"
"""Where `mlflow ui` listens by default."""


def models_view_state() -> dict[str, Any]:
    """The runs-table state of the `models` view, in the UI's own format (search facets and
    the column picks of its `Columns` menu)."""
    metric_columns = [f"metrics.`{name}`" for name in VIEW_METRICS]
    return {
        "searchFilter": "tags.model_name != ''",  # every run that trained one model
        "orderByKey": "metrics.`val_mae`",
        "orderByAsc": True,
        "selectedColumns": [*metric_columns, "tags.`model_family`", "attributes.`Dataset`"],
        "columnOrder": metric_columns,
    }


def publish_models_view(experiment_id: str, tags: Mapping[str, str]) -> None:
    """Writes the `models` view to the experiment, and a description that links to it unless
    the experiment has one; `tags` are the experiment's own, so that a run start that finds
    both in place writes nothing."""
    from mlflow import MlflowClient

    client = MlflowClient()
    view = json.dumps(models_view_state())
    if tags.get(SHARED_VIEW_TAG + MODELS_VIEW) != view:
        client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + MODELS_VIEW, view)
    if DESCRIPTION_TAG not in tags:
        link = runs_table_url("", experiment_id)
        client.set_experiment_tag(
            experiment_id,
            DESCRIPTION_TAG,
            "Forecasting models compared on the same windows: a parent run per comparison, "
            f"a child run per model. [Every model with its headline metrics]({link}).",
        )


def is_tracking_server(tracking_uri: str) -> bool:
    """Whether `tracking_uri` is a tracking server's (which serves its own UI), not a store."""
    return tracking_uri.startswith(("http://", "https://"))


def ui_base_url(tracking_uri: str) -> str:
    """The UI of a tracking server, or where `mlflow ui` serves a local store."""
    return tracking_uri.rstrip("/") if is_tracking_server(tracking_uri) else DEFAULT_UI_URL


def runs_table_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table in model-training mode, in the `models` view."""
    query = urllib.parse.urlencode(
        {"workflowType": "machine_learning", "viewStateShareKey": MODELS_VIEW}
    )
    return f"{base_url}/#/experiments/{experiment_id}/runs?{query}"


def compare_runs_url(base_url: str, experiment_id: str, run_ids: Sequence[str]) -> str:
    """The UI's compare view of `run_ids` (params and metrics side by side)."""
    query = urllib.parse.urlencode(
        {"runs": json.dumps(list(run_ids)), "experiments": json.dumps([experiment_id])}
    )
    return f"{base_url}/#/compare-runs?{query}"


def where_to_look(experiment_id: str) -> str:
    """The line a command prints after logging to `experiment_id`: the link to its runs
    table, in the `models` view."""
    import mlflow

    url = runs_table_url(ui_base_url(mlflow.get_tracking_uri()), experiment_id)
    return f"MLflow UI: {url} (start it with `mlflow ui` for a local store)"
