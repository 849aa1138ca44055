"""A training result written to MLflow: params, the resolved config, per-epoch losses, the
headline metrics, every metric overall and per horizon step as artifacts, plots, dataset lineage,
library versions and the pyfunc model.

Metric keys, the same for every model so runs line up in the MLflow UI's runs table and compare
view (`HEADLINE_METRICS`, a dozen, not the 160 of every combination):

- `val_<metric>` / `test_<metric>`: scaled units (what the model was fitted on), overall;
  `test_mae_original`: original units (after the inverse transform of each window's series);
- `val_skill_vs_last` / `test_skill_vs_last`: 1 - MAE / MAE of the last-value baseline on the
  same windows (above 0: better than repeating the last value);
- `val_mae_by_step`, `test_mae_by_step`: MAE per horizon step, logged with `step` = horizon step
  (1-based), so the UI charts error against lead time;
- `loss`, `val_loss` (and Keras' other metrics as `epoch_<name>`): per epoch, `step` = epoch
  (1-based, as Keras prints it). Keras' own `val_mae` is logged as `epoch_val_mae` so it does
  not mix with the final `val_mae` of the restored model;
- `training_seconds`, `samples_per_second`, `epochs_run`, `best_epoch`;
- forecast intervals (`pipelines.training.calibration`), for each level L of
  `intervals.levels`: `test_coverage_<L>` (the share of test values inside, 0 to 1) and
  `test_width_<L>` (mean width, original units), and `test_crps` (quantile-averaged CRPS,
  original units); the interval (Winkler) scores, coverage per step and the validation part's
  figures (`val_...`, on the residuals the calibration was made of) are in the artifacts.

The artifact `monitoring/reference.json` is the model's monitoring reference (validation errors
per step and target, their window-to-window spread, and the levels' hit correlation;
`pipelines.runtime.monitoring`), which `monitor` checks the scheduled forecasts against.

Every metric of the model and of the naive baselines (`baseline_last_...`,
`baseline_repeat_...`), in both unit systems, overall and per step, is in the artifacts
`metrics/overall.json` (`{key: value}`) and `metrics/by_step.csv` (a row per horizon step, a
column per key), under the keys of `metric_values`.

Params are the configuration as it was resolved for this run: the data set's catalog values and
the model's full hyper-parameters in place of the settings left to their defaults (`none`).

The dataset lineage logs the whole prepared frame through `mlflow.data.from_pandas`: MLflow
stores its schema, profile and a digest of at most its first rows, never the rows themselves,
so the cost does not grow with the data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import math
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.registry import model_family
from pipelines.config.loading import CONFIG_ARTIFACT, dump_yaml, flatten
from pipelines.config.schema import RunConfig
from pipelines.data.prepare import resolve_entry
from pipelines.runtime.monitoring import REFERENCE_ARTIFACT
from pipelines.runtime.windows import WindowSpec
from pipelines.tracking.plots import log_plots
from pipelines.tracking.registry import register_and_promote
from pipelines.tracking.runs import param_text, tag_text
from pipelines.training.evaluation import PART_PREFIXES
from pipelines.training.train import TrainResult

if TYPE_CHECKING:
    from mlflow.types import Schema

_METRICS_PER_BATCH = 1000
SKILL_BASELINE = "last"
HEADLINE_METRICS = (
    "val_mae",
    "val_mse",
    "val_rmse",
    "val_smape",
    "val_mase",
    "val_skill_vs_last",
    "test_mae",
    "test_mse",
    "test_rmse",
    "test_smape",
    "test_mase",
    "test_skill_vs_last",
    "test_mae_original",
)
"""The overall metrics logged as run metrics (every key of `metric_values` is in the artifacts)."""
INTERVAL_HEADLINE = re.compile(r"^test_(coverage_[0-9.]+|width_[0-9.]+|crps)$")
"""Interval metrics logged as run metrics: test coverage and width per level, test CRPS (the
interval scores and the validation part's figures are in the artifacts)."""
HEADLINE_STEP_METRICS = ("val_mae_by_step", "test_mae_by_step")
"""The per-step metrics logged as metric history (`step` = horizon step)."""
OVERALL_ARTIFACT = "metrics/overall.json"
BY_STEP_ARTIFACT = "metrics/by_step.csv"


def metric_values(result: TrainResult) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The run's metrics as MLflow keys: (overall values, per-step arrays for `step` = h).

    Keys: `<part>_<metric>[_original]` for the model, `baseline_<name>_<same>` for the
    baselines, `<part>_skill_vs_last`, and `<key>_by_step` for the per-step arrays (see the
    module docstring).
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
    for part, evaluation in result.interval_evaluations.items():
        key = PART_PREFIXES.get(part, part)  # test_static: beside a rolling update
        for name, values in (
            ("coverage", evaluation.coverage),
            ("width", evaluation.width),
            ("interval_score", evaluation.interval_score),
        ):
            overall.update({f"{key}_{name}_{level}": value for level, value in values.items()})
        by_step.update(
            {
                f"{key}_coverage_{level}_by_step": values
                for level, values in evaluation.coverage_by_step.items()
            }
        )
        if evaluation.crps is not None:
            overall[f"{key}_crps"] = evaluation.crps
    for part in PART_PREFIXES.values():
        overall[f"{part}_skill_vs_{SKILL_BASELINE}"] = skill(
            overall.get(f"{part}_mae", math.nan),
            overall.get(f"baseline_{SKILL_BASELINE}_{part}_mae", math.nan),
        )
    return overall, by_step


def skill(error: float, baseline_error: float) -> float:
    """1 - error / baseline_error: 0 is the baseline's error, 1 a perfect forecast; NaN when
    the baseline is perfect (no scale to compare against)."""
    if not math.isfinite(baseline_error) or baseline_error <= 0:
        return math.nan
    return 1.0 - error / baseline_error


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
    mlflow.log_text(dump_yaml(config), CONFIG_ARTIFACT)
    if result.reference is not None:
        mlflow.log_dict(result.reference.to_dict(), REFERENCE_ARTIFACT)
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

    prepared = result.prepared
    params = model_params(config, prepared.spec, prepared.summary, result.hparams)
    params["tracking.run_name"] = param_text(mlflow.active_run().info.run_name)
    mlflow.log_params(params)


TRAINING_SECTIONS = ("data", "model", "training", "tracking")
"""The config sections a training run depends on (the others belong to other jobs)."""
ENTRY_SETTINGS = (
    "timestamp_column",
    "timestamp_format",
    "value_columns",
    "sentinels",
    "max_gap",
    "fill_method",
    "duplicates",
)
"""Data settings that default to the catalog entry's value."""


def resolved_params(
    config: RunConfig, spec: WindowSpec, summary: Mapping[str, Any]
) -> dict[str, str]:
    """The training sections of `config` as MLflow params, every data setting left to its
    default replaced by the value the data was prepared with (`spec`, and the `summary` of
    `PrepareResult`)."""
    entry = resolve_entry(config.data)
    resolved: dict[str, Any] = {
        "data.dataset": summary.get("dataset"),
        "data.source": summary.get("source"),
        "data.targets": spec.targets,
        "data.features": spec.features,
        "data.input_width": spec.input_width,
        "data.horizon": spec.horizon,
        "data.frequency": summary.get("frequency"),
    }
    resolved.update({f"data.{name}": getattr(entry, name) for name in ENTRY_SETTINGS})
    params = {
        key: value
        for key, value in flatten(config).items()
        if key.split(".", 1)[0] in TRAINING_SECTIONS
    }
    for key, value in resolved.items():
        if value is not None and params.get(key, "none") == "none":
            params[key] = param_text(value)
    return params


def model_params(
    config: RunConfig, spec: WindowSpec, summary: Mapping[str, Any], hparams: Mapping[str, Any]
) -> dict[str, str]:
    """`resolved_params` of one model's run, with the hyper-parameters it was built with."""
    params = resolved_params(config, spec, summary)
    params.update({f"model.hparams.{name}": param_text(value) for name, value in hparams.items()})
    return params


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
    """The headline metrics as run metrics, in batches (per-step values of long horizons are
    hundreds), and every metric as the two artifacts."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    every_overall, every_by_step = metric_values(result)
    mlflow.log_dict(
        {key: value if math.isfinite(value) else None for key, value in every_overall.items()},
        OVERALL_ARTIFACT,
    )
    steps = pd.DataFrame(every_by_step)
    steps.insert(0, "step", np.arange(1, len(steps) + 1))
    mlflow.log_text(steps.to_csv(index=False), BY_STEP_ARTIFACT)
    overall = {
        key: value
        for key, value in every_overall.items()
        if key in HEADLINE_METRICS or INTERVAL_HEADLINE.match(key)
    }
    by_step = {key: every_by_step[key] for key in HEADLINE_STEP_METRICS if key in every_by_step}
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
        dataset.schema = dataset_schema(result.prepared.frame)
        mlflow.log_input(dataset, context="training")


def dataset_schema(frame: pd.DataFrame) -> Schema:
    """The schema MLflow infers for `frame` (not empty) as a dataset, read from a few rows.

    MLflow looks at every value in Python to learn whether a column has missing values
    (4-5 s for Weather's 52,000 x 22, on every training run). A column with a dtype of its own
    (numbers, dates, strings, categories) has one type, found on its first value that is not
    missing, and the flag, found on its first missing value; Python-object columns can mix
    types, so a frame with one is left to MLflow's full reading.
    """
    import mlflow

    if any(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes):
        return mlflow.data.from_pandas(frame).schema
    missing = frame.isna()
    rows = {0}
    for _, column in missing.items():
        rows.add(int(np.argmax(column)))  # the first missing value (row 0 when none is)
        rows.add(int(np.argmax(~column)))  # the first value present
    return mlflow.data.from_pandas(frame.iloc[sorted(rows)]).schema


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
        calibration=result.calibration,
    )
