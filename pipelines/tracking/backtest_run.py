"""A backtest in MLflow: one parent run, one nested run per model.

Each child holds the model's per-fold metrics as metric history (`step` = fold, so the UI
charts error by fold), their mean and spread over the folds (`mean_mae`, `std_mae`, ...),
a plot of error by fold, a plot of forecasts against actuals across the folds and
`forecasts.csv` with every fold's forecasts. The parent holds the configuration, the folds
(`folds.csv`), the summary table (`backtest.csv`, `backtest.md`, and the run's description),
and the error-by-fold plot of every model together.
"""

from __future__ import annotations

import time

import pandas as pd
from matplotlib.figure import Figure  # not pyplot: a caller's backend stays as it was

from models.registry import model_family
from pipelines.config.loading import CONFIG_ARTIFACT, dump_yaml, flatten
from pipelines.config.schema import RunConfig
from pipelines.runtime.contract import SERIES_COLUMN, TIMESTAMP_COLUMN
from pipelines.tracking.runs import run_for, tag_text
from pipelines.tracking.training_run import model_params, resolved_params
from pipelines.training.backtest import BacktestResult, ModelBacktest, backtest_models
from pipelines.training.compare import markdown_table

PLOTTED_SERIES = 3
"""Series shown in the forecasts-against-actuals plot (the first ones, by id)."""


def log_backtest(result: BacktestResult, config: RunConfig) -> str:
    """Logs the parent run and one nested run per model; returns the parent's run id."""
    import mlflow

    with run_for(config, "backtest") as parent:
        backtest_settings = {
            key: value for key, value in flatten(config).items() if key.startswith("backtest.")
        }
        mlflow.log_params(
            {**resolved_params(config, result.spec, result.data_summary), **backtest_settings}
        )
        mlflow.log_text(dump_yaml(config), CONFIG_ARTIFACT)
        mlflow.set_tags(
            {
                "kind": "backtest",
                "dataset": result.dataset,
                "folds": str(len(result.folds)),
                **({"notes": tag_text("; ".join(result.notes))} if result.notes else {}),
            }
        )
        configs = backtest_models(config)
        for model in result.models.values():
            _log_model(model, configs[model.name], result)
        table = result.summary()
        mlflow.log_text(table.to_csv(index=False), "backtest.csv")
        mlflow.log_text(markdown_table(table), "backtest.md")
        mlflow.set_tag("mlflow.note.content", tag_text(markdown_table(table)))
        mlflow.log_text(_folds_frame(result).to_csv(index=False), "folds.csv")
        mlflow.log_figure(_error_by_fold_figure(list(result.models.values())), "error_by_fold.png")
        return parent.info.run_id


def _folds_frame(result: BacktestResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "fold": fold.index,
                "origin": fold.origin.isoformat(),
                "training_start": fold.training_start.isoformat() if fold.training_start else "",
                "refit": fold.refit,
            }
            for fold in result.folds
        ]
    )


def _log_model(model: ModelBacktest, config: RunConfig, result: BacktestResult) -> None:
    import mlflow
    from mlflow.entities import Metric

    with mlflow.start_run(
        nested=True,
        run_name=model.name,
        tags={"model_name": model.name, "model_family": model_family(model.name)},
    ) as run:
        # A training run's params, so that backtests and comparisons line up in the UI.
        params = model_params(config, result.spec, result.data_summary, model.hparams)
        params["tracking.run_name"] = model.name
        mlflow.log_params(params)
        timestamp = int(time.time() * 1000)
        history = [
            Metric(f"fold_{name}", value, timestamp, score.fold)
            for score in model.scores
            for name, value in score.metrics.items()
        ]
        history += [
            Metric("fold_train_seconds", score.train_seconds, timestamp, score.fold)
            for score in model.scores
        ]
        history += [Metric(name, value, timestamp, 0) for name, value in model.aggregate().items()]
        mlflow.MlflowClient().log_batch(run.info.run_id, metrics=history)
        forecasts = model.forecast_frame()
        mlflow.log_text(forecasts.to_csv(index=False), "forecasts.csv")
        mlflow.log_figure(_error_by_fold_figure([model]), "plots/error_by_fold.png")
        mlflow.log_figure(_forecast_figure(forecasts, model.name), "plots/forecasts_vs_actuals.png")


def _error_by_fold_figure(models: list[ModelBacktest]) -> Figure:
    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    for model in models:
        folds = [score.fold for score in model.scores]
        axis.plot(
            folds, [score.metrics["mae"] for score in model.scores], marker="o", label=model.name
        )
    axis.set_xlabel("fold")
    axis.set_ylabel("MAE (scaled units)")
    axis.set_title("Error by fold")
    axis.legend()
    figure.tight_layout()
    return figure


def _forecast_figure(forecasts: pd.DataFrame, model_name: str) -> Figure:
    target = forecasts["target"].iloc[0]
    rows = forecasts[forecasts["target"] == target]
    series_ids = sorted(rows[SERIES_COLUMN].unique())[:PLOTTED_SERIES]
    figure = Figure(figsize=(10, 2.6 * len(series_ids)))
    axes = figure.subplots(len(series_ids), 1, squeeze=False)
    for axis, series_id in zip(axes[:, 0], series_ids, strict=True):
        series = rows[rows[SERIES_COLUMN] == series_id].sort_values(TIMESTAMP_COLUMN)
        for fold, part in series.groupby("fold"):
            axis.plot(part[TIMESTAMP_COLUMN], part["actual"], color="black", linewidth=1)
            axis.plot(part[TIMESTAMP_COLUMN], part["forecast"], color=f"C{fold % 10}", marker=".")
        axis.set_title(f"{model_name}: {series_id}, {target} (black: actual; colour: fold)")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
