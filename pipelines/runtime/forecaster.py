"""The forecaster a logged model runs: recent history in, forecasts in original units out.

Input (one DataFrame, long format): `series_id` (optional when the model knows one series),
`timestamp` (ISO 8601 text; naive values are read as UTC) and the model's feature columns. Extra
columns are ignored. Output: `series_id`, `timestamp` (the forecast time, UTC), `step`
(1..horizon) and one column per target, sorted by series then step.

Every ready series' last `input_width` rows are scaled with the saved scaler, stacked into one
batch and sent through the Keras model in a single call, so hundreds of series cost one predict
call, not hundreds. Which series are ready is the readiness rule's
(`pipelines.runtime.readiness`): `predict` refuses the first one that is not, and
`forecast_ready` forecasts the others and lists it.

`mlflow` is imported at module level (the class subclasses `PythonModel`; importing it has no
side effects and sets no tracking URI); Keras is imported only where a model is loaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from pipelines.runtime.contract import (
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
)
from pipelines.runtime.history import (
    check_history,
    last_rows_per_series,
    ready_windows,
    refuse_unready,
    unready_history,
)
from pipelines.runtime.intervals import (
    DEFAULT_LEVELS,
    Calibration,
    calibrate,
    calibrate_quantile_head,
    check_levels,
    interval_column,
    interval_columns,
    interval_quantiles,
)
from pipelines.runtime.readiness import NotReady
from pipelines.runtime.scaling import ALL_SERIES, FittedScaler
from pipelines.runtime.windows import WindowSpec

KERAS_MODEL_ARTIFACT = "keras_model"
SCALER_ARTIFACT = "scaler"
FORECAST_SPEC_ARTIFACT = "forecast_spec"
FORECAST_SPEC_VERSION = 1
KERAS_MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"
FORECAST_SPEC_FILE = "forecast_spec.json"
CALIBRATION_ARTIFACT = "calibration"
CALIBRATION_FILE = "calibration.npz"
"""The files of a logged model's artifacts (Spark reads the spec before loading the model)."""
LEVELS_PARAM = "levels"
"""The inference parameter of the interval levels (a model with a calibration declares it)."""
RECALIBRATE_PARAM = "recalibrate"
"""The inference parameter of a recalibration on the history sent: how many of its most recent
windows with known actuals recalibrate each step's intervals (0: the logged calibration)."""
TRADING_DAYS_FORECAST_FREQUENCY = "B"
"""Forecast timestamps of `trading-days` data step over business days: the model has no
exchange calendar, so holidays are not skipped (documented approximation)."""


