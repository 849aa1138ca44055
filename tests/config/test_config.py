"""Run configuration: defaults, YAML file, overrides, errors, and what is written back out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pydantic
import pytest

from models import zoo
from pipelines.config.loading import (
    MAX_PARAM_LENGTH,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_yaml,
    flatten,
    load_config,
    parameters_given,
    parse_assignments,
    valid_keys,
)
from pipelines.config.schema import (
    DEFAULT_COMPARE_MODELS,
    FLAT_PARAMETERS,
    ModelConfig,
    RunConfig,
    TrackingConfig,
    TrainingConfig,
)
from pipelines.data.catalog import default_entry_name
from pipelines.data.settings import SOURCE_PARAMETER_TYPES, DataConfig
from pipelines.paths import REPOSITORY_ROOT
from pipelines.settings import ConfigError

EXAMPLE = REPOSITORY_ROOT / "configs" / "weather-ltsf.yaml"


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path | None = None, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return str(caught.value)


# --------------------------------------------------------------------------------------------
# Defaults and precedence


def test_defaults():
    config = load_config()
    assert config == RunConfig()
    assert config.data.dataset == default_entry_name()
    assert config.data.split == "0.7,0.1,0.2"
    assert config.data.horizon is None and config.data.input_width is None
    assert config.model == ModelConfig(name="lstm", hparams={}, models=DEFAULT_COMPARE_MODELS)
    assert config.training == TrainingConfig(
        epochs=20,
        batch_size=64,
        learning_rate=1e-3,
        patience=5,
        seed=42,
        loss="mse",
        lr_schedule="constant",
    )
    assert config.tracking == TrackingConfig(
        experiment_name="forecaster", registered_model_name="forecaster", run_name=None
    )
    assert set(config.model.models) <= set(zoo.MODEL_NAMES)
    assert config.model.name in zoo.MODEL_NAMES
    assert ModelConfig(name="lstm", models=DEFAULT_COMPARE_MODELS) == config.model  # checked
    assert load_config("") == config  # MLproject's empty `config` parameter: no file


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.training.epochs = 3  # type: ignore[misc]


def test_yaml_file_overrides_defaults_and_keeps_the_rest(tmp_path):
    path = write_yaml(
        tmp_path,
        """
        data:
          dataset: weather-ltsf
          horizon: 48
          targets: [OT, "T (degC)"]
        model:
          name: gru
          hparams: {units: 16, dropout: 0.1}
        training:
          epochs: 3
          learning_rate: 1.0e-2
        tracking:
        """,
    )
    config = load_config(path)
    assert config.data.dataset == "weather-ltsf"
    assert config.data.horizon == 48 and config.data.input_width is None
    assert config.data.targets == ("OT", "T (degC)")
    assert config.model.name == "gru"
    assert config.model.hparams == {"units": 16, "dropout": 0.1}
    assert config.training.epochs == 3 and config.training.learning_rate == 0.01
    assert config.training.batch_size == 64
    assert config.tracking == TrackingConfig()


def test_dotted_and_flat_overrides_read_strings_by_type():
    config = load_config(
        overrides={
            "epochs": "3.0",
            "learning_rate": "1e-3",
            "training.batch_size": "32",
            "training.patience": "0",
            "data.per_series_scaling": "false",
            "data.calendar_features": "True",
            "targets": "temp_max, temp_min",
            "horizon": "none",
            "input_width": "14",
            "source": "",
            "data.sentinels": "-9999,-999.5",
            "model": "peephole",
            "models": "last,gru",
            "model.hparams.units": "64",
            "model.hparams.dropout": "0.25",
            "model.hparams.coupled_input_forget": "yes",
            "model.hparams.peepholes": "input,forget",
            "run_name": "try-1",
        }
    )
    assert config.training.epochs == 3 and isinstance(config.training.epochs, int)
    assert config.training.learning_rate == 0.001
    assert config.training.batch_size == 32 and config.training.patience == 0
    assert config.data.per_series_scaling is False and config.data.calendar_features is True
    assert config.data.targets == ("temp_max", "temp_min")
    assert config.data.horizon is None and config.data.input_width == 14
    assert config.data.source is None
    assert config.data.sentinels == (-9999.0, -999.5)
    assert config.model.name == "peephole" and config.model.models == ("last", "gru")
    assert config.model.hparams == {
        "units": 64,
        "dropout": 0.25,
        "coupled_input_forget": True,
        "peepholes": ("input", "forget"),
    }
    assert config.tracking.run_name == "try-1"


def test_every_flat_parameter_maps_onto_a_field():
    source_parameters = {f"data.source_parameters.{name}" for name in SOURCE_PARAMETER_TYPES}
    assert set(FLAT_PARAMETERS.values()) <= set(valid_keys()) | source_parameters
    assert len(set(FLAT_PARAMETERS.values())) == len(FLAT_PARAMETERS)  # one name per setting
    required = {
        "dataset",
        "source",
        "targets",
        "input_width",
        "horizon",
        "model",
        "models",
        "epochs",
        "batch_size",
        "learning_rate",
        "seed",
        "experiment_name",
        "registered_model_name",
    }
    assert required <= set(FLAT_PARAMETERS)


def test_precedence_defaults_then_yaml_then_overrides(tmp_path):
    path = write_yaml(
        tmp_path,
        """
        training: {epochs: 7, batch_size: 16}
        model: {hparams: {units: 8, layers: 2}}
        """,
    )
    config = load_config(path, {"training.epochs": "2", "model.hparams.units": "4"})
    assert config.training.epochs == 2  # override beats YAML
    assert config.training.batch_size == 16  # YAML beats default
    assert config.training.seed == 42  # default
    assert config.model.hparams == {"units": 4, "layers": 2}  # merged per hyper-parameter


def test_an_override_can_set_an_optional_field_back_to_none(tmp_path):
    path = write_yaml(tmp_path, "data: {horizon: 12}\ntracking: {run_name: a}\n")
    config = load_config(path, {"horizon": "none", "run_name": ""})
    assert config.data.horizon is None and config.tracking.run_name is None


def test_parameters_given_drops_unset_values_so_the_file_stands(tmp_path):
    path = write_yaml(tmp_path, "training: {epochs: 7}\n")
    parameters = {"epochs": "", "seed": "7", "model": None, "horizon": "  "}
    assert parameters_given(parameters) == {"seed": "7"}
    config = load_config(path, parameters_given(parameters))
    assert config.training.epochs == 7 and config.training.seed == 7


def test_parse_assignments():
    assert parse_assignments(["training.epochs=3", " model.hparams.units =64", "run_name="]) == {
        "training.epochs": "3",
        "model.hparams.units": "64",
        "run_name": "",
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignments(["epochs"])


def test_apply_overrides_keeps_the_rest():
    base = load_config(overrides={"epochs": "3", "model.hparams.units": "8"})
    child = apply_overrides(base, {"model": "gru"})
    assert child.model.name == "gru" and child.model.hparams == {"units": 8}
    assert child.training == base.training and child.data == base.data


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"training.epoch": "3"}, "did you mean 'training.epochs'?"),
        ({"epoch": "3"}, "did you mean 'epochs'?"),
        ({"trainig.epochs": "3"}, "did you mean 'training.epochs'?"),
        ({"batch-size": "3"}, "did you mean 'batch_size'?"),
        ({"per_series_scale": "true"}, "did you mean 'per_series_scaling'?"),
        ({"data.source_parameters.tikers": "A"}, "did you mean 'data.source_parameters.tickers'"),
        ({"training.epochs.x": "3"}, "is unknown"),
    ],
)
def test_unknown_override_key_is_named_with_the_closest_valid_key(overrides, expected):
    message = error_of(overrides=overrides)
    key = next(iter(overrides))
    assert message.startswith(f"config key {key!r}")
    assert "is unknown" in message and expected in message


def test_unknown_key_with_no_close_match_lists_the_valid_keys():
    message = error_of(overrides={"zzzz": "1"})
    assert "is unknown; valid: dotted keys data.dataset" in message and "epochs" in message


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("training:\n  epoch: 3\n", "training.epoch", "did you mean 'training.epochs'?"),
        ("trainig:\n  epochs: 3\n", "trainig", "did you mean 'training'?"),
        ("epochs: 3\n", "epochs", "did you mean 'training.epochs' (under 'training:')?"),
        ("patience: 3\n", "patience", "did you mean 'training.patience'"),
        ("data:\n  horizn: 3\n", "data.horizn", "did you mean 'data.horizon'?"),
    ],
)
def test_unknown_yaml_key_is_named_with_the_file_and_the_closest_valid_key(
    tmp_path, text, key, expected
):
    path = write_yaml(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"config key {key!r} (from {path}) is unknown")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "expected a mapping of sections"),
        ("training: 3\n", "config key 'training' (from"),
        ("training: {epochs: [\n", "not valid YAML"),
    ],
)
def test_malformed_yaml_files(tmp_path, text, expected):
    assert expected in error_of(write_yaml(tmp_path, text))


def test_missing_yaml_file(tmp_path):
    assert "cannot read it" in error_of(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("overrides", "key", "value", "expected"),
    [
        ({"epochs": "0"}, "training.epochs", "0", "an integer >= 1"),
        ({"epochs": "3.5"}, "training.epochs", "'3.5'", "an integer"),
        ({"epochs": "three"}, "training.epochs", "'three'", "an integer"),
        ({"epochs": ""}, "training.epochs", "''", "an integer"),
        ({"batch_size": "-1"}, "training.batch_size", "-1", "an integer >= 1"),
        ({"learning_rate": "0"}, "training.learning_rate", "0.0", "a finite number > 0"),
        ({"learning_rate": "nan"}, "training.learning_rate", "nan", "a finite number > 0"),
        ({"learning_rate": "fast"}, "training.learning_rate", "'fast'", "a number"),
        ({"training.patience": "-1"}, "training.patience", "-1", "an integer >= 0"),
        ({"seed": "-5"}, "training.seed", "-5", "an integer in [0, "),
        ({"training.loss": "mse2"}, "training.loss", "'mse2'", "expected one of mse, mae"),
        ({"horizon": "0"}, "data.horizon", "0", "an integer >= 1, or none"),
        ({"data.stride": "0"}, "data.stride", "0", "an integer >= 1"),
        ({"data.per_series_scaling": "maybe"}, "data.per_series_scaling", "'maybe'", "true or"),
        ({"data.scaler": "robust"}, "data.scaler", "'robust'", "one of standard, minmax"),
        ({"data.fill_method": "linear"}, "data.fill_method", "'linear'", "one of time, ffill"),
        ({"split": "0.5,0.6,0.2"}, "data.split", "(0.5, 0.6, 0.2)", "sum to 1"),
        ({"split": "0.7,0.3"}, "data.split", "'0.7,0.3'", "'train,validation,test'"),
        ({"dataset": "weather"}, "data.dataset", "'weather'", "did you mean 'weather-ltsf'?"),
        ({"model": "lstn"}, "model.name", "'lstn'", "did you mean 'lstm'?"),
        ({"models": "last,lstm,lstn"}, "model.models", "'lstn'", "expected one of last"),
        ({"models": "lstm,lstm"}, "model.models", "('lstm', 'lstm')", "each model once"),
        ({"models": ""}, "model.models", "()", "at least one model name"),
        ({"experiment_name": ""}, "tracking.experiment_name", "''", "a non-empty string"),
        ({"data.wind_vector": "true"}, "data.wind_vector", "True", "names no wind columns"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_was_expected(overrides, key, value, expected):
    message = error_of(overrides=overrides)
    assert message.startswith(f"config key {key!r} (from ")
    assert f"got {value}" in message
    assert expected in message


def test_bad_value_in_yaml_names_the_file(tmp_path):
    path = write_yaml(tmp_path, "training:\n  batch_size: 0\n")
    message = error_of(path)
    assert message == (
        f"config key 'training.batch_size' (from {path}): expected an integer >= 1, got 0"
    )


def test_bool_is_not_an_integer_and_yaml_types_are_checked(tmp_path):
    assert "got True" in error_of(write_yaml(tmp_path, "training: {epochs: true}\n"))
    assert "expected a non-empty string" in error_of(
        write_yaml(tmp_path, "tracking: {run_name: 3}")
    )
    assert "a list of names" in error_of(write_yaml(tmp_path, "data: {targets: {a: 1}}\n"))


def test_same_field_given_twice_with_different_values():
    assert "given twice" in error_of(overrides={"epochs": "3", "training.epochs": "4"})
    assert load_config(overrides={"epochs": "3", "training.epochs": "3"}).training.epochs == 3


@pytest.mark.parametrize(
    ("hparams", "model"),
    [
        ({"unit": 64}, "lstm"),
        ({"units": -1}, "lstm"),
        ({"normalization": "batch"}, "gru"),
        ({"peepholes": "input,cell"}, "peephole"),
        ({"units": 8}, "last"),
    ],
)
def test_bad_model_hparam_is_rejected_with_the_zoo_message(hparams, model):
    name = next(iter(hparams))
    with pytest.raises(ValueError) as zoo_error:
        zoo.resolve_hyperparameters(model, **{name: str(hparams[name])})
    overrides = {"model": model, f"model.hparams.{name}": str(hparams[name])}
    message = error_of(overrides=overrides)
    assert message.startswith(f"config key 'model.hparams.{name}' (from overrides): ")
    assert message.endswith(str(zoo_error.value))


def test_hparams_are_checked_against_the_final_model_name(tmp_path):
    path = write_yaml(tmp_path, "model:\n  name: peephole\n  hparams: {coupled_input_forget: true}")
    assert load_config(path).model.hparams == {"coupled_input_forget": True}
    message = error_of(path, {"model": "lstm"})
    assert "model 'lstm': unknown hyper-parameter 'coupled_input_forget'" in message
    assert f"(from {path})" in message


def test_hparams_reach_every_compared_model_that_accepts_them():
    model = load_config(
        overrides={"model.hparams.units": "16", "model.hparams.normalization": "revin"}
    ).model
    assert model.hparams_for() == zoo.resolve_hyperparameters(
        "lstm", units=16, normalization="revin"
    )
    assert model.hparams_for("last") == {}
    assert model.hparams_for("linear") == zoo.resolve_hyperparameters(
        "linear", normalization="revin"
    )
    assert model.hparams_for("dense")["units"] == 16


def test_direct_construction_is_checked_without_reading_strings():
    with pytest.raises(ConfigError, match=r"'training.epochs': expected an integer >= 1, got '3'"):
        TrainingConfig(epochs="3")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"'data.horizon': expected an integer >= 1, or none, got '3'"
    ):
        RunConfig(data={"dataset": "weather-ltsf", "horizon": "3"})  # type: ignore[arg-type]
    assert RunConfig(data={"dataset": "weather-ltsf"}).data == DataConfig(dataset="weather-ltsf")
    assert DataConfig(targets=["temp_max"]).targets == ("temp_max",)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Data settings (the section that `pipelines.data.prepare.run` takes)


def test_overrides_reach_every_data_field():
    data = load_config(
        overrides={
            "dataset": "weather-ltsf",
            "source": "elsewhere/weather.csv.gz",
            "targets": "OT",
            "input_width": "96",
            "horizon": "48",
            "split": "0.6,0.2,0.2",
            "data.scaler": "minmax",
            "data.per_series_scaling": "false",
            "data.wind_vector": "true",
            "data.calendar_features": "true",
            "data.stride": "4",
            "data.max_gap": "6",
            "data.fill_method": "ffill",
            "data.duplicates": "mean",
            "data.sentinels": "-9999",
        }
    ).data
    assert data == DataConfig(
        dataset="weather-ltsf",
        source="elsewhere/weather.csv.gz",
        targets=("OT",),
        input_width=96,
        horizon=48,
        split="0.6,0.2,0.2",
        scaler="minmax",
        per_series_scaling=False,
        wind_vector=True,
        calendar_features=True,
        stride=4,
        max_gap=6,
        fill_method="ffill",
        duplicates="mean",
        sentinels=(-9999.0,),
    )


def test_default_data_is_the_catalog_default():
    assert load_config().data == DataConfig(dataset=default_entry_name()) == DataConfig()


def test_no_data_set_and_no_file_is_an_error_not_the_default():
    assert "got none and no source" in error_of(overrides={"dataset": "none"})


def test_a_file_with_its_columns_and_no_data_set_is_outside_the_catalog():
    overrides = {"source": "prices.csv", "timestamp_column": "Date", "targets": "Close"}
    assert load_config(overrides=overrides).data.dataset is None
    # A file alone replaces the default data set's file.
    assert load_config(overrides={"source": "prices.csv"}).data.dataset == default_entry_name()


def test_a_file_outside_the_catalog_needs_columns():
    message = error_of(overrides={"dataset": "none", "source": "prices.csv"})
    assert "data.timestamp_column and data.targets" in message
    data = load_config(
        overrides={
            "dataset": "",
            "source": "prices.csv",
            "data.timestamp_column": "Date",
            "targets": "Close",
        }
    ).data
    assert data.dataset is None and data.source == "prices.csv"


def test_yfinance_source_parameters():
    data = load_config(
        overrides={
            "dataset": "yfinance",
            "data.source_parameters.tickers": "AAPL,MSFT",
            "data.source_parameters.start": "2020-01-01",
            "data.source_parameters.refresh": "false",
        }
    ).data
    assert data.source_parameters == {
        "tickers": ("AAPL", "MSFT"),
        "start": "2020-01-01",
        "refresh": False,
    }
    assert "only a yfinance data set" in error_of(
        overrides={"data.source_parameters.tickers": "AAPL"}
    )
    assert "did you mean '1y'?" in error_of(
        overrides={"dataset": "yfinance", "data.source_parameters.period": "1yr"}
    )


# --------------------------------------------------------------------------------------------
# Writing the config back out


def non_default_config() -> RunConfig:
    return load_config(
        overrides={
            "dataset": "weather-ltsf",
            "targets": "OT,T (degC)",
            "input_width": "96",
            "data.sentinels": "-9999",
            "data.wind_vector": "true",
            "model": "peephole",
            "models": "last,peephole",
            "model.hparams.peepholes": "input,forget",
            "model.hparams.dropout": "0.1",
            "model.hparams.normalization": "none",
            "learning_rate": "3e-4",
            "run_name": "a run",
        }
    )


def test_flatten_gives_dotted_keys_and_short_text_values():
    config = non_default_config()
    flat = flatten(config)
    assert all(isinstance(value, str) for value in flat.values())
    assert all(len(value) <= MAX_PARAM_LENGTH for value in flat.values())
    fields = [key for key in valid_keys() if key not in ("model.hparams", "data.source_parameters")]
    assert [key for key in flat if not key.startswith("model.hparams.")] == fields
    assert flat["training.epochs"] == "20"
    assert flat["training.learning_rate"] == "0.0003"
    assert flat["data.targets"] == "OT,T (degC)"
    assert flat["data.horizon"] == "none"
    assert flat["data.wind_vector"] == "true"
    assert flat["model.hparams.peepholes"] == "input,forget"
    assert flat["model.hparams.normalization"] == "none"
    assert load_config(overrides=flat) == config  # params read back as overrides


def test_flatten_cuts_long_values():
    names = ",".join(f"column_{index:04d}" for index in range(100))
    flat = flatten(load_config(overrides={"targets": names}))
    assert len(flat["data.targets"]) == MAX_PARAM_LENGTH
    assert flat["data.targets"].endswith("...")


def test_yaml_round_trip(tmp_path):
    for config in (load_config(), non_default_config()):
        text = dump_yaml(config)
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        assert load_config(path) == config
        assert config_from_dict(config_to_dict(config)) == config


def test_config_to_dict_is_plain_data():
    document = config_to_dict(non_default_config())
    assert list(document) == [
        "data",
        "model",
        "training",
        "tracking",
        "prepare",
        "forecast",
        "backtest",
        "intervals",
        "monitor",
    ]
    assert document["model"]["hparams"]["peepholes"] == ["input", "forget"]
    assert document["model"]["models"] == ["last", "peephole"]
    assert document["data"]["sentinels"] == [-9999.0]


def test_example_file_loads():
    config = load_config(EXAMPLE)
    assert config.data.dataset == "weather-ltsf"
    assert (config.data.input_width, config.data.horizon) == (96, 96)
    assert config.model.name == "lstm" and config.model.hparams["normalization"] == "revin"
    assert 1 <= config.training.epochs <= 10
    assert load_config(EXAMPLE, {"epochs": "1"}).training.epochs == 1


def test_import_has_no_side_effects():
    code = (
        "import sys, pipelines.config.schema; "
        "assert 'keras' not in sys.modules and 'mlflow' not in sys.modules, 'heavy import'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
