"""The shapes a forecaster maps between: (batch, input_width, n_features) -> (batch, horizon, T)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def positive_int(value: Any) -> int:
    """`value` as an int, or ValueError("expected a positive integer, got ...")."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def require_positive(name: str, value: Any) -> int:
    """`positive_int(value)`, its error naming the parameter ("parameter NAME: expected ...")."""
    try:
        return positive_int(value)
    except ValueError as error:
        raise ValueError(f"parameter {name}: {error}") from None


@dataclass(frozen=True)
class ModelShape:
    """The array shapes a model maps between.

    Attributes:
        input_width: steps of history in each input window.
        horizon: steps to forecast.
        n_features: input features per step.
        target_indices: positions of the target columns among the input features, in the order
            of the forecast's last axis. Baselines read the targets from these columns, and
            autoregressive models write their predictions back into them.

    Example:
        >>> ModelShape(input_width=14, horizon=7, n_features=4, target_indices=(1,)).n_targets
        1
    """

    input_width: int
    horizon: int
    n_features: int
    target_indices: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("input_width", "horizon", "n_features"):
            # Frozen dataclass: normalise NumPy integers to int in place of the given values.
            object.__setattr__(self, name, require_positive(name, getattr(self, name)))
        indices = self.target_indices
        if isinstance(indices, int | np.integer) or not isinstance(indices, Sequence):
            raise ValueError(
                f"parameter target_indices: expected a sequence of integers, got {indices!r}"
            )
        if not indices:
            raise ValueError("parameter target_indices: expected at least one index, got none")
        for index in indices:
            if (
                isinstance(index, bool)
                or not isinstance(index, int | np.integer)
                or not 0 <= index < self.n_features
            ):
                raise ValueError(
                    f"parameter target_indices: expected integers in [0, {self.n_features}), "
                    f"got {index!r} in {list(indices)}"
                )
        if len(set(indices)) != len(indices):
            raise ValueError(f"parameter target_indices: indices repeat in {list(indices)}")
        object.__setattr__(self, "target_indices", tuple(int(index) for index in indices))

    @property
    def n_targets(self) -> int:
        return len(self.target_indices)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(input_width, n_features): the shape of one input window."""
        return self.input_width, self.n_features

    @property
    def output_shape(self) -> tuple[int, int]:
        """(horizon, n_targets): the shape of one forecast."""
        return self.horizon, self.n_targets
