"""The base of every settings section: a frozen pydantic model, one error type, and the readers
that turn command-line text into typed values.

Every section of the run configuration (`pipelines.data.settings.DataConfig` and the sections
in `pipelines.config.schema`) derives from `SettingsSection`: unknown fields are rejected,
values are checked strictly by type when a section is built from Python or YAML values (`3` for
an integer, not `"3"` or `True`), and a bad value raises `ConfigError`, whose message names the
dotted key, what was expected and what was given:

    config key 'training.epochs': expected an integer >= 1, got 0

Text from a command line or an MLproject parameter is read by the field's type first
(`read_text`, pydantic's lax mode): "3" and "3.0" -> 3 (but "3.5" is an error) for integers,
"1e-3" -> 0.001 for numbers, true/false (also yes/no, on/off, 1/0) for flags; and, beside
pydantic, "a,b" -> ("a", "b") for lists and "" or "none" -> None where a field may be None.

This module depends on nothing in the project, so every stage can define its own section.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo

NONE_WORDS = frozenset({"", "none", "null", "~"})


class ConfigError(ValueError):
    """A configuration key that does not exist or a value that cannot be used.

    Attributes:
        key: the dotted key at fault (`training.epochs`), or None for a file-level problem.
        problem: what is wrong with the value ("expected ..., got ..."), or None.
    """

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.key = key
        self.problem = problem


def where(origin: str | None) -> str:
    """` (from ORIGIN)` for a message, or nothing."""
    return f" (from {origin})" if origin else ""


def bad_value(key: str, problem: str, origin: str | None = None) -> ConfigError:
    """The error of one key: `config key 'KEY' (from ORIGIN): PROBLEM`."""
    separator = " " if problem.startswith("is unknown") else ": "
    return ConfigError(
        f"config key {key!r}{where(origin)}{separator}{problem}", key=key, problem=problem
    )


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate spelt most like `name`, or None when none is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key(
    key: str, origin: str | None, candidates: Iterable[str], listing: str | None = None
) -> ConfigError:
    """`config key 'KEY' is unknown; did you mean ...?` (or the list of valid keys)."""
    candidates = list(candidates)
    match = closest(key, candidates)
    if match is not None:
        advice = f"did you mean {match!r}?"
    else:
        advice = f"valid: {listing or ', '.join(candidates)}"
    return bad_value(key, f"is unknown; {advice}", origin)


def require(condition: bool, key: str, value: Any, expected: str) -> None:
    """Raises `expected EXPECTED, got VALUE` for `key` unless `condition`."""
    if not condition:
        raise bad_value(key, f"expected {expected}, got {value!r}")


def require_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    """Raises, with the closest choice, unless `value` is one of `choices`."""
    choices = list(choices)
    if value in choices:
        return
    match = closest(str(value), choices)
    hint = f"; did you mean {match!r}?" if match else ""
    raise bad_value(key, f"expected one of {', '.join(choices)}, got {value!r}{hint}")


# --------------------------------------------------------------------------------------------
# Times

TIME_WORDS = ("now", "today")
"""`now`: the current time (UTC, to the second); `today`: midnight UTC of the current day. Read
once, when the setting is read, so a run's logged configuration holds the time it used."""
_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([T ].*)?$")
TIME_EXAMPLE = "an ISO 8601 time such as 2018-02-07 or 2018-02-07T16:00:00Z, or now or today"


