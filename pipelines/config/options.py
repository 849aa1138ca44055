"""The command-line options of every entry point, generated from the schema.

Every entry point takes `--config FILE` (a YAML file of the schema's sections), `--set
KEY=VALUE` (any dotted key, repeatable) and one option per setting it uses, named after the
setting's flat name (`FLAT_PARAMETERS`): `--input-width` sets `data.input_width` wherever it
appears. Every option takes one value, read like any override ("3", "1e-3", "a,b", "none",
true/false/yes/no/on/off); a yes/no option given alone means true (`--log-returns`). An empty
value ("", what MLproject passes for a parameter left empty) means "not given".

A bad option, key or value raises `ConfigError` (the entry point prints one `error:` line and
exits 2) before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from pipelines.config.loading import load_config, parameters_given, parse_assignments
from pipelines.config.schema import FLAT_PARAMETERS, SECTIONS, RunConfig
from pipelines.data.prepare import resolve_widths
from pipelines.data.settings import SOURCE_PARAMETER_TYPES
from pipelines.settings import ConfigError, describe, split_optional

DATA_OPTIONS = tuple(name for name, key in FLAT_PARAMETERS.items() if key.startswith("data."))
TRAINING_OPTIONS = (
    "model",
    "epochs",
    "batch_size",
    "learning_rate",
    "patience",
    "seed",
    "loss",
    "lr_schedule",
    "ema_momentum",
    "experiment_name",
    "registered_model_name",
    "run_name",
)
ENTRY_POINT_OPTIONS: dict[str, tuple[str, ...]] = {
    "prepare": (*DATA_OPTIONS, "output", "summary_json", "log_run"),
    "train": (*DATA_OPTIONS, *TRAINING_OPTIONS),
    "compare": (*DATA_OPTIONS, *TRAINING_OPTIONS, "models"),
    "main": (*DATA_OPTIONS, *TRAINING_OPTIONS, "models", "forecast_output"),
    "backtest": (
        *DATA_OPTIONS,
        *TRAINING_OPTIONS,
        "models",
        "folds",
        "fold_starts",
        "fold_step",
        "training_window",
        "training_rows",
        "refit",
        "validation_fraction",
    ),
    "forecast": (
        "dataset",
        "source",
        "model_uri",
        "registered_model_name",
        "as_of",
        "forecast_output",
        "series",
        "lock_timeout",
        "replace",
        "forecast_experiment_name",
    ),
    "monitor": (
        "dataset",
        "source",
        "forecast_output",
        "monitor_output",
        "window",
        "mae_factor",
        "mae_sigmas",
        "coverage_band",
        "lock_timeout",
        "monitor_experiment_name",
    ),
}
"""The settings each entry point exposes as options (besides `--config` and `--set`)."""
DESCRIPTIONS = {
    "prepare": "Validate a data set, split it, fit scalers on the training part, and count "
    "windows. With no options: the catalog's default data set.",
    "train": "Train one zoo model, evaluate it beside the naive baselines and track the run in "
    "MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db in this directory).",
    "compare": "Train and compare several zoo models (baselines included) on the same windows, "
    "one nested MLflow run per model under a parent run; register the best on validation.",
    "main": "Prepare the data (reusing a finished prepare run with the same inputs), compare "
    "the models, register the best and write the champion's forecast.",
    "backtest": "Rolling-origin backtest of the models (baselines included): each fold trains "
    "on the data up to its origin and forecasts the horizon after it; one nested MLflow run per "
    "model with per-fold metrics.",
    "forecast": "Forecast every series with a registered model and write one Parquet "
    "partition per as_of; the run is tracked in MLflow (MLFLOW_TRACKING_URI).",
    "monitor": "Score every forecast partition whose horizon has (partly) passed against the "
    "actuals, write the scores table, track each model version in MLflow and check the alarm "
    "rules (exit 4 on an alarm).",
}


class OptionParser(argparse.ArgumentParser):
    """An argument parser whose errors are `ConfigError`s (one `error:` line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def option_flag(name: str) -> str:
    """`input_width` -> `--input-width`."""
    return "--" + name.replace("_", "-")


def _annotation(dotted: str) -> object:
    parts = dotted.split(".")
    if parts[1] == "source_parameters":
        return SOURCE_PARAMETER_TYPES[parts[2]]
    return SECTIONS[parts[0]].model_fields[parts[1]].annotation


def _help(dotted: str) -> str:
    parts = dotted.split(".")
    if parts[1] == "source_parameters":
        text = f"yfinance source parameter {parts[2]}"
    else:
        field = SECTIONS[parts[0]].model_fields[parts[1]]
        text = field.description or ""
    return f"{text} ({describe(_annotation(dotted))}; sets {dotted})"


def build_parser(entry_point: str) -> OptionParser:
    """The parser of one entry point (`ENTRY_POINT_OPTIONS`), with `--config` and `--set`."""
    parser = OptionParser(
        prog=f"python -m pipelines.cli.{entry_point}", description=DESCRIPTIONS[entry_point]
    )
    parser.add_argument("--config", help="YAML file with the schema's sections")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a dotted config key, e.g. model.hparams.units=16 (repeatable)",
    )
    for name in ENTRY_POINT_OPTIONS[entry_point]:
        dotted = FLAT_PARAMETERS[name]
        is_flag = split_optional(_annotation(dotted))[0] is bool
        parser.add_argument(
            option_flag(name),
            dest=name,
            nargs="?" if is_flag else None,
            const="true" if is_flag else None,
            metavar="true|false" if is_flag else name.upper(),
            help=_help(dotted),
        )
    return parser


def read_config(entry_point: str, argv: Sequence[str] | None = None) -> RunConfig:
    """The configuration an entry point's command line asks for.

    Args:
        entry_point: a key of `ENTRY_POINT_OPTIONS`.
        argv: the arguments (None: `sys.argv[1:]`).

    Raises:
        ConfigError: an unknown option, a bad key or value (nothing has run). `--help` prints
            the options and exits 0.
    """
    arguments = build_parser(entry_point).parse_args(argv)
    overrides = parameters_given(
        {name: getattr(arguments, name) for name in ENTRY_POINT_OPTIONS[entry_point]}
    )
    assignments = parse_assignments(arguments.assignments)
    for key, value in assignments.items():
        if key in overrides and overrides[key] != value:
            raise ConfigError(
                f"option {option_flag(key)} and --set {key} disagree: "
                f"{overrides[key]!r} and {value!r}"
            )
    overrides.update(assignments)
    config = load_config(arguments.config or None, overrides)
    check_models_to_build(config, entry_point)
    return config


BUILDS: dict[str, str] = {
    "train": "name",
    "compare": "models",
    "main": "models",
    "backtest": "models",
}
"""Entry point -> which models it builds: `model.name` or every model of `model.models`."""


def check_models_to_build(config: RunConfig, entry_point: str) -> None:
    """Raises unless every model the entry point builds takes the configured hyper-parameters
    on the configured window (no data are read: the window comes from the config or the
    catalog).

    Raises:
        ConfigError: naming the hyper-parameter and the model.
    """
    if entry_point not in BUILDS:
        return
    models = (config.model.name,) if BUILDS[entry_point] == "name" else config.model.models
    config.model.check_quantile_heads(models, config.intervals.method)
    input_width, horizon = resolve_widths(config.data)
    config.model.check_models(models, input_width, horizon)
