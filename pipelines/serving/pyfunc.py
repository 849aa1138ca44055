"""The logged model: an MLflow pyfunc that maps recent history to forecasts in original units.

Input (one DataFrame, long format): `series_id` (optional when the model knows one series),
`timestamp` (ISO 8601 text; naive values are read as UTC) and the model's feature columns. Extra
columns are ignored. Output: `series_id`, `timestamp` (the forecast time, UTC), `step`
(1..horizon) and one column per target, sorted by series then step.

Every series' last `input_width` rows are scaled with the saved scaler, stacked into one batch and
sent through the Keras model in a single call, so hundreds of series cost one predict call, not
hundreds. The model folder carries the `.keras` file, the scaler, a JSON "forecast spec" and, as
MLflow `code_paths`, the code a loaded model runs: the `models` package (the Keras layers) and,
of `pipelines`, only this module and the modules it imports at load or predict time (the data
contract, history checks, scaling and windows), found by following its imports through the
source. So `mlflow.pyfunc.load_model`, `mlflow models serve` and `mlflow.pyfunc.spark_udf` load
it in a fresh process that has never imported this project, and the model does not carry
training, tracking, configuration or CLI code.

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
    - The shipped `pipelines` modules are traced, not listed: every `pipelines` import in this
      module (module-level or inside a function, but not under `if TYPE_CHECKING:`, which never
      runs), then in each module it reaches, plus the `__init__.py` of every package on the way.
      A new import in a data module is shipped without editing a list; a name the trace cannot
      find as a file fails the save rather than the first load.
    - `mlflow` is imported at module level (the model class subclasses `PythonModel`; importing
      it has no side effects and sets no tracking URI); TensorFlow and Keras are imported only
      where a model is loaded or saved.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from pipelines.data.contract import (
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
)
from pipelines.data.history import (
    check_history,
    ready_windows,
    refuse_unready,
    to_model_input,
    unready_history,
)
from pipelines.data.readiness import NotReady
from pipelines.data.scaling import ALL_SERIES, FittedScaler
from pipelines.data.windows import WindowSpec

if TYPE_CHECKING:
    import keras
    from mlflow.models.model import ModelInfo

KERAS_MODEL_ARTIFACT = "keras_model"
SCALER_ARTIFACT = "scaler"
FORECAST_SPEC_ARTIFACT = "forecast_spec"
FORECAST_SPEC_VERSION = 1
KERAS_MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"
FORECAST_SPEC_FILE = "forecast_spec.json"
"""The files of a logged model's artifacts (Spark reads the spec before loading the model)."""
TRADING_DAYS_FORECAST_FREQUENCY = "B"
"""Forecast timestamps of `trading-days` data step over business days: the model has no
exchange calendar, so holidays are not skipped (documented approximation)."""

# Distribution names of what a loaded model imports; pinned to the installed versions on save.
_RUNTIME_DISTRIBUTIONS = ("mlflow", "keras", "pandas", "numpy", "scikit-learn")
_TENSORFLOW_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow")
# The pipelines module a loaded model imports first (MLflow unpickles `ForecastModel` from it);
# the shipped `pipelines` code is what it needs, transitively.
_ENTRY_MODULE = __name__
_CODE_IGNORE = shutil.ignore_patterns("__pycache__", "*_test.py", "test_*.py", "*.pyc")


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

        # Importing the zoo registers the custom layers: MLflow's loader passes no
        # custom_objects, and compile=False skips the optimizer, which inference never uses.
        import models.zoo  # noqa: F401

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
        forecast, not_ready = self.forecast_ready(model_input)
        refuse_unready(not_ready)
        return forecast

    def unready(self, model_input: pd.DataFrame) -> list[NotReady]:
        """The series of `model_input` that `predict` refuses, with their reasons, without
        forecasting any (what Spark lists beside its forecasts).

        Raises:
            DataValidationError: as `forecast_ready`.
        """
        history, known = self._history(model_input)
        return unready_history(history, self.spec, self.metadata["frequency"], known)

    def _history(self, model_input: pd.DataFrame) -> tuple[pd.DataFrame, list[str] | None]:
        """The checked history and the series a per-series scaler knows (None: any)."""
        if self.keras_model is None or self.scaler is None or self.spec is None:
            raise RuntimeError("ForecastModel: no artifacts loaded; load it with MLflow")
        known = sorted(self.scaler.scalers) if self.scaler.per_series else None
        return check_history(model_input, self.spec, self.metadata, known), known

    def forecast_ready(self, model_input: pd.DataFrame) -> tuple[pd.DataFrame, list[NotReady]]:
        """`predict` for the series that are ready, and the others with their reasons (the
        readiness rule, `pipelines.data.readiness`): for paths that skip and list series, such
        as Spark, instead of refusing the whole input.

        Raises:
            DataValidationError: missing columns, bad timestamps or duplicates (the input as a
                whole breaks the contract).
        """
        history, known = self._history(model_input)
        window_rows, not_ready = ready_windows(
            history, self.spec, self.metadata["frequency"], known
        )
        series_ids = window_rows[SERIES_COLUMN].to_numpy()[:: self.spec.input_width]
        scaled = self.scaler.transform(window_rows, self.spec.features)
        batch = scaled.reshape(len(series_ids), self.spec.input_width, len(self.spec.features))
        expected_shape = (len(series_ids), self.spec.horizon, len(self.spec.targets))
        if not len(series_ids):
            forecasts = np.zeros(expected_shape)
        else:
            # One call for every series: the batch dimension is the series, so the cost of the
            # Keras call is paid once however many series are forecast.
            forecasts = np.asarray(self.keras_model.predict_on_batch(batch), dtype="float64")
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
            series_ids, last_times, values, self.spec, self.metadata["frequency"]
        )
        return frame, not_ready


