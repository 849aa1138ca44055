"""Batch forecasting through the logged model: every series in one call vs a loop over series.

The stocks-5yr file (505 tickers, trading days, open/high/low/close/volume, target close) is
prepared with input width 30 and horizon 5: at the catalog's default width of 60 one ticker
(APTV, 44 rows) is dropped, at 30 all 505 survive. A small LSTM (16 units, zoo `lstm`,
UNTRAINED: the weights do not change the speed, only the numbers) is saved with
`save_forecast_model` into a temporary folder and loaded with `mlflow.pyfunc.load_model`, the
path a user of a logged model takes, MLflow's input schema enforcement included.

- vectorised: one `loaded.predict(history)` with the last `input_width` rows of every series
  (`to_model_input(frame, features, last_rows=input_width)`), repeated;
- loop: `loaded.predict(rows of one series)` for each series in turn (the per-series frames are
  cut before the clock starts, so the loop is not charged for selecting rows);
- intervals: the same model saved with a conformal calibration (`pipelines.runtime.intervals`,
  pooled, from 200 residual windows), whose `predict` adds the 80% and 90% bounds of every
  forecast: what forecast intervals cost at predict time.

Both outputs are checked to be equal before anything is timed. Wall-clock time on these 2-core
VMs was seen to snap to multiples of ~0.33 s, so every timed pass repeats its work for at least
three seconds; the contenders alternate and the median of the repeats is reported. A breakdown
runs the steps of `ForecastModel.predict` one by one (MLflow's schema enforcement, input checks
and parsing, last windows with value checks, scaling, the Keras call, the output frame) and
checks that they reproduce `predict`'s output.

The intervals' cost is measured in paired rounds, since a 3-second pass of each moves by more
than the few percent it costs: each round times a few calls of the plain model, then as many of
the calibrated one, and the ratio of the two is the round's figure; the median and quartiles over
the rounds are reported.

The last line is JSON: `series_per_s` (vectorised), `loop_series_per_s`, `speedup_vs_loop`
(their ratio), `interval_overhead` (median over the paired rounds of calibrated over plain call
time, minus 1: the share of predict time the intervals add) with `interval_overhead_q1`/`_q3`,
and the breakdown in milliseconds per call (`*_ms`).

Usage:
    python benchmarks/batch_forecast.py [--quick] [--source PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import mlflow.pyfunc
import numpy as np
import pandas as pd
import tensorflow as tf

from models.zoo import ModelShape, build_model
from pipelines.data.prepare import PrepareResult, run
from pipelines.data.settings import DataConfig
from pipelines.runtime.contract import SERIES_COLUMN, TIMESTAMP_COLUMN
from pipelines.runtime.forecaster import long_forecast_frame
from pipelines.runtime.history import check_history, ready_windows, refuse_unready, to_model_input
from pipelines.runtime.intervals import Calibration, calibrate
from pipelines.serving.pyfunc import save_forecast_model

DATASET, INPUT_WIDTH, HORIZON, UNITS = "stocks-5yr", 30, 5, 16
QUICK_SERIES = 20
PAIRED_ROUNDS, CALLS_PER_ROUND = 30, 5


def prepare(source: str | None) -> PrepareResult:
    """The prepared stocks-5yr frame, per-series scaler and window spec."""
    return run(DataConfig(dataset=DATASET, source=source, input_width=INPUT_WIDTH, horizon=HORIZON))


def save_and_load(
    prepared: PrepareResult, folder: Path, calibration: Calibration | None = None
) -> mlflow.pyfunc.PyFuncModel:
    """An untrained LSTM (the same weights every call) saved as the project's pyfunc model, with
    `calibration` if given, and loaded back through MLflow."""
    spec = prepared.spec
    shape = ModelShape(
        input_width=spec.input_width,
        horizon=spec.horizon,
        n_features=len(spec.features),
        target_indices=tuple(spec.features.index(target) for target in spec.targets),
    )
    keras.utils.set_random_seed(0)
    keras_model = build_model("lstm", shape, units=UNITS)
    path = folder / ("calibrated" if calibration is not None else "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own notices (pandas deprecations), not ours
        save_forecast_model(
            path,
            keras_model,
            prepared.scaler,
            spec,
            frequency=prepared.summary["frequency"],
            model_name="lstm",
            input_example=prepared.frame,
            calibration=calibration,
        )
    return mlflow.pyfunc.load_model(str(path))


def calls_per_second(work: Callable[[], object], min_seconds: float) -> float:
    """Calls of `work` per wall-clock second, repeated until at least `min_seconds` passed."""
    calls = 0
    start = time.perf_counter()
    while True:
        work()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls / elapsed


def paired_overheads(
    plain: Callable[[], object], calibrated: Callable[[], object], rounds: int, calls: int
) -> list[float]:
    """Per round: the time of `calls` calibrated calls over that of `calls` plain ones, minus 1."""
    overheads = []
    for _ in range(rounds):
        seconds = []
        for work in (plain, calibrated):
            start = time.perf_counter()
            for _ in range(calls):
                work()
            seconds.append(time.perf_counter() - start)
        overheads.append(seconds[1] / seconds[0] - 1)
    return overheads


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles (the values themselves for fewer than two)."""
    if len(values) < 2:
        return values[0], values[0]
    first, _, third = statistics.quantiles(values, n=4)
    return first, third


