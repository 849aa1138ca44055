"""`backtest`: rolling-origin evaluation of the models and the naive baselines.

Usage:
    python -m pipelines.cli.backtest                                  # the default models
    python -m pipelines.cli.backtest --models lstm,gru --folds 5 --fold-step 14
    python -m pipelines.cli.backtest --fold-starts 2015-06-01,2015-09-01 --refit 0
    python -m pipelines.cli.backtest --training-window sliding --training-rows 730

Each fold trains on the data up to its origin (early stopping on the end of that part) and
forecasts the horizon after it; the runs go to MLflow (a parent, one nested run per model). A
bad configuration or bad data is one `error: ...` line and exit status 2 before any run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipelines.cli.exit_codes import EXIT_OK, report_bad_input, report_failure
from pipelines.config.options import read_config
from pipelines.runtime.contract import DataValidationError
from pipelines.settings import ConfigError
from pipelines.tracking.backtest_run import log_backtest
from pipelines.training.backtest import backtest_models, run_backtest
from pipelines.training.compare import markdown_table


def main(argv: Sequence[str] | None = None) -> int:
    """The `backtest` entry point.

    Returns:
        0 when every fold of every model finished; `EXIT_BAD_INPUT` (2) for a bad
        configuration or data that the folds do not fit (nothing logged); `EXIT_FAILED` (1)
        when the backtest raised otherwise.
    """
    try:
        config = read_config("backtest", argv)
        backtest_models(config)  # hyper-parameters checked against every model, before work
        result = run_backtest(config)
    except (ConfigError, DataValidationError) as error:
        return report_bad_input(error)
    except Exception as error:
        return report_failure(error)
    try:
        run_id = log_backtest(result, config)
    except Exception as error:
        return report_failure(error)
    print(
        f"backtest of {result.dataset}: {len(result.folds)} folds, horizon "
        f"{result.spec.horizon}, origins {result.folds[0].origin} .. {result.folds[-1].origin}"
    )
    print(markdown_table(result.summary()))
    for note in result.notes:
        print(f"note: {note}")
    print(f"MLflow run {run_id}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
