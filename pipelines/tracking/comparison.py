"""A comparison in MLflow: one parent run, one nested child run per model.

`compare_models(config)` prepares the data once and, for every model of
`config.model.models` (baselines included), trains it with `train_model` on those same
windows and the same seed, and logs it with `log_training_run` to a nested child run, so every
child has the same metric keys and the UI's compare view lines them up. The parent gets the
summary table (`comparison.csv`, `comparison.md`), a bar chart (`comparison.png`), the metric
`best_val_mae` and the tag `best_model`.

Decisions:
    - Children do not register their models: only the best child by the registry's rule
      (`pipelines.tracking.registry`: validation, lower is better; ties keep the earlier
      model) gets a version, through `register_and_promote`, the path a `train` run takes.
      Test metrics never choose.
    - A model that fails ends its child FAILED with an `error` tag and the others go on;
      Ctrl-C ends the current child and the parent KILLED.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence

import keras
import pandas as pd

from models.registry import model_family
from pipelines.config.loading import CONFIG_ARTIFACT, dump_yaml
from pipelines.config.schema import RunConfig
from pipelines.data.prepare import PrepareResult
from pipelines.data.prepare import run as prepare_data
from pipelines.tracking.registry import SELECTION_METRIC, beats, register_and_promote
from pipelines.tracking.runs import error_tagged, run_for, tag_text
from pipelines.tracking.training_run import log_training_run, metric_values, resolved_params
from pipelines.tracking.views import compare_runs_url
from pipelines.training.compare import (
    FAILED,
    FINISHED,
    KILLED,
    SUMMARY_METRICS,
    ComparisonResult,
    ModelOutcome,
    markdown_table,
    model_configs,
    summary_text,
    variant,
)
from pipelines.training.train import train_model

MODEL_ARTIFACT = "model"
"""Name under which `log_training_run` logs each child's model (pyfunc's default)."""


# --------------------------------------------------------------------------------------------
# The comparison


def compare_models(
    config: RunConfig,
    prepared: PrepareResult | None = None,
    configs: dict[str, RunConfig] | None = None,
) -> ComparisonResult:
    """Trains and logs every model of `config.model.models` under one parent MLflow run.

    Args:
        config: the comparison's configuration.
        prepared: data already prepared from `config.data`; None prepares it here, once.
        configs: `model_configs(config)` when the caller already built them.

    Returns:
        The outcome of every model, the best one and its registered version.

    Raises:
        ConfigError: the models' hyper-parameters do not fit (before any run).
        DataValidationError: the data cannot be prepared (before any run).
        KeyboardInterrupt: after the current child and the parent were marked KILLED.
    """
    import mlflow

    configs = model_configs(config) if configs is None else configs
    if prepared is None:
        prepared = prepare_data(config.data)
    with run_for(config, "compare") as parent:
        parent_run_id = parent.info.run_id
        mlflow.log_params(resolved_params(config, prepared.spec, prepared.summary))
        mlflow.log_text(dump_yaml(config), CONFIG_ARTIFACT)
        outcomes = [_run_child(name, child, prepared) for name, child in configs.items()]
        _align_metric_keys(outcomes)
        result = ComparisonResult(parent_run_id, parent.info.experiment_id, outcomes)
        _register_best(result, config.tracking.registered_model_name)
        _log_summary(result)
    return result


def _run_child(name: str, config: RunConfig, prepared: PrepareResult) -> ModelOutcome:
    """Trains and logs one model in a nested run; a failure is recorded, never raised.

    Ctrl-C is the exception: the child ends KILLED and the interrupt goes on to the parent.
    """
    import mlflow

    hparams = config.model.hparams_for()
    outcome = ModelOutcome(
        name=name, family=model_family(name), variant=variant(hparams), status=FINISHED, run_id=""
    )
    # A fresh Keras state per model: each builds as in a solo `train` run (same layer names).
    keras.backend.clear_session()
    run = mlflow.start_run(
        nested=True,
        run_name=name,
        tags={"model_name": name, "model_family": outcome.family, "variant": outcome.variant},
    )
    outcome.run_id = run.info.run_id
    try:
        with error_tagged():
            result = train_model(config, prepared)
            logged = log_training_run(result, config, register=False)
    except KeyboardInterrupt:
        mlflow.end_run(KILLED)
        raise
    except Exception as error:
        # The others go on: the failure is kept in the table and in the exit status.
        traceback.print_exc()
        outcome.status = FAILED
        outcome.error = f"{type(error).__name__}: {error}"
        mlflow.end_run(FAILED)
        return outcome
    outcome.model_uri = logged.model_uri
    mlflow.end_run(FINISHED)
    overall, _ = metric_values(result)
    outcome.metrics = {key: overall[key] for key in SUMMARY_METRICS if key in overall}
    outcome.training_seconds = result.training_seconds
    outcome.best_epoch = result.best_epoch
    return outcome


def _align_metric_keys(outcomes: Sequence[ModelOutcome]) -> None:
    """Logs NaN for the keys a finished child lacks but a sibling has, so all share one key set.

    Baselines fit nothing, so `log_training_run` gives them no `loss`, `val_loss`,
    `epoch_*` or `best_epoch`; NaN says "not applicable" and keeps the UI's columns aligned.
    """
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    finished = [outcome.run_id for outcome in outcomes if outcome.status == FINISHED]
    keys = {run_id: set(client.get_run(run_id).data.metrics) for run_id in finished}
    every_key = set().union(*keys.values())
    timestamp = int(time.time() * 1000)
    for run_id, present in keys.items():
        missing = sorted(every_key - present)
        if missing:
            client.log_batch(run_id, metrics=[Metric(k, math.nan, timestamp, 0) for k in missing])


def _best(outcomes: Sequence[ModelOutcome]) -> ModelOutcome | None:
    """The finished outcome that wins by the registry's rule; ties keep the earlier model."""
    candidates = [
        outcome
        for outcome in outcomes
        if outcome.status == FINISHED
        and math.isfinite(outcome.metrics.get(SELECTION_METRIC, math.nan))
    ]
    best: ModelOutcome | None = None
    for outcome in candidates:
        incumbent = best.metrics[SELECTION_METRIC] if best is not None else None
        if beats(outcome.metrics[SELECTION_METRIC], incumbent):
            best = outcome
    return best


