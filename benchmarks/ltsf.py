"""The long-term forecasting (LTSF) benchmark protocol, run through the project's own code.

Any file in the LTSF layout (a `date` column, then one column per channel) is read *as
published* (`data.policy: as_published`: no sorting, no deduplication, no repair, so Weather
keeps its duplicate row, its gap and its -9999 values and the row counts match the papers), and
cut by the published rule:

- `--split 0.7,0.1,0.2` (Weather, Electricity, Traffic...): `int(n*0.7)` training rows,
  `int(n*0.2)` test rows, the rest validation; `--split ett-hour` / `ett-minute`: 12/4/4 months
  of 30 days from the first row, the rows after 20 months unused;
- z-score per channel fitted on the training rows (`data.scaler: standard`);
- a window belongs to the part that holds all its targets and its inputs look back into the
  part before (validation windows start `L` rows before the validation border, test windows `L`
  rows before the test border); stride 1; every test window is scored (no dropped last batch);
- MSE and MAE on the normalised values, averaged over windows, horizon steps and channels.

The same prepare step, zoo, training loop (early stopping on validation, best weights kept) and
metrics serve `train`; this script only chooses the settings and prints the figures. `repeat`
is the LTSF papers' "Repeat" baseline, which repeats the last value (the zoo's `last`).
Settings are chosen on validation data; the test figures are for reporting.

`--preset best` runs the settings chosen for the long-input recurrent models, read from
`configs/weather-ltsf-long.yaml` (L=720, channels alone, segments of 72, parallel decoding,
cosine learning rate), the file that `mlflow run . -e compare -P config=...` trains the app's
model with; options and `--set` given beside it win. `--ablate` runs the preset, then each of
its options turned off alone (the file's `benchmark.ablations`), for every model and horizon;
`--variants` picks some of them. `--seeds 42,43,44`
runs everything once per seed.

Output: a table (model x horizon x seed: test MSE / MAE, validation MSE, test windows, training
seconds, and the MSE against the repeat baseline's); with several seeds, their mean and sample
standard deviation per model and horizon; then one JSON line
`{"results": [{"model", "horizon", "seed", "mse", "mae", ...}, ...], "over_seeds": [...]}`.
With `--validation-only` every test figure is NaN in the tables, null in the JSON, and not
logged to MLflow.

Usage:
    python benchmarks/ltsf.py --data FILE [--split 0.7,0.1,0.2|ett-hour|ett-minute]
        [--preset best [--ablate [--variants "channels mixed,..."]]]
        [--features M|S] [--target OT] [--input-width 96]
        [--horizons 96,192,336,720]
        [--models repeat,linear,lstm,gru,peephole] [--epochs 10] [--seed 42 | --seeds 42,43,44]
        [--set model.hparams.units=128 ...] [--validation-only] [--log-mlflow] [--quick]

`--validation-only` is for choosing settings: the runs show their validation figures only, so
that the test part is looked at once, for the chosen ones.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd
from ltsf_probts import probts_figures
from ltsf_report import (
    REPEAT,
    format_interval_table,
    format_seed_summary,
    format_table,
    hide_test_figures,
    interval_fields,
    nan_as_null,
    seed_summary,
)

from models.registry import MODEL_NAMES, hyperparameters
from pipelines.config.loading import (
    apply_overrides,
    benchmark_overrides,
    config_from_dict,
    config_to_dict,
    flatten,
    load_config,
    parse_assignments,
)
from pipelines.config.schema import RunConfig
from pipelines.data.prepare import run as prepare_data
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.contract import DataValidationError
from pipelines.settings import ConfigError
from pipelines.tracking.runs import use_experiment
from pipelines.training.train import train_model

DATE_COLUMN = "date"
MODEL_ALIASES = {REPEAT: "last"}
"""Harness names that differ from the zoo's: the LTSF "Repeat" baseline is the zoo's `last`."""
DEFAULT_MODELS = (REPEAT, "linear", "lstm", "gru", "peephole")
DEFAULT_HPARAMS = {"normalization": "revin"}
"""Reversible instance normalisation for every model that takes it (baselines do not)."""
QUICK = {"input_width": 24, "horizons": (12,), "epochs": 1, "units": 8, "segment_length": 12}
DEFAULTS = {"input_width": 96, "models": DEFAULT_MODELS, "epochs": 10}
DEFAULT_SEED = 42
"""Settings without a preset; a preset replaces them, and an option given replaces both."""


PRESETS = {"best": REPOSITORY_ROOT / "configs" / "weather-ltsf-long.yaml"}
"""`--preset NAME`: a run configuration file (chosen on Weather's validation part only:
benchmarks/README.md says how); `--preset PATH` reads any such file."""


@dataclass(frozen=True)
class Preset:
    """What the harness takes from a config file: widths, models, hyper-parameters, training,
    and the file's `benchmark:` section (the data protocol is the harness's own).

    Attributes:
        input_width: the input window L (`data.input_width`).
        models: the models run unless `--models` is given (`model.name`).
        epochs: most epochs unless `--epochs` is given.
        hparams: hyper-parameters of every model that takes them (`model.hparams`).
        training: the other `training.*` settings (batch size, learning rate and schedule...).
        per_model: overrides of one model (`benchmark.per_model`).
        ablations: `--ablate`'s variants, as overrides (`benchmark.ablations`).
    """

    input_width: int
    models: tuple[str, ...]
    epochs: int
    hparams: dict[str, Any]
    training: dict[str, Any]
    per_model: dict[str, dict[str, str]]
    ablations: dict[str, dict[str, str]]


def load_preset(name: str) -> Preset:
    """The preset of a name of `PRESETS` or a config file's path.

    Raises:
        ConfigError: the file cannot be read, a setting is bad, or it names no input width.
    """
    path = PRESETS.get(name, Path(name))
    config = load_config(path)
    if config.data.input_width is None:
        raise ConfigError(f"preset {path}: expected data.input_width, got none")
    benchmark = benchmark_overrides(path)
    # Every override is checked before any run: a model's against that model.
    for model, overrides in benchmark["per_model"].items():
        if MODEL_ALIASES.get(model, model) not in MODEL_NAMES:
            raise ConfigError(f"preset {path}: benchmark.per_model: unknown model {model!r}")
        document = config_to_dict(config)
        document["model"]["name"] = MODEL_ALIASES.get(model, model)
        document["model"]["hparams"] = _accepted(model, document["model"]["hparams"])
        config_from_dict(document, overrides, origin=str(path))
    for overrides in benchmark["ablations"].values():
        apply_overrides(config, overrides)
    training = config_to_dict(config)["training"]
    return Preset(
        input_width=config.data.input_width,
        models=(config.model.name,),
        epochs=training.pop("epochs"),
        hparams=dict(config.model.hparams),
        training={key: value for key, value in training.items() if key != "seed"},
        per_model=benchmark["per_model"],
        ablations=benchmark["ablations"],
    )


@dataclass
class Result:
    """One model at one horizon, on the test part (validation MSE for choosing)."""

    model: str
    horizon: int
    mse: float
    mae: float
    windows: int
    train_seconds: float
    validation_mse: float
    validation_mae: float
    epochs: int
    parameters: int
    variant: str = ""
    seed: int = DEFAULT_SEED
    coverage: dict[str, float] | None = None  # --levels: test coverage per level
    width: dict[str, float] | None = None  # mean interval width per level, scaled units
    crps: float | None = None  # quantile-averaged CRPS, scaled units
    coverage_steps: dict[str, list[float]] | None = None  # [lowest, highest] coverage of a step
    intervals: str | None = None  # the calibration scored above: rolling (static beside it)
    static: dict[str, Any] | None = None  # coverage, width, crps, coverage_steps: static
    probts_crps: float | None = None  # --probts: ProbTS's CRPS (original units, its windows)
    probts_nmae: float | None = None  # its NMAE of the point forecast
    probts_crps_static: float | None = None  # its CRPS with the static calibration


def channels(path: str, timestamp_column: str = DATE_COLUMN) -> list[str]:
    """The channel columns of an LTSF-layout file: every column after the time column."""
    try:
        header = pd.read_csv(path, nrows=0)
    except (OSError, ValueError) as error:
        raise DataValidationError(f"{path}: cannot read the header: {error}") from error
    columns = [str(column) for column in header.columns]
    if timestamp_column not in columns:
        raise DataValidationError(
            f"{path}: expected the LTSF layout (a {timestamp_column!r} column, then channels), "
            f"got columns {columns[:5]}"
        )
    return [column for column in columns if column != timestamp_column]


def run_config(
    args: Harness,
    model: str,
    horizon: int,
    overrides: dict[str, str],
    seed: int | None = None,
) -> RunConfig:
    """The run configuration of one model at one horizon under the protocol (seeded with
    `seed`, by default the first of `--seeds`)."""
    all_channels = channels(args.data)
    if args.features == "S":
        if args.target not in all_channels:
            raise ConfigError(
                f"--target: expected one of the file's channels {all_channels}, got {args.target!r}"
            )
        value_columns, targets = [args.target], [args.target]
    else:
        value_columns, targets = all_channels, all_channels
    hparams = dict(DEFAULT_HPARAMS)
    training: dict[str, Any] = {
        "epochs": args.epochs,
        "seed": args.seeds[0] if seed is None else seed,
    }
    if args.preset is not None:
        preset = args.preset_settings
        hparams.update(preset.hparams)
        training.update(preset.training)
        overrides = {**preset.per_model.get(model, {}), **overrides}
    intervals = (
        {"levels": list(args.levels), "update": "rolling"}
        if args.levels
        else {"calibration": "none"}
    )
    if args.quick:
        hparams["units"] = QUICK["units"]
        if "segment_length" in hparams:
            hparams["segment_length"] = QUICK["segment_length"]
    document = {
        "data": {
            "dataset": None,
            "source": args.data,
            "timestamp_column": DATE_COLUMN,
            "policy": "as_published",
            "split": args.split,
            "value_columns": value_columns,
            "targets": targets,
            "input_width": args.input_width,
            "horizon": horizon,
            "scaler": "standard",
            "stride": 1,
        },
        "model": {"name": MODEL_ALIASES.get(model, model), "hparams": _accepted(model, hparams)},
        "training": training,
        "intervals": intervals,
    }
    return config_from_dict(document, overrides, origin="benchmarks/ltsf.py")


def _accepted(model: str, hparams: dict[str, Any]) -> dict[str, Any]:
    accepted = hyperparameters(MODEL_ALIASES.get(model, model))
    return {key: value for key, value in hparams.items() if key in accepted}


def run_benchmark(args: Harness) -> list[Result]:
    """Trains and scores every model (and, with `--ablate`, every variant of the preset) at
    every horizon; logs to MLflow with `--log-mlflow`."""
    overrides = parse_assignments(args.overrides)
    ablations = args.preset_settings.ablations if args.ablate else {}
    variants = {name: ablations[name] for name in args.variants} if args.ablate else {"": {}}
    results: list[Result] = []
    for horizon in args.horizons:
        prepared_by_data: dict[str, Any] = {}
        for model in args.models:
            for variant, changes in variants.items():
                for seed in args.seeds:
                    config = run_config(args, model, horizon, {**overrides, **changes}, seed)
                    # Keyed by the whole data section: an ablation or `--set` that changes any
                    # data setting (not only the input width) prepares its own data.
                    data_key = json.dumps(config_to_dict(config)["data"], sort_keys=True)
                    if data_key not in prepared_by_data:
                        prepared_by_data[data_key] = prepare_data(config.data)
                    prepared = prepared_by_data[data_key]
                    result = _scored(model, horizon, variant, config, prepared, args.probts)
                    if args.validation_only:
                        result = hide_test_figures(result)
                    results.append(result)
                    test_figures = (
                        "test hidden"
                        if args.validation_only
                        else f"test MSE {result.mse:.4f} MAE {result.mae:.4f}"
                    )
                    print(
                        f"{model}{f' ({variant})' if variant else ''} H={horizon} seed {seed}: "
                        f"{test_figures}, val MSE "
                        f"{result.validation_mse:.4f} ({result.windows} windows, "
                        f"{result.epochs} epochs, {result.train_seconds:.0f} s)",
                        flush=True,
                    )
                    if args.log_mlflow:
                        _log_result(args, config, result)
    return results


def _scored(
    model: str, horizon: int, variant: str, config: RunConfig, prepared: Any, probts: bool
) -> Result:
    trained = train_model(config, prepared)
    test, validation = trained.evaluations["test"], trained.evaluations["validation"]
    result = Result(
        model=model,
        horizon=horizon,
        mse=test.overall["mse"],
        mae=test.overall["mae"],
        windows=trained.window_counts["test"],
        train_seconds=round(trained.training_seconds, 1),
        validation_mse=validation.overall["mse"],
        validation_mae=validation.overall["mae"],
        epochs=len(trained.history.get("loss", [])),
        parameters=int(trained.model.count_params()),
        variant=variant,
        seed=config.training.seed,
    )
    scores = trained.interval_evaluations
    if "test" in scores:
        result = replace(
            result,
            **interval_fields(scores["test"]),
            intervals="rolling" if "test_static" in scores else "static",
            static=interval_fields(scores["test_static"]) if "test_static" in scores else None,
        )
    if probts and trained.calibration is not None:
        figures = probts_figures(trained, config)
        result = replace(result, **figures)
    return result


def _log_result(args: Harness, config: RunConfig, result: Result) -> None:
    import mlflow

    if mlflow.active_run() is None:
        use_experiment(args.experiment_name)
        mlflow.start_run(run_name=f"ltsf {Path(args.data).name.split('.')[0]}")
        mlflow.log_params(
            {
                "data": args.data,
                "split": args.split,
                "features": args.features,
                "input_width": args.input_width,
                "horizons": ",".join(map(str, args.horizons)),
                "validation_only": args.validation_only,
            }
        )
    name = f"{result.model} H={result.horizon}" + (f" {result.variant}" if result.variant else "")
    if len(args.seeds) > 1:
        name += f" seed {result.seed}"
    with mlflow.start_run(run_name=name, nested=True):
        mlflow.log_params({key: value for key, value in flatten(config).items() if value != ""})
        metrics = {
            "test_mse": result.mse,
            "test_mae": result.mae,
            "val_mse": result.validation_mse,
            "val_mae": result.validation_mae,
            "test_windows": result.windows,
            "train_seconds": result.train_seconds,
            "parameters": result.parameters,
        }
        mlflow.log_metrics({key: value for key, value in metrics.items() if not math.isnan(value)})


def _integers(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 96,192, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _levels(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 80,90, got {text!r}") from None
    if not values or not all(0 < value < 100 for value in values):
        raise argparse.ArgumentTypeError(f"expected numbers in (0, 100), got {text!r}")
    return values


@dataclass(frozen=True)
class Harness:
    """What one run of the harness does: the command line's options, checked and completed by
    `harness` (how `variants.py` drives it without a command line)."""

    data: str
    split: str = "0.7,0.1,0.2"
    features: str = "M"
    target: str = "OT"
    preset: str | None = None
    ablate: bool = False
    variants: tuple[str, ...] | None = None  # None: every ablation of the preset
    input_width: int | None = None  # None: the preset's, else DEFAULTS'
    horizons: tuple[int, ...] = (96, 192, 336, 720)
    models: tuple[str, ...] | None = None
    epochs: int | None = None
    seed: int | None = None  # one seed; `harness` moves it into `seeds`
    seeds: tuple[int, ...] | None = None
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE
    validation_only: bool = False
    log_mlflow: bool = False
    experiment_name: str = "ltsf"
    quick: bool = False
    levels: tuple[float, ...] = ()  # interval levels to calibrate and score (none: no intervals)
    probts: bool = False  # ProbTS's CRPS and NMAE beside (needs levels)
    preset_settings: Preset | None = None


def harness(data: str, **options: Any) -> Harness:
    """The harness's settings: the preset's where an option is not given, else DEFAULTS;
    `quick` shrinks the run to a smoke test (QUICK).

    Raises:
        ConfigError: a setting that does not fit, named by its option (`--variants: ...`).
    """
    given = Harness(data, **options)
    preset = None
    if given.preset is not None:
        try:
            preset = load_preset(given.preset)
        except ConfigError as error:
            raise ConfigError(f"--preset: {error}") from None
    ablations = preset.ablations if preset else {}
    if given.ablate and preset is None:
        raise ConfigError("--ablate: expected a --preset whose options it turns off one at a time")
    variants = given.variants
    if variants is not None:
        if not given.ablate:
            raise ConfigError("--variants: expected --ablate, whose variants it picks")
        if not variants or any(name not in ablations for name in variants):
            raise ConfigError(
                f"--variants: expected names from {list(ablations)}, got {list(variants)}"
            )
    if not all(0 < level < 100 for level in given.levels):
        raise ConfigError(f"--levels: expected numbers in (0, 100), got {list(given.levels)}")
    if given.probts and not given.levels:
        raise ConfigError("--probts: expected --levels, whose calibration its CRPS scores")
    if given.seed is not None and given.seeds is not None:
        raise ConfigError("--seed and --seeds: expected one of them, got both")
    seeds = given.seeds or (DEFAULT_SEED if given.seed is None else given.seed,)
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"--seeds: expected distinct seeds, got {tuple(seeds)}")
    base = DEFAULTS if preset is None else asdict(preset)
    chosen = {
        key: base[key] if getattr(given, key) is None else getattr(given, key) for key in DEFAULTS
    }
    unknown = [m for m in chosen["models"] if MODEL_ALIASES.get(m, m) not in MODEL_NAMES]
    if unknown:
        raise ConfigError(
            f"--models: expected {REPEAT!r} or zoo models {list(MODEL_NAMES)}, got {unknown}"
        )
    horizons = given.horizons
    if given.quick:
        chosen.update(input_width=QUICK["input_width"], epochs=QUICK["epochs"])
        horizons = QUICK["horizons"]
    return replace(
        given,
        preset_settings=preset,
        variants=tuple(ablations) if variants is None else tuple(variants),
        input_width=chosen["input_width"],
        horizons=tuple(horizons),
        models=tuple(chosen["models"]),
        epochs=chosen["epochs"],
        seed=None,
        seeds=tuple(seeds),
        overrides=tuple(given.overrides),
    )


def parse_arguments(argv: list[str] | None = None) -> Harness:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="LTSF-layout CSV (date, then channels)")
    parser.add_argument("--split", default="0.7,0.1,0.2", help="fractions, ett-hour, ett-minute")
    parser.add_argument("--features", choices=("M", "S"), default="M")
    parser.add_argument("--target", default="OT", help="the channel of --features S")
    parser.add_argument(
        "--preset",
        help=f"a config file's settings ({', '.join(PRESETS)}: see PRESETS, or a path); "
        "options win",
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="with --preset: run the preset, then each option turned off alone (the file's "
        "benchmark.ablations)",
    )
    parser.add_argument(
        "--variants",
        type=lambda text: tuple(part.strip() for part in text.split(",") if part.strip()),
        help="with --ablate: only these ablations, comma-separated (default: all of them)",
    )
    parser.add_argument("--input-width", type=int, help="input window L (default 96)")
    parser.add_argument("--horizons", type=_integers, default=(96, 192, 336, 720))
    parser.add_argument("--models", type=lambda text: tuple(text.split(",")))
    parser.add_argument("--epochs", type=int, help="most epochs (default 10)")
    parser.add_argument("--seed", type=int, help="one seed (default 42); same as --seeds SEED")
    parser.add_argument(
        "--seeds", type=_integers, help="several seeds, e.g. 42,43,44: each run once per seed"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="any config key",
    )
    parser.add_argument(
        "--validation-only",
        action="store_true",
        help="for choosing settings: show and log no test-part figure",
    )
    parser.add_argument("--log-mlflow", action="store_true", help="one parent run, nested runs")
    parser.add_argument("--experiment-name", default="ltsf")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: L=24, H=12, 1 epoch, 8 units"
    )
    parser.add_argument(
        "--levels",
        type=_levels,
        default=(),
        help="interval levels, e.g. 80,90: conformal intervals recalibrated as the test "
        "actuals arrive (intervals.update rolling), the validation calibration beside them; "
        "test coverage, width and CRPS (scaled units) reported",
    )
    parser.add_argument(
        "--probts",
        action="store_true",
        help="with --levels: ProbTS's CRPS and NMAE too (original units, its stride-96 test "
        "windows; its long-term setting is L=96: --input-width 96)",
    )
    try:
        return harness(**vars(parser.parse_args(argv)))
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    try:
        results = run_benchmark(args)
    except (ConfigError, DataValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if args.log_mlflow:
            import mlflow

            if mlflow.active_run() is not None:
                mlflow.end_run()
    print()
    print(
        f"LTSF protocol: {args.data}, split {args.split}, features {args.features}, "
        f"preset {args.preset}, L={args.input_width}, seeds {','.join(map(str, args.seeds))}, "
        f"{time.perf_counter() - started:.0f} s in all" + (" (quick)" if args.quick else "")
    )
    print(format_table(results))
    if args.levels and not args.validation_only:
        print()
        print(f"Intervals at {', '.join(f'{level:g}' for level in args.levels)} (test part):")
        print(format_interval_table(results))
    summary = seed_summary(results)
    if len(args.seeds) > 1:
        print()
        print(f"Mean ± sample standard deviation over seeds {list(args.seeds)}:")
        print(format_seed_summary(summary))
    record = {"results": [asdict(result) for result in results], "over_seeds": summary}
    print(json.dumps(nan_as_null(record), allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
