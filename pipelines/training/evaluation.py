"""Evaluation: forecasts of every validation and test window scored in scaled and original units.

Pure functions over prepared data and a Keras model: no fitting, no MLflow.

Decisions:
    - MASE is scaled by the in-sample seasonal-naive error of each series' TRAINING rows with
      season 1 (`MASE_SEASON`), i.e. the plain naive forecast. A target that is constant in the
      training part of some series has no such scale; MASE is then left out (with a warning)
      rather than reported as infinite.
    - A window's series is the series of its start row: windows never cross a series boundary.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np

from models import zoo
from models.quantiles import head_quantiles_of
from pipelines.data.prepare import PrepareResult
from pipelines.data.split import TRAIN
from pipelines.runtime.contract import SERIES_COLUMN, TIMESTAMP_COLUMN
from pipelines.runtime.windows import WindowedData, windows_at
from pipelines.training import metrics as metric_functions

BASELINES = ("last", "repeat")
"""Naive baselines evaluated beside every model on the same windows."""
EVALUATED_PARTS = ("validation", "test")
PART_PREFIXES = {"validation": "val", "test": "test"}
MASE_SEASON = 1
"""Season of the seasonal-naive MASE scale (1: the plain naive forecast)."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Evaluation:
    """Metrics of one forecaster on one part, in scaled and original units.

    Attributes:
        overall: `{"mae", "mse", "rmse", "mape", "smape"[, "mase"], "mape_excluded"}` floats,
            scaled units.
        overall_original: the same in original units.
        by_step: the same metrics (without "mape_excluded") per horizon step, arrays of
            length horizon, scaled units.
        by_step_original: the same in original units.
    """

    overall: dict[str, float]
    overall_original: dict[str, float]
    by_step: dict[str, np.ndarray]
    by_step_original: dict[str, np.ndarray]


@dataclass
class ForecastSample:
    """A few test windows in original units, for plotting.

    Attributes:
        series_ids: series of each window, shape (windows,).
        input_timestamps: (windows, input_width) times of the history.
        target_timestamps: (windows, horizon) times of the forecasts.
        history: (windows, input_width, targets) observed target values before the forecast.
        actual: (windows, horizon, targets) observed values.
        forecast: (windows, horizon, targets) the model's forecasts.
        targets: target names, in the order of the last axis.
    """

    series_ids: np.ndarray
    input_timestamps: np.ndarray
    target_timestamps: np.ndarray
    history: np.ndarray
    actual: np.ndarray
    forecast: np.ndarray
    targets: tuple[str, ...]


@dataclass
class _Actual:
    """Observed target windows of one part, in both unit systems."""

    scaled: np.ndarray
    original: np.ndarray
    series_ids: np.ndarray
    series_index: np.ndarray


def target_windows(prepared: PrepareResult, windowed: WindowedData, part: str) -> _Actual:
    spec = prepared.spec
    starts = windowed.starts[part]
    original_values = prepared.frame[list(spec.targets)].to_numpy(dtype="float64")
    series = prepared.frame[SERIES_COLUMN].astype(str).to_numpy()
    series_names = _series_names(prepared)
    return _Actual(
        scaled=windows_at(windowed.targets, starts, spec.input_width, spec.horizon),
        original=windows_at(original_values, starts, spec.input_width, spec.horizon),
        series_ids=series[starts],
        series_index=np.searchsorted(series_names, series[starts]),
    )


def _series_names(prepared: PrepareResult) -> np.ndarray:
    return np.unique(prepared.frame[SERIES_COLUMN].astype(str).to_numpy())


@dataclass
class _Scales:
    """Seasonal-naive MASE scales per series, shape (series, targets); None if undefined."""

    scaled: np.ndarray | None
    original: np.ndarray | None


def mase_scales(prepared: PrepareResult) -> tuple[_Scales, list[str]]:
    """MASE scales from each series' training rows (season `MASE_SEASON`), in both units."""
    training_rows = prepared.parts == TRAIN
    frame = prepared.frame.loc[training_rows]
    targets = list(prepared.spec.targets)
    series = frame[SERIES_COLUMN].astype(str).to_numpy()
    original = frame[targets].to_numpy(dtype="float64")
    scaled = prepared.scaler.transform(frame, targets).astype("float64")
    names = _series_names(prepared)
    notes: list[str] = []
    result = []
    for values in (scaled, original):
        try:
            result.append(
                metric_functions.seasonal_naive_scale(
                    [values[series == name] for name in names], season=MASE_SEASON
                )
            )
        except ValueError as error:
            result.append(None)
            if not notes:
                notes.append(f"MASE left out: {error}")
                warnings.warn(notes[-1], stacklevel=2)
    return _Scales(scaled=result[0], original=result[1]), notes


def predict_part(
    model: keras.Model, windowed: WindowedData, part: str, batch_size: int
) -> np.ndarray:
    """Scaled forecasts of every window of a part, in time order: (windows, horizon, T), or
    (windows, horizon, K, T) from a quantile head (`point_forecast` takes its median)."""
    dataset = windowed.dataset(part, batch_size=batch_size).map(lambda inputs, _: inputs)
    return np.asarray(model.predict(dataset, verbose=0), dtype="float64")


