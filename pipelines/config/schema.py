"""The schema of every setting of every entry point: typed, with its default, in nine sections.

| section    | what it holds                                      | read by                        |
|------------|----------------------------------------------------|--------------------------------|
| `data`     | source, cleaning, split, scaling, windows          | every entry point              |
| `model`    | the model to train, the models to compare, hparams | train, compare, backtest, main |
| `training` | epochs, batch, learning rate, schedule, patience   | train, compare, backtest, main |
| `tracking` | MLflow experiment, registered model, run name      | train, compare, backtest, main |
| `prepare`  | where `prepare` writes; whether it logs a run      | prepare                        |
| `forecast` | model URI, as_of, output, series, lock, replace    | forecast, main                 |
| `backtest` | folds or fold starts, step, window, refit, ...     | backtest                       |
| `intervals`| interval levels, conformal calibration             | train, compare, main           |
| `monitor`  | scores folder, alarm window and thresholds         | monitor                        |

`FLAT_PARAMETERS` gives each setting that has a command-line option its one flat name
(`input_width` -> `data.input_width`): the same option (`--input-width`) in every entry point
that takes it, and the same MLproject parameter. Loading (defaults < YAML < overrides) is
`pipelines.config.loading`; the options of each entry point are `pipelines.config.options`.

Nothing happens on import: the catalog is read (once per process) when the first config is
made. Model settings are checked by `models.registry`, which imports no Keras.
"""

from __future__ import annotations

import itertools
import math
import typing
from typing import Any, Literal

from pydantic import Field, model_validator

from models.hyperparameters import HyperParameterError
from models.registry import (
    MODEL_NAMES,
    hyperparameters,
    model_family,
    parse_hyperparameters,
    resolve_for_window,
    resolve_hyperparameters,
)
from pipelines.data.settings import DataConfig
from pipelines.paths import DATA_DIRECTORY
from pipelines.settings import (
    ConfigError,
    SettingsSection,
    UtcTime,
    bad_value,
    format_utc_time,
    require,
    require_choice,
)

Loss = Literal["mse", "mae", "huber", "log_cosh"]
LOSSES: tuple[str, ...] = typing.get_args(Loss)
"""Keras loss names that `training.loss` accepts."""
LearningRateSchedule = Literal["constant", "cosine", "plateau"]
LR_SCHEDULES: tuple[str, ...] = typing.get_args(LearningRateSchedule)
"""How the learning rate moves during training (`training.lr_schedule`)."""
HEADED_FAMILIES = ("direct", "recurrent")
"""Model families that take a quantile head (`intervals.method: cqr`)."""
DEFAULT_COMPARE_MODELS = ("last", "repeat", "linear", "lstm", "gru", "peephole")
DEFAULT_FORECAST_OUTPUT = str(DATA_DIRECTORY / "forecasts")
DEFAULT_MONITOR_OUTPUT = str(DATA_DIRECTORY / "monitoring")
MAX_SEED = 2**32 - 1
CHAMPION_ALIAS = "champion"
"""The registered-model alias of the version that forecasts (moved by the registry's rule)."""

FLAT_PARAMETERS: dict[str, str] = {
    # data
    "dataset": "data.dataset",
    "source": "data.source",
    "targets": "data.targets",
    "input_width": "data.input_width",
    "horizon": "data.horizon",
    "split": "data.split",
    "policy": "data.policy",
    "stride": "data.stride",
    "scaler": "data.scaler",
    "per_series_scaling": "data.per_series_scaling",
    "calendar_features": "data.calendar_features",
    "wind_vector": "data.wind_vector",
    "log_returns": "data.log_returns",
    "timestamp_column": "data.timestamp_column",
    "timestamp_format": "data.timestamp_format",
    "series_column": "data.series_column",
    "value_columns": "data.value_columns",
    "frequency": "data.frequency",
    "sentinels": "data.sentinels",
    "max_gap": "data.max_gap",
    "fill_method": "data.fill_method",
    "duplicates": "data.duplicates",
    "tickers": "data.source_parameters.tickers",
    "start": "data.source_parameters.start",
    "end": "data.source_parameters.end",
    "period": "data.source_parameters.period",
    "refresh": "data.source_parameters.refresh",
    # model, training, tracking
    "model": "model.name",
    "models": "model.models",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "patience": "training.patience",
    "seed": "training.seed",
    "loss": "training.loss",
    "lr_schedule": "training.lr_schedule",
    "ema_momentum": "training.ema_momentum",
    "experiment_name": "tracking.experiment_name",
    "registered_model_name": "tracking.registered_model_name",
    "run_name": "tracking.run_name",
    # backtest
    "folds": "backtest.folds",
    "fold_starts": "backtest.fold_starts",
    "fold_step": "backtest.step",
    "training_window": "backtest.window",
    "training_rows": "backtest.training_rows",
    "refit": "backtest.refit",
    "validation_fraction": "backtest.validation_fraction",
    # prepare's output
    "output": "prepare.output",
    "summary_json": "prepare.summary_json",
    "log_run": "prepare.log_run",
    # forecast
    "model_uri": "forecast.model_uri",
    "as_of": "forecast.as_of",
    "forecast_output": "forecast.output",
    "series": "forecast.series",
    "lock_timeout": "forecast.lock_timeout",
    "replace": "forecast.replace",
    "forecast_experiment_name": "forecast.experiment_name",
    # monitor
    "monitor_output": "monitor.output",
    "window": "monitor.window",
    "mae_factor": "monitor.mae_factor",
    "mae_sigmas": "monitor.mae_sigmas",
    "coverage_band": "monitor.coverage_band",
    "monitor_experiment_name": "monitor.experiment_name",
}
"""Flat name (command-line option without `--`, MLproject parameter) -> dotted key."""


