"""The tables and the JSON of `ltsf.py`: one row per run, the spread over seeds, the intervals."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ltsf import Result

REPEAT = "repeat"
"""The harness's name of the LTSF "Repeat" baseline, the reference of `format_table`."""


def format_table(results: list[Result]) -> str:
    """Model x horizon, with each model's test MSE against the repeat baseline's."""
    repeat = {r.horizon: r.mse for r in results if r.model == REPEAT}
    lines = [
        "| model | H | seed | test MSE | test MAE | val MSE | vs repeat | windows | epochs "
        "| params | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r.horizon, r.model != REPEAT, r.model)):
        ratio = r.mse / repeat[r.horizon] if r.horizon in repeat else math.nan
        ratio_text = "-" if math.isnan(ratio) else f"{ratio:.3f}x"
        lines.append(
            f"| {label(r.model, r.variant)} | {r.horizon} | {r.seed} | {r.mse:.4f} | "
            f"{r.mae:.4f} | {r.validation_mse:.4f} | {ratio_text} | {r.windows:,} | {r.epochs} | "
            f"{r.parameters:,} | {r.train_seconds:.0f} |"
        )
    return "\n".join(lines)


def label(model: str, variant: str) -> str:
    return f"{model} ({variant})" if variant else model


def seed_summary(results: list[Result]) -> list[dict[str, Any]]:
    """Per model, variant and horizon: the mean and sample standard deviation over seeds of
    the test and validation MSE, the test MAE and the training seconds."""
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for result in results:
        groups.setdefault((result.model, result.variant, result.horizon), []).append(result)
    summary = []
    for (model, variant, horizon), group in groups.items():
        row: dict[str, Any] = {
            "model": model,
            "variant": variant,
            "horizon": horizon,
            "seeds": [r.seed for r in group],
        }
        for key in ("mse", "mae", "validation_mse", "train_seconds"):
            values = [getattr(r, key) for r in group]
            if any(math.isnan(value) for value in values):  # hidden by --validation-only
                row[key] = row[f"{key}_std"] = math.nan
                continue
            row[key] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(row)
    return summary


def format_seed_summary(summary: list[dict[str, Any]]) -> str:
    """`seed_summary` as a table: mean ± sample standard deviation over the seeds."""
    lines = [
        "| model | H | seeds | test MSE | test MAE | val MSE | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(summary, key=lambda row: (row["horizon"], row["model"], row["variant"])):
        seeds = ",".join(map(str, row["seeds"]))
        lines.append(
            f"| {label(row['model'], row['variant'])} | {row['horizon']} | {seeds} | "
            f"{row['mse']:.4f} ± {row['mse_std']:.4f} | {row['mae']:.4f} ± {row['mae_std']:.4f} "
            f"| {row['validation_mse']:.4f} ± {row['validation_mse_std']:.4f} | "
            f"{row['train_seconds']:.0f} ± {row['train_seconds_std']:.0f} |"
        )
    return "\n".join(lines)


def nan_as_null(value: Any) -> Any:
    """JSON has no NaN: the figures `--validation-only` hides become null."""
    if isinstance(value, dict):
        return {key: nan_as_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nan_as_null(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def format_interval_table(results: list[Result]) -> str:
    """Coverage and width of each interval level and the CRPS, scaled units (`--levels`)."""
    levels = sorted({level for r in results for level in (r.coverage or {})}, key=float)
    header = "".join(f" cov {level} | width {level} |" for level in levels)
    lines = [
        f"| model | H | seed |{header} CRPS |",
        "|---|---|---|" + "---|---|" * len(levels) + "---|",
    ]
    for r in sorted(results, key=lambda r: (r.horizon, r.model, r.variant, r.seed)):
        cells = "".join(f" {r.coverage[level]:.1%} | {r.width[level]:.3f} |" for level in levels)
        crps = "-" if r.crps is None or math.isnan(r.crps) else f"{r.crps:.4f}"
        lines.append(f"| {label(r.model, r.variant)} | {r.horizon} | {r.seed} |{cells} {crps} |")
    return "\n".join(lines)
