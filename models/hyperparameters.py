"""The hyper-parameters of every kind of zoo model: one pydantic model per kind, with the rules
that tie values together (a parallel decoder needs a segment length) and to the window's shape
(`HyperParameters.check_shape`: a segment length must divide the input width).

`models.registry` maps each model name to one of these; the configuration checks every setting
through it before any data are read, and `models.zoo.build_model` checks again, so a model
built outside a configuration is held to the same rules. Values are read with pydantic's lax
parsing, so command-line text works ("64", "true", "input,output", "none"). Importing this module
imports neither Keras nor TensorFlow.

    >>> Recurrent.parse({"units": "64", "dropout": 0.1}, model="lstm").units
    64
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from models.names import PEEPHOLE_GATES

Normalization = Literal["none", "last", "revin"]
NORMALIZATIONS: tuple[str, ...] = typing.get_args(Normalization)


class HyperParameterError(ValueError):
    """A hyper-parameter that a model does not take, or a value it cannot use.

    Attributes:
        key: the hyper-parameter at fault (`segment_length`), or None when the model name is.
        problem: what is wrong ("expected ..., got ..."), without the model and key.
    """

    def __init__(
        self,
        problem: str,
        key: str | None = None,
        model: str | None = None,
        *,
        unknown: bool = False,
    ):
        where = f"model {model!r}: " if model else ""
        what = f"hyper-parameter {key!r}: " if key and not unknown else ""
        super().__init__(f"{where}{what}{problem}")
        self.key = key
        self.problem = problem


# --------------------------------------------------------------------------------------------
# Value types: pydantic's lax parsing (text from a command line reads as its type), with the
# few refusals it lacks.


class _FlagGivenError(ValueError):
    """True or False where a number belongs (the message names what the field expects)."""


def _not_a_flag(value: Any) -> Any:
    # Lax parsing reads True as 1; a flag where a number belongs is a mistake, not a number.
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise _FlagGivenError
    return value


def _items(value: Any) -> Any:
    """A list from "a,b" (command lines and MLflow params are text), lists kept as they are."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _none_word(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in {"", "none", "null", "~"}:
        return None
    return value


PositiveInt = Annotated[int, BeforeValidator(_not_a_flag), Field(ge=1)]
OptionalPositiveInt = Annotated[PositiveInt | None, BeforeValidator(_none_word)]
Rate = Annotated[float, BeforeValidator(_not_a_flag), Field(ge=0.0, lt=1.0)]
PeepholeGate = Literal[PEEPHOLE_GATES]  # the layer's own names, one list


