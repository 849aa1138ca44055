"""Settings are checked at the door: every bad setting below exits 2 with one `error:` line that
names its key, before any data are read or any MLflow store or run is created."""

from __future__ import annotations

import datetime
import importlib
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import exit_codes
from pipelines.config.loading import config_to_dict, dump_yaml, load_config
from pipelines.data import prepare as prepare_module
from pipelines.settings import ConfigError, parse_utc_time

BAD_SETTINGS = [
    ("prepare", ["--frequency", "7parsecs"], "data.frequency", "got '7parsecs'"),
    ("prepare", ["--frequency", "0min"], "data.frequency", "positive step"),
    ("train", ["--frequency=-1h"], "data.frequency", "positive step"),
    (
        "train",
        ["--model", "gru", "--set", "model.hparams.decoder=parallel"],
        "model.hparams.decoder",
        "set segment_length",
    ),
    (
        "train",
        ["--model", "gru", "--input-width", "30", "--set", "model.hparams.segment_length=7"],
        "model.hparams.segment_length",
        "expected a divisor of the input width 30, got 7",
    ),
    (
        "train",
        ["--model", "gru", "--set", "model.hparams.channel_embedding=true"],
        "model.hparams.channel_embedding",
        "channel_independent=True",
    ),
    (
        "train",
        ["--model", "linear", "--input-width", "10", "--set", "model.hparams.lookback=11"],
        "model.hparams.lookback",
        "at most the input width 10, got 11",
    ),
    (
        "train",
        ["--model", "conv", "--input-width", "2"],
        "model.hparams.kernel_size",
        "at most the input width 2, got 3",
    ),
    (
        "compare",
        ["--models", "last,clockwork", "--set", "model.hparams.units=30"],
        "model.hparams.periods",
        "multiple of 4",
    ),
    ("compare", ["--horizon", "40"], "model.hparams.season", "the default season is the horizon"),
    (
        "main",
        ["--models", "gru", "--input-width", "28", "--set", "model.hparams.segment_length=5"],
        "model.hparams.segment_length",
        "divisor of the input width 28",
    ),
    (
        "backtest",
        ["--model=peephole", "--models=last,peephole", "--set=model.hparams.peepholes=input,cell"],
        "model.hparams.peepholes",
        "got 'cell'",
    ),
    ("backtest", ["--fold-starts", "yesterday"], "backtest.fold_starts", "got 'yesterday'"),
    (
        "backtest",
        ["--fold-starts", "2015-06-01,2015-01-01"],
        "backtest.fold_starts",
        "expected increasing dates, got 2015-06-01T00:00:00Z, 2015-01-01T00:00:00Z",
    ),
    ("train", ["--seed", "-1"], "training.seed", "an integer in [0, 4294967295], got -1"),
    ("prepare", ["--split", "2015-06-01,2015-01-01"], "data.split", "is after test start"),
    ("backtest", ["--training-window", "rolling"], "backtest.window", "expanding, sliding"),
    ("backtest", ["--refit", "-1"], "backtest.refit", "an integer >= 0"),
    ("forecast", ["--as-of", "2015-02-30"], "forecast.as_of", "got '2015-02-30'"),
    ("forecast", ["--as-of", "/etc/passwd"], "forecast.as_of", "ISO 8601"),
    ("forecast", ["--lock-timeout", "inf"], "forecast.lock_timeout", "a finite number >= 0"),
    ("train", ["--split", "2015-01-01,soon"], "data.split", "got 'soon'"),
    ("train", ["--loss", "msa"], "training.loss", "did you mean 'mse'?"),
    ("train", ["--epochs", "0"], "training.epochs", "an integer >= 1, got 0"),
    ("train", ["--learning-rate", "nan"], "training.learning_rate", "a finite number > 0"),
    ("train", ["--ema-momentum", "1"], "training.ema_momentum", "in [0, 1)"),
    ("train", ["--scaler", "robust"], "data.scaler", "standard, minmax"),
]


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Reading any data fails the test; the tracking store is a file that must not appear."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("data were read before the settings were checked")

    monkeypatch.setattr(prepare_module, "load_source", refuse)
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    return store


@pytest.mark.parametrize(("entry_point", "argv", "key", "fragment"), BAD_SETTINGS)
def test_a_bad_setting_exits_2_with_one_line_before_any_work(
    entry_point: str,
    argv: list[str],
    key: str,
    fragment: str,
    no_work: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = importlib.import_module(f"pipelines.cli.{entry_point}")
    code = command.main(["--dataset=seattle-weather", *argv])
    assert code == exit_codes.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: config key '{key}'"), line
    assert fragment in line
    assert not no_work.exists()


def test_now_and_today_mean_one_thing_in_every_date_setting() -> None:
    clock = pd.Timestamp("2026-12-07T08:15:42.5", tz="UTC")
    assert parse_utc_time("now", now=clock) == pd.Timestamp("2026-12-07T08:15:42", tz="UTC")
    assert parse_utc_time(" Today ", now=clock) == pd.Timestamp("2026-12-07", tz="UTC")
    # The same reading in the forecast's as_of, the backtest's fold starts and the split dates.
    config = load_config(
        overrides={"as_of": "now", "fold_starts": "2015-06-01,today", "split": "2014-01-01,now"}
    )
    as_of = pd.Timestamp(config.forecast.as_of)
    assert as_of.tzinfo is not None and as_of.microsecond == 0
    assert abs(pd.Timestamp.now(tz="UTC") - as_of) < pd.Timedelta(minutes=1)
    assert config.backtest.fold_starts[1] == pd.Timestamp.now(tz="UTC").normalize()
    assert config.backtest.fold_starts[0] == datetime.datetime(2015, 6, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-02-07", "2018-02-07T00:00:00+00:00"),
        ("2018-02-07T17:00+01:00", "2018-02-07T16:00:00+00:00"),
        ("2018-02-07 16:00:00Z", "2018-02-07T16:00:00+00:00"),
        (datetime.date(2018, 2, 7), "2018-02-07T00:00:00+00:00"),
    ],
)
def test_times_are_read_as_utc(text: object, expected: str) -> None:
    assert parse_utc_time(text).isoformat() == expected


@pytest.mark.parametrize("text", ["yesterday", "07/02/2018", "1518000000", "", "2018-02-30", True])
def test_other_times_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="expected an ISO 8601 time"):
        parse_utc_time(text)


def test_times_outside_the_supported_range_are_named() -> None:
    with pytest.raises(ValueError, match=r"expected a time between 1677-09-21.* got '9999-12-31'"):
        parse_utc_time("9999-12-31")


def test_date_settings_round_trip_through_the_logged_config(tmp_path: Path) -> None:
    config = load_config(
        overrides={"as_of": "2018-02-07T17:00+01:00", "fold_starts": "2015-01-01,2015-06-01"}
    )
    assert config_to_dict(config)["forecast"]["as_of"] == "2018-02-07T16:00:00Z"
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(config), encoding="utf-8")
    assert load_config(path) == config


def test_a_frequency_is_parsed_at_the_door() -> None:
    assert load_config(overrides={"frequency": "10min"}).data.frequency == "10min"
    assert load_config(overrides={"frequency": "trading-days"}).data.frequency == "trading-days"
    with pytest.raises(ConfigError, match="got 'parsecs'"):
        load_config(overrides={"frequency": "parsecs"})
