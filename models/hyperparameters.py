"""Model names and the hyper-parameters of every zoo model: defaults, checks, one-line help.

The one table of what each model accepts (`HYPERPARAMETERS`); `models.zoo` builds a model from
the resolved values, and a test checks every builder's keyword arguments against this table.
Importing this module builds no model.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.peephole import PEEPHOLE_GATES
from models.shape import positive_int

BASELINE_NAMES = ("last", "repeat", "mean")
DIRECT_NAMES = ("linear", "dense", "conv")
RECURRENT_NAMES = ("lstm", "gru", "peephole", "clockwork", "depth-gated")
AUTOREGRESSIVE_NAMES = ("lstm-ar", "gru-ar", "peephole-ar")
MODEL_NAMES = BASELINE_NAMES + DIRECT_NAMES + RECURRENT_NAMES + AUTOREGRESSIVE_NAMES
NORMALIZATIONS = ("none", "last", "revin")
DECODERS = ("dense", "parallel")
CELL_TYPES = ("lstm", "gru", "peephole")
"""The cells of the autoregressive models (`lstm-ar`, `gru-ar`, `peephole-ar`)."""
FAMILIES = {
    "baseline": BASELINE_NAMES,
    "direct": DIRECT_NAMES,
    "recurrent": RECURRENT_NAMES,
    "autoregressive": AUTOREGRESSIVE_NAMES,
}
"""Family name -> the models in it."""


@dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter of a model: its default and a parser that checks a given value.

    Attributes:
        default: the value used when the hyper-parameter is not given.
        parse: returns the checked value or raises ValueError("expected ..., got ...").
        help: one line on what it does.
    """

    default: Any
    parse: Callable[[Any], Any]
    help: str


def _optional_positive_int(value: Any) -> int | None:
    return None if value is None else positive_int(value)


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"expected a number in [0, 1), got {value!r}")
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"expected True or False, got {value!r}")
    return bool(value)


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {list(options)}, got {value!r}")
        return value

    return parse


def _peepholes(value: Any) -> tuple[str, ...]:
    # A comma-separated string is accepted because command lines and MLflow params are strings.
    gates = (
        tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, str)
        else value
    )
    if not isinstance(gates, Sequence) or any(gate not in PEEPHOLE_GATES for gate in gates):
        raise ValueError(f"expected a subset of {list(PEEPHOLE_GATES)}, got {value!r}")
    if len(set(gates)) != len(gates):
        raise ValueError(f"expected each gate once, got {value!r}")
    return tuple(gates)


def _periods(value: Any) -> tuple[int, ...]:
    # A comma-separated string is accepted because command lines and MLflow params are strings.
    parts = value.split(",") if isinstance(value, str) else value
    try:
        periods = tuple(
            positive_int(int(part) if isinstance(part, str) else part) for part in parts
        )
    except (TypeError, ValueError):
        periods = ()
    if not periods:
        raise ValueError(f"expected positive integers such as 1,2,4,8, got {value!r}")
    if len(set(periods)) != len(periods):
        raise ValueError(f"expected each period once, got {value!r}")
    return periods


_NORMALIZATION_HPARAMS = {
    "normalization": HyperParameter(
        "none", _choice(NORMALIZATIONS), "per-window normalisation: none, last or revin"
    ),
    "affine": HyperParameter(True, _boolean, "learnable affine transform in RevIN"),
}
_RECURRENT_HPARAMS = {
    "units": HyperParameter(32, positive_int, "units of every recurrent layer"),
    "layers": HyperParameter(1, positive_int, "stacked recurrent layers"),
    "dropout": HyperParameter(0.0, _rate, "input dropout rate of every recurrent layer"),
    "recurrent_dropout": HyperParameter(0.0, _rate, "recurrent dropout rate"),
    **_NORMALIZATION_HPARAMS,
}
_PEEPHOLE_HPARAMS = {
    "peepholes": HyperParameter(PEEPHOLE_GATES, _peepholes, "gates that see the cell state"),
    "coupled_input_forget": HyperParameter(False, _boolean, "input gate = 1 - forget (CIFG)"),
}
_CLOCKWORK_HPARAMS = {
    "periods": HyperParameter(
        (1, 2, 4, 8),
        _periods,
        "clock period in steps of each module of units (units: a multiple of their count)",
    ),
}
_DEPTH_GATED_HPARAMS = {
    **_RECURRENT_HPARAMS,
    "layers": HyperParameter(
        2, positive_int, "LSTM layers whose cells are joined by depth gates (1: a plain LSTM)"
    ),
}
_READING_HPARAMS = {
    "channel_independent": HyperParameter(
        False,
        _boolean,
        "each target channel read alone from its own history, through shared weights",
    ),
    "segment_length": HyperParameter(
        None,
        _optional_positive_int,
        "steps embedded together as one recurrent step (default: 1, every step)",
    ),
    "decoder": HyperParameter(
        "dense",
        _choice(DECODERS),
        "dense: one Dense head from the last state; parallel: every horizon segment decoded "
        "at once from the final state and a position embedding",
    ),
    "channel_embedding": HyperParameter(
        False, _boolean, "a learned channel embedding in the parallel decoder's queries"
    ),
    "head_dropout": HyperParameter(0.0, _rate, "dropout rate before the head"),
    "linear_skip": HyperParameter(
        False,
        _boolean,
        "add a linear forecast from the whole window: one map shared by the channels when they "
        "are read alone, else L x features x H x targets weights",
    ),
}
_TEACHER_FORCING = {
    "teacher_forcing": HyperParameter(False, _boolean, "feed true targets back in training"),
}


