"""Stocks, honestly: do the models beat the random walk on the S&P 500 (stocks-5yr)?

Every ticker of the catalog's `stocks-5yr` (505 S&P 500 members, daily, 2013-02-08 to
2018-02-07) is split by date: training until 2016-08-07, validation until 2017-02-06, and the
last twelve months (2017-02-07 on) for the test. The models are trained once on all tickers
(one scaler per ticker, the train path of `pipelines.training.train`) on two targets:

- `prices`: the next closes (`close`) from the last `--input-width` days of open, high, low,
  close and volume; the random walk forecasts the last close (the zoo's `last`).
- `returns`: the next daily log returns of the close (`close_log_return`, the `log_returns`
  feature), from the same columns plus their log returns; the random walk of prices forecasts
  a zero return (`zero`), and `last` (yesterday's return again) is shown too.

For every model, on the test windows, in original units:

- MAE and MASE: each ticker's MAE divided by the random walk's in-sample MAE on its training
  rows (the naive error of the close for prices, the mean absolute return for returns),
  averaged over tickers;
- the share of tickers on which the model's MAE is below the random walk's, with a two-sided
  sign test against one half;
- directional accuracy: how often the sign of the forecast change (prices: against the last
  close; returns: the return itself) matches the actual one, over every ticker, window and step
  with a non-zero actual move and a non-zero forecast, with a one-sided binomial test against
  50%. Tickers share the market's move on a day, so the pooled binomial test treats
  correlated calls as independent and its p-value is too small; the by-day test (a one-sided
  t-test across test days of each day's accuracy against 50%) counts days as the independent
  unit.

For `returns`, forecast intervals at 80% on the same test windows, in original units: the
empirical coverage (the share of actual returns inside, nominal 0.80) and the mean interval
(Winkler) score, width plus 2 / 0.2 times each miss's distance to the interval (lower is
better; `pipelines.training.interval_metrics` scores every row). Our models' intervals are
split conformal, as `train` calibrates them: quantile offsets of the validation residuals in
scaled units, pooled over tickers, around each forecast; `zero` gets the same from its own
validation residuals. The baseline `historical-quantiles` forecasts, for every test day of a
ticker, the same interval: the empirical 10% and 90% quantiles (numpy's linear interpolation)
of that ticker's daily log returns before the test year (its training and validation rows,
until 2017-02-06: every return known when the test starts); its point forecast, scored like
the others, is the median of the same history. A sentence after the table says plainly
whether any of our models (`--models`) meets both coverage within 78-82% and a lower interval
score than that baseline. Prices get no interval columns.

Output: a table per target and one JSON line `{"results": [...]}`.

Usage:
    python benchmarks/stocks.py [--models linear,lstm,gru] [--epochs 5] [--input-width 20]
        [--horizon 1] [--seed 42] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
from scipy.stats import binomtest, ttest_1samp

from pipelines.config.loading import config_from_dict
from pipelines.data.catalog import get_entry
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.contract import (
    SERIES_COLUMN,
    TEST,
    TIMESTAMP_COLUMN,
    TRAIN,
    epoch_nanoseconds,
)
from pipelines.runtime.intervals import interval_quantiles
from pipelines.settings import ConfigError
from pipelines.training import interval_metrics
from pipelines.training.calibration import validation_calibration
from pipelines.training.evaluation import mase_scales, predict_part, target_windows
from pipelines.training.train import train_model, windowed_data

DATASET = "stocks-5yr"
SPLIT = "2016-08-08,2017-02-07"
"""Validation from 2016-08-08, test from 2017-02-07: the last twelve months."""
RANDOM_WALK = {"prices": "last", "returns": "zero"}
TARGETS = {"prices": "close", "returns": "close_log_return"}
HPARAMS = {"prices": {"units": 32, "normalization": "revin"}, "returns": {"units": 32}}
"""RevIN for price levels, which drift out of the training range; none for returns (mean ~0)."""
QUICK_TICKERS = 12
INTERVAL_LEVEL = 80
COVERAGE_GOAL = (0.78, 0.82)
"""The acceptance's band for the 80% intervals' test coverage."""
HISTORICAL = "historical-quantiles"
CALIBRATION = "pooled"
"""Pooled, not per ticker, chosen on principle before any test figure: the offsets are in
scaled units and each ticker's returns are scaled by its own training standard deviation, so
one pooled set of offsets already widens and narrows with each ticker's volatility. Pooling
estimates the 10% and 90% offsets from every ticker's validation residuals (about 60,000);
per ticker they would rest on at most about 125 days, a dozen residuals in each tail, and
that noise only widens the intervals or misses more."""


@dataclass
class Result:
    """One model on one target, over every ticker's test windows."""

    target: str
    model: str
    mae: float
    mase: float
    tickers: int
    share_beating_random_walk: float | None
    share_p_value: float | None
    directional_accuracy: float | None
    direction_calls: int
    direction_p_value: float | None
    direction_day_p_value: float | None
    coverage_80: float | None
    interval_score_80: float | None
    train_seconds: float


