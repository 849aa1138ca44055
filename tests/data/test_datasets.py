"""The real files in ../shared/datasets load, and their summaries report what is in them.

These tests fail (not skip) under CI=true when the shared data is missing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.cli.prepare import main
from pipelines.data.split import SplitSpec, assign_parts
from pipelines.runtime.contract import PART_NAMES
from pipelines.runtime.windows import window_starts
from tests.runtime.test_windows import ltsf_counts, spec

pytestmark = pytest.mark.shared_data


def prepare(tmp_path, *arguments: str) -> tuple[dict, pd.DataFrame]:
    output = tmp_path / "prepared"
    assert (
        main([*arguments, "--output", str(output), "--summary-json", str(tmp_path / "s.json")]) == 0
    )
    return json.loads((tmp_path / "s.json").read_text()), pd.read_parquet(output / "frame.parquet")


def windows_by_part(frame: pd.DataFrame, input_width: int, horizon: int) -> dict[str, int]:
    """Counts windows per part with cumulative sums, independently of `window_starts`."""
    counts = dict.fromkeys(PART_NAMES, 0)
    for _, rows in frame.groupby("segment"):
        part = rows["part"].astype(str).to_numpy()
        n = len(part)
        for name in PART_NAMES:
            inside = np.r_[0, np.cumsum(part == name)]
            starts = np.arange(n - input_width - horizon + 1)
            targets_in_part = inside[starts + input_width + horizon] - inside[starts + input_width]
            counts[name] += int((targets_in_part == horizon).sum())
    return counts


def test_weather_file_as_published_gives_the_ltsf_test_windows(shared_datasets):
    raw = pd.read_csv(shared_datasets / "weather.csv.gz")
    assert len(raw) == 52696
    frame = pd.DataFrame(
        {"series_id": "w", "segment": 0, "timestamp": pd.to_datetime(raw["date"], utc=True)}
    )
    parts = assign_parts(frame, SplitSpec.parse("0.7,0.1,0.2"))
    starts = window_starts(frame["segment"].to_numpy(), parts, spec(96, 96))
    counts = {name: len(s) for name, s in starts.items()}
    assert counts == ltsf_counts(52696, 96, 96)
    assert counts["test"] == 10444


def test_weather_summary_reports_duplicate_gap_and_sentinels(shared_datasets, tmp_path):
    summary, frame = prepare(
        tmp_path,
        "--dataset",
        "weather-ltsf",
        "--source",
        str(shared_datasets / "weather.csv.gz"),
        "--input-width",
        "96",
        "--horizon",
        "96",
    )
    validation = summary["validation"]
    assert validation["duplicate_rows_dropped"] == 1
    assert validation["missing_timestamps"] == 9
    timestamp_gaps = [gap for gap in validation["gaps"]["first"] if gap["missing_timestamps"]]
    assert timestamp_gaps == [
        {
            "series_id": "weather-ltsf",
            "after": "2020-05-29 09:30:00+00:00",
            "before": "2020-05-29 11:10:00+00:00",
            "steps": 9,
            "missing_timestamps": 9,
            "action": "filled",
        }
    ]
    # The two OT runs of -9999 (34 and 16 rows) are longer than max_gap 12: they split.
    assert validation["gaps"]["split"] == 2
    sentinels = {name.split(" ")[0]: count for name, count in validation["sentinel_values"].items()}
    assert sentinels == {"wv": 1, "max.": 30, "OT": 50}
    # OT's -9999 runs (34 and 16 rows) are longer than max_gap 12: they split the series.
    assert validation["rows_dropped"] == {"duplicate_identical": 1, "missing_values_not_filled": 50}
    assert summary["segments"] == 3 and summary["rows"] == 52696 - 1 + 9 - 50
    assert summary["windows"] == windows_by_part(frame, 96, 96)
    assert "sha256 matches the catalog" in summary["source_notes"]


def test_stocks_give_one_series_per_ticker(shared_datasets, tmp_path):
    summary, frame = prepare(
        tmp_path, "--dataset", "stocks-5yr", "--input-width", "96", "--horizon", "96"
    )
    assert summary["series_read"] == 505
    dropped = {item["series_id"] for item in summary["validation"]["dropped_series"]}
    assert "APTV" in dropped  # 44 rows: too short for one window of 192
    assert summary["series"] == 505 - len(dropped) == frame["series_id"].nunique()
    assert summary["frequency"] == "trading-days"
    assert summary["windows"] == windows_by_part(frame, 96, 96)


def test_beijing_builds_time_from_parts_and_handles_missing_pm25(shared_datasets, tmp_path):
    summary, frame = prepare(
        tmp_path, "--dataset", "beijing-pm25", "--input-width", "96", "--horizon", "96"
    )
    assert summary["rows_read"] == 43824 and summary["frequency"] == "h"
    # Local Beijing time (UTC+8): 2010-01-01 00h is 2009-12-31 16h UTC.
    # The first day has no pm2.5 (24 NA rows, trimmed): data start at 2010-01-02 00h local.
    assert frame["timestamp"].min() == pd.Timestamp("2010-01-01T16:00:00Z")
    validation = summary["validation"]
    assert validation["values_filled"]["pm2.5"] > 0
    assert validation["rows_dropped"]["missing_values_not_filled"] > 0
    assert frame["pm2.5"].notna().all()
    assert summary["windows"] == windows_by_part(frame, 96, 96)


def test_default_dataset_is_the_embedded_one(tmp_path):
    summary, frame = prepare(tmp_path)
    assert summary["dataset"] == "seattle-weather"
    assert summary["rows"] == 1461 and summary["series"] == 1
    assert summary["time_range"] == {
        "start": "2012-01-01T00:00:00+00:00",
        "end": "2015-12-31T00:00:00+00:00",
    }
    assert summary["windows"] == windows_by_part(frame, 28, 7)
