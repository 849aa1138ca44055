"""The model registry: one entry per zoo model (its family, hyper-parameters, cell and
builder), and the one rule of which model a name means: an unknown model or cell name is an
error everywhere, with the closest valid name.

Adding a cell is its layer file, a `Cell` here and one `ModelEntry` per family it serves.
Builders and layers are named as `module:attribute` and imported on first use, so the registry
(and every configuration check) loads without Keras or TensorFlow.

    >>> resolve_hyperparameters("gru", units="64", decoder="parallel", segment_length=12)["units"]
    64
    >>> resolve_for_window("gru", {"segment_length": 7}, input_width=30, horizon=24)
    Traceback (most recent call last):
    ...
    models.hyperparameters.HyperParameterError: model 'gru': hyper-parameter 'segment_length': \
expected a divisor of the input width 30, got 7
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from models.hyperparameters import (
    Autoregressive,
    Baseline,
    Clockwork,
    Convolution,
    Dense,
    DepthGated,
    HyperParameterError,
    HyperParameters,
    Linear,
    Peephole,
    PeepholeAutoregressive,
    Seasonal,
    SingleShot,
)


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: the layer that runs it over a sequence and, where it has one, the cell
    that runs one step (what an autoregressive model needs).

    Attributes:
        name: the cell's name.
        layer: `module:attribute` of the recurrent layer class.
        step_cell: `module:attribute` of the one-step cell class, or None.
    """

    name: str
    layer: str
    step_cell: str | None = None


CELLS = {
    cell.name: cell
    for cell in (
        Cell("lstm", "keras.layers:LSTM", "keras.layers:LSTMCell"),
        Cell("gru", "keras.layers:GRU", "keras.layers:GRUCell"),
        Cell("peephole", "models.peephole:PeepholeLSTM", "models.peephole:PeepholeLSTMCell"),
        Cell("clockwork", "models.clockwork:ClockworkRNN"),
        Cell("depth-gated", "models.depth_gated:DepthGatedLSTM"),
    )
}
"""Cell name -> Cell. Adding a cell: its layer file, an entry here, and a `ModelEntry` per
family it serves."""


@dataclass(frozen=True)
class ModelEntry:
    """One zoo model.

    Attributes:
        name: the model's name in configurations (`gru`, `peephole-ar`).
        family: baseline, direct, recurrent or autoregressive.
        hyperparameters: the pydantic model of its hyper-parameters.
        builder: `module:function` that builds it from `(entry, shape, **hyper-parameters)`.
        cell: the recurrent cell it runs, or None.
    """

    name: str
    family: Literal["baseline", "direct", "recurrent", "autoregressive"]
    hyperparameters: type[HyperParameters]
    builder: str
    cell: Cell | None = None


def _entry(
    name: str, family: Any, hyperparameters: type[HyperParameters], builder: str, cell: str = ""
) -> ModelEntry:
    return ModelEntry(
        name, family, hyperparameters, f"models.zoo:{builder}", CELLS[cell] if cell else None
    )


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        _entry("last", "baseline", Baseline, "build_last"),
        _entry("repeat", "baseline", Seasonal, "build_repeat"),
        _entry("mean", "baseline", Baseline, "build_mean"),
        _entry("linear", "direct", Linear, "build_linear"),
        _entry("dense", "direct", Dense, "build_dense"),
        _entry("conv", "direct", Convolution, "build_conv"),
        _entry("lstm", "recurrent", SingleShot, "build_single_shot", "lstm"),
        _entry("gru", "recurrent", SingleShot, "build_single_shot", "gru"),
        _entry("peephole", "recurrent", Peephole, "build_single_shot", "peephole"),
        _entry("clockwork", "recurrent", Clockwork, "build_single_shot", "clockwork"),
        _entry("depth-gated", "recurrent", DepthGated, "build_single_shot", "depth-gated"),
        _entry("lstm-ar", "autoregressive", Autoregressive, "build_autoregressive", "lstm"),
        _entry("gru-ar", "autoregressive", Autoregressive, "build_autoregressive", "gru"),
        _entry(
            "peephole-ar",
            "autoregressive",
            PeepholeAutoregressive,
            "build_autoregressive",
            "peephole",
        ),
    )
}
"""Model name -> its entry, in the order the models are documented."""

