"""The LSTM family on our data: which variant is best, and do the differences matter?

Olah's tour of LSTM variants asks it; Greff et al. (2017) answered for speech and handwriting;
this study answers for weather and prices, every variant at the same parameter budget:

- `lstm`: Keras' LSTM, the reference every variant is tested against;
- `peephole (all gates)`, `peephole (output gate)`: our peephole LSTM (Gers & Schmidhuber 2000)
  with peepholes into every gate, or into the output gate only;
- `cifg`: coupled input and forget gates (input = 1 - forget), no peepholes; `gru`: Keras' GRU;
- `depth-gated`: two LSTM layers whose cells are joined by a depth gate (Yao et al. 2015);
- `clockwork`: a Clockwork RNN with modules of periods 1, 2, 4 and 8 (Koutnik et al. 2014);

beside two baselines, `repeat-last` (the last value again; for returns, the random walk's zero
return is shown too) and `linear`. Studies:

- `weather`: the LTSF protocol of `ltsf.py` (70/10/20 split, all 21 channels in and out, scaled
  by the training part) at L = 96, H = 96, RevIN, the harness's training (batch 64, Adam 1e-3,
  early stopping with patience 5 on the validation loss, at most `--epochs`); test MSE and MAE.
- `stocks`: next-day log returns of every S&P 500 ticker of `stocks-5yr` from the last 20 days
  (the `returns` target of `stocks.py`: one model over all tickers, test = the last twelve
  months); MASE against the random walk's in-sample error, MAE, directional accuracy, and the
  share of tickers on which the model beats the random walk.

Equal budgets: `lstm` has `--units` units (32); every other variant gets the width whose whole
model's parameter count is closest to `lstm`'s (the Clockwork RNN's a multiple of its periods).
Both counts, the whole model and its recurrent layers, are printed.

Every variant runs once per seed (`--seeds`, five by default). Per study and variant: the mean
and sample standard deviation over seeds; for each variant against `lstm`, a paired t-test over
seeds on the study's main metric (weather: test MSE; stocks: MASE), Holm-corrected over the six
comparisons of a study. Logged to MLflow as one parent run with a nested run per study, variant
and seed. `--results FILE` keeps every finished run as a JSON line, and a rerun with the same
file and settings skips what is there (a study takes hours on two cores); a file written with
other settings is refused. Output: one table per study, then one JSON line
`{"runs": [...], "comparisons": [...]}`. Options: `--help`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
sys.path.insert(0, str(BENCHMARKS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ltsf
import numpy as np
import stocks
from scipy.stats import ttest_rel

from models.registry import resolve_hyperparameters
from pipelines.data.prepare import run as prepare_data
from pipelines.tracking.runs import use_experiment
from pipelines.training.train import model_shape, train_model


@dataclass(frozen=True)
class Variant:
    """A member of the LSTM family: the zoo model and the hyper-parameters that make it."""

    model: str
    hparams: dict[str, Any] = field(default_factory=dict)


VARIANTS = {
    "lstm": Variant("lstm"),
    "peephole (all gates)": Variant("peephole"),
    "peephole (output gate)": Variant("peephole", {"peepholes": "output"}),
    "cifg": Variant("peephole", {"peepholes": "", "coupled_input_forget": True}),
    "gru": Variant("gru"),
    "depth-gated": Variant("depth-gated", {"layers": 2}),
    "clockwork": Variant("clockwork", {"periods": "1,2,4,8"}),
}
"""The variants, each against `REFERENCE`."""
BASELINES = {"repeat-last": "last", "linear": "linear"}  # shown, not tested against REFERENCE
REFERENCE = "lstm"
STUDIES = ("weather", "stocks")
MAIN_METRIC = {"weather": "mse", "stocks": "mase"}
"""The metric of each study's paired tests (lower is better)."""
DEFAULT_SEEDS = (42, 43, 44, 45, 46)
DEFAULT_WEATHER = str(BENCHMARKS.parent.parent / "shared" / "datasets" / "weather.csv.gz")
WEATHER_WIDTH, WEATHER_HORIZON = 96, 96
QUICK_UNITS = 8
"""`lstm`'s width under `--quick` (a smoke test: the harnesses' quick settings apply too)."""
RANDOM_WALK = "random walk (zero)"
ALPHA = 0.05


