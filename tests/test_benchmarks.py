"""Quick modes of the benchmarks: their numbers agree with each other (the printed ratios are
the ratios of the printed rates, the JSON line is the table), and their helpers compute known
answers (the batch forecast's equality check compares values; the peephole ratios divide the
right rates)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from pipelines.config.loading import flatten
from pipelines.paths import REPOSITORY_ROOT


@dataclass(frozen=True)
class QuickRun:
    """What a `--quick` benchmark printed: its lines and its last line's JSON."""

    lines: list[str]
    figures: dict[str, Any]


def run_quick(script: str, *arguments: str) -> QuickRun:
    """Runs `benchmarks/<script> --quick` (it must exit 0) and parses its output.

    Args:
        script: the benchmark's file name.
        arguments: more command-line arguments.

    Returns:
        The printed lines and the JSON of the last one.
    """
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    return QuickRun(lines=lines, figures=json.loads(lines[-1]))


def load_benchmark(script: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Imports `benchmarks/<script>` as a module; its path and environment edits are undone.

    Args:
        script: the benchmark's file name.
        monkeypatch: restores `sys.path` and `TF_CPP_MIN_LOG_LEVEL` after the test.

    Returns:
        The module (its `main` is not run).
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    path = REPOSITORY_ROOT / "benchmarks" / script
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the module runs.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def number(text: str) -> float:
    """A printed number: `12,345` -> 12345.0, `17.0x` -> 17.0."""
    return float(text.replace(",", "").removesuffix("x"))


def line_starting(lines: list[str], prefix: str) -> str:
    """The only line that starts with `prefix`."""
    (line,) = [line for line in lines if line.startswith(prefix)]
    return line


def assert_ratio(ratio: float, numerator: float, denominator: float, decimals: int) -> None:
    """`ratio` (rounded to `decimals`) is numerator / denominator, both printed as integers.

    The bound allows the ratio's own rounding and the rounding of both rates to integers.

    Args:
        ratio: the reported ratio.
        numerator: the reported rate above the line.
        denominator: the reported rate below the line.
        decimals: how many decimals the ratio was rounded to.
    """
    exact = numerator / denominator
    tolerance = 0.5 * 10**-decimals + exact * (0.5 / numerator + 0.5 / denominator) + 1e-9
    assert abs(ratio - exact) <= tolerance, (ratio, numerator, denominator)


# --------------------------------------------------------------------------------------------
# windowing.py


@pytest.fixture(scope="module")
def windowing_run(shared_datasets) -> QuickRun:
    return run_quick("windowing.py", "--source", str(shared_datasets / "weather.csv.gz"))


@pytest.mark.shared_data
def test_windowing_quick_counts_the_windows_it_was_asked_for(windowing_run: QuickRun) -> None:
    figures, lines = windowing_run.figures, windowing_run.lines
    assert figures["quick"] is True and figures["windows"] == 3000
    header = line_starting(lines, "windows:")
    assert "input 144, horizon 96, 21 channels, 3,000 windows, batch 256, median of 1" in header
    training = line_starting(lines, "training:")
    assert "1,024 windows per epoch, median of 1" in training


@pytest.mark.shared_data
def test_windowing_quick_ratios_are_the_ratios_of_the_printed_rates(
    windowing_run: QuickRun,
) -> None:
    figures, lines = windowing_run.figures, windowing_run.lines
    rates = {
        line.split()[0]: number(line.split()[1]) for line in lines if line.endswith(" windows/s")
    }
    samples = {
        line.split()[0]: number(line.split()[1]) for line in lines if line.endswith(" samples/s")
    }
    assert rates == {
        "ours": pytest.approx(figures["ours_windows_per_s"], abs=1),
        "keras": pytest.approx(figures["keras_windows_per_s"], abs=1),
        "numpy": pytest.approx(figures["numpy_windows_per_s"], abs=1),
    }
    assert samples == {
        "ours": pytest.approx(figures["ours_train_samples_per_s"], abs=1),
        "arrays": pytest.approx(figures["arrays_train_samples_per_s"], abs=1),
    }
    assert all(rate > 0 for rate in (*rates.values(), *samples.values()))
    assert_ratio(figures["speedup_vs_keras"], rates["ours"], rates["keras"], 2)
    assert_ratio(figures["numpy_speedup_vs_keras"], rates["numpy"], rates["keras"], 2)
    assert_ratio(figures["train_feed_ratio"], samples["ours"], samples["arrays"], 3)


# --------------------------------------------------------------------------------------------
# peephole.py

PEEPHOLE_LABELS = ("PeepholeLSTM (XLA)", "PeepholeLSTM", "keras LSTM", "keras GRU")
PEEPHOLE_CASES = {
    "": ("24 steps:", "2,048 samples per pass"),
    "long_": ("144 steps:", "1,024 samples per pass"),
}


def peephole_table(lines: list[str], header: str) -> dict[str, list[float | None]]:
    """The rows of one case's table: label -> [train/s, x LSTM, predict/s, x LSTM, CPU train
    x LSTM, CPU predict x LSTM], None where the table prints `-`.

    Args:
        lines: the benchmark's output.
        header: the first words of the case's header line (`24 steps:`).

    Returns:
        The four rows by label.
    """
    first = lines.index(line_starting(lines, header))
    rows = {}
    for line in lines[first + 2 : first + 6]:
        label = line[2:24].strip()
        assert label in PEEPHOLE_LABELS, line
        rows[label] = [None if cell == "-" else number(cell) for cell in line[24:].split()]
    assert len(rows) == len(PEEPHOLE_LABELS)
    return rows


@pytest.fixture(scope="module")
def peephole_run() -> QuickRun:
    return run_quick("peephole.py")


@pytest.mark.parametrize("prefix", sorted(PEEPHOLE_CASES))
def test_peephole_quick_table_and_json_agree(peephole_run: QuickRun, prefix: str) -> None:
    figures, lines = peephole_run.figures, peephole_run.lines
    assert figures["quick"] is True
    header, size = PEEPHOLE_CASES[prefix]
    assert size in line_starting(lines, header) and "median of 3" in line_starting(lines, header)
    table = peephole_table(lines, header)
    lstm, peephole, jit, gru = (
        table["keras LSTM"],
        table["PeepholeLSTM"],
        table["PeepholeLSTM (XLA)"],
        table["keras GRU"],
    )
    assert lstm[1] == lstm[3] == lstm[4] == lstm[5] == 1.0
    assert jit[0] is None and jit[1] is None and jit[4] is None  # XLA: prediction only
    # The "x LSTM" columns are the ratios of the printed rates.
    for row in (peephole, gru):
        assert_ratio(row[1], row[0], lstm[0], 2)
    for row in (peephole, jit, gru):
        assert_ratio(row[3], row[2], lstm[2], 2)
    # The JSON carries the table's rates and ratios.
    assert figures[f"{prefix}lstm_train_samples_per_s"] == pytest.approx(lstm[0], abs=1)
    assert figures[f"{prefix}lstm_predict_samples_per_s"] == pytest.approx(lstm[2], abs=1)
    assert figures[f"{prefix}peephole_train_samples_per_s"] == pytest.approx(peephole[0], abs=1)
    assert figures[f"{prefix}peephole_predict_jit_samples_per_s"] == pytest.approx(jit[2], abs=1)
    table_ratios = {
        "train_ratio_vs_lstm": peephole[1],
        "predict_default_ratio_vs_lstm": peephole[3],
        "predict_jit_ratio_vs_lstm": jit[3],
        "gru_train_ratio_vs_lstm": gru[1],
        "gru_predict_ratio_vs_lstm": gru[3],
        "cpu_train_ratio_vs_lstm": peephole[4],
        "cpu_predict_default_ratio_vs_lstm": peephole[5],
        "cpu_predict_jit_ratio_vs_lstm": jit[5],
    }
    for key, printed in table_ratios.items():
        # 3 decimals in the JSON, 2 in the table, from the same quotient.
        assert figures[f"{prefix}{key}"] == pytest.approx(printed, abs=0.0051), key
    assert_ratio(
        figures[f"{prefix}train_ratio_vs_lstm"],
        figures[f"{prefix}peephole_train_samples_per_s"],
        figures[f"{prefix}lstm_train_samples_per_s"],
        3,
    )
    assert_ratio(
        figures[f"{prefix}predict_jit_ratio_vs_lstm"],
        figures[f"{prefix}peephole_predict_jit_samples_per_s"],
        figures[f"{prefix}lstm_predict_samples_per_s"],
        3,
    )
    # The best prediction ratio is the better of the default and XLA ratios.
    assert figures[f"{prefix}predict_ratio_vs_lstm"] == max(
        figures[f"{prefix}predict_default_ratio_vs_lstm"],
        figures[f"{prefix}predict_jit_ratio_vs_lstm"],
    )


def test_peephole_ratios_divide_the_right_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    peephole = load_benchmark("peephole.py", monkeypatch)
    case = {
        "train": {"peephole": 300.0, "lstm": 200.0, "gru": 100.0},
        "predict": {"peephole": 1000.0, "peephole_jit": 1500.0, "lstm": 500.0, "gru": 250.0},
        "train_cpu": {"peephole": 90.0, "lstm": 60.0, "gru": 30.0},
        "predict_cpu": {"peephole": 400.0, "peephole_jit": 100.0, "lstm": 800.0, "gru": 80.0},
        "samples": 2048,
        "by_instance": {"train": {"peephole": [300.0, 180.0], "lstm": [200.0, 250.0]}},
    }
    assert peephole.ratios(case, prefix="long_") == {
        "long_train_ratio_vs_lstm": 1.5,
        "long_predict_ratio_vs_lstm": 3.0,
        "long_predict_default_ratio_vs_lstm": 2.0,
        "long_predict_jit_ratio_vs_lstm": 3.0,
        "long_gru_train_ratio_vs_lstm": 0.5,
        "long_gru_predict_ratio_vs_lstm": 0.5,
        "long_cpu_train_ratio_vs_lstm": 1.5,
        "long_cpu_predict_default_ratio_vs_lstm": 0.5,
        "long_cpu_predict_jit_ratio_vs_lstm": 0.125,
        "long_peephole_train_samples_per_s": 300,
        "long_lstm_train_samples_per_s": 200,
        "long_lstm_predict_samples_per_s": 500,
        "long_peephole_predict_jit_samples_per_s": 1500,
        # Each copy over the median LSTM copy (the folded `train` figure).
        "long_train_ratios_by_instance": [1.5, 0.9],
        "long_lstm_train_ratios_by_instance": [1.0, 1.25],
    }
    # The default mode faster than XLA: the best ratio is the default one.
    case["predict"]["peephole_jit"] = 750.0
    assert peephole.ratios(case)["predict_ratio_vs_lstm"] == 2.0


def test_peephole_median_over_instances_folds_each_contenders_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peephole = load_benchmark("peephole.py", monkeypatch)
    rates = {
        "train": {
            "peephole#0": 90.0,
            "lstm#0": 100.0,
            "peephole#1": 120.0,
            "lstm#1": 104.0,
            "peephole#2": 118.0,
            "lstm#2": 98.0,
        },
        "predict": {
            "peephole#0": 5.0,
            "peephole_jit#0": 7.0,
            "peephole#1": 3.0,
            "peephole_jit#1": 9.0,
            "peephole#2": 4.0,
            "peephole_jit#2": 8.0,
        },
        "train_cpu": {"lstm#0": 1.0, "lstm#1": 3.0, "lstm#2": 2.0},
        "predict_cpu": {"lstm#0": 6.0, "lstm#1": 4.0, "lstm#2": 5.0},
        "samples": 512,
    }
    folded = peephole.median_over_instances(rates)
    assert folded["samples"] == 512
    assert folded["train"] == {"peephole": 118.0, "lstm": 100.0}
    assert folded["predict"] == {"peephole": 4.0, "peephole_jit": 8.0}  # `_jit` stays apart
    assert folded["train_cpu"] == {"lstm": 2.0} and folded["predict_cpu"] == {"lstm": 5.0}
    # Every copy's figure, in instance order.
    assert folded["by_instance"]["train"] == {
        "peephole": [90.0, 120.0, 118.0],
        "lstm": [100.0, 104.0, 98.0],
    }


def test_peephole_train_steps_pair_the_median_copies_of_each_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peephole = load_benchmark("peephole.py", monkeypatch)
    # Seconds per training step of each copy, in build order. Per round, the median copy of
    # the peephole model takes 2 s a step and of the LSTM 4 s: a ratio of 2. The last copies
    # alone would give 0.25, the mean rates 1.27, the first copies 8.
    seconds_per_step = {"peephole": [1.0, 2.0, 4.0], "lstm": [8.0, 4.0, 1.0]}
    built: dict[str, int] = {"peephole": 0, "lstm": 0}
    clock = [0.0]

    def build_model(kind: str, steps: int) -> float:
        built[kind] += 1
        return seconds_per_step[kind][built[kind] - 1]

    class Loss:
        def numpy(self) -> float:
            return 0.0

    def train_step_function(seconds: float, inputs: object, targets: object) -> object:
        def step() -> Loss:
            clock[0] += seconds
            return Loss()

        return step

    monkeypatch.setattr(peephole, "build_model", build_model)
    monkeypatch.setattr(peephole, "train_step_function", train_step_function)
    monkeypatch.setattr(peephole, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    median, first, third = peephole.measure_train_steps(24, 4, 3, 3)
    assert built == {"peephole": 3, "lstm": 3}
    assert (median, first, third) == (pytest.approx(2.0),) * 3


def test_peephole_paired_ratio_is_the_median_and_quartiles_of_per_round_ratios(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peephole = load_benchmark("peephole.py", monkeypatch)
    # Per-round ratios 1.1, 0.9, 1.2, 1.0; the ratio of the medians (115 / 100) would differ.
    median, first, third = peephole.paired_ratio([110.0, 180.0, 120.0, 50.0], [100, 200, 100, 50])
    assert median == pytest.approx(1.05)
    assert (first, third) == (pytest.approx(0.925), pytest.approx(1.175))


@pytest.mark.parametrize(("prefix", "steps"), [("", 24), ("long_", 144)])
def test_peephole_quick_prints_the_training_step_ratio_it_reports(
    peephole_run: QuickRun, prefix: str, steps: int
) -> None:
    line = line_starting(peephole_run.lines, f"training step alone ({steps} steps;")
    assert "2 copies each; median [quartiles] of 3 paired rounds" in line
    median, first, third = (
        float(figure)
        for figure in re.search(r"([\d.]+)x keras LSTM \[([\d.]+)-([\d.]+)\]", line).groups()
    )
    assert first <= median <= third
    assert peephole_run.figures[f"{prefix}step_train_ratio_vs_lstm"] == pytest.approx(
        median, abs=0.0051
    )


@pytest.mark.parametrize("prefix", sorted(PEEPHOLE_CASES))
def test_peephole_quick_prints_each_copys_training_ratio(
    peephole_run: QuickRun, prefix: str
) -> None:
    header, _ = PEEPHOLE_CASES[prefix]
    lines = peephole_run.lines
    case_lines = lines[lines.index(line_starting(lines, header)) :]
    for label, key in (
        ("PeepholeLSTM", "train_ratios_by_instance"),
        ("keras LSTM", "lstm_train_ratios_by_instance"),
    ):
        # The case's own line: the first after its header.
        line = next(
            line
            for line in case_lines
            if line.startswith(f"  training of each copy of {label}, x LSTM (median copy):")
        )
        printed = [float(figure) for figure in line.split(":")[1].split()]
        reported = peephole_run.figures[f"{prefix}{key}"]
        assert len(printed) == len(reported) == 2
        assert printed == pytest.approx(reported, abs=0.0051)
    # Over the median of two LSTM copies (their mean), the two LSTM ratios average 1.
    assert sum(peephole_run.figures[f"{prefix}lstm_train_ratios_by_instance"]) / 2 == pytest.approx(
        1.0, abs=0.001
    )


# --------------------------------------------------------------------------------------------
# batch_forecast.py

BATCH_STEPS = ("checks", "windows", "scaling", "keras", "output")


@pytest.fixture(scope="module")
def batch_forecast_run(shared_datasets) -> QuickRun:
    return run_quick(
        "batch_forecast.py", "--source", str(shared_datasets / "all_stocks_5yr.csv.gz")
    )


@pytest.mark.shared_data
def test_batch_forecast_quick_table_and_json_agree(batch_forecast_run: QuickRun) -> None:
    figures, lines = batch_forecast_run.figures, batch_forecast_run.lines
    assert figures["benchmark"] == "batch_forecast" and figures["quick"] is True
    assert (figures["series"], figures["input_width"], figures["horizon"]) == (20, 30, 5)
    header = line_starting(lines, "stocks-5yr:")
    assert "20 series (of 505 prepared), input width 30, horizon 5" in header
    vectorised = line_starting(lines, "  vectorised").split()
    loop = line_starting(lines, "  loop").split()
    assert vectorised[2:] == ["series/s", "(one", "call)"]
    assert loop[2:] == ["series/s", "(20", "calls)"]
    assert number(vectorised[1]) == pytest.approx(figures["series_per_s"], abs=1)
    assert number(loop[1]) == pytest.approx(figures["loop_series_per_s"], abs=0.55)
    speedup = number(line_starting(lines, "  speedup").split()[1])
    assert speedup == pytest.approx(figures["speedup_vs_loop"], abs=0.051)
    assert figures["series_per_s"] > 0 and figures["loop_series_per_s"] > 0
    assert_ratio(
        figures["speedup_vs_loop"], figures["series_per_s"], figures["loop_series_per_s"], 1
    )
    # The calibrated twin: what the bounds cost, printed as in the JSON.
    intervals = line_starting(lines, "  intervals:")
    found = re.search(r"add ([-+][\d.]+)% to a call \[([-+][\d.]+)%, ([-+][\d.]+)%\]", intervals)
    assert found, intervals
    printed = [float(value) for value in found.groups()]
    keys = ("interval_overhead", "interval_overhead_q1", "interval_overhead_q3")
    assert printed[0] == pytest.approx(100 * figures[keys[0]], abs=0.051)
    assert printed[1:3] == pytest.approx([100 * figures[key] for key in keys[1:]], abs=0.051)
    assert figures[keys[1]] <= figures[keys[0]] <= figures[keys[2]]
    # The breakdown's table is the JSON's, and its parts add up as documented.
    for name in (*BATCH_STEPS, "mlflow_schema", "other", "predict"):
        printed = number(line_starting(lines, f"  {name} ").split()[1])
        assert printed == pytest.approx(figures[f"{name}_ms"], abs=0.0051), name
    assert number(line_starting(lines, "  loaded ").split()[1]) == pytest.approx(
        figures["loaded_predict_ms"], abs=0.0051
    )
    steps_sum = sum(figures[f"{name}_ms"] for name in BATCH_STEPS)
    assert figures["other_ms"] == pytest.approx(figures["predict_ms"] - steps_sum, abs=0.004)
    assert figures["mlflow_schema_ms"] == pytest.approx(
        max(figures["loaded_predict_ms"] - figures["predict_ms"], 0.0), abs=0.002
    )
    assert all(figures[f"{name}_ms"] > 0 for name in (*BATCH_STEPS, "predict", "loaded_predict"))


def forecasts(values: list[float], series: tuple[str, ...] = ("A", "B")) -> pd.DataFrame:
    """A long-format forecast frame of two steps per series, like the logged model returns.

    Args:
        values: one `close` forecast per row, series by series.
        series: the series ids.

    Returns:
        `series_id`, `timestamp`, `step`, `close`.
    """
    steps = len(values) // len(series)
    return pd.DataFrame(
        {
            "series_id": np.repeat(series, steps),
            "timestamp": pd.to_datetime(["2018-02-08", "2018-02-09"] * len(series), utc=True),
            "step": np.tile(np.arange(1, steps + 1), len(series)),
            "close": values,
        }
    )


def test_batch_forecast_equality_check_compares_the_forecast_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_forecast = load_benchmark("batch_forecast.py", monkeypatch)
    vectorised = forecasts([10.0, 11.0, 20.0, 21.0])
    # float32 round-off between a batch of many and a batch of one passes.
    batch_forecast.check_equal(vectorised, forecasts([10.0, 11.0 + 1e-6, 20.0, 21.0]))
    with pytest.raises(AssertionError):
        batch_forecast.check_equal(vectorised, forecasts([10.0, 11.0, 20.0, 21.5]))
    with pytest.raises(AssertionError):
        batch_forecast.check_equal(vectorised, forecasts([10.0, 11.0, 20.0, 21.0], ("A", "C")))
    with pytest.raises(AssertionError):  # the loop's rows in another order
        batch_forecast.check_equal(vectorised, forecasts([20.0, 21.0, 10.0, 11.0], ("B", "A")))


def test_ltsf_quick_scores_every_model_and_horizon_by_the_protocol(tmp_path) -> None:
    from tests.data.test_as_published import ltsf_file, published_borders, repeat_last_by_hand

    path = tmp_path / "tiny.csv"
    frame = ltsf_file(path, 700)
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        environment.pop(name, None)
    result = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY_ROOT / "benchmarks" / "ltsf.py"),
            "--quick",
            "--data",
            str(path),
            "--models",
            "repeat,linear,lstm",
            "--log-mlflow",
            "--levels",
            "90,80",
            "--probts",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    results = json.loads(lines[-1])["results"]
    assert [(r["model"], r["horizon"]) for r in results] == [
        ("repeat", 12),
        ("linear", 12),
        ("lstm", 12),
    ]
    borders = published_borders(700, "0.7,0.1,0.2", 24)
    values = frame[["a", "OT"]].to_numpy(dtype="float64")
    windows, expected_mse, expected_mae = repeat_last_by_hand(
        values, borders["test"], borders["train"][1], 24, 12
    )
    assert {r["windows"] for r in results} == {windows}
    assert results[0]["mse"] == pytest.approx(expected_mse, rel=1e-5)
    assert results[0]["mae"] == pytest.approx(expected_mae, rel=1e-5)
    intervals_at = lines.index(line_starting(lines, "Intervals at 80, 90 (test part):"))
    for entry in results:
        row = line_starting(lines[:intervals_at], f"| {entry['model']} | 12 | 42 |").split("|")
        assert number(row[4].strip()) == pytest.approx(entry["mse"], abs=5e-5)
        assert number(row[7].strip()) == pytest.approx(entry["mse"] / results[0]["mse"], abs=5e-4)
    assert results[2]["train_seconds"] > 0 and results[2]["parameters"] > 0
    # --levels: intervals recalibrated as the test actuals arrive, scored on test (scaled
    # units), the validation calibration beside; each level in the JSON and in the intervals
    # table; --probts: ProbTS's CRPS and NMAE (original units).
    for entry in results:
        coverage, width = entry["coverage"], entry["width"]
        assert list(coverage) == ["80", "90"] and 0 <= coverage["80"] <= coverage["90"] <= 1
        assert 0 < width["80"] < width["90"] and entry["crps"] > 0
        assert entry["intervals"] == "rolling" and entry["static"]["coverage"].keys() == {
            "80",
            "90",
        }
        low, high = entry["coverage_steps"]["80"]
        assert 0 <= low <= coverage["80"] <= high <= 1
        assert entry["probts_crps"] > 0 and entry["probts_nmae"] > 0
        row = line_starting(lines[intervals_at:], f"| {entry['model']} | 12 | 42 |").split("|")
        assert row[4].strip() == f"{coverage['80']:.1%}"
        assert row[7].strip() == f"{entry['static']['coverage']['80']:.1%}"
        assert row[-2].strip() == f"{entry['probts_nmae']:.4f}"

    import mlflow

    client = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("ltsf")
    runs = client.search_runs([experiment.experiment_id])
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(runs) == 4 and len(children) == 3
    lstm = next(run for run in children if run.info.run_name == "lstm H=12")
    assert lstm.data.metrics["test_mse"] == pytest.approx(results[2]["mse"])
    assert lstm.data.params["data.policy"] == "as_published"


def test_ltsf_preset_sets_every_model_and_options_given_win(tmp_path, monkeypatch) -> None:
    from tests.data.test_as_published import ltsf_file

    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "tiny.csv"
    ltsf_file(path, 50)
    args = ltsf.parse_arguments(
        ["--data", str(path), "--preset", "best", "--models", "gru,peephole"]
    )
    assert (args.input_width, args.epochs) == (720, 10)
    gru = ltsf.run_config(args, "gru", 96, {})
    assert gru.data.input_width == 720 and gru.data.horizon == 96
    assert gru.model.hparams_for() == {
        **gru.model.hparams_for(),
        "normalization": "revin",
        "channel_independent": True,
        "segment_length": 72,
        "decoder": "parallel",
        "channel_embedding": True,
        "units": 128,
        "head_dropout": 0.3,
        "dropout": 0.0,
    }
    training = gru.training
    assert (training.batch_size, training.learning_rate, training.lr_schedule) == (
        256,
        1e-3,
        "cosine",
    )
    assert (training.patience, training.epochs) == (3, 10)
    assert ltsf.run_config(args, "peephole", 96, {}).model.hparams_for()["dropout"] == 0.2
    # An option or --set given wins over the preset; without a preset the old defaults hold.
    args = ltsf.parse_arguments(
        ["--data", str(path), "--preset", "best", "--input-width", "336", "--epochs", "2"]
    )
    assert (args.input_width, args.epochs, args.models) == (336, 2, ("gru",))
    overridden = ltsf.run_config(args, "gru", 96, {"training.batch_size": "32"})
    assert overridden.training.batch_size == 32 and overridden.data.input_width == 336
    # Each ablation is a valid run that differs from the preset only where it says.
    args = ltsf.parse_arguments(["--data", str(path), "--preset", "best", "--ablate"])
    preset = flatten(ltsf.run_config(args, "gru", 96, {}))
    ablations = args.preset_settings.ablations
    assert len(ablations) == 7 and ablations["preset"] == {}
    for variant, changes in ablations.items():
        changed = flatten(ltsf.run_config(args, "gru", 96, changes))
        differing = {key for key in preset if preset[key] != changed[key]}
        assert differing == {key for key in changes if preset[key] != changes[key]}, variant
    assert args.variants == tuple(ablations)
    assert all("," not in name for name in ablations)  # --variants splits on commas
    picked = ["--data", str(path), "--preset", "best", "--ablate"]
    chosen = ltsf.parse_arguments([*picked, "--variants", "no head dropout,channels mixed"])
    assert chosen.variants == ("no head dropout", "channels mixed")
    for wrong in (
        [*picked, "--variants", "no dropout"],
        [*picked, "--variants", ","],
        ["--data", str(path), "--preset", "best", "--variants", "channels mixed"],
        ["--data", str(path), "--ablate"],
    ):
        with pytest.raises(SystemExit):
            ltsf.parse_arguments(wrong)
    plain = ltsf.parse_arguments(["--data", str(path)])
    assert (plain.input_width, plain.epochs, plain.models) == (96, 10, ltsf.DEFAULT_MODELS)
    assert ltsf.run_config(plain, "gru", 96, {}).training.lr_schedule == "constant"
    # The same settings through the function that variants.py calls: the same harness, and
    # the same rule refused with the option's name.
    assert ltsf.harness(str(path), preset="best", ablate=True) == args
    with pytest.raises(ltsf.ConfigError, match=r"^--variants: expected names from"):
        ltsf.harness(str(path), preset="best", ablate=True, variants=("no dropout",))
    stocks = load_benchmark("stocks.py", monkeypatch)
    assert stocks.harness(epochs=3, quick=True) == stocks.parse_arguments(
        ["--epochs", "3", "--quick"]
    )
    assert stocks.harness(quick=True).epochs == 1
    with pytest.raises(stocks.ConfigError, match=r"^--models: expected zoo models"):
        stocks.harness(models=("transformer",))


def test_ltsf_seeds_seed_each_run_and_summarise_mean_and_spread(tmp_path, monkeypatch) -> None:
    from tests.data.test_as_published import ltsf_file

    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "tiny.csv"
    ltsf_file(path, 50)
    args = ltsf.parse_arguments(["--data", str(path), "--seeds", "7,8,9"])
    assert args.seeds == (7, 8, 9)
    assert ltsf.run_config(args, "gru", 96, {}, seed=8).training.seed == 8
    assert ltsf.run_config(args, "gru", 96, {}).training.seed == 7
    assert ltsf.parse_arguments(["--data", str(path), "--seed", "5"]).seeds == (5,)
    assert ltsf.parse_arguments(["--data", str(path)]).seeds == (42,)
    for wrong in (["--seed", "1", "--seeds", "2,3"], ["--seeds", "2,2"]):
        with pytest.raises(SystemExit):
            ltsf.parse_arguments(["--data", str(path), *wrong])

    def result(seed: int, mse: float, variant: str = "") -> object:
        return ltsf.Result(
            "gru", 96, mse, mse / 2, 10, 100.0 + seed, mse + 1, 0.0, 3, 9, variant, seed
        )

    summary = ltsf.seed_summary(
        [result(1, 0.10), result(2, 0.14), result(3, 0.12), result(1, 0.5, "dense decoder")]
    )
    three, one = summary
    assert three["seeds"] == [1, 2, 3] and one["seeds"] == [1]
    assert three["mse"] == pytest.approx(0.12) and three["mse_std"] == pytest.approx(0.02)
    assert three["mae"] == pytest.approx(0.06) and three["mae_std"] == pytest.approx(0.01)
    assert three["validation_mse"] == pytest.approx(1.12)
    assert three["train_seconds"] == pytest.approx(102.0) and three["train_seconds_std"] == 1.0
    assert (one["variant"], one["mse"], one["mse_std"]) == ("dense decoder", 0.5, 0.0)
    table = ltsf.format_seed_summary(summary)
    assert "| gru | 96 | 1,2,3 | 0.1200 ± 0.0200 | 0.0600 ± 0.0100 |" in table
    assert "| gru (dense decoder) | 96 | 1 | 0.5000 ± 0.0000 |" in table


def test_ltsf_validation_only_keeps_no_test_figure(tmp_path, monkeypatch, capsys) -> None:
    from tests.data.test_as_published import ltsf_file

    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "tiny.csv"
    ltsf_file(path, 50)
    scored = ltsf.Result("gru", 12, 0.123456, 0.234567, 10, 5.0, 0.345678, 0.4, 3, 9)
    monkeypatch.setattr(ltsf, "prepare_data", lambda data: None)
    monkeypatch.setattr(
        ltsf,
        "_scored",
        lambda *arguments: dataclasses.replace(scored, seed=arguments[3].training.seed),
    )
    arguments = ["--data", str(path), "--models", "gru", "--horizons", "12"]

    shown = ltsf.run_benchmark(ltsf.parse_arguments(arguments))
    assert shown == [scored] and "test MSE 0.1235 MAE 0.2346" in capsys.readouterr().out
    hidden = ltsf.run_benchmark(ltsf.parse_arguments([*arguments, "--validation-only"]))
    printed = capsys.readouterr().out
    assert math.isnan(hidden[0].mse) and math.isnan(hidden[0].mae)
    assert hidden[0].validation_mse == scored.validation_mse
    assert "test hidden, val MSE 0.3457" in printed
    assert "0.1235" not in printed and "0.2346" not in printed

    # The whole command, over two seeds: the tables and the JSON line hide them too.
    assert ltsf.main([*arguments, "--seeds", "42,43", "--validation-only"]) == 0
    printed = capsys.readouterr().out
    assert "0.1235" not in printed and "0.2346" not in printed
    assert "| gru | 12 | 42,43 | nan ± nan | nan ± nan | 0.3457 ± 0.0000 |" in printed

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    record = json.loads(printed.strip().splitlines()[-1], parse_constant=refuse)
    assert [row["mse"] for row in record["results"]] == [None, None]
    assert record["over_seeds"][0]["mse_std"] is None
    assert record["over_seeds"][0]["validation_mse"] == pytest.approx(0.345678)


def test_ltsf_preset_file_prepares_once_per_data_section(tmp_path, monkeypatch) -> None:
    """A preset is any config file; its ablations run with their own prepared data whenever they
    change a data setting, and share it otherwise."""
    from tests.data.test_as_published import ltsf_file

    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "tiny.csv"
    ltsf_file(path, 50)
    preset = tmp_path / "preset.yaml"
    preset.write_text(
        "data: {dataset: weather-ltsf, input_width: 24}\n"
        "model: {name: gru, hparams: {units: 4}}\n"
        "benchmark:\n"
        "  ablations:\n"
        "    preset: []\n"
        "    stride 2: [data.stride=2]\n"
        "    wider: [model.hparams.units=8]\n"
    )
    prepared: list[int] = []
    monkeypatch.setattr(ltsf, "prepare_data", lambda data: prepared.append(data.stride))
    scored = ltsf.Result("gru", 12, 0.1, 0.2, 10, 5.0, 0.3, 0.4, 3, 9)
    monkeypatch.setattr(ltsf, "_scored", lambda *arguments: scored)
    arguments = ["--data", str(path), "--preset", str(preset), "--ablate", "--horizons", "12"]
    args = ltsf.parse_arguments(arguments)
    assert (args.input_width, args.models, args.variants) == (
        24,
        ("gru",),
        ("preset", "stride 2", "wider"),
    )
    assert len(ltsf.run_benchmark(args)) == 3
    assert prepared == [1, 2]
    # A model's own override is checked against that model, before any run.
    text = preset.read_text()
    peephole_only = "  per_model:\n    peephole: [model.hparams.coupled_input_forget=true]\n"
    preset.write_text(text.replace("benchmark:\n", "benchmark:\n" + peephole_only))
    assert ltsf.parse_arguments(arguments).preset_settings.per_model == {
        "peephole": {"model.hparams.coupled_input_forget": "true"}
    }
    for wrong in (
        text.replace("units=8", "unit=8"),
        text.replace("benchmark:\n", "benchmark:\n  per_model:\n    peepole: []\n"),
    ):
        preset.write_text(wrong)
        with pytest.raises(SystemExit):
            ltsf.parse_arguments(arguments)


def test_ltsf_rejects_a_file_without_the_date_column(tmp_path, monkeypatch, capsys) -> None:
    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "wrong.csv"
    path.write_text("time,a\n2020-01-01,1\n")
    assert ltsf.main(["--quick", "--data", str(path)]) == 2
    assert "expected the LTSF layout (a 'date' column" in capsys.readouterr().err


def test_stocks_helpers_compute_known_answers(monkeypatch) -> None:
    stocks = load_benchmark("stocks.py", monkeypatch)
    accuracy, calls, p_value = stocks.directional_accuracy(
        np.array([[1.0, -1.0, 1e-9, 2.0, -3.0]]), np.array([[1.0, 1.0, 1.0, 0.0, -2.0]]), 1e-6
    )
    # The tiny move is no call and the zero actual move is left out: 2 hits of 3 calls.
    assert (accuracy, calls) == (2 / 3, 3)
    assert p_value == pytest.approx(0.5)  # P(X >= 2) for X ~ Binomial(3, 0.5)
    # By day: day 1 has 2 hits of 2 calls, day 2 one of 2, day 3 none of 1 (the zero actual
    # move of day 3's second window is no call).
    forecast = np.array([[1.0], [1.0], [1.0], [-1.0], [1.0], [1.0]])
    actual = np.array([[2.0], [3.0], [1.0], [1.0], [-1.0], [0.0]])
    days = np.array([1, 1, 2, 2, 3, 3])
    expected = scipy.stats.ttest_1samp([1.0, 0.5, 0.0], 0.5, alternative="greater").pvalue
    assert stocks.day_clustered_p_value(forecast, actual, 0.0, days) == pytest.approx(expected)
    errors = np.array([[1.0, -3.0], [2.0, 2.0], [-4.0, 0.0]])
    mae = stocks.per_ticker_mae(errors, np.array([0, 1, 0]), 3)
    np.testing.assert_allclose(mae, [2.0, 2.0, 0.0])


def test_stocks_historical_quantiles_compute_known_answers(monkeypatch) -> None:
    stocks = load_benchmark("stocks.py", monkeypatch)
    from pipelines.runtime.contract import SERIES_COLUMN, TEST, TRAIN, VALIDATION

    # Returns before the test year: AAA 1..5 (shuffled, its 4 a validation row), BBB 0 and 10;
    # the test rows (100, -100) are not history. numpy's linear interpolation: AAA's 10% is at
    # position 0.1 x 4 = 0.4, 1.4; its 90% at 3.6, 4.6; its median 3. BBB's 10% is
    # 0 + 0.1 x 10 = 1, 90% 9, median 5.
    frame = pd.DataFrame(
        {
            SERIES_COLUMN: ["AAA", "BBB", "AAA", "AAA", "BBB", "AAA", "AAA", "AAA", "BBB"],
            "close_log_return": [3.0, 0.0, 1.0, 5.0, 10.0, 2.0, 4.0, 100.0, -100.0],
        }
    )
    parts = np.array([TRAIN] * 6 + [VALIDATION] + [TEST] * 2)
    index = np.array([0, 1, 0, 0, 1, 0, 0])
    table = stocks.historical_quantiles(frame["close_log_return"].to_numpy()[:7], index, 3)
    np.testing.assert_allclose(table[:2], [[1.4, 3.0, 4.6], [1.0, 5.0, 9.0]])
    assert np.isnan(table[2]).all()  # a ticker without history
    # Test windows (horizon 1): AAA's 2 inside [1.4, 4.6], its 5 above by 0.4; BBB's 0 below
    # [1, 9] by 1, its 9 on the bound (inside). Coverage 2 / 4; Winkler scores (alpha 0.2,
    # 2 / alpha = 10): 3.2, 3.2 + 10 x 0.4 = 7.2, 8 + 10 x 1 = 18, 8; mean 36.4 / 4 = 9.1.
    test = stocks.TestForecasts(
        series_index=np.array([0, 0, 1, 1]),
        actual=np.array([[2.0], [5.0], [0.0], [9.0]]),
        last_value=np.zeros(4),
        days=np.array([1, 2, 1, 2]),
        scales=np.ones(2),
        tickers=2,
    )
    data = types.SimpleNamespace(
        prepared=types.SimpleNamespace(frame=frame, parts=parts), test=test
    )
    median, (lower, upper) = stocks.historical_forecast(data, "returns")
    np.testing.assert_allclose(median, [[3.0], [3.0], [5.0], [5.0]])
    np.testing.assert_allclose(lower, [[1.4], [1.4], [1.0], [1.0]])
    np.testing.assert_allclose(upper, [[4.6], [4.6], [9.0], [9.0]])
    result = stocks.score(
        "returns", "historical-quantiles", median, test, None, 0.0, (lower, upper)
    )
    assert result.coverage_80 == pytest.approx(0.5)
    assert result.interval_score_80 == pytest.approx(9.1)
    assert result.mae == pytest.approx(3.0)  # the median's errors: 1, 2, 5, 4
    # Without an interval the figures are None (prices, and models without a calibration).
    plain = stocks.score("returns", "x", median, test, None, 0.0)
    assert (plain.coverage_80, plain.interval_score_80) == (None, None)


def test_stocks_quick_scores_both_targets_against_the_random_walk(shared_datasets) -> None:
    run = run_quick("stocks.py", "--models", "linear,gru")
    results = run.figures["results"]
    by_key = {(r["target"], r["model"]): r for r in results}
    assert set(by_key) == {
        ("prices", "last"),
        ("prices", "linear"),
        ("prices", "gru"),
        ("returns", "zero"),
        ("returns", "historical-quantiles"),
        ("returns", "last"),
        ("returns", "linear"),
        ("returns", "gru"),
    }
    # The random walks are the reference: no share against themselves, and no direction calls
    # for the price random walk or the zero return.
    for key in (("prices", "last"), ("returns", "zero")):
        assert by_key[key]["share_beating_random_walk"] is None
        assert by_key[key]["direction_calls"] == 0
    for result in results:
        assert result["tickers"] == 12
        share = result["share_beating_random_walk"]
        assert share is None or 0 <= share <= 1
        row = line_starting(run.lines, f"| {result['target']} | {result['model']} |").split("|")
        assert number(row[4].strip()) == pytest.approx(result["mase"], abs=5e-5)
        # 80% intervals for every returns row (calibrated on validation residuals, or the
        # historical quantiles), none for prices; the table shows the JSON's figures.
        coverage, interval_score = result["coverage_80"], result["interval_score_80"]
        if result["target"] == "prices":
            assert coverage is None and interval_score is None
            assert row[11].strip() == row[12].strip() == "-"
        else:
            assert 0.5 < coverage <= 1 and interval_score > 0
            assert float(row[11].strip().removesuffix("%")) == pytest.approx(
                100 * coverage, abs=5e-3
            )
            assert number(row[12].strip()) == pytest.approx(interval_score, rel=1e-4)
    # MASE is against the random walk's in-sample error: the random walk itself lands near 1.
    assert 0.7 < by_key[("returns", "zero")]["mase"] < 1.5
    assert 0.7 < by_key[("prices", "last")]["mase"] < 1.5
    # One plain sentence on the intervals against the historical quantiles, before the JSON.
    assert run.lines[-2].startswith(("Plainly: none of our models", "returns, 80% intervals:"))
    assert (
        f"{by_key[('returns', 'historical-quantiles')]['interval_score_80']:.5g}" in (run.lines[-2])
    )


def test_ltsf_features_s_reads_only_the_target_channel(tmp_path, monkeypatch) -> None:
    from tests.data.test_as_published import ltsf_file

    ltsf = load_benchmark("ltsf.py", monkeypatch)
    path = tmp_path / "tiny.csv"
    ltsf_file(path, 300)
    args = ltsf.parse_arguments(["--data", str(path), "--features", "S", "--target", "OT"])
    config = ltsf.run_config(args, "lstm", 96, {})
    assert (config.data.value_columns, config.data.targets) == (("OT",), ("OT",))
    assert config.data.policy == "as_published" and config.data.split == "0.7,0.1,0.2"
    assert config.model.hparams == {"normalization": "revin"}
    assert ltsf.run_config(args, "repeat", 96, {}).model.name == "last"
    with pytest.raises(ltsf.ConfigError, match="--target: expected one of the file's channels"):
        ltsf.run_config(
            ltsf.parse_arguments(["--data", str(path), "--features", "S", "--target", "x"]),
            "lstm",
            96,
            {},
        )
    with pytest.raises(SystemExit):
        ltsf.parse_arguments(["--data", str(path), "--models", "repeat,transformer"])


def test_variants_statistics_and_budgets_compute_known_answers(monkeypatch) -> None:
    variants = load_benchmark("variants.py", monkeypatch)
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04, made
    # monotone (0.04 -> 0.06); a missing p-value stays missing and is not counted.
    assert variants.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert variants.holm([0.5, None, 0.9]) == [1.0, None, 1.0]

    def run(variant: str, seed: int, mse: float) -> object:
        return variants.Run("weather", variant, seed, "m", 4, 10, 5, {"mse": mse}, 1, 1.0, {})

    reference = [0.30, 0.32, 0.31, 0.33, 0.29]
    better = [value - 0.02 + 0.001 * seed for seed, value in enumerate(reference)]
    noisy = [
        value + shift
        for value, shift in zip(reference, [0.05, -0.04, 0.03, -0.05, 0.02], strict=True)
    ]
    runs = [run("lstm", seed, value) for seed, value in enumerate(reference)]
    runs += [run("gru", seed, value) for seed, value in enumerate(better)]
    runs += [run("clockwork", seed, value) for seed, value in enumerate(noisy)]
    runs += [run("linear", seed, 1.0) for seed in range(5)]  # a baseline: not tested
    rows = variants.compare_to_reference(runs, "weather", ["linear", "lstm", "gru", "clockwork"])
    assert [row.variant for row in rows] == ["gru", "clockwork"]
    gru, clockwork = rows
    expected = [scipy.stats.ttest_rel(values, reference).pvalue for values in (better, noisy)]
    assert [gru.p_value, clockwork.p_value] == pytest.approx(expected)
    assert gru.holm_p_value == pytest.approx(min(1.0, 2 * expected[0]))
    assert gru.mean_difference == pytest.approx(-0.018)
    assert gru.significant and not clockwork.significant and gru.seeds == 5
    # Budgets: the width whose count is closest; the Clockwork RNN in steps of its modules.
    clock = variants.VARIANTS["clockwork"]
    assert variants.budget_units(clock, lambda units: 10 * units + 100, 425, 32) == 32
    assert variants.budget_units(clock, lambda units: 10 * units + 100, 445, 32) == 36
    assert variants.budget_units(variants.VARIANTS["gru"], lambda units: units**2, 50, 8) == 7
    assert variants.budget_units(variants.VARIANTS["gru"], lambda units: units**2, 60, 8) == 8


def test_variants_resume_skips_finished_runs_and_refuses_other_settings(
    tmp_path, monkeypatch
) -> None:
    from types import SimpleNamespace

    variants = load_benchmark("variants.py", monkeypatch)
    monkeypatch.setattr(
        variants, "variant_widths", lambda study, names, units: dict.fromkeys(names, 4)
    )
    trained = SimpleNamespace(
        model=SimpleNamespace(layers=[], count_params=lambda: 7),
        history={"loss": [1.0, 0.5]},
        training_seconds=2.0,
    )
    calls = []

    class Study:
        name, settings = "weather", {"epochs": 3}

        def run(self, model: str, hparams: dict, seed: int) -> tuple[dict, object]:
            calls.append((model, hparams, seed))
            return {"mse": 0.1 * seed}, trained

    results = tmp_path / "runs.jsonl"
    args = variants.parse_arguments(
        ["--studies", "weather", "--seeds", "1,2", "--variants", "repeat-last,lstm,cifg"]
    )
    args.results = results
    finished = [
        variants.Run("weather", "lstm", 1, "lstm", 4, 7, 0, {"mse": 0.1}, 2, 2.0, {"epochs": 3})
    ]
    results.write_text(json.dumps(dataclasses.asdict(finished[0])) + "\n")

    runs = variants.run_study(
        Study(), args, variants.load_finished(results, {"weather": {"epochs": 3}})
    )

    # repeat-last once (no weights, no randomness), lstm seed 1 from the file, the rest trained.
    assert calls == [
        ("last", {}, 1),
        ("lstm", {"units": 4}, 2),
        ("peephole", {"peepholes": "", "coupled_input_forget": True, "units": 4}, 1),
        ("peephole", {"peepholes": "", "coupled_input_forget": True, "units": 4}, 2),
    ]
    assert [(run.variant, run.seed) for run in runs] == [
        ("lstm", 1),
        ("repeat-last", 1),
        ("lstm", 2),
        ("cifg", 1),
        ("cifg", 2),
    ]
    assert len(results.read_text().splitlines()) == 5
    assert variants.load_finished(results, {"weather": {"epochs": 3}}) == [runs[0], *runs[1:]]
    with pytest.raises(SystemExit, match=r"runs.jsonl, line 1: run with other settings"):
        variants.load_finished(results, {"weather": {"epochs": 4}})
    results.write_text("not json\n")
    with pytest.raises(SystemExit, match=r"runs.jsonl, line 1: not a run of this study"):
        variants.load_finished(results, {})


def test_variants_quick_runs_both_studies_and_logs_one_comparison(
    shared_datasets, tmp_path
) -> None:
    from mlflow import MlflowClient

    from tests.data.test_as_published import ltsf_file

    weather = tmp_path / "tiny.csv"
    ltsf_file(weather, 400)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY_ROOT / "benchmarks" / "variants.py"),
            "--quick",
            "--weather",
            str(weather),
            "--seeds",
            "1,2",
            "--variants",
            "repeat-last,lstm,gru",
        ],
        cwd=tmp_path,  # MLflow writes the artifacts of a SQLite store under ./mlruns
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    runs = figures["runs"]
    counts = {}
    for run in runs:
        counts[(run["study"], run["variant"])] = counts.get((run["study"], run["variant"]), 0) + 1
    for study in ("weather", "stocks"):
        assert counts[(study, "repeat-last")] == 1
        assert counts[(study, "lstm")] == counts[(study, "gru")] == 2
    assert counts[("stocks", "random walk (zero)")] == 1
    # Equal budgets: gru within 20% of lstm's parameters at tiny widths.
    for study in ("weather", "stocks"):
        (lstm,) = {r["parameters"] for r in runs if (r["study"], r["variant"]) == (study, "lstm")}
        (gru,) = {r["parameters"] for r in runs if (r["study"], r["variant"]) == (study, "gru")}
        assert abs(gru - lstm) <= 0.2 * lstm

    # The table's mean ± sd and the paired tests are those of the JSON's per-seed figures.
    def values(study: str, name: str) -> list[float]:
        metric = {"weather": "mse", "stocks": "mase"}[study]
        chosen = [r for r in runs if (r["study"], r["variant"]) == (study, name)]
        return [r["metrics"][metric] for r in sorted(chosen, key=lambda r: r["seed"])]

    for row in figures["comparisons"]:
        mine, reference = values(row["study"], row["variant"]), values(row["study"], "lstm")
        assert row["p_value"] == pytest.approx(scipy.stats.ttest_rel(mine, reference).pvalue)
        assert row["mean_difference"] == pytest.approx(np.mean(mine) - np.mean(reference))
        section = result.stdout.split(f"\n{row['study']}: ")[1].split("\n\n")[1]
        table_row = line_starting(section.splitlines(), f"| {row['variant']} |")
        assert f"| {np.mean(mine):.4f} ± {np.std(mine, ddof=1):.4f} |" in table_row
        assert f"| {row['mean_difference']:+.4f}" in table_row
    assert [(row["study"], row["variant"]) for row in figures["comparisons"]] == [
        ("weather", "gru"),
        ("stocks", "gru"),
    ]
    # One MLflow comparison: a parent and one nested run per study, variant and seed.
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("variant-study")
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.mlflow.parentRunId IS NULL"
    )
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) == len(runs)
    assert "| lstm |" in parent.data.tags["mlflow.note.content"]
    logged = {
        (
            child.data.params["study"],
            child.data.params["variant"],
            int(child.data.params["seed"]),
        ): child.data.metrics
        for child in children
    }
    for run in runs:
        metrics = logged[(run["study"], run["variant"], run["seed"])]
        for key, value in run["metrics"].items():
            assert metrics[key] == pytest.approx(value)