class HyperParameters(BaseModel):
    """The hyper-parameters of one kind of model: checked, frozen, unknown names refused.

    `cell_options` names the fields that are the cell's own arguments (they go to the
    recurrent layer). `check_shape` holds the rules that need the window's shape.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
    cell_options: ClassVar[tuple[str, ...]] = ()

    def check_shape(self, input_width: int, horizon: int) -> None:
        """Raises HyperParameterError where a value does not fit the window."""
        del input_width, horizon

    @classmethod
    def parse(cls, values: Mapping[str, Any], model: str) -> HyperParameters:
        """The checked hyper-parameters of `model`, the defaults of those not given.

        Raises:
            HyperParameterError: a name this kind of model does not take (with the closest
                one), a bad value, or two values that do not go together; naming `model`.
        """
        fields = cls.model_fields
        for key in values:
            if key not in fields:
                listing = ", ".join(fields) if fields else "none"
                hint = difflib.get_close_matches(str(key), list(fields), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise HyperParameterError(
                    f"unknown hyper-parameter {key!r}{suggestion}; valid: {listing}",
                    str(key),
                    model,
                    unknown=True,
                )
        try:
            return cls(**values)
        except ValidationError as error:
            key, problem = _problem(error.errors(include_url=False)[0], fields)
            raise HyperParameterError(problem, key, model) from None


def _at_most_input_width(key: str, value: int | None, input_width: int) -> None:
    if value is not None and value > input_width:
        raise HyperParameterError(
            f"expected at most the input width {input_width}, got {value}", key
        )


class Baseline(HyperParameters):
    """`last` and `mean`: no hyper-parameters."""


class Seasonal(HyperParameters):
    """`repeat`: the last season, repeated."""

    season: OptionalPositiveInt = Field(
        None, description="season length in steps (default: the horizon)"
    )

    def check_shape(self, input_width: int, horizon: int) -> None:
        if self.season is None and horizon > input_width:
            raise HyperParameterError(
                f"the default season is the horizon {horizon}, longer than the input width "
                f"{input_width}; set a season of at most {input_width} (or a longer input width, "
                "or leave this model out)",
                "season",
            )
        _at_most_input_width("season", self.season, input_width)


class Normalized(HyperParameters):
    """Every trainable model: the window normalised on the way in, denormalised on the way out."""

    normalization: Normalization = Field(
        "none", description="per-window normalisation: none, last or revin"
    )
    affine: bool = Field(True, description="learnable affine transform in RevIN")


class Linear(Normalized):
    """`linear`: one Dense map from the last `lookback` steps to the horizon."""

    lookback: OptionalPositiveInt = Field(None, description="last input steps used (default: all)")

    def check_shape(self, input_width: int, horizon: int) -> None:
        _at_most_input_width("lookback", self.lookback, input_width)


class Dense(Linear):
    """`dense`: hidden Dense layers before the head."""

    units: PositiveInt = Field(64, description="units of every hidden layer")
    layers: PositiveInt = Field(1, description="hidden layers")
    dropout: Rate = Field(0.0, description="dropout rate after every hidden layer")


class Convolution(Normalized):
    """`conv`: one convolution over the last `kernel_size` steps."""

    filters: PositiveInt = Field(32, description="convolution filters")
    kernel_size: PositiveInt = Field(3, description="last input steps convolved")
    dropout: Rate = Field(0.0, description="dropout rate before the head")

    def check_shape(self, input_width: int, horizon: int) -> None:
        _at_most_input_width("kernel_size", self.kernel_size, input_width)


class Recurrent(Normalized):
    """What every recurrent model takes."""

    units: PositiveInt = Field(32, description="units of every recurrent layer")
    layers: PositiveInt = Field(1, description="stacked recurrent layers")
    dropout: Rate = Field(0.0, description="input dropout rate of every recurrent layer")
    recurrent_dropout: Rate = Field(0.0, description="recurrent dropout rate")


class SingleShot(Recurrent):
    """`lstm`, `gru` and the other single-shot recurrent models: how the window is read and the
    horizon decoded (`models.recurrent`)."""

    channel_independent: bool = Field(
        False,
        description="each target channel read alone from its own history, through shared weights",
    )
    segment_length: OptionalPositiveInt = Field(
        None, description="steps embedded together as one recurrent step (default: 1, every step)"
    )
    decoder: Literal["dense", "parallel"] = Field(
        "dense",
        description="dense: one Dense head from the last state; parallel: every horizon segment "
        "decoded at once from the final state and a position embedding",
    )
    channel_embedding: bool = Field(
        False, description="a learned channel embedding in the parallel decoder's queries"
    )
    head_dropout: Rate = Field(0.0, description="dropout rate before the head")
    linear_skip: bool = Field(
        False,
        description="add a linear forecast from the whole window: one map shared by the channels "
        "when they are read alone, else L x features x H x targets weights",
    )

    @model_validator(mode="after")
    def _decoding(self) -> SingleShot:
        if self.decoder == "parallel" and self.segment_length is None:
            raise HyperParameterError(
                "'parallel' decodes the horizon in segments of segment_length steps; set "
                "segment_length",
                "decoder",
            )
        if self.channel_embedding and not (self.channel_independent and self.decoder == "parallel"):
            raise HyperParameterError(
                "expected it only with channel_independent=True and decoder='parallel', whose "
                "segment queries it is part of",
                "channel_embedding",
            )
        if self.channel_embedding and self.units < 2:
            raise HyperParameterError(
                "the query splits units between position and channel; expected units >= 2, "
                f"got {self.units}",
                "channel_embedding",
            )
        return self

    def check_shape(self, input_width: int, horizon: int) -> None:
        length = self.segment_length or 1
        if input_width % length:
            raise HyperParameterError(
                f"expected a divisor of the input width {input_width}, got {length}",
                "segment_length",
            )


def _require_distinct(value: tuple[Any, ...], what: str, key: str) -> None:
    if len(set(value)) != len(value):
        raise HyperParameterError(f"expected each {what} once, got {value!r}", key)


class PeepholeOptions(BaseModel):
    """The peephole cell's own arguments."""

    peepholes: Annotated[tuple[PeepholeGate, ...], BeforeValidator(_items)] = Field(
        PEEPHOLE_GATES, description="gates that see the cell state"
    )
    coupled_input_forget: bool = Field(False, description="input gate = 1 - forget (CIFG)")

    @model_validator(mode="after")
    def _distinct_gates(self) -> PeepholeOptions:
        _require_distinct(self.peepholes, "gate", "peepholes")
        return self


