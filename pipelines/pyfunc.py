"""The logged model: an MLflow pyfunc that maps recent history to forecasts in original units.

Input (one DataFrame, long format): `series_id` (optional when the model knows one series),
`timestamp` (ISO 8601 text; naive values are read as UTC) and the model's feature columns. Extra
columns are ignored. Output: `series_id`, `timestamp` (the forecast time, UTC), `step`
(1..horizon) and one column per target, sorted by series then step.

Every series' last `input_width` rows are scaled with the saved scaler, stacked into one batch and
sent through the Keras model in a single call, so hundreds of series cost one predict call, not
hundreds. The model folder carries the `.keras` file, the scaler, a JSON "forecast spec" and the
`pipelines` and `models` packages (as MLflow `code_paths`), so `mlflow.pyfunc.load_model`,
`mlflow models serve` and `mlflow.pyfunc.spark_udf` load it in a fresh process that has never
imported this project.

Decisions:
    - The signature types `timestamp` as a string. MLflow's schema enforcement under pandas 3
      rejects text in a `datetime` column and time-zone-aware values in any column, while JSON
      (serve) and Spark deliver text naturally. `to_model_input` turns a prepared frame into
      that form. Every input column is optional in the signature, so MLflow passes an incomplete
      frame through and `predict` names what is missing (with a did-you-mean hint).
    - `pip_requirements` are the packages the model needs at inference (MLflow, TensorFlow,
      Keras, pandas, NumPy, scikit-learn), pinned to the installed versions, which the project's
      lock file pins. Inferring them would run the model in a subprocess on every save (slow)
      and the whole `requirements.txt` would make serving environments install test and
      plotting tools.
    - `mlflow` is imported at module level (the model class subclasses `PythonModel`; importing
      it has no side effects and sets no tracking URI); TensorFlow and Keras are imported only
      where a model is loaded or saved.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from pipelines.split import ALL_SERIES, FittedScaler
from pipelines.validate import (
    MAX_LISTED,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
    closest_name_hint,
)
from pipelines.windows import WindowSpec

if TYPE_CHECKING:
    import keras
    from mlflow.models.model import ModelInfo

STEP_COLUMN = "step"
KERAS_MODEL_ARTIFACT = "keras_model"
SCALER_ARTIFACT = "scaler"
FORECAST_SPEC_ARTIFACT = "forecast_spec"
FORECAST_SPEC_VERSION = 1
DEFAULT_SERIES_ID = "series"
TRADING_DAYS_FORECAST_FREQUENCY = "B"
"""Forecast timestamps of `trading-days` data step over business days: the model has no
exchange calendar, so holidays are not skipped (documented approximation)."""

# Distribution names of what a loaded model imports; pinned to the installed versions on save.
_RUNTIME_DISTRIBUTIONS = ("mlflow", "keras", "pandas", "numpy", "scikit-learn")
_TENSORFLOW_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow")
_CODE_PACKAGES = ("pipelines", "models")


class ForecastModel(mlflow.pyfunc.PythonModel):
    """Keras forecaster + fitted scaler + window spec, as one MLflow pyfunc.

    Load it with `mlflow.pyfunc.load_model(uri)` and call `predict(history)`; the artifacts
    (`keras_model`, `scaler`, `forecast_spec`) are written by `save_forecast_model` or
    `log_forecast_model`.
    """

    def __init__(self) -> None:
        self.keras_model: Any = None
        self.scaler: FittedScaler | None = None
        self.spec: WindowSpec | None = None
        self.metadata: dict[str, Any] = {}

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Loads the Keras model, the scaler and the forecast spec from the model's artifacts."""
        self._load_files(
            Path(context.artifacts[KERAS_MODEL_ARTIFACT]),
            Path(context.artifacts[SCALER_ARTIFACT]),
            Path(context.artifacts[FORECAST_SPEC_ARTIFACT]),
        )

    def _load_files(self, keras_path: Path, scaler_path: Path, spec_path: Path) -> None:
        import keras

        # Importing the package registers the custom layers: MLflow's loader passes no
        # custom_objects, and compile=False skips the optimizer, which inference never uses.
        import models  # noqa: F401

        self.keras_model = keras.saving.load_model(keras_path, compile=False)
        self.scaler = FittedScaler.load(scaler_path)
        self.metadata = json.loads(spec_path.read_text(encoding="utf-8"))
        self.spec = WindowSpec.from_dict(self.metadata["window_spec"])

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
            params: unused; accepted for MLflow's inference-parameter protocol.

        Returns:
            Long-format forecasts: `series_id`, `timestamp`, `step`, one column per target.

        Raises:
            DataValidationError: missing columns, bad timestamps or values, duplicates, gaps,
                too short a history, or a series the per-series scaler does not know.
        """
        if self.keras_model is None or self.scaler is None or self.spec is None:
            raise RuntimeError("ForecastModel: no artifacts loaded; load it with MLflow")
        history = _history_frame(model_input, self.spec, self.metadata, self.scaler)
        window_rows = _last_windows(history, self.spec, self.metadata["frequency"])
        series_ids = window_rows[SERIES_COLUMN].to_numpy()[:: self.spec.input_width]
        scaled = self.scaler.transform(window_rows, self.spec.features)
        batch = scaled.reshape(len(series_ids), self.spec.input_width, len(self.spec.features))
        # One call for every series: the batch dimension is the series, so the cost of the
        # Keras call is paid once however many series are forecast.
        forecasts = np.asarray(self.keras_model.predict_on_batch(batch), dtype="float64")
        expected_shape = (len(series_ids), self.spec.horizon, len(self.spec.targets))
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
        return _forecast_frame(
            series_ids, last_times, values, self.spec, self.metadata["frequency"]
        )


# --------------------------------------------------------------------------------------------
# Input checks


def _history_frame(
    model_input: Any, spec: WindowSpec, metadata: dict[str, Any], scaler: FittedScaler
) -> pd.DataFrame:
    """The input's needed columns, with string series ids and UTC timestamps, sorted."""
    if not isinstance(model_input, pd.DataFrame):
        try:
            model_input = pd.DataFrame(model_input)
        except (TypeError, ValueError) as error:
            raise DataValidationError(
                f"model input: expected a DataFrame of history, got {type(model_input).__name__}"
            ) from error
    needed = [SERIES_COLUMN, TIMESTAMP_COLUMN, *spec.features]
    # Only columns the model does not use can be the misspelling; MLflow's schema enforcement
    # drops them before `predict`, so the hint shows when the model is called directly.
    others = [str(column) for column in model_input.columns if column not in needed]
    for column in (TIMESTAMP_COLUMN, *spec.features):
        if column not in model_input.columns:
            hint = closest_name_hint(column, others) if others else ""
            raise DataValidationError(
                f"model input: column {column!r} not found{hint}; the model needs {needed}"
            )
    if len(model_input) == 0:
        raise DataValidationError("model input: no rows; send each series' recent history")
    history = pd.DataFrame(
        {
            SERIES_COLUMN: _series_ids(model_input, metadata),
            TIMESTAMP_COLUMN: _parse_timestamps(model_input[TIMESTAMP_COLUMN]),
        },
        index=pd.RangeIndex(len(model_input)),
    )
    for column in spec.features:
        history[column] = model_input[column].to_numpy()
    if scaler.per_series:
        known = set(scaler.scalers)
        unknown = [sid for sid in pd.unique(history[SERIES_COLUMN]) if sid not in known]
        if unknown:
            raise DataValidationError(
                f"model input: series {unknown[:MAX_LISTED]} unknown to this model; its scaler "
                f"was fitted per series on {_listed(sorted(known))}"
            )
    history = history.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    duplicated = history.duplicated([SERIES_COLUMN, TIMESTAMP_COLUMN], keep=False).to_numpy()
    if duplicated.any():
        first = history.loc[duplicated].iloc[0]
        raise DataValidationError(
            f"model input: series {first[SERIES_COLUMN]!r} has duplicate timestamps "
            f"({int(duplicated.sum())} rows share a timestamp, first "
            f"{_format_time(first[TIMESTAMP_COLUMN])})"
        )
    return history.reset_index(drop=True)


