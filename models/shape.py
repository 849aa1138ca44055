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


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """Quantile levels as increasing floats in (0, 1) that include the median, or a ValueError
    naming them."""
    values = tuple(quantiles) if isinstance(quantiles, Sequence | np.ndarray) else (quantiles,)
    valid = not isinstance(quantiles, str) and all(
        isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1
        for value in values
    )
    if not valid or list(values) != sorted(set(values)) or 0.5 not in values:
        raise ValueError(
            "parameter quantiles: expected increasing levels in (0, 1) that include 0.5, got "
            f"{list(quantiles)!r}"
        )
    return tuple(float(value) for value in values)


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
        quantiles: the levels of a quantile head (`models.quantiles`), increasing, 0.5 among
            them; empty (the default) for a point forecast. With K levels the forecast is
            (horizon, K, T).

    Example:
        >>> ModelShape(input_width=14, horizon=7, n_features=4, target_indices=(1,)).n_targets
        1
    """

    input_width: int
    horizon: int
    n_features: int
    target_indices: tuple[int, ...]
    quantiles: tuple[float, ...] = ()

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
        if self.quantiles:
            object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))

    @property
    def n_targets(self) -> int:
        return len(self.target_indices)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(input_width, n_features): the shape of one input window."""
        return self.input_width, self.n_features

    @property
    def n_quantiles(self) -> int:
        """Values forecast per target and step: the quantile head's levels, or 1."""
        return max(1, len(self.quantiles))

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(horizon, n_targets), or (horizon, K, n_targets) with a quantile head: the shape of
        one forecast."""
        if self.quantiles:
            return self.horizon, len(self.quantiles), self.n_targets
        return self.horizon, self.n_targets
