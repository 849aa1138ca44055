"""`forecast`: a registered model's forecasts for every series, as one Parquet partition.

Usage:
    python -m pipelines.cli.forecast --model-uri models:/forecaster@champion
    python -m pipelines.cli.forecast --model-uri models:/forecaster@champion --source prices.csv \
        --as-of 2018-02-07 --forecast-output data/forecasts --series AAPL,MSFT

What it does is `pipelines.serving.batch.run`; the exit codes are those of
`pipelines.cli.exit_codes` (0 all forecast, 1 failure, 2 bad input, 3 some series skipped,
75 lock held). The MLflow run is logged after the partition is written (or found unchanged);
bad input and a held lock log no run.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from pipelines.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    report_bad_input,
    report_failure,
    report_locked,
)
from pipelines.config.options import read_config
from pipelines.config.schema import ForecastConfig
from pipelines.runtime.contract import (
    DataValidationError,
)
from pipelines.serving.batch import ForecastResult, run
from pipelines.serving.partitions import FORECAST_FILE, LockTimeoutError
from pipelines.settings import ConfigError
from pipelines.tracking.forecast_run import log_forecast_run
from pipelines.tracking.runs import default_run_name, tracked_run

DEFAULT_FORECAST_EXPERIMENT = ForecastConfig().experiment_name


def forecast_exit_code(result: ForecastResult) -> int:
    """0 when every series was forecast, 3 when some were skipped."""
    return EXIT_OK if result.complete else EXIT_PARTIAL


def main(argv: Sequence[str] | None = None) -> int:
    """The `forecast` entry point; returns the exit code of the table in the module docstring."""
    try:
        config = read_config("forecast", argv)
        result = run(config)
    except (ConfigError, DataValidationError) as error:
        return report_bad_input(error)
    except LockTimeoutError as error:
        return report_locked(error)
    except Exception as error:
        return report_failure(error)
    exit_code = forecast_exit_code(result)
    try:
        with tracked_run(
            config.forecast.experiment_name,
            default_experiment=DEFAULT_FORECAST_EXPERIMENT,
            run_name=config.tracking.run_name or default_run_name(config, "forecast"),
        ):
            run_id = log_forecast_run(result, config, exit_code=exit_code)
    except Exception as error:
        traceback.print_exc()
        print(
            f"error: the partition {result.partition} is {result.outcome} but logging the run "
            f"failed: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    skipped = ", ".join(f"{item.series_id} ({item.reason})" for item in result.skipped)
    print(
        f"{result.outcome} {result.partition / FORECAST_FILE}: {len(result.frame)} rows, "
        f"{len(result.metadata.get('series_forecast', []))} series, model "
        f"{result.model.name} version {result.model.version}; run {run_id}"
        + (f"; skipped {skipped}" if skipped else "")
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
