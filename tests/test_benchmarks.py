"""Quick modes of the benchmarks keep working and keep their output contract (last line JSON)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.paths import REPOSITORY_ROOT


@pytest.mark.shared_data
def test_windowing_quick_reports_ratios(shared_datasets):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/windowing.py",
            "--quick",
            "--source",
            str(shared_datasets / "weather.csv.gz"),
        ],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["quick"] is True and figures["windows"] == 3000
    for key in (
        "speedup_vs_keras",
        "train_feed_ratio",
        "ours_windows_per_s",
        "keras_windows_per_s",
    ):
        assert figures[key] > 0
