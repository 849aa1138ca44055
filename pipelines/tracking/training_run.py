"""A training result written to MLflow: params, the resolved config, per-epoch losses, metrics
overall and per horizon step, plots, dataset lineage, library versions and the pyfunc model.

Metric keys (every unit system and part uses the same names, so runs line up in the MLflow UI):

- `val_<metric>` / `test_<metric>`: scaled units (what the model was fitted on), overall;
  `..._original`: original units (after the inverse transform of each window's series).
- `<key>_by_step`: the same per horizon step, logged with `step` = horizon step (1-based).
- `baseline_last_<key>`, `baseline_repeat_<key>`: the naive baselines on the same windows.
- `loss`, `val_loss` (and Keras' other metrics as `epoch_<name>`): per epoch, `step` = epoch
  (1-based, as Keras prints it). Keras' own `val_mae` is logged as `epoch_val_mae` so it does
  not mix with the final `val_mae` of the restored model.

The dataset lineage logs the whole prepared frame through `mlflow.data.from_pandas`: MLflow
stores its schema, profile and a digest of at most its first rows, never the rows themselves,
so the cost does not grow with the data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.hyperparameters import model_family
from pipelines.config.loading import dump_yaml, flatten
from pipelines.config.schema import RunConfig
from pipelines.tracking.plots import log_plots
from pipelines.tracking.registry import register_and_promote
from pipelines.tracking.runs import param_text, tag_text
from pipelines.training.evaluation import PART_PREFIXES
from pipelines.training.train import TrainResult

_METRICS_PER_BATCH = 1000


def metric_values(result: TrainResult) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The run's metrics as MLflow keys: (overall values, per-step arrays for `step` = h).

    Keys: `<part>_<metric>[_original]` for the model, `baseline_<name>_<same>` for the
    baselines, and `<key>_by_step` for the per-step arrays (see the module docstring).
    """
    overall: dict[str, float] = {}
    by_step: dict[str, np.ndarray] = {}
    forecasters = {"": result.evaluations}
    forecasters.update(
        {f"baseline_{name}_": parts for name, parts in result.baseline_evaluations.items()}
    )
    for prefix, evaluations in forecasters.items():
        for part, evaluation in evaluations.items():
            key = f"{prefix}{PART_PREFIXES[part]}"
            for units, values, steps in (
                ("", evaluation.overall, evaluation.by_step),
                ("_original", evaluation.overall_original, evaluation.by_step_original),
            ):
                overall.update({f"{key}_{name}{units}": value for name, value in values.items()})
                by_step.update(
                    {f"{key}_{name}{units}_by_step": array for name, array in steps.items()}
                )
    return overall, by_step


@dataclass(frozen=True)
class LoggedRun:
    """Where `log_training_run` put a result.

    Attributes:
        run_id: the run the result was logged to.
        model_uri: the logged model (`models:/<model id>`), loadable with `mlflow.pyfunc`.
        registered_version: the new version of the registered model, None when not registered.
        promoted: whether `registered_version` became the champion.
    """

    run_id: str
    model_uri: str
    registered_version: str | None = None
    promoted: bool = False


def log_training_run(result: TrainResult, config: RunConfig, *, register: bool = True) -> LoggedRun:
    """Logs one training result to the active MLflow run and, by default, registers the model.

    A registered version becomes the `champion` of `config.tracking.registered_model_name`
    when its `val_mae` beats the current champion's (or there is none); see
    `register_and_promote`.

    Args:
        result: what `train_model` returned.
        config: the configuration it was trained with.
        register: False logs the model without registering it (a comparison registers only
            its best child).

    Returns:
        The run, the logged model and, when registered, its version and whether it was promoted.
    """
    import mlflow

    run = mlflow.active_run() or mlflow.start_run()
    run_id = run.info.run_id
    _log_params(result, config)
    mlflow.log_text(dump_yaml(config), "config.yaml")
    mlflow.set_tags(_tags(result, config))
    _log_metrics(run_id, result)
    _log_dataset(result)
    log_plots(result)
    model_info = _log_model(result, result.prepared.summary["frequency"])
    logged = LoggedRun(run_id=run_id, model_uri=model_info.model_uri)
    if not register:
        return logged
    version, promoted = register_and_promote(
        model_info.model_uri,
        config.tracking.registered_model_name,
        run_id=run_id,
        validation_mae=result.evaluations["validation"].overall["mae"],
    )
    return dataclasses.replace(logged, registered_version=version, promoted=promoted)


