"""`prepare`: validate a data set, split it, fit the scaler on the training part, count windows.

Usage:
    python -m pipelines.cli.prepare                      # the catalog's default data set
    python -m pipelines.cli.prepare --dataset weather-ltsf --input-width 96 --horizon 96 \
        --summary-json s.json
    python -m pipelines.cli.prepare --source prices.csv --timestamp-column Date --targets Close

It writes to `--output` (default `data/processed/<dataset>`): `frame.parquet` (the clean frame
with derived features and a `part` column), `scaler.json` (fitted on the training part only),
`window_spec.json` and `summary.json`. The folder is built under a temporary name and renamed
into place, so a failed run leaves the previous output as it was. Bad input exits with status 2
and one `error: ...` line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.cli.exit_codes import EXIT_OK, report_bad_input
from pipelines.config.options import read_config
from pipelines.data.prepare import format_summary, run
from pipelines.data.prepared import check_output_folder, write_outputs
from pipelines.data.storage import write_json_atomically
from pipelines.paths import PROCESSED_DATA_DIRECTORY
from pipelines.runtime.contract import (
    DataValidationError,
)
from pipelines.settings import ConfigError

# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the prepare command line; returns the exit status (0, or 2 on bad input)."""
    try:
        config = read_config("prepare", argv)
    except ConfigError as error:
        return report_bad_input(error)
    settings = config.prepare
    try:
        if settings.output:
            check_output_folder(Path(settings.output).resolve())
        if settings.summary_json and Path(settings.summary_json).is_dir():
            raise DataValidationError(
                f"parameter summary_json: {settings.summary_json} is a folder"
            )
        result = run(config.data)
        output = (
            Path(settings.output)
            if settings.output
            else PROCESSED_DATA_DIRECTORY / result.summary["dataset"]
        )
        result.summary["output"] = str(output)
        settings_given = {**config.data.model_dump(), **config.prepare.model_dump()}
        result.summary["config"] = {
            key: value for key, value in settings_given.items() if value not in (None, {}, ())
        }
        write_outputs(result, output)
        if settings.summary_json:
            write_json_atomically(result.summary, Path(settings.summary_json))
    except (DataValidationError, OSError) as error:
        return report_bad_input(error)
    print(format_summary(result.summary))
    print(f"output       {output}")
    if settings.log_run:
        from pipelines.tracking.lineage import record_prepare_run

        print(f"prepare run  {record_prepare_run(result, config.data)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
