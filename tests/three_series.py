"""A small three-series data set and an untrained forecaster for it, saved or registered
(serve, Spark and code-path tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.zoo import ModelShape, build_model
from pipelines.data.split import SplitSpec, assign_parts
from pipelines.runtime.intervals import Calibration
from pipelines.runtime.scaling import FittedScaler, fit_scaler
from pipelines.runtime.windows import WindowSpec
from pipelines.serving.pyfunc import log_forecast_model, save_forecast_model

SPEC = WindowSpec(input_width=8, horizon=3, features=("level", "temperature"), targets=("level",))
SERIES = ("alpha", "beta", "gamma")


def series_frame(days: int, seed: int) -> pd.DataFrame:
    """Daily history of `SERIES`, whose levels differ by powers of ten."""
    generator = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = [
        pd.DataFrame(
            {
                "series_id": series_id,
                "timestamp": times,
                "level": 10**index * (5 + np.sin(np.arange(days) / 3))
                + generator.normal(0, 0.1, days),
                "temperature": generator.normal(15, 3, days),
            }
        )
        for index, series_id in enumerate(SERIES)
    ]
    return pd.concat(frames, ignore_index=True)


def untrained_forecaster(frame: pd.DataFrame) -> tuple[object, FittedScaler]:
    """An untrained LSTM(4) for `SPEC` and a per-series scaler fitted on `frame`'s train part.

    The LSTM reads the window in segments, channels alone, and decodes the horizon in parallel
    with a channel embedding, so that serving, Spark and the fresh-process load run every
    custom layer of those options (the horizon, 3, is one cropped segment of 4)."""
    scaler = fit_scaler(frame, assign_parts(frame, SplitSpec()), SPEC.features, per_series=True)
    shape = ModelShape(
        input_width=SPEC.input_width,
        horizon=SPEC.horizon,
        n_features=len(SPEC.features),
        target_indices=(SPEC.features.index("level"),),
    )
    hparams = {
        "channel_independent": True,
        "segment_length": 4,
        "decoder": "parallel",
        "channel_embedding": True,
        "normalization": "revin",
    }
    return build_model("lstm", shape, units=4, **hparams), scaler


def save_untrained_forecaster(
    path: Path, frame: pd.DataFrame, calibration: Calibration | None = None
) -> Path:
    """`untrained_forecaster(frame)` saved as a pyfunc model folder at `path` (with
    `calibration`, it forecasts intervals); returns `path`."""
    keras_model, scaler = untrained_forecaster(frame)
    save_forecast_model(
        path,
        keras_model,
        scaler,
        SPEC,
        frequency="D",
        model_name="lstm",
        input_example=frame,
        calibration=calibration,
    )
    return path


def register_untrained_champion(
    frame: pd.DataFrame,
    registered_model_name: str,
    experiment_id: str,
    calibration: Calibration | None = None,
) -> str:
    """Logs `untrained_forecaster(frame)` (with `calibration`, if given) in a run of
    `experiment_id`, registers it and points `champion` at the new version; returns
    `models:/NAME@champion`."""
    import mlflow

    keras_model, scaler = untrained_forecaster(frame)
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_forecast_model(
            keras_model,
            scaler,
            SPEC,
            frequency="D",
            model_name="lstm",
            input_example=frame,
            calibration=calibration,
            registered_model_name=registered_model_name,
        )
    mlflow.MlflowClient().set_registered_model_alias(
        registered_model_name, "champion", info.registered_model_version
    )
    return f"models:/{registered_model_name}@champion"
