"""Chronological split per series, and scalers fitted on the training part only.

Parts are labelled row by row (`train`, `validation`, `test`). Windows are assigned later by one
rule: a window belongs to the part that holds all its targets, and its inputs may look back into
earlier parts. So no target of the validation or test part is ever seen in training, and the
first validation window can still use the end of the training data as its history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.data.contract import (
    SERIES_COLUMN,
    TEST,
    TIMESTAMP_COLUMN,
    TRAIN,
    VALIDATION,
    DataValidationError,
)


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