# --------------------------------------------------------------------------------------------
# cell_speed.py


def test_cell_speed_ratios_and_table_divide_by_keras_lstm(monkeypatch, capsys) -> None:
    cell_speed = load_benchmark("cell_speed.py", monkeypatch)
    rates = {"clockwork": 300.0, "depth_gated": 50.0, "lstm": 200.0, "lstm_2_layers": 100.0}
    rates["simple_rnn"] = 500.0
    case = {
        "train": rates,
        "predict": {name: 2 * rate for name, rate in rates.items()},
        "samples": 2048,
    }
    case["predict"]["depth_gated"] = 300.0
    figures = cell_speed.ratios(case, prefix="long_")
    assert figures["long_clockwork_train_ratio_vs_lstm"] == 1.5
    assert figures["long_depth_gated_train_ratio_vs_lstm"] == 0.25
    assert figures["long_depth_gated_predict_ratio_vs_lstm"] == 0.75
    assert figures["long_lstm_2_layers_predict_ratio_vs_lstm"] == 0.5
    assert figures["long_simple_rnn_predict_samples_per_s"] == 1000
    assert len(figures) == 4 * len(cell_speed.CONTENDERS)
    cell_speed.print_table(144, case, 5)
    table = capsys.readouterr().out.splitlines()
    assert "2,048 samples per pass, median of 5" in table[0]
    assert line_starting(table, "  depth_gated").split() == [
        "depth_gated",
        "50",
        "0.25",
        "300",
        "0.75",
    ]
    # Every contender builds into a model of the benchmark's shapes.
    for name in cell_speed.CONTENDERS:
        model = cell_speed.build_model(name, 6)
        assert model.output_shape == (None, 1) and model.input_shape == (None, 6, 19)


