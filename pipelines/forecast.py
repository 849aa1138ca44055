"""Batch forecast: a registered model's forecasts for every series, as one Parquet partition.

Usage:
    python -m pipelines.forecast --model-uri models:/forecaster@champion
    python -m pipelines.forecast --model-uri models:/forecaster@champion --source prices.csv \
        --as-of 2018-02-07 --output data/forecasts --series AAPL,MSFT

What it does:

1. Resolves the model URI (`models:/NAME@ALIAS` or `models:/NAME/VERSION`) to one version and
   loads `models:/NAME/VERSION`, so what is logged is exactly what ran.
2. Reads the `config.yaml` logged by that version's training run and rebuilds the same
   source -> validate -> features steps (`pipelines.prepare.load_history`), with the model's
   frequency and targets; `--dataset` replaces `data.dataset` (and drops `data.source`),
   `--source` replaces `data.source`; every other data setting is the training run's.
   Rows after `as_of` are removed before validation, so no gap filling, frequency inference or
   feature sees them. `as_of` defaults to the latest timestamp in the data.
3. Takes the last `input_width` rows of every series that can be forecast and calls the model's
   `predict` once for all of them (one batch, not a loop over series).
4. Writes `OUTPUT/as_of=<YYYY-MM-DDTHHMMSSZ>/forecast.parquet` (e.g.
   `as_of=2018-02-07T000000Z`) and logs a run in the `forecasts` experiment.

Output: long format, one row per (series, step), sorted by `series_id` then `step`:
`series_id` (string), `timestamp` (forecast time, timestamp[us, UTC]), `step` (int64, 1..horizon),
one float64 column per target (original units), `model_name` (registered name), `model_version`,
`model_run_id` (the training run), `model_type` (zoo name), `as_of` and `created_at`
(timestamp[us, UTC]). The Parquet schema metadata key `forecast` holds a JSON document: model,
as_of, created_at, series requested, forecast and skipped (with reasons), source and rows.

Decisions:
    - Partition name: `as_of=` + the parsed as_of in UTC formatted `%Y-%m-%dT%H%M%SZ`, never
      the user's text; no colons (Windows, Hadoop tools and URLs dislike them). `--as-of` must
      be ISO 8601 beginning with a date (naive = UTC); words such as `now` are refused. Series
      names never become paths. The final path is checked to lie inside OUTPUT.
    - Atomic: a new partition is written in a hidden staging folder `OUTPUT/.staging-*`
      (file fsynced) and renamed into place; a replaced file is written as a hidden temporary
      file inside the partition and renamed over the old one. Readers never see a partial
      partition; Hive-style readers (pyarrow, Spark) ignore names starting with `.`. A run
      killed midway leaves only hidden debris, which the next run removes under the lock.
    - Idempotent: a partition is identified by (registered model, version, as_of, series
      requested). A rerun with the same identity leaves the existing file as it is (byte for
      byte, `created_at` included), logs `outcome=unchanged` and exits as the first run did
      (0 or 3). A partition with another identity (e.g. a new champion) is refused with exit 2
      unless `--replace`, which replaces the file atomically (new `created_at`).
    - Locking: `fcntl.flock` on `OUTPUT/.forecast.lock`, held from the existence check to the
      rename. The kernel releases it when the process dies (SIGKILL included), so no stale
      lock. A second run waits up to `--lock-timeout` seconds (default 0: do not wait) and
      then exits 75.
    - Skipped series (listed with reasons in the file's metadata, the run's
      `skipped_series.json` and tag `skipped_series`; the others are forecast): `unknown`
      (the model's scaler was fitted per series and never saw it), `stale` (its last row is
      more than one step before as_of; for trading-days data: more than one of the data's
      trading days), `too_short` (fewer than input_width rows), `gap` (a gap longer than the
      fill limit inside its last input_width rows).
    - The MLflow run is logged after the partition is written (or found unchanged); bad input
      and a held lock log no run. No tracking URI is set here: MLFLOW_TRACKING_URI applies.

Exit codes (deploy scripts rely on them):

    | code | meaning                                                                  |
    |------|--------------------------------------------------------------------------|
    | 0    | every series forecast; partition written (or already there, unchanged)   |
    | 1    | unexpected failure (traceback on stderr); no partial partition           |
    | 2    | bad input (one `error:` line on stderr); nothing written, no run logged  |
    | 3    | partition written (or unchanged) but some series were skipped            |
    | 75   | another run holds the output's lock beyond --lock-timeout (EX_TEMPFAIL)  |
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pandas as pd

from pipelines import tracking
from pipelines.paths import DATA_DIRECTORY
from pipelines.prepare import History, PrepareConfig, load_history
from pipelines.pyfunc import TRADING_DAYS_FORECAST_FREQUENCY, to_model_input
from pipelines.validate import (
    MAX_LISTED,
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    DataValidationError,
    closest_name_hint,
)

if TYPE_CHECKING:
    import mlflow.pyfunc

    from pipelines.pyfunc import ForecastModel

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_LOCKED = 75
DEFAULT_EXPERIMENT = "forecasts"
DEFAULT_OUTPUT = DATA_DIRECTORY / "forecasts"
FORECAST_FILE = "forecast.parquet"
LOCK_FILE = ".forecast.lock"
STAGING_PREFIX = ".staging-"
PARTITION_PREFIX = "as_of="
PARTITION_TIME_FORMAT = "%Y-%m-%dT%H%M%SZ"
METADATA_KEY = b"forecast"
METADATA_VERSION = 1
STEP_COLUMN = "step"
OUTCOMES = ("written", "replaced", "unchanged")
_LOCK_POLL_SECONDS = 0.05
_TAG_LENGTH = 5000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class LockTimeoutError(RuntimeError):
    """Another run holds the output folder's lock."""


