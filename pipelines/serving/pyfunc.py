"""Saving and logging a forecast model: the Keras model, its scaler and its window spec as one
MLflow pyfunc whose code is the `pipelines.runtime` package (`ForecastModel` runs it).

The model folder carries the `.keras` file, the scaler, a JSON "forecast spec", the model file
MLflow runs to build the model (`pipelines/runtime/logged_model.py`, MLflow's "models from
code": nothing is pickled) and, as MLflow `code_paths`, the code a loaded model runs: the
`pipelines.runtime` and `models` packages, each whole. So `mlflow.pyfunc.load_model`,
`mlflow models serve` and `mlflow.pyfunc.spark_udf` load it in a fresh process that has never
imported this project, and the model does not carry configuration, training, tracking, serving
or CLI code: the runtime package imports none of them (an import-linter contract).

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
    - Models logged before the runtime package pickled `ForecastModel` as
      `pipelines.serving.pyfunc.ForecastModel` (or, earlier, `pipelines.pyfunc.ForecastModel`).
      A fresh process loads them from the code they shipped; a process that already imported
      this checkout resolves those names here, so the name is kept.
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
import pandas as pd

import models
import pipelines.runtime
from pipelines.runtime.contract import (
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
)
from pipelines.runtime.forecaster import (
    CALIBRATION_ARTIFACT,
    CALIBRATION_FILE,
    FORECAST_SPEC_ARTIFACT,
    FORECAST_SPEC_FILE,
    KERAS_MODEL_ARTIFACT,
    KERAS_MODEL_FILE,
    LEVELS_PARAM,
    RECALIBRATE_PARAM,
    SCALER_ARTIFACT,
    SCALER_FILE,
    ForecastModel,
    forecast_spec,
)
from pipelines.runtime.history import to_model_input
from pipelines.runtime.intervals import DEFAULT_LEVELS, Calibration
from pipelines.runtime.scaling import FittedScaler
from pipelines.runtime.windows import WindowSpec

if TYPE_CHECKING:
    import keras
    from mlflow.models.model import ModelInfo

__all__ = ["ForecastModel", "log_forecast_model", "runtime_requirements", "save_forecast_model"]

LOGGED_MODEL_FILE = Path(pipelines.runtime.__file__).resolve().with_name("logged_model.py")
"""The models-from-code file MLflow runs to build a loaded model."""

# Distribution names of what a loaded model imports; pinned to the installed versions on save.
_RUNTIME_DISTRIBUTIONS = ("mlflow", "keras", "pandas", "numpy", "scikit-learn")
_TENSORFLOW_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow")
_CODE_IGNORE = shutil.ignore_patterns("__pycache__", "*_test.py", "test_*.py", "*.pyc")


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
    calibration: Calibration | None = None,
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
        calibration: conformal offsets (`pipelines.runtime.intervals`), shipped as an
            artifact; with one, the model forecasts intervals and takes `levels` as a param.

    Raises:
        DataValidationError: a frequency, spec or scaler that does not fit together, or an
            input example the model cannot forecast from.
    """
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as staging:
        arguments = _prepare_artifacts(
            Path(staging),
            keras_model,
            scaler,
            spec,
            frequency,
            model_name,
            input_example,
            calibration,
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
    calibration: Calibration | None = None,
    name: str = "model",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Logs the pyfunc model to the active run (MLflow starts one if none is active).

    Args:
        keras_model, scaler, spec, frequency, model_name, input_example, calibration: as in
            `save_forecast_model`.
        name: the logged model's name within the run.
        registered_model_name: also register a new version under this name, when given.

    Returns:
        MLflow's `ModelInfo` (its `model_uri` loads the model).
    """
    with tempfile.TemporaryDirectory(prefix="forecast-model-") as staging:
        arguments = _prepare_artifacts(
            Path(staging),
            keras_model,
            scaler,
            spec,
            frequency,
            model_name,
            input_example,
            calibration,
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
    calibration: Calibration | None,
) -> dict[str, Any]:
    """Writes the artifacts and code to `staging`; returns the keyword arguments for MLflow."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    _check_frequency(frequency)
    missing = [c for c in (*spec.features, *spec.targets) if c not in scaler.columns]
    if missing:
        raise DataValidationError(
            f"forecast model: columns {missing} of the window spec were not fitted by the scaler "
            f"(it knows {list(scaler.columns)})"
        )
    files = {
        KERAS_MODEL_ARTIFACT: staging / KERAS_MODEL_FILE,
        SCALER_ARTIFACT: staging / SCALER_FILE,
        FORECAST_SPEC_ARTIFACT: staging / FORECAST_SPEC_FILE,
    }
    keras_model.save(files[KERAS_MODEL_ARTIFACT])
    scaler.save(files[SCALER_ARTIFACT])
    example = to_model_input(input_example, spec.features, last_rows=spec.input_width)
    series_ids = pd.unique(example[SERIES_COLUMN]).tolist()
    metadata = forecast_spec(spec, scaler, frequency, model_name, series_ids)
    files[FORECAST_SPEC_ARTIFACT].write_text(json.dumps(metadata, indent=1), encoding="utf-8")
    if calibration is not None:
        files[CALIBRATION_ARTIFACT] = staging / CALIBRATION_FILE
        calibration.save(files[CALIBRATION_ARTIFACT])

    # The signature comes from what the saved artifacts produce, so it matches a loaded model.
    model = ForecastModel()
    model.load_files(*files.values())
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
        # A model with a calibration takes the interval levels as an inference parameter:
        # `predict(history, params={"levels": [80, 95]})`, or "params" in a served payload;
        # and `recalibrate`, windows of the history to recalibrate on (0: the logged one).
        params=None
        if calibration is None
        else ParamSchema(
            [
                ParamSpec(LEVELS_PARAM, "double", list(DEFAULT_LEVELS), (-1,)),
                ParamSpec(RECALIBRATE_PARAM, "long", 0),
            ]
        ),
    )
    return {
        "python_model": str(LOGGED_MODEL_FILE),
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
    """Copies the code a loaded model runs into `destination`; returns the paths for code_paths.

    That is the `pipelines.runtime` package and the `models` package, each whole (without tests
    or caches), and the top-level `pipelines/__init__.py` that makes the first a subpackage.
    MLflow copies each code path into the model's `code/` folder and puts that folder first on
    `sys.path` before it runs the model file, so `import pipelines.runtime` and `import models`
    work in a process that has never seen this repository.

    Args:
        destination: an empty or missing folder; becomes the model's `code/` folder.

    Returns:
        The `pipelines` and `models` folders under `destination`.
    """
    runtime_root = Path(pipelines.runtime.__file__).resolve().parent
    pipelines_root = runtime_root.parent
    shipped_pipelines = destination / pipelines_root.name
    shutil.copytree(runtime_root, shipped_pipelines / runtime_root.name, ignore=_CODE_IGNORE)
    shutil.copyfile(pipelines_root / "__init__.py", shipped_pipelines / "__init__.py")
    models_root = Path(models.__file__).resolve().parent
    shutil.copytree(models_root, destination / models_root.name, ignore=_CODE_IGNORE)
    return [str(shipped_pipelines), str(destination / models_root.name)]


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