def _log_params(result: TrainResult, config: RunConfig) -> None:
    import mlflow

    spec = result.prepared.spec
    resolved = {f"resolved.hparams.{name}": value for name, value in result.hparams.items()}
    resolved.update(
        {
            "resolved.input_width": spec.input_width,
            "resolved.horizon": spec.horizon,
            "resolved.features": ",".join(spec.features),
            "resolved.targets": ",".join(spec.targets),
            "resolved.dataset": result.prepared.summary.get("dataset"),
        }
    )
    texts = {key: param_text(value) for key, value in resolved.items()}
    mlflow.log_params({**flatten(config), **texts})


def _tags(result: TrainResult, config: RunConfig) -> dict[str, str]:
    tags = {
        "model_name": result.model_name,
        "model_family": model_family(result.model_name),
        "seed": str(config.training.seed),
        "dataset": str(result.prepared.summary.get("dataset")),
    }
    for distribution, tag in (
        ("tensorflow-cpu", "tensorflow"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("mlflow", "mlflow"),
        ("pandas", "pandas"),
        ("numpy", "numpy"),
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            tags.setdefault(tag, importlib.metadata.version(distribution))
    if result.notes:
        tags["notes"] = tag_text("; ".join(result.notes))
    return tags


def _log_metrics(run_id: str, result: TrainResult) -> None:
    """Everything in batches: per-step metrics of long horizons are thousands of values."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    overall, by_step = metric_values(result)
    overall.update(
        {
            "training_seconds": result.training_seconds,
            "samples_per_second": result.samples_per_second,
            "epochs_run": float(len(result.history.get("loss", []))),
        }
    )
    if result.best_epoch is not None:
        overall["best_epoch"] = float(result.best_epoch)
    entries = _with_epoch_steps(result.history, timestamp)
    entries += [
        Metric(key, float(value), timestamp, 0)
        for key, value in overall.items()
        if math.isfinite(value)
    ]
    for key, array in by_step.items():
        entries += [
            Metric(key, float(value), timestamp, step)
            for step, value in enumerate(array.tolist(), start=1)
            if math.isfinite(value)
        ]
    client = MlflowClient()
    for first in range(0, len(entries), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[first : first + _METRICS_PER_BATCH])


def _with_epoch_steps(history: Mapping[str, list[float]], timestamp: int) -> list[Any]:
    """Per-epoch values with `step` = epoch (1-based); Keras' other metrics get `epoch_`."""
    from mlflow.entities import Metric

    entries = []
    for name, values in history.items():
        key = name if name in ("loss", "val_loss") else f"epoch_{name}"
        entries += [
            Metric(key, float(value), timestamp, epoch)
            for epoch, value in enumerate(values, start=1)
            if math.isfinite(value)
        ]
    return entries


def _log_dataset(result: TrainResult) -> None:
    import mlflow

    summary = result.prepared.summary
    targets = result.prepared.spec.targets
    with warnings.catch_warnings():
        # MLflow warns that a local path "can be interpreted in multiple ways" and that integer
        # columns cannot hold missing values; neither applies to lineage.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            result.prepared.frame,
            source=str(summary.get("source")),
            name=str(summary.get("dataset")),
            targets=targets[0] if len(targets) == 1 else None,
        )
        mlflow.log_input(dataset, context="training")


def _log_model(result: TrainResult, frequency: str) -> Any:
    from pipelines.serving.pyfunc import log_forecast_model

    prepared = result.prepared
    return log_forecast_model(
        result.model,
        prepared.scaler,
        prepared.spec,
        frequency=frequency,
        model_name=result.model_name,
        input_example=prepared.frame,
    )
