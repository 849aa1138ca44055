"""Figures logged as PNG artifacts: forecasts against actuals and error by horizon step.

The figures are `matplotlib.figure.Figure` objects, never pyplot's: logging one neither needs
a display nor switches the backend of a notebook or program that called us.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.training.evaluation import ForecastSample
from pipelines.training.train import TrainResult


def log_plots(result: TrainResult) -> None:
    import mlflow

    for figure, path in (
        (_forecast_figure(result.sample, result.model_name), "plots/forecast_vs_actual.png"),
        (_horizon_error_figure(result), "plots/error_by_horizon.png"),
    ):
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
