"""The data section of the run configuration: where the data come from, how they are cleaned,
split, scaled and cut into windows.

`DataConfig` is what `pipelines.data.prepare.run` and `load_history` take. It lives with the
data stage (not in `pipelines.config`) so that the data stage depends on no other stage;
`pipelines.config.schema.RunConfig` holds it as its `data` section beside the others.

None means "the catalog entry's value" for every optional field. A `source` with a `dataset`
replaces the entry's file. A file outside the catalog needs `timestamp_column` and `targets`,
and `dataset` none (implied when a `source`, a `timestamp_column` and `targets` are given and
no `dataset`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from pipelines.data.catalog import DatasetEntry, load_catalog
from pipelines.data.split import SplitSpec
from pipelines.runtime.contract import TRADING_DAYS, DataValidationError
from pipelines.settings import (
    SettingsSection,
    bad_value,
    read_text,
    require_choice,
)

# `policy`: `validate` checks and repairs (sort, duplicates, sentinels, gaps); `as_published`
# keeps the file's rows as they are, for benchmarks whose published figures were measured so.
DEFAULT_SPLIT = "0.7,0.1,0.2"
"""The LTSF rule: `int(n * 0.7)` training rows, `int(n * 0.2)` test rows, the rest validation."""


@functools.cache
def catalog() -> tuple[dict[str, DatasetEntry], str]:
    """The catalog's entries and default entry name, read once per process."""
    return load_catalog()


def default_dataset() -> str:
    """The catalog's default data set."""
    return catalog()[1]


def parse_frequency(text: str) -> str:
    """`text` if it is `trading-days` or a pandas frequency alias of a positive step (`10min`,
    `h`, `D`, `B`, `W-MON`), else ConfigError naming `data.frequency`."""
    if text == TRADING_DAYS:
        return text
    try:
        offset = pd.tseries.frequencies.to_offset(text)
    except (ValueError, TypeError):
        offset = None
    if offset is None or offset.n <= 0:
        raise bad_value(
            "data.frequency",
            f"expected a pandas frequency alias with a positive step (10min, h, D, B, W-MON) or "
            f"{TRADING_DAYS}, got {text!r}",
        )
    return text


class SourceParameters(SettingsSection):
    """The yfinance source's parameters (`data.source_parameters.<name>`); only those given
    reach the source."""

    section = "data.source_parameters"

    tickers: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    period: str | None = None
    refresh: bool | None = None


SOURCE_PARAMETER_TYPES: dict[str, Any] = {
    name: field.annotation for name, field in SourceParameters.model_fields.items()
}
"""Parameter name -> its type, for reading command-line text."""


