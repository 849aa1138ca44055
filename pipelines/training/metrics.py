"""Forecast metrics as small pure NumPy functions: MAE, MSE, RMSE, MAPE, sMAPE and MASE, all
computed at once by `evaluate` (inputs checked once), per horizon step by `per_horizon`.

`actual` (y) and `forecast` (ŷ) have one shape, (windows, horizon, targets), in one unit system
(both scaled, or both in original units after `FittedScaler.inverse_transform`), and `axis` has
NumPy's meaning: the axes that are averaged away.

- `axis=None` (`OVERALL`): one number, a Python float.
- `axis=(0, 2)` (`PER_HORIZON`): one value per horizon step, shape (horizon,).
- `axis=(0, 1)` (`PER_TARGET`): one value per target, shape (targets,).

Any other int or tuple of axes works the same way; the result is an array of the axes kept.
Every entry of the kept slice weighs the same, so, for example, the mean of the per-step MAE is
the overall MAE. Inputs are read as float64, must be finite (a NaN or an infinity is an error
that counts them), and no metric emits a NumPy warning.

- MAE = mean(|y - ŷ|).
- MSE = mean((y - ŷ)²); RMSE = sqrt(MSE), the mean taken over the axes before the root (so the
  per-step RMSE does not average back to the overall RMSE; the per-step MSE does).
- MAPE = 100 · mean over K of |y - ŷ| / |y|, in percent, where K holds the entries with
  |y| >= epsilon (`mape_epsilon`, > 0, so a zero is always left out); `mape_excluded` counts
  the entries left out, and a slice with none kept is nan. MAPE only means something on a
  ratio scale far from zero: use original units, not z-scores.
- sMAPE = 100 · mean(2 · |y - ŷ| / (|y| + |ŷ|)), between 0 and 200, a term with y = ŷ = 0
  counting as 0 (y = 100, ŷ = 110 gives 100 · 2 · 10 / 210 ≈ 9.524).
- MASE = mean(|y_{w,h,k} - ŷ_{w,h,k}| / s_{w,k}): the error relative to the in-sample
  seasonal-naive error s of the training part (`seasonal_naive_scale`, in the units of
  `actual`); below 1 the forecast beats the seasonal-naive forecast's in-sample error.

Example:
    >>> actual = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])  # 2 windows, horizon 2, 1 target
    >>> forecast = actual + np.array([[[1.0], [0.0]], [[1.0], [2.0]]])
    >>> evaluate(actual, forecast)["mae"]
    1.0
    >>> evaluate(actual, forecast, axis=PER_HORIZON)["mae"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

Axis = int | tuple[int, ...] | None
"""Axes of (windows, horizon, targets) to average over; None averages over all of them."""

OVERALL: Axis = None
PER_HORIZON: Axis = (0, 2)
PER_TARGET: Axis = (0, 1)

MAPE_EPSILON = 1e-8
"""Actual values with |y| below this are left out of MAPE (and counted by `mape_excluded`)."""

_NDIM = 3
_SHAPE_NAMES = "(windows, horizon, targets)"


# ---------------------------------------------------------------------------------------------
# Validation helpers


def _finite_or_raise(metric: str, name: str, values: np.ndarray) -> None:
    if np.isfinite(values).all():
        return
    nans = int(np.isnan(values).sum())
    infinities = int(np.isinf(values).sum())
    found = " and ".join(
        text
        for count, text in ((nans, f"{nans} NaN"), (infinities, f"{infinities} infinite"))
        if count
    )
    raise ValueError(
        f"{metric}: expected finite {name} values, got {found} value(s) among {values.size}"
    )


def _as_float_array(metric: str, name: str, values: ArrayLike) -> np.ndarray:
    try:
        return np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{metric}: expected numeric {name} values, got {error}") from error


def _prepare(metric: str, actual: ArrayLike, forecast: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64, checked for shape (windows, horizon, targets) and finiteness."""
    actual_array = _as_float_array(metric, "actual", actual)
    forecast_array = _as_float_array(metric, "forecast", forecast)
    if actual_array.ndim != _NDIM:
        raise ValueError(
            f"{metric}: expected actual of shape {_SHAPE_NAMES}, got shape {actual_array.shape}"
        )
    if forecast_array.shape != actual_array.shape:
        raise ValueError(
            f"{metric}: expected forecast of the shape of actual {actual_array.shape}, "
            f"got {forecast_array.shape}"
        )
    if actual_array.size == 0:
        raise ValueError(
            f"{metric}: expected at least one window, step and target, got shape "
            f"{actual_array.shape}"
        )
    _finite_or_raise(metric, "actual", actual_array)
    _finite_or_raise(metric, "forecast", forecast_array)
    return actual_array, forecast_array


