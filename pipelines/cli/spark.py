"""`spark`: forecast every series of a Parquet history with a logged model on Spark.

Usage (a cluster: see README, "Spark"):
    python -m pipelines.cli.spark --model-uri models:/forecaster@champion \
        --history history.parquet --output forecasts.parquet --master 'local[*]' \
        [--levels 80,95] [--recalibrate 30]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.cli.exit_codes import EXIT_OK, EXIT_PARTIAL, report_bad_input
from pipelines.config.options import OptionParser
from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.intervals import check_levels
from pipelines.serving.spark import forecast_spark, unready_spark
from pipelines.settings import ConfigError

# --------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    """Spark's own options (its history and output are Spark paths, not schema settings);
    `--model-uri` means what it means in `forecast`. Errors are one `error:` line."""
    parser = OptionParser(
        prog="python -m pipelines.cli.spark",
        description="Forecast every series of a Parquet history with a logged model on Spark.",
    )
    parser.add_argument("--model-uri", required=True, help="e.g. models:/forecaster@champion")
    parser.add_argument("--history", required=True, help="Parquet file or folder of history")
    parser.add_argument("--output", required=True, help="Parquet folder to write (overwritten)")
    parser.add_argument("--buckets", type=int, default=None, help="series groups (default: auto)")
    parser.add_argument(
        "--master", default=None, help="Spark master when not run by spark-submit (local[*])"
    )
    parser.add_argument(
        "--levels",
        type=interval_levels,
        default=None,
        help="interval levels of a calibrated model, e.g. 80,95 (default: the model's own; "
        "'none': points only)",
    )
    parser.add_argument(
        "--recalibrate",
        type=int,
        default=0,
        help="recalibrate the intervals on each series' last N windows with known actuals "
        "(send input_width + N + horizon - 1 rows per series; default 0: the logged one)",
    )
    return parser


def interval_levels(text: str) -> tuple[float, ...]:
    """`80,95` -> (80.0, 95.0); `none` -> () (points only). argparse turns the error into one
    `error:` line that names the option."""
    if text.strip().lower() == "none":
        return ()
    try:
        return check_levels([float(item) for item in text.split(",")])
    except (ValueError, DataValidationError):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers in (0, 100), e.g. 80,95, or none; got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Reads history, forecasts, writes Parquet; exit 0 when every series was forecast, 3 when
    some were skipped (each listed on stderr with its reason), 2 on bad input."""
    from pyspark.sql import SparkSession

    try:
        arguments = build_parser().parse_args(argv)
    except ConfigError as error:
        return report_bad_input(error)
    # Stop only a session this call starts: a caller's (a notebook's, a test's) stays usable.
    owns_session = SparkSession.getActiveSession() is None
    builder = SparkSession.builder.appName("lstm-forecaster")
    if arguments.master:
        builder = builder.master(arguments.master)
    # Forecast timestamps are UTC instants; a UTC session writes and shows them as UTC.
    spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    try:
        history = spark.read.parquet(arguments.history)
        # The same series, levels and recalibration for the forecast and its skip list.
        options = {
            "buckets": arguments.buckets,
            "levels": arguments.levels,
            "recalibrate": arguments.recalibrate,
        }
        forecast = forecast_spark(history, arguments.model_uri, **options)
        forecast.write.mode("overwrite").parquet(arguments.output)
        skipped = unready_spark(history, arguments.model_uri, **options)
        not_ready = sorted(tuple(row) for row in skipped.collect())
    except DataValidationError as error:
        return report_bad_input(error)
    finally:
        if owns_session:
            spark.stop()
    for series_id, reason, detail in not_ready:
        print(f"spark: series {series_id} skipped ({reason}): {detail}", file=sys.stderr)
    return EXIT_PARTIAL if not_ready else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
