"""Batch forecast: known answers, the as_of cut, skipped series, errors, atomicity and locking."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from pipelines.cli import exit_codes
from pipelines.cli import forecast as forecast_command
from pipelines.cli.forecast import DEFAULT_FORECAST_EXPERIMENT
from pipelines.config.loading import dump_yaml, load_config
from pipelines.data.prepare import run as prepare_data
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import calibrate
from pipelines.serving import batch, partitions
from pipelines.serving.pyfunc import log_forecast_model
from pipelines.settings import parse_utc_time
from tests.conftest import subprocess_environment

MODEL_NAME = "forecaster"
INPUT_WIDTH = 5
HORIZON = 3
DAYS = 80
SERIES = ("A", "B", "C", "D", "E")
START = pd.Timestamp("2021-01-01", tz="UTC")
LAST_DAY = START + pd.Timedelta(days=DAYS - 1)
LAST_PARTITION = "as_of=2021-03-21T000000Z"
SUBPROCESS_TIMEOUT = 120


def synthetic(series: tuple[str, ...] = SERIES, days: int = DAYS) -> pd.DataFrame:
    """Daily rows of several series with distinct levels (as a CSV would hold them)."""
    frames = []
    steps = np.arange(days)
    for index, name in enumerate(series):
        level = 10.0 * (index + 1)
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.date_range(START, periods=days, freq="D").strftime("%Y-%m-%d"),
                    "name": name,
                    "value": level + np.sin(steps / 3.0) * (index + 1) + 0.1 * steps,
                    "other": np.cos(steps / 5.0) + index,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_source(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Store:
    root: Path
    source: Path
    model_uri: str
    features: tuple[str, ...]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A SQLite store with `forecaster` v1 (untrained dense, units 4) as champion.

    Its run logs a config.yaml whose data section reads the synthetic CSV, as training does.
    """
    root = tmp_path_factory.mktemp("forecast-store")
    source = write_source(synthetic(), root / "history.csv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(None)
        client = MlflowClient()
        training = client.create_experiment(
            "training", artifact_location=(root / "artifacts").as_uri()
        )
        client.create_experiment(
            DEFAULT_FORECAST_EXPERIMENT, artifact_location=(root / "forecast-runs").as_uri()
        )
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
        # A segment model with parallel decoding, so the entry point runs the newest layers.
        keras_model = build_model(
            "gru",
            ModelShape(
                input_width=INPUT_WIDTH,
                horizon=HORIZON,
                n_features=len(spec.features),
                target_indices=(spec.features.index("value"),),
            ),
            units=4,
            channel_independent=True,
            segment_length=INPUT_WIDTH,
            decoder="parallel",
            channel_embedding=True,
        )
        with mlflow.start_run(experiment_id=training):
            mlflow.log_text(dump_yaml(config), "config.yaml")
            log_forecast_model(
                keras_model,
                prepared.scaler,
                spec,
                frequency=prepared.summary["frequency"],
                model_name="gru",
                input_example=prepared.frame,
                # Calibrated: the partitions carry its interval bounds too.
                calibration=calibrate(np.random.default_rng(0).normal(size=(50, HORIZON, 1))),
                registered_model_name=MODEL_NAME,
            )
        client.set_registered_model_alias(MODEL_NAME, "champion", "1")
        yield Store(root, source, f"models:/{MODEL_NAME}@champion", tuple(spec.features))
        while mlflow.active_run() is not None:
            mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def loaded(store: Store) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/1")


def history_input(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """The CSV frame in the model's input form (last input_width rows per series)."""
    renamed = frame.rename(columns={"date": "timestamp", "name": "series_id"})
    return to_model_input(renamed, features, last_rows=INPUT_WIDTH)


def forecast_runs(output: Path) -> list:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(DEFAULT_FORECAST_EXPERIMENT)
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"params.output = '{output.resolve()}'",
        order_by=["attributes.start_time ASC"],
    )


def cli(store: Store, output: Path, *arguments: str) -> list[str]:
    return ["--model-uri", store.model_uri, "--forecast-output", str(output), *arguments]


# --------------------------------------------------------------------------------------------
# Known answers and the file


def test_forecast_equals_the_model_on_the_same_history(
    store: Store, loaded: mlflow.pyfunc.PyFuncModel, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    assert forecast_command.main(cli(store, output)) == exit_codes.EXIT_OK

    path = output / LAST_PARTITION / partitions.FORECAST_FILE
    written = pd.read_parquet(path)
    expected = loaded.predict(history_input(synthetic(), store.features))
    assert len(written) == len(SERIES) * HORIZON
    assert written["series_id"].tolist() == list(np.repeat(SERIES, HORIZON))
    assert written["step"].tolist() == list(range(1, HORIZON + 1)) * len(SERIES)
    bands = ["value_lo_90", "value_lo_80", "value_hi_80", "value_hi_90"]
    assert list(written.columns[3:8]) == ["value", *bands]
    np.testing.assert_allclose(written[["value", *bands]], expected[["value", *bands]], rtol=1e-6)
    first_step = written.loc[written["step"] == 1, "timestamp"]
    assert (first_step == LAST_DAY + pd.Timedelta(days=1)).all()
    assert (written["as_of"] == LAST_DAY).all()
    assert set(written["model_name"]) == {MODEL_NAME}
    assert set(written["model_version"]) == {"1"}
    assert set(written["model_type"]) == {"gru"}

    schema = pq.read_schema(path)
    assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("step").type) == "int64"
    assert str(schema.field("value").type) == "double"
    metadata = json.loads(schema.metadata[partitions.METADATA_KEY])
    assert metadata["skipped"] == []
    assert metadata["series_forecast"] == list(SERIES)
    assert metadata["model_version"] == "1"
    assert metadata["as_of"] == LAST_DAY.isoformat()
    # Nothing but the partition and the lock: no staging debris.
    assert sorted(p.name for p in output.iterdir()) == [partitions.LOCK_FILE, LAST_PARTITION]

    (run,) = forecast_runs(output)
    params, metrics = run.data.params, run.data.metrics
    assert params["model_uri"] == store.model_uri
    assert params["model_version"] == "1"
    assert params["as_of"] == LAST_DAY.isoformat()
    assert params["outcome"] == "written"
    assert metrics["rows"] == len(SERIES) * HORIZON
    assert metrics["series_forecast"] == len(SERIES)
    assert metrics["series_skipped"] == 0
    assert metrics["data_freshness_seconds"] > 0
    assert metrics["duration_seconds"] > 0
    assert run.data.tags["skipped_series"] == "none"
    assert run.info.status == "FINISHED"


def test_every_series_goes_through_one_predict_call(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = mlflow.pyfunc.PyFuncModel.predict

    def counting(self: Any, data: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
        calls.append(int(data["series_id"].nunique()))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc.PyFuncModel, "predict", counting)
    config = load_config(overrides={"model_uri": store.model_uri, "forecast_output": str(tmp_path)})
    result = batch.run(config)
    assert calls == [len(SERIES)]
    assert result.frame["series_id"].nunique() == len(SERIES)


def test_rows_after_as_of_are_never_used(
    store: Store, loaded: mlflow.pyfunc.PyFuncModel, tmp_path: Path
) -> None:
    as_of = START + pd.Timedelta(days=59)
    original = synthetic()
    changed = original.copy()
    later = pd.to_datetime(changed["date"], utc=True) > as_of
    changed.loc[later, ["value", "other"]] *= 100.0
    results = []
    for name, frame in (("original", original), ("changed", changed)):
        source = write_source(frame, tmp_path / f"{name}.csv")
        config = load_config(
            overrides={
                "model_uri": store.model_uri,
                "source": str(source),
                "as_of": as_of.isoformat(),
                "forecast_output": str(tmp_path / name),
            }
        )
        results.append(batch.run(config).frame)
    np.testing.assert_array_equal(results[0]["value"], results[1]["value"])
    until = original.loc[pd.to_datetime(original["date"], utc=True) <= as_of]
    expected = loaded.predict(history_input(until, store.features))
    np.testing.assert_allclose(results[0]["value"], expected["value"], rtol=1e-6)
    assert results[0]["timestamp"].min() == as_of + pd.Timedelta(days=1)


def test_same_forecast_twice_is_byte_identical_and_a_logged_no_op(
    store: Store, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    path = output / LAST_PARTITION / partitions.FORECAST_FILE
    assert forecast_command.main(cli(store, output)) == exit_codes.EXIT_OK
    first = path.read_bytes()
    first_inode = path.stat().st_ino
    assert forecast_command.main(cli(store, output)) == exit_codes.EXIT_OK
    assert path.read_bytes() == first
    assert path.stat().st_ino == first_inode  # left as is, not rewritten
    outcomes = [run.data.params["outcome"] for run in forecast_runs(output)]
    assert outcomes == ["written", "unchanged"]
    # Published with the modes of a plain mkdir/open, not the private ones of temp files.
    umask = os.umask(0)
    os.umask(umask)
    assert path.parent.stat().st_mode & 0o777 == 0o777 & ~umask
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_another_selection_needs_replace_which_swaps_the_file(store: Store, tmp_path: Path, capsys):
    output = tmp_path / "out"
    path = output / LAST_PARTITION / partitions.FORECAST_FILE
    assert forecast_command.main(cli(store, output)) == exit_codes.EXIT_OK
    before = path.read_bytes()
    capsys.readouterr()

    assert forecast_command.main(cli(store, output, "--series", "A")) == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1
    assert "already holds forecasts of model 'forecaster' version 1" in error
    assert "--replace" in error
    assert path.read_bytes() == before

    assert (
        forecast_command.main(cli(store, output, "--series", "A", "--replace"))
        == exit_codes.EXIT_OK
    )
    replaced = pd.read_parquet(path)
    assert set(replaced["series_id"]) == {"A"}
    assert partitions.read_metadata(path)["series_requested"] == ["A"]
    assert [p.name for p in (output / LAST_PARTITION).iterdir()] == [partitions.FORECAST_FILE]


# --------------------------------------------------------------------------------------------
# Series that cannot be forecast


def skipping_source(tmp_path: Path) -> Path:
    """A and B fine; C stale; D a gap in its last window; E too short; Z unknown to the model."""
    frame = synthetic((*SERIES, "Z"))
    dates = pd.to_datetime(frame["date"], utc=True)
    drop = (
        ((frame["name"] == "C") & (dates > LAST_DAY - pd.Timedelta(days=3)))
        | (
            (frame["name"] == "D")
            & dates.between(LAST_DAY - pd.Timedelta(days=3), LAST_DAY - pd.Timedelta(days=2))
        )
        | ((frame["name"] == "E") & (dates < LAST_DAY - pd.Timedelta(days=2)))
    )
    return write_source(frame.loc[~drop], tmp_path / "skipping.csv")


def test_skipped_series_are_listed_and_the_others_written(store: Store, tmp_path: Path) -> None:
    output = tmp_path / "out"
    source = skipping_source(tmp_path)
    code = forecast_command.main(cli(store, output, "--source", str(source)))
    assert code == exit_codes.EXIT_PARTIAL

    path = output / LAST_PARTITION / partitions.FORECAST_FILE
    written = pd.read_parquet(path)
    assert sorted(set(written["series_id"])) == ["A", "B"]
    metadata = partitions.read_metadata(path)
    reasons = {item["series_id"]: item["reason"] for item in metadata["skipped"]}
    assert reasons == {"C": "stale", "D": "gap", "E": "too_short", "Z": "unknown"}

    (run,) = forecast_runs(output)
    assert run.data.tags["skipped_series"] == "C,D,E,Z"
    assert run.data.tags["exit_code"] == "3"
    assert run.data.metrics["series_skipped"] == 4
    assert run.data.metrics["series_forecast"] == 2
    listed = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/skipped_series.json")
    assert [item["reason"] for item in listed["skipped"]] == [
        "stale",
        "gap",
        "too_short",
        "unknown",
    ]


def test_plan_flags_trading_day_staleness_by_the_datas_own_calendar() -> None:
    days = pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-08"], utc=True)
    frame = pd.DataFrame(
        {
            "series_id": ["fresh"] * 4 + ["one_behind"] * 3 + ["two_behind"] * 2,
            "segment": [0] * 4 + [1] * 3 + [2] * 2,
            "timestamp": [*days, *days[:3], *days[:2]],
            "value": np.arange(9.0),
        }
    )
    plan = batch.plan_forecast(
        frame,
        input_width=2,
        features=["value"],
        frequency="trading-days",
        as_of=days[-1],
        known_series=None,
    )
    # Jan 7 is a holiday of this data: one_behind misses one trading day, two_behind two.
    assert plan.series == ["fresh", "one_behind"]
    assert [(item.series_id, item.reason) for item in plan.skipped] == [("two_behind", "stale")]
    assert plan.window_rows["series_id"].tolist() == ["fresh", "fresh", "one_behind", "one_behind"]


# --------------------------------------------------------------------------------------------
# Errors: one line, exit 2, nothing written


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--model-uri", "models:/forcaster@champion"],
            "'forcaster' not found; did you mean 'forecaster'?",
        ),
        (["--model-uri", "models:/forecaster@gold"], "has no alias 'gold'; available: 'champion'"),
        (["--model-uri", "models:/forecaster/9"], "has no version 9"),
        (["--model-uri", "runs:/abc/model"], "expected models:/NAME@ALIAS or models:/NAME/VERSION"),
        (["--series", "A,Bee"], "series 'Bee' not found"),
        (["--series", "../etc"], "series '../etc' not found"),
        (["--as-of", "2020-01-01"], "is before the data, which starts at 2021-01-01"),
        (["--as-of", "../../x"], "expected an ISO 8601 time such as 2018-02-07"),
        (["--as-of", "soon"], "or now or today, got 'soon'"),
        (["--as-of", "2021-13-45"], "got '2021-13-45'"),
        (["--lock-timeout", "soon"], "'forecast.lock_timeout' (from parameter 'lock_timeout')"),
        (["--lock-timeout", "-1"], "expected a finite number >= 0, got -1.0"),
        (["--replace", "maybe"], "'forecast.replace' (from parameter 'replace')"),
        (["--set", "forecast.levels=0"], "'forecast.levels'"),
        (["--set", "forecast.levels=high"], "'forecast.levels'"),
    ],
)
def test_bad_input_is_one_error_line_and_nothing_written(
    store: Store, tmp_path: Path, capsys, arguments: list[str], message: str
) -> None:
    output = tmp_path / "out"
    base = ["--forecast-output", str(output)]
    if "--model-uri" not in arguments:
        base += ["--model-uri", store.model_uri]
    assert forecast_command.main([*base, *arguments]) == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1
    assert message in error
    assert not output.exists()
    assert not list(tmp_path.parent.glob("as_of=*")) and not list(store.root.glob("as_of=*"))


