"""Conformal forecast intervals: residuals of windows a model never trained on, turned into
quantile offsets per horizon step and target, pooled over series or per series.

Residuals r = y - ŷ are taken in the scaled units the Keras model forecasts in, so one pooled
calibration serves series of any size: an offset is added to the scaled forecast and the sum
goes through the same inverse scaling as the point forecast. For every step h and target k (and
series, when per series) a calibration keeps, on the grid of levels `QUANTILE_GRID` (0.005,
0.010, ..., 0.995), the split-conformal order statistic of its n residuals: the
ceil((n + 1) q)-th smallest for q >= 0.5 and the floor((n + 1) q)-th for q < 0.5. Each tail of a
two-sided interval at level L (percent) then misses at most (1 - L / 100) / 2 of exchangeable new
residuals (Vovk et al. 2005; Lei et al. 2018). A level whose order statistic does not exist
(too few residuals: (n + 1) q > n) is NaN and refused where it is asked for.

A quantile forecast at q is ŷ + R_q; the interval at level L is [ŷ + R_(1 - L/100)/2,
ŷ + R_(1 + L/100)/2]. Between grid points R is interpolated linearly (every integer level and
every quantile on a 0.005 grid is exact). R is non-decreasing in q, so quantiles never cross.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.runtime.contract import DataValidationError

QUANTILE_GRID = np.round(np.arange(1, 200) * 0.005, 3)
"""The quantile levels a calibration keeps: 0.005 to 0.995 in steps of 0.005."""
DEFAULT_LEVELS = (80.0, 90.0)
"""Interval levels (percent) a forecast carries unless asked for others."""
CALIBRATION_VERSION = 1


def check_levels(levels: object) -> tuple[float, ...]:
    """Interval levels as floats in (0, 100), sorted and distinct (none: no intervals), or an
    error naming the bad one.

    Raises:
        DataValidationError: not a list of numbers, or a number outside (0, 100).
    """
    values = [levels] if isinstance(levels, int | float | str) else levels
    if not isinstance(values, Sequence | np.ndarray) or isinstance(values, str):
        raise DataValidationError(f"levels: expected a list of numbers in (0, 100), got {levels!r}")
    checked = []
    for level in values:
        number = level.item() if isinstance(level, np.generic) else level
        is_number = isinstance(number, int | float) and not isinstance(number, bool)
        if not is_number or not 0 < number < 100:
            raise DataValidationError(f"levels: expected numbers in (0, 100), got {level!r}")
        checked.append(float(number))
    return tuple(sorted(set(checked)))


def level_name(level: float) -> str:
    """A level as the column names write it: 80 -> '80', 97.5 -> '97.5'."""
    return f"{level:g}"


def interval_column(target: str, side: str, level: float) -> str:
    """The column of a bound: ('OT', 'lo', 80) -> 'OT_lo_80' (Nixtla's names, with `_`)."""
    return f"{target}_{side}_{level_name(level)}"


def interval_columns(target: str, levels: Sequence[float]) -> list[str]:
    """A target's bound columns in Nixtla's order, outer to inner and back out:
    ('OT', (80, 90)) -> OT_lo_90, OT_lo_80, OT_hi_80, OT_hi_90."""
    lows = [interval_column(target, "lo", level) for level in sorted(levels, reverse=True)]
    return lows + [interval_column(target, "hi", level) for level in sorted(levels)]


def interval_quantiles(level: float) -> tuple[float, float]:
    """The quantile levels of the interval's bounds: 80 -> (0.1, 0.9)."""
    tail = round((1 - level / 100) / 2, 12)
    return tail, round(1 - tail, 12)


def _order_statistics(sorted_residuals: np.ndarray) -> np.ndarray:
    """(grid, horizon, targets) conformal quantiles of (n >= 1, horizon, targets) sorted
    residuals; NaN where the order statistic does not exist."""
    count = len(sorted_residuals)
    upper = QUANTILE_GRID >= 0.5
    # Rounded before ceil/floor: (n + 1) q is an integer more often than floats say.
    scaled = np.round((count + 1) * QUANTILE_GRID, 9)
    ranks = np.where(upper, np.ceil(scaled), np.floor(scaled)).astype("int64")
    exists = (ranks >= 1) & (ranks <= count)
    result = np.full((len(QUANTILE_GRID), *sorted_residuals.shape[1:]), np.nan)
    result[exists] = sorted_residuals[ranks[exists] - 1]
    return result


@dataclass(frozen=True)
class Calibration:
    """Conformal quantile offsets of one model, in its scaled units.

    Attributes:
        offsets: (groups, len(QUANTILE_GRID), horizon, targets); NaN where a level needs more
            residuals than its group has.
        windows: (groups,) residual windows behind each group.
        series_ids: the series of each group, or None for one group pooled over all series.
        source: where the residuals came from, e.g. 'validation'.
        head_quantiles: the levels of the model's quantile head when the offsets are
            conformalised quantile regression's (`calibrate_quantile_head`), added to the
            head's quantiles; empty when they are residual offsets, added to the point forecast.
    """

    offsets: np.ndarray
    windows: np.ndarray
    series_ids: tuple[str, ...] | None
    source: str
    head_quantiles: tuple[float, ...] = ()

    def bounds(
        self,
        quantiles: Sequence[float],
        point: np.ndarray,
        series_ids: np.ndarray,
        head: np.ndarray | None = None,
    ) -> np.ndarray:
        """(len(quantiles), windows, horizon, targets) scaled quantile forecasts: the point
        forecast plus the offsets, or, for a quantile head, its quantiles (`head`: (windows,
        horizon, K, targets)) interpolated at each level plus the CQR offsets, kept on their
        side of the point forecast (the head's median).

        Raises:
            DataValidationError: as `quantile_offsets`; a quantile-head calibration without the
                head's forecasts.
        """
        offsets = self.quantile_offsets(quantiles, series_ids)
        if not self.head_quantiles:
            return point[np.newaxis] + offsets
        if head is None:
            raise DataValidationError("levels: a quantile head's calibration needs its quantiles")
        result = np.stack(
            [
                head_quantile(head, self.head_quantiles, quantile) + offset
                for quantile, offset in zip(quantiles, offsets, strict=True)
            ]
        )
        below = np.asarray(quantiles) < 0.5
        result[below] = np.minimum(result[below], point)
        result[~below] = np.maximum(result[~below], point)
        # Levels' corrections need not grow with the level: sorted across the quantiles asked
        # for (the rearrangement, which never worsens a quantile's loss), so that none cross;
        # the median stays the point forecast, every lower bound being at or below it.
        order = np.argsort(quantiles, kind="stable")
        result[order] = np.sort(result[order], axis=0)
        return result

    def quantile_offsets(self, quantiles: Sequence[float], series_ids: np.ndarray) -> np.ndarray:
        """(len(quantiles), len(series_ids), horizon, targets) offsets to add to scaled
        forecasts of those series.

        Raises:
            DataValidationError: a quantile the calibration has too few residuals for, or a
                series a per-series calibration does not know.
        """
        groups = self._groups(series_ids)
        result = []
        for quantile in quantiles:
            offset = self._offset(quantile)
            if offset is None or np.isnan(offset[groups]).any():
                fewest = int(self.windows[np.unique(groups)].min())
                raise DataValidationError(
                    f"levels: quantile {quantile:g} needs more calibration residuals than the "
                    f"model has ({fewest} windows of {self.source} residuals; an interval at "
                    f"level L needs (100 + L) / (100 - L) of them, e.g. 199 for 99)"
                )
            result.append(offset[groups])
        return np.stack(result)

    def missing(self, quantiles: Sequence[float]) -> list[float]:
        """The quantiles that some group has too few residuals for (or off the grid)."""
        return [
            quantile
            for quantile in quantiles
            if (offset := self._offset(quantile)) is None or np.isnan(offset).any()
        ]

    def _offset(self, quantile: float) -> np.ndarray | None:
        """(groups, horizon, targets) offsets at `quantile`, linear between grid points; None
        off the grid."""
        if not QUANTILE_GRID[0] <= quantile <= QUANTILE_GRID[-1]:
            return None
        # Rounded: 0.09999999999999998 (from level 80) is the grid's 0.1, not a blend with 0.095.
        position = round(
            float(np.interp(quantile, QUANTILE_GRID, np.arange(len(QUANTILE_GRID)))), 9
        )
        low = int(np.floor(position))
        weight = position - low
        offset = self.offsets[:, low]
        if weight > 0:  # between two grid points (0 x NaN would poison an exact one)
            offset = (1 - weight) * offset + weight * self.offsets[:, low + 1]
        return offset

    def _groups(self, series_ids: np.ndarray) -> np.ndarray:
        if self.series_ids is None:
            return np.zeros(len(series_ids), dtype="int64")
        index = {name: position for position, name in enumerate(self.series_ids)}
        unknown = [str(name) for name in series_ids if str(name) not in index]
        if unknown:
            raise DataValidationError(
                f"levels: series {unknown[:5]} have no calibration residuals of their own"
            )
        return np.array([index[str(name)] for name in series_ids], dtype="int64")

    def save(self, path: Path) -> None:
        """Writes the calibration as a NumPy archive (no pickled objects)."""
        header = {
            "format_version": CALIBRATION_VERSION,
            "source": self.source,
            "series_ids": None if self.series_ids is None else list(self.series_ids),
            "quantile_grid": QUANTILE_GRID.tolist(),
            "head_quantiles": list(self.head_quantiles),
        }
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                offsets=self.offsets.astype("float64"),
                windows=self.windows.astype("int64"),
                header=np.array(json.dumps(header)),
            )

    @classmethod
    def load(cls, path: Path) -> Calibration:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            if header["quantile_grid"] != QUANTILE_GRID.tolist():
                raise DataValidationError(f"{path}: a calibration of another quantile grid")
            series = header["series_ids"]
            return cls(
                offsets=archive["offsets"],
                windows=archive["windows"],
                series_ids=None if series is None else tuple(series),
                source=header["source"],
                head_quantiles=tuple(header.get("head_quantiles", ())),
            )