@dataclass(frozen=True)
class ForecastConfig:
    """Settings of one batch forecast (None: the training run's value or the default).

    Attributes:
        model_uri: `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
        dataset: catalog entry replacing the training run's `data.dataset`.
        source: file replacing the training run's `data.source`.
        as_of: ISO 8601 time (naive = UTC); None: the latest timestamp in the data.
        output: folder holding the `as_of=...` partitions.
        series: forecast only these series (None: all).
        experiment_name: MLflow experiment of the forecast run.
        lock_timeout: seconds to wait for another run's lock on `output`.
        replace: overwrite a partition made by another model version or series selection.
    """

    model_uri: str
    dataset: str | None = None
    source: str | None = None
    as_of: str | None = None
    output: str | Path = DEFAULT_OUTPUT
    series: tuple[str, ...] | None = None
    experiment_name: str = DEFAULT_EXPERIMENT
    lock_timeout: float = 0.0
    replace: bool = False


@dataclass(frozen=True)
class ResolvedModel:
    """One registered model version, loaded.

    Attributes:
        uri: the URI as given.
        name: the registered model's name.
        version: the version the URI resolved to.
        run_id: the training run of that version.
        loaded: the pyfunc model (`models:/NAME/VERSION`).
        forecaster: the `ForecastModel` inside it (spec and metadata).
    """

    uri: str
    name: str
    version: str
    run_id: str
    loaded: mlflow.pyfunc.PyFuncModel
    forecaster: ForecastModel

    @property
    def version_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class SkippedSeries:
    """A series that could not be forecast, and why (`reason` is one of the kinds below)."""

    series_id: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"series_id": self.series_id, "reason": self.reason, "detail": self.detail}


SKIP_REASONS = ("unknown", "stale", "too_short", "gap")


@dataclass
class ForecastResult:
    """What one forecast run did.

    Attributes:
        model: the resolved model version.
        as_of: the cut (UTC).
        partition: the partition folder.
        outcome: `written`, `replaced` or `unchanged`.
        frame: the forecasts (as written, or as read back when unchanged).
        metadata: the file's `forecast` metadata document.
        skipped: series that could not be forecast.
        seconds: wall time of the run.
        history: the history the forecasts came from.
    """

    model: ResolvedModel
    as_of: pd.Timestamp
    partition: Path
    outcome: str
    frame: pd.DataFrame
    metadata: dict[str, Any]
    skipped: list[SkippedSeries]
    seconds: float
    history: History | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.metadata.get("skipped") else EXIT_OK


# --------------------------------------------------------------------------------------------
# Parsing user input


