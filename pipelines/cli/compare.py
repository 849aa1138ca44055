"""`compare`: train several zoo models on the same windows, one nested MLflow run each.

Usage:
    python -m pipelines.cli.compare                                   # the default models
    python -m pipelines.cli.compare --models last,dense,lstm --epochs 3
    python -m pipelines.cli.compare --config configs/weather-ltsf.yaml --set model.hparams.units=16

A bad configuration is one `error: ...` line and exit status 2 before any run; a model that
fails ends its child FAILED and the exit status is 1 at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipelines.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_OK,
    report_bad_input,
    report_failure,
)
from pipelines.config.options import read_config
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.contract import DataValidationError
from pipelines.settings import ConfigError
from pipelines.tracking.comparison import compare_models
from pipelines.tracking.views import where_to_look
from pipelines.training.compare import model_configs, summary_text

# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """The `compare` entry point.

    Returns:
        0 when every model finished; `EXIT_BAD_INPUT` (2) for a bad configuration or bad data
        (one `error:` line on stderr, no run started); `EXIT_FAILED` (1) when a model failed
        (its child run is FAILED with an `error` tag; the summary is still written) or the
        comparison itself raised.

    Raises:
        KeyboardInterrupt: after marking the runs KILLED (the shell sees status 130).
    """
    try:
        config = read_config("compare", argv)
        configs = model_configs(config)
        prepared = prepare_data(config.data)
    except (ConfigError, DataValidationError) as error:
        return report_bad_input(error)
    try:
        result = compare_models(config, prepared, configs)
    except Exception as error:
        return report_failure(error)
    print(summary_text(result))
    print(where_to_look(result.experiment_id))
    if result.failed:
        print(f"error: {len(result.failed)} model(s) failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
