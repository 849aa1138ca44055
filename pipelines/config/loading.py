"""Loading the run configuration: defaults < a YAML file < overrides; and writing it back out.

`load_config` applies, lowest precedence first:

1. the schema's defaults (`pipelines.config.schema`; the data set defaults to the catalog's
   default entry);
2. a YAML file whose sections match the schema (`data:`, `model:`, `training:`, `tracking:`,
   `prepare:`, `forecast:`; see `configs/weather-ltsf.yaml`);
3. overrides, as dotted keys (`training.epochs=3`, `model.hparams.units=64`) or as the flat
   names of `FLAT_PARAMETERS` (`epochs=3`, `model=gru`), which are also the command-line
   options and the MLproject parameters.

    config = load_config("configs/weather-ltsf.yaml", {"epochs": "3", "model.hparams.units": "64"})
    result = prepare.run(config.data)
    mlflow.log_params(flatten(config))              # logging happens at the edges, not here
    mlflow.log_text(dump_yaml(config), CONFIG_ARTIFACT)

Override text is read by the type of its field (`pipelines.settings.read_text`); model
hyper-parameters by their model's pydantic model (`models.registry`). An unknown key or a bad
value raises one `ConfigError` before any data is read or any model is built, naming the key,
where the value came from, the value, what was expected and, for a misspelt key, the closest
valid one:

    config key 'training.epoch' (from overrides) is unknown; did you mean 'training.epochs'?
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines.config.schema import FLAT_PARAMETERS, SECTIONS, RunConfig
from pipelines.settings import (
    ConfigError,
    bad_value,
    closest,
    format_utc_time,
    read_text,
    unknown_key,
)

CONFIG_ARTIFACT = "config.yaml"
"""The run artifact that holds the resolved configuration (`dump_yaml`), which every run logs."""
MAX_PARAM_LENGTH = 500
"""Longest value `flatten` returns (MLflow's historical limit for a parameter value)."""
MAPPING_FIELDS = frozenset({"source_parameters", "hparams"})
"""Fields whose entries are set one by one (`model.hparams.units=64`)."""
BENCHMARK_SECTION = "benchmark"
BENCHMARK_PARTS = ("per_model", "ablations")
"""A config file's `benchmark:` section: overrides that `benchmarks/ltsf.py` applies per model
and per `--ablate` variant; the entry points skip it."""

T = TypeVar("T")


def section_keys(section: str) -> list[str]:
    """The dotted keys of one section, in field order."""
    return [f"{section}.{name}" for name in SECTIONS[section].model_fields]


def valid_keys() -> list[str]:
    """Every dotted key (`data.dataset`, ..., `forecast.experiment_name`), in schema order."""
    return [key for section in SECTIONS for key in section_keys(section)]


# --------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """The run configuration: defaults, then a YAML file, then overrides.

    Args:
        path: a YAML file with some of the schema's sections; None or "" for none.
        overrides: dotted keys (`training.epochs`, `model.hparams.units`) or flat names
            (`FLAT_PARAMETERS`) to values; strings are read by the field's type.

    Returns:
        The checked, frozen configuration.

    Raises:
        ConfigError: the file cannot be read, or a key is unknown, or a value is bad.

    Example:
        >>> config = load_config(overrides={"epochs": "3", "training.learning_rate": "1e-2"})
        >>> training = config.training
        >>> training.epochs, training.learning_rate, training.batch_size
        (3, 0.01, 64)
    """
    if path is None or str(path) == "":
        return config_from_dict(None, overrides)
    return config_from_dict(_read_yaml(path), overrides, origin=str(path))


def _read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot read it: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML: {error}") from None


def config_from_dict(
    document: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    origin: str = "mapping",
) -> RunConfig:
    """The configuration from a nested mapping (as in the YAML file), then overrides.

    Args:
        document: `{section: {key: value}}`, e.g. `config_to_dict(config)` or a logged
            `config.yaml` read back; None for the defaults.
        overrides: as in `load_config`.
        origin: where `document` came from, for error messages.

    Raises:
        ConfigError: a key is unknown or a value is bad.
    """
    given: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    origins: dict[str, str] = {}
    _apply_document(given, origins, document, origin)
    _apply_overrides(given, origins, overrides or {})
    return _build(given, origins)


def apply_overrides(config: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """`config` with overrides applied (e.g. `{"model": "gru"}` for one child of a comparison).

    Raises:
        ConfigError: a key is unknown or a value is bad.
    """
    return config_from_dict(config_to_dict(config), overrides, origin="the given config")


def _apply_document(
    given: dict[str, dict[str, Any]], origins: dict[str, str], document: Any, origin: str
) -> None:
    if document is None:
        return
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"config {origin}: expected a mapping of sections ({', '.join(SECTIONS)}), "
            f"got {document!r}"
        )
    for section, values in document.items():
        if section == BENCHMARK_SECTION:
            _benchmark_overrides(values, origin)  # checked here, used by benchmarks/ltsf.py
            continue
        if section not in SECTIONS:
            raise _unknown_top_level_key(str(section), origin)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise bad_value(section, f"expected a mapping of its keys, got {values!r}", origin)
        names = set(SECTIONS[section].model_fields)
        for name, value in values.items():
            key = f"{section}.{name}"
            if name not in names:
                raise unknown_key(key, origin, valid_keys())
            _assign(given, origins, section, str(name), value, origin)


def benchmark_overrides(path: str | Path) -> dict[str, dict[str, dict[str, str]]]:
    """The `benchmark:` section of a config file: `{"per_model": {model: overrides},
    "ablations": {name: overrides}}`, each overrides a `{dotted key: text}` from a list of
    `KEY=VALUE` items. The app's entry points ignore the section; `benchmarks/ltsf.py` applies it.

    Raises:
        ConfigError: the file cannot be read, or the section is not of that form.
    """
    document = _read_yaml(path)
    values = document.get(BENCHMARK_SECTION) if isinstance(document, Mapping) else None
    return _benchmark_overrides(values, str(path))


def _benchmark_overrides(values: Any, origin: str) -> dict[str, dict[str, dict[str, str]]]:
    parts: dict[str, dict[str, dict[str, str]]] = {name: {} for name in BENCHMARK_PARTS}
    if values is None:
        return parts
    if not isinstance(values, Mapping) or not set(values) <= set(BENCHMARK_PARTS):
        raise bad_value(
            BENCHMARK_SECTION,
            f"expected a mapping with {' and/or '.join(BENCHMARK_PARTS)}, got {values!r}",
            origin,
        )
    for part, named in values.items():
        key = f"{BENCHMARK_SECTION}.{part}"
        if not isinstance(named, Mapping):
            raise bad_value(
                key, f"expected a mapping of names to KEY=VALUE lists, got {named!r}", origin
            )
        for name, items in named.items():
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise bad_value(
                    f"{key}.{name}", f"expected a list of KEY=VALUE items, got {items!r}", origin
                )
            try:
                parts[part][str(name)] = parse_assignments(items)
            except ConfigError as error:
                raise bad_value(f"{key}.{name}", str(error), origin) from None
    return parts


def _unknown_top_level_key(key: str, origin: str) -> ConfigError:
    if key in FLAT_PARAMETERS:
        match: str | None = FLAT_PARAMETERS[key]
    else:
        fields_named = [item for item in valid_keys() if item.split(".")[1] == key]
        match = fields_named[0] if len(fields_named) == 1 else closest(key, SECTIONS)
    if match is None:
        advice = f"expected sections {', '.join(SECTIONS)}"
    elif "." in match:
        section = match.split(".")[0]
        advice = f"did you mean {match!r} (under {section + ':'!r})?"
    else:
        advice = f"did you mean {match!r}?"
    return bad_value(key, f"is unknown; {advice}", origin)


def _apply_overrides(
    given: dict[str, dict[str, Any]], origins: dict[str, str], overrides: Mapping[str, Any]
) -> None:
    set_by_overrides: dict[str, tuple[str, Any]] = {}
    for raw_key, value in overrides.items():
        if not isinstance(raw_key, str):
            raise ConfigError(f"config override key {raw_key!r}: expected a string")
        key = raw_key.strip()
        dotted = FLAT_PARAMETERS.get(key, key)
        origin = f"parameter {key!r}" if dotted != key else "overrides"
        parts = dotted.split(".")
        section, name = parts[0], parts[1] if len(parts) > 1 else ""
        names = set(SECTIONS[section].model_fields) if section in SECTIONS else set()
        mapping_item = len(parts) == 3 and name in MAPPING_FIELDS and parts[2] != ""
        if name not in names or not (len(parts) == 2 or mapping_item):
            raise unknown_key(
                key,
                "overrides",
                [*valid_keys(), *FLAT_PARAMETERS],
                listing=f"dotted keys {', '.join(valid_keys())}; "
                f"or parameters {', '.join(FLAT_PARAMETERS)}",
            )
        earlier = set_by_overrides.get(dotted)
        if earlier is not None and earlier[1] != value:
            raise bad_value(
                dotted,
                f"given twice in the overrides, as {earlier[0]!r}={earlier[1]!r} and "
                f"{key!r}={value!r}",
            )
        set_by_overrides[dotted] = (key, value)
        if mapping_item:
            _assign(given, origins, section, name, {parts[2]: value}, origin)
        elif name in MAPPING_FIELDS and not isinstance(value, Mapping):
            raise bad_value(
                dotted, f"expected a mapping (or set '{dotted}.NAME' per entry), got {value!r}"
            )
        else:
            _assign(given, origins, section, name, value, origin)


def _assign(
    given: dict[str, dict[str, Any]],
    origins: dict[str, str],
    section: str,
    name: str,
    value: Any,
    origin: str = "overrides",
) -> None:
    key = f"{section}.{name}"
    if name not in MAPPING_FIELDS:
        given[section][name] = value
        origins[key] = origin
        return
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise bad_value(key, f"expected a mapping, got {value!r}", origin)
    items = given[section].setdefault(name, {})
    for item_name, item_value in value.items():
        if not isinstance(item_name, str):
            raise bad_value(key, f"expected names as keys, got {item_name!r}", origin)
        items[item_name] = item_value
        origins[f"{key}.{item_name}"] = origin


def _with_origin(origins: Mapping[str, str], make: Callable[[], T]) -> T:
    """Calls `make`; a ConfigError about a key says where that key's value came from."""
    try:
        return make()
    except ConfigError as error:
        if error.key in origins and error.problem is not None:
            raise bad_value(error.key, error.problem, origins[error.key]) from None
        raise


def _build(given: dict[str, dict[str, Any]], origins: dict[str, str]) -> RunConfig:
    sections: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        values: dict[str, Any] = {}
        for name, value in given[section].items():
            if name in MAPPING_FIELDS:
                values[name] = dict(value)
                continue
            key = f"{section}.{name}"
            annotation = cls.model_fields[name].annotation
            none_is_text = _none_is_text(section, name)
            values[name] = _with_origin(
                origins,
                functools.partial(read_text, key, value, annotation, none_is_text=none_is_text),
            )
        sections[section] = _with_origin(origins, functools.partial(cls, **values))
    return RunConfig(**sections)


def _none_is_text(section: str, name: str) -> bool:
    """Whether the field reads "none" as text (see `pipelines.settings.read_text`)."""
    extra = SECTIONS[section].model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("none_is_text"))


