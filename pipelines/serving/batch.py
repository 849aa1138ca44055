"""Batch forecast: a registered model's forecasts for every series, as one Parquet partition.

`run(config)` is the whole job without MLflow logging (`pipelines.tracking.forecast_run`) or
exit codes (`pipelines.cli.forecast`):

1. Resolves the model URI (`models:/NAME@ALIAS` or `models:/NAME/VERSION`; default the
   registered model's champion) to one version and loads `models:/NAME/VERSION`, so what is
   logged is exactly what ran.
2. Reads the `config.yaml` logged by that version's training run and rebuilds the same
   source -> validate -> features steps (`pipelines.data.prepare.load_history`), with the model's
   frequency and targets; a given `data.dataset` replaces the run's data set (and drops its
   file), a given `data.source` replaces its file; every other data setting is the training
   run's. Rows after `as_of` are removed before validation, so no gap filling, frequency
   inference or feature sees them. `as_of` defaults to the latest timestamp in the data; it
   must be ISO 8601 beginning with a date (naive = UTC): words such as `now` are refused.
3. Takes the last `input_width` rows of every series that can be forecast and calls the model's
   `predict` once for all of them (one batch, not a loop over series).
4. Writes `OUTPUT/as_of=<YYYY-MM-DDTHHMMSSZ>/forecast.parquet` atomically, under a lock, and
   idempotently (`pipelines.serving.partitions`): the same model version, as_of and series
   again leave the file as it is; another model version's partition is replaced only with
   `forecast.replace`.

Output: long format, one row per (series, step), sorted by `series_id` then `step`:
`series_id` (string), `timestamp` (forecast time, timestamp[us, UTC]), `step` (int64, 1..horizon),
one float64 column per target (original units), each followed, for a model with a calibration,
by its interval bounds at `forecast.levels` (default: the model's, 80 and 90: `<target>_lo_90`,
`<target>_lo_80`, `<target>_hi_80`, `<target>_hi_90`), `model_name` (registered name),
`model_version`, `model_run_id` (the training run), `model_type` (zoo name), `as_of` and
`created_at` (timestamp[us, UTC]). The Parquet schema metadata key `forecast` holds a JSON
document: model, as_of, created_at, series requested, forecast and skipped (with reasons), source
and rows.

Skipped series (listed with reasons in the file's metadata; the others are forecast): `unknown`
(the model's scaler was fitted per series and never saw it), `stale` (its last row is more than
one step before as_of; for trading-days data: more than one of the data's trading days),
`too_short` (fewer than input_width rows), `gap` (a gap longer than the fill limit inside its
last input_width rows).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.config.schema import RunConfig
from pipelines.data.prepare import History, load_history
from pipelines.data.settings import DataConfig
from pipelines.runtime.contract import (
    MAX_LISTED,
    SERIES_COLUMN,
    STEP_COLUMN,
    TIMESTAMP_COLUMN,
    DataValidationError,
    closest_name_hint,
)
from pipelines.runtime.forecaster import (
    LEVELS_PARAM,
    RECALIBRATE_PARAM,
    TRADING_DAYS_FORECAST_FREQUENCY,
    recalibration_windows,
)
from pipelines.runtime.history import last_rows_per_series, to_model_input
from pipelines.runtime.readiness import TOO_SHORT, NotReady, unready_series
from pipelines.serving.partitions import (
    METADATA_VERSION,
    output_lock,
    partition_name,
    partition_path,
    write_partition,
)

if TYPE_CHECKING:
    import mlflow.pyfunc

    from pipelines.runtime.forecaster import ForecastModel


_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


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
    skipped: list[NotReady]
    seconds: float
    history: History | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        """True when every requested series was forecast (none skipped)."""
        return not self.metadata.get("skipped")


# --------------------------------------------------------------------------------------------
# Parsing user input


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


def training_data_config(model: ResolvedModel, config: RunConfig) -> DataConfig:
    """The training run's data settings, with the data set or file the user gave and the
    model's frequency and targets.

    `data.dataset` given (an option, a file or an override) replaces the run's data set and
    drops its file; `data.source` given replaces the run's file. Every other data setting is
    the training run's.

    Raises:
        DataValidationError: the run logged no readable `config.yaml` and neither a data set
            nor a file was given, or the logged config is invalid.
    """
    import mlflow.artifacts
    import yaml
    from mlflow.exceptions import MlflowException

    from pipelines.config.loading import config_from_dict
    from pipelines.settings import ConfigError

    given = config.data.model_fields_set
    updates: dict[str, Any] = {}
    if "dataset" in given:
        updates.update(dataset=config.data.dataset, source=None)
    if "source" in given:
        updates["source"] = config.data.source
    origin = f"runs:/{model.run_id}/config.yaml"
    try:
        document = yaml.safe_load(mlflow.artifacts.load_text(origin))
    except (MlflowException, OSError, yaml.YAMLError) as error:
        if not updates:
            raise DataValidationError(
                f"model {model.version_uri}: its run logged no readable config.yaml ({error}); "
                "give --dataset or --source"
            ) from None
        document = None
    try:
        data = config_from_dict(document, origin=origin).data
    except ConfigError as error:
        raise DataValidationError(f"model {model.version_uri}: {error}") from None
    metadata = model.forecaster.metadata
    updates.update(frequency=metadata["frequency"], targets=tuple(metadata["targets"]))
    return data.model_copy(update=updates)


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
    skipped: list[NotReady]


def plan_forecast(
    frame: pd.DataFrame,
    *,
    input_width: int,
    features: Sequence[str],
    frequency: str,
    as_of: pd.Timestamp,
    known_series: Sequence[str] | None,
    requested: Sequence[str] | None = None,
    rows: int | None = None,
) -> ForecastPlan:
    """Chooses the series that can be forecast at `as_of` and their last input windows.

    Args:
        frame: validated history up to `as_of` (`series_id`, `segment`, `timestamp`, ...).
        input_width: rows of history the model reads.
        features: the model's feature columns.
        frequency: the model's frequency (a pandas alias or `trading-days`).
        as_of: the forecast's cut.
        known_series: the series a per-series scaler knows; None when any series will do.
        requested: forecast only these (None: all).
        rows: rows read per series when more than `input_width` (a recalibration's: series
            ready to forecast whose last `rows` rows are not are skipped, the reason saying so).

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
        chosen = np.isin(series, list(requested))
        frame, series = frame.loc[chosen], series[chosen]
    frame = frame.reset_index(drop=True).assign(**{SERIES_COLUMN: series})
    skipped = unready_series(
        frame,
        input_width=input_width,
        features=features,
        frequency=frequency,
        as_of=as_of,
        known_series=known_series,
    )
    skipped_names = {item.series_id for item in skipped}
    if len(skipped_names) == len(set(series)):
        raise _nothing_to_forecast(skipped, input_width, as_of)
    if rows is not None and rows > input_width:
        ready = frame.loc[~np.isin(series, list(skipped_names))]
        longer = unready_series(
            ready, input_width=rows, features=features, frequency=frequency, as_of=as_of
        )
        skipped = sorted(
            [
                *skipped,
                *(
                    NotReady(
                        item.series_id,
                        item.reason,
                        f"recalibrating reads the last {rows} rows: {item.detail}",
                    )
                    for item in longer
                ),
            ],
            key=lambda item: item.series_id,
        )
        skipped_names = {item.series_id for item in skipped}
        if len(skipped_names) == len(set(series)):
            raise _nothing_to_forecast(skipped, rows, as_of)
    keep = ~np.isin(series, list(skipped_names))
    window = last_rows_per_series(
        frame.loc[keep].reset_index(drop=True), max(input_width, rows or 0)
    )
    return ForecastPlan(
        window_rows=window,
        series=sorted(set(series) - skipped_names),
        skipped=skipped,
    )