def calibrate(
    residuals: np.ndarray,
    series_ids: np.ndarray | None = None,
    *,
    source: str = "validation",
) -> Calibration:
    """The conformal calibration of out-of-sample residuals y - ŷ (scaled units).

    Args:
        residuals: (windows, horizon, targets).
        series_ids: each window's series, for a per-series calibration; None pools them.
        source: where the residuals came from (recorded, and named in errors).

    Raises:
        DataValidationError: no residuals, or residuals that are not finite.
    """
    values = np.asarray(residuals, dtype="float64")
    if values.ndim != 3 or not len(values):
        raise DataValidationError(
            f"calibration: expected residuals of shape (windows, horizon, targets), got "
            f"{values.shape}"
        )
    if not np.isfinite(values).all():
        raise DataValidationError("calibration: residuals must be finite")
    if series_ids is None:
        groups, names = [values], None
    else:
        ids = np.asarray(series_ids).astype(str)
        names = tuple(sorted(set(ids.tolist())))
        groups = [values[ids == name] for name in names]
    return Calibration(
        offsets=np.stack([_order_statistics(np.sort(group, axis=0)) for group in groups]),
        windows=np.array([len(group) for group in groups], dtype="int64"),
        series_ids=names,
        source=source,
    )


def head_quantile(head: np.ndarray, head_quantiles: Sequence[float], quantile: float) -> np.ndarray:
    """(windows, horizon, targets) forecasts at `quantile` from a quantile head's (windows,
    horizon, K, targets) ones at `head_quantiles`: linear between them, the nearest beyond."""
    levels = np.asarray(head_quantiles, dtype="float64")
    position = float(np.interp(quantile, levels, np.arange(len(levels))))
    low = int(np.floor(position))
    weight = position - low
    if weight == 0:
        return head[:, :, low]
    return (1 - weight) * head[:, :, low] + weight * head[:, :, low + 1]