def _register_best(result: ComparisonResult, registered_model_name: str) -> None:
    """Registers the best child's model and moves the champion alias by the registry's rule."""
    best = _best(result.outcomes)
    if best is None:
        return
    result.best_model = best.name
    # The logged model's own URI: MLflow 3 keeps models outside the run's artifacts.
    model_uri = best.model_uri or f"runs:/{best.run_id}/{MODEL_ARTIFACT}"
    result.registered_version, result.promoted = register_and_promote(
        model_uri,
        registered_model_name,
        run_id=best.run_id,
        validation_mae=best.metrics[SELECTION_METRIC],
    )


def _log_summary(result: ComparisonResult) -> None:
    """Table, chart, `best_val_mae` and `best_model` on the (active) parent run."""
    import mlflow

    table = result.table()
    # repr-precision floats: the CSV reads back to exactly the children's logged values.
    mlflow.log_text(table.to_csv(index=False), "comparison.csv")
    mlflow.log_text(markdown_table(table), "comparison.md")
    _log_chart(table)
    best = next((item for item in result.outcomes if item.name == result.best_model), None)
    tags = {
        "best_model": result.best_model or "none",
        "failed_models": ",".join(result.failed),
        # The run's description in the UI: the table a user opens the comparison for.
        "mlflow.note.content": tag_text(_description(result)),
    }
    if result.registered_version is not None:
        tags["registered_version"] = result.registered_version
    mlflow.set_tags(tags)
    if best is not None:
        mlflow.log_metric(f"best_{SELECTION_METRIC}", best.metrics[SELECTION_METRIC])


def _description(result: ComparisonResult) -> str:
    """The parent's description in the UI (Markdown): the summary table, the best model and a
    link to the compare view of the finished children."""
    finished = [item.run_id for item in result.outcomes if item.status == FINISHED]
    link = compare_runs_url("", result.experiment_id, finished)
    return f"{summary_text(result)}\n\n[Compare the models side by side]({link})\n"


def _log_chart(table: pd.DataFrame) -> None:
    import mlflow
    import numpy as np
    from matplotlib.figure import Figure  # not pyplot: a caller's backend stays as it was

    positions = np.arange(len(table))
    figure = Figure(figsize=(max(5.0, 1.2 * len(table)), 4))
    axis = figure.subplots()
    for offset, (column, label) in enumerate((("val_mae", "validation"), ("test_mae", "test"))):
        axis.bar(positions + (offset - 0.5) * 0.4, table[column], width=0.4, label=label)
    labels = [f"{name}\n({family})" for name, family in zip(table.model, table.family, strict=True)]
    axis.set_xticks(positions, labels)
    axis.set_ylabel("MAE (scaled units)")
    axis.set_title("Validation and test MAE per model (failed models are empty)")
    axis.legend()
    figure.tight_layout()
    mlflow.log_figure(figure, "comparison.png")