def _series_ids(model_input: pd.DataFrame, metadata: dict[str, Any]) -> np.ndarray:
    if SERIES_COLUMN in model_input.columns:
        ids = model_input[SERIES_COLUMN]
        if ids.isna().any():
            rows = np.flatnonzero(ids.isna().to_numpy())
            raise DataValidationError(
                f"model input: column {SERIES_COLUMN!r} is empty in rows "
                f"{rows[:MAX_LISTED].tolist()}"
            )
        return ids.astype(str).to_numpy(dtype=object)
    known = metadata.get("series_ids") or []
    if len(known) > 1:
        raise DataValidationError(
            f"model input: column {SERIES_COLUMN!r} not found; this model was trained on "
            f"{len(known)} series ({_listed(known)}), so each row must name its series"
        )
    default = known[0] if known else DEFAULT_SERIES_ID
    return np.full(len(model_input), default, dtype=object)


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from datetimes (naive = UTC) or text; unparseable text is an error."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
        parsed = (
            parsed.dt.tz_localize("UTC") if parsed.dt.tz is None else parsed.dt.tz_convert("UTC")
        )
    else:
        # ISO 8601 parses vectorised; the per-value "mixed" parser only sees what ISO rejected.
        parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
        retry = parsed.isna() & values.notna()
        if retry.any():
            parsed[retry] = pd.to_datetime(
                values[retry].astype(str), utc=True, format="mixed", errors="coerce"
            )
    bad = parsed.isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:MAX_LISTED]
        shown = ", ".join(f"row {row}: {values.iloc[row]!r}" for row in rows)
        raise DataValidationError(
            f"model input: column {TIMESTAMP_COLUMN!r} has {int(bad.sum())} unparseable or empty "
            f"timestamps ({shown}); send ISO 8601 text such as '2015-12-31T00:00:00Z'"
        )
    return parsed.astype("datetime64[ns, UTC]").reset_index(drop=True)


