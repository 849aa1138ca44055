"""Atomic writes: a file appears whole under its name, or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Calls `write(temporary)` on a temporary file beside `path`, then renames it onto `path`.

    The temporary file lives in the same folder, so the rename is atomic on POSIX; on any
    failure (Ctrl-C included) it is removed and `path` keeps its previous content.

    Example:
        write_atomically(target, lambda temporary: frame.to_parquet(temporary, index=False))
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