class DataConfig(SettingsSection):
    """Where the data come from and how they are cut into windows.

    Example:
        >>> DataConfig(dataset="weather-ltsf", horizon=48).horizon
        48
    """

    section = "data"

    dataset: str | None = Field(
        default_factory=default_dataset,
        description="catalog entry (data/catalog.yaml); default: the catalog's default",
    )
    source: str | None = Field(
        None, description="CSV/Parquet file; with dataset it replaces the entry's location"
    )
    targets: tuple[str, ...] | None = Field(None, description="columns to forecast")
    input_width: int | None = Field(None, ge=1, description="steps of history per window")
    horizon: int | None = Field(None, ge=1, description="steps to forecast")
    policy: Literal["validate", "as_published"] = Field(
        "validate",
        description="validate (sort, deduplicate, fill gaps) or as_published (rows as in the file)",
    )
    split: str = Field(
        DEFAULT_SPLIT,
        description="train,validation,test fractions, validation_start,test_start dates, "
        "or ett-hour / ett-minute (12/4/4 months of 30 days)",
    )
    scaler: Literal["standard", "minmax"] = Field(
        "standard", description="standard or minmax, fitted on train only"
    )
    per_series_scaling: bool = Field(True, description="one scaler per series (else pooled)")
    calendar_features: bool = Field(False, description="add time-of-day/day-of-year cycles")
    wind_vector: bool = Field(False, description="replace wind speed/direction by a vector")
    log_returns: bool = Field(False, description="add log returns of the price columns")
    stride: int = Field(1, ge=1, description="steps between window starts")
    timestamp_column: str | None = Field(None, description="the time column")
    timestamp_format: str | None = Field(None, description="strftime format, when not ISO 8601")
    series_column: str | None = Field(
        None,
        description="column naming each series (e.g. a ticker); none: one series",
        json_schema_extra={"none_is_text": True},
    )
    value_columns: tuple[str, ...] | None = Field(
        None, description="numeric columns to keep (default: all numeric)"
    )
    frequency: str | None = Field(
        None, description="pandas alias (10min, h, D, B) or trading-days; default: inferred"
    )
    sentinels: tuple[float, ...] | None = Field(
        None, description="values meaning 'missing', e.g. -9999"
    )
    max_gap: int | None = Field(None, ge=0, description="longest gap (steps) filled; longer split")
    fill_method: Literal["time", "ffill"] | None = Field(None, description="time or ffill")
    duplicates: Literal["error", "first", "last", "mean"] | None = Field(
        None, description="conflicting rows with one timestamp: error, first, last or mean"
    )
    source_parameters: dict[str, Any] = Field(
        default_factory=dict, description="yfinance source parameters"
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        entries, default = catalog()
        if (
            self.source is not None
            and "dataset" not in self.model_fields_set
            and self.timestamp_column is not None
            and self.targets
        ):
            # A file with its own columns and no data set named is a file outside the catalog
            # (a source alone replaces the default data set's file).
            object.__setattr__(self, "dataset", None)
        if self.dataset is None and self.source is None:
            if "dataset" in self.model_fields_set:
                raise bad_value(
                    "data.dataset",
                    "expected a catalog entry, or none with data.source (a file outside the "
                    "catalog), got none and no source",
                )
            object.__setattr__(self, "dataset", default)
        entry = None
        if self.dataset is not None:
            require_choice("data.dataset", self.dataset, entries)
            entry = entries[self.dataset]
        elif self.timestamp_column is None or not self.targets:
            raise bad_value(
                "data.source",
                "a file outside the catalog (data.dataset none) also needs "
                f"data.timestamp_column and data.targets, got source {self.source!r}",
            )
        try:
            SplitSpec.parse(self.split)
        except DataValidationError as error:
            raise bad_value("data.split", str(error).removeprefix("parameter split: ")) from None
        if self.frequency is not None:
            object.__setattr__(self, "frequency", parse_frequency(self.frequency))
        if entry is not None:
            self._check_entry_features(entry)
        self._check_source_parameters(entry)
        return self

    def _check_entry_features(self, entry: DatasetEntry) -> None:
        if self.wind_vector and not entry.wind:
            raise bad_value(
                "data.wind_vector",
                f"expected false: dataset {entry.name!r} names no wind columns, got True",
            )
        if self.log_returns and not entry.price_columns:
            raise bad_value(
                "data.log_returns",
                f"expected false: dataset {entry.name!r} names no price columns, got True",
            )

    def _check_source_parameters(self, entry: DatasetEntry | None) -> None:
        values = {
            name: read_text(f"data.source_parameters.{name}", value, SOURCE_PARAMETER_TYPES[name])
            if name in SOURCE_PARAMETER_TYPES
            else value  # left for the section to reject, with the closest name
            for name, value in self.source_parameters.items()
        }
        parameters = SourceParameters(**values).model_dump(exclude_unset=True, exclude_none=True)
        if parameters and (entry is None or entry.source.get("kind") != "yfinance"):
            name = entry.name if entry else None
            raise bad_value(
                "data.source_parameters",
                "expected none: only a yfinance data set takes source parameters, "
                f"dataset {name!r} does not; got {parameters!r}",
            )
        if "period" in parameters:
            from pipelines.data.sources.yahoo import VALID_PERIODS

            require_choice("data.source_parameters.period", parameters["period"], VALID_PERIODS)
        object.__setattr__(self, "source_parameters", parameters)