def _nothing_to_forecast(
    skipped: list[NotReady], input_width: int, as_of: pd.Timestamp
) -> DataValidationError:
    reasons = {item.reason for item in skipped}
    shown = "; ".join(
        f"{item.series_id!r} {item.reason}: {item.detail}" for item in skipped[:MAX_LISTED]
    )
    more = f" and {len(skipped) - MAX_LISTED} more" if len(skipped) > MAX_LISTED else ""
    if reasons == {TOO_SHORT}:
        return DataValidationError(
            f"history too short: every series has fewer than {input_width} rows (the model's "
            f"input_width) up to as_of {as_of.isoformat()} ({shown}{more})"
        )
    return DataValidationError(
        f"no series can be forecast at as_of {as_of.isoformat()}: {shown}{more}"
    )


def forecast_frame(
    model: ResolvedModel,
    plan: ForecastPlan,
    as_of: pd.Timestamp,
    created_at: pd.Timestamp,
    levels: tuple[float, ...] | None = None,
    recalibrate: int = 0,
) -> pd.DataFrame:
    """Forecasts every planned series in ONE `predict` call; the output's columns and dtypes.
    `levels`: the interval levels of a model with a calibration (None: the model's defaults);
    `recalibrate`: the model's parameter (the plan then holds the rows it reads).

    Returns:
        One row per (series, step), sorted, with the model and time columns described in the
        module docstring.
    """
    spec = model.forecaster.spec
    rows = spec.input_width + (recalibrate + spec.horizon - 1 if recalibrate else 0)
    model_input = to_model_input(plan.window_rows, spec.features, last_rows=rows)
    params = None if levels is None else {LEVELS_PARAM: list(levels)}
    if recalibrate:
        params = {**(params or {}), RECALIBRATE_PARAM: recalibrate}
    # MLflow drops params a model's signature does not declare; the model's own check refuses
    # levels asked of a model with no calibration instead.
    model.forecaster.levels(params)
    predicted = model.loaded.predict(model_input, params=params)
    predicted = predicted.sort_values([SERIES_COLUMN, STEP_COLUMN], kind="stable")
    count = len(predicted)
    frame = pd.DataFrame(
        {
            SERIES_COLUMN: pd.array(predicted[SERIES_COLUMN].astype(str), dtype="string"),
            TIMESTAMP_COLUMN: _utc(predicted[TIMESTAMP_COLUMN]),
            STEP_COLUMN: predicted[STEP_COLUMN].to_numpy(dtype="int64"),
        }
    )
    # The targets and, for a model with a calibration, their interval bounds, in its order.
    for column in predicted.columns.drop([SERIES_COLUMN, TIMESTAMP_COLUMN, STEP_COLUMN]):
        frame[column] = predicted[column].to_numpy(dtype="float64")
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
# The pure core, end to end


