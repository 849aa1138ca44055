"""Run configuration: one typed source of defaults, overridable by a YAML file and the command line.

The dataclasses below hold every setting of a training run with its default. `load_config`
applies, lowest precedence first:

1. the dataclass defaults (the data set defaults to the catalog's default entry);
2. a YAML file whose sections match the dataclasses (`data:`, `model:`, `training:`,
   `tracking:`; see `configs/weather-ltsf.yaml`);
3. overrides, as dotted keys (`training.epochs=3`, `model.hparams.units=64`) or as the flat
   MLproject parameter names in `FLAT_PARAMETERS` (`epochs=3`, `model=gru`).

    config = load_config("configs/weather-ltsf.yaml", {"epochs": "3", "model.hparams.units": "64"})
    result = prepare.run(config.data.to_prepare_config())
    mlflow.log_params(flatten(config))              # logging happens at the edges, not here
    mlflow.log_text(dump_yaml(config), "config.yaml")

Strings, which is what command lines and MLflow parameters carry, are read by the type of their
field: "3" -> 3 (and "3.0" -> 3, but "3.5" is an error) for integers, "1e-3" -> 0.001 for
numbers, "true"/"false" (also yes/no, 1/0, on/off) for flags, "a,b" -> ("a", "b") for lists,
and "" or "none" -> None where a field may be None. Model hyper-parameters are read by the type
of their default in the model zoo and then checked by `models.zoo.resolve_hyperparameters`.

An unknown key or a bad value raises one `ConfigError` before any data is read or any model is
built. Its message names the key, where the value came from, the value, what was expected and,
for a misspelt key, the closest valid one:

    config key 'training.epoch' (from overrides) is unknown; did you mean 'training.epochs'?

Nothing happens on import: the catalog is read (once per process) when the first config is
made, and Keras is imported by the first check of model settings.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines.catalog import DatasetEntry, load_catalog
from pipelines.prepare import PrepareConfig
from pipelines.split import SplitSpec
from pipelines.validate import DataValidationError

__all__ = [
    "DEFAULT_COMPARE_MODELS",
    "DUPLICATE_POLICIES",
    "FILL_METHODS",
    "FLAT_PARAMETERS",
    "LOSSES",
    "MAX_PARAM_LENGTH",
    "SCALERS",
    "SOURCE_PARAMETER_TYPES",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrackingConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "dump_yaml",
    "flatten",
    "load_config",
    "parameters_given",
    "parse_assignments",
    "valid_keys",
]

SCALERS = ("standard", "minmax")
FILL_METHODS = ("time", "ffill")
DUPLICATE_POLICIES = ("error", "first", "last", "mean")
LOSSES = ("mse", "mae", "huber", "log_cosh")
"""Keras loss names that `training.loss` accepts."""
DEFAULT_COMPARE_MODELS = ("last", "repeat", "linear", "lstm", "gru", "peephole")
MAX_PARAM_LENGTH = 500
"""Longest value `flatten` returns (MLflow's historical limit for a parameter value)."""

SOURCE_PARAMETER_TYPES: dict[str, Any] = {
    "tickers": tuple[str, ...],
    "start": str,
    "end": str,
    "period": str,
    "refresh": bool,
}
"""Parameters of the yfinance source (`data.source_parameters.<name>`) and their types."""

FLAT_PARAMETERS: dict[str, str] = {
    "dataset": "data.dataset",
    "source": "data.source",
    "targets": "data.targets",
    "input_width": "data.input_width",
    "horizon": "data.horizon",
    "split": "data.split",
    "model": "model.name",
    "models": "model.models",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "patience": "training.patience",
    "seed": "training.seed",
    "experiment_name": "tracking.experiment_name",
    "registered_model_name": "tracking.registered_model_name",
    "run_name": "tracking.run_name",
}
"""MLproject parameter name -> the dotted config key it sets."""

_NONE_WORDS = frozenset({"", "none", "null", "~"})
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_MAPPING_FIELDS = frozenset({"source_parameters", "hparams"})
_MAX_SEED = 2**32 - 1

T = TypeVar("T")


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


def _where(origin: str | None) -> str:
    return f" (from {origin})" if origin else ""


def _bad_value(key: str, problem: str, origin: str | None = None) -> ConfigError:
    separator = " " if problem.startswith("is unknown") else ": "
    return ConfigError(
        f"config key {key!r}{_where(origin)}{separator}{problem}", key=key, problem=problem
    )


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key(
    key: str, origin: str | None, candidates: Iterable[str], listing: str | None = None
) -> ConfigError:
    candidates = list(candidates)
    match = _closest(key, candidates)
    if match is not None:
        advice = f"did you mean {match!r}?"
    else:
        advice = f"valid: {listing or ', '.join(candidates)}"
    return _bad_value(key, f"is unknown; {advice}", origin)


# --------------------------------------------------------------------------------------------
# Reading and checking values by their annotated type


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = typing.get_args(annotation)
        others = [argument for argument in arguments if argument is not type(None)]
        if len(others) != 1:
            raise TypeError(f"unsupported config annotation {annotation!r}")
        return others[0], len(others) < len(arguments)
    return annotation, False


def _describe(annotation: Any) -> str:
    base, optional = _split_optional(annotation)
    if base is bool:
        text = "true or false"
    elif base is int:
        text = "an integer"
    elif base is float:
        text = "a number"
    elif base is str:
        text = "a non-empty string"
    elif typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        text = "a list of numbers" if item is float else "a list of names"
        text += " (or one comma-separated string)"
    elif typing.get_origin(base) is dict or base is dict:
        text = "a mapping"
    else:  # pragma: no cover - every field's annotation is one of the above
        text = str(base)
    return f"{text}, or none" if optional else text


def _read_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            value = float(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError


def _read_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError


def _read_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError


def _read_str(value: Any) -> str:
    if isinstance(value, datetime.date):  # YAML reads an unquoted 2020-01-01 as a date
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError


def _coerce(key: str, value: Any, annotation: Any, *, read_strings: bool) -> Any:
    """`value` checked against `annotation`; strings are read by the type when `read_strings`.

    Raises:
        ConfigError: the value does not fit the type.
    """
    base, optional = _split_optional(annotation)
    if (
        read_strings
        and optional
        and isinstance(value, str)
        and value.strip().lower() in _NONE_WORDS
    ):
        value = None
    if value is None:
        if optional:
            return None
        raise _bad_value(key, f"expected {_describe(annotation)}, got None")
    try:
        if base is bool:
            return _read_bool(value) if read_strings else _require_type(value, bool)
        if base is int:
            if not read_strings and isinstance(value, str):
                raise ValueError
            return _read_int(value)
        if base is float:
            if not read_strings and isinstance(value, str):
                raise ValueError
            return _read_float(value)
        if base is str:
            return _read_str(value)
        if typing.get_origin(base) is tuple:
            return _coerce_tuple(value, typing.get_args(base)[0], optional, read_strings)
        if typing.get_origin(base) is dict or base is dict:
            if isinstance(value, Mapping):
                return dict(value)
            raise ValueError
    except ValueError:
        pass
    raise _bad_value(key, f"expected {_describe(annotation)}, got {value!r}")


def _require_type(value: Any, expected: type) -> Any:
    if not isinstance(value, expected):
        raise ValueError
    return value


def _coerce_tuple(
    value: Any, item_type: type, optional: bool, read_strings: bool
) -> tuple[Any, ...] | None:
    if isinstance(value, str):
        if not read_strings:
            raise ValueError
        items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError
    if item_type is float:
        result: tuple[Any, ...] = tuple(_read_float(item) for item in items)
    else:
        result = tuple(_read_str(item) for item in items)
    if not result and optional:
        return None
    return result


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_fields(instance: Any, section: str) -> None:
    """Checks and normalises every field of a frozen section dataclass in place."""
    hints = _field_types(type(instance))
    for item in dataclasses.fields(instance):
        value = _coerce(
            f"{section}.{item.name}",
            getattr(instance, item.name),
            hints[item.name],
            read_strings=False,
        )
        object.__setattr__(instance, item.name, value)


def _require(condition: bool, key: str, value: Any, expected: str) -> None:
    if not condition:
        raise _bad_value(key, f"expected {expected}, got {value!r}")


def _require_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value in choices:
        return
    match = _closest(str(value), choices)
    hint = f"; did you mean {match!r}?" if match else ""
    raise _bad_value(key, f"expected one of {', '.join(choices)}, got {value!r}{hint}")


@functools.cache
def _catalog() -> tuple[dict[str, DatasetEntry], str]:
    return load_catalog()


def _default_dataset() -> str:
    return _catalog()[1]


def _zoo() -> types.ModuleType:
    # Imported on first use: it imports Keras, which takes seconds and is not needed to import
    # this module.
    from models import zoo

    return zoo


# --------------------------------------------------------------------------------------------
# The configuration


@dataclass(frozen=True)
class DataConfig:
    """Where the data come from and how they are cut into windows (see `pipelines.prepare`).

    None means "the catalog entry's value" for every optional field. A `source` with a
    `dataset` replaces the entry's file; a `source` outside the catalog needs `dataset` none,
    `timestamp_column` and `targets`.

    Attributes:
        dataset: catalog entry (`data/catalog.yaml`); defaults to the catalog's default.
        source: a CSV or Parquet file to read instead of the entry's location.
        targets: columns to forecast.
        input_width: steps of history per window.
        horizon: steps to forecast.
        split: train,validation,test fractions, or validation_start,test_start dates.
        scaler: "standard" or "minmax", fitted on the training part only.
        per_series_scaling: one scaler per series (else one over all series).
        calendar_features: add sine/cosine time-of-day and day-of-year features.
        wind_vector: replace wind speed and direction by a wind vector.
        log_returns: add log returns of the price columns.
        stride: steps between window starts.
        timestamp_column, timestamp_format, series_column, value_columns, frequency,
        sentinels, max_gap, fill_method, duplicates: reading and cleaning options that replace
            the catalog entry's (see the header of `data/catalog.yaml`).
        source_parameters: yfinance source parameters (`SOURCE_PARAMETER_TYPES`).
    """

    dataset: str | None = field(default_factory=_default_dataset)
    source: str | None = None
    targets: tuple[str, ...] | None = None
    input_width: int | None = None
    horizon: int | None = None
    split: str = "0.7,0.1,0.2"
    scaler: str = "standard"
    per_series_scaling: bool = True
    calendar_features: bool = False
    wind_vector: bool = False
    log_returns: bool = False
    stride: int = 1
    timestamp_column: str | None = None
    timestamp_format: str | None = None
    series_column: str | None = None
    value_columns: tuple[str, ...] | None = None
    frequency: str | None = None
    sentinels: tuple[float, ...] | None = None
    max_gap: int | None = None
    fill_method: str | None = None
    duplicates: str | None = None
    source_parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fields(self, "data")
        entries, default = _catalog()
        if self.dataset is None and self.source is None:
            object.__setattr__(self, "dataset", default)
        entry = None
        if self.dataset is not None:
            _require_choice("data.dataset", self.dataset, entries)
            entry = entries[self.dataset]
        elif self.timestamp_column is None or not self.targets:
            raise _bad_value(
                "data.source",
                "a file outside the catalog (data.dataset none) also needs "
                f"data.timestamp_column and data.targets, got source {self.source!r}",
            )
        for name in ("input_width", "horizon"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"data.{name}", value, "an integer >= 1, or none")
        _require(self.stride >= 1, "data.stride", self.stride, "an integer >= 1")
        _require(
            self.max_gap is None or self.max_gap >= 0,
            "data.max_gap",
            self.max_gap,
            "an integer >= 0, or none",
        )
        try:
            SplitSpec.parse(self.split)
        except DataValidationError as error:
            raise _bad_value("data.split", str(error).removeprefix("parameter split: ")) from None
        _require_choice("data.scaler", self.scaler, SCALERS)
        if self.fill_method is not None:
            _require_choice("data.fill_method", self.fill_method, FILL_METHODS)
        if self.duplicates is not None:
            _require_choice("data.duplicates", self.duplicates, DUPLICATE_POLICIES)
        if entry is not None:
            self._check_entry_features(entry)
        self._check_source_parameters(entry)

    def _check_entry_features(self, entry: DatasetEntry) -> None:
        if self.wind_vector and not entry.wind:
            raise _bad_value(
                "data.wind_vector",
                f"expected false: dataset {entry.name!r} names no wind columns, got True",
            )
        if self.log_returns and not entry.price_columns:
            raise _bad_value(
                "data.log_returns",
                f"expected false: dataset {entry.name!r} names no price columns, got True",
            )

    def _check_source_parameters(self, entry: DatasetEntry | None) -> None:
        parameters = {}
        for name, value in self.source_parameters.items():
            key = f"data.source_parameters.{name}"
            if name not in SOURCE_PARAMETER_TYPES:
                raise _unknown_key(
                    key,
                    None,
                    [f"data.source_parameters.{known}" for known in SOURCE_PARAMETER_TYPES],
                )
            parameters[name] = _coerce(key, value, SOURCE_PARAMETER_TYPES[name], read_strings=False)
        if parameters and (entry is None or entry.source.get("kind") != "yfinance"):
            name = entry.name if entry else None
            raise _bad_value(
                "data.source_parameters",
                "expected none: only a yfinance data set takes source parameters, "
                f"dataset {name!r} does not; got {parameters!r}",
            )
        if "period" in parameters:
            from pipelines.sources.yahoo import VALID_PERIODS

            _require_choice("data.source_parameters.period", parameters["period"], VALID_PERIODS)
        object.__setattr__(self, "source_parameters", parameters)

    def to_prepare_config(self) -> PrepareConfig:
        """The settings of `pipelines.prepare` (no output folder; set one with
        `dataclasses.replace(prepare_config, output=...)`).

        Example:
            >>> DataConfig(dataset="weather-ltsf", horizon=48).to_prepare_config().horizon
            48
        """
        values = {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name != "source_parameters"
        }
        return PrepareConfig(**values, source_parameters=dict(self.source_parameters))


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train (`name`) or compare (`models`), and its hyper-parameters.

    `hparams` holds only the hyper-parameters that were set, checked against `name` by
    `models.zoo.resolve_hyperparameters` (defaults come from the zoo; see `hparams_for`).
    Treat it as read-only.

    Attributes:
        name: the model `train` fits (one of `models.zoo.MODEL_NAMES`).
        hparams: hyper-parameters of `name`; when comparing, each model also takes the ones it
            accepts (so `normalization: revin` reaches every model with a normalization).
        models: the models `compare` fits, baselines included.
    """

    name: str = "lstm"
    hparams: dict[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = DEFAULT_COMPARE_MODELS

    def __post_init__(self) -> None:
        _check_fields(self, "model")
        zoo = _zoo()
        _require_choice("model.name", self.name, zoo.MODEL_NAMES)
        _require(bool(self.models), "model.models", self.models, "at least one model name")
        for model in self.models:
            _require_choice("model.models", model, zoo.MODEL_NAMES)
        repeated = sorted({model for model in self.models if self.models.count(model) > 1})
        _require(not repeated, "model.models", self.models, f"each model once ({repeated} repeat)")
        for key, value in self.hparams.items():
            if not isinstance(key, str):
                raise _bad_value("model.hparams", f"expected names as keys, got {key!r}")
            try:
                zoo.resolve_hyperparameters(self.name, **{key: value})
            except ValueError as error:
                raise _bad_value(f"model.hparams.{key}", str(error)) from None
        resolved = zoo.resolve_hyperparameters(self.name, **self.hparams)
        object.__setattr__(self, "hparams", {key: resolved[key] for key in self.hparams})

    def hparams_for(self, model: str | None = None) -> dict[str, Any]:
        """Every hyper-parameter of `model`: the config's where the model accepts them, else
        the zoo's defaults.

        Args:
            model: a model name; default `name`.

        Returns:
            `{hyper-parameter: value}` for `models.zoo.build_model(model, shape, **...)`.

        Raises:
            ConfigError: a shared hyper-parameter has a value this model rejects.
        """
        model = self.name if model is None else model
        zoo = _zoo()
        _require_choice("model.models", model, zoo.MODEL_NAMES)
        accepted = zoo.hyperparameters(model)
        given = {key: value for key, value in self.hparams.items() if key in accepted}
        try:
            return zoo.resolve_hyperparameters(model, **given)
        except ValueError as error:
            raise _bad_value("model.hparams", str(error)) from None


@dataclass(frozen=True)
class TrainingConfig:
    """How models are fitted.

    Attributes:
        epochs: most passes over the training windows.
        batch_size: windows per gradient step.
        learning_rate: Adam's learning rate.
        patience: epochs without a better validation loss before early stopping (0 stops at
            the first epoch that does not improve); the best weights are restored.
        seed: seed of Python, NumPy and Keras.
        loss: Keras loss name (`LOSSES`).
    """

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 5
    seed: int = 42
    loss: str = "mse"

    def __post_init__(self) -> None:
        _check_fields(self, "training")
        _require(self.epochs >= 1, "training.epochs", self.epochs, "an integer >= 1")
        _require(self.batch_size >= 1, "training.batch_size", self.batch_size, "an integer >= 1")
        _require(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            "training.learning_rate",
            self.learning_rate,
            "a finite number > 0",
        )
        _require(self.patience >= 0, "training.patience", self.patience, "an integer >= 0")
        _require(
            0 <= self.seed <= _MAX_SEED,
            "training.seed",
            self.seed,
            f"an integer in [0, {_MAX_SEED}]",
        )
        _require_choice("training.loss", self.loss, LOSSES)


@dataclass(frozen=True)
class TrackingConfig:
    """Where runs and models are recorded in MLflow (the tracking URI comes from
    `MLFLOW_TRACKING_URI`, never from here).

    Attributes:
        experiment_name: MLflow experiment of the runs.
        registered_model_name: registered model that gets a version per trained model.
        run_name: name of the run; None lets MLflow choose.
    """

    experiment_name: str = "forecaster"
    registered_model_name: str = "forecaster"
    run_name: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "tracking")


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run, in four sections.

    Example:
        >>> config = RunConfig(training=TrainingConfig(epochs=3))
        >>> config.training.epochs, config.model.name
        (3, 'lstm')
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise _bad_value(
                    name, f"expected a {cls.__name__} (use config_from_dict), got {value!r}"
                )


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "tracking": TrackingConfig,
}


def _section_keys(section: str) -> list[str]:
    return [f"{section}.{item.name}" for item in dataclasses.fields(_SECTIONS[section])]


def valid_keys() -> list[str]:
    """Every dotted key (`data.dataset`, ..., `model.hparams`), in section and field order."""
    return [key for section in _SECTIONS for key in _section_keys(section)]


# --------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """The run configuration: defaults, then a YAML file, then overrides.

    Args:
        path: a YAML file with sections `data`, `model`, `training`, `tracking` (any may be
            left out); None or "" for none.
        overrides: dotted keys (`training.epochs`, `model.hparams.units`) or flat MLproject
            names (`FLAT_PARAMETERS`) to values; strings are read by the field's type.

    Returns:
        The checked, frozen configuration.

    Raises:
        ConfigError: the file cannot be read, or a key is unknown, or a value is bad.

    Example:
        >>> load_config(overrides={"epochs": "3", "training.learning_rate": "1e-2"}).training
        TrainingConfig(epochs=3, batch_size=64, learning_rate=0.01, patience=5, seed=42, loss='mse')
    """
    document: Any = None
    origin = None
    if path is not None and str(path) != "":
        origin = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"config file {origin}: cannot read it: {error}") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {origin}: not valid YAML: {error}") from None
    return config_from_dict(document, overrides, origin=origin or "mapping")


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

    Returns:
        The checked, frozen configuration.

    Raises:
        ConfigError: a key is unknown or a value is bad.
    """
    given: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
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
            f"config {origin}: expected a mapping of sections ({', '.join(_SECTIONS)}), "
            f"got {document!r}"
        )
    for section, values in document.items():
        if section not in _SECTIONS:
            raise _unknown_top_level_key(str(section), origin)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise _bad_value(section, f"expected a mapping of its keys, got {values!r}", origin)
        names = {item.name for item in dataclasses.fields(_SECTIONS[section])}
        for name, value in values.items():
            key = f"{section}.{name}"
            if name not in names:
                raise _unknown_key(key, origin, valid_keys())
            _assign(given, origins, section, str(name), value, origin)


def _unknown_top_level_key(key: str, origin: str) -> ConfigError:
    if key in FLAT_PARAMETERS:
        match = FLAT_PARAMETERS[key]
    else:
        fields_named = [item for item in valid_keys() if item.split(".")[1] == key]
        match = fields_named[0] if len(fields_named) == 1 else _closest(key, _SECTIONS)
    if match is None:
        advice = f"expected sections {', '.join(_SECTIONS)}"
    elif "." in match:
        section = match.split(".")[0]
        advice = f"did you mean {match!r} (under {section + ':'!r})?"
    else:
        advice = f"did you mean {match!r}?"
    return _bad_value(key, f"is unknown; {advice}", origin)


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
        names = (
            {item.name for item in dataclasses.fields(_SECTIONS[section])}
            if section in _SECTIONS
            else set()
        )
        mapping_item = len(parts) == 3 and name in _MAPPING_FIELDS and parts[2] != ""
        if name not in names or not (len(parts) == 2 or mapping_item):
            raise _unknown_key(
                key,
                "overrides",
                [*valid_keys(), *FLAT_PARAMETERS],
                listing=f"dotted keys {', '.join(valid_keys())}; "
                f"or parameters {', '.join(FLAT_PARAMETERS)}",
            )
        earlier = set_by_overrides.get(dotted)
        if earlier is not None and earlier[1] != value:
            raise _bad_value(
                dotted,
                f"given twice in the overrides, as {earlier[0]!r}={earlier[1]!r} and "
                f"{key!r}={value!r}",
            )
        set_by_overrides[dotted] = (key, value)
        if mapping_item:
            _assign(given, origins, section, name, {parts[2]: value}, origin)
        elif name in _MAPPING_FIELDS and not isinstance(value, Mapping):
            raise _bad_value(
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
    origin: str,
) -> None:
    key = f"{section}.{name}"
    if name not in _MAPPING_FIELDS:
        given[section][name] = value
        origins[key] = origin
        return
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _bad_value(key, f"expected a mapping, got {value!r}", origin)
    items = given[section].setdefault(name, {})
    for item_name, item_value in value.items():
        if not isinstance(item_name, str):
            raise _bad_value(key, f"expected names as keys, got {item_name!r}", origin)
        items[item_name] = item_value
        origins[f"{key}.{item_name}"] = origin


def _with_origin(origins: Mapping[str, str], make: Callable[[], T]) -> T:
    """Calls `make`; a ConfigError about a key says where that key's value came from."""
    try:
        return make()
    except ConfigError as error:
        if error.key in origins and error.problem is not None:
            raise _bad_value(error.key, error.problem, origins[error.key]) from None
        raise


def _build(given: dict[str, dict[str, Any]], origins: dict[str, str]) -> RunConfig:
    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        hints = _field_types(cls)
        values: dict[str, Any] = {}
        for name, value in given[section].items():
            key = f"{section}.{name}"
            if name in _MAPPING_FIELDS:
                values[name] = dict(value)
            else:
                values[name] = _with_origin(
                    origins,
                    functools.partial(_coerce, key, value, hints[name], read_strings=True),
                )
        if section == "data" and "source_parameters" in values:
            values["source_parameters"] = _with_origin(
                origins, functools.partial(_read_source_parameters, values["source_parameters"])
            )
        if section == "model" and "hparams" in values:
            # The hyper-parameters are read for the final model name, so check it first.
            name = values.get("name", ModelConfig.name)
            model_names = _zoo().MODEL_NAMES
            _with_origin(
                origins, functools.partial(_require_choice, "model.name", name, model_names)
            )
            values["hparams"] = _read_hparams(name, values["hparams"])
        sections[section] = _with_origin(origins, functools.partial(cls, **values))
    return RunConfig(**sections)


def _read_source_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _coerce(
            f"data.source_parameters.{name}", value, SOURCE_PARAMETER_TYPES[name], read_strings=True
        )
        if name in SOURCE_PARAMETER_TYPES and isinstance(value, str)
        else value
        for name, value in parameters.items()
    }


