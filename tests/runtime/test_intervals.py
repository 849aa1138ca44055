"""Conformal calibration: order statistics by hand, nominal coverage on noise whose law is
known, per-series groups, a lossless archive, quantiles that never cross, and level checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.intervals import (
    QUANTILE_GRID,
    Calibration,
    calibrate,
    check_levels,
    interval_quantiles,
    level_name,
)


def test_the_order_statistics_of_nine_residuals_by_hand() -> None:
    residuals = np.arange(9, 0, -1, dtype="float64").reshape(9, 1, 1)  # 9, 8, ..., 1
    calibration = calibrate(residuals)
    one = np.array(["s"])
    offsets = calibration.quantile_offsets([0.1, 0.5, 0.9], one)[:, 0, 0, 0]
    # (n + 1) q = 1, 5, 9: the 1st, 5th and 9th smallest of 1..9.
    assert offsets.tolist() == [1.0, 5.0, 9.0]
    # Between grid points: a quarter of the way from q = 0.5 (5th smallest) to 0.505 (6th).
    assert calibration.quantile_offsets([0.50125], one)[0, 0, 0, 0] == pytest.approx(5.25)
    # Level 80's quantiles land on the grid exactly, float noise or not.
    assert calibration.missing([*interval_quantiles(80), 0.1 - 1e-15]) == []
    # (n + 1) q = 9.5 and 0.5: the 10th and the 0th of 9 do not exist; 0.999 is off the grid.
    assert calibration.missing([0.95, 0.05, 0.999, 0.9]) == [0.95, 0.05, 0.999]
    # q = 0.95 needs the 10th smallest of 9: refused, naming the count.
    with pytest.raises(
        DataValidationError,
        match=r"quantile 0.95 needs more .*\(9 windows of validation residuals; .*\(100 \+ L\)",
    ):
        calibration.quantile_offsets([0.95], one)


@pytest.mark.parametrize("level", [80, 90])
def test_intervals_from_normal_noise_cover_their_level(level: int) -> None:
    rng = np.random.default_rng(1)
    calibration = calibrate(rng.normal(0.5, 2.0, size=(2000, 3, 2)))
    low, high = interval_quantiles(level)
    lower, upper = calibration.quantile_offsets([low, high], np.array(["s"]))[:, 0]
    future = rng.normal(0.5, 2.0, size=(20000, 3, 2))
    covered = ((lower <= future) & (future <= upper)).mean(axis=(0, 2))
    assert covered == pytest.approx([level / 100] * 3, abs=0.015)


def test_per_series_offsets_follow_each_series_and_pooled_mixes_them() -> None:
    rng = np.random.default_rng(2)
    residuals = np.concatenate([rng.normal(0, 1, (500, 1, 1)), rng.normal(0, 10, (500, 1, 1))])
    ids = np.array(["calm"] * 500 + ["wild"] * 500)
    per_series = calibrate(residuals, ids)
    assert per_series.series_ids == ("calm", "wild") and per_series.windows.tolist() == [500, 500]
    offsets = per_series.quantile_offsets([0.9], np.array(["wild", "calm"]))[0, :, 0, 0]
    assert offsets[0] == pytest.approx(10 * 1.2816, rel=0.15)
    assert offsets[1] == pytest.approx(1.2816, rel=0.15)
    pooled = calibrate(residuals).quantile_offsets([0.9], np.array(["calm", "new"]))[0, :, 0, 0]
    assert pooled[0] == pooled[1] and offsets[1] < pooled[0] < offsets[0]
    with pytest.raises(DataValidationError, match=r"series \['new'\] have no calibration"):
        per_series.quantile_offsets([0.9], np.array(["new"]))


def test_the_archive_round_trips_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    calibration = calibrate(rng.normal(size=(50, 4, 2)), np.array(["a", "b"] * 25), source="x")
    calibration.save(tmp_path / "calibration.npz")
    loaded = Calibration.load(tmp_path / "calibration.npz")
    np.testing.assert_array_equal(loaded.offsets, calibration.offsets)  # NaN where too few
    assert (loaded.series_ids, loaded.source) == (("a", "b"), "x")
    assert loaded.windows.tolist() == [25, 25]


def test_quantiles_never_cross() -> None:
    rng = np.random.default_rng(4)
    calibration = calibrate(rng.standard_t(2, size=(300, 5, 3)))
    quantiles = QUANTILE_GRID[(QUANTILE_GRID > 0.01) & (QUANTILE_GRID < 0.99)]
    offsets = calibration.quantile_offsets(quantiles.tolist(), np.array(["s"]))
    assert (np.diff(offsets, axis=0) >= 0).all()


def test_levels_are_checked_and_named() -> None:
    assert check_levels([90, 80, 80.0]) == (80.0, 90.0)
    assert check_levels(np.array([95])) == (95.0,)
    assert check_levels(97.5) == (97.5,)
    assert check_levels([]) == ()  # no intervals, the point forecast only
    assert [level_name(level) for level in (80.0, 97.5)] == ["80", "97.5"]
    assert interval_quantiles(80) == pytest.approx((0.1, 0.9))
    for bad in (0, 100, -5, "high", True, ["80"], None, [80, float("nan")]):
        with pytest.raises(DataValidationError, match=r"levels: expected"):
            check_levels(bad)