def run(config: RunConfig) -> ForecastResult:
    """Resolves the model, loads history up to as_of, forecasts once, writes the partition.

    Raises:
        DataValidationError: bad input (nothing written).
        LockTimeoutError: another run holds the output's lock.
    """
    started = time.perf_counter()
    settings = config.forecast
    as_of = None if settings.as_of is None else pd.Timestamp(settings.as_of).as_unit("ns")
    if as_of is not None:
        partition_name(as_of)  # reject a bad as_of before loading anything
    model = resolve_model(config.forecast_model_uri())
    recalibrate = settings.recalibrate
    if recalibrate:
        # Checked before any row is read for it: a model without a calibration, or too few
        # windows for a level, is one clear error.
        if model.forecaster.calibration is None:
            raise DataValidationError(
                f"forecast.recalibrate: model {model.version_uri} carries no calibration, so "
                "it forecasts no intervals to recalibrate"
            )
        asked = None if settings.levels is None else {LEVELS_PARAM: list(settings.levels)}
        try:
            levels = model.forecaster.levels(asked)  # never empty: none means the model's
            recalibration_windows({RECALIBRATE_PARAM: recalibrate}, levels)
        except DataValidationError as error:
            raise DataValidationError(f"forecast.{error}") from None
    history = load_history(training_data_config(model, config), as_of)
    as_of = history.as_of
    output = Path(settings.output)
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
        features=spec.features,
        frequency=metadata["frequency"],
        as_of=as_of,
        known_series=sorted(scaler.scalers) if scaler is not None and scaler.per_series else None,
        requested=settings.series,
        rows=spec.input_width + recalibrate + spec.horizon - 1 if recalibrate else None,
    )
    created_at = pd.Timestamp.now(tz="UTC").floor("us")
    frame = forecast_frame(model, plan, as_of, created_at, settings.levels, recalibrate)
    document = _metadata_document(model, config, history, plan, as_of, created_at, len(frame))
    with output_lock(output, settings.lock_timeout):
        outcome, frame, document = write_partition(
            frame, document, partition, replace_existing=settings.replace
        )
    skipped = [
        NotReady(item["series_id"], item["reason"], item["detail"])
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
    config: RunConfig,
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
        "series_requested": list(config.forecast.series) if config.forecast.series else None,
        "series_forecast": plan.series,
        "skipped": [dataclasses.asdict(item) for item in plan.skipped],
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
