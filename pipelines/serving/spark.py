"""Batch forecasts for many series on Spark with the same logged model.

`mlflow.pyfunc.spark_udf` returns one output row per input row, which does not fit a model that
turns a series' history into `horizon` forecast rows. Here the history is grouped and each group
goes through `GroupedData.applyInPandas`, where the pyfunc's own `predict` runs unchanged, so a
forecast on Spark is the forecast of `mlflow.pyfunc.load_model(uri).predict(history)`.

Decisions:
    - Groups are hash buckets of `series_id`, not single series. Every series lands whole in one
      bucket, and the pyfunc stacks all of a bucket's series into one Keras call, so a Python
      call costs one predict for hundreds of series instead of one per series (the per-call
      overhead of a Keras predict is milliseconds, more than a small LSTM's work on one window).
      The bucket count trades that batching against parallelism and memory: a bucket's history
      is one pandas frame in one Python worker.
    - The model is downloaded once on the driver and shipped with MLflow's own `SparkModelCache`
      (the mechanism behind `spark_udf`): the folder is zipped and added with
      `SparkContext.addFile`, and each Python worker unzips and loads it once, then reuses it for
      every later group and task. Executors therefore need no access to the tracking server,
      only the runtime packages of the model (`pipelines.serving.pyfunc.runtime_requirements`); the
      model's own code (`pipelines`, `models`) travels inside the model folder. Where
      `addFile` is not allowed (shared clusters), MLflow's `spark.mlflow.nfs.rootDir` setting
      makes it copy the zip to a shared directory instead.
    - The per-group function is a closure that refers only to MLflow, pandas and NumPy, so
      cloudpickle ships it by value and executors do not need this repository installed.
    - The output schema is the model signature's output schema (`series_id` string,
      `timestamp` timestamp, `step` long, one double per target and interval bound). Spark
      timestamps are instants; set `spark.sql.session.timeZone` to UTC so that `show()` and
      `toPandas()` display UTC.
    - Classic Spark only: Spark Connect sessions have no `SparkContext` to ship the model with.

Command line (a local session by default; under `spark-submit` the cluster's):

    PYTHONPATH=. spark-submit --master yarn pipelines/cli/spark.py \
        --model-uri models:/forecaster@champion --history s3a://bucket/history/ \
        --output s3a://bucket/forecasts/as_of=2026-01-01/
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.artifacts
from mlflow.models import Model

from pipelines.runtime.contract import (
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
)
from pipelines.runtime.forecaster import (
    FORECAST_SPEC_FILE,
    LEVELS_PARAM,
    RECALIBRATE_PARAM,
    recalibration_windows,
)
from pipelines.runtime.intervals import DEFAULT_LEVELS, check_levels, interval_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

BUCKET_COLUMN = "_forecast_bucket"
KEY_COLUMNS = (SERIES_COLUMN, TIMESTAMP_COLUMN, STEP_COLUMN)
SERIES_PER_BUCKET = 500
"""Default batching: about this many series share one pandas call and one Keras predict."""


def forecast_spark(
    history: DataFrame,
    model_uri: str,
    *,
    buckets: int | None = None,
    levels: Sequence[float] | None = None,
    recalibrate: int = 0,
) -> DataFrame:
    """Forecasts every series of a Spark DataFrame of history with a logged forecast model.

    Args:
        history: long-format history: `series_id`, `timestamp` (ISO 8601 text, or a Spark
            timestamp) and the model's feature columns; other columns are dropped. Send at least
            the last `input_width` rows of each series (more is fine but costs transfer).
        model_uri: any MLflow model URI the driver can read: `models:/NAME@champion`,
            `runs:/RUN_ID/model`, or a local or cloud path.
        buckets: how many groups the series are hashed into; each group is one pandas call and
            one Keras predict. Default: one per `SERIES_PER_BUCKET` series, at least the
            session's default parallelism.
        levels: the interval levels (percent) of a model with a calibration, as its `levels`
            parameter; None: the model's defaults.
        recalibrate: the model's `recalibrate` parameter: its intervals recalibrated on each
            series' last `recalibrate` windows with known actuals (send the last
            input_width + recalibrate + horizon - 1 rows of each series); 0: the logged one.

    Returns:
        A lazy DataFrame with the model's output columns: `series_id`, `timestamp` (the
        forecast time), `step` (1..horizon), one double column per target and its interval
        columns (`<target>_lo_<level>`, `<target>_hi_<level>`), as `predict` gives them.

    Raises:
        DataValidationError: a needed column is missing from `history`, `buckets` < 1, or a
            bad level (checked before any job runs).
            A series that is not ready (unknown, too short, a gap, a value that is not finite)
            is left out, not a failure of the job: `unready_spark` lists them.

    Example:
        >>> spark.conf.set("spark.sql.session.timeZone", "UTC")
        >>> history = spark.read.parquet("history.parquet")
        >>> forecast_spark(history, "models:/forecaster@champion").write.parquet("out")
    """
    model_path = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    schema = output_schema(model_path, levels)
    params = _params(model_path, levels, recalibrate)
    return _per_bucket(history, model_path, buckets, schema, skipped=False, params=params)


def _params(
    model_path: Path, levels: Sequence[float] | None, recalibrate: int
) -> dict[str, Any] | None:
    """The model's inference parameters, checked on the driver before any job runs: the
    levels, and a recalibration against the levels it will forecast (those asked, else the
    calibrated model's defaults)."""
    params: dict[str, Any] = {}
    if levels is not None:
        params[LEVELS_PARAM] = list(check_levels(levels))
    if recalibrate or not isinstance(recalibrate, int):
        recalibration_windows({RECALIBRATE_PARAM: recalibrate}, ())  # a whole number >= 0
        if Model.load(str(model_path)).signature.params is None:
            raise DataValidationError(
                f"recalibrate: model {model_path} carries no calibration, so it forecasts no "
                "intervals to recalibrate"
            )
        forecast_levels = tuple(params.get(LEVELS_PARAM, DEFAULT_LEVELS))
        if recalibration_windows({RECALIBRATE_PARAM: recalibrate}, forecast_levels):
            params[RECALIBRATE_PARAM] = recalibrate
    return params or None


def unready_spark(
    history: DataFrame,
    model_uri: str,
    *,
    buckets: int | None = None,
    levels: Sequence[float] | None = None,
    recalibrate: int = 0,
) -> DataFrame:
    """The series of `history` that `forecast_spark` leaves out, one row each: `series_id`,
    `reason` (`pipelines.runtime.readiness.REASONS`) and `detail`, by the same readiness rule as
    the logged model, the batch forecast and the backtest.

    Args:
        history, model_uri, buckets, levels, recalibrate: as in `forecast_spark`.

    Raises:
        DataValidationError: a needed column is missing from `history`, or `buckets` < 1.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    model_path = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    schema = StructType(
        [StructField(name, StringType(), False) for name in (SERIES_COLUMN, "reason", "detail")]
    )
    params = _params(model_path, levels, recalibrate)
    return _per_bucket(history, model_path, buckets, schema, skipped=True, params=params)


def _per_bucket(
    history: DataFrame,
    model_path: Path,
    buckets: int | None,
    schema: StructType,
    *,
    skipped: bool,
    params: dict[str, Any] | None = None,
) -> DataFrame:
    """`applyInPandas` over hash buckets of series: the model's `forecast_ready` (the forecasts
    of the ready series) or, with `skipped`, its `unready` (the series left out)."""
    spark = history.sparkSession
    features = _forecast_spec(model_path)["features"]
    _check_columns(history, [SERIES_COLUMN, TIMESTAMP_COLUMN, *features])
    count = buckets if buckets is not None else _default_buckets(history, spark)
    if count < 1:
        raise DataValidationError(f"parameter buckets: expected a positive number, got {count}")

    from mlflow.pyfunc.spark_model_cache import SparkModelCache
    from pyspark.sql import functions

    archive = SparkModelCache.add_local_model(spark, str(model_path))
    session_time_zone = spark.conf.get("spark.sql.session.timeZone")
    forecast_bucket = _bucket_forecaster(
        archive, schema.fieldNames(), session_time_zone, skipped=skipped, params=params
    )
    columns = [SERIES_COLUMN, TIMESTAMP_COLUMN, *features]
    bucketed = history.select(*columns).withColumn(
        BUCKET_COLUMN, functions.pmod(functions.xxhash64(SERIES_COLUMN), functions.lit(count))
    )
    return bucketed.groupBy(BUCKET_COLUMN).applyInPandas(forecast_bucket, schema)


def output_schema(model_path: str | Path, levels: Sequence[float] | None = None) -> StructType:
    """The Spark schema of a local model folder's forecasts: its signature's, or with `levels`,
    the same key columns and, per target, the target and its bounds at those levels.

    Raises:
        DataValidationError: no signature, or a bad level.
    """
    from pyspark.sql.types import DoubleType, StructField, StructType

    signature = Model.load(str(model_path)).signature
    if signature is None or signature.outputs is None:
        raise DataValidationError(f"model {model_path}: no output signature to build a schema")
    schema = signature.outputs.as_spark_schema()
    if levels is None:
        return schema
    chosen = check_levels(levels)
    if chosen and signature.params is None:
        raise DataValidationError(
            f"levels: model {model_path} carries no calibration, so it forecasts no intervals"
        )
    keys = [field for field in schema.fields if field.name in KEY_COLUMNS]
    values = [
        StructField(name, DoubleType(), True)
        for target in _forecast_spec(Path(model_path))["targets"]
        for name in (target, *interval_columns(target, chosen))
    ]
    return StructType([*keys, *values])


def _forecast_spec(model_path: Path) -> dict[str, Any]:
    """The model's forecast spec (features, targets, ...)."""
    found = sorted(model_path.rglob(FORECAST_SPEC_FILE))
    if not found:
        raise DataValidationError(
            f"model {model_path}: no {FORECAST_SPEC_FILE}; is it a forecast model logged with "
            f"pipelines.serving.pyfunc?"
        )
    return json.loads(found[0].read_text(encoding="utf-8"))


