"""Comparison of several models on the same windows: one training config per model, and the
summary table of their outcomes. Pure: training and logging each child is
`pipelines.tracking.comparison`'s job, the command line `pipelines.cli.compare`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipelines.config.schema import RunConfig

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
"""Keys of `pipelines.tracking.training_run.metric_values` in the summary (scaled units unless
noted)."""
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
    "periods",
    "teacher_forcing",
)
"""Hyper-parameters that name a model's variant (sizes such as `units` are not variants)."""
VARIANT_DEFAULT = "default"


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class ModelOutcome:
    """What one child run produced.

    Attributes:
        name: the zoo name.
        family: `models.registry.model_family(name)`.
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
        experiment_id: the experiment it was logged to.
        outcomes: one per model, in `config.model.models` order.
        best_model: the finished model with the lowest `SELECTION_METRIC`, None if none finished.
        registered_version: the model version registered for `best_model`, else None.
        promoted: whether that version became the champion.
    """

    parent_run_id: str
    experiment_id: str
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
        name: config.model_copy(
            update={
                "model": config.model.model_copy(
                    update={"name": name, "hparams": config.model.hparams_for(name)}
                )
            }
        )
        for name in config.model.models
    }


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