class Peephole(SingleShot, PeepholeOptions):
    """`peephole`: a single-shot peephole LSTM (`models.peephole`)."""

    cell_options: ClassVar[tuple[str, ...]] = ("peepholes", "coupled_input_forget")


class Clockwork(SingleShot):
    """`clockwork`: a Clockwork RNN whose modules tick at `periods` (`models.clockwork`)."""

    cell_options: ClassVar[tuple[str, ...]] = ("periods",)

    periods: Annotated[tuple[PositiveInt, ...], BeforeValidator(_items), Field(min_length=1)] = (
        Field(
            (1, 2, 4, 8),
            description="clock period in steps of each module of units (units: a multiple of "
            "their count)",
        )
    )

    @model_validator(mode="after")
    def _modules(self) -> Clockwork:
        _require_distinct(self.periods, "period", "periods")
        if self.units % len(self.periods):
            raise HyperParameterError(
                "the units are split into one module per period; expected units to be a "
                f"multiple of {len(self.periods)} for {list(self.periods)}, got {self.units}",
                "periods",
            )
        return self


class DepthGated(SingleShot):
    """`depth-gated`: LSTM layers joined by depth gates, as one recurrent layer."""

    cell_options: ClassVar[tuple[str, ...]] = ("layers",)

    layers: PositiveInt = Field(
        2, description="LSTM layers whose cells are joined by depth gates (1: a plain LSTM)"
    )


class Autoregressive(Recurrent):
    """`lstm-ar`, `gru-ar`: one step at a time, each forecast fed back."""

    teacher_forcing: bool = Field(False, description="feed true targets back in training")


class PeepholeAutoregressive(Autoregressive, PeepholeOptions):
    """`peephole-ar`."""

    cell_options: ClassVar[tuple[str, ...]] = ("peepholes", "coupled_input_forget")


def _expected(field: FieldInfo) -> str:
    """What a field's values look like ("a positive integer", "a number in [0, 1)")."""
    annotation = field.annotation
    limits = {
        kind: getattr(item, kind)
        for item in field.metadata
        for kind in ("ge", "lt")
        if getattr(item, kind, None) is not None
    }
    if annotation is int and limits.get("ge") == 1:
        return "a positive integer"
    if annotation is float and "ge" in limits and "lt" in limits:
        return f"a number in [{limits['ge']:g}, {limits['lt']:g})"
    return {int: "an integer", float: "a number", bool: "true or false"}.get(annotation, "")


def _choices(annotation: Any) -> list[str]:
    """The values of the first `Literal` inside a type (`tuple[Literal[...], ...]` included)."""
    if typing.get_origin(annotation) is Literal:
        return [str(choice) for choice in typing.get_args(annotation)]
    for argument in typing.get_args(annotation):
        if found := _choices(argument):
            return found
    return []


def _problem(detail: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> tuple[str | None, str]:
    """(the hyper-parameter, what is wrong) from the first error pydantic reports."""
    cause = (detail.get("ctx") or {}).get("error")
    key = str(detail["loc"][0]) if detail["loc"] else None
    if isinstance(cause, HyperParameterError):
        return cause.key or key, cause.problem
    if isinstance(cause, ValueError) and not isinstance(cause, _FlagGivenError):
        return key, str(cause)
    value = detail.get("input")
    field = fields.get(key or "")
    if detail["type"] == "literal_error" and field is not None:
        choices = _choices(field.annotation)
        hint = difflib.get_close_matches(str(value), choices, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return key, f"expected one of {', '.join(choices)}, got {value!r}{suggestion}"
    if detail["type"] == "too_short":
        return key, f"expected at least one value, got {value!r}"
    expected = _expected(field) if field is not None and len(detail["loc"]) == 1 else ""
    if not expected:
        # Optional counts and list items: their only number types are positive integers.
        kind = "int" if isinstance(cause, _FlagGivenError) else detail["type"].split("_")[0]
        expected = {
            "int": "a positive integer",
            "float": "a number",
            "bool": "true or false",
            "greater": "a positive integer",
        }.get(kind, detail["msg"].lower().removeprefix("input should be "))
    if len(detail["loc"]) > 1:
        return key, f"expected every item to be {expected}, got {value!r}"
    return key, f"expected {expected}, got {value!r}"
