"""Windows never cross a series (or segment) boundary: every window's rows are one series,
consecutive in time, and each series gets exactly the windows its own rows allow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config.loading import load_config
from pipelines.data.prepare import PrepareResult
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.contract import PART_NAMES, SEGMENT_COLUMN, SERIES_COLUMN, TIMESTAMP_COLUMN
from pipelines.runtime.windows import WindowedData, WindowSpec, window_starts

INPUT_WIDTH = 4
HORIZON = 3
FIRST_DAY = pd.Timestamp("2021-01-01", tz="UTC")
SERIES_DAYS = {
    "a_long": 40,
    "b_mid": 23,
    "c_short": 6,  # shorter than one window (4 + 3 rows): dropped, no window
    "d_gappy": 30,  # days 10..13 missing: segments of 10 and 16 rows
}
GAPPY_MISSING_DAYS = range(10, 14)

# Hand counts with the 0.7/0.1/0.2 split of each series' kept rows (int() for train and test)
# and a window in the part of all its targets (rows k+4..k+6 of its segment, k its start):
#   a_long, 40 rows: train 0-27, validation 28-31, test 32-39
#       train k 0-21, validation k 24-25, test k 28-33
#   b_mid, 23 rows: train 0-15, validation 16-18, test 19-22
#       train k 0-9, validation k 12, test k 15-16
#   d_gappy, 26 kept rows: train 0-17, validation 18-20, test 21-25; segment 1 is rows 0-9,
#       segment 2 rows 10-25 (local 0-15: train 0-7, validation 8-10, test 11-15)
#       segment 1: train k 0-3; segment 2: train k 0-1, validation k 4, test k 7-9
# With stride 3 only k = 0, 3, 6, ... of each segment remain.
EXPECTED_COUNTS = {
    1: {
        "a_long": {"train": 22, "validation": 2, "test": 6},
        "b_mid": {"train": 10, "validation": 1, "test": 2},
        "d_gappy": {"train": 4 + 2, "validation": 1, "test": 3},
    },
    3: {
        "a_long": {"train": 8, "validation": 1, "test": 2},
        "b_mid": {"train": 4, "validation": 1, "test": 1},
        "d_gappy": {"train": 2 + 1, "validation": 0, "test": 1},
    },
}


def crafted_source(path: Path) -> Path:
    """Writes the CSV of `SERIES_DAYS`: daily rows, levels far apart, d_gappy with a hole.

    Args:
        path: the CSV file to write.

    Returns:
        `path`.
    """
    frames = []
    for index, (name, days) in enumerate(SERIES_DAYS.items()):
        day_numbers = np.arange(days)
        if name == "d_gappy":
            day_numbers = np.setdiff1d(day_numbers, GAPPY_MISSING_DAYS)
        frames.append(
            pd.DataFrame(
                {
                    "day": (FIRST_DAY + pd.to_timedelta(day_numbers, unit="D")).strftime(
                        "%Y-%m-%d"
                    ),
                    "name": name,
                    "value": 100.0 * (index + 1) + np.sin(day_numbers / 2.0),
                }
            )
        )
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def prepare_crafted(tmp_path: Path, stride: int) -> PrepareResult:
    """The crafted CSV through the real prepare path (validation, gaps, split, windows).

    Args:
        tmp_path: where the CSV is written.
        stride: steps between window starts.

    Returns:
        The prepared data.
    """
    config = load_config(
        overrides={
            "dataset": "none",
            "source": str(crafted_source(tmp_path / "series.csv")),
            "data.timestamp_column": "day",
            "data.series_column": "name",
            "targets": "value",
            "input_width": str(INPUT_WIDTH),
            "horizon": str(HORIZON),
            "data.stride": str(stride),
            "data.max_gap": "1",
        }
    )
    return prepare_data(config.data)


def identity_windows(prepared: PrepareResult) -> WindowedData:
    """Windows over (series code, day number) instead of values, cut exactly as training cuts.

    Args:
        prepared: the prepared data.

    Returns:
        Windowed data whose inputs and targets say which series and day each row is.
    """
    frame = prepared.frame
    series_codes = pd.factorize(frame[SERIES_COLUMN])[0]
    day_numbers = (frame[TIMESTAMP_COLUMN] - FIRST_DAY) // pd.Timedelta(days=1)
    identity = np.column_stack([series_codes, day_numbers]).astype("float64")
    columns = ("series_code", "day_number")
    spec = WindowSpec(
        input_width=prepared.spec.input_width,
        horizon=prepared.spec.horizon,
        features=columns,
        targets=columns,
        stride=prepared.spec.stride,
    )
    return WindowedData.from_frame(frame, identity, prepared.parts, spec, columns)


@pytest.mark.parametrize("stride", [1, 3])
def test_every_window_is_one_series_consecutive_in_time(tmp_path: Path, stride: int) -> None:
    prepared = prepare_crafted(tmp_path, stride)
    windowed = identity_windows(prepared)
    assert sum(windowed.counts().values()) > 0
    for part in PART_NAMES:
        inputs, targets = windowed.arrays(part)
        rows = np.concatenate([inputs, targets], axis=1)  # (windows, 7, [series, day])
        series_codes, day_numbers = rows[..., 0], rows[..., 1]
        crossing = np.flatnonzero((series_codes != series_codes[:, :1]).any(axis=1))
        assert not len(crossing), (
            f"{len(crossing)} {part} windows cross a series; the first, as (series, day) rows: "
            f"{rows[crossing[0]].astype(int).tolist()}"
        )
        jumping = np.flatnonzero((np.diff(day_numbers, axis=1) != 1).any(axis=1))
        assert not len(jumping), (
            f"{len(jumping)} {part} windows skip or repeat days; the first, as (series, day) "
            f"rows: {rows[jumping[0]].astype(int).tolist()}"
        )


@pytest.mark.parametrize("stride", sorted(EXPECTED_COUNTS))
def test_each_series_gets_the_windows_its_own_rows_allow(tmp_path: Path, stride: int) -> None:
    prepared = prepare_crafted(tmp_path, stride)
    frame = prepared.frame
    assert "c_short" not in set(frame[SERIES_COLUMN])
    gappy = frame.loc[frame[SERIES_COLUMN] == "d_gappy"]
    assert gappy[SEGMENT_COLUMN].value_counts(sort=False).tolist() == [10, 16]

    starts = window_starts(frame[SEGMENT_COLUMN].to_numpy(), prepared.parts, prepared.spec)
    series_of_row = frame[SERIES_COLUMN].astype(str).to_numpy()
    counts = {
        name: {part: int((series_of_row[starts[part]] == name).sum()) for part in PART_NAMES}
        for name in SERIES_DAYS
        if name != "c_short"
    }
    assert counts == EXPECTED_COUNTS[stride]
    # What training cuts and what prepare reports agree with the hand counts too.
    expected_totals = {
        part: sum(series[part] for series in EXPECTED_COUNTS[stride].values())
        for part in PART_NAMES
    }
    assert identity_windows(prepared).counts() == expected_totals
    assert prepared.summary["windows"] == expected_totals


# --------------------------------------------------------------------------------------------
# window_starts alone: boundaries that the parts cannot reveal


def test_starts_stop_at_every_segment_boundary_even_within_one_part() -> None:
    # Three segments (series) of 9, 12 and 7 rows, all training rows: only the segment
    # boundaries keep windows from running on into the next series.
    segments = np.repeat([0, 1, 2], [9, 12, 7])
    parts = np.zeros(len(segments), dtype="int8")
    spec = WindowSpec(INPUT_WIDTH, HORIZON, features=("x",), targets=("x",))
    starts = window_starts(segments, parts, spec)
    assert starts["train"].tolist() == [0, 1, 2, 9, 10, 11, 12, 13, 14, 21]
    assert starts["validation"].tolist() == starts["test"].tolist() == []


def test_stride_counts_from_the_start_of_each_segment() -> None:
    segments = np.repeat([0, 1, 2], [9, 12, 7])
    parts = np.zeros(len(segments), dtype="int8")
    spec = WindowSpec(INPUT_WIDTH, HORIZON, features=("x",), targets=("x",), stride=2)
    starts = window_starts(segments, parts, spec)
    # Segment starts 0, 9 and 21; offsets 0, 2, 4, ... that leave room for 7 rows.
    assert starts["train"].tolist() == [0, 2, 9, 11, 13, 21]
