"""Sources: get the rows of a catalog entry or a user's file into a `SourceTable`.

Every source returns the table as its publisher wrote it; validation comes next.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.data.catalog import DatasetEntry
from pipelines.data.sources.files import read_table
from pipelines.paths import RAW_DATA_DIRECTORY, resolve_path
from pipelines.runtime.contract import DataValidationError, SourceTable

__all__ = ["load_source", "read_table"]


def load_source(
    entry: DatasetEntry,
    source: str | Path | None = None,
    *,
    raw_directory: Path = RAW_DATA_DIRECTORY,
    parameters: Mapping[str, Any] | None = None,
) -> SourceTable:
    """Reads the rows of a catalog entry, from `source` where given, else from the entry's source.

    Args:
        entry: the catalog entry (its source, checksum and reading options).
        source: a file that replaces the entry's location (same columns, e.g. another copy).
        raw_directory: where downloads and API responses are cached.
        parameters: source parameters that replace the entry's, e.g. `tickers` for yfinance.

    Returns:
        The table, with a note on whether the file matched the catalog's checksum.

    Raises:
        DataValidationError: the file is missing, unreadable, or differs from the checksum of a
            file the catalog locates itself.
    """
    if source is not None:
        table = read_table(Path(source), member=entry.source.get("member"))
        return _check_checksum(table, entry, strict=False)
    kind = entry.source.get("kind")
    settings = {**entry.source, **(parameters or {})}
    if kind == "package":
        resource = importlib.resources.files(settings["package"]).joinpath(settings["resource"])
        with importlib.resources.as_file(resource) as path:
            table = read_table(path)
        return _check_checksum(table, entry, strict=True)
    if kind == "file":
        path = resolve_path(settings["path"])
        if not path.exists():
            raise DataValidationError(
                f"{path}: file not found (dataset {entry.name!r} is not shipped with the project; "
                "pass its location with --source PATH)"
            )
        return _check_checksum(read_table(path), entry, strict=True)
    if kind == "download":
        from pipelines.data.sources.download import fetch_once

        # `archive_sha256` checks the download; the entry's `sha256` checks the file inside.
        archive = fetch_once(settings["url"], raw_directory, sha256=settings.get("archive_sha256"))
        table = read_table(archive, member=settings.get("member"))
        return _check_checksum(table, entry, strict=True)
    if kind == "yfinance":
        from pipelines.data.sources.yahoo import load_prices

        overrides = parameters or {}
        dates_given = "start" in overrides or "end" in overrides
        # Dates from the user replace the catalog's default period rather than combine with it.
        period = overrides.get("period") if dates_given else settings.get("period")
        return load_prices(
            tickers=_as_list(settings.get("tickers")),
            start=settings.get("start"),
            end=settings.get("end"),
            period=period,
            cache_directory=raw_directory / "yfinance",
            refresh=bool(settings.get("refresh", False)),
        )
    raise DataValidationError(f"catalog: dataset {entry.name!r}: unknown source kind {kind!r}")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


def _check_checksum(table: SourceTable, entry: DatasetEntry, *, strict: bool) -> SourceTable:
    if entry.sha256 is None or table.sha256 is None:
        return table
    if table.sha256 == entry.sha256:
        note = "sha256 matches the catalog"
    elif strict:
        raise DataValidationError(
            f"{table.origin}: sha256 {table.sha256} differs from the catalog's {entry.sha256} "
            f"for dataset {entry.name!r}; the file is damaged or another version"
        )
    else:
        note = "sha256 differs from the catalog's: another version of the file"
    return dataclasses.replace(table, notes=(*table.notes, note))
