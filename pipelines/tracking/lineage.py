"""Prepare runs in MLflow: log a prepared data set once, find it again, load it by URI.

`main` chains its steps through MLflow: the prepared data are the artifacts of a *prepare run*
(`runs:/<id>/prepared`), the comparison reads them from there, and the forecast reads the model
the comparison registered. A prepare run is reused when its *inputs* are the same, which is
decided by `prepare_key`:

- the resolved `DataConfig` (every data, cleaning, window, split and scaler setting);
- the content of the source: a file's sha256, or the catalog's pinned sha256 where the loader
  enforces it (the embedded default data set, the Jena download); a source that can change
  without a checksum (yfinance) has no key and is never reused;
- the code that prepares data (every module of `pipelines/data/` and `data/catalog.yaml`), so
  a change of cleaning rules is never hidden by an old run.

Decisions:
    - The key is stored as the tag `prepare_key`; a run is reused only when FINISHED and its
      `prepared/` artifacts load. MLflow's example matches parameters and the git commit; a
      content hash also catches an edited data file or uncommitted code.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.data.prepare import PrepareResult, resolve_entry
from pipelines.data.prepare import run as prepare_data
from pipelines.data.prepared import read_outputs, write_outputs
from pipelines.data.settings import DataConfig
from pipelines.paths import CATALOG_PATH, REPOSITORY_ROOT, resolve_path
from pipelines.tracking.runs import param_text

__all__ = [
    "PREPARED_ARTIFACT",
    "PREPARE_KEY_TAG",
    "PreparedData",
    "find_prepare_run",
    "load_prepared",
    "log_prepare_run",
    "prepare_key",
    "prepared_data",
    "record_prepare_run",
]

PREPARED_ARTIFACT = "prepared"
PREPARE_KEY_TAG = "prepare_key"
STEP_TAG = "pipeline_step"
PREPARE_STEP = "prepare"
_CHUNK = 1 << 20
DATA_CODE = REPOSITORY_ROOT / "pipelines" / "data"


@dataclass(frozen=True)
class PreparedData:
    """Prepared data and the run that holds them.

    Attributes:
        result: the prepared frame, parts, scaler, spec and summary.
        run_id: the prepare run.
        uri: `runs:/<run_id>/prepared`, the artifact URI the next step reads.
        reused: True when an earlier run with the same inputs was found.
    """

    result: PrepareResult
    run_id: str
    uri: str
    reused: bool


def prepare_key(config: DataConfig) -> str | None:
    """A digest of everything that decides the prepared data; None when it cannot be known.

    Raises:
        DataValidationError: an unknown data set, or a `source` that does not exist.
    """
    content = _source_digest(config)
    if content is None:
        return None
    settings = config.model_dump()
    if settings.get("source"):
        settings["source"] = str(Path(settings["source"]).resolve())
    document = {"config": settings, "source_sha256": content, "code": _code_digest()}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def _source_digest(config: DataConfig) -> str | None:
    entry = resolve_entry(config)
    if config.source is not None:
        return _file_digest(Path(config.source))
    kind = entry.source.get("kind")
    if entry.sha256 and kind in ("package", "file", "download"):
        return entry.sha256  # the loader refuses any other content
    if kind == "package":
        resource = importlib.resources.files(entry.source["package"])
        with importlib.resources.as_file(resource.joinpath(entry.source["resource"])) as path:
            return _file_digest(path)
    if kind == "file":
        return _file_digest(resolve_path(entry.source["path"]))
    return None


def _file_digest(path: Path) -> str:
    from pipelines.runtime.contract import DataValidationError

    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _code_digest() -> str:
    digest = hashlib.sha256()
    # Every module of the data stage: a change of any cleaning rule is never hidden by an old run.
    code = sorted(str(path.relative_to(REPOSITORY_ROOT)) for path in DATA_CODE.rglob("*.py"))
    for name in (*code, str(CATALOG_PATH.relative_to(REPOSITORY_ROOT))):
        digest.update(name.encode())
        digest.update((REPOSITORY_ROOT / name).read_bytes())
    return digest.hexdigest()


def find_prepare_run(experiment_id: str, key: str) -> str | None:
    """The newest FINISHED prepare run of `experiment_id` with this `prepare_key`, if any."""
    from mlflow import MlflowClient

    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=(f"tags.{PREPARE_KEY_TAG} = '{key}' and attributes.status = 'FINISHED'"),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def load_prepared(run_id: str) -> PrepareResult:
    """Downloads `runs:/<run_id>/prepared` and reads it back."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="prepared-") as folder:
        local = mlflow.artifacts.download_artifacts(
            f"runs:/{run_id}/{PREPARED_ARTIFACT}", dst_path=folder
        )
        return read_outputs(Path(local))


def log_prepare_run(result: PrepareResult, config: DataConfig, key: str | None) -> None:
    """Logs prepared data to the active run: settings, summary, counts and `prepared/` files."""
    import mlflow

    settings = config.model_dump()
    mlflow.log_params({f"prepare.{name}": param_text(value) for name, value in settings.items()})
    tags = {STEP_TAG: PREPARE_STEP, "dataset": str(result.summary.get("dataset"))}
    if key is not None:
        tags[PREPARE_KEY_TAG] = key
    mlflow.set_tags(tags)
    mlflow.log_metrics(
        {
            "rows": result.summary["rows"],
            "series": result.summary["series"],
            **{f"windows_{part}": count for part, count in result.summary["windows"].items()},
        }
    )
    with tempfile.TemporaryDirectory(prefix="prepared-") as folder:
        output = Path(folder) / PREPARED_ARTIFACT
        write_outputs(result, output)
        mlflow.log_artifacts(str(output), PREPARED_ARTIFACT)


def record_prepare_run(result: PrepareResult, config: DataConfig) -> str:
    """Logs `result` as a prepare run (the active one, the one `mlflow run` started, or a new
    run named "prepare") and returns its id."""
    import mlflow

    active = mlflow.active_run()
    run = active or mlflow.start_run(run_name=PREPARE_STEP)
    try:
        log_prepare_run(result, config, prepare_key(config))
    except BaseException:
        if active is None:
            mlflow.end_run("FAILED")
        raise
    if active is None:
        mlflow.end_run()
    return run.info.run_id


def prepared_data(config: DataConfig) -> PreparedData:
    """The prepared data for `config`: from a finished prepare run with the same inputs, or
    prepared now and logged as a new run nested under the active run.

    Must be called inside an active MLflow run (its experiment is searched).
    """
    import mlflow

    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("prepared_data needs an active MLflow run")
    key = prepare_key(config)
    if key is not None:
        found = find_prepare_run(parent.info.experiment_id, key)
        if found is not None:
            try:
                result = load_prepared(found)
            except Exception as error:  # a deleted or damaged artifact: prepare again
                print(f"prepare run {found} cannot be reused ({error}); preparing again")
            else:
                return PreparedData(result, found, _uri(found), reused=True)
    result = prepare_data(config)
    with mlflow.start_run(nested=True, run_name=PREPARE_STEP) as run:
        log_prepare_run(result, config, key)
    return PreparedData(result, run.info.run_id, _uri(run.info.run_id), reused=False)


def _uri(run_id: str) -> str:
    return f"runs:/{run_id}/{PREPARED_ARTIFACT}"
