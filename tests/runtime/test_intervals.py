"""Conformal calibration: order statistics by hand, nominal coverage on noise whose law is
known, per-series groups, a lossless archive, quantiles that never cross, and level checks; the
same for conformalised quantile regression (CQR) of a quantile head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.intervals import (
    QUANTILE_GRID,
    Calibration,
    calibrate,
    calibrate_quantile_head,
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


HEAD_QUANTILES = (0.1, 0.5, 0.9)


def test_cqr_corrections_of_nine_windows_by_hand() -> None:
    # One step, one target; the head forecasts -1, 0, 1 at 0.1, 0.5, 0.9; actuals -4..4.
    actual = np.arange(-4.0, 5.0).reshape(9, 1, 1)
    head = np.broadcast_to(np.array([-1.0, 0.0, 1.0]).reshape(1, 1, 3, 1), (9, 1, 3, 1))
    calibration = calibrate_quantile_head(actual, head, HEAD_QUANTILES)
    assert calibration.head_quantiles == HEAD_QUANTILES
    one, point = np.array(["s"]), np.zeros((1, 1, 1))
    # Level 80: E = max(-1 - y, y - 1) = 3 2 1 0 -1 0 1 2 3, its ceil(10 x 0.8) = 8th smallest
    # is 3: [-1 - 3, 1 + 3]. Level 90 (q = 0.05, beyond the head: its 0.1 and 0.9): the 9th,
    # also 3. Level 50 (q = 0.25: 3/8 of the way from -1 to 0, -0.625): E = |y| - 0.625 but
    # -0.625 at y = 0, its 5th smallest 1.375: [-2, 2].
    bounds = calibration.bounds([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95], point, one, head[:1])
    np.testing.assert_allclose(bounds[:, 0, 0, 0], [-4, -4, -2, 0, 2, 4, 4])
    # Level 98 needs the 10th smallest of 9: refused as for residual offsets.
    assert calibration.missing([0.01, 0.99]) == [0.01, 0.99]
    with pytest.raises(DataValidationError, match="quantile head's calibration needs"):
        calibration.bounds([0.1], point, one)


def test_cqr_mends_a_too_narrow_head_and_follows_the_noise_of_each_window() -> None:
    # y = sigma x N(0, 1), sigma = 1 or 4 by window; the head knows sigma but its quantiles are
    # half as far out as they should be. CQR widens them to 80% and 90% on new windows by one
    # correction C for all, so each band is the head's plus 2 C: where the noise is 4 times
    # larger the 80% band is wider by the head's own difference, 2 x 0.5 x (4 - 1) x 1.2816.
    rng = np.random.default_rng(5)
    z = np.array([-1.6449, -1.2816, 0.0, 1.2816, 1.6449])
    levels = (0.05, 0.1, 0.5, 0.9, 0.95)

    def windows(count: int) -> tuple[np.ndarray, np.ndarray]:
        sigma = rng.choice([1.0, 4.0], size=(count, 2, 1))
        head = 0.5 * sigma[:, :, None, :] * z.reshape(1, 1, 5, 1)
        return sigma * rng.normal(size=(count, 2, 1)), head

    calibration = calibrate_quantile_head(*windows(3000), levels)
    future, future_head = windows(20000)
    ids, point = np.array(["s"] * 20000), future_head[:, :, 2]
    for level in (90, 80):
        lower, upper = calibration.bounds(interval_quantiles(level), point, ids, future_head)
        covered = ((lower <= future) & (future <= upper)).mean()
        assert covered == pytest.approx(level / 100, abs=0.015)
    width = (upper - lower)[:, 0, 0]
    wild = future_head[:, 0, 4, 0] > 1
    assert width[wild].mean() - width[~wild].mean() == pytest.approx(3 * 1.2816)
    assert width[~wild].mean() > 1.2816  # the too-narrow head (1.28 wide) was widened


def test_cqr_bounds_never_cross_and_keep_the_median_between_them() -> None:
    # A head whose bands are far too wide: corrections are negative, and would pull lower
    # bounds above the median and outer levels inside inner ones unless they nest.
    rng = np.random.default_rng(6)
    actual = rng.normal(size=(400, 3, 2))
    head = np.sort(rng.normal(scale=20, size=(400, 3, 3, 2)), axis=2)
    calibration = calibrate_quantile_head(actual, head, HEAD_QUANTILES)
    assert (calibration.offsets[0, :99] > 0).any()  # some lower offsets are positive
    quantiles = QUANTILE_GRID[(QUANTILE_GRID > 0.01) & (QUANTILE_GRID < 0.99)].tolist()
    new_head = np.sort(rng.normal(scale=20, size=(50, 3, 3, 2)), axis=2)
    point = new_head[:, :, 1]
    bounds = calibration.bounds(quantiles, point, np.array(["s"] * 50), new_head)
    assert (np.diff(bounds, axis=0) >= 0).all()
    median = quantiles.index(0.5)
    np.testing.assert_array_equal(bounds[median], point)


def test_a_cqr_archive_round_trips_with_its_head_levels(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    head = np.sort(rng.normal(size=(30, 2, 3, 1)), axis=2)
    calibration = calibrate_quantile_head(rng.normal(size=(30, 2, 1)), head, HEAD_QUANTILES)
    calibration.save(tmp_path / "calibration.npz")
    loaded = Calibration.load(tmp_path / "calibration.npz")
    np.testing.assert_array_equal(loaded.offsets, calibration.offsets)
    assert loaded.head_quantiles == HEAD_QUANTILES