# --------------------------------------------------------------------------------------------
# Input checks


def long_forecast_frame(
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
        KERAS_MODEL_ARTIFACT: staging / KERAS_MODEL_FILE,
        SCALER_ARTIFACT: staging / SCALER_FILE,
        FORECAST_SPEC_ARTIFACT: staging / FORECAST_SPEC_FILE,
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
    """Copies the code a loaded model runs into `destination`; returns the paths for code_paths.

    That is the `models` package (without tests or caches) and, of `pipelines`, the files
    `_runtime_module_files` traces from this module, in their package folders. MLflow copies
    each code path into the model's `code/` folder and puts that folder first on `sys.path`
    before it unpickles the model, so `import pipelines.serving.pyfunc` and `import models` work
    in a process that has never seen this repository.

    Args:
        destination: an empty or missing folder; becomes the model's `code/` folder.

    Returns:
        The `pipelines` and `models` folders under `destination`.
    """
    import models

    pipelines_root = _package_root(_ENTRY_MODULE)
    for source in _runtime_module_files(_ENTRY_MODULE, pipelines_root):
        target = destination / source.relative_to(pipelines_root.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    models_root = Path(models.__file__).resolve().parent
    shutil.copytree(models_root, destination / models_root.name, ignore=_CODE_IGNORE)
    return [str(destination / pipelines_root.name), str(destination / models_root.name)]


def _package_root(module_name: str) -> Path:
    """The folder of the top-level package of `module_name` (e.g. `.../pipelines`)."""
    top_level = importlib.import_module(module_name.partition(".")[0])
    return Path(top_level.__file__).resolve().parent


def _runtime_module_files(entry: str, root: Path) -> list[Path]:
    """The source files of `entry` and every module of its package it imports, transitively.

    Imports are read from the source with `ast`: module-level and function-level ones, absolute
    and relative, except those under `if TYPE_CHECKING:`. Each module brings the `__init__.py`
    of every package above it, whose imports are followed too. Imports of other packages
    (NumPy, `models`, ...) are not followed.

    Args:
        entry: a dotted module name inside the package at `root`, e.g. 'pipelines.serving.pyfunc'.
        root: the top-level package's folder; its name is the package name.

    Returns:
        The files, sorted.

    Raises:
        ImportError: an import of a module of the package that has no source file under `root`.
    """
    package = root.name
    found: dict[str, Path] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _module_file(name, root)
        if path is None:
            raise ImportError(f"forecast model code: no source file for module {name!r}", name=name)
        found[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imported in _imported_modules(tree, name, is_package, root):
            if imported == package or imported.startswith(package + "."):
                pending.append(imported)
    return sorted(found.values())


def _imported_modules(tree: ast.AST, module: str, is_package: bool, root: Path) -> Iterator[str]:
    """Dotted names of the modules that the code in `tree` (the module `module`) imports.

    For `from X import name`, yields `X` and, when `X.name` is a module file under `root`,
    `X.name` too; a name defined in `X` is not a module.
    """
    for node in _runtime_import_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            if not is_package:
                anchor = anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        yield base
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            if alias.name != "*" and _module_file(candidate, root) is not None:
                yield candidate


def _runtime_import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in `tree` except those in the body of `if TYPE_CHECKING:`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    """True for `TYPE_CHECKING` and `typing.TYPE_CHECKING`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of the dotted module `name` under the package folder `root`, if any."""
    parts = name.split(".")
    if parts[0] != root.name:
        return None
    folder = root.joinpath(*parts[1:])
    candidates = [folder / "__init__.py"]
    if len(parts) > 1:
        candidates.append(folder.with_suffix(".py"))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


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
