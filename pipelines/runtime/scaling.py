"""Scalers fitted on the training part only, per series or over all series, saved as JSON.

The logged model carries its `FittedScaler`; `pipelines.runtime.forecaster` applies it to history
and inverts it on forecasts, so this module ships with every model (no training code in it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipelines.runtime.contract import SERIES_COLUMN, TRAIN, DataValidationError

ALL_SERIES = "__all__"
ScalerKind = Literal["standard", "minmax"]


@dataclass
class FittedScaler:
    """Scalers fitted on training rows, per series or over all series, applied in one pass.

    sklearn fits them; applying them goes through the equivalent affine map
    `scaled = value * slope + intercept`, gathered per row, so frames of hundreds of series are
    scaled without a Python loop over series.
    """

    kind: ScalerKind
    columns: tuple[str, ...]
    per_series: bool
    scalers: dict[str, StandardScaler | MinMaxScaler]

    @cached_property
    def _tables(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        """Each fitted key's row, and the (keys, columns) slope and intercept tables: computed
        once per scaler, not once per call (505 series made them a tenth of a predict call)."""
        keys = list(self.scalers)
        affine = [_affine(self.scalers[key]) for key in keys]
        lookup = {key: row for row, key in enumerate(keys)}
        return lookup, np.stack([a[0] for a in affine]), np.stack([a[1] for a in affine])

    def _coefficients(
        self, series_ids: Sequence[str] | np.ndarray, columns: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        column_index = [self.columns.index(column) for column in columns]
        lookup, slopes, intercepts = self._tables
        if self.per_series:
            unknown = [sid for sid in pd.unique(np.asarray(series_ids)) if sid not in lookup]
            if unknown:
                raise DataValidationError(
                    f"scaler: no scaler was fitted for series {unknown[:5]}; "
                    "it had no training rows"
                )
            rows = np.array([lookup[sid] for sid in series_ids], dtype="int64")
        else:
            rows = np.zeros(len(series_ids), dtype="int64")
        return slopes[rows][:, column_index], intercepts[rows][:, column_index]

    def transform(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
        """Scaled values of `columns` (default: all fitted columns), float32, one row per row."""
        columns = list(columns or self.columns)
        slopes, intercepts = self._coefficients(frame[SERIES_COLUMN].to_numpy(), columns)
        values = frame[columns].to_numpy(dtype="float64")
        return (values * slopes + intercepts).astype("float32")

    def inverse_transform(
        self, scaled: np.ndarray, series_ids: Sequence[str] | np.ndarray, columns: Sequence[str]
    ) -> np.ndarray:
        """Original units of `scaled[..., len(columns)]`, one leading index per series id.

        Example: forecasts of shape (batch, horizon, targets) with `series_ids` of length batch.
        """
        slopes, intercepts = self._coefficients(np.asarray(series_ids), list(columns))
        shape = (len(series_ids),) + (1,) * (scaled.ndim - 2) + (len(columns),)
        return (scaled - intercepts.reshape(shape)) / slopes.reshape(shape)

    def slopes(self, series_ids: Sequence[str] | np.ndarray, columns: Sequence[str]) -> np.ndarray:
        """(len(series_ids), len(columns)) scaled units per original unit: a difference in
        scaled units (an interval's offset around a forecast) divided by it is the difference
        in original units, whatever the intercept."""
        return self._coefficients(np.asarray(series_ids), list(columns))[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "per_series": self.per_series,
            "scalers": {key: _scaler_state(scaler) for key, scaler in self.scalers.items()},
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FittedScaler:
        scalers = {
            key: _restore_scaler(state["kind"], values) for key, values in state["scalers"].items()
        }
        return cls(
            kind=state["kind"],
            columns=tuple(state["columns"]),
            per_series=state["per_series"],
            scalers=scalers,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FittedScaler:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


_STATE_ATTRIBUTES = {
    "standard": ("mean_", "var_", "scale_", "n_samples_seen_"),
    "minmax": ("min_", "scale_", "data_min_", "data_max_", "data_range_", "n_samples_seen_"),
}


def _new_scaler(kind: ScalerKind) -> StandardScaler | MinMaxScaler:
    if kind == "standard":
        return StandardScaler()
    if kind == "minmax":
        return MinMaxScaler()
    raise DataValidationError(f"parameter scaler: expected 'standard' or 'minmax', got {kind!r}")


def _affine(scaler: StandardScaler | MinMaxScaler) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(scaler, StandardScaler):
        return 1.0 / scaler.scale_, -scaler.mean_ / scaler.scale_
    return scaler.scale_, scaler.min_


def _scaler_state(scaler: StandardScaler | MinMaxScaler) -> dict[str, Any]:
    kind = "standard" if isinstance(scaler, StandardScaler) else "minmax"
    return {name: np.asarray(getattr(scaler, name)).tolist() for name in _STATE_ATTRIBUTES[kind]}


def _restore_scaler(kind: ScalerKind, state: dict[str, Any]) -> StandardScaler | MinMaxScaler:
    scaler = _new_scaler(kind)
    for name, value in state.items():
        setattr(
            scaler,
            name,
            np.asarray(value, dtype="float64")
            if name != "n_samples_seen_"
            else int(np.asarray(value).ravel()[0]),
        )
    scaler.n_features_in_ = len(state["scale_"])
    return scaler


def fit_scaler(
    frame: pd.DataFrame,
    parts: np.ndarray,
    columns: Sequence[str],
    *,
    kind: ScalerKind = "standard",
    per_series: bool = True,
) -> FittedScaler:
    """Fits sklearn scalers on the training rows only (per series, or pooled).

    Raises:
        DataValidationError: a series (or the whole frame) without training rows.
    """
    training = frame.loc[parts == TRAIN, [SERIES_COLUMN, *columns]]
    if training.empty:
        raise DataValidationError("split: no training rows to fit the scaler on")
    scalers: dict[str, StandardScaler | MinMaxScaler] = {}
    if per_series:
        missing = sorted(set(frame[SERIES_COLUMN]) - set(training[SERIES_COLUMN]))
        if missing:
            raise DataValidationError(
                f"split: series {missing[:5]} have no training rows; move the validation start "
                "later or drop them"
            )
        for series_id, rows in training.groupby(SERIES_COLUMN, sort=False):
            scalers[str(series_id)] = _new_scaler(kind).fit(rows[list(columns)].to_numpy("float64"))
    else:
        scalers[ALL_SERIES] = _new_scaler(kind).fit(training[list(columns)].to_numpy("float64"))
    return FittedScaler(kind=kind, columns=tuple(columns), per_series=per_series, scalers=scalers)