def _last_windows(history: pd.DataFrame, spec: WindowSpec, frequency: str) -> pd.DataFrame:
    """The last `input_width` rows of every series (sorted), after checking values and gaps."""
    width = spec.input_width
    series = history[SERIES_COLUMN]
    counts = series.value_counts(sort=False)
    short = counts[counts < width]
    if len(short):
        shown = ", ".join(f"{sid!r} has {rows}" for sid, rows in list(short.items())[:MAX_LISTED])
        raise DataValidationError(
            f"model input: history too short for {len(short)} series ({shown} rows); the model "
            f"needs the last {width} rows (input_width) of each series"
        )
    from_end = history.groupby(SERIES_COLUMN, sort=False).cumcount(ascending=False).to_numpy()
    window = history.loc[from_end < width].reset_index(drop=True)

    values = window[list(spec.features)].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype="float64"))
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise DataValidationError(
            f"model input: series {window[SERIES_COLUMN].iloc[row]!r}: column "
            f"{spec.features[column]!r} at {_format_time(window[TIMESTAMP_COLUMN].iloc[row])} is "
            f"{window[spec.features[column]].iloc[row]!r}; the last {width} rows must be finite "
            f"numbers ({int((~finite).sum())} such values)"
        )
    window[list(spec.features)] = values.astype("float64")
    _check_gaps(window, width, frequency)
    return window


def _check_gaps(window: pd.DataFrame, width: int, frequency: str) -> None:
    """Rejects a window whose rows are not consecutive steps of the model's frequency."""
    if width < 2:
        return
    times = pd.DatetimeIndex(window[TIMESTAMP_COLUMN])
    same_series = np.ones(len(window) - 1, dtype=bool)
    same_series[width - 1 :: width] = False  # a pair that straddles two series is no gap
    previous, current = times[:-1], times[1:]
    if frequency == TRADING_DAYS:
        # The trading calendar is whatever days the data holds, so only order can be checked;
        # duplicates were rejected, so sorted rows are strictly increasing here.
        return
    expected = previous + pd.tseries.frequencies.to_offset(frequency)
    broken = np.flatnonzero(same_series & (current != expected))
    if len(broken):
        pair = broken[0]
        missing = _steps_between(previous[pair], current[pair], frequency)
        raise DataValidationError(
            f"model input: series {window[SERIES_COLUMN].iloc[pair]!r} has a gap in its last "
            f"{width} rows: {_format_time(previous[pair])} is followed by "
            f"{_format_time(current[pair])}, expected {_format_time(expected[pair])} "
            f"(frequency {frequency!r}{missing}); fill the gap or send a consecutive history"
        )


