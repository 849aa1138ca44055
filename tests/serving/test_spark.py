"""Forecasts on a local Spark session equal the single-process forecast of the same model."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate
from tests.three_series import (
    SERIES,
    SPEC,
    register_untrained_champion,
    save_untrained_forecaster,
    series_frame,
)

pyspark_sql = pytest.importorskip("pyspark.sql")

pytestmark = [
    pytest.mark.slow,
    # PySpark 4.3 warns that it does not "fully" support pandas 3; the grouped-map path used
    # here is checked number by number below.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),  # PySpark on pandas 3
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return series_frame(days=40, seed=1)


@pytest.fixture(scope="module")
def model_path(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_untrained_forecaster(tmp_path_factory.mktemp("spark-model") / "model", frame)


@pytest.fixture(scope="module")
def spark() -> Iterator[pyspark_sql.SparkSession]:
    """A small local[2] session in UTC; Java missing is a failure under CI=true, else a skip."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        message = "Spark needs Java 17 or newer (no `java` on PATH and no JAVA_HOME)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must install a JDK")
        pytest.skip(message)
    with pytest.MonkeyPatch.context() as patch:
        # Workers must run this interpreter (the venv), not whatever `python3` is on PATH;
        # PySpark reads the variable when the context starts.
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            pyspark_sql.SparkSession.builder.master("local[2]")
            .appName("lstm-forecaster-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


def expected_forecast(
    model_uri: str, frame: pd.DataFrame, params: dict | None = None
) -> pd.DataFrame:
    history = to_model_input(frame, SPEC.features)
    return mlflow.pyfunc.load_model(model_uri).predict(history, params=params)


def assert_same_forecast(spark_forecast: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Row by row: ids, steps, UTC timestamps and the numbers."""
    spark_forecast = spark_forecast.sort_values(["series_id", "step"], ignore_index=True)
    assert list(spark_forecast.columns) == list(expected.columns)
    assert list(spark_forecast.columns[:4]) == ["series_id", "timestamp", "step", "level"]
    assert spark_forecast["series_id"].tolist() == expected["series_id"].tolist()
    assert spark_forecast["step"].tolist() == expected["step"].tolist()
    # The session is in UTC, so toPandas' naive timestamps are UTC wall times.
    spark_times = pd.to_datetime(spark_forecast["timestamp"]).dt.tz_localize("UTC")
    assert spark_times.tolist() == expected["timestamp"].tolist()
    values = expected.columns[3:]
    np.testing.assert_allclose(spark_forecast[values], expected[values], rtol=0, atol=1e-6)


def test_spark_forecast_equals_single_process_forecast(
    spark: pyspark_sql.SparkSession, model_path: Path, frame: pd.DataFrame
) -> None:
    from pipelines.serving.spark import forecast_spark

    history = spark.createDataFrame(to_model_input(frame, SPEC.features))
    # Two buckets for three series: at least one Python call forecasts several series at once.
    result = forecast_spark(history, str(model_path), buckets=2).toPandas()

    expected = expected_forecast(str(model_path), frame)
    assert len(expected) == len(SERIES) * SPEC.horizon
    assert_same_forecast(result, expected)
    assert expected["timestamp"].iloc[0] == pd.Timestamp("2024-02-10", tz="UTC")


def test_spark_timestamps_and_extra_columns_give_the_same_forecast(
    spark: pyspark_sql.SparkSession, model_path: Path, frame: pd.DataFrame
) -> None:
    from pyspark.sql import functions

    from pipelines.serving.spark import forecast_spark

    text = spark.createDataFrame(to_model_input(frame, SPEC.features).assign(note="ignored"))
    # A real timestamp column, as a Parquet table would have it.
    history = text.withColumn("timestamp", functions.to_timestamp("timestamp"))
    assert dict(history.dtypes)["timestamp"] == "timestamp"
    result = forecast_spark(history, str(model_path)).toPandas()

    assert_same_forecast(result, expected_forecast(str(model_path), frame))


def test_registered_model_uri_works_and_schema_follows_the_signature(
    spark: pyspark_sql.SparkSession,
    frame: pd.DataFrame,
    tmp_path: Path,
    tracking_store: mlflow.MlflowClient,
) -> None:
    from pipelines.serving.spark import forecast_spark

    experiment_id = tracking_store.create_experiment(
        "spark-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    uri = register_untrained_champion(frame, "spark-forecaster", experiment_id)
    history = spark.createDataFrame(to_model_input(frame, SPEC.features, last_rows=10))
    forecast = forecast_spark(history, uri, buckets=1)

    assert forecast.dtypes == [
        ("series_id", "string"),
        ("timestamp", "timestamp"),
        ("step", "bigint"),
        ("level", "double"),
    ]
    assert_same_forecast(forecast.toPandas(), expected_forecast(uri, frame))


def test_levels_pick_the_bands_on_spark_as_in_predict(
    spark: pyspark_sql.SparkSession, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from pipelines.serving.spark import forecast_spark

    residuals = np.random.default_rng(0).normal(size=(100, SPEC.horizon, 1))
    path = str(save_untrained_forecaster(tmp_path / "model", frame, calibrate(residuals)))
    history = spark.createDataFrame(to_model_input(frame, SPEC.features))
    default = forecast_spark(history, path, buckets=2).toPandas()
    assert list(default.columns[4:]) == ["level_lo_90", "level_lo_80", "level_hi_80", "level_hi_90"]
    assert_same_forecast(default, expected_forecast(path, frame))
    chosen = forecast_spark(history, path, buckets=2, levels=[95, 50])
    assert [name for name, _ in chosen.dtypes[4:]] == [
        "level_lo_95",
        "level_lo_50",
        "level_hi_50",
        "level_hi_95",
    ]
    assert_same_forecast(chosen.toPandas(), expected_forecast(path, frame, {"levels": [50, 95]}))
    with pytest.raises(DataValidationError, match=r"levels: expected numbers in \(0, 100\), got 0"):
        forecast_spark(history, path, levels=[0])


def test_command_line_levels_pick_the_bands_and_a_bad_level_writes_nothing(
    spark: pyspark_sql.SparkSession, frame: pd.DataFrame, tmp_path: Path, capsys
) -> None:
    from pipelines.cli.spark import main

    residuals = np.random.default_rng(0).normal(size=(100, SPEC.horizon, 1))
    path = str(save_untrained_forecaster(tmp_path / "model", frame, calibrate(residuals)))
    to_model_input(frame, SPEC.features).to_parquet(tmp_path / "history.parquet")
    arguments = ["--model-uri", path, "--history", str(tmp_path / "history.parquet")]

    assert main([*arguments, "--output", str(tmp_path / "out"), "--levels", "95,50"]) == 0
    written = pd.read_parquet(tmp_path / "out")
    assert_same_forecast(written, expected_forecast(path, frame, {"levels": [50, 95]}))
    assert main([*arguments, "--output", str(tmp_path / "points"), "--levels", "none"]) == 0
    assert list(pd.read_parquet(tmp_path / "points").columns[3:]) == ["level"]
    # A recalibration is checked against the levels asked, on the driver, before any job.
    recalibrated = ["--levels", "80", "--recalibrate", "10"]
    assert main([*arguments, "--output", str(tmp_path / "re"), *recalibrated]) == 0
    expected = expected_forecast(path, frame, {"levels": [80], "recalibrate": 10})
    assert_same_forecast(pd.read_parquet(tmp_path / "re"), expected)
    points = ["--levels", "none", "--recalibrate", "30"]  # nothing to recalibrate, none skipped
    assert main([*arguments, "--output", str(tmp_path / "none"), *points]) == 0
    capsys.readouterr()
    too_few = ["--levels", "80", "--recalibrate", "5"]
    assert main([*arguments, "--output", str(tmp_path / "few"), *too_few]) == 2
    assert not (tmp_path / "few").exists()
    assert capsys.readouterr().err.strip() == (
        "error: recalibrate: 5 windows cannot hold level 80, which needs 9"
    )
    capsys.readouterr()  # the runs' logs
    for bad in ("high", "0", "100", "-5", "80,,90"):
        assert main([*arguments, "--output", str(tmp_path / "bad"), "--levels", bad]) == 2
        assert not (tmp_path / "bad").exists()
        error = capsys.readouterr().err.strip()
        assert error == (
            "error: argument --levels: expected comma-separated numbers in (0, 100), e.g. "
            f"80,95, or none; got {bad!r} (see python -m pipelines.cli.spark --help)"
        )


def test_recalibration_on_spark_is_predicts_and_lists_the_series_too_short_for_it(
    spark: pyspark_sql.SparkSession, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from pipelines.serving.spark import forecast_spark, unready_spark

    residuals = np.random.default_rng(0).normal(size=(100, SPEC.horizon, 1))
    path = str(save_untrained_forecaster(tmp_path / "model", frame, calibrate(residuals)))
    history = to_model_input(frame, SPEC.features)
    # The first series keeps fewer rows than input_width + 20 + horizon - 1 = 30.
    first = history["series_id"] == SERIES[0]
    short = pd.concat([history.loc[first].tail(29), history.loc[~first]], ignore_index=True)
    spark_history = spark.createDataFrame(short)
    forecast = forecast_spark(spark_history, path, buckets=2, recalibrate=20).toPandas()
    expected = expected_forecast(path, history.loc[~first], {"recalibrate": 20})
    assert_same_forecast(forecast, expected)
    listed = unready_spark(spark_history, path, buckets=2, recalibrate=20).toPandas()
    assert listed["series_id"].tolist() == [SERIES[0]]
    assert listed["detail"].iloc[0].startswith("recalibrate=20 reads the last 30 rows")
    with pytest.raises(DataValidationError, match=r"^recalibrate: expected a whole number"):
        forecast_spark(spark_history, path, recalibrate=-1)


def test_missing_column_is_named_before_any_job_runs(
    spark: pyspark_sql.SparkSession, model_path: Path, frame: pd.DataFrame
) -> None:
    from pipelines.serving.spark import forecast_spark

    history = spark.createDataFrame(to_model_input(frame, SPEC.features).drop(columns="level"))
    with pytest.raises(DataValidationError, match=r"columns \['level'\] not found"):
        forecast_spark(history, str(model_path))


def test_command_line_writes_parquet_and_exits_2_on_bad_input(
    spark: pyspark_sql.SparkSession, model_path: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from pipelines.cli.spark import main

    history = to_model_input(frame, SPEC.features, last_rows=SPEC.input_width)
    history.to_parquet(tmp_path / "history.parquet")
    output = tmp_path / "forecast"
    arguments = ["--model-uri", str(model_path), "--history", str(tmp_path / "history.parquet")]

    assert main([*arguments, "--output", str(output)]) == 0
    written = pd.read_parquet(output)
    assert_same_forecast(written, expected_forecast(str(model_path), frame))
    history.drop(columns="temperature").to_parquet(tmp_path / "history.parquet")
    assert main([*arguments, "--output", str(tmp_path / "other")]) == 2
    assert not (tmp_path / "other").exists()
    assert spark.range(1).count() == 1  # the caller's session was not stopped


def test_every_path_refuses_or_skips_the_same_series_for_the_same_reasons(
    spark: pyspark_sql.SparkSession, tmp_path: Path
) -> None:
    """One readiness rule: the logged model refuses the first series that is not ready, its
    `forecast_ready`, Spark, the batch forecast and the backtest's scoring skip and list the same
    ones with the same reasons. Staleness needs a cut (`as_of`, a fold's origin), which only the
    batch forecast and the backtest have."""
    from pipelines.serving import batch
    from pipelines.serving.spark import forecast_spark, unready_spark

    names = ("gappy", "nan", "ok", "short", "stale")
    one = series_frame(days=20, seed=3).query("series_id == 'alpha'")
    frame = pd.concat([one.assign(series_id=name) for name in names], ignore_index=True)
    model_path = save_untrained_forecaster(tmp_path / "model", frame)
    days = frame.groupby("series_id").cumcount(ascending=False)
    drop = ((frame["series_id"] == "short") & (days >= 5)) | (
        (frame["series_id"] == "gappy") & (days == 2)
    )
    drop |= (frame["series_id"] == "stale") & (days < 3)
    damaged = frame.loc[~drop].reset_index(drop=True)
    last = damaged.groupby("series_id").cumcount(ascending=False) == 0
    damaged.loc[(damaged["series_id"] == "nan") & last, "temperature"] = np.nan
    unknown = frame.loc[frame["series_id"] == "ok"].assign(series_id="unknown")
    damaged = pd.concat([damaged, unknown], ignore_index=True)
    history = to_model_input(damaged, SPEC.features)
    expected = {"gappy": "gap", "nan": "non_finite", "short": "too_short", "unknown": "unknown"}

    loaded = mlflow.pyfunc.load_model(str(model_path))
    with pytest.raises(DataValidationError, match=r"series 'gappy': a gap .*\(3 more series"):
        loaded.predict(history)
    forecast, not_ready = loaded.unwrap_python_model().forecast_ready(history)
    assert {item.series_id: item.reason for item in not_ready} == expected
    assert sorted(set(forecast["series_id"])) == ["ok", "stale"]

    spark_history = spark.createDataFrame(history)
    skipped = unready_spark(spark_history, str(model_path), buckets=2).toPandas()
    assert dict(zip(skipped["series_id"], skipped["reason"], strict=True)) == expected
    details = {item.series_id: item.detail for item in not_ready}
    assert dict(zip(skipped["series_id"], skipped["detail"], strict=True)) == details
    spark_forecast = forecast_spark(spark_history, str(model_path), buckets=2).toPandas()
    assert_same_forecast(spark_forecast, forecast)

    validated = damaged.assign(timestamp=pd.to_datetime(damaged["timestamp"], utc=True))
    validated = validated.sort_values(["series_id", "timestamp"], ignore_index=True)
    plan = batch.plan_forecast(
        validated,
        input_width=SPEC.input_width,
        features=SPEC.features,
        frequency="D",
        as_of=validated["timestamp"].max(),
        known_series=list(names),
    )
    assert {item.series_id: item.reason for item in plan.skipped} == {**expected, "stale": "stale"}
    assert plan.series == ["ok"]

    # The backtest's scoring at an origin (the last day): the same series, the same reasons.
    from pipelines.training.backtest import fold_windows

    origin = validated["timestamp"].max()
    after = pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": name,
                    "timestamp": pd.date_range(origin, periods=SPEC.horizon + 1, freq="D")[1:],
                    "level": 1.0,
                    "temperature": 15.0,
                }
            )
            for name in [*names, "unknown"]
        ]
    )
    full = pd.concat([validated, after], ignore_index=True).assign(segment=0)
    full = full.sort_values(["series_id", "timestamp"], ignore_index=True)
    scaler = loaded.unwrap_python_model().scaler
    windows = fold_windows(validated.assign(segment=0), full, origin, SPEC, scaler, "D")
    assert {item.series_id: item.reason for item in windows.skipped} == {
        **expected,
        "stale": "stale",
    }
    assert windows.series_ids.tolist() == ["ok"]
