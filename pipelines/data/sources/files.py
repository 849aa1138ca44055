"""Reading CSV and Parquet files (plain or gzip, any line ending) into a `SourceTable`."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd

from pipelines.runtime.contract import DataValidationError, SourceTable, closest_name_hint

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
"""Tried in order: UTF-8 (with or without a byte-order mark), then the common Windows and ISO
encodings, so a header written by Excel on Windows (e.g. 'T (°C)' in cp1252) still loads."""


def read_table(
    path: str | Path, *, encoding: str | None = None, member: str | None = None
) -> SourceTable:
    """Reads a CSV (plain, gzip or zip) or Parquet file as text columns and numbers.

    Args:
        path: the file; `.parquet`/`.pq` are read as Parquet, anything else as CSV. Gzip and zip
            are detected from the file's first bytes, not its name.
        member: the CSV inside a zip archive; by default its only file.
        encoding: the text encoding; by default UTF-8, falling back to cp1252 and latin-1
            (the fallback is reported in the table's notes).

    Returns:
        The table, indexed by data-row number, with its origin and first data line.

    Raises:
        DataValidationError: missing, empty or malformed file.
    """
    path = Path(path)
    origin = str(path)
    if not path.exists():
        raise DataValidationError(f"{origin}: file not found")
    if path.is_dir():
        raise DataValidationError(f"{origin}: is a folder, expected a CSV or Parquet file")
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        return _read_parquet(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataValidationError(f"{origin}: damaged gzip file: {error}") from error
    elif raw[:4] == b"PK\x03\x04":
        raw, origin = _unzip(raw, origin, member)
    if not raw.strip():
        raise DataValidationError(f"{origin}: the file is empty (no header, no rows)")
    text, used_encoding = _decode(raw, origin, encoding)
    notes = []
    if used_encoding not in ("utf-8-sig", "utf-8"):
        notes.append(f"decoded as {used_encoding} (not valid UTF-8)")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=None, skip_blank_lines=False, low_memory=False)
    except pd.errors.EmptyDataError as error:
        raise DataValidationError(f"{origin}: the file is empty (no header, no rows)") from error
    except pd.errors.ParserError as error:
        raise DataValidationError(f"{origin}: malformed CSV: {error}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        raise DataValidationError(f"{origin}: has a header but no data rows")
    return SourceTable(
        frame=frame,
        origin=origin,
        first_data_line=2,
        encoding=used_encoding,
        notes=tuple(notes),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _unzip(raw: bytes, origin: str, member: str | None) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            if member is None:
                if len(names) != 1:
                    raise DataValidationError(
                        f"{origin}: zip archive holds {len(names)} files ({', '.join(names[:5])}); "
                        "name the one to read"
                    )
                member = names[0]
            if member not in names:
                raise DataValidationError(
                    f"{origin}: zip archive has no file {member!r}"
                    f"{closest_name_hint(member, names)}"
                )
            return archive.read(member), f"{origin}!{member}"
    except zipfile.BadZipFile as error:
        raise DataValidationError(f"{origin}: damaged zip file: {error}") from error


def _decode(raw: bytes, origin: str, encoding: str | None) -> tuple[str, str]:
    candidates = (encoding,) if encoding else TEXT_ENCODINGS
    for candidate in candidates:
        try:
            return raw.decode(candidate), candidate
        except UnicodeDecodeError as error:
            last_error = error
        except LookupError as error:
            raise DataValidationError(
                f"parameter encoding: unknown encoding {encoding!r}"
            ) from error
    raise DataValidationError(f"{origin}: cannot decode as {encoding}: {last_error}")


def _read_parquet(path: Path) -> SourceTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types for bad files
        raise DataValidationError(f"{path}: not a readable Parquet file: {error}") from error
    if frame.shape[1] == 0:
        raise DataValidationError(f"{path}: the file is empty (no columns)")
    if frame.empty:
        raise DataValidationError(f"{path}: has columns but no data rows")
    frame = frame.reset_index(drop=not any(frame.index.names))
    frame.index = pd.RangeIndex(len(frame))
    return SourceTable(
        frame=frame,
        origin=str(path),
        first_data_line=None,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