def test_peephole_graph_counts_the_loop_functions_and_is_deterministic(monkeypatch) -> None:
    graph = load_benchmark("peephole_graph.py", monkeypatch)
    # Unrolled (up to 48 steps): the graph grows with the sequence; a symbolic loop does not,
    # and its body is counted through the function library (a while loop, hand-written gradient).
    unrolled_short, unrolled_long = graph.op_counts(6), graph.op_counts(12)
    assert sum(unrolled_long.values()) > sum(unrolled_short.values())
    looped = graph.op_counts(60)
    assert looped == graph.op_counts(120)
    assert looped.get("While", 0) + looped.get("StatelessWhile", 0) >= 1
    assert looped["SigmoidGrad"] >= 1 and looped["TanhGrad"] >= 1


def test_ltsf_probts_scores_compute_known_answers(monkeypatch) -> None:
    probts = load_benchmark("ltsf_probts.py", monkeypatch)
    # Every 96th stride-1 window, ceil((windows - 1) / 96) of them (ProbTS's
    # ceil((test rows - H) / 96), test rows = windows + H - 1).
    assert probts.window_indices(129).tolist() == [0, 96]
    assert probts.window_indices(97).tolist() == [0]
    assert probts.window_indices(98).tolist() == [0, 96]
    with pytest.raises(ValueError, match="1 test window"):
        probts.window_indices(1)
    # Two windows, one step, two channels. NMAE per window: (1 + 0) / 4, (0 + 2) / 4; mean 0.375.
    actual = np.array([[[1.0, 3.0]], [[2.0, -2.0]]])
    point = np.array([[[2.0, 3.0]], [[2.0, 0.0]]])
    # Quantiles 0.1 and 0.9 at point -/+ 1. Window 1: q0.1 (1, 2): 0 + 2 x 1 x 0.1 = 0.2;
    # q0.9 (3, 4): 2 x 2 x 0.1 + 2 x 1 x 0.1 = 0.6; over sum |y| = 4: 0.05, 0.15, mean 0.1.
    # Window 2: q0.1 (1, -1): 2 x 1 x 0.1 + 2 x 1 x 0.9 = 2.0; q0.9 (3, 1): 0.2 + 0.6 = 0.8;
    # 0.5, 0.2, mean 0.35. CRPS: the mean over windows, 0.225.
    crps, nmae = probts.probts_scores(
        actual, point, lambda q: point + (1.0 if q > 0.5 else -1.0), [0.1, 0.9]
    )
    assert (crps, nmae) == (pytest.approx(0.225), pytest.approx(0.375))
    # A point forecast at every quantile: CRPS equals NMAE (ProbTS's point models).
    crps, nmae = probts.probts_scores(
        actual, point, lambda q: point, [0.05 * k for k in range(1, 20)]
    )
    assert crps == pytest.approx(nmae)


