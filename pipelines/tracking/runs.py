"""The MLflow run a runnable pipeline logs to, shared by `train`, `compare`, `main`, `forecast`.

Nothing here sets a tracking URI: `MLFLOW_TRACKING_URI` applies, else MLflow's own default (a
SQLite file `mlflow.db` in the working directory).

Which run:
    - a run the caller already started (the caller ends it);
    - inside `mlflow run`, the run it started (`MLFLOW_RUN_ID`), in the experiment of
      `mlflow run --experiment-name`;
    - otherwise a new run in `experiment_name`.

`mlflow run` creates its run before our command starts, so an `experiment_name` parameter
cannot move it. When that parameter names an experiment other than the default and other than
the launcher's, the work goes to a new run in the named experiment and the launcher's run gets
a note and the tag `redirected_to_run_id` pointing at it (the new run has `launcher_run_id`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pipelines.config.loading import MAX_PARAM_LENGTH, shorten
from pipelines.config.schema import RunConfig, TrackingConfig

__all__ = ["TAG_LENGTH", "error_tagged", "param_text", "run_for", "tag_text", "tracked_run"]

TAG_LENGTH = 5000
"""Longest tag value written (MLflow's limit is larger; a tag is for reading, not storage)."""


def param_text(value: Any) -> str:
    """A parameter value as MLflow text: lists joined by ",", None as "", cut to 500 characters."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        value = ",".join(str(item) for item in value)
    return shorten(str(value), MAX_PARAM_LENGTH)


def tag_text(text: str) -> str:
    """A tag value cut to `TAG_LENGTH` characters."""
    return shorten(text, TAG_LENGTH)


@contextlib.contextmanager
def tracked_run(
    experiment_name: str, *, default_experiment: str, run_name: str | None = None
) -> Iterator[Any]:
    """The run to log to (see the module docstring).

    A failure is tagged `error` on the run; a run started here then ends FAILED (KILLED on
    Ctrl-C). A run owned by the caller is left for the caller to end.

    Args:
        experiment_name: the experiment asked for.
        default_experiment: the name used when none was asked for; inside `mlflow run` it
            defers to the launcher's experiment.
        run_name: the new run's name (None lets MLflow choose).
    """
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        with error_tagged():
            yield active
        return
    launcher_run_id = os.environ.get("MLFLOW_RUN_ID")
    redirected = (
        launcher_run_id is not None
        and experiment_name != default_experiment
        and _experiment_of(launcher_run_id) != experiment_name
    )
    if redirected:
        del os.environ["MLFLOW_RUN_ID"]
    if launcher_run_id is None or redirected:
        mlflow.set_experiment(experiment_name)
    run = mlflow.start_run(run_name=run_name)
    if redirected:
        _point_to(launcher_run_id, run)
    try:
        with error_tagged():
            yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


@contextlib.contextmanager
def error_tagged() -> Iterator[None]:
    """Tags the active run `error` = "Type: message" when the block raises (and re-raises)."""
    import mlflow

    try:
        yield
    except Exception as error:
        with contextlib.suppress(Exception):  # never hide the real error behind a logging one
            mlflow.set_tag("error", tag_text(f"{type(error).__name__}: {error}"))
        raise


def _experiment_of(run_id: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient()
    return client.get_experiment(client.get_run(run_id).info.experiment_id).name


def _point_to(launcher_run_id: str, run: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id, run_id = run.info.experiment_id, run.info.run_id
    client.set_tag(launcher_run_id, "redirected_to_run_id", run_id)
    client.set_tag(
        launcher_run_id,
        "mlflow.note.content",
        f"The work of this `mlflow run` is logged in experiment {experiment_id}, run {run_id} "
        "(its experiment_name parameter).",
    )
    client.set_tag(run_id, "launcher_run_id", launcher_run_id)


def run_for(config: RunConfig) -> contextlib.AbstractContextManager[Any]:
    """The run a training, comparison or main job logs to: `tracked_run` with the config's
    experiment and run name."""
    return tracked_run(
        config.tracking.experiment_name,
        default_experiment=TrackingConfig().experiment_name,
        run_name=config.tracking.run_name,
    )
