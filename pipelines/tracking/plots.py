"""Figures logged as PNG artifacts: forecasts against actuals, error and interval coverage by
horizon step; and the fan chart of a forecast with its intervals (notebook 04, the README).

The figures are `matplotlib.figure.Figure` objects, never pyplot's: logging one neither needs
a display nor switches the backend of a notebook or program that called us.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.runtime.contract import TIMESTAMP_COLUMN
from pipelines.runtime.intervals import DEFAULT_LEVELS, interval_column
from pipelines.training.evaluation import ForecastSample
from pipelines.training.train import TrainResult


def log_plots(result: TrainResult) -> None:
    import mlflow

    figures = [
        (_forecast_figure(result.sample, result.model_name), "plots/forecast_vs_actual.png"),
        (_horizon_error_figure(result), "plots/error_by_horizon.png"),
    ]
    if "test" in result.interval_evaluations:
        figures.append((_coverage_figure(result), "plots/coverage_by_step.png"))
    for figure, path in figures:
        mlflow.log_figure(figure, path)


def _forecast_figure(sample: ForecastSample, model_name: str) -> Any:
    from matplotlib.figure import Figure

    windows = len(sample.series_ids)
    figure = Figure(figsize=(9, 2.4 * windows))
    axes = figure.subplots(windows, 1, squeeze=False)
    target = sample.targets[0]
    for index, axis in enumerate(axes[:, 0]):
        axis.plot(
            sample.input_timestamps[index],
            sample.history[index, :, 0],
            color="grey",
            label="history",
        )
        axis.plot(
            sample.target_timestamps[index],
            sample.actual[index, :, 0],
            color="black",
            marker=".",
            label="actual",
        )
        axis.plot(
            sample.target_timestamps[index],
            sample.forecast[index, :, 0],
            color="tab:blue",
            marker=".",
            label=model_name,
        )
        axis.set_title(f"{sample.series_ids[index]}: {target}", fontsize=9)
        axis.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    figure.suptitle("Forecast vs actual (test windows, original units)")
    figure.tight_layout()
    return figure


def _horizon_error_figure(result: TrainResult) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    lines = {result.model_name: result.evaluations["test"]}
    lines.update(
        {f"baseline {name}": parts["test"] for name, parts in result.baseline_evaluations.items()}
    )
    for label, evaluation in lines.items():
        values = evaluation.by_step_original["mae"]
        axis.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
    axis.set_xlabel("horizon step")
    axis.set_ylabel("test MAE (original units)")
    axis.set_title("Test error by horizon step")
    axis.legend()
    figure.tight_layout()
    return figure


def _coverage_figure(result: TrainResult) -> Any:
    """Test coverage of each interval level per horizon step, beside its nominal level."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    coverage = result.interval_evaluations["test"].coverage_by_step
    for index, (level, values) in enumerate(coverage.items()):
        color = f"C{index}"
        steps = np.arange(1, len(values) + 1)
        axis.plot(steps, 100 * values, marker=".", color=color, label=f"{level}% interval")
        axis.axhline(float(level), color=color, linestyle=":", linewidth=1)
    axis.set_xlabel("horizon step")
    axis.set_ylabel("test coverage (%)")
    axis.set_title("Interval coverage by horizon step (dotted: nominal)")
    axis.legend()
    figure.tight_layout()
    return figure


def fan_chart(
    axis: Any,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    target: str,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    *,
    actual: pd.DataFrame | None = None,
) -> None:
    """Draws a forecast with its intervals shaded, widest palest, after the history it came
    from, on a Matplotlib `axis` (a notebook's pyplot axes or a logged figure's).

    Args:
        axis: where to draw.
        history: `timestamp` and `target` columns up to the forecast's start.
        forecast: one series' forecast rows: `timestamp`, `target` and its bounds at `levels`
            (`<target>_lo_<level>`, `<target>_hi_<level>`), as the logged model writes them.
        target: the column to draw.
        levels: the interval levels to shade (each must have its two columns in `forecast`).
        actual: `timestamp` and `target` of what happened after, when known.
    """
    axis.plot(history[TIMESTAMP_COLUMN], history[target], color="black", label="history")
    times = forecast[TIMESTAMP_COLUMN]
    for rank, level in enumerate(sorted(levels, reverse=True)):
        axis.fill_between(
            times,
            forecast[interval_column(target, "lo", level)],
            forecast[interval_column(target, "hi", level)],
            color="tab:blue",
            alpha=0.15 + 0.15 * rank,
            linewidth=0,
            label=f"{level:g}% interval",
        )
    axis.plot(times, forecast[target], color="tab:blue", marker=".", label="forecast")
    if actual is not None:
        axis.plot(
            actual[TIMESTAMP_COLUMN],
            actual[target],
            color="black",
            marker="o",
            markersize=3,
            linestyle="--",
            label="actual",
        )
    axis.set_ylabel(target)
    axis.legend(fontsize=7, loc="upper left")
    axis.figure.autofmt_xdate()
    axis.figure.tight_layout()