def test_rolling_window_replays_the_validation_part_by_hand(monkeypatch, tmp_path) -> None:
    rolling = load_benchmark("rolling_window.py", monkeypatch)
    # A ramp of 40 residuals (one step, one channel), r_j = j. Static: the first 20 (0..19);
    # the 80% bounds are the floor(21 x 0.1) = 2nd and ceil(21 x 0.9) = 19th smallest, 1 and
    # 18: width 17, and 20..39 all above. Rolling on the last 19 known (j-19..j-1) at every
    # window: the 2nd and 18th smallest, j - 18 and j - 2: width 16, and j above again.
    # The 90% bounds of 19: the floor(20 x 0.05) = 1st and 19th smallest, j - 19 and j - 1.
    residuals = np.arange(40.0)[:, None, None]
    static, moving = rolling.replay(residuals, np.arange(40), [19], every=1)
    assert (static["scheme"], static["window"]) == ("static", 20)
    assert static["80"] == {"coverage": 0.0, "steps": [0.0, 0.0], "width": 17.0}
    assert moving["80"] == {"coverage": 0.0, "steps": [0.0, 0.0], "width": 16.0}
    assert moving["90"]["width"] == 18.0
    lines = rolling.format_table([static, moving]).splitlines()
    assert lines[2] == (
        "| static | 20 | - | 0 | 0.0% | 0.0%-0.0% | 17.000 | 0.0% | 0.0%-0.0% | 19.000 | 90.0% |"
    )


