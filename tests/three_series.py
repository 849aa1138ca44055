"""A small three-series data set and an untrained forecaster for it (serve and Spark tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.zoo import ModelShape, build_model
from pipelines.split import FittedScaler, SplitSpec, assign_parts, fit_scaler
from pipelines.windows import WindowSpec

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
    """An untrained LSTM(4) for `SPEC` and a per-series scaler fitted on `frame`'s train part."""
    scaler = fit_scaler(frame, assign_parts(frame, SplitSpec()), SPEC.features, per_series=True)
    shape = ModelShape(
        input_width=SPEC.input_width,
        horizon=SPEC.horizon,
        n_features=len(SPEC.features),
        target_indices=(SPEC.features.index("level"),),
    )
    return build_model("lstm", shape, units=4), scaler
