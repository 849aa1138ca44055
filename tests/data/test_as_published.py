"""The LTSF protocol in the data steps: the `as_published` policy keeps a file's rows as they are,
and the split rules (fractions by rows, ETT months) cut where the published loaders cut.

Window counts and the repeat-last baseline's MSE / MAE are checked against a hand computation
with NumPy that follows the published loaders (Autoformer's `Dataset_Custom` and
`Dataset_ETT_hour`): borders, a z-score fitted on the training rows, every stride-1 window whose
targets lie inside the part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.prepare import run as prepare_data
from pipelines.data.settings import DataConfig
from pipelines.data.split import NAMED_SPLITS, SplitSpec
from pipelines.runtime.contract import DataValidationError
from pipelines.training.metrics import evaluate


def ltsf_file(path: Path, rows: int, frequency: str = "10min", seed: int = 0) -> pd.DataFrame:
    """An LTSF-layout CSV (date, then channels) with a duplicate row, a gap, rows out of order
    and a -9999 value, which the as_published policy must keep."""
    generator = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-01", periods=rows, freq=frequency)
    frame = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d %H:%M:%S"),
            "a": np.cumsum(generator.normal(size=rows)).round(3),
            "OT": (np.sin(np.arange(rows) / 7) * 10 + generator.normal(size=rows)).round(3),
        }
    )
    frame.loc[5, "a"] = -9999.0
    frame.loc[10, "date"], frame.loc[11, "date"] = frame.loc[11, "date"], frame.loc[10, "date"]
    frame.loc[20] = frame.loc[19]  # a duplicate row (it replaces row 20: a gap follows it)
    frame.to_csv(path, index=False)
    return frame


def config(path: Path, split: str, input_width: int, horizon: int, **extra) -> DataConfig:
    settings = {"policy": "as_published", **extra}
    return DataConfig(
        dataset=None,
        source=str(path),
        timestamp_column="date",
        targets=("a", "OT"),
        split=split,
        input_width=input_width,
        horizon=horizon,
        **settings,
    )


def published_borders(rows: int, split: str, input_width: int) -> dict[str, tuple[int, int]]:
    """(first row of the first window's inputs, end row) of each part, as the LTSF loaders cut."""
    if split in NAMED_SPLITS:
        train, validation, test = NAMED_SPLITS[split]
        ends = (train, train + validation, train + validation + test)
    else:
        train, test = int(rows * 0.7), int(rows * 0.2)
        ends = (train, rows - test, rows)
    return {
        "train": (0, ends[0]),
        "validation": (ends[0] - input_width, ends[1]),
        "test": (ends[1] - input_width, ends[2]),
    }


def repeat_last_by_hand(
    values: np.ndarray, borders: tuple[int, int], train_end: int, input_width: int, horizon: int
) -> tuple[int, float, float]:
    """Windows, MSE and MAE of the repeat-last forecast on z-scored values of one part."""
    training = values[:train_end]
    scaled = (values - training.mean(axis=0)) / training.std(axis=0)
    start, end = borders
    count = end - start - input_width - horizon + 1
    actual = np.stack(
        [scaled[s + input_width : s + input_width + horizon] for s in range(start, start + count)]
    )
    last = np.stack([scaled[s + input_width - 1] for s in range(start, start + count)])
    forecast = np.repeat(last[:, np.newaxis, :], horizon, axis=1)
    error = actual - forecast
    return count, float(np.mean(error**2)), float(np.mean(np.abs(error)))


@pytest.mark.parametrize(
    ("split", "rows", "frequency", "input_width", "horizon"),
    [("0.7,0.1,0.2", 1003, "10min", 24, 12), ("ett-hour", 14_400 + 77, "h", 48, 24)],
)
def test_window_counts_and_repeat_metrics_match_the_published_protocol(
    tmp_path: Path, split: str, rows: int, frequency: str, input_width: int, horizon: int
) -> None:
    path = tmp_path / "ltsf.csv"
    frame = ltsf_file(path, rows, frequency)
    values = frame[["a", "OT"]].to_numpy(dtype="float64")
    borders = published_borders(rows, split, input_width)
    prepared = prepare_data(config(path, split, input_width, horizon))

    # Nothing repaired: every row of the file in its order, -9999 and the duplicate kept.
    kept = prepared.frame[["a", "OT"]].to_numpy()
    used = borders["test"][1]
    np.testing.assert_array_equal(kept, values[:used])
    assert prepared.summary["rows_read"] == rows
    assert prepared.summary["rows"] == used

    from pipelines.training.evaluation import target_windows
    from pipelines.training.train import windowed_data

    windowed = windowed_data(prepared)
    train_end = borders["train"][1]
    for part in ("train", "validation", "test"):
        count, expected_mse, expected_mae = repeat_last_by_hand(
            values, borders[part], train_end, input_width, horizon
        )
        assert len(windowed.starts[part]) == count, part
        starts = windowed.starts[part]
        assert starts[0] == borders[part][0]
        assert starts[-1] == borders[part][1] - input_width - horizon
        if part == "train":
            continue
        actual = target_windows(prepared, windowed, part).scaled
        last = windowed.inputs[starts + input_width - 1][:, np.newaxis, :]
        forecast = np.repeat(last, horizon, axis=1)
        scores = evaluate(actual, forecast)
        assert scores["mse"] == pytest.approx(expected_mse, rel=1e-5)
        assert scores["mae"] == pytest.approx(expected_mae, rel=1e-5)


def test_the_ett_split_leaves_the_rows_after_twenty_months_out(tmp_path: Path) -> None:
    path = tmp_path / "ett.csv"
    ltsf_file(path, 14_400 + 500, "h")
    prepared = prepare_data(config(path, "ett-hour", 96, 24))
    assert prepared.summary["rows_per_split"] == {
        "train": 8640,
        "validation": 2880,
        "test": 2880,
    }
    assert prepared.summary["validation"]["rows_dropped"] == {"after_the_split": 500}
    assert prepared.summary["windows"]["test"] == 2880 - 24 + 1


def test_named_splits_are_months_of_thirty_days() -> None:
    assert SplitSpec.parse("ett-hour").rows == (8640, 2880, 2880)
    assert SplitSpec.parse("ett-minute").rows == (34560, 11520, 11520)
    assert SplitSpec.parse("ett-minute").describe() == "ett-minute"


def test_the_validate_policy_still_repairs_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "ltsf.csv"
    ltsf_file(path, 1003)
    repaired = prepare_data(config(path, "0.7,0.1,0.2", 24, 12, policy="validate", max_gap=3))
    assert repaired.summary["validation"]["rows_unsorted"] > 0
    assert repaired.summary["validation"]["duplicate_rows_dropped"] == 1


def test_a_missing_value_is_an_error_that_names_the_column_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ltsf.csv"
    frame = ltsf_file(path, 300)
    frame.loc[41, "OT"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"column 'OT': missing value at line 43"):
        prepare_data(config(path, "0.7,0.1,0.2", 24, 12))


def test_as_published_reads_one_series(tmp_path: Path) -> None:
    path = tmp_path / "ltsf.csv"
    ltsf_file(path, 300)
    with pytest.raises(DataValidationError, match="series_column: the as_published policy"):
        prepare_data(config(path, "0.7,0.1,0.2", 24, 12, series_column="a"))