def test_rolling_window_chooses_the_scheme_whose_worst_step_is_nearest_nominal(
    monkeypatch,
) -> None:
    rolling = load_benchmark("rolling_window.py", monkeypatch)

    def row(scheme: str, coverage: tuple[float, float], steps: tuple, width: float) -> dict:
        return {
            "scheme": scheme,
            "window": 2016,
            "feedback": 1.0,
            "80": {"coverage": coverage[0], "steps": list(steps[0]), "width": width},
            "90": {"coverage": coverage[1], "steps": list(steps[1]), "width": width + 0.5},
        }

    static = row("static", (0.80, 0.90), ((0.80, 0.80), (0.90, 0.90)), 0.5)
    narrow = row("rolling shared", (0.80, 0.89), ((0.76, 0.83), (0.86, 0.92)), 1.0)  # 4 off
    even = row("rolling delay", (0.80, 0.89), ((0.78, 0.83), (0.87, 0.91)), 1.1)  # 3 off
    short = row("rolling", (0.77, 0.90), ((0.79, 0.81), (0.89, 0.91)), 0.9)  # 3 off overall
    assert rolling.worst_step(narrow) == pytest.approx(0.04)
    assert rolling.chosen([static, narrow, even, short]) is even
    # Between equal worst steps, the narrower.
    narrower = {**even, "scheme": "rolling step", "80": {**even["80"], "width": 1.05}}
    assert rolling.chosen([even, narrower]) is narrower
    assert rolling.chosen([static, short]) is None


