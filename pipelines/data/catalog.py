"""The dataset catalog (`data/catalog.yaml`): names, sources, columns and cleaning defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.paths import CATALOG_PATH
from pipelines.runtime.contract import (
    CleaningPolicy,
    DataValidationError,
    TableSchema,
    closest_name_hint,
)


@dataclass(frozen=True)
class DatasetEntry:
    """One catalog entry; see the header of `data/catalog.yaml` for the meaning of each field."""

    name: str
    source: dict[str, Any]
    targets: tuple[str, ...]
    description: str = ""
    upstream: str = ""
    license: str = ""
    sha256: str | None = None
    timestamp_column: str | None = None
    timestamp_parts: dict[str, str] | None = None
    timestamp_format: str | None = None
    timezone: str = "UTC"
    series_column: str | None = None
    value_columns: tuple[str, ...] | None = None
    price_columns: tuple[str, ...] = ()
    wind: dict[str, str] | None = None
    frequency: str | None = None
    sentinels: tuple[float, ...] = ()
    max_gap: int = 0
    fill_method: str = "time"
    duplicates: str = "error"
    input_width: int = 24
    horizon: int = 24
    features: dict[str, bool] = field(default_factory=dict)

    def schema(self, **overrides: Any) -> TableSchema:
        """The table schema of this entry, with any field replaced by a non-None override."""
        settings = {
            "timestamp_column": self.timestamp_column,
            "timestamp_parts": self.timestamp_parts,
            "timestamp_format": self.timestamp_format,
            "timezone": self.timezone,
            "series_column": self.series_column,
            "value_columns": self.value_columns,
            "targets": self.targets,
            "frequency": self.frequency,
            "default_series_id": self.name,
        }
        settings.update({key: value for key, value in overrides.items() if value is not None})
        if overrides.get("timestamp_column") is not None:
            # A named timestamp column replaces year/month/day/hour parts.
            settings["timestamp_parts"] = None
        if str(settings["series_column"]).lower() in ("", "none"):
            settings["series_column"] = None
        return TableSchema(**settings)

    def policy(self, **overrides: Any) -> CleaningPolicy:
        """The cleaning policy of this entry, with any field replaced by a non-None override."""
        settings = {
            "sentinels": self.sentinels,
            "max_gap": self.max_gap,
            "fill_method": self.fill_method,
            "duplicates": self.duplicates,
        }
        settings.update({key: value for key, value in overrides.items() if value is not None})
        return CleaningPolicy(**settings)


_TUPLE_FIELDS = {"targets", "value_columns", "price_columns", "sentinels"}
_FIELD_NAMES = {f.name for f in dataclasses.fields(DatasetEntry)} - {"name"}


def load_catalog(path: Path = CATALOG_PATH) -> tuple[dict[str, DatasetEntry], str]:
    """Reads the catalog; returns the entries by name and the name of the default entry.

    Raises:
        DataValidationError: an entry with an unknown field or without source/targets.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataValidationError(f"{path}: cannot read the catalog: {error}") from error
    entries = {}
    for name, fields in (document.get("datasets") or {}).items():
        unknown = set(fields) - _FIELD_NAMES
        if unknown:
            raise DataValidationError(
                f"{path}: dataset {name!r}: unknown field(s) {sorted(unknown)}; "
                f"expected some of {sorted(_FIELD_NAMES)}"
            )
        for required in ("source", "targets"):
            if required not in fields:
                raise DataValidationError(f"{path}: dataset {name!r}: missing field {required!r}")
        values = {
            key: tuple(value) if key in _TUPLE_FIELDS and value is not None else value
            for key, value in fields.items()
        }
        entries[name] = DatasetEntry(name=name, **values)
    default = document.get("default")
    if default not in entries:
        raise DataValidationError(f"{path}: default dataset {default!r} is not in the catalog")
    return entries, default


def get_entry(name: str, path: Path = CATALOG_PATH) -> DatasetEntry:
    """The catalog entry called `name`, or an error that lists the valid names."""
    entries, _ = load_catalog(path)
    if name not in entries:
        raise DataValidationError(
            f"parameter dataset: unknown dataset {name!r}{closest_name_hint(name, list(entries))}"
            f" (catalog: {', '.join(entries)})"
        )
    return entries[name]


def default_entry_name(path: Path = CATALOG_PATH) -> str:
    return load_catalog(path)[1]