@dataclass
class Run:
    """One variant, trained once with one seed, scored on one study's test part."""

    study: str
    variant: str
    seed: int
    model: str
    units: int | None
    parameters: int
    recurrent_parameters: int
    metrics: dict[str, float]
    epochs: int
    train_seconds: float
    settings: dict[str, Any]


@dataclass
class Comparison:
    """One variant against `REFERENCE` on one study's main metric, paired by seed."""

    study: str
    variant: str
    metric: str
    seeds: int
    mean_difference: float
    p_value: float | None
    holm_p_value: float | None
    significant: bool


# --------------------------------------------------------------------------------------------
# Statistics


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error), `None` kept where a test had no
    p-value; the adjusted values are monotone in the raw ones and capped at 1."""
    present = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def compare_to_reference(runs: list[Run], study: str, variants: list[str]) -> list[Comparison]:
    """Paired t-tests over seeds of each variant against `REFERENCE` on the study's main
    metric, with Holm's correction over the study's comparisons."""
    metric = MAIN_METRIC[study]
    by_seed = {
        name: {
            run.seed: run.metrics[metric]
            for run in runs
            if (run.study, run.variant) == (study, name)
        }
        for name in variants
    }
    reference = by_seed.get(REFERENCE, {})
    rows = []
    for name in variants:
        if name == REFERENCE or name not in VARIANTS:
            continue
        seeds = sorted(set(reference) & set(by_seed[name]))
        differences = [by_seed[name][seed] - reference[seed] for seed in seeds]
        p_value = None
        if len(seeds) >= 2 and np.std(differences) > 0:
            p_value = float(
                ttest_rel([by_seed[name][s] for s in seeds], [reference[s] for s in seeds]).pvalue
            )
        mean = float(np.mean(differences)) if differences else float("nan")
        rows.append(Comparison(study, name, metric, len(seeds), mean, p_value, None, False))
    for row, adjusted in zip(rows, holm([row.p_value for row in rows]), strict=True):
        row.holm_p_value = adjusted
        row.significant = adjusted is not None and adjusted < ALPHA
    return rows


# --------------------------------------------------------------------------------------------
# Budgets


def parameter_counts(model: Any) -> tuple[int, int]:
    """The whole model's parameters and those of its recurrent layers."""
    import keras

    recurrent = sum(
        layer.count_params() for layer in model.layers if isinstance(layer, keras.layers.RNN)
    )
    return int(model.count_params()), int(recurrent)


