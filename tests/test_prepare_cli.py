"""The prepare command as a user runs it: exit codes, stderr, and files in --output."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from pipelines.paths import REPOSITORY_ROOT
from pipelines.prepare import main
from pipelines.split import FittedScaler
from pipelines.windows import WindowSpec
from tests.test_validate import daily_csv


def run_module(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.prepare", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_input_exits_2_with_one_line_and_no_traceback(write_csv, tmp_path):
    source = write_csv(daily_csv().replace("2024-01-04,11.5", "2024-01-04,oops"))
    output = tmp_path / "out"
    result = run_module(
        "--source",
        str(source),
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
        "--output",
        str(output),
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {source}: column 'temp': non-numeric value at line 5: 'oops'"
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not output.exists()


def test_success_writes_frame_scaler_spec_and_summary(write_csv, tmp_path):
    source = write_csv(daily_csv(rows=40))
    output = tmp_path / "out"
    result = run_module(
        "--source",
        str(source),
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
        "--input-width",
        "5",
        "--horizon",
        "2",
        "--output",
        str(output),
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert result.returncode == 0, result.stderr
    assert "windows      input 5 -> horizon 2" in result.stdout
    assert sorted(p.name for p in output.iterdir()) == [
        "frame.parquet",
        "scaler.json",
        "summary.json",
        "window_spec.json",
    ]
    frame = pd.read_parquet(output / "frame.parquet")
    assert list(frame.columns) == ["series_id", "segment", "timestamp", "temp", "humidity", "part"]
    spec = WindowSpec.from_dict(json.loads((output / "window_spec.json").read_text()))
    assert spec == WindowSpec(5, 2, ("temp", "humidity"), ("temp",))
    scaler = FittedScaler.load(output / "scaler.json")
    training = frame.loc[frame["part"] == "train", "temp"]
    assert abs(scaler.scalers["data"].mean_[0] - training.mean()) < 1e-9
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(
        (output / "summary.json").read_text()
    )


def test_failed_run_leaves_the_previous_output_untouched(write_csv, tmp_path, capsys):
    output = tmp_path / "out"
    good = write_csv(daily_csv(), "good.csv")
    arguments = [
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
        "--input-width",
        "3",
        "--horizon",
        "2",
        "--output",
        str(output),
    ]
    assert main(["--source", str(good), *arguments]) == 0
    before = {p.name: p.read_bytes() for p in output.iterdir()}
    bad = write_csv(daily_csv().replace("2024-01-04,11.5", "2024-01-04,inf"), "bad.csv")
    assert main(["--source", str(bad), *arguments]) == 2
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    capsys.readouterr()


def test_unknown_dataset_lists_the_catalog(tmp_path, capsys):
    assert main(["--dataset", "weather-ltfs", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'weather-ltfs'; did you mean 'weather-ltsf'?" in err
    assert "seattle-weather" in err
