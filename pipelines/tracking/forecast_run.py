"""A batch forecast recorded as an MLflow run in the `forecasts` experiment: params, data
freshness and duration, the skipped series and the partition's metadata document."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.config.schema import RunConfig
from pipelines.serving.batch import ForecastResult
from pipelines.tracking.runs import param_text, tag_text

if TYPE_CHECKING:
    pass


def log_forecast_run(result: ForecastResult, config: RunConfig, *, exit_code: int) -> str:
    """Logs one forecast to the active run (params, metrics, tags, JSON artifacts).

    Args:
        result: what `pipelines.serving.batch.run` returned.
        config: the forecast's settings.
        exit_code: the command's exit code, recorded as the tag `exit_code`.

    Returns:
        The run id.
    """
    import mlflow

    run = mlflow.active_run() or mlflow.start_run()
    document = result.metadata
    mlflow.log_params(
        {
            "model_uri": result.model.uri,
            "model_name": result.model.name,
            "model_version": result.model.version,
            "model_run_id": result.model.run_id,
            "as_of": result.as_of.isoformat(),
            "output": str(Path(config.forecast.output).resolve()),
            "partition": str(result.partition),
            "series_requested": ",".join(config.forecast.series)
            if config.forecast.series
            else "all",
            "dataset": str(document.get("dataset")),
            "source": param_text(document.get("source")),
            "outcome": result.outcome,
            "lock_timeout": f"{config.forecast.lock_timeout:g}",
            "replace": str(config.forecast.replace).lower(),
        }
    )
    now = pd.Timestamp.now(tz="UTC")
    mlflow.log_metrics(
        {
            "rows": float(len(result.frame)),
            "series_forecast": float(len(document.get("series_forecast", []))),
            "series_skipped": float(len(result.skipped)),
            "data_freshness_seconds": float((now - result.as_of).total_seconds()),
            "duration_seconds": float(result.seconds),
        }
    )
    skipped_names = ",".join(item.series_id for item in result.skipped)
    mlflow.set_tags(
        {
            "outcome": result.outcome,
            "exit_code": str(exit_code),
            "skipped_series": tag_text(skipped_names) or "none",
        }
    )
    skipped = [dataclasses.asdict(item) for item in result.skipped]
    mlflow.log_dict({"skipped": skipped}, "skipped_series.json")
    mlflow.log_dict(document, "forecast_metadata.json")
    return run.info.run_id
