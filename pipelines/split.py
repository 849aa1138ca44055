"""Chronological split per series, and scalers fitted on the training part only.

Parts are labelled row by row (`train`, `validation`, `test`). Windows are assigned later by one
rule: a window belongs to the part that holds all its targets, and its inputs may look back into
earlier parts. So no target of the validation or test part is ever seen in training, and the
first validation window can still use the end of the training data as its history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipelines.validate import SERIES_COLUMN, TIMESTAMP_COLUMN, DataValidationError

TRAIN, VALIDATION, TEST = 0, 1, 2
PART_NAMES = ("train", "validation", "test")
ALL_SERIES = "__all__"
ScalerKind = Literal["standard", "minmax"]


@dataclass(frozen=True)
class SplitSpec:
    """Where each series is cut: by fractions of its rows, or at two dates.

    With fractions (f_train, f_validation, f_test) a series of n rows gets int(n * f_train)
    training rows and int(n * f_test) test rows, the rest validation: the LTSF benchmark's rule.
    """

    fractions: tuple[float, float, float] | None = (0.7, 0.1, 0.2)
    validation_start: pd.Timestamp | None = None
    test_start: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if self.fractions is not None:
            if len(self.fractions) != 3 or any(
                not math.isfinite(f) or f < 0 for f in self.fractions
            ):
                raise DataValidationError(
                    f"parameter split: expected three fractions >= 0, got {self.fractions}"
                )
            if abs(sum(self.fractions) - 1) > 1e-6 or self.fractions[0] <= 0:
                raise DataValidationError(
                    "parameter split: expected train, validation and test fractions that sum to 1 "
                    f"with a train fraction > 0, got {self.fractions}"
                )
        elif self.validation_start is None or self.test_start is None:
            raise DataValidationError("parameter split: give fractions or both start dates")
        elif not self.validation_start <= self.test_start:
            raise DataValidationError(
                f"parameter split: validation start {self.validation_start} is after test start "
                f"{self.test_start}"
            )

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        """Reads '0.7,0.1,0.2' (fractions) or '2014-01-01,2014-07-01' (validation, test starts)."""
        parts = [part.strip() for part in text.split(",")]
        try:
            fractions = tuple(float(part) for part in parts)
        except ValueError:
            fractions = None
        if fractions is not None:
            if len(fractions) != 3:
                raise DataValidationError(
                    f"parameter split: expected 'train,validation,test' fractions or "
                    f"'validation_start,test_start' dates, got {text!r}"
                )
            return cls(fractions=fractions)  # type: ignore[arg-type]
        if len(parts) != 2:
            raise DataValidationError(
                f"parameter split: expected 'train,validation,test' fractions or "
                f"'validation_start,test_start' dates, got {text!r}"
            )
        try:
            starts = [pd.Timestamp(part) for part in parts]
        except ValueError as error:
            raise DataValidationError(f"parameter split: {error}") from error
        starts = [s.tz_localize("UTC") if s.tzinfo is None else s.tz_convert("UTC") for s in starts]
        return cls(fractions=None, validation_start=starts[0], test_start=starts[1])

    def describe(self) -> str:
        if self.fractions is not None:
            return ",".join(f"{fraction:g}" for fraction in self.fractions)
        return f"{self.validation_start.isoformat()},{self.test_start.isoformat()}"


def assign_parts(frame: pd.DataFrame, split: SplitSpec) -> np.ndarray:
    """The part (TRAIN, VALIDATION or TEST) of every row of a frame sorted by series and time."""
    if split.fractions is None:
        times = frame[TIMESTAMP_COLUMN]
        parts = np.full(len(frame), TRAIN, dtype="int8")
        parts[(times >= split.validation_start).to_numpy()] = VALIDATION
        parts[(times >= split.test_start).to_numpy()] = TEST
        return parts
    series = frame[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    series_index = np.cumsum(new_series) - 1
    starts = np.flatnonzero(new_series)
    lengths = np.diff(np.r_[starts, len(frame)])
    position = np.arange(len(frame)) - starts[series_index]
    f_train, _, f_test = split.fractions
    # int() rather than round(): the LTSF data loaders cut this way, so counts match their papers.
    train_rows = np.array([int(n * f_train) for n in lengths])[series_index]
    test_rows = np.array([int(n * f_test) for n in lengths])[series_index]
    length = lengths[series_index]
    parts = np.full(len(frame), VALIDATION, dtype="int8")
    parts[position < train_rows] = TRAIN
    parts[position >= length - test_rows] = TEST
    return parts


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

    def _coefficients(
        self, series_ids: Sequence[str] | np.ndarray, columns: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        column_index = [self.columns.index(column) for column in columns]
        keys = list(self.scalers)
        if self.per_series:
            lookup = {key: i for i, key in enumerate(keys)}
            unknown = [sid for sid in pd.unique(np.asarray(series_ids)) if sid not in lookup]
            if unknown:
                raise DataValidationError(
                    f"scaler: no scaler was fitted for series {unknown[:5]}; "
                    "it had no training rows"
                )
            rows = np.array([lookup[sid] for sid in series_ids], dtype="int64")
        else:
            rows = np.zeros(len(series_ids), dtype="int64")
        slopes = np.stack([_affine(self.scalers[key])[0] for key in keys])[:, column_index]
        intercepts = np.stack([_affine(self.scalers[key])[1] for key in keys])[:, column_index]
        return slopes[rows], intercepts[rows]

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
