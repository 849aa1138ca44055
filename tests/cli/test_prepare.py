"""The prepare command as a user runs it: exit codes, stderr, and files in --output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from pipelines.cli.prepare import main
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.scaling import FittedScaler
from pipelines.runtime.windows import WindowSpec
from tests.conftest import daily_csv, daily_prepare_arguments


def run_module(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli.prepare", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_input_exits_2_with_one_line_and_no_traceback(write_csv, tmp_path):
    source = write_csv(daily_csv().replace("2024-01-04,11.5", "2024-01-04,oops"))
    output = tmp_path / "out"
    result = run_module(
        *daily_prepare_arguments(source),
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
        *daily_prepare_arguments(source),
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
    assert main(["--dataset", "none", "--source", str(good), *arguments]) == 0
    before = {p.name: p.read_bytes() for p in output.iterdir()}
    bad = write_csv(daily_csv().replace("2024-01-04,11.5", "2024-01-04,inf"), "bad.csv")
    assert main(["--dataset", "none", "--source", str(bad), *arguments]) == 2
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    capsys.readouterr()


def test_unknown_dataset_lists_the_catalog(tmp_path, capsys):
    assert main(["--dataset", "weather-ltfs", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "config key 'data.dataset' (from parameter 'dataset')" in err
    assert "got 'weather-ltfs'; did you mean 'weather-ltsf'?" in err
    assert "seattle-weather" in err


def test_output_that_is_not_a_prepare_folder_is_never_replaced(write_csv, tmp_path, capsys):
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "notes.txt").write_text("keep me")
    arguments = [
        "--dataset",
        "none",
        "--source",
        str(write_csv(daily_csv())),
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
        "--input-width",
        "3",
        "--horizon",
        "2",
    ]
    assert main([*arguments, "--output", str(precious)]) == 2
    err = capsys.readouterr().err
    assert "parameter output" in err and "is not a prepare output (notes.txt, sub)" in err
    assert (precious / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "some.csv"
    a_file.write_text("x")
    assert main([*arguments, "--output", str(a_file)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "x"


def test_summary_path_that_is_a_folder_fails_before_any_output(write_csv, tmp_path, capsys):
    output = tmp_path / "out"
    code = main(
        [
            "--dataset",
            "none",
            "--source",
            str(write_csv(daily_csv())),
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
            "--summary-json",
            str(tmp_path),
        ]
    )
    assert code == 2 and "parameter summary_json" in capsys.readouterr().err
    assert not output.exists()


def test_bad_option_value_is_one_error_line():
    result = run_module("--input-width", "many")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: config key 'data.input_width' (from parameter 'input_width'): "
        "expected an integer, or none, got 'many'"
    ]
    result = run_module("--input-wdth", "3")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: unrecognized arguments: --input-wdth 3 (see python -m pipelines.cli.prepare --help)"
    ]


def test_dataset_columns_can_be_overridden_for_another_copy(write_csv, tmp_path, capsys):
    # A copy of the Beijing data with one timestamp column instead of year/month/day/hour parts.
    rows = ["when,pm2.5,DEWP,TEMP,PRES,Iws,Is,Ir"] + [
        f"2024-01-01 {hour:02d}:00,{10 + hour},1,2,1000,1.5,0,0" for hour in range(24)
    ]
    output = tmp_path / "out"
    code = main(
        [
            "--dataset",
            "beijing-pm25",
            "--source",
            str(write_csv("\n".join(rows) + "\n")),
            "--timestamp-column",
            "when",
            "--input-width",
            "4",
            "--horizon",
            "2",
            "--output",
            str(output),
        ]
    )
    assert code == 0, capsys.readouterr().err
    frame = pd.read_parquet(output / "frame.parquet")
    # Asia/Shanghai is UTC+8, from the catalog entry.
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2023-12-31T16:00:00Z")


def ticker_arguments(source) -> list[str]:
    return [
        "--dataset",
        "none",
        "--source",
        str(source),
        "--timestamp-column",
        "date",
        "--targets",
        "close",
        "--series-column",
        "ticker",
        "--input-width",
        "3",
        "--horizon",
        "2",
    ]


def two_ticker_csv(write_csv, late_start: str = "2024-01-01"):
    long = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=60), "ticker": "AAA"})
    late = pd.DataFrame({"date": pd.bdate_range(late_start, periods=20), "ticker": "BBB"})
    frame = pd.concat([long, late], ignore_index=True)
    frame["close"] = 100 + np.arange(len(frame)) * 0.5
    frame["volume"] = 1000.0 + np.arange(len(frame))
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return write_csv(frame.to_csv(index=False))


def test_parquet_source_gives_the_same_frame_as_csv(write_csv, tmp_path, capsys):
    csv_path = write_csv(daily_csv(), "same.csv")
    parquet_path = tmp_path / "same.parquet"
    pd.read_csv(csv_path).to_parquet(parquet_path, index=False)
    arguments = [
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
        "--input-width",
        "3",
        "--horizon",
        "2",
    ]
    assert (
        main(
            [
                "--dataset",
                "none",
                "--source",
                str(csv_path),
                *arguments,
                "--output",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "--dataset",
                "none",
                "--source",
                str(parquet_path),
                *arguments,
                "--output",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "frame.parquet"),
        pd.read_parquet(tmp_path / "b" / "frame.parquet"),
    )


def test_global_scaler_pools_series_and_date_split_drops_late_series(write_csv, tmp_path, capsys):
    source = two_ticker_csv(write_csv, late_start="2024-03-04")
    output = tmp_path / "out"
    code = main(
        [
            *ticker_arguments(source),
            "--split",
            "2024-02-26,2024-03-11",
            "--per-series-scaling",
            "false",
            "--output",
            str(output),
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((output / "summary.json").read_text())
    # BBB starts after the validation start: no training rows, so it is dropped and listed.
    assert summary["validation"]["dropped_series"] == [
        {"series_id": "BBB", "rows": 20, "reason": "no rows before the validation start"}
    ]
    scaler = FittedScaler.load(output / "scaler.json")
    frame = pd.read_parquet(output / "frame.parquet")
    assert list(scaler.scalers) == ["__all__"]
    training = frame.loc[frame["part"] == "train", "close"]
    assert abs(scaler.scalers["__all__"].mean_[0] - training.mean()) < 1e-9
    assert training.index.max() < frame.index[frame["timestamp"] >= "2024-02-26"].min()


def test_stride_thins_windows_per_segment(write_csv, tmp_path, capsys):
    source = write_csv(daily_csv(rows=40))
    counts = {}
    for stride in (1, 3):
        output = tmp_path / f"stride{stride}"
        assert (
            main(
                [
                    *daily_prepare_arguments(source),
                    "--input-width",
                    "3",
                    "--horizon",
                    "2",
                    "--stride",
                    str(stride),
                    "--output",
                    str(output),
                ]
            )
            == 0
        )
        counts[stride] = json.loads((output / "summary.json").read_text())["windows"]
    capsys.readouterr()
    # 40 rows: 28 train, 4 validation, 8 test rows, so 28-5+1, 4-2+1 and 8-2+1 windows. Stride 3
    # keeps starts 0, 3, 6, ...: train 0..21 (8), validation 27 (of 25..27), test 30, 33.
    assert counts[1] == {"train": 24, "validation": 3, "test": 7}
    assert counts[3] == {"train": 8, "validation": 1, "test": 2}


def test_derived_features_through_the_command_line(write_csv, tmp_path, capsys):
    source = two_ticker_csv(write_csv)
    output = tmp_path / "out"
    code = main(
        [
            *ticker_arguments(source),
            "--calendar-features",
            "--output",
            str(output),
        ]
    )
    assert code == 0, capsys.readouterr().err
    spec = WindowSpec.from_dict(json.loads((output / "window_spec.json").read_text()))
    assert spec.features == ("close", "volume", "week_sin", "week_cos", "year_sin", "year_cos")
    # Log returns need a catalog entry that names its price columns.
    code = main(
        [
            "--dataset",
            "none",
            "--source",
            str(source),
            "--timestamp-column",
            "date",
            "--targets",
            "close",
            "--series-column",
            "ticker",
            "--log-returns",
            "--output",
            str(tmp_path / "other"),
        ]
    )
    assert code == 2
    assert "names no price columns" in capsys.readouterr().err