def calibrate_quantile_head(
    actual: np.ndarray,
    head: np.ndarray,
    head_quantiles: Sequence[float],
    series_ids: np.ndarray | None = None,
    *,
    source: str = "validation",
) -> Calibration:
    """Conformalised quantile regression (Romano et al. 2019) of a quantile head on windows it
    never trained on, at every level of the grid (scaled units).

    For level L = 1 - 2q of grid quantile q < 0.5, the head's band [Q_q, Q_(1-q)] (interpolated
    between its levels, its outermost beyond) scores each value E = max(Q_q - y, y - Q_(1-q));
    C_L is the ceil((n + 1) L)-th smallest E of its step and target (and series), and the
    band [Q_q - C_L, Q_(1-q) + C_L] covers at least L of exchangeable new values. Offsets: -C_L
    at q, +C_L at 1 - q, 0 at the median. C_L may shrink a band too wide (C_L < 0) and need
    not grow with L: `Calibration.bounds` sorts the bounds it gives and keeps them on their
    side of the median, so none cross.

    Args:
        actual: (windows, horizon, targets) scaled actual values.
        head: (windows, horizon, K, targets) the head's scaled quantile forecasts.
        head_quantiles: its K levels, increasing.
        series_ids: each window's series, for a per-series calibration; None pools them.
        source: where the windows came from.

    Raises:
        DataValidationError: no windows, shapes that disagree, or values that are not finite.
    """
    values = np.asarray(actual, dtype="float64")
    forecasts = np.asarray(head, dtype="float64")
    if (
        values.ndim != 3
        or not len(values)
        or forecasts.shape
        != (values.shape[0], values.shape[1], len(head_quantiles), values.shape[2])
    ):
        raise DataValidationError(
            f"calibration: expected actuals (windows, horizon, targets) and head quantiles "
            f"(windows, horizon, {len(head_quantiles)}, targets), got {values.shape} and "
            f"{forecasts.shape}"
        )
    if not (np.isfinite(values).all() and np.isfinite(forecasts).all()):
        raise DataValidationError("calibration: actuals and quantiles must be finite")
    if series_ids is None:
        members, names = [np.arange(len(values))], None
    else:
        ids = np.asarray(series_ids).astype(str)
        names = tuple(sorted(set(ids.tolist())))
        members = [np.flatnonzero(ids == name) for name in names]
    lower_half = np.flatnonzero(QUANTILE_GRID < 0.5)[::-1]  # innermost (0.495) first
    offsets = np.zeros((len(members), len(QUANTILE_GRID), *values.shape[1:]))
    for group, rows in enumerate(members):
        group_values, group_forecasts = values[rows], forecasts[rows]
        corrections = np.full((len(lower_half), *values.shape[1:]), np.nan)
        for position, index in enumerate(lower_half):
            quantile = float(QUANTILE_GRID[index])
            low = head_quantile(group_forecasts, head_quantiles, quantile)
            high = head_quantile(group_forecasts, head_quantiles, 1 - quantile)
            scores = np.maximum(low - group_values, group_values - high)
            rank = int(np.ceil(round((len(rows) + 1) * (1 - 2 * quantile), 9)))
            if rank <= len(rows):
                corrections[position] = np.partition(scores, rank - 1, axis=0)[rank - 1]
        offsets[group, lower_half] = -corrections
        offsets[group, len(QUANTILE_GRID) - 1 - lower_half] = corrections
    return Calibration(
        offsets=offsets,
        windows=np.array([len(rows) for rows in members], dtype="int64"),
        series_ids=names,
        source=source,
        head_quantiles=tuple(float(q) for q in head_quantiles),
    )
