"""The command-line options of every entry point, generated from one schema."""

from __future__ import annotations

import contextlib
import io

import pytest

from pipelines.config.loading import load_config
from pipelines.config.options import ENTRY_POINT_OPTIONS, build_parser, option_flag, read_config
from pipelines.config.schema import FLAT_PARAMETERS
from pipelines.settings import ConfigError

ENTRY_POINTS = sorted(ENTRY_POINT_OPTIONS)


def help_text(entry_point: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit) as exit_info:
        build_parser(entry_point).parse_args(["--help"])
    assert exit_info.value.code == 0
    return output.getvalue()


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_help_lists_each_setting_under_its_one_name(entry_point: str) -> None:
    text = help_text(entry_point)
    for name in ENTRY_POINT_OPTIONS[entry_point]:
        assert option_flag(name) in text
        assert f"sets {FLAT_PARAMETERS[name]})" in " ".join(text.split())
    assert "--config" in text and "--set KEY=VALUE" in text


def test_a_setting_shared_by_entry_points_has_the_same_option_everywhere() -> None:
    flags_by_key: dict[str, set[str]] = {}
    for entry_point in ENTRY_POINTS:
        parser = build_parser(entry_point)
        for action in parser._actions:  # argparse has no public list of its options
            if action.dest in FLAT_PARAMETERS:
                flags_by_key.setdefault(FLAT_PARAMETERS[action.dest], set()).update(
                    action.option_strings
                )
    assert flags_by_key["data.input_width"] == {"--input-width"}
    assert all(len(flags) == 1 for flags in flags_by_key.values()), flags_by_key


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_set_works_in_every_entry_point(entry_point: str) -> None:
    config = read_config(
        entry_point, ["--set", "training.epochs=3", "--set", "forecast.lock_timeout=1.5"]
    )
    assert config.training.epochs == 3 and config.forecast.lock_timeout == 1.5


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_the_same_words_mean_the_same_values_everywhere(entry_point: str) -> None:
    for word in ["on", "yes", "true", "1", "True"]:
        config = read_config(entry_point, ["--set", f"data.calendar_features={word}"])
        assert config.data.calendar_features is True
    for word in ["off", "no", "false", "0"]:
        config = read_config(entry_point, ["--set", f"data.per_series_scaling={word}"])
        assert config.data.per_series_scaling is False


def test_a_yes_no_option_alone_means_yes_and_takes_a_word() -> None:
    assert read_config("prepare", ["--log-returns", "--dataset", "stocks-5yr"]).data.log_returns
    config = read_config("prepare", ["--per-series-scaling", "off"])
    assert config.data.per_series_scaling is False
    assert read_config("forecast", ["--replace"]).forecast.replace is True
    assert read_config("forecast", ["--replace", "no"]).forecast.replace is False


def test_an_empty_option_is_not_given_and_the_file_stands(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training: {epochs: 9}\ndata: {horizon: 4}\n", encoding="utf-8")
    config = read_config("train", ["--config", str(path), "--epochs", "", "--horizon", "5"])
    assert config.training.epochs == 9 and config.data.horizon == 5
    assert config == load_config(path, {"horizon": "5"})


@pytest.mark.parametrize(
    ("entry_point", "arguments", "message"),
    [
        ("train", ["--epochs", "0"], r"'training.epochs' \(from parameter 'epochs'\): expected"),
        ("prepare", ["--set", "data.horizn=3"], "did you mean 'data.horizon'?"),
        ("forecast", ["--epochs", "3"], "unrecognized arguments: --epochs 3"),
        ("compare", ["--models", "last", "--set", "models=gru"], "disagree"),
        ("main", ["--set", "epochs"], "expected KEY=VALUE"),
    ],
)
def test_bad_options_are_config_errors_before_anything_runs(
    entry_point: str, arguments: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        read_config(entry_point, arguments)