def parameters_given(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a command line actually set, as overrides for `load_config`.

    Drops None (an option not given) and "" (MLproject's placeholder default for "not given"),
    so that a YAML file's values stand; pass "none" to set an optional field to None.

    Example:
        >>> parameters_given({"epochs": "3", "horizon": "", "model": None})
        {'epochs': '3'}
    """
    return {
        key: value
        for key, value in parameters.items()
        if value is not None and not (isinstance(value, str) and value.strip() == "")
    }


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Reads `KEY=VALUE` command-line items (`training.epochs=3`) into overrides.

    Raises:
        ConfigError: an item has no `=` or no key.
    """
    overrides = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key.strip():
            raise ConfigError(
                f"config override {assignment!r}: expected KEY=VALUE, e.g. training.epochs=3"
            )
        overrides[key.strip()] = value
    return overrides


# --------------------------------------------------------------------------------------------
# Writing


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return format_utc_time(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def config_to_dict(config: RunConfig) -> dict[str, dict[str, Any]]:
    """`{section: {key: value}}` with lists for tuples: safe for JSON and YAML.

    `config_from_dict(config_to_dict(config)) == config`.
    """
    return {
        section: {
            name: _plain(getattr(getattr(config, section), name))
            for name in SECTIONS[section].model_fields
        }
        for section in SECTIONS
    }


def format_value(value: Any) -> str:
    """A value as override text ("none", "true", "a,b"), which `load_config` reads back."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(format_value(item) for item in value)
    if isinstance(value, Mapping):
        return yaml.safe_dump(_plain(value), default_flow_style=True).strip()
    return str(_plain(value))


def shorten(text: str, limit: int = MAX_PARAM_LENGTH) -> str:
    """`text` cut to `limit` characters, ending in "..." when cut (MLflow params and tags)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def flatten(config: RunConfig) -> dict[str, str]:
    """`{dotted key: value as text}` for `mlflow.log_params`.

    Values are written the way overrides are read ("none", "true", "a,b"), so
    `load_config(overrides=flatten(config)) == config` unless a value was cut: values longer
    than `MAX_PARAM_LENGTH` characters end in "..." (the YAML artifact keeps them whole).
    Mappings give one key per entry (`model.hparams.units`); an empty mapping gives none.
    """
    flat: dict[str, str] = {}
    for section, values in config_to_dict(config).items():
        for name, value in values.items():
            key = f"{section}.{name}"
            if name in MAPPING_FIELDS:
                flat.update({f"{key}.{item}": format_value(entry) for item, entry in value.items()})
            elif value is None and _none_is_text(section, name):
                flat[key] = ""  # "none" is a value of its own here; "" reads back as None
            else:
                flat[key] = format_value(value)
    return {key: shorten(value) for key, value in flat.items()}


def dump_yaml(config: RunConfig) -> str:
    """The configuration as YAML that `load_config` reads back to an equal config."""
    header = "# Resolved run configuration (pipelines/config); load it with load_config.\n"
    body = yaml.safe_dump(
        config_to_dict(config), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return header + body
