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
the launcher's, or when the launcher's run is in MLflow's own `Default` experiment (a bare
`mlflow run .`), the work goes to a new run in the named experiment and the launcher's run gets
a note and the tag `redirected_to_run_id` pointing at it (the new run has `launcher_run_id`).
A launcher's run that kept the random name MLflow gave it is renamed after the work.

Every experiment our runs go to is tagged `mlflow.experimentKind` = model training, the UI's
marker of a model-training experiment (its runs table and metric charts rather than GenAI
traces). MLflow 3.17's UI lets its own GenAI / model-training switch, remembered per browser,
override the tag; the links of `pipelines.tracking.views` set that switch too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from pipelines.config.loading import MAX_PARAM_LENGTH, shorten
from pipelines.config.schema import RunConfig, TrackingConfig
from pipelines.tracking.views import publish_models_view

__all__ = [
    "TAG_LENGTH",
    "default_run_name",
    "error_tagged",
    "param_text",
    "run_for",
    "tag_text",
    "tracked_run",
    "use_experiment",
]

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
"""The UI's name for model training (its other kinds are GenAI ones)."""
MLFLOW_DEFAULT_EXPERIMENT = "Default"

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


def use_experiment(name: str) -> Any:
    """`mlflow.set_experiment(name)`, the experiment tagged as model training when it has no
    kind yet (a kind the user chose in the UI is kept), with the `models` view of its runs
    table (`pipelines.tracking.views`)."""
    import mlflow

    experiment = mlflow.set_experiment(name)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        mlflow.MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
        )
    publish_models_view(experiment.experiment_id, experiment.tags)
    return experiment


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
    launcher_experiment = None if launcher_run_id is None else _experiment_of(launcher_run_id)
    redirected = (
        launcher_experiment is not None
        and launcher_experiment != experiment_name
        and (
            experiment_name != default_experiment
            or launcher_experiment == MLFLOW_DEFAULT_EXPERIMENT
        )
    )
    if redirected:
        del os.environ["MLFLOW_RUN_ID"]
    use_experiment(
        experiment_name if launcher_experiment is None or redirected else launcher_experiment
    )
    resumed = launcher_run_id is not None and not redirected
    # Resuming with a name would overwrite one the user gave `mlflow run --run-name`.
    run = mlflow.start_run(run_name=None if resumed else run_name)
    if redirected:
        _point_to(launcher_run_id, run)
    elif resumed and run_name and _has_generated_name(run):
        mlflow.set_tag("mlflow.runName", run_name)
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


def _has_generated_name(run: Any) -> bool:
    """Whether the run's name is one MLflow made up (`<adjective>-<noun>-<number>`), not one
    given with `mlflow run --run-name`."""
    from mlflow.utils import name_utils  # the word lists have no public name

    words = run.info.run_name.split("-")
    return (
        len(words) == 3
        and words[0] in name_utils._GENERATOR_PREDICATES
        and words[1] in name_utils._GENERATOR_NOUNS
        and words[2].isdigit()
    )


def _point_to(launcher_run_id: str, run: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment(run.info.experiment_id)
    run_id = run.info.run_id
    client.set_tag(launcher_run_id, "redirected_to_run_id", run_id)
    client.set_tag(
        launcher_run_id,
        "mlflow.note.content",
        f"The work of this `mlflow run` is logged in experiment `{experiment.name}` "
        f"(id {experiment.experiment_id}), run `{run.info.run_name}` ({run_id}).",
    )
    if _has_generated_name(client.get_run(launcher_run_id)):
        client.set_tag(launcher_run_id, "mlflow.runName", f"see {experiment.name}")
    client.set_tag(run_id, "launcher_run_id", launcher_run_id)


def run_for(config: RunConfig, job: str) -> contextlib.AbstractContextManager[Any]:
    """The run a training, comparison, backtest or main job logs to: `tracked_run` with the
    config's experiment, and its run name or else `default_run_name(config, job)`."""
    return tracked_run(
        config.tracking.experiment_name,
        default_experiment=TrackingConfig().experiment_name,
        run_name=config.tracking.run_name or default_run_name(config, job),
    )


def default_run_name(config: RunConfig, job: str) -> str:
    """What the run is, for the UI's runs table: `compare seattle-weather`,
    `train gru weather.csv`, `backtest stocks`."""
    data = config.data.dataset or PurePath(str(config.data.source)).name
    if job == "train":
        return f"train {config.model.name} {data}"
    return f"{job} {data}"