def _steps_between(start: pd.Timestamp, end: pd.Timestamp, frequency: str) -> str:
    try:
        steps = len(pd.date_range(start, end, freq=frequency)) - 2
    except (ValueError, OverflowError):
        return ""
    return f", {steps} missing steps" if steps > 0 else ""


def _forecast_frame(
    series_ids: np.ndarray,
    last_times: pd.DatetimeIndex,
    values: np.ndarray,
    spec: WindowSpec,
    frequency: str,
) -> pd.DataFrame:
    """Long-format forecasts: one row per (series, step), sorted by series then step."""
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
    return frame


def _format_time(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


# --------------------------------------------------------------------------------------------
# Building the model input


def to_model_input(
    frame: pd.DataFrame, features: tuple[str, ...] | list[str], *, last_rows: int | None = None
) -> pd.DataFrame:
    """The model's input form of a history frame (e.g. a prepared frame).

    Args:
        frame: rows with `timestamp`, the feature columns and (optionally) `series_id`.
        features: the model's feature columns, in order.
        last_rows: keep only this many last rows of each series (None keeps all).

    Returns:
        `series_id` (text), `timestamp` (ISO 8601 text in UTC, e.g. '2015-12-31T00:00:00Z') and
        the features as float64, sorted by series and time.
    """
    series = (
        frame[SERIES_COLUMN].astype(str).to_numpy(dtype=object)
        if SERIES_COLUMN in frame.columns
        else np.full(len(frame), DEFAULT_SERIES_ID, dtype=object)
    )
    result = pd.DataFrame(
        {SERIES_COLUMN: series, TIMESTAMP_COLUMN: _parse_timestamps(frame[TIMESTAMP_COLUMN])}
    )
    for column in features:
        result[column] = frame[column].to_numpy(dtype="float64")
    result = result.sort_values([SERIES_COLUMN, TIMESTAMP_COLUMN], kind="stable")
    if last_rows is not None:
        from_end = result.groupby(SERIES_COLUMN, sort=False).cumcount(ascending=False)
        result = result.loc[from_end.to_numpy() < last_rows]
    result[TIMESTAMP_COLUMN] = result[TIMESTAMP_COLUMN].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    result[SERIES_COLUMN] = result[SERIES_COLUMN].astype(object)
    return result.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Saving and logging


def save_forecast_model(
    path: str | Path,
    keras_model: keras.Model,
    scaler: FittedScaler,
    spec: WindowSpec,
    *,
    frequency: str,
    model_name: str,
    input_example: pd.DataFrame,
) -> None:
    """Writes the pyfunc model to a local folder (which must not exist or be empty).

    Args:
        path: the model folder.
        keras_model: maps (batch, input_width, features) to (batch, horizon, targets), scaled.
        scaler: the scaler fitted on the training part (per series or pooled).
        spec: the window spec the model was trained with.
        frequency: the data's step, a pandas alias (e.g. 'D', '10min') or 'trading-days'.
        model_name: the zoo name (e.g. 'lstm'), recorded in the forecast spec.
        input_example: history in any form `to_model_input` reads (a prepared frame will do);
            each series' last `input_width` rows become the input example, and the model's
            output on it shapes the signature.

    Raises:
        DataValidationError: a frequency, spec or scaler that does not fit together, or an
            input example the model cannot forecast from.
    """
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as staging:
        arguments = _prepare_artifacts(
            Path(staging), keras_model, scaler, spec, frequency, model_name, input_example
        )
        mlflow.pyfunc.save_model(path=str(path), **arguments)


def log_forecast_model(
    keras_model: keras.Model,
    scaler: FittedScaler,
    spec: WindowSpec,
    *,
    frequency: str,
    model_name: str,
    input_example: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Logs the pyfunc model to the active run (MLflow starts one if none is active).

    Args:
        keras_model, scaler, spec, frequency, model_name, input_example: as in
            `save_forecast_model`.
        name: the logged model's name within the run.
        registered_model_name: also register a new version under this name, when given.

    Returns:
        MLflow's `ModelInfo` (its `model_uri` loads the model).
    """
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as staging:
        arguments = _prepare_artifacts(
            Path(staging), keras_model, scaler, spec, frequency, model_name, input_example
        )
        return mlflow.pyfunc.log_model(
            name=name, registered_model_name=registered_model_name, **arguments
        )


def _prepare_artifacts(
    staging: Path,
    keras_model: keras.Model,
    scaler: FittedScaler,
    spec: WindowSpec,
    frequency: str,
    model_name: str,
    input_example: pd.DataFrame,
) -> dict[str, Any]:
    """Writes the artifacts and code to `staging`; returns the keyword arguments for MLflow."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    _check_frequency(frequency)
    missing = [c for c in (*spec.features, *spec.targets) if c not in scaler.columns]
    if missing:
        raise DataValidationError(
            f"forecast model: columns {missing} of the window spec were not fitted by the scaler "
            f"(it knows {list(scaler.columns)})"
        )
    files = {
        KERAS_MODEL_ARTIFACT: staging / "model.keras",
        SCALER_ARTIFACT: staging / "scaler.json",
        FORECAST_SPEC_ARTIFACT: staging / "forecast_spec.json",
    }
    keras_model.save(files[KERAS_MODEL_ARTIFACT])
    scaler.save(files[SCALER_ARTIFACT])
    example = to_model_input(input_example, spec.features, last_rows=spec.input_width)
    if scaler.per_series:
        series_ids = sorted(scaler.scalers)
    else:
        series_ids = sorted(pd.unique(example[SERIES_COLUMN]).tolist())
    metadata = {
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
        "series_ids": series_ids,
        "scaler": {"kind": scaler.kind, "per_series": scaler.per_series},
        "pooled_scaler_key": ALL_SERIES if not scaler.per_series else None,
    }
    files[FORECAST_SPEC_ARTIFACT].write_text(json.dumps(metadata, indent=1), encoding="utf-8")

    # The signature comes from what the saved artifacts produce, so it matches a loaded model.
    model = ForecastModel()
    model._load_files(*files.values())
    output = model.predict(None, example)
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values; the only one is the
        # output's `step`, which is never missing.
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column", category=UserWarning)
        # The output's time zone is part of the contract (UTC); MLflow's `datetime` type has
        # none, and inferring it from zone-aware values trips a pandas deprecation.
        naive = output.assign(**{TIMESTAMP_COLUMN: output[TIMESTAMP_COLUMN].dt.tz_convert(None)})
        inferred = infer_signature(example, naive)
    # Optional columns reach `predict`, which names what is missing and suggests a name;
    # required ones would be rejected by MLflow first, with no hint.
    signature = ModelSignature(
        inputs=Schema(
            [ColSpec(type=c.type, name=c.name, required=False) for c in inferred.inputs.inputs]
        ),
        outputs=inferred.outputs,
    )
    return {
        "python_model": ForecastModel(),
        "artifacts": {key: str(value) for key, value in files.items()},
        "signature": signature,
        "input_example": example,
        "code_paths": _copy_code(staging / "code"),
        "pip_requirements": runtime_requirements(),
    }


def _check_frequency(frequency: str) -> None:
    if frequency == TRADING_DAYS:
        return
    try:
        pd.tseries.frequencies.to_offset(frequency)
    except (TypeError, ValueError) as error:
        raise DataValidationError(
            f"parameter frequency: {frequency!r} is not a pandas frequency or {TRADING_DAYS!r}"
        ) from error


def _copy_code(destination: Path) -> list[str]:
    """Copies the `pipelines` and `models` packages (without tests or caches) for code_paths.

    MLflow copies each code path into the model's `code/` folder and puts that folder first on
    `sys.path` before it unpickles the model, so `import pipelines.pyfunc` and `import models`
    work in a process that has never seen this repository.
    """
    import models

    packages = {
        "pipelines": Path(__file__).resolve().parent,
        "models": Path(models.__file__).resolve().parent,
    }
    copies = []
    for name in _CODE_PACKAGES:
        target = destination / name
        shutil.copytree(
            packages[name],
            target,
            ignore=shutil.ignore_patterns("__pycache__", "*_test.py", "test_*.py", "*.pyc"),
        )
        copies.append(str(target))
    return copies


def runtime_requirements() -> list[str]:
    """Pinned pip requirements of a loaded model: the installed versions of what it imports."""
    requirements = []
    for distribution in _TENSORFLOW_DISTRIBUTIONS:
        try:
            requirements.append(f"{distribution}=={importlib.metadata.version(distribution)}")
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    for distribution in _RUNTIME_DISTRIBUTIONS:
        requirements.append(f"{distribution}=={importlib.metadata.version(distribution)}")
    return requirements