def _hyperparameter_error(error: HyperParameterError) -> ConfigError:
    """The registry's error (which names the model) under the key `model.hparams[.NAME]`."""
    key = "model.hparams" + (f".{error.key}" if error.key else "")
    return bad_value(key, str(error))


class ModelConfig(SettingsSection):
    """Which model to train (`name`) or compare (`models`), and its hyper-parameters.

    `hparams` holds only the hyper-parameters that were set, checked against `name` by
    `models.registry.parse_hyperparameters` (defaults come from the registry; see
    `hparams_for`). Treat it as read-only. `check_models` checks them against the window.
    """

    section = "model"

    name: str = Field("lstm", description="the model train fits (a models.zoo name)")
    hparams: dict[str, Any] = Field(
        default_factory=dict,
        description="hyper-parameters; each compared model takes the ones it accepts",
    )
    models: tuple[str, ...] = Field(
        DEFAULT_COMPARE_MODELS, description="the models compare fits, baselines included"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        require_choice("model.name", self.name, MODEL_NAMES)
        require(bool(self.models), "model.models", self.models, "at least one model name")
        for model in self.models:
            require_choice("model.models", model, MODEL_NAMES)
        repeated = sorted({model for model in self.models if self.models.count(model) > 1})
        require(not repeated, "model.models", self.models, f"each model once ({repeated} repeat)")
        for key in self.hparams:
            if not isinstance(key, str):
                raise bad_value("model.hparams", f"expected names as keys, got {key!r}")
        try:
            parsed = parse_hyperparameters(self.name, self.hparams).model_dump()
        except HyperParameterError as error:
            raise _hyperparameter_error(error) from None
        object.__setattr__(self, "hparams", {key: parsed[key] for key in self.hparams})
        return self

    def hparams_for(self, model: str | None = None) -> dict[str, Any]:
        """Every hyper-parameter of `model`: the config's where the model accepts them, else
        the registry's defaults.

        Args:
            model: a model name; default `name`.

        Returns:
            `{hyper-parameter: value}` for `models.zoo.build_model(model, shape, **...)`.

        Raises:
            ConfigError: a shared hyper-parameter has a value this model rejects.
        """
        model = self.name if model is None else model
        require_choice("model.models", model, MODEL_NAMES)
        accepted = hyperparameters(model)
        given = {key: value for key, value in self.hparams.items() if key in accepted}
        try:
            return resolve_hyperparameters(model, **given)
        except HyperParameterError as error:
            raise _hyperparameter_error(error) from None

    def check_quantile_heads(self, models: tuple[str, ...], method: str) -> None:
        """Raises unless some of `models` can take the quantile head intervals.method asks
        for (`cqr`: the direct and single-shot recurrent ones; the others stay conformal).

        Raises:
            ConfigError: naming intervals.method and the models.
        """
        families = {model: model_family(model) for model in models}
        require(
            method != "cqr" or bool(set(families.values()) & set(HEADED_FAMILIES)),
            "intervals.method",
            method,
            "a model with a quantile head (direct or single-shot recurrent) to train; "
            + ", ".join(f"{model!r} is {family}" for model, family in families.items()),
        )

    def check_models(self, models: tuple[str, ...], input_width: int, horizon: int) -> None:
        """Raises unless every one of `models` can be built with these hyper-parameters on
        this window (a shared value it rejects; a segment length that does not divide the
        input width; a season, lookback or kernel longer than it).

        Raises:
            ConfigError: naming the hyper-parameter and the model.
        """
        for model in models:
            try:
                resolve_for_window(model, self.hparams_for(model), input_width, horizon)
            except HyperParameterError as error:
                raise _hyperparameter_error(error) from None


class TrainingConfig(SettingsSection):
    """How models are fitted."""

    section = "training"

    epochs: int = Field(20, ge=1, description="most passes over the training windows")
    batch_size: int = Field(64, ge=1, description="windows per gradient step")
    learning_rate: float = Field(
        1e-3, gt=0, allow_inf_nan=False, description="Adam's learning rate"
    )
    patience: int = Field(
        5, ge=0, description="epochs without a better validation loss before early stopping"
    )
    seed: int = Field(42, ge=0, le=MAX_SEED, description="seed of Python, NumPy and Keras")
    loss: Loss = Field("mse", description="Keras loss: " + ", ".join(LOSSES))
    lr_schedule: LearningRateSchedule = Field(
        "constant",
        description="constant; cosine: decays to 0 over `epochs` (Keras CosineDecay); plateau: "
        "halved after max(1, patience // 2) epochs without a better validation loss",
    )
    ema_momentum: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="0: off; else validation, early stopping and the kept model use an "
        "exponential moving average of the weights over steps (Polyak averaging, Keras' "
        "use_ema), this momentum per step (0.99 averages over about 100 steps)",
    )


