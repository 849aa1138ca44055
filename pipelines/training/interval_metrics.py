"""Scores of forecast intervals and quantiles, as small pure NumPy functions.

`actual` has the shape (windows, horizon, targets) of `pipelines.training.metrics`; an interval
is its `lower` and `upper` bounds, each of that shape, at a nominal `level` in percent (80 means
that 80% of actual values should fall inside); quantile forecasts are an array with one more
leading axis, one slice per quantile level q in (0, 1). Every function averages over every
entry, like `metrics.OVERALL`, or keeps the horizon step with `per_step=True`.

- coverage = mean(lower <= y <= upper), a fraction in [0, 1].
- width = mean(upper - lower).
- interval (Winkler) score, Gneiting & Raftery (2007), with alpha = 1 - level / 100:
  (upper - lower) + (2 / alpha) (lower - y) 1{y < lower} + (2 / alpha) (y - upper) 1{y > upper};
  lower is better, and it rewards narrow intervals only while they cover.
- pinball loss of quantile q: max(q (y - y_q), (q - 1) (y - y_q)), averaged over the quantiles.
- CRPS, quantile-averaged: 2 x the mean pinball loss over the quantile levels, the usual
  discretisation of CRPS = 2 * integral over q of the pinball loss (exact as the levels fill
  (0, 1) evenly). `weighted_quantile_loss` divides the summed loss by the summed |y| instead of
  counting entries, as GluonTS's and ProbTS's "CRPS" does.

Example:
    >>> actual = np.array([[[1.0], [5.0]]])  # one window, horizon 2, one target
    >>> lower, upper = np.array([[[0.0], [0.0]]]), np.array([[[2.0], [4.0]]])
    >>> coverage(actual, lower, upper)
    0.5
    >>> interval_score(actual, lower, upper, level=80)  # widths 2 and 4; the miss costs 10 x 1
    8.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def _arrays(actual: ArrayLike, *others: ArrayLike) -> list[np.ndarray]:
    arrays = [np.asarray(values, dtype="float64") for values in (actual, *others)]
    shape = arrays[0].shape
    for array in arrays[1:]:
        if array.shape[-len(shape) :] != shape:
            raise ValueError(f"interval metrics: shape {array.shape} does not end with {shape}")
    if not all(np.isfinite(array).all() for array in arrays):
        raise ValueError("interval metrics: values must be finite")
    return arrays


def _mean(values: np.ndarray, per_step: bool) -> float | np.ndarray:
    """The mean over every axis, or over all but the horizon step (the second-to-last)."""
    if not per_step:
        return float(values.mean())
    axes = tuple(axis for axis in range(values.ndim) if axis != values.ndim - 2)
    return values.mean(axis=axes)


def check_level(level: float) -> float:
    """`level` as a float in (0, 100), or a ValueError that names it."""
    if isinstance(level, bool) or not isinstance(level, int | float | np.number):
        raise ValueError(f"level: expected a number in (0, 100), got {level!r}")
    if not 0 < float(level) < 100:
        raise ValueError(f"level: expected a number in (0, 100), got {level!r}")
    return float(level)


def coverage(
    actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, *, per_step: bool = False
) -> float | np.ndarray:
    """The share of actual values inside [lower, upper]."""
    y, low, high = _arrays(actual, lower, upper)
    return _mean(((low <= y) & (y <= high)).astype("float64"), per_step)


def width(lower: ArrayLike, upper: ArrayLike, *, per_step: bool = False) -> float | np.ndarray:
    """The mean width upper - lower."""
    low, high = _arrays(lower, upper)
    return _mean(high - low, per_step)


def interval_score(
    actual: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    level: float,
    per_step: bool = False,
) -> float | np.ndarray:
    """The mean interval (Winkler) score of intervals at `level` percent."""
    alpha = 1 - check_level(level) / 100
    y, low, high = _arrays(actual, lower, upper)
    below = np.maximum(low - y, 0.0)
    above = np.maximum(y - high, 0.0)
    return _mean((high - low) + (2 / alpha) * (below + above), per_step)


def _pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Pinball losses, one slice per quantile level: shape of `quantiles`."""
    q = np.asarray(levels, dtype="float64")
    if q.ndim != 1 or len(q) != len(quantiles) or not ((q > 0) & (q < 1)).all():
        raise ValueError(
            f"quantile levels: expected {len(quantiles)} levels in (0, 1), got {list(levels)}"
        )
    q = q.reshape((-1,) + (1,) * actual.ndim)
    error = actual[np.newaxis] - quantiles
    return np.maximum(q * error, (q - 1) * error)


def pinball_loss(
    actual: ArrayLike, quantiles: ArrayLike, levels: Sequence[float], *, per_step: bool = False
) -> float | np.ndarray:
    """The mean pinball loss of quantile forecasts (`quantiles[i]` at level `levels[i]`)."""
    y, values = _arrays(actual, quantiles)
    return _mean(_pinball(y, values, levels), per_step)


def crps(
    actual: ArrayLike, quantiles: ArrayLike, levels: Sequence[float], *, per_step: bool = False
) -> float | np.ndarray:
    """The quantile-averaged CRPS: 2 x the mean pinball loss over the levels."""
    return 2 * pinball_loss(actual, quantiles, levels, per_step=per_step)


def weighted_quantile_loss(
    actual: ArrayLike, quantiles: ArrayLike, levels: Sequence[float]
) -> float:
    """2 x the summed pinball loss over the summed |y|, averaged over the levels (the "CRPS"
    of GluonTS's evaluator and of ProbTS)."""
    y, values = _arrays(actual, quantiles)
    scale = float(np.abs(y).sum())
    if scale == 0:
        raise ValueError("weighted quantile loss: every actual value is 0")
    losses = _pinball(y, values, levels)
    return float(2 * losses.reshape(len(losses), -1).sum(axis=1).mean() / scale)