@dataclass
class TestForecasts:
    """Test windows of one target in original units, with what the tests need."""

    series_index: np.ndarray  # (windows,) ticker of each window
    actual: np.ndarray  # (windows, horizon)
    last_value: np.ndarray  # (windows,) the target's last input value
    days: np.ndarray  # (windows,) the first forecast day of each window (epoch nanoseconds)
    scales: np.ndarray  # (tickers,) in-sample naive MAE per ticker
    tickers: int


def run_config(
    target: str,
    args: Harness,
    source: str | None,
    model: str,
    hparams: dict | None = None,
    seed: int | None = None,
):
    """One model's run on one target; `hparams` (over HPARAMS) and `seed` (over `--seed`) let
    `variants.py` size and seed each run."""
    from models.registry import hyperparameters

    defaults = dict(HPARAMS[target])
    if args.quick:
        defaults["units"] = 8
    given = {**defaults, **(hparams or {})}
    hparams = {k: v for k, v in given.items() if k in hyperparameters(model)}
    return config_from_dict(
        {
            "data": {
                "dataset": DATASET,
                "source": source,
                "targets": [TARGETS[target]],
                "log_returns": target == "returns",
                "input_width": args.input_width,
                "horizon": args.horizon,
                "split": SPLIT,
            },
            "model": {"name": model, "hparams": hparams},
            "training": {
                "epochs": args.epochs,
                "batch_size": 256,
                "seed": args.seed if seed is None else seed,
            },
            "intervals": {
                "levels": [INTERVAL_LEVEL],
                "calibration": CALIBRATION if target == "returns" else "none",
            },
        }
    )


def per_ticker_mae(errors: np.ndarray, series_index: np.ndarray, tickers: int) -> np.ndarray:
    """Mean absolute error per ticker from (windows, horizon) errors."""
    totals = np.bincount(series_index, np.abs(errors).sum(axis=1), minlength=tickers)
    counts = np.bincount(series_index, minlength=tickers) * errors.shape[1]
    return totals / np.maximum(counts, 1)


def directional_accuracy(
    forecast_moves: np.ndarray, actual_moves: np.ndarray, tolerance: np.ndarray | float = 0.0
) -> tuple[float | None, int, float | None]:
    """Share of matching signs where both moves are non-zero, the count, and the one-sided
    binomial p-value against 50%. A forecast move within `tolerance` of zero is no call (the
    random walk's forecast comes back from float32 scaled units a few ulps off the last close).
    """
    called = (np.abs(forecast_moves) > tolerance) & (actual_moves != 0)
    calls = int(called.sum())
    if not calls:
        return None, 0, None
    hits = int((np.sign(forecast_moves[called]) == np.sign(actual_moves[called])).sum())
    return hits / calls, calls, float(binomtest(hits, calls, 0.5, alternative="greater").pvalue)


def day_clustered_p_value(
    forecast_moves: np.ndarray, actual_moves: np.ndarray, tolerance, days: np.ndarray
) -> float | None:
    """One-sided t-test across days of each day's directional accuracy against 50%.

    Tickers move together on a day, so the day, not the ticker-day, is the independent unit:
    this p-value does not pretend to 125,000 independent calls as the pooled binomial does.
    """
    called = (np.abs(forecast_moves) > tolerance) & (actual_moves != 0)
    hits = (np.sign(forecast_moves) == np.sign(actual_moves)) & called
    window_days = np.broadcast_to(days[:, np.newaxis], called.shape)
    frame = pd.DataFrame({"day": window_days[called], "hit": hits[called]})
    daily = frame.groupby("day")["hit"].mean()
    if len(daily) < 2 or daily.std() == 0:
        return None
    return float(ttest_1samp(daily, 0.5, alternative="greater").pvalue)