class TrackingConfig(SettingsSection):
    """Where runs and models are recorded in MLflow (the tracking URI comes from
    `MLFLOW_TRACKING_URI`, never from here)."""

    section = "tracking"

    experiment_name: str = Field("forecaster", description="MLflow experiment of the runs")
    registered_model_name: str = Field(
        "forecaster", description="registered model that gets the trained versions"
    )
    run_name: str | None = Field(
        None,
        description="name of the run (default: the job and data, e.g. `compare seattle-weather`)",
    )


class PrepareConfig(SettingsSection):
    """Where the `prepare` entry point writes, and whether it also logs a prepare run."""

    section = "prepare"

    output: str | None = Field(
        None, description="folder for the prepared files (default data/processed/DATASET)"
    )
    summary_json: str | None = Field(None, description="also write the summary to this file")
    log_run: bool = Field(
        False, description="also log the prepared data as an MLflow prepare run (main reuses it)"
    )


class ForecastConfig(SettingsSection):
    """A batch forecast: which model, cut at which time, written where."""

    section = "forecast"

    model_uri: str | None = Field(
        None,
        description="models:/NAME@ALIAS or models:/NAME/VERSION "
        "(default models:/REGISTERED_MODEL_NAME@champion)",
    )
    as_of: UtcTime | None = Field(
        None,
        description="ISO 8601 time (naive = UTC), now or today; default: the data's last timestamp",
    )
    output: str = Field(DEFAULT_FORECAST_OUTPUT, description="folder of the as_of= partitions")
    series: tuple[str, ...] | None = Field(None, description="forecast only these series")
    lock_timeout: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="seconds to wait for another run's lock"
    )
    replace: bool = Field(False, description="overwrite a partition made by another model version")
    experiment_name: str = Field("forecasts", description="MLflow experiment of forecast runs")
    levels: tuple[float, ...] | None = Field(
        None,
        description="interval levels (percent) of a calibrated model's forecast; none: the "
        "model's own defaults",
    )
    recalibrate: int = Field(
        0,
        ge=0,
        description="recalibrate the intervals on each series' last N windows with known "
        "actuals (the model's recalibrate parameter; 0: its logged calibration)",
    )

    @model_validator(mode="after")
    def _check(self) -> ForecastConfig:
        for level in self.levels or ():
            require(0 < level < 100, "forecast.levels", level, "numbers in (0, 100)")
        if self.series is not None:
            object.__setattr__(self, "series", tuple(dict.fromkeys(self.series)) or None)
        return self


