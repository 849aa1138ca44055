"""Metrics in original units and MASE against a NumPy hand computation from the raw CSV."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from pipelines.config.loading import load_config
from pipelines.tracking.training_run import metric_values
from pipelines.training import train

INPUT_WIDTH = 5
HORIZON = 3
TRAIN_FRACTION, TEST_FRACTION = 0.7, 0.2
SERIES = {
    # name: (rows, level, standard deviation of a training step)
    "big": (60, 1000.0, 25.0),
    "small": (50, 2.0, 0.05),
}
LATER_STEP_FACTOR = 4.0
"""Steps after the training rows are this much larger: a MASE scale taken from every row, not
from the training rows, would differ by far."""
PART_PREFIXES = {1: "val", 2: "test"}


def crafted_frame() -> pd.DataFrame:
    """Two daily random walks far apart in level and volatility, as the CSV holds them."""
    generator = np.random.default_rng(20240229)
    frames = []
    for name, (rows, level, step) in SERIES.items():
        steps = generator.normal(0.0, step, rows)
        steps[int(rows * TRAIN_FRACTION) :] *= LATER_STEP_FACTOR
        frames.append(
            pd.DataFrame(
                {
                    "day": pd.date_range("2022-03-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
                    "name": name,
                    "value": level + np.cumsum(steps),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass
class HandErrors:
    """Last-value forecast errors of every window of one part, with each window's scales."""

    errors: list[np.ndarray] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    scaled_errors: list[np.ndarray] = field(default_factory=list)
    scaled_scales: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """MAE, RMSE and MASE in original units, and MASE in scaled units."""
        errors = np.abs(np.stack(self.errors))  # (windows, horizon)
        scaled_errors = np.abs(np.stack(self.scaled_errors))
        return {
            "mae_original": float(errors.mean()),
            "rmse_original": float(np.sqrt((errors**2).mean())),
            "mase_original": float((errors / np.array(self.scales)[:, None]).mean()),
            "mase": float((scaled_errors / np.array(self.scaled_scales)[:, None]).mean()),
            "mae_original_by_step": errors.mean(axis=0),
        }


def hand_computation(frame: pd.DataFrame) -> dict[str, HandErrors]:
    """The last-value forecast of every validation and test window, scored by hand.

    Each series is split by its row count (int(n * 0.7) training rows, int(n * 0.2) test rows,
    the rest validation); a window belongs to the part holding all its targets. The MASE scale
    of a series is the mean absolute one-step difference of its TRAINING rows. In scaled units
    each series is standardised with its training rows' mean and deviation, as prepare does
    (which deviation does not matter: MASE is the same for any such affine map).

    Args:
        frame: the raw CSV frame.

    Returns:
        `{"val": HandErrors, "test": HandErrors}`.
    """
    parts = {prefix: HandErrors() for prefix in PART_PREFIXES.values()}
    total_width = INPUT_WIDTH + HORIZON
    for _, rows in frame.groupby("name", sort=True):
        values = rows.sort_values("day")["value"].to_numpy(dtype="float64")
        count = len(values)
        train_rows, test_rows = int(count * TRAIN_FRACTION), int(count * TEST_FRACTION)
        part_of_row = np.full(count, 1)
        part_of_row[:train_rows] = 0
        part_of_row[count - test_rows :] = 2
        training = values[:train_rows]
        scaled = (values - training.mean()) / training.std()
        scale = float(np.mean(np.abs(np.diff(training))))
        scaled_scale = float(np.mean(np.abs(np.diff(scaled[:train_rows]))))
        for start in range(count - total_width + 1):
            targets = slice(start + INPUT_WIDTH, start + total_width)
            target_parts = set(part_of_row[targets])
            if len(target_parts) != 1 or (part := target_parts.pop()) not in PART_PREFIXES:
                continue
            last = start + INPUT_WIDTH - 1
            hand = parts[PART_PREFIXES[part]]
            hand.errors.append(values[targets] - values[last])
            hand.scales.append(scale)
            hand.scaled_errors.append(scaled[targets] - scaled[last])
            hand.scaled_scales.append(scaled_scale)
    return parts


@pytest.fixture(scope="module")
def last_value_run(tmp_path_factory: pytest.TempPathFactory) -> train.TrainResult:
    """The `last` baseline trained (nothing to fit) and evaluated on the crafted CSV."""
    source = tmp_path_factory.mktemp("evaluation") / "walks.csv"
    crafted_frame().to_csv(source, index=False)
    config = load_config(
        overrides={
            "dataset": "none",
            "source": str(source),
            "data.timestamp_column": "day",
            "data.series_column": "name",
            "targets": "value",
            "input_width": str(INPUT_WIDTH),
            "horizon": str(HORIZON),
            "model": "last",
            "epochs": "1",
        }
    )
    return train.train_model(config)


def test_window_counts_match_the_hand_split(last_value_run: train.TrainResult) -> None:
    hand = hand_computation(crafted_frame())
    assert last_value_run.window_counts["validation"] == len(hand["val"].errors)
    assert last_value_run.window_counts["test"] == len(hand["test"].errors)
    assert len(hand["val"].errors) > 0 and len(hand["test"].errors) > 0


@pytest.mark.parametrize("prefix", ["", "baseline_last_"])
def test_original_units_and_mase_match_the_hand_computation(
    last_value_run: train.TrainResult, prefix: str
) -> None:
    overall, by_step = metric_values(last_value_run)
    hand = {part: errors.metrics() for part, errors in hand_computation(crafted_frame()).items()}
    logged = {
        "val_mae_original": overall[f"{prefix}val_mae_original"],
        "test_mae_original": overall[f"{prefix}test_mae_original"],
        "test_rmse_original": overall[f"{prefix}test_rmse_original"],
        "test_mase_original": overall[f"{prefix}test_mase_original"],
        "test_mase": overall[f"{prefix}test_mase"],
        "val_mase_original": overall[f"{prefix}val_mase_original"],
    }
    expected = {
        "val_mae_original": hand["val"]["mae_original"],
        "test_mae_original": hand["test"]["mae_original"],
        "test_rmse_original": hand["test"]["rmse_original"],
        "test_mase_original": hand["test"]["mase_original"],
        "test_mase": hand["test"]["mase"],
        "val_mase_original": hand["val"]["mase_original"],
    }
    assert logged == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(
        by_step[f"{prefix}test_mae_original_by_step"],
        hand["test"]["mae_original_by_step"],
        rtol=1e-5,
    )