def parse_utc_time(value: Any, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """A time as a UTC timestamp: the one reading of every date setting.

    Args:
        value: ISO 8601 text (a date first; naive is read as UTC, an offset is converted),
            `now` or `today` (see `TIME_WORDS`), or a date or datetime (from YAML).
        now: the current time, for tests; default the clock's.

    Raises:
        ValueError: anything else ("expected ..., got ..."); paths, numbers and words such as
            "yesterday" included.

    Example:
        >>> parse_utc_time("2018-02-07T17:00+01:00")
        Timestamp('2018-02-07 16:00:00+0000', tz='UTC')
    """
    if isinstance(value, datetime.datetime | datetime.date) and not isinstance(value, bool):
        parsed = pd.Timestamp(value)
    elif isinstance(value, str):
        text = value.strip()
        word = text.lower()
        if word in TIME_WORDS:
            clock = pd.Timestamp.now(tz="UTC") if now is None else now
            return (clock.normalize() if word == "today" else clock.floor("s")).as_unit("ns")
        if not _ISO_DATE.match(text):
            raise ValueError(f"expected {TIME_EXAMPLE}, got {value!r}")
        try:
            parsed = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            raise ValueError(f"expected {TIME_EXAMPLE}, got {value!r}") from None
    else:
        raise ValueError(f"expected {TIME_EXAMPLE}, got {value!r}")
    if pd.isna(parsed):
        raise ValueError(f"expected {TIME_EXAMPLE}, got {value!r}")
    parsed = parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")
    try:
        return parsed.as_unit("ns")
    except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise ValueError(
            f"expected a time between {pd.Timestamp.min.ceil('s')} and "
            f"{pd.Timestamp.max.floor('s')}, got {value!r}"
        ) from None


def format_utc_time(value: datetime.datetime) -> str:
    """A UTC time as canonical ISO 8601 text (`2018-02-07T16:00:00Z`), which reads back equal.

    Example:
        >>> format_utc_time(parse_utc_time("2018-02-07T17:00+01:00").to_pydatetime())
        '2018-02-07T16:00:00Z'
    """
    text = value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def _utc_datetime(value: Any) -> datetime.datetime:
    return parse_utc_time(value).to_pydatetime(warn=False)


UtcTime = Annotated[datetime.datetime, BeforeValidator(_utc_datetime)]
"""A date setting: read by `parse_utc_time`, held as a timezone-aware UTC datetime."""


# --------------------------------------------------------------------------------------------
# Types and text


def split_optional(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = typing.get_args(annotation)
        others = [argument for argument in arguments if argument is not type(None)]
        if len(others) != 1:
            raise TypeError(f"unsupported settings annotation {annotation!r}")
        return others[0], len(others) < len(arguments)
    return annotation, False


def _is_time(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is datetime.datetime


def _choices(annotation: Any) -> tuple[str, ...] | None:
    """The values of a `Literal[...]` type, else None."""
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


def _bounds(metadata: Iterable[Any]) -> str:
    """A field's numeric constraints as text (" >= 1", " in [0, 1)", " > 0")."""
    limits = {
        kind: getattr(item, kind)
        for item in metadata
        for kind in ("ge", "gt", "le", "lt")
        if getattr(item, kind, None) is not None
    }
    low = ("[", limits["ge"]) if "ge" in limits else ("(", limits["gt"]) if "gt" in limits else None
    high = (
        ("]", limits["le"]) if "le" in limits else (")", limits["lt"]) if "lt" in limits else None
    )
    if low and high:
        return f" in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
    if low:
        return f" {'>=' if low[0] == '[' else '>'} {_number(low[1])}"
    if high:
        return f" {'<=' if high[0] == ']' else '<'} {_number(high[1])}"
    return ""


def _number(value: float) -> str:
    """A bound as written: integers whole (4294967295, not 4.29497e+09), others short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def describe_field(field: FieldInfo) -> str:
    """What a field's values look like, constraints included ("an integer >= 1, or none")."""
    text = describe(field.annotation)
    if any(getattr(item, "allow_inf_nan", None) is False for item in field.metadata):
        text = text.replace("a number", "a finite number")
    bounds = _bounds(field.metadata)
    if not bounds:
        return text
    if text.endswith(", or none"):
        return text.removesuffix(", or none") + bounds + ", or none"
    return text + bounds


def describe(annotation: Any) -> str:
    """What a value of this type looks like, for messages ("an integer, or none")."""
    base, optional = split_optional(annotation)
    choices = _choices(base)
    if choices is not None:
        text = "one of " + ", ".join(str(choice) for choice in choices)
    elif base is bool:
        text = "true or false"
    elif base is int:
        text = "an integer"
    elif base is float:
        text = "a number"
    elif base is str:
        text = "a non-empty string"
    elif _is_time(base):
        text = TIME_EXAMPLE
    elif typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        text = "a list of numbers" if item is float else "a list of names"
        text = "a list of ISO 8601 times (or now, today)" if _is_time(item) else text
        text += " (or one comma-separated string)"
    elif typing.get_origin(base) is dict or base is dict:
        text = "a mapping"
    elif isinstance(base, type) and issubclass(base, BaseModel):
        text = f"a {base.__name__} (use config_from_dict for a mapping)"
    else:  # pragma: no cover - every field's annotation is one of the above
        text = str(base)
    return f"{text}, or none" if optional else text


_LAX_READERS = {kind: TypeAdapter(kind) for kind in (bool, int, float)}
"""Pydantic's own lax reading of text as a flag ("yes", "off", "1"), an integer ("3", "3.0")
or a number ("1e-3"); the sections themselves stay strict."""


def _read_scalar(kind: Any, text: str) -> Any:
    return _LAX_READERS[kind].validate_python(text.strip(), strict=False)


def read_text(key: str, value: Any, annotation: Any, *, none_is_text: bool = False) -> Any:
    """Command-line text read by the field's type; other values are returned unchanged.

    Args:
        key: the dotted key, for messages.
        value: the value; only text is read.
        annotation: the field's type.
        none_is_text: keep "none" as text, for a field where it is a value of its own (a
            series column "none" means one series, while None means the catalog's column).

    Raises:
        ConfigError: text that does not read as the type.
    """
    if not isinstance(value, str):
        return value
    base, optional = split_optional(annotation)
    if none_is_text and value.strip().lower() == "none":
        return value.strip().lower()
    if optional and value.strip().lower() in NONE_WORDS:
        return None
    try:
        if base in _LAX_READERS:
            return _read_scalar(base, value)
        if typing.get_origin(base) is tuple:
            items = [part.strip() for part in value.split(",") if part.strip()]
            if typing.get_args(base)[0] is float:
                return tuple(_read_scalar(float, item) for item in items)
            return tuple(items) if items or not optional else None
    except ValidationError:
        raise bad_value(key, f"expected {describe(annotation)}, got {value!r}") from None
    return value


# --------------------------------------------------------------------------------------------
# The base section


class SettingsSection(BaseModel):
    """A frozen, strictly typed settings section; errors are `ConfigError`s naming the key.

    Subclasses set `section` (the key prefix, e.g. "training") and may check values across
    fields in a `model_validator(mode="after")` that raises `ConfigError` (e.g. through
    `require`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    section: typing.ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise self.config_error(error, values) from None

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: Any) -> Any:
        """Lists become tuples and YAML dates become ISO text; strings are kept strict."""
        annotation = cls.model_fields[info.field_name].annotation
        base, optional = split_optional(annotation)
        if typing.get_origin(base) is tuple and isinstance(value, list | tuple):
            # An empty list where none is allowed means "not set" (the catalog's value).
            return None if optional and not value else tuple(value)
        if base is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if base is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if base is str and isinstance(value, datetime.date):
            return value.isoformat()
        if base is str and isinstance(value, str) and not value.strip():
            raise ValueError("empty")
        return value

    @classmethod
    def config_error(cls, error: ValidationError, values: Mapping[str, Any]) -> ConfigError:
        """The first problem of a pydantic error, as a `ConfigError` naming the dotted key."""
        first = error.errors(include_url=False)[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            return cause
        location = [str(part) for part in first["loc"]]
        if isinstance(cause, ValueError) and str(cause).startswith("expected") and location:
            return bad_value(f"{cls.section}.{location[0]}", str(cause))
        location = [str(part) for part in first["loc"]]
        name = location[0] if location else ""
        key = f"{cls.section}.{name}" if name else cls.section
        if first["type"] == "extra_forbidden":
            return unknown_key(key, None, [f"{cls.section}.{field}" for field in cls.model_fields])
        if name in cls.model_fields:
            field = cls.model_fields[name]
            value = values.get(name, first.get("input"))
            choices = _choices(split_optional(field.annotation)[0])
            hint = ""
            if choices is not None and isinstance(value, str):
                match = closest(value, [str(choice) for choice in choices])
                hint = f"; did you mean {match!r}?" if match else ""
            return bad_value(key, f"expected {describe_field(field)}, got {value!r}{hint}")
        return bad_value(key, str(first["msg"]))