def score(
    target: str,
    model: str,
    forecast: np.ndarray,
    test: TestForecasts,
    random_walk_mae: np.ndarray | None,
    seconds: float,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
) -> Result:
    """Every figure of one model on one target (see the module docstring); `interval`, the
    80% interval's (lower, upper) bounds shaped like `forecast`, gives the interval figures."""
    ticker_mae = per_ticker_mae(forecast - test.actual, test.series_index, test.tickers)
    scored = np.bincount(test.series_index, minlength=test.tickers) > 0
    share = p_share = None
    if random_walk_mae is not None:
        wins = int((ticker_mae[scored] < random_walk_mae[scored]).sum())
        share = wins / int(scored.sum())
        p_share = float(binomtest(wins, int(scored.sum()), 0.5).pvalue)
    if target == "prices":
        last = test.last_value[:, np.newaxis]
        forecast_moves, actual_moves, tolerance = forecast - last, test.actual - last, 1e-6 * last
    else:
        forecast_moves, actual_moves, tolerance = forecast, test.actual, 0.0
    accuracy, calls, p_direction = directional_accuracy(forecast_moves, actual_moves, tolerance)
    p_days = (
        day_clustered_p_value(forecast_moves, actual_moves, tolerance, test.days) if calls else None
    )
    covered = interval_score = None
    if interval is not None:
        covered = interval_metrics.coverage(test.actual, *interval)
        interval_score = interval_metrics.interval_score(
            test.actual, *interval, level=INTERVAL_LEVEL
        )
    return Result(
        target=target,
        model=model,
        mae=float(np.abs(forecast - test.actual).mean()),
        mase=float((ticker_mae[scored] / test.scales[scored]).mean()),
        tickers=int(scored.sum()),
        share_beating_random_walk=share,
        share_p_value=p_share,
        directional_accuracy=accuracy,
        direction_calls=calls,
        direction_p_value=p_direction,
        direction_day_p_value=p_days,
        coverage_80=covered,
        interval_score_80=interval_score,
        train_seconds=round(seconds, 1),
    )


def random_walk_scales(prepared, target: str) -> np.ndarray:
    """Each ticker's in-sample MAE of the random walk on its training rows, in ticker order:
    the naive error of the close for prices (as MASE's usual scale), the mean absolute return
    for returns (the zero forecast's error), so a MASE below 1 means "better than the random
    walk did in sample" for both targets."""
    if target == "prices":
        scales, notes = mase_scales(prepared)
        if scales.original is None:
            raise SystemExit(f"error: stocks: MASE undefined: {'; '.join(notes)}")
        return np.asarray(scales.original, dtype="float64").reshape(-1)
    training = prepared.frame.loc[prepared.parts == TRAIN]
    by_ticker = training[TARGETS[target]].abs().groupby(training[SERIES_COLUMN].astype(str))
    scales = by_ticker.mean().sort_index()
    if not (scales > 0).all():
        raise SystemExit(
            f"error: stocks: tickers without returns: {list(scales[scales <= 0].index)}"
        )
    return scales.to_numpy(dtype="float64")


def historical_quantiles(
    history: np.ndarray, history_index: np.ndarray, tickers: int
) -> np.ndarray:
    """(tickers, 3): each ticker's 10%, 50% and 90% empirical quantiles (numpy's default linear
    interpolation) of its `history` values, `history_index` naming each value's ticker; NaN for
    a ticker without history."""
    low, high = interval_quantiles(INTERVAL_LEVEL)
    levels = [low, 0.5, high]
    table = np.full((tickers, len(levels)), np.nan)
    for ticker in range(tickers):
        values = history[history_index == ticker]
        if len(values):
            table[ticker] = np.quantile(values, levels)
    return table


def historical_forecast(
    data: TargetData, target: str
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The historical-quantile baseline on the test windows: each ticker's median of its
    returns before the test year (training and validation rows), and its 10%-90% interval, the
    same on every test day."""
    frame, test = data.prepared.frame, data.test
    past = frame.loc[data.prepared.parts != TEST]
    names = np.unique(frame[SERIES_COLUMN].astype(str).to_numpy())
    index = np.searchsorted(names, past[SERIES_COLUMN].astype(str).to_numpy())
    history = past[TARGETS[target]].to_numpy("float64")
    table = historical_quantiles(history, index, len(names))[test.series_index]
    lower, median, upper = (
        np.repeat(table[:, [column]], test.actual.shape[1], axis=1) for column in range(3)
    )
    return median, (lower, upper)


def calibrated_interval(
    calibration: Any, forecast: np.ndarray, data: TargetData
) -> tuple[np.ndarray, np.ndarray] | None:
    """The conformal 80% interval around original-unit test forecasts: the calibration's
    scaled-unit offsets divided by each ticker's scaler slope (the scaling is affine, so this is
    the inverse scaling of the scaled bounds); None without a calibration."""
    if calibration is None:
        return None
    ids, targets = data.actual.series_ids, data.prepared.spec.targets
    offsets = calibration.quantile_offsets(list(interval_quantiles(INTERVAL_LEVEL)), ids)
    slopes = data.prepared.scaler.slopes(ids, targets)[np.newaxis, :, np.newaxis, :]
    lower, upper = forecast[np.newaxis] + (offsets / slopes)[..., 0]
    return lower, upper


def zero_calibration(data: TargetData, settings: Any) -> Any:
    """The zero return's conformal calibration on its own validation residuals, as `train`
    calibrates a trained model's (None when too few windows)."""
    validation = target_windows(data.prepared, data.windowed, "validation")
    target = data.prepared.spec.targets[0]
    zeros = pd.DataFrame({SERIES_COLUMN: validation.series_ids, target: 0.0})
    scaled = data.prepared.scaler.transform(zeros, [target])[:, np.newaxis, :]
    forecast = np.broadcast_to(scaled, validation.scaled.shape)
    return validation_calibration(settings, validation.scaled, forecast, validation.series_ids, [])


