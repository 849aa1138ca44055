"""Interval and quantile scores against hand computations and the closed-form CRPS of a normal
distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pipelines.training.interval_metrics import (
    check_level,
    coverage,
    crps,
    interval_score,
    pinball_loss,
    weighted_quantile_loss,
    width,
)

# One window, horizon 2, one target: the first actual inside [0, 2], the second above [0, 4].
ACTUAL = np.array([[[1.0], [5.0]]])
LOWER = np.array([[[0.0], [0.0]]])
UPPER = np.array([[[2.0], [4.0]]])


def test_coverage_and_width_by_hand() -> None:
    assert coverage(ACTUAL, LOWER, UPPER) == 0.5
    assert coverage(ACTUAL, LOWER, UPPER, per_step=True).tolist() == [1.0, 0.0]
    assert width(LOWER, UPPER) == 3.0
    assert width(LOWER, UPPER, per_step=True).tolist() == [2.0, 4.0]
    # The bounds count as inside.
    assert coverage(UPPER, LOWER, UPPER) == 1.0


@pytest.mark.parametrize(("level", "expected"), [(80, (2 + 4 + 10 * 1) / 2), (50, (2 + 4 + 4) / 2)])
def test_interval_score_by_hand(level: float, expected: float) -> None:
    # Width plus 2 / alpha times the miss: alpha = 0.2 -> 10, alpha = 0.5 -> 4; the miss is 1.
    assert interval_score(ACTUAL, LOWER, UPPER, level=level) == pytest.approx(expected)
    below = interval_score(-ACTUAL, LOWER, UPPER, level=level, per_step=True)
    alpha = 1 - level / 100
    assert below.tolist() == pytest.approx([2 + 2 / alpha * 1, 4 + 2 / alpha * 5])


def test_pinball_and_crps_by_hand() -> None:
    actual = np.array([[[3.0]]])
    quantiles = np.array([[[[1.0]]], [[[4.0]]]])  # q = 0.1 -> 1, q = 0.9 -> 4
    # q 0.1: error 2, loss 0.1 x 2 = 0.2; q 0.9: error -1, loss 0.1 x 1 = 0.1.
    assert pinball_loss(actual, quantiles, [0.1, 0.9]) == pytest.approx(0.15)
    assert crps(actual, quantiles, [0.1, 0.9]) == pytest.approx(0.3)
    # Summed losses 0.3 x 2 / 2 levels over |y| = 3.
    assert weighted_quantile_loss(actual, quantiles, [0.1, 0.9]) == pytest.approx(0.1)


def test_quantile_averaged_crps_approaches_the_closed_form_of_a_normal() -> None:
    rng = np.random.default_rng(0)
    mean, sd = 0.3, 1.7
    actual = rng.normal(size=(200, 3, 2))
    levels = np.linspace(0.005, 0.995, 199)
    quantiles = mean + sd * norm.ppf(levels)[:, None, None, None] * np.ones((1, *actual.shape))
    z = (actual - mean) / sd
    exact = sd * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert crps(actual, quantiles, levels) == pytest.approx(exact.mean(), rel=0.01)


@pytest.mark.parametrize("level", [0, 100, -5, "high", True, float("nan")])
def test_a_bad_level_is_one_clear_error(level) -> None:
    with pytest.raises(ValueError, match=r"level: expected a number in \(0, 100\), got"):
        check_level(level)
    with pytest.raises(ValueError, match=r"level: expected a number in \(0, 100\)"):
        interval_score(ACTUAL, LOWER, UPPER, level=level)


def test_bad_shapes_levels_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="does not end with"):
        coverage(ACTUAL, LOWER[:, :1], UPPER)
    with pytest.raises(ValueError, match="finite"):
        width(LOWER, UPPER * np.nan)
    with pytest.raises(ValueError, match=r"expected 2 levels in \(0, 1\)"):
        pinball_loss(ACTUAL, np.stack([LOWER, UPPER]), [0.1, 1.0])
