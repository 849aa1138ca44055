"""Windows: (inputs[B, input_width, F], targets[B, horizon, T]) pairs cut from a frame.

A window is identified by the row where its inputs start; the data stays in one array of shape
(rows, columns) and each batch is gathered from it when needed, so memory is O(rows), not
O(rows x width). A window never crosses a series or segment boundary, and it belongs to the part
(train, validation, test) that holds all its targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.runtime.contract import (
    PART_NAMES,
    SEGMENT_COLUMN,
    DataValidationError,
    require_positive,
)


@dataclass(frozen=True)
class WindowSpec:
    """The shape of one training example.

    Attributes:
        input_width: steps of history the model sees.
        horizon: steps it forecasts.
        features: input columns, in order (targets usually among them).
        targets: forecast columns, in order.
        stride: steps between the starts of consecutive windows of one segment.
    """

    input_width: int
    horizon: int
    features: tuple[str, ...]
    targets: tuple[str, ...]
    stride: int = 1

    def __post_init__(self) -> None:
        require_positive("input_width", self.input_width)
        require_positive("horizon", self.horizon)
        require_positive("stride", self.stride)
        for name, columns in (("features", self.features), ("targets", self.targets)):
            if not columns:
                raise DataValidationError(f"parameter {name}: expected at least one column")
            if len(set(columns)) != len(columns):
                raise DataValidationError(f"parameter {name}: columns repeat in {list(columns)}")

    @property
    def total_width(self) -> int:
        return self.input_width + self.horizon

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "features": list(self.features), "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> WindowSpec:
        return cls(
            **{**state, "features": tuple(state["features"]), "targets": tuple(state["targets"])}
        )


def window_starts(
    segments: np.ndarray, parts: np.ndarray, spec: WindowSpec
) -> dict[str, np.ndarray]:
    """Start rows of every window, by part, in row order.

    Args:
        segments: segment id of every row (segments are contiguous runs of rows).
        parts: part (0 train, 1 validation, 2 test) of every row; non-decreasing in a segment.
        spec: widths and stride.

    Returns:
        `{"train": starts, "validation": starts, "test": starts}` (int64 arrays).
    """
    rows = len(segments)
    candidates = np.arange(max(rows - spec.total_width + 1, 0), dtype="int64")
    first_target = candidates + spec.input_width
    last_row = candidates + spec.total_width - 1
    # Segments are contiguous and parts never decrease inside one, so comparing the two ends
    # is enough to know that every row between them shares the segment or the part.
    same_segment = segments[candidates] == segments[last_row]
    same_part = parts[first_target] == parts[last_row]
    valid = same_segment & same_part
    if spec.stride > 1:
        segment_start = np.r_[True, segments[1:] != segments[:-1]]
        first_row = np.maximum.accumulate(np.where(segment_start, np.arange(rows), 0))
        valid &= (candidates - first_row[candidates]) % spec.stride == 0
    starts = candidates[valid]
    window_part = parts[first_target[valid]]
    return {name: starts[window_part == index] for index, name in enumerate(PART_NAMES)}


def windows_at(values: np.ndarray, starts: np.ndarray, offset: int, width: int) -> np.ndarray:
    """`(len(starts), width, columns)` windows of `values` that begin at `starts + offset`.

    One strided view of `values`, indexed: memory for the result only, never for every window.
    """
    view = np.lib.stride_tricks.sliding_window_view(values, width, axis=0)
    # sliding_window_view puts the window axis last; move it before the columns.
    return np.ascontiguousarray(np.swapaxes(view[starts + offset], 1, 2))


def gather_windows(
    inputs: np.ndarray, targets: np.ndarray, starts: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy windows for the given starts: ([n, input_width, F], [n, horizon, T])."""
    return (
        windows_at(inputs, starts, 0, spec.input_width),
        windows_at(targets, starts, spec.input_width, spec.horizon),
    )


class WindowedData:
    """Scaled arrays of one prepared frame with its window starts; yields datasets or arrays.

    Args:
        inputs: (rows, F) scaled feature values, in `spec.features` order.
        targets: (rows, T) scaled target values, in `spec.targets` order.
        segments: (rows,) segment id of each row.
        parts: (rows,) part of each row.
        spec: the window shape.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        segments: np.ndarray,
        parts: np.ndarray,
        spec: WindowSpec,
    ) -> None:
        if not (len(inputs) == len(targets) == len(segments) == len(parts)):
            raise ValueError(
                f"expected arrays of one length, got inputs {len(inputs)}, targets {len(targets)}, "
                f"segments {len(segments)}, parts {len(parts)}"
            )
        self.inputs = np.ascontiguousarray(inputs, dtype="float32")
        self.targets = np.ascontiguousarray(targets, dtype="float32")
        self.spec = spec
        self.starts = window_starts(np.asarray(segments), np.asarray(parts), spec)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        scaled: pd.DataFrame | np.ndarray,
        parts: np.ndarray,
        spec: WindowSpec,
        columns: Sequence[str],
    ) -> WindowedData:
        """Builds from a prepared frame and its scaled values (columns in `columns` order)."""
        scaled = np.asarray(scaled)
        index = {column: i for i, column in enumerate(columns)}
        missing = [c for c in (*spec.features, *spec.targets) if c not in index]
        if missing:
            raise DataValidationError(
                f"window spec: columns {missing} are not among the scaled columns {list(columns)}"
            )
        return cls(
            inputs=scaled[:, [index[c] for c in spec.features]],
            targets=scaled[:, [index[c] for c in spec.targets]],
            segments=frame[SEGMENT_COLUMN].to_numpy(),
            parts=parts,
            spec=spec,
        )

    def counts(self) -> dict[str, int]:
        return {name: len(starts) for name, starts in self.starts.items()}

    def arrays(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """All windows of a part as NumPy arrays, in time order (for small data)."""
        return gather_windows(self.inputs, self.targets, self._starts(part), self.spec)

    def dataset(self, part: str, *, batch_size: int, shuffle: bool = False, seed: int = 0) -> Any:
        """A `tf.data.Dataset` of (inputs, targets) batches; the last, smaller batch is kept.

        Windows are gathered per batch inside the graph from one copy of the data. Evaluation
        order is the time order; with `shuffle` the order is drawn anew each epoch from `seed`,
        so two runs with one seed see the same batches.
        """
        import tensorflow as tf

        require_positive("batch_size", batch_size)
        starts = self._starts(part)
        input_width, horizon = self.spec.input_width, self.spec.horizon
        inputs = tf.convert_to_tensor(self.inputs)
        targets = tf.convert_to_tensor(self.targets)
        input_offsets = tf.range(input_width, dtype=tf.int64)
        target_offsets = tf.range(input_width, input_width + horizon, dtype=tf.int64)

        def gather(batch_starts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            batch_starts = batch_starts[:, tf.newaxis]
            return (
                tf.gather(inputs, batch_starts + input_offsets),
                tf.gather(targets, batch_starts + target_offsets),
            )

        dataset = tf.data.Dataset.from_tensor_slices(starts)
        if shuffle:
            dataset = dataset.shuffle(max(len(starts), 1), seed=seed, reshuffle_each_iteration=True)
        return (
            dataset.batch(batch_size)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    def _starts(self, part: str) -> np.ndarray:
        if part not in self.starts:
            raise DataValidationError(
                f"parameter part: expected one of {list(self.starts)}, got {part!r}"
            )
        return self.starts[part]
