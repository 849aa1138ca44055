"""`train`: train one zoo model, evaluate it beside the naive baselines, track it in MLflow.

Usage:
    python -m pipelines.cli.train                                  # defaults (catalog's data set)
    python -m pipelines.cli.train --model gru --epochs 5 --set model.hparams.units=16
    python -m pipelines.cli.train --config configs/weather-ltsf.yaml --horizon 96

A bad key or value is one `error: ...` line and exit status 2, before any run exists; a
failure while training marks the run FAILED with an `error` tag and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipelines.cli.exit_codes import (
    EXIT_OK,
    report_bad_input,
    report_failure,
)
from pipelines.config.options import read_config
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.contract import DataValidationError
from pipelines.settings import ConfigError
from pipelines.tracking.runs import run_for
from pipelines.tracking.training_run import log_training_run
from pipelines.training.evaluation import EVALUATED_PARTS, PART_PREFIXES
from pipelines.training.train import TrainResult, train_model


def _summary_line(result: TrainResult, run_id: str) -> str:
    parts = []
    for part in EVALUATED_PARTS:
        baselines = ", ".join(
            f"{name} {evaluations[part].overall['mae']:.4f}"
            for name, evaluations in result.baseline_evaluations.items()
        )
        parts.append(
            f"{PART_PREFIXES[part]} MAE {result.evaluations[part].overall['mae']:.4f}"
            + (f" (baselines: {baselines})" if baselines else "")
        )
    return f"{result.model_name}: " + "; ".join(parts) + f"; run {run_id}"


def main(argv: Sequence[str] | None = None) -> int:
    """The `train` entry point.

    Returns:
        0 on success, `EXIT_BAD_INPUT` (2) for a bad configuration or bad data (one `error:`
        line on stderr, no run started for a bad configuration), `EXIT_FAILED` (1) when
        training or logging raised (the run is marked FAILED with an `error` tag).
    """
    try:
        config = read_config("train", argv)
    except ConfigError as error:
        return report_bad_input(error)
    try:
        prepared = prepare_data(config.data)
    except DataValidationError as error:
        return report_bad_input(error)
    try:
        with run_for(config, "train"):
            result = train_model(config, prepared)
            run_id = log_training_run(result, config).run_id
    except Exception as error:
        return report_failure(error)
    print(_summary_line(result, run_id))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