@dataclass
class TargetData:
    """One target's prepared data, its windows and its test forecasts' ground truth."""

    prepared: Any
    windowed: Any
    actual: Any
    test: TestForecasts


def target_data(target: str, args: Harness, source: str | None) -> TargetData:
    """Prepares one target and the test windows every model is scored on."""
    prepared = prepare_data(run_config(target, args, source, "last").data)
    windowed = windowed_data(prepared)
    actual = target_windows(prepared, windowed, "test")
    dropped = prepared.summary["validation"]["dropped_series"]
    print(
        f"{target}: {len(np.unique(actual.series_ids))} tickers with test windows of "
        f"{prepared.summary['series_read']} read; left out: "
        + (", ".join(f"{item['series_id']} ({item['reason']})" for item in dropped) or "none"),
        flush=True,
    )
    scales = random_walk_scales(prepared, target)
    starts = windowed.starts["test"]
    last_row = prepared.frame[TARGETS[target]].to_numpy("float64")[starts + args.input_width - 1]
    test = TestForecasts(
        series_index=actual.series_index,
        actual=actual.original[..., 0],
        last_value=last_row,
        days=epoch_nanoseconds(prepared.frame[TIMESTAMP_COLUMN])[starts + args.input_width],
        scales=scales,
        tickers=len(scales),
    )
    return TargetData(prepared, windowed, actual, test)


def trained_forecast(config: Any, data: TargetData) -> tuple[np.ndarray, Any]:
    """Trains `config`'s model; its test forecasts in original units (windows, horizon), and
    the `TrainResult`."""
    trained = train_model(config, data.prepared)
    scaled = predict_part(trained.model, data.windowed, "test", config.training.batch_size)
    original = data.prepared.scaler.inverse_transform(
        scaled, data.actual.series_ids, data.prepared.spec.targets
    )[..., 0]
    return original, trained


def run_target(target: str, args: Harness, source: str | None) -> list[Result]:
    """Trains every model on one target and scores it beside the random walk."""
    data = target_data(target, args, source)
    test = data.test
    forecasts: dict[str, tuple[np.ndarray, float, tuple | None]] = {}
    if target == "returns":
        zero = np.zeros_like(test.actual)
        calibration = zero_calibration(data, run_config(target, args, source, "last").intervals)
        forecasts["zero"] = (zero, 0.0, calibrated_interval(calibration, zero, data))
        median, interval = historical_forecast(data, target)
        forecasts[HISTORICAL] = (median, 0.0, interval)
    for model in ("last", *args.models):
        original, trained = trained_forecast(run_config(target, args, source, model), data)
        interval = calibrated_interval(trained.calibration, original, data)
        forecasts[model] = (original, trained.training_seconds, interval)
        print(f"{target} {model}: trained in {trained.training_seconds:.0f} s", flush=True)
    walk = forecasts[RANDOM_WALK[target]][0]
    walk_mae = per_ticker_mae(walk - test.actual, test.series_index, test.tickers)
    return [
        score(
            target,
            model,
            forecast,
            test,
            None if model == RANDOM_WALK[target] else walk_mae,
            seconds,
            interval,
        )
        for model, (forecast, seconds, interval) in forecasts.items()
    ]