def test_quantile_head_compares_both_methods_by_hand(monkeypatch) -> None:
    benchmark = load_benchmark("quantile_head.py", monkeypatch)
    # 40 validation windows (one step, one channel) with actuals 0..39, 2 test windows.
    # Conformal around a zero forecast: the first 20 residuals 0..19 give the 80% bounds
    # floor(21 x 0.1) = 2nd and ceil(21 x 0.9) = 19th smallest, 1 and 18; 20..39 all above:
    # coverage 0, width 17, interval score 17 + 2 / 0.2 x mean(y - 18) = 17 + 10 x 11.5.
    # CQR of a head at -2, -1, 0, 1, 2: E = y - 1 (80%), its ceil(21 x 0.8) = 17th smallest 15:
    # [-16, 16], width 32, score 32 + 10 x mean(y - 16) = 32 + 135.
    actual = {"validation": np.arange(40.0)[:, None, None], "test": np.array([[[0.5]], [[3.0]]])}
    zero = {part: np.zeros_like(values) for part, values in actual.items()}
    conformal = benchmark.evaluate(zero, actual, ())
    head = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])[None, None, :, None]
    levels = (0.05, 0.1, 0.5, 0.9, 0.95)
    heads = {part: np.repeat(head, len(values), axis=0) for part, values in actual.items()}
    cqr = benchmark.evaluate(heads, actual, levels)
    assert conformal[0]["80"] == pytest.approx(
        {"coverage": 0.0, "width": 17.0, "interval_score": 132.0}
    )
    assert cqr[0]["80"] == pytest.approx({"coverage": 0.0, "width": 32.0, "interval_score": 167.0})
    # Test: calibrated on all 40; the point forecast's MSE is (0.25 + 9) / 2 either way.
    assert conformal[1]["mse"] == cqr[1]["mse"] == pytest.approx(4.625)
    rows = [{"method": "conformal", **row} for row in conformal]
    lines = benchmark.format_table(rows).splitlines()
    assert lines[2].startswith("| conformal | validation replay | 0.0% | 17.000 | 132.000 |")


