"""Quick modes of the benchmarks keep working and keep their output contract (last line JSON)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.paths import REPOSITORY_ROOT


def run_quick(script: str, *arguments: str) -> list[str]:
    """Runs `benchmarks/<script> --quick`; returns its output lines (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()


@pytest.mark.shared_data
def test_windowing_quick_reports_ratios(shared_datasets):
    lines = run_quick("windowing.py", "--source", str(shared_datasets / "weather.csv.gz"))
    figures = json.loads(lines[-1])
    assert figures["quick"] is True and figures["windows"] == 3000
    for key in (
        "speedup_vs_keras",
        "train_feed_ratio",
        "ours_windows_per_s",
        "keras_windows_per_s",
    ):
        assert figures[key] > 0


def test_peephole_quick_reports_both_cases():
    lines = run_quick("peephole.py")
    figures = json.loads(lines[-1])
    assert figures["quick"] is True
    for key in ("train_ratio_vs_lstm", "predict_ratio_vs_lstm", "long_train_ratio_vs_lstm"):
        assert figures[key] > 0
    # The best prediction ratio is the better of the default and XLA ratios.
    assert figures["predict_ratio_vs_lstm"] == max(
        figures["predict_default_ratio_vs_lstm"], figures["predict_jit_ratio_vs_lstm"]
    )
    assert any(line.startswith("24 steps:") for line in lines)
    assert any(line.startswith("144 steps:") for line in lines)


@pytest.mark.shared_data
def test_batch_forecast_quick_compares_vectorised_and_loop(shared_datasets):
    lines = run_quick(
        "batch_forecast.py", "--source", str(shared_datasets / "all_stocks_5yr.csv.gz")
    )
    figures = json.loads(lines[-1])
    assert figures["benchmark"] == "batch_forecast" and figures["quick"] is True
    assert figures["series"] == 20 and figures["horizon"] > 0 and figures["input_width"] > 0
    for key in ("series_per_s", "loop_series_per_s", "speedup_vs_loop", "predict_ms", "keras_ms"):
        assert figures[key] > 0