class BacktestConfig(SettingsSection):
    """Rolling-origin evaluation: where the folds start and how each fold trains.

    Fold k's origin is the last time its model may see; it forecasts the `data.horizon` steps
    after it. With `fold_starts` each date is the first forecast time of a fold; otherwise the
    last of `folds` origins leaves exactly one horizon at the end of the data and the origins
    before it are `step` steps apart (`folds` and `step` are then not used). `training_rows`
    sizes a sliding window only.
    """

    section = "backtest"

    folds: int = Field(
        3, ge=1, description="number of folds (origins), unless fold_starts is given"
    )
    fold_starts: tuple[UtcTime, ...] | None = Field(
        None,
        min_length=1,
        description="first forecast time of each fold (ISO 8601 dates, naive = UTC)",
    )
    step: int | None = Field(None, ge=1, description="steps between origins (default: the horizon)")
    window: Literal["expanding", "sliding"] = Field(
        "expanding",
        description="expanding (all rows up to the origin) or sliding (the last training_rows)",
    )
    training_rows: int | None = Field(
        None, ge=2, description="steps of a sliding window (default: those up to the first origin)"
    )
    refit: int = Field(
        1,
        ge=0,
        description="train again every k folds; 0: train once on the first fold, then forecast",
    )
    validation_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="share of each fold's rows (its end) that early stopping watches",
    )

    @model_validator(mode="after")
    def _increasing_fold_starts(self) -> BacktestConfig:
        starts = self.fold_starts or ()
        if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
            shown = ", ".join(format_utc_time(start) for start in starts)
            raise bad_value("backtest.fold_starts", f"expected increasing dates, got {shown}")
        return self


ROLLING_WINDOW = 2016
"""Residuals per step of a rolling recalibration (Weather: 14 days of 10-minute windows, chosen
on its validation part, `benchmarks/README.md`)."""
ROLLING_HORIZONS = 21
"""How far back a rolling recalibration reaches, in horizons: `ROLLING_WINDOW` residuals spread
over the last 21 horizons of windows (at H=96 exactly the last 2016; chosen on Weather's
validation replays at H=336 and H=720, `benchmarks/README.md`)."""
ROLLING_EVERY = 144
"""Windows between rolling recalibrations (Weather: daily, as a scheduled job forecasts)."""
ROLLING_FEEDBACK = 3.0
"""The rate at which misses widen or narrow the rolling intervals (chosen on validation)."""
FeedbackGrouping = Literal["shared", "delay", "step"]
"""How a rolling recalibration's width factors are grouped over the horizon steps: one per
series, one per delay (the steps whose actuals take the same number of recalibrations to be
known), one per step (`pipelines.training.calibration.feedback_groups`)."""
ROLLING_FEEDBACK_BY: FeedbackGrouping = "shared"
"""The steps that share a width factor: all of a series' (chosen with `ROLLING_HORIZONS` on
Weather's validation replays at H=336 and H=720, whose worst horizon step it keeps nearest
nominal; `benchmarks/README.md`)."""