def budget_units(
    variant: Variant, count_for_units: Callable[[int], int], budget: int, reference_units: int
) -> int:
    """The width of `variant` whose parameter count is closest to `budget` (the reference's),
    in steps of the Clockwork RNN's module count; ties go to the smaller width."""
    step = len(resolve_hyperparameters(variant.model, **variant.hparams).get("periods", (1,)))
    low, high = 1, max(2, 4 * reference_units // step)  # in steps
    while count_for_units(high * step) < budget:
        high *= 2
    while low < high:  # the smallest width whose count reaches the budget
        middle = (low + high) // 2
        if count_for_units(middle * step) >= budget:
            high = middle
        else:
            low = middle + 1
    candidates = [units for units in (low - 1, low) if units >= 1]
    return step * min(candidates, key=lambda units: abs(count_for_units(units * step) - budget))


# --------------------------------------------------------------------------------------------
# Studies


def _as_text(value: Any) -> str:
    """A hyper-parameter as a `--set` value (booleans as YAML reads them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class WeatherStudy:
    """Weather under the LTSF protocol at L = H = 96 (see the module)."""

    name = "weather"

    def __init__(self, args: argparse.Namespace) -> None:
        self.harness = ltsf.harness(
            args.weather,
            epochs=args.epochs,
            input_width=WEATHER_WIDTH,
            horizons=(WEATHER_HORIZON,),
            quick=args.quick,
        )
        self.horizon = self.harness.horizons[0]
        self.prepared = prepare_data(self.config("lstm", {}, DEFAULT_SEEDS[0]).data)
        self.spec = self.prepared.spec
        weather = Path(args.weather)
        self.settings = {
            # Name and size, not the path: a results file stays valid in another checkout.
            "data": f"{weather.name} ({weather.stat().st_size:,} bytes)",
            "input_width": self.harness.input_width,
            "horizon": self.horizon,
            "epochs": self.harness.epochs,
        }

    def config(self, model: str, hparams: dict[str, Any], seed: int) -> Any:
        overrides = {f"model.hparams.{key}": _as_text(value) for key, value in hparams.items()}
        return ltsf.run_config(self.harness, model, self.horizon, overrides, seed)

    def run(self, model: str, hparams: dict[str, Any], seed: int) -> tuple[dict, Any]:
        trained = train_model(self.config(model, hparams, seed), self.prepared)
        test = trained.evaluations["test"].overall
        metrics = {
            "mse": test["mse"],
            "mae": test["mae"],
            "val_mse": trained.evaluations["validation"].overall["mse"],
        }
        return metrics, trained


class StocksStudy:
    """Next-day log returns of the S&P 500 against the random walk (see the module)."""

    name = "stocks"
    target = "returns"

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.harness = stocks.harness(epochs=args.stocks_epochs, quick=args.quick)
        source = stocks.quick_source(folder) if args.quick else None
        self.source = source
        self.data = stocks.target_data(self.target, self.harness, source)
        self.spec = self.data.prepared.spec
        test = self.data.test
        walk = np.zeros_like(test.actual)
        self.walk_mae = stocks.per_ticker_mae(walk - test.actual, test.series_index, test.tickers)
        self.settings = {
            "dataset": stocks.DATASET,
            "tickers": test.tickers,
            "input_width": self.harness.input_width,
            "horizon": self.harness.horizon,
            "epochs": self.harness.epochs,
        }

    def config(self, model: str, hparams: dict[str, Any], seed: int) -> Any:
        return stocks.run_config(self.target, self.harness, self.source, model, hparams, seed)

    def scored(self, name: str, forecast: np.ndarray, seconds: float) -> dict[str, float]:
        """MASE, MAE, directional accuracy and the share of tickers beating the random walk
        (the last two only where they exist: the zero forecast calls no direction)."""
        walk_mae = None if name == RANDOM_WALK else self.walk_mae
        result = stocks.score(self.target, name, forecast, self.data.test, walk_mae, seconds)
        optional = {
            "direction": result.directional_accuracy,
            "beating_random_walk": result.share_beating_random_walk,
        }
        return {
            "mase": result.mase,
            "mae": result.mae,
            **{key: value for key, value in optional.items() if value is not None},
        }

    def run(self, model: str, hparams: dict[str, Any], seed: int) -> tuple[dict, Any]:
        forecast, trained = stocks.trained_forecast(self.config(model, hparams, seed), self.data)
        return self.scored(model, forecast, trained.training_seconds), trained


def count_for(study: Any, variant: Variant) -> Callable[[int], int]:
    """Units -> the parameter count of `variant` in `study`'s shapes (built, never trained)."""
    import keras

    from models.zoo import build_model

    shape = model_shape(study.spec)
    cache: dict[int, int] = {}

    def count(units: int) -> int:
        if units not in cache:
            config = study.config(variant.model, {**variant.hparams, "units": units}, 0)
            model = build_model(config.model.name, shape, **config.model.hparams_for())
            cache[units] = int(model.count_params())
            keras.backend.clear_session()
        return cache[units]

    return count


def variant_widths(study: Any, names: list[str], reference_units: int) -> dict[str, int]:
    """Every trainable variant's units at the reference's parameter budget."""
    budget = count_for(study, VARIANTS[REFERENCE])(reference_units)
    widths = {}
    for name in names:
        variant = VARIANTS[name]
        if name == REFERENCE:
            widths[name] = reference_units
        else:
            widths[name] = budget_units(variant, count_for(study, variant), budget, reference_units)
    return widths


# --------------------------------------------------------------------------------------------
# Running, resuming, reporting


def load_finished(path: Path | None, settings: dict[str, dict[str, Any]]) -> list[Run]:
    """The runs already in `path` (JSON lines), refusing runs made with other settings."""
    if path is None or not path.exists():
        return []
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            run = Run(**json.loads(line))
        except (json.JSONDecodeError, TypeError) as error:
            message = f"error: {path}, line {number}: not a run of this study: {error}"
            raise SystemExit(message) from None
        if run.study in settings and run.settings != settings[run.study]:
            raise SystemExit(
                f"error: {path}, line {number}: run with other settings {run.settings}; "
                f"this study uses {settings[run.study]}: pass another --results file"
            )
        runs.append(run)
    return runs


def run_study(study: Any, args: argparse.Namespace, finished: list[Run]) -> list[Run]:
    """Every variant and baseline of one study and every seed, skipping finished runs."""
    names = [name for name in args.variants if name in VARIANTS]
    units = QUICK_UNITS if args.quick else args.units
    widths = variant_widths(study, names, units)
    done = {(run.variant, run.seed) for run in finished if run.study == study.name}
    runs = [run for run in finished if run.study == study.name]
    plan = [(name, seed) for name in args.variants for seed in args.seeds]
    for name, seed in plan:
        if (name, seed) in done:
            continue
        if name in BASELINES and BASELINES[name] == "last" and seed != args.seeds[0]:
            continue  # no weights, no randomness: one run stands for every seed
        variant = VARIANTS.get(name, Variant(BASELINES.get(name, name)))
        hparams = {**variant.hparams, **({"units": widths[name]} if name in widths else {})}
        metrics, trained = study.run(variant.model, hparams, seed)
        total, recurrent = parameter_counts(trained.model)
        run = Run(
            study=study.name,
            variant=name,
            seed=seed,
            model=variant.model,
            units=widths.get(name),
            parameters=total,
            recurrent_parameters=recurrent,
            metrics={key: float(value) for key, value in metrics.items()},
            epochs=len(trained.history.get("loss", [])),
            train_seconds=round(trained.training_seconds, 1),
            settings=study.settings,
        )
        runs.append(run)
        if args.results is not None:
            with args.results.open("a") as stream:
                stream.write(json.dumps(asdict(run)) + "\n")
        shown = ", ".join(f"{key} {value:.4f}" for key, value in run.metrics.items())
        print(
            f"{study.name} {name} seed {seed}: {shown} ({run.parameters:,} parameters, "
            f"{run.epochs} epochs, {run.train_seconds:.0f} s)",
            flush=True,
        )
    return runs


def random_walk_run(study: StocksStudy) -> Run:
    """The random walk of prices on returns (a zero return): no training, one row."""
    metrics = study.scored(RANDOM_WALK, np.zeros_like(study.data.test.actual), 0.0)
    return Run("stocks", RANDOM_WALK, 0, "zero", None, 0, 0, metrics, 0, 0.0, study.settings)


def _mean_sd(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def format_study(study: str, runs: list[Run], comparisons: list[Comparison]) -> str:
    """One study's table: per variant, the mean ± sd over seeds, and the test against lstm."""
    metrics = {"weather": ("mse", "mae"), "stocks": ("mase", "mae", "direction")}[study]
    header = " | ".join(metrics)
    lines = [
        f"| variant | units | parameters (recurrent) | seeds | {header} | vs {REFERENCE} "
        "| p | Holm p | train s (median) |",
        "|---|---|---|---|" + "---|" * len(metrics) + "---|---|---|---|",
    ]
    tests = {row.variant: row for row in comparisons if row.study == study}
    order = [RANDOM_WALK, *BASELINES, *VARIANTS]
    for name in order:
        group = [run for run in runs if (run.study, run.variant) == (study, name)]
        if not group:
            continue
        first = group[0]
        cells = [
            _mean_sd([run.metrics[key] for run in group]) if key in first.metrics else "-"
            for key in metrics
        ]
        test = tests.get(name)
        if test is None:
            versus = p = adjusted = "-"
        else:
            versus = f"{test.mean_difference:+.4f}" + (" *" if test.significant else "")
            p = "-" if test.p_value is None else f"{test.p_value:.2g}"
            adjusted = "-" if test.holm_p_value is None else f"{test.holm_p_value:.2g}"
        # the median: a run that shared the cores with other work must not move the figure
        seconds = statistics.median(run.train_seconds for run in group)
        lines.append(
            f"| {name} | {first.units or '-'} | {first.parameters:,} "
            f"({first.recurrent_parameters:,}) | {len(group)} | {' | '.join(cells)} | {versus} "
            f"| {p} | {adjusted} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def log_to_mlflow(
    args: argparse.Namespace, runs: list[Run], comparisons: list[Comparison], report: str
) -> str:
    """One parent run with a nested run per study, variant and seed; returns the parent's id."""
    import mlflow

    use_experiment(args.experiment_name)
    with mlflow.start_run(run_name="variant study") as parent:
        mlflow.log_params(
            {
                "studies": ",".join(args.studies),
                "seeds": ",".join(map(str, args.seeds)),
                "reference": REFERENCE,
                "quick": args.quick,
            }
        )
        for row in comparisons:
            key = f"{row.study}.{row.variant}".replace("(", "").replace(")", "")
            mlflow.log_metric(f"{key}.mean_difference", row.mean_difference)
            if row.holm_p_value is not None:
                mlflow.log_metric(f"{key}.holm_p", row.holm_p_value)
        mlflow.log_text(report, "variants.md")
        mlflow.set_tag("mlflow.note.content", report)  # the run's description in the UI
        mlflow.log_dict({"comparisons": [asdict(row) for row in comparisons]}, "comparisons.json")
        for run in runs:
            with mlflow.start_run(
                run_name=f"{run.study} {run.variant} seed {run.seed}", nested=True
            ):
                mlflow.log_params(
                    {
                        "study": run.study,
                        "variant": run.variant,
                        "model": run.model,
                        "seed": run.seed,
                        "units": run.units,
                        **{f"setting.{key}": value for key, value in run.settings.items()},
                    }
                )
                mlflow.log_metrics(
                    {
                        **run.metrics,
                        "parameters": run.parameters,
                        "recurrent_parameters": run.recurrent_parameters,
                        "epochs": run.epochs,
                        "train_seconds": run.train_seconds,
                    }
                )
        return parent.info.run_id


def _names_from(known: list[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated names, each one of `known`."""

    def names(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        if not chosen or any(name not in known for name in chosen):
            raise argparse.ArgumentTypeError(f"expected names from {known}, got {text!r}")
        return chosen

    return names


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=_names_from(list(STUDIES)), default=STUDIES)
    parser.add_argument("--seeds", type=ltsf._integers, default=DEFAULT_SEEDS)
    parser.add_argument(
        "--variants",
        type=_names_from([*BASELINES, *VARIANTS]),
        default=(*BASELINES, *VARIANTS),
        help="variants and baselines to run (lstm is needed for the tests)",
    )
    parser.add_argument("--weather", default=DEFAULT_WEATHER, help="the LTSF Weather file")
    parser.add_argument("--epochs", type=int, default=10, help="most epochs on weather")
    parser.add_argument("--stocks-epochs", type=int, default=5, help="epochs on stocks")
    parser.add_argument("--units", type=int, default=32, help="lstm's width: the budget")
    parser.add_argument("--results", type=Path, help="JSON lines of finished runs, to resume")
    parser.add_argument("--no-mlflow", action="store_true", help="print only")
    parser.add_argument("--experiment-name", default="variant-study")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny widths, 1 epoch")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds: expected distinct seeds, got {args.seeds}")
    if args.units < 1:
        parser.error(f"--units: expected a positive integer, got {args.units}")
    if "weather" in args.studies and not Path(args.weather).is_file():
        parser.error(f"--weather: no file at {args.weather}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as folder:
        studies = [
            WeatherStudy(args) if name == "weather" else StocksStudy(args, Path(folder))
            for name in args.studies
        ]
        finished = load_finished(args.results, {study.name: study.settings for study in studies})
        for study in studies:
            runs += run_study(study, args, finished)
            if study.name == "stocks":
                runs.append(random_walk_run(study))
    comparisons = [
        row
        for name in args.studies
        for row in compare_to_reference(runs, name, list(args.variants))
    ]
    sections = []
    for name in args.studies:
        settings = next((run.settings for run in runs if run.study == name), {})
        sections.append(f"{name}: {settings}\n\n{format_study(name, runs, comparisons)}")
    report = "\n\n".join(sections)
    seconds = time.perf_counter() - started
    print()
    print(report)
    print(
        f"\nseeds {','.join(map(str, args.seeds))}; * = differs from {REFERENCE} at "
        f"{ALPHA} after Holm's correction; {seconds:.0f} s in all"
        + (" (quick)" if args.quick else "")
    )
    if not args.no_mlflow:
        parent = log_to_mlflow(args, runs, comparisons, report)
        print(f"MLflow: experiment {args.experiment_name!r}, parent run {parent}")
    print(
        json.dumps(
            {
                "runs": [asdict(run) for run in runs],
                "comparisons": [asdict(row) for row in comparisons],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
