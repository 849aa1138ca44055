"""Storage: atomic writes of files and folders (the prepared files, forecast partitions, downloads,
the yfinance cache and summaries all go through here).

A file or folder written here appears whole under its name, or not at all: it is written under
a hidden temporary name in the same folder and renamed into place (atomic on POSIX). On any
failure, Ctrl-C included, the temporary is removed and the previous content stays.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: Path, write: Callable[[Path], Any], *, durable: bool = False) -> None:
    """Calls `write(temporary)` on a temporary file beside `path`, then renames it onto `path`.

    The temporary file (`.NAME.*.part`) lives in the same folder, so the rename is atomic on
    POSIX; on any failure (Ctrl-C included) it is removed and `path` keeps its previous content.

    Args:
        path: the file to write.
        write: writes the whole content to the path it is given.
        durable: also fsync the file and its folder (it survives a power cut once this returns)
            and give the file the mode a plain `open` would (temporary files are private).

    Example:
        write_atomically(target, lambda temporary: frame.to_parquet(temporary, index=False))
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        if durable:
            fsync_file(temporary)
            give_default_mode(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def write_folder_atomically(
    folder: Path,
    write: Callable[[Path], Any],
    *,
    staging_prefix: str | None = None,
    durable: bool = False,
    replace_existing: bool = True,
) -> None:
    """Calls `write(staging)` on a hidden staging folder beside `folder`, then renames it into
    place, replacing a previous `folder` whole.

    Args:
        folder: the folder to create or replace.
        write: writes every file into the folder it is given.
        staging_prefix: name prefix of the staging folder (default `.NAME.`); hidden names are
            skipped by Hive-style readers.
        durable: also fsync every file written, the staging folder and the parent, and give
            the folder the mode a plain `mkdir` would.
        replace_existing: move an existing `folder` aside and remove it once the new one is in
            place; when False the rename fails on a non-empty `folder`, which stays untouched
            (an empty one is replaced).

    Raises:
        OSError: `folder` exists, is not empty and `replace_existing` is False.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = staging_prefix or f".{folder.name}."
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
    try:
        if durable:
            give_default_mode(staging)
        write(staging)
        if durable:
            for path in staging.rglob("*"):
                if path.is_file():
                    fsync_file(path)
            fsync_directory(staging)
        if replace_existing:
            _replace_folder(staging, folder)
        else:
            # A folder renamed onto a missing (or empty) one appears whole, in one step.
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if durable:
        fsync_directory(folder.parent)


def _replace_folder(staging: Path, folder: Path) -> None:
    """Renames `staging` onto `folder`; an existing `folder` is moved aside, then removed."""
    if not folder.exists():
        # A folder renamed onto a missing one appears whole, in one step.
        os.replace(staging, folder)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
    os.replace(folder, retired / folder.name)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def fsync_file(path: Path) -> None:
    """Flushes a written file to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    """Flushes a folder's entries (a rename into it) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def give_default_mode(path: Path) -> None:
    """The mode a plain `mkdir`/`open` would give: temporary files and folders are private
    (0600, 0700), and a published file must be readable by whoever reads the output."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def write_json_atomically(document: dict[str, Any], path: Path) -> None:
    """Writes `document` as JSON to `path` via a temporary file and a rename."""
    write_atomically(
        path.resolve(),
        lambda temporary: temporary.write_text(json.dumps(document, indent=1, default=str)),
    )