# --------------------------------------------------------------------------------------------
# monitoring.py


def test_monitoring_summary_counts_clean_days_and_the_delay_by_hand(monkeypatch) -> None:
    monitoring = load_benchmark("monitoring.py", monkeypatch)
    day = pd.Timestamp("2020-11-01", tz="UTC")

    def days(codes: list[int]) -> list:
        return [
            monitoring.DayResult(day + pd.Timedelta(days=i), code, ("mae",) if code == 4 else ())
            for i, code in enumerate(codes)
        ]

    # The shift starts on day 3: the shifted replay's days 0 and 1 are clean (their actuals end
    # by day 2), day 2's actuals (revealed on day 3) are the first shifted ones.
    shift_start = day + pd.Timedelta(days=3)
    clean = days([0, 4, 0, 0, 0])
    raised = days([0, 0, 0, 0, 4])
    figures = monitoring.summarise(clean, raised, shift_start)
    assert figures["clean_days"] == 5 + 3
    assert figures["false_alarms"] == 1
    assert figures["false_alarms_per_30_days"] == pytest.approx(30 / 8, abs=1e-3)
    # Flagged by the monitor after day 4 (run at day 5), 2 days after the shift began.
    assert figures["detection_delay_days"] == 2
    assert figures["detection_rules"] == ["mae"]
    assert monitoring.summarise(clean, days([0] * 5), shift_start)["detection_delay_days"] is None
    # An alarm the clean replay raised on the same day is not the shift's doing.
    late = monitoring.summarise(days([0, 0, 0, 4, 0]), days([0, 0, 0, 4, 4]), shift_start)
    assert late["detection_delay_days"] == 2 and late["false_alarms"] == 1


@pytest.mark.shared_data
def test_monitoring_quick_replays_both_runs_and_scores_every_revealed_step(
    shared_datasets,
) -> None:
    run = run_quick("monitoring.py", "--data", str(shared_datasets / "weather.csv.gz"))
    figures = run.figures
    assert figures["quick"] is True and figures["days"] == 6
    # Each daily forecast is 96 steps of one target, all revealed by the next day.
    assert figures["scored_rows"] == 6 * 96
    assert figures["clean_days"] == 6 + 3  # the clean replay and the 3 days before the shift
    replayed = [line for line in run.lines if line.startswith(("  clean ", "  shifted "))]
    assert len(replayed) == 12
    alarms = sum("ALARM" in line for line in replayed if line.startswith("  clean "))
    alarms += sum("ALARM" in line for line in replayed[6:9])
    assert figures["false_alarms"] == alarms