_LOOKBACK = {
    "lookback": HyperParameter(
        None, _optional_positive_int, "last input steps used (default: all)"
    ),
}
HYPERPARAMETERS: dict[str, dict[str, HyperParameter]] = {
    "last": {},
    "repeat": {
        "season": HyperParameter(
            None, _optional_positive_int, "season length in steps (default: the horizon)"
        )
    },
    "mean": {},
    "linear": {**_LOOKBACK, **_NORMALIZATION_HPARAMS},
    "dense": {
        "units": HyperParameter(64, positive_int, "units of every hidden layer"),
        "layers": HyperParameter(1, positive_int, "hidden layers"),
        "dropout": HyperParameter(0.0, _rate, "dropout rate after every hidden layer"),
        **_LOOKBACK,
        **_NORMALIZATION_HPARAMS,
    },
    "conv": {
        "filters": HyperParameter(32, positive_int, "convolution filters"),
        "kernel_size": HyperParameter(3, positive_int, "last input steps convolved"),
        "dropout": HyperParameter(0.0, _rate, "dropout rate before the head"),
        **_NORMALIZATION_HPARAMS,
    },
    "lstm": {**_RECURRENT_HPARAMS, **_READING_HPARAMS},
    "gru": {**_RECURRENT_HPARAMS, **_READING_HPARAMS},
    "peephole": {**_RECURRENT_HPARAMS, **_PEEPHOLE_HPARAMS, **_READING_HPARAMS},
    "clockwork": {**_RECURRENT_HPARAMS, **_CLOCKWORK_HPARAMS, **_READING_HPARAMS},
    "depth-gated": {**_DEPTH_GATED_HPARAMS, **_READING_HPARAMS},
    "lstm-ar": {**_RECURRENT_HPARAMS, **_TEACHER_FORCING},
    "gru-ar": {**_RECURRENT_HPARAMS, **_TEACHER_FORCING},
    "peephole-ar": {**_RECURRENT_HPARAMS, **_PEEPHOLE_HPARAMS, **_TEACHER_FORCING},
}
"""Model name -> `{hyper-parameter: HyperParameter}`, in the order they are documented."""
assert tuple(HYPERPARAMETERS) == MODEL_NAMES, "every name in MODEL_NAMES needs exactly one entry"


def _model_hyperparameters(name: str) -> dict[str, HyperParameter]:
    if name not in HYPERPARAMETERS:
        hint = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown model {name!r}{suggestion}; valid: {', '.join(MODEL_NAMES)}")
    return HYPERPARAMETERS[name]


def model_family(name: str) -> str:
    """The family of a model name: baseline, direct, recurrent or autoregressive.

    Raises:
        ValueError: the name is not a model.
    """
    _model_hyperparameters(name)
    return next(family for family, names in FAMILIES.items() if name in names)


def hyperparameters(name: str) -> dict[str, HyperParameter]:
    """The hyper-parameters a model accepts, with defaults and one-line descriptions.

    Args:
        name: a model name from `MODEL_NAMES`.

    Returns:
        `{hyper-parameter name: HyperParameter}`, in the order they are documented.

    Raises:
        ValueError: the name is not a model.
    """
    return dict(_model_hyperparameters(name))


def default_hyperparameters(name: str) -> dict[str, Any]:
    """`{hyper-parameter: default}` for a model (for configs and logging)."""
    return {key: value.default for key, value in hyperparameters(name).items()}


def resolve_hyperparameters(name: str, **hparams: Any) -> dict[str, Any]:
    """Checks given hyper-parameters and fills in the defaults of the others.

    Args:
        name: a model name from `MODEL_NAMES`.
        **hparams: hyper-parameter values to check.

    Returns:
        Every hyper-parameter of the model with its checked value.

    Raises:
        ValueError: the name is not a model, a hyper-parameter is unknown, or a value is bad;
            the message names the model and lists the valid choices.
    """
    valid = _model_hyperparameters(name)
    for key in hparams:
        if key not in valid:
            listing = ", ".join(valid) if valid else "none"
            hint = difflib.get_close_matches(key, list(valid), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"model {name!r}: unknown hyper-parameter {key!r}{suggestion}; valid: {listing}"
            )
    resolved = {}
    for key, spec in valid.items():
        value = hparams.get(key, spec.default)
        try:
            resolved[key] = spec.parse(value)
        except ValueError as error:
            raise ValueError(f"model {name!r}: hyper-parameter {key!r}: {error}") from None
    return resolved
