"""The default job (`mlflow run .`): prepare -> compare -> register the best -> forecast.

Usage:
    python -m pipelines.cli.main                             # default models, embedded data set
    python -m pipelines.cli.main --models last,lstm --epochs 5 --forecast-output /tmp/forecasts

One MLflow run (the one `mlflow run` started, or a new one) holds the comparison: its params,
summary table and chart, and one nested child run per model. The steps are chained through
MLflow URIs, as MLflow's multi-step workflow does:

1. **prepare**: the prepared data set is the `prepared/` artifact of a prepare run. A FINISHED
   prepare run with the same inputs (settings, source content and preparation code; see
   `pipelines.tracking.lineage`) is reused; otherwise the data are prepared and logged in a new run
   nested under this one. The main run records `prepared_uri` (`runs:/<id>/prepared`).
2. **compare**: every model is trained on the data read back from that URI; the best child on
   validation is registered and becomes `champion` if it beats the current one.
3. **forecast**: `models:/<registered name>@champion` forecasts every series from the last
   rows of the same data set into `<forecast_output>/as_of=<time>/forecast.parquet`, logged
   as a run in the `forecasts` experiment whose parent tag is this run.

Exit status: 0 when every step succeeded, 2 for bad input (one `error:` line, before any run
for a bad configuration), 1 when a model failed (the others still ran, the champion and the
forecast still came from the best finished one) or a step raised.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_OK,
    report_bad_input,
    report_failure,
)
from pipelines.cli.forecast import forecast_exit_code
from pipelines.config.options import read_config
from pipelines.config.schema import RunConfig
from pipelines.runtime.contract import DataValidationError
from pipelines.serving import batch as forecast
from pipelines.serving.partitions import FORECAST_FILE
from pipelines.settings import ConfigError
from pipelines.tracking import lineage
from pipelines.tracking.comparison import compare_models
from pipelines.tracking.forecast_run import log_forecast_run
from pipelines.tracking.runs import default_run_name, run_for, use_experiment
from pipelines.tracking.views import where_to_look
from pipelines.training.compare import ComparisonResult, model_configs, summary_text

__all__ = ["MainResult", "main", "run"]

MAIN_STEP = "main"


@dataclass(frozen=True)
class MainResult:
    """What the default job produced.

    Attributes:
        run_id: the main run (the comparison's parent).
        prepared: the prepared data and the prepare run they came from.
        comparison: every model's outcome, the best one and its registered version.
        forecast: the champion's forecast, or None when no model finished.
    """

    run_id: str
    prepared: lineage.PreparedData
    comparison: ComparisonResult
    forecast: forecast.ForecastResult | None

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.comparison.failed else EXIT_OK


def run(config: RunConfig) -> MainResult:
    """Runs the three steps in one MLflow run (see the module docstring).

    Raises:
        ConfigError: the models' hyper-parameters do not fit (before any run).
        DataValidationError: the data cannot be read or prepared.
    """
    import mlflow

    configs = model_configs(config)
    with run_for(config, "compare") as main_run:
        run_id = main_run.info.run_id
        mlflow.set_tag(lineage.STEP_TAG, MAIN_STEP)
        prepared = lineage.prepared_data(config.data)
        mlflow.set_tags(
            {
                "prepare_run_id": prepared.run_id,
                "prepared_uri": prepared.uri,
                "prepare_reused": str(prepared.reused).lower(),
            }
        )
        comparison = compare_models(config, prepared.result, configs)
        result = None
        if comparison.best_model is not None:
            result = _forecast(config, run_id)
    return MainResult(run_id, prepared, comparison, result)


def _forecast(config: RunConfig, parent_run_id: str) -> forecast.ForecastResult:
    """The champion's forecast from the same data set, logged in the forecast experiment."""
    import mlflow

    # The champion may come from an earlier job on other data: name this job's data explicitly.
    data = config.data.model_copy(
        update={"dataset": config.data.dataset, "source": config.data.source}
    )
    forecast_config = config.model_copy(
        update={
            "data": data,
            # None: the registered model's champion (`RunConfig.forecast_model_uri`).
            "forecast": config.forecast.model_copy(update={"model_uri": None}),
        }
    )
    result = forecast.run(forecast_config)
    experiment = use_experiment(config.forecast.experiment_name)
    with mlflow.start_run(
        experiment_id=experiment.experiment_id,
        nested=True,
        run_name=default_run_name(forecast_config, "forecast"),
        tags={"mlflow.parentRunId": parent_run_id},
    ) as forecast_run:
        log_forecast_run(result, forecast_config, exit_code=forecast_exit_code(result))
    mlflow.MlflowClient().set_tag(parent_run_id, "forecast_run_id", forecast_run.info.run_id)
    mlflow.MlflowClient().set_tag(parent_run_id, "forecast_path", str(result.partition))
    return result


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """The `main` entry point; see the module docstring for the exit status."""
    try:
        config = read_config("main", argv)
        model_configs(config)
    except ConfigError as error:
        return report_bad_input(error)
    try:
        result = run(config)
    except (ConfigError, DataValidationError) as error:
        return report_bad_input(error)
    except Exception as error:
        return report_failure(error)
    print(_summary(result))
    return result.exit_code


def _summary(result: MainResult) -> str:
    comparison = result.comparison
    lines = [
        f"prepared data: {result.prepared.uri}"
        + (" (reused)" if result.prepared.reused else " (new)"),
        summary_text(comparison),
    ]
    if result.forecast is not None:
        lines.append(
            f"forecast: {len(result.forecast.frame)} rows for "
            f"{result.forecast.frame['series_id'].nunique()} series by "
            f"{result.forecast.model.version_uri} -> "
            f"{result.forecast.partition / FORECAST_FILE}"
        )
    lines.append(f"main run {result.run_id}")
    lines.append(where_to_look(comparison.experiment_id))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
