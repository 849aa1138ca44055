"""Forecast partitions: one folder per as_of, published atomically, under an exclusive lock.

- Partition name: `as_of=` + the as_of in UTC formatted `%Y-%m-%dT%H%M%SZ`, never the user's
  text; no colons (Windows, Hadoop tools and URLs dislike them). The final path is checked to
  lie inside the output folder.
- Atomic: a new partition is written in a hidden staging folder `OUTPUT/.staging-*` (file
  fsynced) and renamed into place; a replaced file is written as a hidden temporary file inside
  the partition and renamed over the old one (`pipelines.data.storage`). Readers never see a
  partial partition; Hive-style readers (pyarrow, Spark) ignore names starting with `.`. A run
  killed midway leaves only hidden debris, which the next run removes under the lock.
- Idempotent: a partition is identified by (registered model, version, as_of, series
  requested). The same identity again leaves the file as it is, byte for byte.
- Locking: `fcntl.flock` on `OUTPUT/.forecast.lock`, held from the existence check to the
  rename. The kernel releases it when the process dies (SIGKILL included), so no stale lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.data.storage import write_atomically, write_folder_atomically
from pipelines.runtime.contract import (
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
)

if TYPE_CHECKING:
    pass


FORECAST_FILE = "forecast.parquet"
LOCK_FILE = ".forecast.lock"
STAGING_PREFIX = ".staging-"
PARTITION_PREFIX = "as_of="
PARTITION_TIME_FORMAT = "%Y-%m-%dT%H%M%SZ"
METADATA_KEY = b"forecast"
METADATA_VERSION = 1
OUTCOMES = ("written", "replaced", "unchanged")
_LOCK_POLL_SECONDS = 0.05


class LockTimeoutError(RuntimeError):
    """Another run holds the output folder's lock."""


def partition_name(as_of: pd.Timestamp) -> str:
    """`as_of=YYYY-MM-DDTHHMMSSZ` of a UTC time (whole seconds; finer parts are refused)."""
    utc = as_of.tz_convert("UTC") if as_of.tzinfo else as_of.tz_localize("UTC")
    if utc != utc.floor("s"):
        raise DataValidationError(
            f"parameter as_of: {utc.isoformat()} has fractions of a second; give whole seconds"
        )
    return PARTITION_PREFIX + utc.strftime(PARTITION_TIME_FORMAT)


def partition_path(output: Path, as_of: pd.Timestamp) -> Path:
    """The partition folder of `as_of` under `output`, checked to lie inside it.

    Raises:
        DataValidationError: the path would leave `output` (it cannot with the fixed format;
            checked anyway so a future format change cannot open a traversal).
    """
    root = output.resolve()
    path = (root / partition_name(as_of)).resolve()
    if path.parent != root:
        raise DataValidationError(f"parameter as_of: partition {path} is outside {root}")
    return path


# --------------------------------------------------------------------------------------------
# Writing: lock, atomic partition, metadata


@contextlib.contextmanager
def output_lock(
    output: Path, timeout: float, *, lock_file: str = LOCK_FILE, job: str = "forecast"
) -> Iterator[None]:
    """Holds an exclusive `flock` on `output/<lock_file>` (the kernel frees it on death);
    `job` names the runs that share it in the error.

    Raises:
        LockTimeoutError: another process held it for longer than `timeout` seconds.
    """
    output.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(timeout, 0.0)
    with open(output / lock_file, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"another {job} run holds the lock {output / lock_file} "
                        f"(waited {timeout:g} s; raise --lock-timeout to wait longer)"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_metadata(path: Path, key: bytes = METADATA_KEY) -> dict[str, Any] | None:
    """The JSON document under schema metadata `key` (default the forecasts' `forecast`) of a
    written file, or None when it has none or is unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    raw = (schema.metadata or {}).get(key)
    return json.loads(raw) if raw else None


def _identity(metadata: dict[str, Any]) -> tuple[Any, ...]:
    return (
        metadata.get("model_name"),
        metadata.get("model_version"),
        metadata.get("as_of"),
        metadata.get("series_requested"),
    )


def remove_debris(output: Path, file_name: str, partition: Path | None = None) -> None:
    """Removes what a killed run left: the staging folders under `output` and the temporary
    copies of `file_name` in `partition` (None: in every partition). Only called under the
    lock, so no writer is active."""
    for leftover in output.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    folders = [partition] if partition is not None else output.glob(f"{PARTITION_PREFIX}*")
    for folder in folders:
        if folder.is_dir():
            for leftover in folder.glob(f".{file_name}.*"):
                leftover.unlink(missing_ok=True)


def _write_parquet(frame: pd.DataFrame, metadata: dict[str, Any], path: Path) -> None:
    """Writes the file with explicit types and the metadata document (the caller fsyncs it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [
        pa.field(SERIES_COLUMN, pa.string(), nullable=False),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(STEP_COLUMN, pa.int64(), nullable=False),
    ]
    fixed = {SERIES_COLUMN, TIMESTAMP_COLUMN, STEP_COLUMN}
    for column in frame.columns:
        if column in fixed:
            continue
        if column in ("as_of", "created_at"):
            kind = pa.timestamp("us", tz="UTC")
        elif pd.api.types.is_float_dtype(frame[column]):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(column, kind, nullable=False))
    schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    # Column by column, with the types above: no pandas metadata in the file, and no
    # round trip of zone-aware times through NumPy (which drops the zone).
    arrays = [_arrow_array(frame[item.name], item.type) for item in fields]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _arrow_array(values: pd.Series, kind: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        return pa.array(utc, type=pa.timestamp("us")).cast(kind)
    if pa.types.is_floating(kind):
        return pa.array(values.to_numpy(dtype="float64"), type=kind)
    if pa.types.is_integer(kind):
        return pa.array(values.to_numpy(dtype="int64"), type=kind)
    return pa.array(values.astype(str).to_numpy(dtype=object), type=kind)


def write_partition(
    frame: pd.DataFrame, metadata: dict[str, Any], partition: Path, *, replace_existing: bool
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """Writes the partition atomically, or leaves an identical one alone (under the lock).

    Returns:
        The outcome (`written`, `replaced` or `unchanged`), and the frame and metadata now in
        the partition.

    Raises:
        DataValidationError: the partition holds another model version's (or series
            selection's) forecasts and `replace_existing` is False.
    """
    output = partition.parent
    remove_debris(output, FORECAST_FILE, partition)
    target = partition / FORECAST_FILE
    if target.exists():
        existing = read_metadata(target)
        if existing is not None and _identity(existing) == _identity(metadata):
            return "unchanged", pd.read_parquet(target), existing
        if not replace_existing:
            made_by = (
                f"model {existing.get('model_name')!r} version {existing.get('model_version')} "
                f"(series {existing.get('series_requested') or 'all'})"
                if existing
                else "an unknown writer"
            )
            raise DataValidationError(
                f"parameter output: {partition} already holds forecasts of {made_by}; pass "
                "--replace to overwrite it"
            )
        write_atomically(
            target, lambda temporary: _write_parquet(frame, metadata, temporary), durable=True
        )
        return "replaced", frame, metadata
    write_folder_atomically(
        partition,
        lambda staging: _write_parquet(frame, metadata, staging / FORECAST_FILE),
        staging_prefix=STAGING_PREFIX,
        durable=True,
        replace_existing=False,
    )
    return "written", frame, metadata