MODEL_NAMES = tuple(MODELS)
FAMILIES: dict[str, tuple[str, ...]] = {}
for _name, _model in MODELS.items():
    FAMILIES.setdefault(_model.family, ())
    FAMILIES[_model.family] += (_name,)
"""Family name -> the models in it."""
BASELINE_NAMES = FAMILIES["baseline"]
DIRECT_NAMES = FAMILIES["direct"]
RECURRENT_NAMES = FAMILIES["recurrent"]
AUTOREGRESSIVE_NAMES = FAMILIES["autoregressive"]
STEP_CELLS = tuple(name for name, cell in CELLS.items() if cell.step_cell is not None)
"""The cells an autoregressive model can run (`lstm-ar`, `gru-ar`, `peephole-ar`)."""


def _unknown(kind: str, name: Any, valid: tuple[str, ...]) -> HyperParameterError:
    hint = difflib.get_close_matches(str(name), valid, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return HyperParameterError(f"unknown {kind} {name!r}{suggestion}; valid: {', '.join(valid)}")


def model_entry(name: str) -> ModelEntry:
    """The registry entry of a model name.

    Raises:
        HyperParameterError: the name is not a model (with the closest one).
    """
    if not isinstance(name, str) or name not in MODELS:
        raise _unknown("model", name, MODEL_NAMES)
    return MODELS[name]


def cell_entry(name: str, *, stepping: bool = False) -> Cell:
    """The registry entry of a cell name; `stepping` asks for one that can run one step.

    Raises:
        HyperParameterError: the name is not such a cell.
    """
    valid = STEP_CELLS if stepping else tuple(CELLS)
    if not isinstance(name, str) or name not in valid:
        raise _unknown("cell", name, valid)
    return CELLS[name]


def load_attribute(reference: str) -> Any:
    """The object a `module:attribute` reference names (imported on first use)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_family(name: str) -> str:
    """The family of a model name: baseline, direct, recurrent or autoregressive."""
    return model_entry(name).family


@dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter as documented: its default and what it does."""

    default: Any
    help: str


def hyperparameters(name: str) -> dict[str, HyperParameter]:
    """The hyper-parameters a model accepts, with defaults and one-line descriptions, in the
    order they are documented.

    Raises:
        HyperParameterError: the name is not a model.
    """
    fields = model_entry(name).hyperparameters.model_fields
    return {
        key: HyperParameter(field.default, field.description or "") for key, field in fields.items()
    }


def default_hyperparameters(name: str) -> dict[str, Any]:
    """`{hyper-parameter: default}` for a model (for configs and logging)."""
    return {key: value.default for key, value in hyperparameters(name).items()}


def parse_hyperparameters(name: str, hparams: Mapping[str, Any]) -> HyperParameters:
    """A model's hyper-parameters, checked, with the defaults of those not given.

    Args:
        name: a model name from `MODEL_NAMES`.
        hparams: hyper-parameter values; text is read by the field's type ("64", "true",
            "input,output").

    Raises:
        HyperParameterError: the name is not a model, a hyper-parameter is unknown (with the
            closest name), a value is bad, or two values do not go together.
    """
    return model_entry(name).hyperparameters.parse(hparams, name)


def resolve_hyperparameters(name: str, **hparams: Any) -> dict[str, Any]:
    """Every hyper-parameter of the model: the given ones checked, the others' defaults.

    Raises:
        HyperParameterError: as `parse_hyperparameters`.
    """
    return parse_hyperparameters(name, hparams).model_dump()


def resolve_for_window(
    name: str, hparams: Mapping[str, Any], input_width: int, horizon: int
) -> dict[str, Any]:
    """`resolve_hyperparameters`, also held to the rules of the window (e.g. a segment length
    must divide the input width, a season be no longer than it).

    Raises:
        HyperParameterError: as `parse_hyperparameters`, or a value that does not fit the
            window; naming the model and the hyper-parameter.
    """
    parsed = parse_hyperparameters(name, hparams)
    try:
        parsed.check_shape(input_width, horizon)
    except HyperParameterError as error:
        raise HyperParameterError(error.problem, error.key, name) from None
    return parsed.model_dump()


def cell_arguments(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters that are the model's cell's own arguments."""
    return {key: hparams[key] for key in model_entry(name).hyperparameters.cell_options}