def point_forecast(outputs: np.ndarray, head_quantiles: tuple[float, ...]) -> np.ndarray:
    """A model's point forecasts: its outputs, or a quantile head's median."""
    return outputs[:, :, head_quantiles.index(0.5)] if head_quantiles else outputs


def evaluate_model(
    model: keras.Model,
    prepared: PrepareResult,
    windowed: WindowedData,
    part: str,
    actual: _Actual,
    scales: _Scales,
    batch_size: int,
) -> Evaluation:
    return evaluate_forecast(
        predict_part(model, windowed, part, batch_size), prepared, actual, scales
    )


def evaluate_forecast(
    forecast: np.ndarray, prepared: PrepareResult, actual: _Actual, scales: _Scales
) -> Evaluation:
    """Every metric of a part's scaled forecasts (`predict_part`), in both units."""
    forecast_original = prepared.scaler.inverse_transform(
        forecast, actual.series_ids, prepared.spec.targets
    )
    return _evaluation(forecast, forecast_original, actual, scales)


def _evaluation(
    forecast_scaled: np.ndarray, forecast_original: np.ndarray, actual: _Actual, scales: _Scales
) -> Evaluation:
    """Every metric overall and per horizon step, in scaled and original units."""
    scaled_scale = _window_scale(scales.scaled, actual)
    original_scale = _window_scale(scales.original, actual)
    return Evaluation(
        overall=_overall(actual.scaled, forecast_scaled, scaled_scale),
        overall_original=_overall(actual.original, forecast_original, original_scale),
        by_step=_by_step(actual.scaled, forecast_scaled, scaled_scale),
        by_step_original=_by_step(actual.original, forecast_original, original_scale),
    )


def _window_scale(series_scales: np.ndarray | None, actual: _Actual) -> np.ndarray | None:
    """(series, targets) scales -> (windows, 1, targets): each window takes its series'."""
    if series_scales is None:
        return None
    table = np.asarray(series_scales).reshape(len(series_scales), -1)
    return table[actual.series_index][:, np.newaxis, :]


def _overall(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray | None
) -> dict[str, float]:
    values = metric_functions.evaluate(actual, forecast, mase_scale=scale)
    return {name: float(value) for name, value in values.items()}


def _by_step(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray | None
) -> dict[str, np.ndarray]:
    values = metric_functions.per_horizon(actual, forecast, scale)
    # A count of left-out values per step is noise in the UI; the overall count is kept.
    values.pop("mape_excluded", None)
    return values


def evaluate_baselines(
    prepared: PrepareResult,
    windowed: WindowedData,
    shape: zoo.ModelShape,
    actuals: Mapping[str, _Actual],
    scales: _Scales,
    batch_size: int,
    notes: list[str],
) -> dict[str, dict[str, Evaluation]]:
    """The naive baselines through the same zoo models and the same evaluation path."""
    evaluations: dict[str, dict[str, Evaluation]] = {}
    for name in BASELINES:
        try:
            baseline = zoo.build_model(name, shape)
        except ValueError as error:
            # `repeat` repeats the last `horizon` steps, which a window shorter than the
            # horizon does not have; the run goes on without that baseline.
            notes.append(f"baseline {name!r} left out: {error}")
            warnings.warn(notes[-1], stacklevel=2)
            continue
        evaluations[name] = {
            part: evaluate_model(
                baseline, prepared, windowed, part, actuals[part], scales, batch_size
            )
            for part in EVALUATED_PARTS
        }
    return evaluations


def forecast_sample(
    model: keras.Model, prepared: PrepareResult, windowed: WindowedData, count: int
) -> ForecastSample:
    """`count` test windows spread evenly over the test part, in original units."""
    spec = prepared.spec
    test_starts = windowed.starts["test"]
    chosen = np.unique(np.linspace(0, len(test_starts) - 1, num=min(count, len(test_starts))))
    starts = test_starts[chosen.astype("int64")]
    inputs = windows_at(windowed.inputs, starts, 0, spec.input_width)
    outputs = np.asarray(model.predict(inputs, verbose=0), dtype="float64")
    forecast = point_forecast(outputs, head_quantiles_of(model))
    series = prepared.frame[SERIES_COLUMN].astype(str).to_numpy()[starts]
    times = prepared.frame[TIMESTAMP_COLUMN].to_numpy()[:, np.newaxis]
    values = prepared.frame[list(spec.targets)].to_numpy(dtype="float64")
    return ForecastSample(
        series_ids=series,
        input_timestamps=windows_at(times, starts, 0, spec.input_width)[..., 0],
        target_timestamps=windows_at(times, starts, spec.input_width, spec.horizon)[..., 0],
        history=windows_at(values, starts, 0, spec.input_width),
        actual=windows_at(values, starts, spec.input_width, spec.horizon),
        forecast=prepared.scaler.inverse_transform(forecast, series, spec.targets),
        targets=spec.targets,
    )


# --------------------------------------------------------------------------------------------
# The MLflow edge