def interval_verdict(results: list[Result], models: tuple[str, ...]) -> str | None:
    """One plain sentence: which of our models' 80% return intervals cover 78-82% of the test
    days with a lower interval score than the historical quantiles', or that none does."""
    rows = {r.model: r for r in results if r.target == "returns"}
    base = rows.get(HISTORICAL)
    ours = [rows[m] for m in models if m in rows and rows[m].interval_score_80 is not None]
    if base is None or base.interval_score_80 is None or not ours:
        return None
    low, high = COVERAGE_GOAL
    winners = [
        r.model
        for r in ours
        if low <= r.coverage_80 <= high and r.interval_score_80 < base.interval_score_80
    ]
    best = min(ours, key=lambda r: r.interval_score_80)
    against = (
        f"the historical quantiles' interval score {base.interval_score_80:.5g} "
        f"(coverage {base.coverage_80:.2%}); best of ours: {best.model}, "
        f"{best.interval_score_80:.5g} (coverage {best.coverage_80:.2%})"
    )
    if winners:
        return (
            f"returns, 80% intervals: {', '.join(winners)} cover {low:.0%}-{high:.0%} and beat "
            f"{against}."
        )
    return (
        f"Plainly: none of our models' 80% return intervals both covers {low:.0%}-{high:.0%} "
        f"and beats {against}."
    )


def format_table(results: list[Result]) -> str:
    def cell(value: float | None, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    lines = [
        "| target | model | MAE | MASE | tickers beating RW | sign-test p | direction | "
        "calls | binomial p | by-day p | 80% coverage | interval score | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.model} | {r.mae:.5g} | {r.mase:.4f} | "
            f"{cell(r.share_beating_random_walk, '{:.1%}')} | {cell(r.share_p_value, '{:.2g}')} | "
            f"{cell(r.directional_accuracy, '{:.2%}')} | {r.direction_calls:,} | "
            f"{cell(r.direction_p_value, '{:.2g}')} | "
            f"{cell(r.direction_day_p_value, '{:.2g}')} | {cell(r.coverage_80, '{:.2%}')} | "
            f"{cell(r.interval_score_80, '{:.5g}')} | {r.train_seconds:.0f} |"
        )
    return "\n".join(lines)


def quick_source(folder: Path) -> str:
    """The first `QUICK_TICKERS` tickers of the catalog's file, for a smoke test."""
    path = get_entry(DATASET).source["path"]
    from pipelines.paths import REPOSITORY_ROOT

    frame = pd.read_csv(REPOSITORY_ROOT / path)
    names = sorted(frame["Name"].unique())[:QUICK_TICKERS]
    target = folder / "stocks_quick.csv"
    frame[frame["Name"].isin(names)].to_csv(target, index=False)
    return str(target)


@dataclass(frozen=True)
class Harness:
    """What one run of the harness does: the command line's options, checked by `harness`
    (how `variants.py` drives it without a command line)."""

    models: tuple[str, ...] = ("linear", "lstm", "gru")
    epochs: int = 5
    input_width: int = 20
    horizon: int = 1
    seed: int = 42
    quick: bool = False


def harness(**settings: Any) -> Harness:
    """The harness's settings (Harness's defaults where not given); `quick` trains 1 epoch.

    Raises:
        ConfigError: an unknown model, named by its option.
    """
    from models.registry import MODEL_NAMES

    chosen = Harness(**settings)
    unknown = [name for name in chosen.models if name not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"--models: expected zoo models {list(MODEL_NAMES)}, got {unknown}")
    return replace(chosen, models=tuple(chosen.models), epochs=1) if chosen.quick else chosen


def parse_arguments(argv: list[str] | None = None) -> Harness:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", type=lambda text: tuple(text.split(",")), default=Harness.models
    )
    parser.add_argument("--epochs", type=int, default=Harness.epochs)
    parser.add_argument("--input-width", type=int, default=Harness.input_width)
    parser.add_argument("--horizon", type=int, default=Harness.horizon)
    parser.add_argument("--seed", type=int, default=Harness.seed)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_TICKERS} tickers, 1 epoch, 8 units"
    )
    try:
        return harness(**vars(parser.parse_args(argv)))
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        source = quick_source(Path(folder)) if args.quick else None
        results = [
            result
            for target in ("prices", "returns")
            for result in run_target(target, args, source)
        ]
    print()
    print(
        f"{DATASET}: split {SPLIT} (validation, test starts), L={args.input_width}, "
        f"H={args.horizon}, {args.epochs} epochs, seed {args.seed}, "
        f"{time.perf_counter() - started:.0f} s in all" + (" (quick)" if args.quick else "")
    )
    print(format_table(results))
    verdict = interval_verdict(results, args.models)
    if verdict:
        print(verdict)
    print(json.dumps({"results": [asdict(result) for result in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