class ForecastModel(mlflow.pyfunc.PythonModel):
    """Keras forecaster + fitted scaler + window spec, as one MLflow pyfunc.

    Load it with `mlflow.pyfunc.load_model(uri)` and call `predict(history)`; the artifacts
    (`keras_model`, `scaler`, `forecast_spec`) are written by
    `pipelines.serving.pyfunc.save_forecast_model` or `log_forecast_model`.
    """

    def __init__(self) -> None:
        self.keras_model: Any = None
        self.scaler: FittedScaler | None = None
        self.spec: WindowSpec | None = None
        self.metadata: dict[str, Any] = {}
        self.calibration: Calibration | None = None
        self._head_levels: tuple[float, ...] | None = None

    @classmethod
    def assembled(
        cls,
        keras_model: Any,
        scaler: FittedScaler,
        spec: WindowSpec,
        metadata: dict[str, Any],
        calibration: Calibration | None = None,
    ) -> ForecastModel:
        """The model a logged one loads as, from the parts in memory (what the backtest
        forecasts with, so its scores are those of the code that ships)."""
        model = cls()
        model.keras_model, model.scaler, model.spec = keras_model, scaler, spec
        model.metadata, model.calibration = metadata, calibration
        return model

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Loads the Keras model, the scaler and the forecast spec from the model's artifacts."""
        calibration = context.artifacts.get(CALIBRATION_ARTIFACT)
        self.load_files(
            Path(context.artifacts[KERAS_MODEL_ARTIFACT]),
            Path(context.artifacts[SCALER_ARTIFACT]),
            Path(context.artifacts[FORECAST_SPEC_ARTIFACT]),
            None if calibration is None else Path(calibration),
        )

    def load_files(
        self,
        keras_path: Path,
        scaler_path: Path,
        spec_path: Path,
        calibration_path: Path | None = None,
    ) -> None:
        """Loads the artifact files (what `load_context` does with MLflow's paths); a model
        without a calibration forecasts no intervals."""
        import keras

        # Importing the zoo registers the custom layers: MLflow's loader passes no
        # custom_objects, and compile=False skips the optimizer, which inference never uses.
        import models.zoo  # noqa: F401

        self.keras_model = keras.saving.load_model(keras_path, compile=False)
        self._head_levels = None
        self.scaler = FittedScaler.load(scaler_path)
        self.metadata = json.loads(spec_path.read_text(encoding="utf-8"))
        self.spec = WindowSpec.from_dict(self.metadata["window_spec"])
        self.calibration = None if calibration_path is None else Calibration.load(calibration_path)

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Forecasts `horizon` steps after the last row of every series in `model_input`.

        Args:
            context: MLflow's model context (unused; the artifacts were read in `load_context`).
            model_input: long-format history: `series_id`, `timestamp` and the feature columns.
            params: MLflow's inference parameters: `levels`, the interval levels in percent
                (default 80 and 90, for a model with a calibration); `recalibrate`, a number of
                windows W (default 0): each series' intervals are then recalibrated on its own
                last W residuals per step whose actuals the history holds (the model forecasts
                its last W + H - 1 windows again; each series needs its last
                input_width + W + H - 1 rows consecutive and finite).

        Returns:
            Long-format forecasts: `series_id`, `timestamp`, `step`, one column per target and,
            per target and level, `<target>_lo_<level>` and `<target>_hi_<level>` (lower levels
            inside, as Nixtla orders them: OT, OT_lo_90, OT_lo_80, OT_hi_80, OT_hi_90).

        Raises:
            DataValidationError: missing columns, bad timestamps or values, duplicates, gaps,
                too short a history, a series the per-series scaler does not know, or a bad
                level.
        """
        forecast, not_ready = self.forecast_ready(model_input, params)
        refuse_unready(not_ready)
        return forecast

    def unready(
        self, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[NotReady]:
        """The series of `model_input` that `predict` refuses, with their reasons, without
        forecasting any (what Spark lists beside its forecasts); with `params` asking for a
        recalibration, also those whose history is too short or broken for it.

        Raises:
            DataValidationError: as `forecast_ready`.
        """
        windows = recalibration_windows(params, self.levels(params))
        history, known = self._history(model_input)
        found = unready_history(history, self.spec, self.metadata["frequency"], known)
        if windows:
            found += self._unready_to_recalibrate(history, known, windows)
        return sorted(found, key=lambda item: item.series_id)

    def _history(self, model_input: pd.DataFrame) -> tuple[pd.DataFrame, list[str] | None]:
        """The checked history and the series a per-series scaler knows (None: any)."""
        if self.keras_model is None or self.scaler is None or self.spec is None:
            raise RuntimeError("ForecastModel: no artifacts loaded; load it with MLflow")
        known = sorted(self.scaler.scalers) if self.scaler.per_series else None
        return check_history(model_input, self.spec, self.metadata, known), known

    def levels(self, params: dict[str, Any] | None) -> tuple[float, ...]:
        """The interval levels a call asks for: `params["levels"]`, else the defaults of a
        model with a calibration, else none.

        Raises:
            DataValidationError: a bad level, or levels asked of a model with no calibration.
        """
        asked = (params or {}).get(LEVELS_PARAM)
        if self.calibration is None:
            if asked is not None and len(np.atleast_1d(asked)):
                raise DataValidationError(
                    "levels: this model carries no calibration, so it forecasts no intervals; "
                    "train it again to log one"
                )
            return ()
        return DEFAULT_LEVELS if asked is None else check_levels(asked)

    def forecast_ready(
        self, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> tuple[pd.DataFrame, list[NotReady]]:
        """`predict` for the series that are ready, and the others with their reasons (the
        readiness rule, `pipelines.runtime.readiness`): for paths that skip and list series, such
        as Spark, instead of refusing the whole input.

        Raises:
            DataValidationError: missing columns, bad timestamps or duplicates (the input as a
                whole breaks the contract), or a bad level.
        """
        levels = self.levels(params)
        windows = recalibration_windows(params, levels)
        history, known = self._history(model_input)
        calibration, refused = self.calibration, []
        if windows:
            refused = self._unready_to_recalibrate(history, known, windows)
            names = [item.series_id for item in refused]
            history = history.loc[~history[SERIES_COLUMN].isin(names)].reset_index(drop=True)
        window_rows, not_ready = ready_windows(
            history, self.spec, self.metadata["frequency"], known
        )
        if windows:
            ready = set(window_rows[SERIES_COLUMN])
            # No series ready: the logged calibration keeps the interval columns (of no rows).
            calibration = self._recalibrated(history, ready, windows) or self.calibration
        not_ready = sorted([*refused, *not_ready], key=lambda item: item.series_id)
        series_ids = window_rows[SERIES_COLUMN].to_numpy()[:: self.spec.input_width]
        scaled = self.scaler.transform(window_rows, self.spec.features)
        batch = scaled.reshape(len(series_ids), self.spec.input_width, len(self.spec.features))
        expected_shape = (len(series_ids), self.spec.horizon, len(self.spec.targets))
        head_levels = self.head_quantiles()
        head = None
        if not len(series_ids):
            forecasts = np.zeros(expected_shape)
            if head_levels:
                head = np.zeros((*expected_shape[:2], len(head_levels), expected_shape[2]))
        else:
            # One call for every series: the batch dimension is the series, so the cost of the
            # Keras call is paid once however many series are forecast.
            forecasts = np.asarray(self.keras_model.predict_on_batch(batch), dtype="float64")
            if head_levels:  # a quantile head: its median is the point forecast
                head, forecasts = forecasts, forecasts[:, :, head_levels.index(0.5)]
        if forecasts.shape != expected_shape:
            raise RuntimeError(
                f"ForecastModel: the Keras model returned shape {forecasts.shape}, "
                f"expected {expected_shape}"
            )
        values = self.scaler.inverse_transform(forecasts, series_ids, self.spec.targets)
        # Slice the datetime array itself: `to_numpy()` of zone-aware times builds one Timestamp
        # object per row, which cost more than the rest of `predict` together (505 series).
        last_times = pd.DatetimeIndex(
            window_rows[TIMESTAMP_COLUMN].array[self.spec.input_width - 1 :: self.spec.input_width]
        )
        frame = long_forecast_frame(
            series_ids,
            last_times,
            values,
            self.spec,
            self.metadata["frequency"],
            self._bands(values, series_ids, levels, calibration, forecasts, head),
        )
        return frame, not_ready

    def head_quantiles(self) -> tuple[float, ...]:
        """The levels of the Keras model's quantile head, or () for a point forecaster (read
        from its layers once: every `predict` asks)."""
        from models.quantiles import head_quantiles_of

        if getattr(self, "_head_levels", None) is None:
            self._head_levels = head_quantiles_of(self.keras_model)
        return self._head_levels

    def _unready_to_recalibrate(
        self, history: pd.DataFrame, known: list[str] | None, windows: int
    ) -> list[NotReady]:
        """The series ready to forecast whose history is too short, broken or not finite over
        the rows a recalibration on `windows` windows reads (the readiness rule over them)."""
        rows = self.spec.input_width + windows + self.spec.horizon - 1
        frequency = self.metadata["frequency"]
        plain = {item.series_id for item in unready_history(history, self.spec, frequency, known)}
        return [
            NotReady(
                item.series_id,
                item.reason,
                f"recalibrate={windows} reads the last {rows} rows (input_width + recalibrate + "
                f"horizon - 1): {item.detail}",
            )
            for item in unready_history(history, self.spec, frequency, known, rows)
            if item.series_id not in plain
        ]

    def _recalibrated(
        self, history: pd.DataFrame, ready: set[str], windows: int
    ) -> Calibration | None:
        """Each ready series' calibration on its last `windows` residuals per step h: the
        windows whose step-h actuals are the history's, forecast again (None: none ready)."""
        spec = self.spec
        width, horizon = spec.input_width, spec.horizon
        span = width + windows + horizon - 1
        rows = last_rows_per_series(history.loc[history[SERIES_COLUMN].isin(ready)], span)
        if not len(rows):
            return None
        features = list(spec.features)
        rows[features] = rows[features].apply(pd.to_numeric, errors="coerce").astype("float64")
        series_ids = rows[SERIES_COLUMN].to_numpy()[::span]
        count = len(series_ids)
        scaled = self.scaler.transform(rows, spec.features).reshape(count, span, len(features))
        actual = self.scaler.transform(rows, spec.targets).reshape(count, span, -1)
        # Window k reads rows k..k+width-1 and forecasts rows k+width..k+width+horizon-1; the
        # last one (k = windows + horizon - 1) is the forecast itself, whose actuals are unknown.
        inputs = np.lib.stride_tricks.sliding_window_view(scaled, width, axis=1)
        inputs = inputs[:, : windows + horizon - 1].transpose(0, 1, 3, 2)
        batch = inputs.reshape(-1, width, len(features))
        outputs = np.asarray(self.keras_model.predict(batch, verbose=0), dtype="float64")
        outputs = outputs.reshape(count, windows + horizon - 1, *outputs.shape[1:])
        # Step h is known up to window windows + horizon - 1 - h: the last `windows` of them.
        steps = np.arange(1, horizon + 1)
        chosen = (horizon - steps)[np.newaxis, :] + np.arange(windows)[:, np.newaxis]
        known = actual[:, chosen + width - 1 + steps].reshape(count * windows, horizon, -1)
        chosen_outputs = outputs[:, chosen, steps - 1]  # (count, windows, horizon, [K,] T)
        chosen_outputs = chosen_outputs.reshape(count * windows, *chosen_outputs.shape[2:])
        ids = np.repeat(series_ids, windows)
        if head_levels := self.head_quantiles():
            return calibrate_quantile_head(
                known, chosen_outputs, head_levels, ids, source="recalibration"
            )
        return calibrate(known - chosen_outputs, ids, source="recalibration")

    def _bands(
        self,
        values: np.ndarray,
        series_ids: np.ndarray,
        levels: tuple[float, ...],
        calibration: Calibration | None,
        scaled: np.ndarray,
        head: np.ndarray | None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Per target, its interval columns in original units, in Nixtla's order: the point
        forecast `values` plus each bound's offset from the `scaled` point forecast (a
        conformal offset, or a CQR bound of the quantile `head`'s, minus the median) divided
        by the series' scale (what the inverse scaling of the bound gives, with one
        coefficient lookup for all)."""
        if not levels or calibration is None:
            return {}
        quantiles = [quantile for level in levels for quantile in interval_quantiles(level)]
        if calibration.head_quantiles:
            offsets = calibration.bounds(quantiles, scaled, series_ids, head) - scaled
        else:
            offsets = calibration.quantile_offsets(quantiles, series_ids)
        targets = self.spec.targets
        scales = self.scaler.slopes(series_ids, targets)[:, np.newaxis, :]
        bounds = {}
        for index, level in enumerate(levels):
            for side, position in (("lo", 2 * index), ("hi", 2 * index + 1)):
                bound = values + offsets[position] / scales
                for column, target in enumerate(targets):
                    bounds[interval_column(target, side, level)] = bound[:, :, column]
        return {
            target: {name: bounds[name] for name in interval_columns(target, levels)}
            for target in targets
        }


def recalibration_windows(params: dict[str, Any] | None, levels: tuple[float, ...]) -> int:
    """The `recalibrate` parameter checked: a whole number of windows >= 0, enough for the
    highest level asked ((100 + L) / (100 - L) residuals: 19 for 90); 0 without levels.

    Raises:
        DataValidationError: not a whole number >= 0, or too few windows for a level.
    """
    value = (params or {}).get(RECALIBRATE_PARAM, 0)
    number = value.item() if isinstance(value, np.generic) else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise DataValidationError(
            f"{RECALIBRATE_PARAM}: expected a whole number of windows >= 0, got {value!r}"
        )
    if not number or not levels:
        return 0
    needed = math.ceil((100 + max(levels)) / (100 - max(levels)))
    if number < needed:
        raise DataValidationError(
            f"{RECALIBRATE_PARAM}: {number} windows cannot hold level {max(levels):g}, which "
            f"needs {needed}"
        )
    return number


def forecast_spec(
    spec: WindowSpec,
    scaler: FittedScaler,
    frequency: str,
    model_name: str,
    series_ids: list[str],
) -> dict[str, Any]:
    """The forecast spec of a model (its `forecast_spec.json`): what it reads and writes.

    Args:
        spec: the window spec the model was trained with.
        scaler: its fitted scaler.
        frequency: the data's step, a pandas alias or 'trading-days'.
        model_name: the zoo name, e.g. 'lstm'.
        series_ids: the series it was trained on (a per-series scaler's own list wins).
    """
    return {
        "format_version": FORECAST_SPEC_VERSION,
        "model_name": model_name,
        "window_spec": spec.to_dict(),
        "frequency": frequency,
        "forecast_frequency": TRADING_DAYS_FORECAST_FREQUENCY
        if frequency == TRADING_DAYS
        else frequency,
        "features": list(spec.features),
        "targets": list(spec.targets),
        "series_column": SERIES_COLUMN,
        "timestamp_column": TIMESTAMP_COLUMN,
        "timestamps": "input ISO 8601 text or datetimes, naive read as UTC; output UTC",
        "series_ids": sorted(scaler.scalers) if scaler.per_series else sorted(series_ids),
        "scaler": {"kind": scaler.kind, "per_series": scaler.per_series},
        "pooled_scaler_key": ALL_SERIES if not scaler.per_series else None,
    }


def long_forecast_frame(
    series_ids: np.ndarray,
    last_times: pd.DatetimeIndex,
    values: np.ndarray,
    spec: WindowSpec,
    frequency: str,
    bands: dict[str, dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Long-format forecasts: one row per (series, step), sorted by series then step; each
    target's column followed by its interval columns (`bands[target]`, each (series, horizon))."""
    offset = pd.tseries.frequencies.to_offset(
        TRADING_DAYS_FORECAST_FREQUENCY if frequency == TRADING_DAYS else frequency
    )
    horizon = spec.horizon
    # Offsets are not all fixed durations (months, business days), so each step is added as an
    # offset; that is a loop over the horizon, vectorised over every series.
    step_times = np.stack(
        [(last_times + offset * step).to_numpy("datetime64[ns]") for step in range(1, horizon + 1)],
        axis=1,
    )
    frame = pd.DataFrame(
        {
            SERIES_COLUMN: np.repeat(series_ids.astype(str), horizon),
            TIMESTAMP_COLUMN: pd.DatetimeIndex(step_times.reshape(-1)).tz_localize("UTC"),
            STEP_COLUMN: np.tile(np.arange(1, horizon + 1, dtype="int64"), len(series_ids)),
        }
    )
    for index, target in enumerate(spec.targets):
        frame[target] = values[:, :, index].reshape(-1).astype("float64")
        for name, band in (bands or {}).get(target, {}).items():
            frame[name] = band.reshape(-1).astype("float64")
    return frame
