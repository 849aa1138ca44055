"""The rolling recalibration: which residuals each forecast window's calibration rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.runtime.contract import SERIES_COLUMN, TRAIN, DataValidationError
from pipelines.runtime.intervals import calibrate
from pipelines.runtime.scaling import fit_scaler
from pipelines.training.calibration import (
    evaluate_intervals,
    feedback_groups,
    feedback_rates,
    rolling_calibration,
)


def test_each_recalibration_rests_on_the_last_residuals_known_at_its_origin() -> None:
    # One series, 5 calibration windows (starts 0..4) then 3 forecast windows (5..7); horizon
    # 2; residual of window j at step h = 10 j + h. A window of 3 residuals, recalibrated
    # every 2 forecast windows:
    # - at start 5, step 1 knows windows 0..4 (s + 1 <= 5), keeps 2, 3, 4: 21, 31, 41; step 2
    #   knows 0..3, keeps 1, 2, 3: 12, 22, 32;
    # - at start 7, step 1 keeps windows 4, 5, 6 (41, 51, 61); step 2 keeps 3, 4, 5 (32, 42, 52).
    # Of 3 residuals the conformal median is the ceil(4 x 0.5) = 2nd smallest; the lowest
    # quantile with an order statistic is q = 0.25 (floor(4 q) = 1): the smallest.
    windows = np.arange(8)
    residuals = (10.0 * windows[:, None] + np.array([1.0, 2.0]))[..., None]
    forecast = windows >= 5
    calibration, groups = rolling_calibration(
        residuals, windows, np.array(["s"] * 8), forecast, window=3, every=2
    )
    assert groups.tolist() == ["s#0", "s#0", "s#1"]
    median = calibration.quantile_offsets([0.5], groups)[0, :, :, 0]
    np.testing.assert_array_equal(median, [[31, 22], [31, 22], [51, 42]])
    lowest = calibration.quantile_offsets([0.25], groups)[0, :, :, 0]
    np.testing.assert_array_equal(lowest, [[21, 12], [21, 12], [41, 32]])
    np.testing.assert_array_equal(calibration.windows, [3, 3])


def test_a_longer_reach_spreads_the_residuals_evenly_over_the_last_known_windows() -> None:
    # As above with 10 calibration windows (starts 0..9), then forecast windows from start 10;
    # 3 residuals spread over the last 7 known windows (positions 0, 3 and 6 of them):
    # - step 1 knows windows 0..9, its last 7 are 3..9: keeps 3, 6, 9 (31, 61, 91);
    # - step 2 knows windows 0..8, its last 7 are 2..8: keeps 2, 5, 8 (22, 52, 82).
    windows = np.arange(12)
    residuals = (10.0 * windows[:, None] + np.array([1.0, 2.0]))[..., None]
    calibration, groups = rolling_calibration(
        residuals, windows, np.array(["s"] * 12), windows >= 10, window=3, every=5, span=7
    )
    median = calibration.quantile_offsets([0.5], groups)[0, :, :, 0]
    np.testing.assert_array_equal(median, [[61, 52], [61, 52]])
    lowest = calibration.quantile_offsets([0.25], groups)[0, :, :, 0]
    np.testing.assert_array_equal(lowest, [[31, 22], [31, 22]])
    np.testing.assert_array_equal(calibration.windows, [3])
    # A span no longer than the window is the window itself: the last 3 known.
    last, groups = rolling_calibration(
        residuals, windows, np.array(["s"] * 12), windows >= 10, window=3, every=5, span=2
    )
    np.testing.assert_array_equal(last.quantile_offsets([0.25], groups)[0, 0, :, 0], [71, 62])


def test_series_are_recalibrated_on_their_own_residuals_in_time_order() -> None:
    # Two series interleaved and shuffled; each one's forecast windows see only its own past.
    rng = np.random.default_rng(0)
    starts = np.tile(np.arange(6), 2)
    ids = np.repeat(["a", "b"], 6)
    residuals = np.where(ids == "a", 1.0, 100.0)[:, None, None] * (starts[:, None, None] + 1)
    order = rng.permutation(12)
    calibration, groups = rolling_calibration(
        residuals[order], starts[order], ids[order], (starts >= 4)[order], window=2, every=10
    )
    forecast_ids = ids[order][(starts >= 4)[order]]
    assert [group.split("#")[0] for group in groups] == forecast_ids.tolist()
    # At start 4, step 1 keeps the windows at starts 2 and 3 (residuals 3 and 4, x100 for b):
    # the conformal median of 2 is the ceil(3 x 0.5) = 2nd smallest.
    median = calibration.quantile_offsets([0.5], groups)[0, :, 0, 0]
    np.testing.assert_array_equal(median, np.where(forecast_ids == "a", 4.0, 400.0))


def test_a_forecast_window_with_no_known_residual_is_refused() -> None:
    with pytest.raises(DataValidationError, match=r"no residual of step 1 is known .* 'x'"):
        rolling_calibration(
            np.zeros((3, 1, 1)), np.arange(3), np.array(["x"] * 3), np.ones(3, bool), 5, 1
        )


def test_feedback_widens_after_a_miss_and_narrows_after_a_hit_by_hand() -> None:
    # One series, one step: 19 calibration residuals -9..9 (starts 0..18), then forecast
    # windows at starts 19, 20, 21 with residuals 100 (a miss), 0 (a hit), 0. Window 19, every
    # window recalibrated, level 80, feedback 1: log c += (miss share - 0.2) per recalibration.
    residuals = np.concatenate([np.arange(-9.0, 10.0), [100.0, 0.0, 0.0]])[:, None, None]
    starts = np.arange(22)
    calibration, groups = rolling_calibration(
        residuals, starts, np.array(["s"] * 22), starts >= 19, 19, 1, feedback=1.0, levels=(80.0,)
    )
    low, high = calibration.quantile_offsets([0.1, 0.9], groups)[:, :, 0, 0]
    # Start 19: nothing known yet, c = 1: the 2nd and 18th of -9..9, -8 and 8.
    # Start 20: window 19 missed, log c = 0.8; of -8..9 and 100: 2nd -7, 18th 9, median 1.
    # Start 21: window 20 hit, log c = 0.6; of -7..9, 100, 0: 2nd -6, 18th 9, median 1.
    c1, c2 = np.exp(0.8), np.exp(0.6)
    np.testing.assert_allclose(low, [-8, 1 - 8 * c1, 1 - 7 * c2])
    np.testing.assert_allclose(high, [8, 1 + 8 * c1, 1 + 8 * c2])
    # Without feedback the same windows give the plain order statistics.
    plain, _ = rolling_calibration(residuals, starts, np.array(["s"] * 22), starts >= 19, 19, 1)
    np.testing.assert_allclose(plain.quantile_offsets([0.1], groups)[0, :, 0, 0], [-8, -7, -6])


def test_feedback_rates_are_scaled_by_the_delay_of_the_misses_by_hand() -> None:
    # One series, two steps: 20 calibration windows (starts 0..19) with residuals -10..9 at both
    # steps, then forecast windows at starts 20..23 with residuals 100 (both steps missed), then
    # 0. Window 19, every window recalibrated, level 80, feedback 1. A step-1 value is known one
    # recalibration after its forecast (rate 1), a step-2 value two after (rate 1/2).
    calibration_part = np.arange(-10.0, 10.0)
    test_part = np.array([100.0, 0.0, 0.0, 0.0])
    residuals = np.repeat(np.concatenate([calibration_part, test_part])[:, None, None], 2, axis=1)
    starts = np.arange(24)
    ids = np.array(["s"] * 24)

    def bounds(**variant: object) -> np.ndarray:
        calibration, groups = rolling_calibration(
            residuals, starts, ids, starts >= 20, 19, 1, 1.0, (80.0,), **variant
        )
        return calibration.quantile_offsets([0.1, 0.9], groups)[:, :3, :, 0]  # (2, 3, steps)

    # Start 20: c = 1. Step 1 on windows 1..19 (-9..9): -8, 8; step 2 on 0..18 (-10..8): -9, 7.
    # Start 21: window 20's step 1 missed: log c1 = 0.8. Step 1 on -8..9 and 100: median 1,
    #   1 -/+ 8 c1; step 2 (nothing new learnt) on -9..9: -8, 8.
    # Start 22: window 21's step 1 hit: log c1 = 0.6; window 20's step 2 missed the bounds it
    #   had (-9, 7): log c2 = 0.8 / 2. Step 1 on -7..9, 100, 0: 1 - 7 c1, 1 + 8 c1; step 2 on
    #   -8..9 and 100: 1 -/+ 8 c2.
    c1, c1_later, c2 = np.exp(0.8), np.exp(0.6), np.exp(0.4)
    expected = np.array(
        [
            [[-8, -9], [1 - 8 * c1, -8], [1 - 7 * c1_later, 1 - 8 * c2]],
            [[8, 7], [1 + 8 * c1, 8], [1 + 8 * c1_later, 1 + 8 * c2]],
        ]
    )
    np.testing.assert_allclose(bounds(feedback_by="step"), expected)
    # At the full rate, step 2's factor moves by the whole excess.
    undelayed = bounds(feedback_by="step", delay_scaled=False)
    np.testing.assert_allclose(undelayed[:, 2, 1], [1 - 8 * c1, 1 + 8 * c1])
    # One shared factor learns from both steps at the last step's rate: 0.8 / 2 after start
    # 20's step 1 miss, then + (-0.2 + 0.8) / 2 / 2 at start 22.
    shared = bounds(feedback_by="shared")
    # Grouped by delay and recalibrated every window: one factor per step.
    np.testing.assert_allclose(bounds(feedback_by="delay"), expected)
    # The default is the shared factor.
    np.testing.assert_allclose(bounds(), shared)
    s1, s2 = np.exp(0.4), np.exp(0.55)
    np.testing.assert_allclose(shared[:, 1, :], [[1 - 8 * s1, -8 * s1], [1 + 8 * s1, 8 * s1]])
    np.testing.assert_allclose(
        shared[:, 2, :], [[1 - 7 * s2, 1 - 8 * s2], [1 + 8 * s2, 1 + 8 * s2]]
    )


def test_feedback_groups_and_rates_by_hand() -> None:
    # H=5 recalibrated every 2 windows: steps 1-2 are known one recalibration after their
    # forecast, 3-4 two, 5 three.
    assert feedback_groups(5, 2, "shared").tolist() == [0, 0, 0, 0, 0]
    assert feedback_groups(5, 2, "delay").tolist() == [0, 0, 1, 1, 2]
    assert feedback_groups(5, 2, "step").tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(feedback_rates(feedback_groups(5, 2, "shared"), 2, True), [1 / 3])
    np.testing.assert_allclose(
        feedback_rates(feedback_groups(5, 2, "delay"), 2, True), [1, 1 / 2, 1 / 3]
    )
    np.testing.assert_allclose(
        feedback_rates(feedback_groups(5, 2, "step"), 2, True), [1, 1, 1 / 2, 1 / 2, 1 / 3]
    )
    np.testing.assert_allclose(feedback_rates(feedback_groups(5, 2, "delay"), 2, False), [1, 1, 1])
    with pytest.raises(ValueError, match="feedback_by: one of shared, delay, step, not 'day'"):
        feedback_groups(5, 2, "day")


@pytest.mark.parametrize(("every", "same_as"), [(1, "step"), (3, "shared")])
def test_delay_factors_reduce_to_the_step_or_the_shared_ones(every: int, same_as: str) -> None:
    rng = np.random.default_rng(3)
    residuals = rng.standard_normal((60, 3, 2)) * np.linspace(1, 3, 60)[:, None, None]
    starts = np.arange(60)
    ids = np.array(["s"] * 60)

    def offsets(feedback_by: str) -> np.ndarray:
        calibration, groups = rolling_calibration(
            residuals, starts, ids, starts >= 30, 20, every, 2.0, (80.0,), feedback_by=feedback_by
        )
        return calibration.quantile_offsets([0.1, 0.9], groups)

    np.testing.assert_allclose(offsets("delay"), offsets(same_as))
    # Recalibrated every window, each step has its own delay: one factor per step; with the
    # whole horizon known one recalibration after its forecast, one factor for all. The
    # grouping matters: the per-step factors are not the shared one here.
    assert not np.allclose(offsets("step"), offsets("shared"))


def test_an_exact_forecast_inside_a_zero_width_interval_counts_as_covered() -> None:
    # A repeat-last forecast of a dry spell: 0 mm forecast, 0 mm fell, every residual 0, so
    # every conformal offset is 0 and each interval is the single value 0 mm. Scaled to float32
    # and back, 0 mm comes out about 1e-8 off; the actual is still inside its interval.
    rain = pd.DataFrame({SERIES_COLUMN: "s", "rain": [0.0, 0.1, 0.3, 0.0, 2.7, 0.0]})
    scaler = fit_scaler(rain, np.full(len(rain), TRAIN), ["rain"])
    zero = scaler.transform(rain.iloc[[0]], ["rain"]).item()
    back = scaler.inverse_transform(np.array([[[zero]]]), ["s"], ["rain"]).item()
    assert back != 0.0  # the round-off this test is about
    windows = 20  # level 90 needs 19 residuals
    forecast = np.full((windows, 2, 1), zero)
    calibration = calibrate(np.zeros((windows, 2, 1)))
    scores = evaluate_intervals(
        calibration,
        (80.0, 90.0),
        forecast,
        forecast.copy(),
        np.zeros((windows, 2, 1)),
        np.array(["s"] * windows),
        scaler,
        ("rain",),
    )
    assert scores.coverage == {"80": 1.0, "90": 1.0}
    np.testing.assert_array_equal(scores.coverage_by_step["90"], [1.0, 1.0])
    assert scores.width["80"] == 0.0