def loop_forecast(
    loaded: mlflow.pyfunc.PyFuncModel, per_series: list[pd.DataFrame]
) -> pd.DataFrame:
    """The naive way: one predict call per series, the forecasts stacked afterwards."""
    return pd.concat([loaded.predict(rows) for rows in per_series], ignore_index=True)


def check_equal(vectorised: pd.DataFrame, looped: pd.DataFrame) -> None:
    """Both ways forecast the same series, times and steps, and the same values (to float32)."""
    columns = [SERIES_COLUMN, TIMESTAMP_COLUMN, "step"]
    pd.testing.assert_frame_equal(vectorised[columns], looped[columns])
    values = [column for column in vectorised.columns if column not in columns]
    # Keras runs a batch of 505 and a batch of 1 through different kernels: float32 round-off.
    np.testing.assert_allclose(
        vectorised[values].to_numpy(), looped[values].to_numpy(), rtol=1e-5, atol=1e-4
    )


def breakdown(
    loaded: mlflow.pyfunc.PyFuncModel, history: pd.DataFrame, min_seconds: float
) -> dict[str, float]:
    """Milliseconds per call of each step of `ForecastModel.predict`, run one by one.

    The steps are `predict`'s own internal functions, in its order; their output is checked
    against `predict`'s, so the breakdown cannot drift from what is measured above.
    """
    model = loaded.unwrap_python_model()
    spec, scaler, frequency = model.spec, model.scaler, model.metadata["frequency"]
    width = spec.input_width
    state: dict[str, object] = {}
    known = sorted(scaler.scalers) if scaler.per_series else None

    def checks() -> None:
        state["history"] = check_history(history, spec, model.metadata, known)

    def windows() -> None:
        state["windows"], not_ready = ready_windows(state["history"], spec, frequency, known)
        refuse_unready(not_ready)

    def scaling() -> None:
        rows = state["windows"]
        state["series_ids"] = rows[SERIES_COLUMN].to_numpy()[::width]
        scaled = scaler.transform(rows, spec.features)
        state["batch"] = scaled.reshape(len(state["series_ids"]), width, len(spec.features))

    def keras_call() -> None:
        state["forecasts"] = np.asarray(
            model.keras_model.predict_on_batch(state["batch"]), dtype="float64"
        )

    def output() -> None:
        series_ids = state["series_ids"]
        values = scaler.inverse_transform(state["forecasts"], series_ids, spec.targets)
        last_times = pd.DatetimeIndex(state["windows"][TIMESTAMP_COLUMN].array[width - 1 :: width])
        state["frame"] = long_forecast_frame(series_ids, last_times, values, spec, frequency)

    steps = {
        "checks": checks,
        "windows": windows,
        "scaling": scaling,
        "keras": keras_call,
        "output": output,
    }
    for step in steps.values():  # one pass in order fills `state` for the steps after it
        step()
    pd.testing.assert_frame_equal(state["frame"], model.predict(None, history))
    milliseconds = {
        f"{name}_ms": 1000 / calls_per_second(step, min_seconds) for name, step in steps.items()
    }
    direct = 1000 / calls_per_second(lambda: model.predict(None, history), min_seconds)
    through_mlflow = 1000 / calls_per_second(lambda: loaded.predict(history), min_seconds)
    milliseconds["predict_ms"] = direct
    # What the steps timed alone do not explain (glue in `predict`, cache effects, noise).
    milliseconds["other_ms"] = direct - sum(milliseconds[f"{name}_ms"] for name in steps)
    milliseconds["mlflow_schema_ms"] = max(through_mlflow - direct, 0.0)
    milliseconds["loaded_predict_ms"] = through_mlflow
    return milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SERIES} series, short passes (seconds)"
    )
    parser.add_argument("--source", help="path of all_stocks_5yr.csv.gz (default: the catalog's)")
    arguments = parser.parse_args()
    repeats = 1 if arguments.quick else 3
    min_seconds = 0.3 if arguments.quick else 3.0
    stage_seconds = 0.1 if arguments.quick else 1.0

    prepared = prepare(arguments.source)
    features = prepared.spec.features
    history = to_model_input(prepared.frame, features, last_rows=INPUT_WIDTH)
    if arguments.quick:
        chosen = sorted(pd.unique(history[SERIES_COLUMN]))[:QUICK_SERIES]
        history = history.loc[history[SERIES_COLUMN].isin(chosen)].reset_index(drop=True)
    per_series = [rows for _, rows in history.groupby(SERIES_COLUMN, sort=True)]
    series = len(per_series)

    with tempfile.TemporaryDirectory(prefix="batch-forecast-") as folder:
        loaded = save_and_load(prepared, Path(folder))
        vectorised = loaded.predict(history)  # also the warm-up: Keras traces its function
        looped = loop_forecast(loaded, per_series)
        check_equal(vectorised, looped)
        assert len(vectorised) == series * HORIZON, (len(vectorised), series)
        residuals = np.random.default_rng(0).normal(size=(200, HORIZON, len(prepared.spec.targets)))
        calibrated = save_and_load(prepared, Path(folder), calibrate(residuals))
        with_bands = calibrated.predict(history)
        check_equal(vectorised, with_bands[vectorised.columns])  # the same point forecasts
        assert len(with_bands.columns) == len(vectorised.columns) + 4 * len(prepared.spec.targets)

        overheads = paired_overheads(
            lambda: loaded.predict(history),
            lambda: calibrated.predict(history),
            rounds=3 if arguments.quick else PAIRED_ROUNDS,
            calls=1 if arguments.quick else CALLS_PER_ROUND,
        )
        rates: dict[str, list[float]] = {"vectorised": [], "loop": []}
        for _ in range(repeats):
            rates["vectorised"].append(
                series * calls_per_second(lambda: loaded.predict(history), min_seconds)
            )
            rates["loop"].append(
                series * calls_per_second(lambda: loop_forecast(loaded, per_series), min_seconds)
            )
        medians = {name: statistics.median(values) for name, values in rates.items()}
        steps = breakdown(loaded, history, stage_seconds)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, mlflow {mlflow.__version__}, "
        f"pandas {pd.__version__}"
    )
    print(
        f"{DATASET}: {series} series (of {prepared.summary['series']} prepared), input width "
        f"{INPUT_WIDTH}, horizon {HORIZON}, {len(features)} features; LSTM({UNITS}) untrained; "
        f"median of {repeats}, passes of >= {min_seconds:g} s"
    )
    print(f"  {'vectorised':<11}{medians['vectorised']:>12,.0f} series/s  (one call)")
    print(f"  {'loop':<11}{medians['loop']:>12,.0f} series/s  ({series} calls)")
    print(f"  speedup    {medians['vectorised'] / medians['loop']:>12.1f}x")
    overhead, (low, high) = statistics.median(overheads), quartiles(overheads)
    print(
        f"  intervals: the 80% and 90% bounds add {overhead:+.1%} to a call "
        f"[{low:+.1%}, {high:+.1%}] (median [quartiles] of {len(overheads)} paired rounds)"
    )
    print(f"one vectorised call, step by step (ms, each timed alone over >= {stage_seconds:g} s):")
    for name in ("mlflow_schema", "checks", "windows", "scaling", "keras", "output", "other"):
        print(f"  {name:<14}{steps[f'{name}_ms']:>8.2f}")
    print(f"  {'predict':<14}{steps['predict_ms']:>8.2f}  (ForecastModel.predict, no MLflow)")
    print(f"  {'loaded':<14}{steps['loaded_predict_ms']:>8.2f}  (mlflow loaded.predict)")
    summary = {
        "benchmark": "batch_forecast",
        "dataset": DATASET,
        "series": series,
        "input_width": INPUT_WIDTH,
        "horizon": HORIZON,
        "units": UNITS,
        "series_per_s": round(medians["vectorised"]),
        "loop_series_per_s": round(medians["loop"], 1),
        "speedup_vs_loop": round(medians["vectorised"] / medians["loop"], 1),
        "interval_overhead": round(overhead, 4),
        "interval_overhead_q1": round(low, 4),
        "interval_overhead_q3": round(high, 4),
        **{name: round(value, 3) for name, value in steps.items()},
        "repeats": repeats,
        "quick": arguments.quick,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
