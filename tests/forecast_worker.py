"""Test helper: runs `pipelines.cli.forecast.main` (or, with `--monitor` first,
`pipelines.cli.monitor.main`) but blocks at the partition's final rename.

Used by `tests/serving/test_batch.py` to SIGKILL a forecast after its file is fully staged and
before it becomes visible. When the rename's destination is a partition (`as_of=...`) or a forecast
file, the worker writes the staged path to the file named by `FORECAST_WORKER_SIGNAL` and
sleeps until it is killed. Nothing in production code knows about this hook.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

_real_replace = os.replace


def _blocking_replace(source: Any, destination: Any, *args: Any, **kwargs: Any) -> None:
    name = Path(destination).name
    if name.startswith("as_of=") or name == "forecast.parquet":
        Path(os.environ["FORECAST_WORKER_SIGNAL"]).write_text(str(source), encoding="utf-8")
        time.sleep(3600)
    return _real_replace(source, destination, *args, **kwargs)


if __name__ == "__main__":
    os.replace = _blocking_replace
    arguments = sys.argv[1:]
    if arguments[:1] == ["--monitor"]:
        from pipelines.cli.monitor import main

        arguments = arguments[1:]
    else:
        from pipelines.cli.forecast import main

    sys.exit(main(arguments))
