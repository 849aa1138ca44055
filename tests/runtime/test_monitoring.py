"""The monitoring reference and the alarm rules against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from pipelines.runtime.monitoring import (
    AlarmRules,
    MonitoringReference,
    binomial_band,
    check_window,
    monitoring_reference,
)


def test_the_reference_of_hand_made_residuals() -> None:
    # Three windows, two steps, one target; the forecast is 0, so residuals are the actuals.
    actual = np.array([[[1.0], [1.0]], [[2.0], [-2.0]], [[3.0], [3.0]]])
    forecast = np.zeros_like(actual)
    # Windows 0 and 1 inside [-2.5, 2.5] at both steps, window 2 outside at both: hits come
    # in whole windows, the most correlated they can be.
    bounds = {"80": (np.full_like(actual, -2.5), np.full_like(actual, 2.5))}

    reference = monitoring_reference(actual, forecast, ["OT"], bounds)

    np.testing.assert_allclose(reference.mae_by_step, [[2.0], [2.0]])
    # Each window's MAE over the mean reference (2): 0.5, 1, 1.5; their sd (ddof 1) is 0.5.
    assert reference.ratio_sd == pytest.approx(0.5)
    assert reference.coverage["80"] == pytest.approx(4 / 6)
    # Window shares 1, 1, 0: variance (ddof 1) 1/3 against p (1 - p) / 2 cells = 1/9.
    assert reference.design_effect["80"] == pytest.approx((1 / 3) / ((2 / 3) * (1 / 3) / 2))
    assert reference.windows == 3
    restored = MonitoringReference.from_dict(reference.to_dict())
    np.testing.assert_array_equal(restored.mae_by_step, reference.mae_by_step)
    assert (restored.ratio_sd, restored.coverage, restored.design_effect) == (
        reference.ratio_sd,
        reference.coverage,
        reference.design_effect,
    )


def test_independent_hits_have_a_design_effect_near_one() -> None:
    generator = np.random.default_rng(0)
    actual = generator.normal(size=(4000, 12, 2))
    bounds = {"80": (np.full_like(actual, -1.2816), np.full_like(actual, 1.2816))}
    reference = monitoring_reference(actual, np.zeros_like(actual), ["a", "b"], bounds)
    assert reference.coverage["80"] == pytest.approx(0.8, abs=0.01)
    assert reference.design_effect["80"] == pytest.approx(1.0, abs=0.1)


def test_the_binomial_band_of_ten_fair_trials() -> None:
    # P(X <= 0) = 0.001 < 0.005 <= P(X <= 1) = 0.011: the 99% band is 1 to 9 of 10.
    assert binomial_band(0.99, 10, 0.5) == (0.1, 0.9)
    low, high = binomial_band(0.99, 200.7, 0.8)  # counts are floored: 200 trials
    assert low == binom.ppf(0.005, 200, 0.8) / 200
    assert high == binom.isf(0.005, 200, 0.8) / 200


REFERENCE = MonitoringReference(
    targets=("a", "b"),
    mae_by_step=np.array([[1.0, 2.0], [3.0, 4.0]]),
    ratio_sd=0.5,
    coverage={"80": 0.8},
    design_effect={"80": 2.0},
    windows=100,
)


def window(abs_error_scaled: list[float], last: list[float], hits: list[bool]):
    """Three rows of two forecasts: (step 1, a) of the first, (2, a) and (2, b) of the second."""
    return check_window(
        steps=np.array([1, 2, 2]),
        target_index=np.array([0, 0, 1]),
        forecast_index=np.array([0, 1, 1]),
        abs_error=np.array([10.0, 20.0, 30.0]),
        abs_error_scaled=np.array(abs_error_scaled),
        last_abs_error_scaled=np.array(last),
        hits={"80": np.array(hits)},
        reference=REFERENCE,
        rules=AlarmRules(window=2),
    )


def test_a_window_within_its_reference_breaks_no_rule() -> None:
    # The reference over cells (1, a), (2, a), (2, b) sums to 1 + 3 + 4 = 8.
    status = window([1.0, 3.0, 4.0], [2.0, 4.0, 5.0], [True, True, False])
    assert status.forecasts == 2 and status.rows == 3
    assert status.mae == pytest.approx(20.0)
    assert status.mae_ratio == pytest.approx(1.0)
    # The larger of 1.1 and 1 + 3 x 0.5 / sqrt(2).
    assert status.mae_threshold == pytest.approx(1 + 1.5 / np.sqrt(2))
    assert status.skill_vs_last == pytest.approx(1 - 8 / 11)
    share, low, high = status.coverage["80"]
    assert share == pytest.approx(2 / 3)
    # 3 rows / design effect 2 = 1.5 -> 1 effective trial: the band is everything.
    assert (low, high) == (0.0, 1.0)
    assert status.alarms == ()


def test_each_rule_fires_with_its_numbers() -> None:
    status = window([8.0, 6.0, 4.0], [1.0, 1.0, 1.0], [False, False, False])
    rules = {alarm.rule: alarm.detail for alarm in status.alarms}
    # The last forecast alone: (6 + 4) / (3 + 4) = 1.43, below 1 + 3 x 0.5 = 2.5; both:
    # 18 / 8 = 2.25, above 1 + 3 x 0.5 / sqrt(2) = 2.06.
    assert status.mae_ratio == pytest.approx(2.25)
    assert "2.250" in rules["mae"] and "last 2 forecasts" in rules["mae"]
    assert status.skill_vs_last == pytest.approx(1 - 18 / 3)
    assert set(rules) == {"mae", "skill"}  # one effective trial: coverage 0 is no alarm


def test_the_mae_rule_catches_a_change_only_the_latest_forecast_shows() -> None:
    reference = MonitoringReference(
        targets=("a",), mae_by_step=np.ones((1, 1)), ratio_sd=0.5, coverage={}, design_effect={}
    )

    def mae_alarm(errors: list[float]) -> str | None:
        status = check_window(
            steps=np.ones(len(errors), dtype=int),
            target_index=np.zeros(len(errors), dtype=int),
            forecast_index=np.arange(len(errors)),
            abs_error=np.array(errors),
            abs_error_scaled=np.array(errors),
            last_abs_error_scaled=np.full(len(errors), 10.0),
            hits={},
            reference=reference,
            rules=AlarmRules(window=len(errors)),
        )
        return next((alarm.detail for alarm in status.alarms if alarm.rule == "mae"), None)

    # Four forecasts: the whole window's ratio 7 / 4 = 1.75 is not above 1 + 1.5 / 2 = 1.75,
    # but the last alone, 4, is above 1 + 1.5 = 2.5.
    assert "last 1 forecasts" in mae_alarm([1.0, 1.0, 1.0, 4.0])
    assert mae_alarm([1.0, 1.0, 1.0, 2.4]) is None
    # A slow drift no single forecast shows: each 2.0 < 2.5, all four 2.0 > 1.75.
    assert "last 4 forecasts" in mae_alarm([2.0, 2.0, 2.0, 2.0])


def test_the_coverage_rule_uses_the_effective_count() -> None:
    reference = MonitoringReference(
        targets=("a",),
        mae_by_step=np.ones((1, 1)),
        ratio_sd=0.1,
        coverage={"80": 0.8},
        design_effect={"80": 4.0},
    )

    def coverage_alarm(hits: np.ndarray) -> bool:
        status = check_window(
            steps=np.ones(len(hits), dtype=int),
            target_index=np.zeros(len(hits), dtype=int),
            abs_error=np.ones(len(hits)),
            abs_error_scaled=np.ones(len(hits)),
            last_abs_error_scaled=np.full(len(hits), 2.0),
            hits={"80": hits},
            forecast_index=np.arange(len(hits)) % 10,
            reference=reference,
            rules=AlarmRules(coverage_band=0.99),
        )
        return any(alarm.rule == "coverage_80" for alarm in status.alarms)

    # 400 rows are 100 effective trials: 99% band of Binomial(100, 0.8) / 100.
    low, high = binom.ppf(0.005, 100, 0.8) / 100, binom.isf(0.005, 100, 0.8) / 100
    inside = np.arange(400) < round(low * 400)
    assert not coverage_alarm(inside)
    assert coverage_alarm(np.arange(400) < round(low * 400) - 8)
    assert coverage_alarm(np.arange(400) < min(400, round(high * 400) + 8))


def test_a_partly_scored_newest_forecast_counts_as_a_fraction() -> None:
    reference = MonitoringReference(
        targets=("a",), mae_by_step=np.ones((4, 1)), ratio_sd=0.5, coverage={}, design_effect={}
    )

    def status(weights: list[float] | None):
        # Two forecasts: the older with all 4 steps at error 1, the newest with its first step
        # at error 3 (ratio 3 alone).
        return check_window(
            steps=np.array([1, 2, 3, 4, 1]),
            target_index=np.zeros(5, dtype=int),
            forecast_index=np.array([0, 0, 0, 0, 1]),
            abs_error=np.ones(5),
            abs_error_scaled=np.array([1.0, 1.0, 1.0, 1.0, 3.0]),
            last_abs_error_scaled=np.full(5, 10.0),
            hits={},
            reference=reference,
            rules=AlarmRules(window=2),
            forecast_weight=None if weights is None else np.array(weights),
        )

    # Counted whole, one step of ratio 3 breaks 1 + 3 x 0.5 = 2.5; counted as the quarter of
    # a forecast it is, the threshold is 1 + 1.5 / sqrt(0.25) = 4.
    assert [alarm.rule for alarm in status(None).alarms] == ["mae"]
    assert status([1.0, 0.25]).alarms == ()
    # The whole window: 7 / 5 against 1 + 1.5 / sqrt(1.25).
    assert status([1.0, 0.25]).mae_threshold == pytest.approx(1 + 1.5 / np.sqrt(1.25))


def test_exact_naive_forecasts_and_missing_values_raise_no_alarm() -> None:
    reference = MonitoringReference(
        targets=("a",), mae_by_step=np.zeros((2, 1)), ratio_sd=0.5, coverage={}, design_effect={}
    )
    status = check_window(
        steps=np.array([1, 2, 2]),
        target_index=np.zeros(3, dtype=int),
        forecast_index=np.array([0, 0, 0]),
        abs_error=np.array([0.0, 0.0, np.nan]),
        abs_error_scaled=np.array([0.0, 0.0, np.nan]),
        last_abs_error_scaled=np.array([0.0, np.nan, 5.0]),
        hits={},
        reference=reference,
        rules=AlarmRules(window=1),
    )
    # A reference error of 0 met by errors of 0 is a ratio of 1; the last value was exact
    # where both are known, and so was the model: a tie.
    assert status.mae_ratio == 1.0 and status.skill_vs_last == 0.0
    assert status.alarms == ()


def test_a_single_validation_window_gives_no_reference() -> None:
    from pipelines.config.schema import IntervalConfig
    from pipelines.training.calibration import validation_reference

    one = np.zeros((1, 3, 1))
    assert validation_reference(IntervalConfig(), None, one, one, np.array(["s"]), ("a",)) is None