def _read_hparams(model: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """String values read by the type of the zoo's default; what does not read is left for the
    zoo to reject with its own message."""
    known = _zoo().hyperparameters(model)
    return {
        name: _read_hparam(value, known[name].default) if name in known else value
        for name, value in hparams.items()
    }


def _read_hparam(value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    readers: list[Callable[[Any], Any]]
    if isinstance(default, bool):
        readers = [_read_bool]
    elif isinstance(default, int):
        readers = [_read_int]
    elif isinstance(default, float):
        readers = [_read_float]
    elif default is None:
        if value.strip().lower() in _NONE_WORDS:
            return None
        readers = [_read_int, _read_float]
    else:  # strings and tuples: the zoo reads them (tuples from "a,b")
        readers = []
    for reader in readers:
        try:
            return reader(value)
        except ValueError:
            continue
    return value


def parameters_given(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a command line actually set, as overrides for `load_config`.

    Drops None (an argparse option not given) and "" (MLproject's placeholder default for "not
    given"), so that a YAML file's values stand; pass "none" to set an optional field to None.

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
            item.name: _plain(getattr(getattr(config, section), item.name))
            for item in dataclasses.fields(_SECTIONS[section])
        }
        for section in _SECTIONS
    }


def _format(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(_format(item) for item in value)
    if isinstance(value, Mapping):
        return yaml.safe_dump(_plain(value), default_flow_style=True).strip()
    return str(value)


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
            if name in _MAPPING_FIELDS:
                flat.update({f"{key}.{item}": _format(entry) for item, entry in value.items()})
            else:
                flat[key] = _format(value)
    return {
        key: value if len(value) <= MAX_PARAM_LENGTH else value[: MAX_PARAM_LENGTH - 3] + "..."
        for key, value in flat.items()
    }


def dump_yaml(config: RunConfig) -> str:
    """The configuration as YAML that `load_config` reads back to an equal config."""
    header = "# Resolved run configuration (pipelines/config.py); load it with load_config.\n"
    body = yaml.safe_dump(
        config_to_dict(config), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return header + body
