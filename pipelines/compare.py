"""Comparison pipeline: one parent MLflow run, one nested child run per model.

Usage:
    python -m pipelines.compare                                   # the default models
    python -m pipelines.compare --models last,dense,lstm --epochs 3
    python -m pipelines.compare --config configs/weather-ltsf.yaml --set model.hparams.units=16

- `compare_models(config)` prepares the data once and, for every model of
  `config.model.models` (baselines included), trains it with `train.train_model` on those same
  windows and the same seed, and logs it with `train.log_training_run` to a nested child run, so
  every child has the same metric keys and the UI's compare view lines them up. The parent gets
  the summary table (`comparison.csv`, `comparison.md`), a bar chart (`comparison.png`), the
  metric `best_val_mae` and the tag `best_model`.
- `main(argv)` is the CLI: a bad configuration is one `error: ...` line and exit status 2 before
  any run; a model that fails ends its child FAILED with an `error` tag, the others go on, and
  the exit status is 1 at the end; Ctrl-C ends the current child and the parent KILLED.

Decisions:
    - Children do not register their models: only the best child by `train.SELECTION_METRIC`
      (validation, lower is better; ties keep the earlier model) gets a version, and the
      `champion` alias moves by `train.update_champion`'s rule. Test metrics never choose.
    - Children log with `register=False`; the best one is registered afterwards through
      `train.register_and_promote`, the same path a `train` run takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import pandas as pd

from pipelines import train
from pipelines.config import ConfigError, RunConfig, dump_yaml, flatten
from pipelines.prepare import PrepareResult
from pipelines.prepare import run as prepare_data
from pipelines.train import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    SELECTION_METRIC,
    log_training_run,
    metric_values,
    model_family,
    register_and_promote,
    train_model,
)
from pipelines.validate import DataValidationError

__all__ = [
    "SUMMARY_COLUMNS",
    "ComparisonResult",
    "ModelOutcome",
    "build_parser",
    "compare_models",
    "main",
    "model_configs",
    "read_config",
    "summary_table",
    "summary_text",
    "variant",
]

FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"
SUMMARY_METRICS = (
    "val_mae",
    "val_rmse",
    "val_smape",
    "val_mase",
    "test_mae",
    "test_rmse",
    "test_smape",
    "test_mase",
    "test_mae_original",
)
"""Metric keys of `train.metric_values` copied into the summary (scaled units unless noted)."""
SUMMARY_COLUMNS = (
    "model",
    "family",
    "variant",
    "status",
    *SUMMARY_METRICS,
    "training_seconds",
    "best_epoch",
    "run_id",
    "error",
)
VARIANT_KEYS = (
    "normalization",
    "affine",
    "lookback",
    "season",
    "peepholes",
    "coupled_input_forget",
    "teacher_forcing",
)
"""Hyper-parameters that name a model's variant (sizes such as `units` are not variants)."""
VARIANT_DEFAULT = "default"
MODEL_ARTIFACT = "model"
"""Name under which `log_training_run` logs each child's model (pyfunc's default)."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class ModelOutcome:
    """What one child run produced.

    Attributes:
        name: the zoo name.
        family: `train.model_family(name)`.
        variant: compact variant string (see `variant`).
        status: `FINISHED` or `FAILED`.
        run_id: the child run's id.
        metrics: the `SUMMARY_METRICS` that were computed (empty when the model failed).
        training_seconds: wall time of `fit` (NaN when the model failed).
        best_epoch: 1-based epoch whose weights were kept; None for baselines and failures.
        error: `Type: message` of the failure, else None.
        model_uri: `models:/<model id>` of the logged (not registered) model, else None.
    """

    name: str
    family: str
    variant: str
    status: str
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    training_seconds: float = math.nan
    best_epoch: int | None = None
    error: str | None = None
    model_uri: str | None = None


@dataclass
class ComparisonResult:
    """Everything a comparison produced.

    Attributes:
        parent_run_id: the parent run.
        outcomes: one per model, in `config.model.models` order.
        best_model: the finished model with the lowest `SELECTION_METRIC`, None if none finished.
        registered_version: the model version registered for `best_model`, else None.
        promoted: whether that version became the champion.
    """

    parent_run_id: str
    outcomes: list[ModelOutcome]
    best_model: str | None = None
    registered_version: str | None = None
    promoted: bool = False

    @property
    def failed(self) -> list[str]:
        """Names of the models whose child run failed."""
        return [outcome.name for outcome in self.outcomes if outcome.status != FINISHED]

    def table(self) -> pd.DataFrame:
        """The summary table, one row per model (`SUMMARY_COLUMNS`)."""
        return summary_table(self.outcomes)


# --------------------------------------------------------------------------------------------
# Configuration of the children


def variant(hparams: dict[str, Any]) -> str:
    """A compact, stable description of a model's variant from its resolved hyper-parameters.

    Example:
        >>> variant({"units": 32, "normalization": "revin", "peepholes": ("input", "forget")})
        'normalization=revin;peepholes=input+forget'
    """
    parts = [f"{key}={_compact(hparams[key])}" for key in VARIANT_KEYS if key in hparams]
    return ";".join(parts) or VARIANT_DEFAULT


def _compact(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "+".join(_compact(item) for item in value) or "none"
    return str(value)


def model_configs(config: RunConfig) -> dict[str, RunConfig]:
    """One training config per compared model: `model.name` set and its hyper-parameters
    resolved with `hparams_for(name)`; data, training (seed included) and tracking shared.

    Raises:
        ConfigError: a shared hyper-parameter has a value one of the models rejects.
    """
    return {
        name: dataclasses.replace(
            config,
            model=dataclasses.replace(
                config.model, name=name, hparams=config.model.hparams_for(name)
            ),
        )
        for name in config.model.models
    }


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
        prepared = prepare_data(config.data.to_prepare_config())
    with train.tracked_run(config) as parent:
        parent_run_id = parent.info.run_id
        mlflow.log_params(flatten(config))
        mlflow.log_text(dump_yaml(config), "config.yaml")
        outcomes = [_run_child(name, child, prepared) for name, child in configs.items()]
        _align_metric_keys(outcomes)
        result = ComparisonResult(parent_run_id=parent_run_id, outcomes=outcomes)
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
        with train.error_tagged():
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
    """The finished outcome with the lowest `SELECTION_METRIC`; ties keep the earlier one."""
    candidates = [
        outcome
        for outcome in outcomes
        if outcome.status == FINISHED
        and math.isfinite(outcome.metrics.get(SELECTION_METRIC, math.nan))
    ]
    return min(candidates, key=lambda outcome: outcome.metrics[SELECTION_METRIC], default=None)


def _register_best(result: ComparisonResult, registered_model_name: str) -> None:
    """Registers the best child's model and moves the champion alias by train's rule."""
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


# --------------------------------------------------------------------------------------------
# The summary


def summary_table(outcomes: Sequence[ModelOutcome]) -> pd.DataFrame:
    """One row per model with `SUMMARY_COLUMNS`; metrics a model lacks are NaN."""
    rows = [
        {
            "model": outcome.name,
            "family": outcome.family,
            "variant": outcome.variant,
            "status": outcome.status.lower(),
            **{key: outcome.metrics.get(key, math.nan) for key in SUMMARY_METRICS},
            "training_seconds": outcome.training_seconds,
            "best_epoch": outcome.best_epoch,
            "run_id": outcome.run_id,
            "error": outcome.error or "",
        }
        for outcome in outcomes
    ]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).astype({"best_epoch": "Int64"})


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' `to_markdown` would need `tabulate`)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        cells = [_cell(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _log_summary(result: ComparisonResult) -> None:
    """Table, chart, `best_val_mae` and `best_model` on the (active) parent run."""
    import mlflow

    table = result.table()
    # repr-precision floats: the CSV reads back to exactly the children's logged values.
    mlflow.log_text(table.to_csv(index=False), "comparison.csv")
    mlflow.log_text(markdown_table(table), "comparison.md")
    _log_chart(table)
    best = next((item for item in result.outcomes if item.name == result.best_model), None)
    tags = {"best_model": result.best_model or "none", "failed_models": ",".join(result.failed)}
    if result.registered_version is not None:
        tags["registered_version"] = result.registered_version
    mlflow.set_tags(tags)
    if best is not None:
        mlflow.log_metric(f"best_{SELECTION_METRIC}", best.metrics[SELECTION_METRIC])


def _log_chart(table: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: the figure only becomes a PNG artifact
    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np

    positions = np.arange(len(table))
    figure, axis = plt.subplots(figsize=(max(5.0, 1.2 * len(table)), 4))
    try:
        for offset, (column, label) in enumerate((("val_mae", "validation"), ("test_mae", "test"))):
            axis.bar(positions + (offset - 0.5) * 0.4, table[column], width=0.4, label=label)
        labels = [
            f"{name}\n({family})" for name, family in zip(table.model, table.family, strict=True)
        ]
        axis.set_xticks(positions, labels)
        axis.set_ylabel("MAE (scaled units)")
        axis.set_title("Validation and test MAE per model (failed models are empty)")
        axis.legend()
        figure.tight_layout()
        mlflow.log_figure(figure, "comparison.png")
    finally:
        plt.close(figure)


def summary_text(result: ComparisonResult) -> str:
    columns = ["model", "family", "status", "val_mae", "test_mae", "test_mae_original"]
    lines = [markdown_table(result.table()[columns]).rstrip()]
    if result.best_model is not None:
        lines.append(
            f"best: {result.best_model} (version {result.registered_version}, "
            f"champion: {'yes' if result.promoted else 'no'}); parent run {result.parent_run_id}"
        )
    if result.failed:
        lines.append(f"failed: {', '.join(result.failed)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    """Train's parser (same flat options) plus `--models`."""
    parser = train.build_parser()
    parser.prog = "python -m pipelines.compare"
    parser.description = (
        "Train and compare several zoo models (baselines included) on the same windows, one "
        "nested MLflow run per model under a parent run; register the best on validation."
    )
    parser.add_argument("--models", help="comma-separated zoo models; sets model.models")
    return parser


def read_config(arguments: argparse.Namespace) -> RunConfig:
    # Prepended so that an explicit `--set model.models=...` still wins, as --set does in train.
    if arguments.models is not None and arguments.models.strip():
        arguments.assignments = [f"model.models={arguments.models}", *arguments.assignments]
    return train.read_config(arguments)


def main(argv: Sequence[str] | None = None) -> int:
    """The `compare` entry point.

    Returns:
        0 when every model finished; `EXIT_BAD_INPUT` (2) for a bad configuration or bad data
        (one `error:` line on stderr, no run started); `EXIT_FAILED` (1) when a model failed
        (its child run is FAILED with an `error` tag; the summary is still written) or the
        comparison itself raised.

    Raises:
        KeyboardInterrupt: after marking the runs KILLED (the shell sees status 130).
    """
    arguments = build_parser().parse_args(argv)
    try:
        config = read_config(arguments)
        configs = model_configs(config)
        prepared = prepare_data(config.data.to_prepare_config())
    except (ConfigError, DataValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        result = compare_models(config, prepared, configs)
    except Exception as error:
        traceback.print_exc()
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(summary_text(result))
    if result.failed:
        print(f"error: {len(result.failed)} model(s) failed", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