def _normalize_axis(metric: str, axis: Axis) -> tuple[int, ...]:
    """The reduced axes as a sorted tuple of non-negative ints (all three for None)."""
    if axis is None:
        return tuple(range(_NDIM))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    normalized = []
    for value in axes:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{metric}: expected axis as int, tuple of ints or None, got {axis!r}")
        if not -_NDIM <= value < _NDIM:
            raise ValueError(
                f"{metric}: expected axes in -{_NDIM}..{_NDIM - 1} of {_SHAPE_NAMES}, got {axis!r}"
            )
        normalized.append(int(value) % _NDIM)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{metric}: expected each axis once, got {axis!r}")
    return tuple(sorted(normalized))


def _result(values: np.ndarray) -> float | np.ndarray:
    """A Python float for a full reduction, the array otherwise."""
    return float(values) if values.ndim == 0 else values


def _prepare_scale(metric: str, scale: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """The MASE scale as a 3-D array that broadcasts to (windows, 1, targets)."""
    scale_array = _as_float_array(metric, "scale", scale)
    windows, _, targets = shape
    target_shape = (windows, 1, targets)
    try:
        broadcast = np.broadcast_shapes(scale_array.shape, target_shape)
    except ValueError:
        broadcast = None
    if scale_array.ndim > _NDIM or broadcast != target_shape:
        raise ValueError(
            f"{metric}: expected a scale broadcastable to (windows, 1, targets) = {target_shape} "
            f"(a scalar, (targets,), (1, 1, targets), (windows, 1, 1) or (windows, 1, targets)), "
            f"got shape {scale_array.shape}"
        )
    _finite_or_raise(metric, "scale", scale_array)
    if (scale_array <= 0).any():
        raise ValueError(
            f"{metric}: expected a scale > 0, got {int((scale_array <= 0).sum())} value(s) <= 0; "
            "a constant or exactly periodic training part has no naive error to scale by"
        )
    return scale_array.reshape((1,) * (_NDIM - scale_array.ndim) + scale_array.shape)


# ---------------------------------------------------------------------------------------------
# Metric cores: validated float64 arrays in, reduced arrays out


def _mae(actual: np.ndarray, forecast: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.mean(np.abs(actual - forecast), axis=axes)


def _mse(actual: np.ndarray, forecast: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.mean(np.square(actual - forecast), axis=axes)


def _mape_parts(
    actual: np.ndarray, forecast: np.ndarray, axes: tuple[int, ...], epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """MAPE in percent (nan where nothing is left) and the count of excluded entries."""
    kept = np.abs(actual) >= epsilon
    ratios = np.divide(
        np.abs(actual - forecast), np.abs(actual), out=np.zeros_like(actual), where=kept
    )
    total = np.sum(ratios, axis=axes)
    count = np.sum(kept, axis=axes)
    value = np.divide(100.0 * total, count, out=np.full(np.shape(total), np.nan), where=count > 0)
    excluded = np.asarray(np.prod([actual.shape[a] for a in axes]) - count, dtype="int64")
    return value, excluded


def _smape(actual: np.ndarray, forecast: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.divide(
        2.0 * np.abs(actual - forecast),
        denominator,
        out=np.zeros_like(actual),
        where=denominator > 0,
    )
    return 100.0 * np.mean(terms, axis=axes)


def _mase(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    errors = np.abs(actual - forecast)
    if all(scale.shape[a] == 1 for a in axes):
        # The scale is constant over every averaged entry: MAE / scale, the textbook form (and
        # exactly 1 for the seasonal-naive forecast on its own training data).
        value = np.mean(errors, axis=axes, keepdims=True) / scale
        return np.squeeze(value, axis=axes)
    # The scale varies inside the average (per window or per target): mean of scaled errors.
    return np.mean(errors / scale, axis=axes)


# ---------------------------------------------------------------------------------------------
# The MASE scale


def _check_epsilon(metric: str, epsilon: float) -> float:
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"{metric}: expected epsilon finite and > 0, got {epsilon}")
    return epsilon


def seasonal_naive_scale(
    training_values: ArrayLike | Sequence[ArrayLike], season: int = 1
) -> np.ndarray:
    """The MASE scale: in-sample MAE of the seasonal-naive forecast ŷ_t = y_{t-m} on training data.

    s = 1 / (n - m) · Σ_{t=m}^{n-1} |y_t - y_{t-m}| for a training part y_0 … y_{n-1} and season
    m (1: the plain naive forecast), computed per target and per series.

    Args:
        training_values: the training part of one series as an array with time on axis 0,
            shape (time,) or (time, targets); or a list or tuple of such arrays, one per
            series, of any lengths but one number of targets.
        season: the season length m >= 1, in steps.

    Returns:
        For one series an array of shape () or (targets,); for a sequence of series an array of
        shape (series,) or (series, targets).

    Raises:
        ValueError: a bad season, a series with fewer than season + 1 training rows, NaN or
            infinite values, or a zero scale (a constant or exactly periodic training part,
            against which MASE is undefined).

    Example:
        >>> seasonal_naive_scale(np.array([1.0, 3.0, 2.0, 6.0]))
        array(2.33333333)
        >>> seasonal_naive_scale([np.array([[1.0], [2.0]]), np.array([[0.0], [4.0], [4.0]])])
        array([[1.],
               [2.]])
    """
    metric = "seasonal_naive_scale"
    if isinstance(season, bool) or not isinstance(season, int | np.integer) or season < 1:
        raise ValueError(f"{metric}: expected season as an int >= 1, got {season!r}")
    if isinstance(training_values, list | tuple) and len(training_values) == 0:
        raise ValueError(f"{metric}: expected at least one series, got an empty sequence")
    if not isinstance(training_values, list | tuple) or all(
        np.ndim(values) == 0 for values in training_values
    ):
        # An array (or a plain list of numbers) is one series.
        return _series_scale(metric, training_values, int(season), label="the series")
    scales = [
        _series_scale(metric, np.asarray(values), int(season), label=f"series {index}")
        for index, values in enumerate(training_values)
    ]
    shapes = {scale.shape for scale in scales}
    if len(shapes) != 1:
        raise ValueError(
            f"{metric}: expected every series with one number of targets, got scale shapes "
            f"{sorted(shapes)}"
        )
    return np.stack(scales)


def _series_scale(metric: str, values: ArrayLike, season: int, *, label: str) -> np.ndarray:
    array = _as_float_array(metric, "training", values)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{metric}: expected {label} of shape (time,) or (time, targets), got {array.shape}"
        )
    if len(array) < season + 1:
        raise ValueError(
            f"{metric}: expected at least season + 1 = {season + 1} training rows in {label}, "
            f"got {len(array)}"
        )
    _finite_or_raise(f"{metric} ({label})", "training", array)
    scale = np.asarray(np.mean(np.abs(array[season:] - array[:-season]), axis=0))
    if (scale == 0).any():
        zero_targets = np.flatnonzero(np.atleast_1d(scale == 0)).tolist()
        raise ValueError(
            f"{metric}: expected a seasonal-naive error > 0, got 0 in {label} for target(s) "
            f"{zero_targets}: its training part is constant or exactly periodic with season "
            f"{season}, so MASE is undefined"
        )
    return scale


# ---------------------------------------------------------------------------------------------
# All metrics at once


def evaluate(
    actual: ArrayLike,
    forecast: ArrayLike,
    *,
    mase_scale: ArrayLike | None = None,
    axis: Axis = None,
    mape_epsilon: float = MAPE_EPSILON,
) -> dict[str, float | np.ndarray]:
    """Every metric over the same axes, validating the inputs once.

    Args:
        actual: observed values y, shape (windows, horizon, targets).
        forecast: forecasts ŷ, the shape of `actual`.
        mase_scale: the seasonal-naive scale s, > 0, broadcastable to (windows, 1, targets):
            a scalar (one scale for all); shape (targets,) or (1, 1, targets), a scale per
            target; or (windows, 1, targets) or (windows, 1, 1), each window scaled by the
            scale of the series it was cut from (a per-window vector needs shape
            (windows, 1, 1): shape (windows,) would be read as a per-target scale). Without it
            "mase" is left out.
        axis: axes to average over; None (`OVERALL`), `PER_HORIZON` or `PER_TARGET`.
        mape_epsilon: the smallest |y| that MAPE keeps, finite and > 0.

    Returns:
        `{"mae", "mse", "rmse", "mape", "smape"[, "mase"], "mape_excluded"}`: floats for
        `axis=None`, else arrays of the kept axes. "mape_excluded" counts the actual values
        MAPE left out (an int, or an int64 array).

    Raises:
        ValueError: shapes that differ or are not 3-D, NaN/infinite values, a scale that does
            not broadcast or is not finite and > 0, or an epsilon that is not finite and > 0;
            the message starts with `evaluate:`.
    """
    metric = "evaluate"
    actual_array, forecast_array = _prepare(metric, actual, forecast)
    axes = _normalize_axis(metric, axis)
    epsilon = _check_epsilon(metric, mape_epsilon)
    scale_array = (
        None if mase_scale is None else _prepare_scale(metric, mase_scale, actual_array.shape)
    )
    mean_squared = _mse(actual_array, forecast_array, axes)
    mape_value, excluded = _mape_parts(actual_array, forecast_array, axes, epsilon)
    results: dict[str, float | np.ndarray] = {
        "mae": _result(_mae(actual_array, forecast_array, axes)),
        "mse": _result(mean_squared),
        "rmse": _result(np.sqrt(mean_squared)),
        "mape": _result(mape_value),
        "smape": _result(_smape(actual_array, forecast_array, axes)),
    }
    if scale_array is not None:
        results["mase"] = _result(_mase(actual_array, forecast_array, scale_array, axes))
    results["mape_excluded"] = int(excluded) if excluded.ndim == 0 else excluded
    return results


def per_horizon(
    actual: ArrayLike, forecast: ArrayLike, mase_scale: ArrayLike | None = None
) -> dict[str, np.ndarray]:
    """Every metric per horizon step: arrays of length horizon, averaged over windows and targets.

    Logged to MLflow as one metric with `step` = horizon step. Same keys as `evaluate`.

    Args:
        actual: observed values y, shape (windows, horizon, targets).
        forecast: forecasts ŷ, the shape of `actual`.
        mase_scale: the seasonal-naive scale (see `evaluate`); without it "mase" is left out.

    Returns:
        `{"mae", "mse", "rmse", "mape", "smape"[, "mase"], "mape_excluded"}`, each of shape
        (horizon,).
    """
    results = evaluate(actual, forecast, mase_scale=mase_scale, axis=PER_HORIZON)
    return {name: np.asarray(values) for name, values in results.items()}
