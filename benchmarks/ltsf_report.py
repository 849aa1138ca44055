"""The tables and the JSON of `ltsf.py`: one row per run, the spread over seeds, the intervals."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
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
    """Per level: coverage, the lowest and highest coverage of a horizon step and the mean
    width (scaled units) of the calibration scored (rolling), then the static one's coverage and
    width beside; the CRPS of both; ProbTS's CRPS and NMAE where `--probts` asked for them."""
    levels = sorted({level for r in results for level in (r.coverage or {})}, key=float)
    header = "".join(
        f" cov {level} | steps {level} | width {level} | static cov {level} | static width "
        f"{level} |"
        for level in levels
    )
    lines = [
        f"| model | H | seed |{header} CRPS | static CRPS | ProbTS CRPS | ProbTS static CRPS | "
        "ProbTS NMAE |",
        "|---|---|---|" + "---|---|---|---|---|" * len(levels) + "---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r.horizon, r.model, r.variant, r.seed)):
        static = r.static or {}
        cells = ""
        for level in levels:
            low, high = (r.coverage_steps or {}).get(level, (math.nan, math.nan))
            static_cov = static.get("coverage", {}).get(level, math.nan)
            static_width = static.get("width", {}).get(level, math.nan)
            cells += (
                f" {r.coverage[level]:.1%} | {low:.1%}-{high:.1%} | {r.width[level]:.3f} | "
                f"{_figure(static_cov, '{:.1%}')} | {_figure(static_width, '{:.3f}')} |"
            )
        figures = " | ".join(
            _figure(value, "{:.4f}")
            for value in (
                r.crps,
                static.get("crps"),
                r.probts_crps,
                r.probts_crps_static,
                r.probts_nmae,
            )
        )
        lines.append(f"| {label(r.model, r.variant)} | {r.horizon} | {r.seed} |{cells} {figures} |")
    return "\n".join(lines)


def _figure(value: float | None, pattern: str) -> str:
    return "-" if value is None or math.isnan(value) else pattern.format(value)


def interval_fields(scores: Any) -> dict[str, Any]:
    """A `Result`'s interval fields from an `IntervalEvaluation` (scaled units)."""
    return {
        "coverage": scores.coverage,
        "width": scores.width_scaled,
        "crps": scores.crps_scaled,
        "coverage_steps": {
            level: [float(by_step.min()), float(by_step.max())]
            for level, by_step in scores.coverage_by_step.items()
        },
    }


def hide_test_figures(result: Result) -> Result:
    """`--validation-only`: every test figure left out."""
    return replace(
        result,
        mse=math.nan,
        mae=math.nan,
        coverage=None,
        width=None,
        crps=None,
        coverage_steps=None,
        static=None,
        probts_crps=None,
        probts_nmae=None,
        probts_crps_static=None,
    )
