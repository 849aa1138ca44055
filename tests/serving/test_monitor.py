"""Monitoring: scores against hand computations, partitions that wait for their actuals, reruns
that change nothing, a killed write, two runs at once, model versions, alarms and bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import exit_codes
from pipelines.cli import monitor as monitor_command
from pipelines.config.loading import dump_yaml, load_config
from pipelines.data.prepare import run as prepare_data
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.monitoring import REFERENCE_ARTIFACT, MonitoringReference
from pipelines.serving import monitor, partitions
from pipelines.serving.pyfunc import log_forecast_model
from pipelines.tracking.monitoring_run import STATUS_TAG, as_of_step
from tests.conftest import subprocess_environment

MODEL_NAME = "watched"
INPUT_WIDTH = 4
HORIZON = 3
DAYS = 40
SERIES = ("A", "B")
START = pd.Timestamp("2021-01-01", tz="UTC")
SUBPROCESS_TIMEOUT = 120
# Forecast errors by step (actual - forecast) and the half width of the 80% band around the
# forecast: steps 1 and 2 fall inside it, step 3 outside.
OFFSETS = np.array([0.5, -1.0, 2.0])
HALF_WIDTH = 1.0


def day(number: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=number)


def actuals(days: int = DAYS) -> pd.DataFrame:
    """Daily values of two series with different levels (a CSV's columns)."""
    frames = []
    steps = np.arange(days)
    for index, name in enumerate(SERIES):
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.date_range(START, periods=days, freq="D").strftime("%Y-%m-%d"),
                    "name": name,
                    # Swings of several units a day: the last value is a poor forecast.
                    "value": 10.0 * (index + 1) + 5 * np.sin(steps / 1.5) * (index + 2),
                    "other": np.cos(steps / 5.0) + index,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_actuals(path: Path, days: int = DAYS) -> Path:
    actuals(days).to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Store:
    root: Path
    source: Path
    run_ids: dict[str, str]
    slopes: dict[str, float]


REFERENCE = MonitoringReference(
    targets=("value",),
    mae_by_step=np.array([[0.2], [0.3], [0.5]]),
    ratio_sd=0.4,
    coverage={"80": 0.8},
    design_effect={"80": 1.5},
    windows=30,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A SQLite store with versions 1 and 2 of `watched` (the `last` baseline), each run with
    its config.yaml and the crafted monitoring reference `REFERENCE`."""
    root = tmp_path_factory.mktemp("monitor-store")
    source = write_actuals(root / "history.csv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            patch.delenv(name, raising=False)
        mlflow.set_tracking_uri(None)
        client = MlflowClient()
        training = client.create_experiment(
            "training", artifact_location=(root / "artifacts").as_uri()
        )
        client.create_experiment("monitoring", artifact_location=(root / "monitor").as_uri())
        config = load_config(
            None,
            {
                "dataset": "none",
                "source": str(source),
                "data.timestamp_column": "date",
                "data.series_column": "name",
                "targets": "value",
                "input_width": str(INPUT_WIDTH),
                "horizon": str(HORIZON),
            },
        )
        prepared = prepare_data(config.data)
        from models.zoo import ModelShape, build_model

        spec = prepared.spec
        shape = ModelShape(
            input_width=INPUT_WIDTH,
            horizon=HORIZON,
            n_features=len(spec.features),
            target_indices=(spec.features.index("value"),),
        )
        run_ids = {}
        for version in ("1", "2"):
            with mlflow.start_run(experiment_id=training) as run:
                mlflow.log_text(dump_yaml(config), "config.yaml")
                mlflow.log_dict(REFERENCE.to_dict(), REFERENCE_ARTIFACT)
                log_forecast_model(
                    build_model("last", shape),
                    prepared.scaler,
                    spec,
                    frequency=prepared.summary["frequency"],
                    model_name="last",
                    input_example=prepared.frame,
                    registered_model_name=MODEL_NAME,
                )
                run_ids[version] = run.info.run_id
        slopes = dict(
            zip(SERIES, prepared.scaler.slopes(list(SERIES), ["value"])[:, 0], strict=True)
        )
        yield Store(root, source, run_ids, slopes)
        while mlflow.active_run() is not None:
            mlflow.end_run()
    mlflow.set_tracking_uri(None)


def forecast_frame(
    as_of_day: int, version: str, run_id: str, offsets: np.ndarray = OFFSETS
) -> pd.DataFrame:
    """A forecast partition's frame made by hand: each step's forecast is the actual minus its
    offset, with an 80% band of half width `HALF_WIDTH` around it."""
    truth = actuals(DAYS + HORIZON + 5).rename(columns={"name": "series_id"})
    truth["timestamp"] = pd.to_datetime(truth["date"], utc=True)
    rows = []
    for name in SERIES:
        for step in range(1, HORIZON + 1):
            when = day(as_of_day + step)
            value = truth.loc[(truth.series_id == name) & (truth.timestamp == when), "value"]
            forecast = float(value.iloc[0]) - offsets[step - 1]
            rows.append(
                {
                    "series_id": name,
                    "timestamp": when,
                    "step": step,
                    "value": forecast,
                    "value_lo_80": forecast - HALF_WIDTH,
                    "value_hi_80": forecast + HALF_WIDTH,
                }
            )
    frame = pd.DataFrame(rows)
    count = len(frame)
    for column, constant in (
        ("model_name", MODEL_NAME),
        ("model_version", version),
        ("model_run_id", run_id),
        ("model_type", "last"),
    ):
        frame[column] = pd.array([constant] * count, dtype="string")
    frame["as_of"] = day(as_of_day)
    frame["created_at"] = day(as_of_day) + pd.Timedelta(hours=1)
    return frame


def write_forecast(
    output: Path,
    store: Store,
    as_of_day: int,
    version: str = "1",
    offsets: np.ndarray = OFFSETS,
) -> Path:
    """Writes `forecast_frame` as `forecast` would."""
    frame = forecast_frame(as_of_day, version, store.run_ids[version], offsets)
    as_of = day(as_of_day)
    metadata = {
        "model_name": MODEL_NAME,
        "model_version": version,
        "model_run_id": store.run_ids[version],
        "as_of": as_of.isoformat(),
        "created_at": (as_of + pd.Timedelta(hours=1)).isoformat(),
        "series_requested": None,
        "targets": ["value"],
    }
    partition = partitions.partition_path(output, as_of)
    partitions.write_partition(frame, metadata, partition, replace_existing=True)
    return partition


def arguments(forecasts: Path, scores: Path, source: Path, *extra: str) -> list[str]:
    return [
        "--forecast-output",
        str(forecasts),
        "--monitor-output",
        str(scores),
        "--source",
        str(source),
        *extra,
    ]


def scores_file(scores: Path, as_of_day: int) -> Path:
    return scores / partitions.partition_name(day(as_of_day)) / monitor.SCORES_FILE


# --------------------------------------------------------------------------------------------
# Scores: hand computations, waiting, completing, reruns


def test_every_score_equals_a_hand_computation(store: Store, tmp_path: Path) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30)
    source = write_actuals(tmp_path / "actuals.csv")

    code = monitor_command.main(arguments(forecasts, scores, source))

    assert code == exit_codes.EXIT_OK
    table = pd.read_parquet(scores_file(scores, 30))
    truth = actuals().set_index(["name", "date"])["value"]
    assert table["series_id"].tolist() == list(np.repeat(SERIES, HORIZON))
    assert table["step"].tolist() == [1, 2, 3] * len(SERIES)
    assert (table["target"] == "value").all()
    assert (table["as_of"] == day(30)).all()
    for row in table.itertuples():
        actual = truth[(row.series_id, row.timestamp.strftime("%Y-%m-%d"))]
        offset = OFFSETS[row.step - 1]
        last = truth[(row.series_id, day(30).strftime("%Y-%m-%d"))]
        slope = abs(store.slopes[row.series_id])
        assert row.actual == pytest.approx(actual)
        assert row.forecast == pytest.approx(actual - offset)
        assert row.error == pytest.approx(offset)
        assert row.abs_error == pytest.approx(abs(offset))
        assert row.squared_error == pytest.approx(offset**2)
        assert row.last_value == pytest.approx(last)
        assert row.last_value_abs_error == pytest.approx(abs(actual - last))
        assert row.last_value_squared_error == pytest.approx((actual - last) ** 2)
        assert row.abs_error_scaled == pytest.approx(abs(offset) * slope)
        assert row.last_value_abs_error_scaled == pytest.approx(abs(actual - last) * slope)
        assert row.lo_80 == pytest.approx(actual - offset - HALF_WIDTH)
        assert row.hi_80 == pytest.approx(actual - offset + HALF_WIDTH)
        assert row.width_80 == pytest.approx(2 * HALF_WIDTH)
        assert row.hit_80 == (abs(offset) <= HALF_WIDTH)
        assert (row.model_name, row.model_version) == (MODEL_NAME, "1")


def test_a_partition_waits_for_its_actuals_is_completed_later_and_reruns_change_nothing(
    store: Store, tmp_path: Path
) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30)
    source = tmp_path / "actuals.csv"
    path = scores_file(scores, 30)

    write_actuals(source, days=31)  # up to day 30, the as_of: nothing has arrived
    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK
    assert not path.parent.exists()

    write_actuals(source, days=32)  # day 31: step 1 of each series
    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK
    partial = pd.read_parquet(path)
    assert partial["step"].tolist() == [1, 1]
    assert monitor.read_scores_metadata(path)["complete"] is False

    write_actuals(source, days=DAYS)
    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK
    complete = path.read_bytes()
    assert len(pd.read_parquet(path)) == len(SERIES) * HORIZON
    assert monitor.read_scores_metadata(path)["complete"] is True
    modified = path.stat().st_mtime_ns

    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK
    assert path.read_bytes() == complete
    assert path.stat().st_mtime_ns == modified
    assert sorted(item.name for item in scores.iterdir()) == [
        monitor.MONITOR_LOCK_FILE,
        partitions.partition_name(day(30)),
    ]


def test_a_forecast_of_another_version_is_scored_and_tracked_under_its_own(
    store: Store, tmp_path: Path
) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30, "1")
    write_forecast(forecasts, store, 32, "2")
    source = write_actuals(tmp_path / "actuals.csv")

    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK

    assert set(pd.read_parquet(scores_file(scores, 30))["model_version"]) == {"1"}
    assert set(pd.read_parquet(scores_file(scores, 32))["model_version"]) == {"2"}
    client = MlflowClient()
    experiment = client.get_experiment_by_name("monitoring")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.monitored_model = '{MODEL_NAME}'",
    )
    by_name = {run.info.run_name: run for run in runs}
    assert {f"{MODEL_NAME} v1", f"{MODEL_NAME} v2"} <= set(by_name)
    run_id = by_name[f"{MODEL_NAME} v2"].info.run_id
    history = client.get_metric_history(run_id, "rows_scored")
    assert {(point.step, point.value) for point in history} == {
        (as_of_step(day(32)), len(SERIES) * HORIZON)
    }
    assert by_name[f"{MODEL_NAME} v2"].info.status == "FINISHED"
    plots = {item.path for item in client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/forecast_vs_actual.png", "plots/rolling_error.png"}
    # The experiment is in the UI's model-training mode, as every experiment of ours.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


# --------------------------------------------------------------------------------------------
# Alarms


def test_an_alarm_exits_4_writes_alarm_json_and_tags_the_version_then_clears(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    source = write_actuals(tmp_path / "actuals.csv")
    # Errors many times the crafted reference's at every step: the MAE rule must fire.
    write_forecast(forecasts, store, 30, "1", offsets=np.array([30.0, 30.0, 30.0]))

    code = monitor_command.main(arguments(forecasts, scores, source, "--window", "1"))

    assert code == exit_codes.EXIT_ALARM
    alarm = json.loads((scores / monitor.ALARM_FILE).read_text())
    assert alarm["model_version"] == "1"
    rules = {item["rule"] for item in alarm["alarms"]}
    assert "mae" in rules
    slope = np.array([abs(store.slopes[name]) for name in SERIES])
    expected_ratio = 30.0 * slope.mean() / REFERENCE.mae_by_step.mean()
    assert alarm["window"]["mae_ratio"] == pytest.approx(expected_ratio)
    assert alarm["window"]["mae_threshold"] == pytest.approx(max(1.1, 1 + 3 * 0.4))
    tags = MlflowClient().get_model_version(MODEL_NAME, "1").tags
    assert tags[STATUS_TAG] == "degraded"
    assert "mae" in tags["monitoring_alarm"]
    assert "alarm mae" in capsys.readouterr().out

    # The next day's forecast is exact, its band centred on the actual: the window of one
    # forecast breaks no rule, and the alarm is cleared.
    write_forecast(forecasts, store, 31, "1", offsets=np.zeros(HORIZON))
    code = monitor_command.main(arguments(forecasts, scores, source, "--window", "1"))
    assert code == exit_codes.EXIT_OK
    assert not (scores / monitor.ALARM_FILE).exists()
    assert MlflowClient().get_model_version(MODEL_NAME, "1").tags[STATUS_TAG] == "ok"


def test_a_rerun_logs_no_new_metric_points(store: Store, tmp_path: Path) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    source = write_actuals(tmp_path / "actuals.csv")
    experiment = f"monitoring-{tmp_path.name}"
    for as_of_day in (30, 31, 32):
        write_forecast(forecasts, store, as_of_day)
    options = arguments(forecasts, scores, source, "--monitor-experiment-name", experiment)

    assert monitor_command.main(options) == exit_codes.EXIT_OK
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    first = client.get_metric_history(run.info.run_id, "mae_ratio")
    assert sorted(point.step for point in first) == [as_of_step(day(d)) for d in (30, 31, 32)]
    assert monitor_command.main(options) == exit_codes.EXIT_OK
    assert len(client.get_metric_history(run.info.run_id, "mae_ratio")) == len(first)


# --------------------------------------------------------------------------------------------
# Bad input: one error line, exit 2, nothing written


def test_no_forecasts_folder_is_refused(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "scores"
    code = monitor_command.main(arguments(tmp_path / "missing", scores, store.source))
    assert code == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: parameter forecast_output: no forecasts folder")
    assert "missing" in error
    assert not scores.exists()


def test_actuals_without_the_models_target_are_refused(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30)
    source = tmp_path / "actuals.csv"
    actuals().drop(columns="value").to_csv(source, index=False)

    code = monitor_command.main(arguments(forecasts, scores, source))

    assert code == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ")
    assert "value" in error[0]
    assert not scores.exists()


def test_an_unparseable_timestamp_in_the_actuals_is_refused(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30)
    frame = actuals()
    frame.loc[33, "date"] = "2021-02-31"
    source = tmp_path / "actuals.csv"
    frame.to_csv(source, index=False)

    code = monitor_command.main(arguments(forecasts, scores, source))

    assert code == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "actuals.csv" in error[0] and "2021-02-31" in error[0]
    assert not scores.exists()


def test_bad_settings_are_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option, value in (("--window", "0"), ("--mae-factor", "0.9"), ("--coverage-band", "1")):
        code = monitor_command.main(["--forecast-output", str(tmp_path), option, value])
        assert code == exit_codes.EXIT_BAD_INPUT
        assert option.removeprefix("--").replace("-", "_") in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# A killed write and two runs at once


def test_sigkill_during_the_write_leaves_no_partial_partition(store: Store, tmp_path: Path) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    write_forecast(forecasts, store, 30)
    source = write_actuals(tmp_path / "actuals.csv")
    signal_file = tmp_path / "staged"
    worker = subprocess.Popen(
        [
            sys.executable,
            str(REPOSITORY_ROOT / "tests" / "forecast_worker.py"),
            "--monitor",
            *arguments(forecasts, scores, source),
        ],
        env=subprocess_environment(FORECAST_WORKER_SIGNAL=str(signal_file)),
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not signal_file.exists():
            assert worker.poll() is None, "the worker ended before its write"
            assert time.monotonic() < deadline, "the worker never reached its write"
            time.sleep(0.1)
        staged = Path(signal_file.read_text())
        assert (staged / monitor.SCORES_FILE).exists()  # fully staged, not yet visible
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert not scores_file(scores, 30).parent.exists()
    assert [p.name for p in scores.glob("as_of=*")] == []

    assert monitor_command.main(arguments(forecasts, scores, source)) == exit_codes.EXIT_OK
    assert len(pd.read_parquet(scores_file(scores, 30))) == len(SERIES) * HORIZON
    assert not list(scores.glob(".staging-*"))


def test_two_runs_at_once_give_one_table(store: Store, tmp_path: Path) -> None:
    forecasts, scores = tmp_path / "forecasts", tmp_path / "scores"
    for as_of_day in (30, 33):
        write_forecast(forecasts, store, as_of_day)
    source = write_actuals(tmp_path / "actuals.csv")
    command = [
        sys.executable,
        "-m",
        "pipelines.cli.monitor",
        *arguments(forecasts, scores, source, "--lock-timeout", "100"),
    ]
    workers = [
        subprocess.Popen(
            command,
            env=subprocess_environment(),
            cwd=store.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [worker.communicate(timeout=SUBPROCESS_TIMEOUT) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], results
    together = {str(p.relative_to(scores)): p.read_bytes() for p in scores.glob("as_of=*/*")}

    alone = tmp_path / "alone"
    assert monitor_command.main(arguments(forecasts, alone, source)) == exit_codes.EXIT_OK
    assert together == {str(p.relative_to(alone)): p.read_bytes() for p in alone.glob("as_of=*/*")}
    assert len(together) == 2