def _check_columns(history: DataFrame, needed: list[str]) -> None:
    missing = [column for column in needed if column not in history.columns]
    if missing:
        raise DataValidationError(
            f"history: columns {missing} not found; the model needs {needed}, got {history.columns}"
        )


def _default_buckets(history: DataFrame, spark: SparkSession) -> int:
    """One bucket per `SERIES_PER_BUCKET` series, but at least one per core of the session."""
    series = history.select(SERIES_COLUMN).distinct().count()
    parallelism = spark.sparkContext.defaultParallelism
    return max(parallelism, -(-series // SERIES_PER_BUCKET))


def _bucket_forecaster(
    archive: str,
    output_columns: list[str],
    session_time_zone: str,
    *,
    skipped: bool,
    params: dict[str, Any] | None,
) -> Any:
    """The per-group function for `applyInPandas`: the forecasts of the bucket's ready series,
    or (`skipped`) the series it leaves out with their reasons.

    It refers only to MLflow and pandas (imported inside), so cloudpickle ships it by value;
    `SparkModelCache` keeps the loaded model per Python worker process. It calls the model's
    own `forecast_ready` (the code of `predict` that skips series instead of refusing them) or
    `unready` (the readiness rule alone, no Keras call).
    """

    def forecast_bucket(history: Any) -> Any:
        import pandas as pd
        from mlflow.pyfunc.spark_model_cache import SparkModelCache

        model, _ = SparkModelCache.get_or_load(archive)
        history = history.drop(columns="_forecast_bucket")
        times = history["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(times):
            # Arrow hands Spark timestamps over as naive wall times of the session's zone; the
            # model's signature takes ISO text (MLflow rejects zone-aware values), in UTC.
            if times.dt.tz is None:
                times = times.dt.tz_localize(session_time_zone)
            history["timestamp"] = times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        forecaster = model.unwrap_python_model()
        if skipped:  # no Keras call: only the readiness rule
            rows = [
                (item.series_id, item.reason, item.detail)
                for item in forecaster.unready(history, params)
            ]
            return pd.DataFrame(rows, columns=output_columns)
        return forecaster.forecast_ready(history, params)[0][output_columns]

    return forecast_bucket