def parse_as_of(text: str) -> pd.Timestamp:
    """The UTC time of an ISO 8601 `--as-of` (naive = UTC).

    Raises:
        DataValidationError: not ISO 8601 starting with a date (`now` and paths are refused).
    """
    stripped = text.strip()
    if not _ISO_DATE.match(stripped):
        raise DataValidationError(
            f"parameter as_of: {text!r} is not an ISO 8601 time; expected e.g. "
            "'2018-02-07' or '2018-02-07T16:00:00Z'"
        )
    try:
        parsed = pd.to_datetime(stripped, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        raise DataValidationError(
            f"parameter as_of: {text!r} is not an ISO 8601 time; expected e.g. "
            "'2018-02-07' or '2018-02-07T16:00:00Z'"
        ) from None
    return pd.Timestamp(parsed).as_unit("ns")


def partition_name(as_of: pd.Timestamp) -> str:
    """`as_of=YYYY-MM-DDTHHMMSSZ` of a UTC time (whole seconds; finer parts are refused)."""
    utc = as_of.tz_convert("UTC") if as_of.tzinfo else as_of.tz_localize("UTC")
    if utc != utc.floor("s"):
        raise DataValidationError(
            f"parameter as_of: {utc.isoformat()} has fractions of a second; give whole seconds"
        )
    return PARTITION_PREFIX + utc.strftime(PARTITION_TIME_FORMAT)


def partition_path(output: Path, as_of: pd.Timestamp) -> Path:
    """The partition folder of `as_of` under `output`, checked to lie inside it.

    Raises:
        DataValidationError: the path would leave `output` (it cannot with the fixed format;
            checked anyway so a future format change cannot open a traversal).
    """
    root = output.resolve()
    path = (root / partition_name(as_of)).resolve()
    if path.parent != root:
        raise DataValidationError(f"parameter as_of: partition {path} is outside {root}")
    return path


def _series_list(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip():
        return None
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    return names or None


# --------------------------------------------------------------------------------------------
# The model (MLflow edge)


def resolve_model(uri: str) -> ResolvedModel:
    """Resolves a `models:/` URI to one version and loads that version.

    Raises:
        DataValidationError: a malformed URI, or an unknown model, alias or version (with the
            closest known name).
    """
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    match = _MODEL_URI.match(uri.strip())
    if match is None:
        raise DataValidationError(
            f"parameter model_uri: expected models:/NAME@ALIAS or models:/NAME/VERSION, got {uri!r}"
        )
    name, alias, version = match["name"], match["alias"], match["version"]
    client = MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        known = [model.name for model in client.search_registered_models()]
        hint = closest_name_hint(name, known) if known else "; no model is registered"
        raise DataValidationError(
            f"parameter model_uri: registered model {name!r} not found{hint}"
        ) from None
    if alias is not None:
        aliases = dict(registered.aliases or {})
        if alias not in aliases:
            hint = closest_name_hint(alias, sorted(aliases)) if aliases else "; it has no alias"
            raise DataValidationError(
                f"parameter model_uri: model {name!r} has no alias {alias!r}{hint}"
            )
        model_version = client.get_model_version_by_alias(name, alias)
    else:
        try:
            model_version = client.get_model_version(name, version)
        except MlflowException:
            raise DataValidationError(
                f"parameter model_uri: model {name!r} has no version {version}"
            ) from None
    resolved_uri = f"models:/{name}/{model_version.version}"
    loaded = mlflow.pyfunc.load_model(resolved_uri)
    return ResolvedModel(
        uri=uri,
        name=name,
        version=str(model_version.version),
        run_id=str(model_version.run_id),
        loaded=loaded,
        forecaster=loaded.unwrap_python_model(),
    )


def training_data_config(model: ResolvedModel, config: ForecastConfig) -> PrepareConfig:
    """The training run's data settings, with --dataset/--source and the model's frequency.

    Raises:
        DataValidationError: the run logged no readable `config.yaml` and neither --dataset
            nor --source was given, or the logged config is invalid.
    """
    import mlflow.artifacts
    import yaml
    from mlflow.exceptions import MlflowException

    from pipelines.config import ConfigError, config_from_dict

    origin = f"runs:/{model.run_id}/config.yaml"
    try:
        document = yaml.safe_load(mlflow.artifacts.load_text(origin))
    except (MlflowException, OSError, yaml.YAMLError) as error:
        if config.dataset is None and config.source is None:
            raise DataValidationError(
                f"model {model.version_uri}: its run logged no readable config.yaml ({error}); "
                "give --dataset or --source"
            ) from None
        document = None
    try:
        prepare_config = config_from_dict(document, origin=origin).data.to_prepare_config()
    except ConfigError as error:
        raise DataValidationError(f"model {model.version_uri}: {error}") from None
    if config.dataset is not None:
        prepare_config = replace(prepare_config, dataset=config.dataset, source=None)
    if config.source is not None:
        prepare_config = replace(prepare_config, source=config.source)
    metadata = model.forecaster.metadata
    return replace(
        prepare_config,
        frequency=metadata["frequency"],
        targets=tuple(metadata["targets"]),
    )


# --------------------------------------------------------------------------------------------
# The pure core: which series, which rows


@dataclass(frozen=True)
class ForecastPlan:
    """The rows to send to the model and the series left out.

    Attributes:
        window_rows: the last `input_width` rows of each series to forecast, sorted.
        series: the series to forecast, sorted.
        skipped: the series left out, sorted by name.
    """

    window_rows: pd.DataFrame
    series: list[str]
    skipped: list[SkippedSeries]


def plan_forecast(
    frame: pd.DataFrame,
    *,
    input_width: int,
    frequency: str,
    as_of: pd.Timestamp,
    known_series: Sequence[str] | None,
    requested: Sequence[str] | None = None,
) -> ForecastPlan:
    """Chooses the series that can be forecast at `as_of` and their last input windows.

    Args:
        frame: validated history up to `as_of` (`series_id`, `segment`, `timestamp`, ...).
        input_width: rows of history the model reads.
        frequency: the model's frequency (a pandas alias or `trading-days`).
        as_of: the forecast's cut.
        known_series: the series a per-series scaler knows; None when any series will do.
        requested: forecast only these (None: all).

    Raises:
        DataValidationError: a requested series is not in the data (with the closest name), or
            no series can be forecast (all too short: the input width is named).
    """
    series = frame[SERIES_COLUMN].astype(str).to_numpy()
    available = list(dict.fromkeys(series))
    if requested is not None:
        for name in requested:
            if name not in available:
                raise DataValidationError(
                    f"parameter series: series {name!r} not found in the data up to "
                    f"{as_of.isoformat()}{closest_name_hint(name, sorted(available))}"
                )
        frame = frame.loc[np.isin(series, list(requested))]
        series = series[np.isin(series, list(requested))]
    frame = frame.reset_index(drop=True)
    summary = _series_summary(frame, series)
    stale = _stale(summary["last"], frame, frequency, as_of)
    skipped = []
    for index, (name, row) in enumerate(summary.iterrows()):
        reason = _skip_reason(str(name), row, bool(stale[index]), input_width, known_series)
        if reason is not None:
            skipped.append(reason)
    skipped_names = {item.series_id for item in skipped}
    if len(skipped_names) == len(summary):
        raise _nothing_to_forecast(skipped, input_width, as_of)
    keep = ~np.isin(series, list(skipped_names))
    window = frame.loc[keep].reset_index(drop=True)
    from_end = window.groupby(SERIES_COLUMN, sort=False).cumcount(ascending=False).to_numpy()
    window = window.loc[from_end < input_width].reset_index(drop=True)
    return ForecastPlan(
        window_rows=window,
        series=sorted(set(summary.index) - skipped_names),
        skipped=sorted(skipped, key=lambda item: item.series_id),
    )


def _series_summary(frame: pd.DataFrame, series: np.ndarray) -> pd.DataFrame:
    """Per series (sorted by name): rows, last timestamp, rows of its last gap-free stretch."""
    grouped = frame.assign(**{SERIES_COLUMN: series}).groupby(SERIES_COLUMN, sort=True)
    last_segment = grouped[SEGMENT_COLUMN].transform("last").to_numpy()
    in_last = pd.Series(frame[SEGMENT_COLUMN].to_numpy() == last_segment).groupby(series).sum()
    summary = pd.DataFrame(
        {
            "rows": grouped.size(),
            "last": grouped[TIMESTAMP_COLUMN].max(),
        }
    )
    summary["last_stretch"] = in_last.reindex(summary.index).astype("int64")
    return summary


def _stale(last: pd.Series, frame: pd.DataFrame, frequency: str, as_of: pd.Timestamp) -> np.ndarray:
    """True where a series' last row is more than one step before `as_of`."""
    last_times = pd.DatetimeIndex(last)
    if frequency == TRADING_DAYS:
        # The calendar is the data's own days: a series is stale when the data holds more than
        # one day after its last row (a plain business-day rule would flag every holiday).
        days = np.sort(pd.unique(frame[TIMESTAMP_COLUMN].to_numpy("datetime64[ns]")))
        after = len(days) - np.searchsorted(days, last_times.to_numpy("datetime64[ns]"), "right")
        return after > 1
    offset = pd.tseries.frequencies.to_offset(frequency)
    return np.asarray((last_times + offset) < as_of)


def _skip_reason(
    name: str,
    row: pd.Series,
    stale: bool,
    input_width: int,
    known_series: Sequence[str] | None,
) -> SkippedSeries | None:
    last = pd.Timestamp(row["last"]).isoformat()
    if known_series is not None and name not in known_series:
        return SkippedSeries(
            name, "unknown", "the model's scaler was fitted per series and never saw it"
        )
    if stale:
        return SkippedSeries(name, "stale", f"last row at {last}, more than one step before as_of")
    if row["rows"] < input_width:
        return SkippedSeries(
            name,
            "too_short",
            f"{int(row['rows'])} rows; the model needs the last {input_width} (input_width)",
        )
    if row["last_stretch"] < input_width:
        return SkippedSeries(
            name,
            "gap",
            f"a gap inside its last {input_width} rows: only the last "
            f"{int(row['last_stretch'])} rows (to {last}) are consecutive",
        )
    return None


def _nothing_to_forecast(
    skipped: list[SkippedSeries], input_width: int, as_of: pd.Timestamp
) -> DataValidationError:
    reasons = {item.reason for item in skipped}
    shown = "; ".join(
        f"{item.series_id!r} {item.reason}: {item.detail}" for item in skipped[:MAX_LISTED]
    )
    more = f" and {len(skipped) - MAX_LISTED} more" if len(skipped) > MAX_LISTED else ""
    if reasons == {"too_short"}:
        return DataValidationError(
            f"history too short: every series has fewer than {input_width} rows (the model's "
            f"input_width) up to as_of {as_of.isoformat()} ({shown}{more})"
        )
    return DataValidationError(
        f"no series can be forecast at as_of {as_of.isoformat()}: {shown}{more}"
    )


def forecast_frame(
    model: ResolvedModel, plan: ForecastPlan, as_of: pd.Timestamp, created_at: pd.Timestamp
) -> pd.DataFrame:
    """Forecasts every planned series in ONE `predict` call; the output's columns and dtypes.

    Returns:
        One row per (series, step), sorted, with the model and time columns described in the
        module docstring.
    """
    spec = model.forecaster.spec
    model_input = to_model_input(plan.window_rows, spec.features, last_rows=spec.input_width)
    predicted = model.loaded.predict(model_input)
    predicted = predicted.sort_values([SERIES_COLUMN, STEP_COLUMN], kind="stable")
    count = len(predicted)
    frame = pd.DataFrame(
        {
            SERIES_COLUMN: pd.array(predicted[SERIES_COLUMN].astype(str), dtype="string"),
            TIMESTAMP_COLUMN: _utc(predicted[TIMESTAMP_COLUMN]),
            STEP_COLUMN: predicted[STEP_COLUMN].to_numpy(dtype="int64"),
        }
    )
    for target in spec.targets:
        frame[target] = predicted[target].to_numpy(dtype="float64")
    constants = {
        "model_name": model.name,
        "model_version": model.version,
        "model_run_id": model.run_id,
        "model_type": str(model.forecaster.metadata.get("model_name", "")),
    }
    for column, value in constants.items():
        frame[column] = pd.array([value] * count, dtype="string")
    frame["as_of"] = _utc(pd.Series([as_of] * count))
    frame["created_at"] = _utc(pd.Series([created_at] * count))
    return frame.reset_index(drop=True)


def _utc(values: pd.Series) -> pd.Series:
    times = pd.to_datetime(values.reset_index(drop=True), utc=True)
    return times.astype("datetime64[us, UTC]")


# --------------------------------------------------------------------------------------------
# Writing: lock, atomic partition, metadata


@contextlib.contextmanager
def output_lock(output: Path, timeout: float) -> Iterator[None]:
    """Holds an exclusive `flock` on `output/.forecast.lock` (the kernel frees it on death).

    Raises:
        LockTimeoutError: another process held it for longer than `timeout` seconds.
    """
    output.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(timeout, 0.0)
    with open(output / LOCK_FILE, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"another forecast run holds the lock {output / LOCK_FILE} "
                        f"(waited {timeout:g} s; raise --lock-timeout to wait longer)"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_metadata(path: Path) -> dict[str, Any] | None:
    """The `forecast` metadata of a written file, or None when it has none or is unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else None


def _identity(metadata: dict[str, Any]) -> tuple[Any, ...]:
    return (
        metadata.get("model_name"),
        metadata.get("model_version"),
        metadata.get("as_of"),
        metadata.get("series_requested"),
    )


def _remove_debris(output: Path, partition: Path) -> None:
    """Removes what a killed run left; only called under the lock, so no writer is active."""
    for leftover in output.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if partition.is_dir():
        for leftover in partition.glob(f".{FORECAST_FILE}.*"):
            leftover.unlink(missing_ok=True)


def _write_parquet(frame: pd.DataFrame, metadata: dict[str, Any], path: Path) -> None:
    """Writes the file with explicit types and the metadata document, then fsyncs it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [
        pa.field(SERIES_COLUMN, pa.string(), nullable=False),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(STEP_COLUMN, pa.int64(), nullable=False),
    ]
    fixed = {SERIES_COLUMN, TIMESTAMP_COLUMN, STEP_COLUMN}
    for column in frame.columns:
        if column in fixed:
            continue
        if column in ("as_of", "created_at"):
            kind = pa.timestamp("us", tz="UTC")
        elif pd.api.types.is_float_dtype(frame[column]):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(column, kind, nullable=False))
    schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    # Column by column, with the types above: no pandas metadata in the file, and no
    # round trip of zone-aware times through NumPy (which drops the zone).
    arrays = [_arrow_array(frame[item.name], item.type) for item in fields]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _arrow_array(values: pd.Series, kind: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        return pa.array(utc, type=pa.timestamp("us")).cast(kind)
    if pa.types.is_floating(kind):
        return pa.array(values.to_numpy(dtype="float64"), type=kind)
    if pa.types.is_integer(kind):
        return pa.array(values.to_numpy(dtype="int64"), type=kind)
    return pa.array(values.astype(str).to_numpy(dtype=object), type=kind)


def _give_default_mode(path: Path) -> None:
    """The mode a plain `mkdir`/`open` would give: temp files and folders are private (0600,
    0700), and the published partition must be readable by whoever reads the output."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_partition(
    frame: pd.DataFrame, metadata: dict[str, Any], partition: Path, *, replace_existing: bool
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """Writes the partition atomically, or leaves an identical one alone (under the lock).

    Returns:
        The outcome (`written`, `replaced` or `unchanged`), and the frame and metadata now in
        the partition.

    Raises:
        DataValidationError: the partition holds another model version's (or series
            selection's) forecasts and `replace_existing` is False.
    """
    output = partition.parent
    _remove_debris(output, partition)
    target = partition / FORECAST_FILE
    if target.exists():
        existing = read_metadata(target)
        if existing is not None and _identity(existing) == _identity(metadata):
            return "unchanged", pd.read_parquet(target), existing
        if not replace_existing:
            made_by = (
                f"model {existing.get('model_name')!r} version {existing.get('model_version')} "
                f"(series {existing.get('series_requested') or 'all'})"
                if existing
                else "an unknown writer"
            )
            raise DataValidationError(
                f"parameter output: {partition} already holds forecasts of {made_by}; pass "
                "--replace to overwrite it"
            )
        handle, name = tempfile.mkstemp(dir=partition, prefix=f".{FORECAST_FILE}.", suffix=".tmp")
        os.close(handle)
        temporary = Path(name)
        try:
            _write_parquet(frame, metadata, temporary)
            _give_default_mode(temporary)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(partition)
        return "replaced", frame, metadata
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output))
    try:
        _give_default_mode(staging)
        _write_parquet(frame, metadata, staging / FORECAST_FILE)
        _fsync_directory(staging)
        # A folder renamed onto a missing (or empty) one appears whole, in one step.
        os.replace(staging, partition)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_directory(output)
    return "written", frame, metadata


# --------------------------------------------------------------------------------------------
# The pure core, end to end


def run(config: ForecastConfig) -> ForecastResult:
    """Resolves the model, loads history up to as_of, forecasts once, writes the partition.

    Raises:
        DataValidationError: bad input (nothing written).
        LockTimeoutError: another run holds the output's lock.
    """
    started = time.perf_counter()
    as_of = parse_as_of(config.as_of) if config.as_of is not None else None
    if as_of is not None:
        partition_name(as_of)  # reject a bad as_of before loading anything
    model = resolve_model(config.model_uri)
    history = load_history(training_data_config(model, config), as_of)
    as_of = history.as_of
    output = Path(config.output)
    partition = partition_path(output, as_of)
    spec = model.forecaster.spec
    metadata = model.forecaster.metadata
    scaler = model.forecaster.scaler
    missing = [column for column in spec.features if column not in history.frame.columns]
    if missing:
        raise DataValidationError(
            f"{history.origin}: the model needs feature columns {missing}, which the data "
            f"(with the training run's feature settings) lacks; it has {history.feature_columns}"
        )
    plan = plan_forecast(
        history.frame,
        input_width=spec.input_width,
        frequency=metadata["frequency"],
        as_of=as_of,
        known_series=sorted(scaler.scalers) if scaler is not None and scaler.per_series else None,
        requested=config.series,
    )
    created_at = pd.Timestamp.now(tz="UTC").floor("us")
    frame = forecast_frame(model, plan, as_of, created_at)
    document = _metadata_document(model, config, history, plan, as_of, created_at, len(frame))
    with output_lock(output, config.lock_timeout):
        outcome, frame, document = write_partition(
            frame, document, partition, replace_existing=config.replace
        )
    skipped = [
        SkippedSeries(item["series_id"], item["reason"], item["detail"])
        for item in document.get("skipped", [])
    ]
    return ForecastResult(
        model=model,
        as_of=as_of,
        partition=partition,
        outcome=outcome,
        frame=frame,
        metadata=document,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _metadata_document(
    model: ResolvedModel,
    config: ForecastConfig,
    history: History,
    plan: ForecastPlan,
    as_of: pd.Timestamp,
    created_at: pd.Timestamp,
    rows: int,
) -> dict[str, Any]:
    spec = model.forecaster.spec
    return {
        "format_version": METADATA_VERSION,
        "model_uri": model.uri,
        "model_name": model.name,
        "model_version": model.version,
        "model_run_id": model.run_id,
        "model_type": model.forecaster.metadata.get("model_name"),
        "as_of": as_of.isoformat(),
        "created_at": created_at.isoformat(),
        "series_requested": list(config.series) if config.series is not None else None,
        "series_forecast": plan.series,
        "skipped": [item.as_dict() for item in plan.skipped],
        "rows": rows,
        "horizon": spec.horizon,
        "input_width": spec.input_width,
        "targets": list(spec.targets),
        "frequency": model.forecaster.metadata["frequency"],
        "forecast_frequency": model.forecaster.metadata.get(
            "forecast_frequency", TRADING_DAYS_FORECAST_FREQUENCY
        ),
        "dataset": history.dataset,
        "source": history.origin,
        "data_last_timestamp": history.last_timestamp.isoformat(),
    }


# --------------------------------------------------------------------------------------------
# The MLflow run


def log_forecast_run(result: ForecastResult, config: ForecastConfig) -> str:
    """Logs one forecast to the active run (params, metrics, tags, JSON artifacts).

    Returns:
        The run id.
    """
    import mlflow

    run = mlflow.active_run() or mlflow.start_run()
    document = result.metadata
    mlflow.log_params(
        {
            "model_uri": result.model.uri,
            "model_name": result.model.name,
            "model_version": result.model.version,
            "model_run_id": result.model.run_id,
            "as_of": result.as_of.isoformat(),
            "output": str(Path(config.output).resolve()),
            "partition": str(result.partition),
            "series_requested": ",".join(config.series) if config.series else "all",
            "dataset": str(document.get("dataset")),
            "source": str(document.get("source"))[:500],
            "outcome": result.outcome,
            "lock_timeout": f"{config.lock_timeout:g}",
            "replace": str(config.replace).lower(),
        }
    )
    now = pd.Timestamp.now(tz="UTC")
    mlflow.log_metrics(
        {
            "rows": float(len(result.frame)),
            "series_forecast": float(len(document.get("series_forecast", []))),
            "series_skipped": float(len(result.skipped)),
            "data_freshness_seconds": float((now - result.as_of).total_seconds()),
            "duration_seconds": float(result.seconds),
        }
    )
    skipped_names = ",".join(item.series_id for item in result.skipped)
    mlflow.set_tags(
        {
            "outcome": result.outcome,
            "exit_code": str(result.exit_code),
            "skipped_series": skipped_names[:_TAG_LENGTH] or "none",
        }
    )
    mlflow.log_dict({"skipped": [item.as_dict() for item in result.skipped]}, "skipped_series.json")
    mlflow.log_dict(document, "forecast_metadata.json")
    return run.info.run_id


# --------------------------------------------------------------------------------------------
# Command line


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one `error: ...` line and exit status 2, like data errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The forecast command's options; an empty value means "not given" (MLproject)."""
    parser = _OneLineErrorParser(
        prog="python -m pipelines.forecast",
        description="Forecast every series with a registered model and write one Parquet "
        "partition per as_of; the run is tracked in MLflow (MLFLOW_TRACKING_URI).",
    )
    parser.add_argument("--model-uri", required=True, help="models:/NAME@ALIAS or models:/NAME/V")
    parser.add_argument("--dataset", default="", help="catalog entry replacing the run's data set")
    parser.add_argument("--source", default="", help="CSV/Parquet file replacing the run's source")
    parser.add_argument("--as-of", default="", help="ISO 8601 time; default: the data's last")
    parser.add_argument(
        "--output", default="", help=f"partitions folder (default {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--series", default="", help="series to forecast, comma-separated")
    parser.add_argument("--experiment-name", default="", help=f"default {DEFAULT_EXPERIMENT}")
    parser.add_argument("--lock-timeout", default="", help="seconds to wait for a lock (0)")
    parser.add_argument(
        "--replace",
        nargs="?",
        const="true",
        default="",
        help="overwrite a partition made by another model version (true/false)",
    )
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> ForecastConfig:
    """Maps parsed options onto a `ForecastConfig`.

    Raises:
        DataValidationError: a lock timeout or replace flag that does not parse.
    """
    if not arguments.model_uri.strip():
        raise DataValidationError("parameter model_uri: required, e.g. models:/forecaster@champion")
    try:
        lock_timeout = float(arguments.lock_timeout) if arguments.lock_timeout.strip() else 0.0
    except ValueError:
        raise DataValidationError(
            f"parameter lock_timeout: expected seconds, got {arguments.lock_timeout!r}"
        ) from None
    if not lock_timeout >= 0:
        raise DataValidationError(f"parameter lock_timeout: expected >= 0, got {lock_timeout}")
    flag = arguments.replace.strip().lower()
    if flag not in ("", "true", "false", "1", "0", "yes", "no"):
        raise DataValidationError(f"parameter replace: expected true or false, got {flag!r}")
    return ForecastConfig(
        model_uri=arguments.model_uri.strip(),
        dataset=arguments.dataset.strip() or None,
        source=arguments.source.strip() or None,
        as_of=arguments.as_of.strip() or None,
        output=arguments.output.strip() or DEFAULT_OUTPUT,
        series=_series_list(arguments.series),
        experiment_name=arguments.experiment_name.strip() or DEFAULT_EXPERIMENT,
        lock_timeout=lock_timeout,
        replace=flag in ("true", "1", "yes"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The `forecast` entry point; returns the exit code of the table in the module docstring."""
    arguments = build_parser().parse_args(argv)
    try:
        config = config_from_arguments(arguments)
        result = run(config)
    except DataValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LockTimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except Exception as error:
        traceback.print_exc()
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        with tracking.tracked_run(config.experiment_name, default_experiment=DEFAULT_EXPERIMENT):
            run_id = log_forecast_run(result, config)
    except Exception as error:
        traceback.print_exc()
        print(
            f"error: the partition {result.partition} is {result.outcome} but logging the run "
            f"failed: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    skipped = ", ".join(f"{item.series_id} ({item.reason})" for item in result.skipped)
    print(
        f"{result.outcome} {result.partition / FORECAST_FILE}: {len(result.frame)} rows, "
        f"{len(result.metadata.get('series_forecast', []))} series, model "
        f"{result.model.name} version {result.model.version}; run {run_id}"
        + (f"; skipped {skipped}" if skipped else "")
    )
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