class IntervalConfig(SettingsSection):
    """Forecast intervals: after training, the model is calibrated on its validation
    residuals (split conformal, `pipelines.runtime.intervals`) and forecasts these levels by
    default; it is scored on them on the test part."""

    section = "intervals"

    levels: tuple[float, ...] = Field(
        (80.0, 90.0),
        description="interval levels in percent, each in (0, 100): the logged model's default "
        "`levels` and the ones scored",
    )
    calibration: Literal["pooled", "per_series", "none"] = Field(
        "pooled",
        description="residuals pooled over series (in scaled units), per series, or none (the "
        "model forecasts no intervals)",
    )
    method: Literal["conformal", "cqr"] = Field(
        "conformal",
        description="conformal: offsets of the validation residuals around the point forecast, "
        "for any model; cqr: direct and single-shot recurrent models are trained with a quantile "
        "head (pinball loss at the levels' bounds and the median, which is the point forecast) "
        "and its bands conformalised on validation (CQR); the others stay conformal",
    )
    update: Literal["static", "rolling"] = Field(
        "static",
        description="how the test part is scored: with the validation calibration the model "
        "logs (static), or recalibrated as actuals arrive (rolling: every rolling_every windows, "
        "on each series' last rolling_window known residuals per step), static beside it",
    )
    rolling_window: int = Field(
        ROLLING_WINDOW, ge=1, description="residuals per step behind each rolling recalibration"
    )
    rolling_horizons: int = Field(
        ROLLING_HORIZONS,
        ge=0,
        description="how far back a rolling recalibration reaches, in horizons: its "
        "rolling_window residuals per step are spread evenly over the last "
        "max(rolling_window, rolling_horizons x H) windows with known actuals (0: the last "
        "rolling_window)",
    )
    rolling_every: int = Field(
        ROLLING_EVERY, ge=1, description="forecast windows between rolling recalibrations"
    )
    rolling_feedback: float = Field(
        ROLLING_FEEDBACK,
        ge=0,
        allow_inf_nan=False,
        description="how fast a rolling recalibration's width factor learns from the misses of "
        "earlier forecasts (adaptive conformal inference; 0: not at all)",
    )
    rolling_feedback_by: FeedbackGrouping = Field(
        ROLLING_FEEDBACK_BY,
        description="the steps that share a width factor: all of a series' (shared), those whose "
        "actuals are known the same number of recalibrations after their forecast (delay), or "
        "none (step); each factor's rate is rolling_feedback over that delay",
    )

    @model_validator(mode="after")
    def _check(self) -> IntervalConfig:
        for level in self.levels:
            require(0 < level < 100, "intervals.levels", level, "numbers in (0, 100)")
        if self.method == "cqr":
            require(
                bool(self.levels) and self.calibration != "none",
                "intervals.method",
                self.method,
                "levels and a calibration (cqr trains a quantile head for the levels' bounds)",
            )
            require(
                self.update == "static" or self.rolling_feedback == 0,
                "intervals.rolling_feedback",
                self.rolling_feedback,
                "0 with method cqr and the rolling update (the feedback factor scales residual "
                "offsets)",
            )
        if self.update == "rolling" and self.levels:
            # (100 + L) / (100 - L) residuals hold the order statistics of level L.
            needed = math.ceil((100 + max(self.levels)) / (100 - max(self.levels)))
            require(
                self.rolling_window >= needed,
                "intervals.rolling_window",
                self.rolling_window,
                f"at least {needed} residuals for level {max(self.levels):g}",
            )
        object.__setattr__(self, "levels", tuple(sorted(set(self.levels))))
        return self

    def head_quantiles(self) -> tuple[float, ...]:
        """The quantiles a head is trained for with method cqr: each level's bounds and the
        median ((80, 90) -> 0.05, 0.1, 0.5, 0.9, 0.95); empty with method conformal."""
        if self.method != "cqr":
            return ()
        tails = {round((1 - level / 100) / 2, 12) for level in self.levels}
        return tuple(sorted(tails | {0.5} | {round(1 - tail, 12) for tail in tails}))


class MonitorConfig(SettingsSection):
    """Monitoring of the forecast partitions: where the scores go, the alarm rules' settings
    (`pipelines.runtime.monitoring`)."""

    section = "monitor"

    output: str = Field(DEFAULT_MONITOR_OUTPUT, description="folder of the scores partitions")
    window: int = Field(
        7, ge=1, le=10_000, description="forecasts (as_of times) in each rule's rolling window"
    )
    mae_factor: float = Field(
        1.1,
        ge=1,
        allow_inf_nan=False,
        description="the MAE rule alarms when a window's MAE is above both this multiple of the "
        "validation reference and 1 + mae_sigmas standard deviations of its noise",
    )
    mae_sigmas: float = Field(
        3.0,
        ge=0,
        allow_inf_nan=False,
        description="standard deviations of a window's MAE ratio that the MAE rule allows (see "
        "mae_factor)",
    )
    coverage_band: float = Field(
        0.999,
        gt=0,
        lt=1,
        description="the coverage rule alarms outside this central binomial band",
    )
    experiment_name: str = Field(
        "monitoring", min_length=1, description="MLflow experiment of the monitoring runs"
    )


class RunConfig(SettingsSection):
    """Every setting of every entry point, in nine sections (see the module docstring).

    Example:
        >>> config = RunConfig(training=TrainingConfig(epochs=3))
        >>> config.training.epochs, config.model.name
        (3, 'lstm')
    """

    section = ""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    def forecast_model_uri(self) -> str:
        """`forecast.model_uri`, or the registered model's champion when it is none."""
        registered = self.tracking.registered_model_name
        return self.forecast.model_uri or f"models:/{registered}@{CHAMPION_ALIAS}"


SECTIONS: dict[str, type[SettingsSection]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "tracking": TrackingConfig,
    "prepare": PrepareConfig,
    "forecast": ForecastConfig,
    "backtest": BacktestConfig,
    "intervals": IntervalConfig,
    "monitor": MonitorConfig,
}
"""Section name -> its settings class, in the order of `RunConfig`."""
