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

from pipelines.runtime.contract import (
    SERIES_COLUMN,
    TEST,
    TIMESTAMP_COLUMN,
    TRAIN,
    VALIDATION,
    DataValidationError,
)
from pipelines.settings import parse_utc_time

UNUSED = 3
"""Part of the rows that a row-count split leaves out (after its test rows)."""

_MONTH_OF_HOURS = 30 * 24
NAMED_SPLITS: dict[str, tuple[int, int, int]] = {
    "ett-hour": (12 * _MONTH_OF_HOURS, 4 * _MONTH_OF_HOURS, 4 * _MONTH_OF_HOURS),
    "ett-minute": (12 * _MONTH_OF_HOURS * 4, 4 * _MONTH_OF_HOURS * 4, 4 * _MONTH_OF_HOURS * 4),
}
"""The ETT benchmark splits: 12/4/4 months of 30 days, hourly or every 15 minutes, from the
first row; the rows after 20 months are not used (as the published ETT loaders cut)."""


@dataclass(frozen=True)
class SplitSpec:
    """Where each series is cut: by fractions of its rows, at two dates, or by row counts.

    With fractions (f_train, f_validation, f_test) a series of n rows gets int(n * f_train)
    training rows and int(n * f_test) test rows, the rest validation: the LTSF benchmark's rule.
    With row counts (the named ETT splits, `NAMED_SPLITS`) the first rows of each series are
    training, validation and test rows in turn, and the rows after them are left out.
    """

    fractions: tuple[float, float, float] | None = (0.7, 0.1, 0.2)
    validation_start: pd.Timestamp | None = None
    test_start: pd.Timestamp | None = None
    rows: tuple[int, int, int] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.rows is not None:
            if self.fractions is not None or len(self.rows) != 3 or min(self.rows) < 1:
                raise DataValidationError(
                    f"parameter split: expected three row counts >= 1, got {self.rows}"
                )
        elif self.fractions is not None:
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
        """Reads '0.7,0.1,0.2' (fractions), '2014-01-01,2014-07-01' (validation and test
        starts), or a name of `NAMED_SPLITS` ('ett-hour', 'ett-minute')."""
        if text.strip() in NAMED_SPLITS:
            return cls(fractions=None, rows=NAMED_SPLITS[text.strip()], name=text.strip())
        parts = [part.strip() for part in text.split(",")]
        try:
            fractions = tuple(float(part) for part in parts)
        except ValueError:
            fractions = None
        if fractions is not None:
            if len(fractions) != 3:
                raise DataValidationError(
                    "parameter split: expected 'train,validation,test' fractions, "
                    f"'validation_start,test_start' dates or one of {list(NAMED_SPLITS)}, "
                    f"got {text!r}"
                )
            return cls(fractions=fractions)  # type: ignore[arg-type]
        if len(parts) != 2:
            raise DataValidationError(
                f"parameter split: expected 'train,validation,test' fractions or "
                f"'validation_start,test_start' dates, got {text!r}"
            )
        try:
            starts = [parse_utc_time(part) for part in parts]
        except ValueError as error:
            raise DataValidationError(f"parameter split: {error}") from None
        return cls(fractions=None, validation_start=starts[0], test_start=starts[1])

    def describe(self) -> str:
        if self.name is not None:
            return self.name
        if self.fractions is not None:
            return ",".join(f"{fraction:g}" for fraction in self.fractions)
        return f"{self.validation_start.isoformat()},{self.test_start.isoformat()}"


def assign_parts(frame: pd.DataFrame, split: SplitSpec) -> np.ndarray:
    """The part (TRAIN, VALIDATION or TEST, or UNUSED after a row-count split's test rows) of
    every row of a frame in series order (rows of one series contiguous)."""
    if split.fractions is None and split.rows is None:
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
    if split.rows is not None:
        train, validation, test = split.rows
        parts = np.full(len(frame), UNUSED, dtype="int8")
        parts[position < train + validation + test] = TEST
        parts[position < train + validation] = VALIDATION
        parts[position < train] = TRAIN
        return parts
    f_train, _, f_test = split.fractions  # type: ignore[misc]
    # int() rather than round(): the LTSF data loaders cut this way, so counts match their papers.
    train_rows = np.array([int(n * f_train) for n in lengths])[series_index]
    test_rows = np.array([int(n * f_test) for n in lengths])[series_index]
    length = lengths[series_index]
    parts = np.full(len(frame), VALIDATION, dtype="int8")
    parts[position < train_rows] = TRAIN
    parts[position >= length - test_rows] = TEST
    return parts
