"""Windows against a brute-force reference, the LTSF count formula, and tf.data round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.split import TEST, TRAIN, VALIDATION, SplitSpec, assign_parts
from pipelines.runtime.contract import PART_NAMES, DataValidationError
from pipelines.runtime.windows import WindowedData, WindowSpec, gather_windows, window_starts


def spec(
    input_width: int = 3, horizon: int = 2, stride: int = 1, features=("a", "b"), targets=("b",)
) -> WindowSpec:
    return WindowSpec(
        input_width=input_width, horizon=horizon, features=features, targets=targets, stride=stride
    )


def brute_force_starts(segments, parts, window: WindowSpec) -> dict[str, list[int]]:
    """Every start checked row by row: one segment, all targets in one part, stride per segment."""
    result = {name: [] for name in PART_NAMES}
    for start in range(len(segments) - window.total_width + 1):
        rows = range(start, start + window.total_width)
        if len({segments[r] for r in rows}) != 1:
            continue
        target_parts = {parts[r] for r in rows[window.input_width :]}
        if len(target_parts) != 1:
            continue
        segment_start = next(
            r for r in range(start, -1, -1) if r == 0 or segments[r - 1] != segments[start]
        )
        if (start - segment_start) % window.stride:
            continue
        result[PART_NAMES[target_parts.pop()]].append(start)
    return result


@pytest.mark.parametrize("stride", [1, 2, 5])
@pytest.mark.parametrize(("input_width", "horizon"), [(1, 1), (3, 2), (7, 4)])
def test_window_starts_match_brute_force(stride, input_width, horizon):
    rng = np.random.default_rng(input_width * 10 + horizon + stride)
    lengths = rng.integers(1, 40, size=6)
    segments = np.repeat(np.arange(6), lengths)
    # Parts rise within each series; two series of three segments each.
    parts = np.concatenate([np.sort(rng.integers(0, 3, size=n)) for n in lengths]).astype("int8")
    window = spec(input_width, horizon, stride)
    starts = window_starts(segments, parts, window)
    expected = brute_force_starts(segments, parts, window)
    for name in PART_NAMES:
        assert starts[name].tolist() == expected[name]


def ltsf_counts(rows: int, input_width: int, horizon: int) -> dict[str, int]:
    """The LTSF data loaders' window counts (Autoformer/DLinear `Dataset_Custom` borders)."""
    train_rows, test_rows = int(rows * 0.7), int(rows * 0.2)
    validation_rows = rows - train_rows - test_rows
    return {
        "train": train_rows - input_width - horizon + 1,
        "validation": validation_rows - horizon + 1,
        "test": test_rows - horizon + 1,
    }


def one_series(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": "s",
            "segment": 0,
            "timestamp": pd.date_range("2020-01-01", periods=rows, freq="10min", tz="UTC"),
        }
    )


@pytest.mark.parametrize("rows", [500, 1001, 52696])
@pytest.mark.parametrize(("input_width", "horizon"), [(96, 96), (336, 720), (24, 1)])
def test_counts_follow_the_targets_rule_and_match_ltsf(rows, input_width, horizon):
    frame = one_series(rows)
    parts = assign_parts(frame, SplitSpec())
    starts = window_starts(frame["segment"].to_numpy(), parts, spec(input_width, horizon))
    expected = {
        name: max(count, 0) for name, count in ltsf_counts(rows, input_width, horizon).items()
    }
    assert {name: len(s) for name, s in starts.items()} == expected


def test_no_training_window_sees_a_later_part():
    frame = one_series(300)
    parts = assign_parts(frame, SplitSpec())
    window = spec(20, 10)
    starts = window_starts(frame["segment"].to_numpy(), parts, window)
    for start in starts["train"]:
        assert (parts[start : start + window.total_width] == TRAIN).all()
    # Validation windows may look back into training rows but their targets are validation.
    first_validation = starts["validation"][0]
    assert parts[first_validation] == TRAIN
    assert (parts[first_validation + 20 : first_validation + 30] == VALIDATION).all()
    assert (parts[starts["test"][:, None] + np.arange(20, 30)] == TEST).all()


def test_gather_windows_match_slicing():
    values = np.arange(60, dtype="float32").reshape(20, 3)
    targets = values[:, [2]]
    window = spec(4, 3, features=("a", "b", "c"), targets=("c",))
    starts = np.array([0, 5, 13])
    inputs, outputs = gather_windows(values, targets, starts, window)
    assert inputs.shape == (3, 4, 3) and outputs.shape == (3, 3, 1)
    for i, start in enumerate(starts):
        np.testing.assert_array_equal(inputs[i], values[start : start + 4])
        np.testing.assert_array_equal(outputs[i], targets[start + 4 : start + 7])


def windowed_data(rows: int = 103) -> WindowedData:
    values = np.stack([np.arange(rows), np.arange(rows) * 10.0], axis=1).astype("float32")
    segments = np.repeat([0, 1], [rows // 2, rows - rows // 2])
    parts = np.zeros(rows, dtype="int8")
    return WindowedData(values, values[:, [1]], segments, parts, spec(5, 3))


def test_dataset_batches_equal_numpy_windows_in_time_order_with_remainder():
    data = windowed_data()
    expected_inputs, expected_targets = data.arrays("train")
    batches = list(data.dataset("train", batch_size=16).as_numpy_iterator())
    # Segments of 51 and 52 rows give 44 + 45 windows of 8 rows: 5 full batches and one of 9.
    assert len(expected_inputs) == 89
    assert [len(b[0]) for b in batches] == [16] * 5 + [9]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), expected_inputs)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), expected_targets)
    # No window crosses the segment boundary at row 51.
    first_rows = expected_inputs[:, 0, 0]
    last_target_rows = expected_targets[:, -1, 0] / 10
    assert not ((first_rows < 51) & (last_target_rows >= 51)).any()


def test_shuffled_dataset_is_seeded_and_reshuffled_each_epoch():
    data = windowed_data()

    def epoch_order(dataset) -> list[float]:
        return [float(x) for batch, _ in dataset.as_numpy_iterator() for x in batch[:, 0, 0]]

    first = data.dataset("train", batch_size=8, shuffle=True, seed=7)
    second = data.dataset("train", batch_size=8, shuffle=True, seed=7)
    epoch_one, epoch_two = epoch_order(first), epoch_order(first)
    assert epoch_one == epoch_order(second)
    assert epoch_one != epoch_two
    assert sorted(epoch_one) == sorted(data.arrays("train")[0][:, 0, 0].tolist())


def test_window_spec_round_trips_and_rejects_bad_values():
    window = spec(4, 2, 3)
    assert WindowSpec.from_dict(window.to_dict()) == window
    with pytest.raises(DataValidationError, match="parameter horizon: expected a positive integer"):
        spec(horizon=0)
    with pytest.raises(DataValidationError, match="parameter features: columns repeat"):
        spec(features=("a", "a"))


def test_empty_part_gives_an_empty_dataset_even_shuffled():
    data = windowed_data()
    assert data.counts()["test"] == 0
    assert list(data.dataset("test", batch_size=4, shuffle=True).as_numpy_iterator()) == []
