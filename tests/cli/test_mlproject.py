"""MLproject: every parameter is one setting of the schema, passed as the option of its name.

A distinct value per parameter, run through the command as MLflow would fill it, must land on
exactly the setting the parameter names and read back as the same text (a swapped mapping such
as `--epochs {batch_size}` fails); every parameter left empty must give the defaults.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from pipelines.config.loading import flatten, load_config
from pipelines.config.options import ENTRY_POINT_OPTIONS, read_config
from pipelines.config.schema import FLAT_PARAMETERS
from pipelines.paths import REPOSITORY_ROOT

PROJECT = yaml.safe_load((REPOSITORY_ROOT / "MLproject").read_text())
ENTRY_POINTS = sorted(PROJECT["entry_points"])
FIXED_IN_COMMAND = {"prepare": {"prepare.log_run": "true"}}
"""Settings a command sets itself, whatever the parameters (prepare always logs its run)."""

# One valid value per parameter, all different from each other and from the defaults.
DISTINCT_VALUES = {
    "dataset": "weather-ltsf",
    "source": "/tmp/some-file.csv",
    "targets": "T (degC),p (mbar)",
    "input_width": "11",
    "horizon": "3",
    "split": "0.6,0.2,0.2",
    "model": "gru",
    "models": "last,peephole",
    "epochs": "7",
    "batch_size": "13",
    "learning_rate": "0.0123",
    "seed": "17",
    "experiment_name": "experiment-x",
    "registered_model_name": "registered-y",
    "forecast_output": "/tmp/forecast-z",
    "model_uri": "models:/registered-y/4",
    "as_of": "2020-06-01T06:30:00Z",
    "series": "a,b",
    "forecast_experiment_name": "forecast-experiment-w",
    "lock_timeout": "2.5",
    "replace": "true",
    "folds": "4",
    "fold_starts": "2015-01-01T00:00:00Z,2015-02-01T00:00:00Z",
    "fold_step": "9",
    "training_window": "sliding",
    "training_rows": "300",
    "refit": "2",
    "validation_fraction": "0.25",
    "monitor_output": "/tmp/monitor-v",
    "window": "5",
    "mae_factor": "1.25",
    "mae_sigmas": "2.5",
    "coverage_band": "0.95",
    "monitor_experiment_name": "monitor-experiment-u",
}


def command_words(entry_point: str, values: dict[str, str]) -> list[str]:
    """The entry point's command as MLflow fills it, split as a shell would."""
    spec = PROJECT["entry_points"][entry_point]
    command = " ".join(spec["command"].split())
    words = shlex.split(
        command.format(**{name: shlex.quote(value) for name, value in values.items()})
    )
    assert words[:3] == ["python", "-m", f"pipelines.cli.{entry_point}"]
    return words[3:]


def test_the_project_declares_every_entry_point() -> None:
    assert set(ENTRY_POINTS) == {
        "main",
        "prepare",
        "train",
        "compare",
        "forecast",
        "backtest",
        "monitor",
    }
    assert set(ENTRY_POINTS) <= set(ENTRY_POINT_OPTIONS)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_parameter_is_a_setting_of_the_entry_point(entry_point: str) -> None:
    for name in PROJECT["entry_points"][entry_point]["parameters"]:
        if name == "config":
            continue
        assert name in FLAT_PARAMETERS, f"{entry_point}: {name} is no setting of the schema"
        assert name in ENTRY_POINT_OPTIONS[entry_point], f"{entry_point}: no option --{name}"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_each_parameter_reaches_its_own_setting_and_back(entry_point: str) -> None:
    parameters = [name for name in PROJECT["entry_points"][entry_point]["parameters"]]
    values = {name: DISTINCT_VALUES.get(name, "") for name in parameters}
    values["config"] = ""
    config = read_config(entry_point, command_words(entry_point, values))
    flat = flatten(config)
    for name in parameters:
        if name == "config":
            continue
        dotted = FLAT_PARAMETERS[name]
        assert flat[dotted] == values[name], f"{entry_point}: {name} -> {dotted}"
    # ... and nothing else moved: the other settings keep their defaults.
    fixed = FIXED_IN_COMMAND.get(entry_point, {})
    assert all(flat[key] == value for key, value in fixed.items())
    given = {FLAT_PARAMETERS[name] for name in parameters if name != "config"} | set(fixed)
    defaults = flatten(load_config(overrides={"data.dataset": config.data.dataset}))
    moved = {
        key
        for key, value in flat.items()
        if key not in given and key != "data.dataset" and defaults.get(key) != value
    }
    assert not moved, f"{entry_point}: settings changed without a parameter: {sorted(moved)}"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_parameter_left_empty_gives_the_defaults(entry_point: str) -> None:
    parameters = PROJECT["entry_points"][entry_point]["parameters"]
    empty = dict.fromkeys(parameters, "")
    config = read_config(entry_point, command_words(entry_point, empty))
    expected = load_config(overrides=FIXED_IN_COMMAND.get(entry_point))
    assert config == expected


def test_a_config_file_parameter_is_read(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training: {epochs: 9}\n", encoding="utf-8")
    values = {name: "" for name in PROJECT["entry_points"]["train"]["parameters"]}
    values["config"] = str(path)
    assert read_config("train", command_words("train", values)).training.epochs == 9