def test_forecast_levels_pick_the_partitions_bands(store: Store, tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert forecast_command.main(cli(store, output, "--set", "forecast.levels=95")) == 0
    written = pd.read_parquet(output / LAST_PARTITION / partitions.FORECAST_FILE)
    assert list(written.columns[3:6]) == ["value", "value_lo_95", "value_hi_95"]
    assert (written["value_lo_95"] <= written["value_hi_95"]).all()


def test_forecast_recalibrate_gives_the_models_recalibrated_bands(
    store: Store, loaded: mlflow.pyfunc.PyFuncModel, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "out"
    arguments = cli(store, output, "--set", "forecast.recalibrate=20")
    assert forecast_command.main(arguments) == 0
    written = pd.read_parquet(output / LAST_PARTITION / partitions.FORECAST_FILE)
    # The partition's bands are the model's own, recalibrated on each series' last
    # 5 + 20 + 3 - 1 = 27 rows.
    renamed = synthetic().rename(columns={"date": "timestamp", "name": "series_id"})
    expected = loaded.predict(
        to_model_input(renamed, store.features, last_rows=27), params={"recalibrate": 20}
    )
    bands = ["value", "value_lo_90", "value_lo_80", "value_hi_80", "value_hi_90"]
    np.testing.assert_allclose(written[bands], expected[bands], rtol=1e-6)
    # Too few windows for level 90: one error naming the setting, nothing written.
    other = tmp_path / "other"
    code = forecast_command.main(cli(store, other, "--set", "forecast.recalibrate=10"))
    assert code == exit_codes.EXIT_BAD_INPUT and not other.exists()
    assert "forecast.recalibrate: 10 windows cannot hold level 90, which needs 19" in (
        capsys.readouterr().err
    )

    # A series too short for the rows a recalibration reads is skipped, the reason saying so.
    frame = synthetic()
    short = pd.concat([frame.loc[frame["name"] != "A"], frame.loc[frame["name"] == "A"].tail(26)])
    source = write_source(short, tmp_path / "short.csv")
    partial = tmp_path / "partial"
    code = forecast_command.main(
        cli(store, partial, "--source", str(source), "--set", "forecast.recalibrate=20")
    )
    assert code == exit_codes.EXIT_PARTIAL
    path = partial / LAST_PARTITION / partitions.FORECAST_FILE
    assert sorted(set(pd.read_parquet(path)["series_id"])) == ["B", "C", "D", "E"]
    (skipped,) = partitions.read_metadata(path)["skipped"]
    assert (skipped["series_id"], skipped["reason"]) == ("A", "too_short")
    assert skipped["detail"].startswith(
        "recalibrating reads the last 27 rows: history too short: 26 rows"
    )


def test_all_series_too_short_names_the_input_width(store: Store, tmp_path: Path, capsys) -> None:
    frame = synthetic()
    source = write_source(frame.groupby("name").tail(INPUT_WIDTH - 2), tmp_path / "short.csv")
    output = tmp_path / "out"
    code = forecast_command.main(cli(store, output, "--source", str(source)))
    assert code == exit_codes.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert f"every series has fewer than {INPUT_WIDTH} rows" in error
    assert not output.exists()


def test_partition_names_are_normalised_utc_inside_the_output(tmp_path: Path) -> None:
    as_of = parse_utc_time("2018-02-07T10:30:00+02:00")
    assert partitions.partition_name(as_of) == "as_of=2018-02-07T083000Z"
    assert partitions.partition_name(parse_utc_time("2018-02-07")) == "as_of=2018-02-07T000000Z"
    path = partitions.partition_path(tmp_path / "out" / ".." / "out", as_of)
    assert path.parent == (tmp_path / "out").resolve()
    with pytest.raises(DataValidationError, match="fractions of a second"):
        partitions.partition_name(parse_utc_time("2018-02-07T00:00:00.5"))


# --------------------------------------------------------------------------------------------
# Locking, crashes and concurrency


def test_a_held_lock_exits_75_without_writing(store: Store, tmp_path: Path, capsys) -> None:
    output = tmp_path / "out"
    output.mkdir()
    with open(output / partitions.LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        code = forecast_command.main(cli(store, output, "--lock-timeout", "0.5"))
        waited = time.monotonic() - started
    assert code == exit_codes.EXIT_LOCKED
    assert waited >= 0.5
    error = capsys.readouterr().err
    assert error.startswith("error: another forecast run holds the lock")
    assert sorted(p.name for p in output.iterdir()) == [partitions.LOCK_FILE]
    assert forecast_runs(output) == []


def test_sigkill_while_writing_leaves_no_partition_and_the_next_run_completes(
    store: Store, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    signal_file = tmp_path / "staged"
    worker = subprocess.Popen(
        [
            sys.executable,
            str(REPOSITORY_ROOT / "tests" / "forecast_worker.py"),
            *cli(store, output),
        ],
        cwd=store.root,
        env=subprocess_environment(FORECAST_WORKER_SIGNAL=str(signal_file)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not signal_file.exists():
            assert worker.poll() is None, worker.stderr.read().decode()
            assert time.monotonic() < deadline, "the worker never reached the rename"
            time.sleep(0.1)
        staged = Path(signal_file.read_text(encoding="utf-8"))
        assert (staged / partitions.FORECAST_FILE).stat().st_size > 0  # fully staged, not renamed
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    assert not (output / LAST_PARTITION).exists()
    assert all(p.name.startswith(".") for p in output.iterdir())  # only hidden debris

    # The kernel dropped the dead worker's lock: the next run needs no waiting.
    assert forecast_command.main(cli(store, output, "--lock-timeout", "0")) == exit_codes.EXIT_OK
    written = pd.read_parquet(output / LAST_PARTITION / partitions.FORECAST_FILE)
    assert len(written) == len(SERIES) * HORIZON
    assert sorted(p.name for p in output.iterdir()) == [partitions.LOCK_FILE, LAST_PARTITION]


def test_two_concurrent_runs_give_one_partition_without_duplicates(
    store: Store, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    command = [sys.executable, "-m", "pipelines.cli.forecast", *cli(store, output)]
    command += ["--lock-timeout", str(SUBPROCESS_TIMEOUT)]
    workers = [
        subprocess.Popen(
            command,
            cwd=store.root,
            env=subprocess_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=SUBPROCESS_TIMEOUT) for worker in workers]
    codes = [worker.returncode for worker in workers]
    assert codes == [0, 0], outputs
    first_words = sorted(stdout.split()[0] for stdout, _ in outputs)
    assert first_words == ["unchanged", "written"]  # the second waited, then found it done
    written = pd.read_parquet(output / LAST_PARTITION / partitions.FORECAST_FILE)
    assert not written.duplicated(["series_id", "step"]).any()
    assert len(written) == len(SERIES) * HORIZON
    assert sorted(p.name for p in output.iterdir()) == [partitions.LOCK_FILE, LAST_PARTITION]
