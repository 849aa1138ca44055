"""Monitoring: score the forecast partitions as their actuals arrive; check the alarm rules.

`run(config)` is the whole job without MLflow logging (`pipelines.tracking.monitoring_run`) or
exit codes (`pipelines.cli.monitor`):

1. Lists the `as_of=` partitions under `forecast.output` (none, or no folder: bad input).
2. For every partition not yet scored completely: resolves the model version that wrote it
   (`models:/NAME/VERSION` from the file, so a forecast is always scored under its own version)
   and reads the actual values with that version's data settings through the same source ->
   validate -> features steps as `forecast` (`data.dataset` / `data.source` given replace the
   training run's, as in `forecast`). Every version's actuals are read and checked before
   anything is written: a model whose targets the actuals lack is one error, nothing written.
3. Scores every (series, as_of, step, target) of the forecast that has an actual (`score_forecast`)
   and writes `monitor.output/as_of=<...>/scores.parquet`: atomic (a hidden staging folder or
   temporary file renamed into place) and idempotent: the file is rewritten only when its bytes
   would change, so a rerun with no new actuals leaves every file byte for byte. Everything is
   scored before anything is written; the writes, `alarm.json` and the MLflow logging happen
   under an exclusive lock on `monitor.output/.monitor.lock` (the forecasts' discipline). A
   partition whose horizon has not begun to pass is left for a later run ("waiting"); one
   scored partly is completed when more actuals arrive; a complete one is not read again.
4. Checks the rules (`pipelines.runtime.monitoring`) on every window of `monitor.window` as_of
   times of each model version, against the reference its training run logged
   (`monitoring/reference.json`). The version that wrote the latest partition (the one in
   service) is the one whose alarms count.

The scores table and its columns: `pipelines.serving.scores`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config.schema import RunConfig
from pipelines.data.prepare import load_history
from pipelines.data.storage import write_atomically
from pipelines.runtime.contract import SERIES_COLUMN, STEP_COLUMN, DataValidationError
from pipelines.runtime.monitoring import (
    REFERENCE_ARTIFACT,
    AlarmRules,
    MonitoringReference,
    WindowStatus,
    check_window,
)
from pipelines.serving.batch import ResolvedModel, resolve_model, training_data_config
from pipelines.serving.partitions import (
    FORECAST_FILE,
    PARTITION_PREFIX,
    output_lock,
    partition_name,
    read_metadata,
    remove_debris,
)
from pipelines.serving.scores import (
    MODEL_COLUMNS,
    SCORES_FILE,
    SCORES_VERSION,
    TARGET_COLUMN,
    forecast_levels,
    read_scores_metadata,
    read_scores_table,
    score_forecast,
    scores_bytes,
    write_scores,
)

ALARM_FILE = "alarm.json"
MONITOR_LOCK_FILE = ".monitor.lock"

ModelKey = tuple[str, str]
"""(registered model name, version)."""


# --------------------------------------------------------------------------------------------
# The windows a version's rules are checked on


def forecast_weights(
    scores: pd.DataFrame, reference: MonitoringReference, position: dict[str, int]
) -> dict[pd.Timestamp, float]:
    """Each as_of's share of its whole horizon's reference error that has been scored: 1 once
    every step of every (series, target) it forecast has its actual."""
    cells = reference.mae_by_step[
        scores[STEP_COLUMN].to_numpy(dtype="int64") - 1,
        scores[TARGET_COLUMN].map(position).to_numpy(dtype="int64"),
    ]
    scored = pd.Series(cells).groupby(scores["as_of"].to_numpy()).sum()
    whole_per_target = reference.mae_by_step.sum(axis=0)
    pairs = scores[["as_of", SERIES_COLUMN, TARGET_COLUMN]].drop_duplicates()
    whole = (
        pd.Series(whole_per_target[pairs[TARGET_COLUMN].map(position).to_numpy(dtype="int64")])
        .groupby(pairs["as_of"].to_numpy())
        .sum()
    )
    shares = (scored / whole.reindex(scored.index)).where(whole.reindex(scored.index) > 0, 1.0)
    return {pd.Timestamp(key): float(min(1.0, value)) for key, value in shares.items()}


def window_statuses(
    scores: pd.DataFrame, reference: MonitoringReference, rules: AlarmRules
) -> list[tuple[pd.Timestamp, WindowStatus]]:
    """The rules on the window of `rules.window` as_of times ending at each as_of of one model
    version's scores, oldest first.

    Raises:
        DataValidationError: a scored target the reference does not know.
    """
    unknown = sorted(set(scores[TARGET_COLUMN]) - set(reference.targets))
    if unknown:
        raise DataValidationError(
            f"monitoring reference: targets {unknown} have no reference (it has "
            f"{list(reference.targets)})"
        )
    position = {name: index for index, name in enumerate(reference.targets)}
    # Each as_of's rows found once: a window is the concatenation of its as_ofs' rows, not a
    # scan of the whole table per window.
    rows_of = scores.groupby("as_of", sort=True).indices
    as_ofs = list(rows_of)
    weights = forecast_weights(scores, reference, position)
    hit_columns = [column for column in scores.columns if column.startswith("hit_")]
    statuses = []
    for end in range(len(as_ofs)):
        chosen = as_ofs[max(0, end - rules.window + 1) : end + 1]
        window = scores.iloc[np.concatenate([rows_of[as_of] for as_of in chosen])]
        hits = {
            column.removeprefix("hit_"): window[column].dropna().to_numpy(dtype=bool)
            for column in hit_columns
            if window[column].notna().any()
        }
        order = {as_of: index for index, as_of in enumerate(chosen)}
        status = check_window(
            forecast_weight=np.array([weights[as_of] for as_of in chosen]),
            steps=window[STEP_COLUMN].to_numpy(dtype="int64"),
            target_index=window[TARGET_COLUMN].map(position).to_numpy(dtype="int64"),
            forecast_index=window["as_of"].map(order).to_numpy(dtype="int64"),
            abs_error=window["abs_error"].to_numpy(dtype="float64"),
            abs_error_scaled=window["abs_error_scaled"].to_numpy(dtype="float64"),
            last_abs_error_scaled=window["last_value_abs_error_scaled"].to_numpy(dtype="float64"),
            hits=hits,
            reference=reference,
            rules=rules,
        )
        statuses.append((pd.Timestamp(as_ofs[end]), status))
    return statuses


# --------------------------------------------------------------------------------------------
# The job


@dataclass
class ScoredPartition:
    """What a run did with one forecast partition.

    Attributes:
        as_of: the forecast's as_of.
        model: (registered name, version) of the model that forecast it.
        outcome: `written`, `updated`, `unchanged` (nothing new), `complete` (scored fully by
            an earlier run, not read again) or `waiting` (no actual has arrived yet).
        rows: rows scored; expected: rows the horizon will bring.
    """

    as_of: pd.Timestamp
    model: ModelKey
    outcome: str
    rows: int
    expected: int


@dataclass
class MonitorResult:
    """What one monitor run did and found.

    Attributes:
        output: the scores folder.
        partitions: one entry per forecast partition, by as_of.
        scores: the whole scores table after the run.
        statuses: each version's window statuses, oldest first (versions with a reference).
        in_service: the version that wrote the latest forecast partition.
        notes: versions whose rules were not checked, and why.
    """

    output: Path
    partitions: list[ScoredPartition]
    scores: pd.DataFrame
    statuses: dict[ModelKey, list[tuple[pd.Timestamp, WindowStatus]]]
    in_service: ModelKey
    notes: list[str] = field(default_factory=list)

    @property
    def alarms(self) -> WindowStatus | None:
        """The in-service version's latest window when it breaks a rule, else None."""
        statuses = self.statuses.get(self.in_service)
        if statuses and statuses[-1][1].alarms:
            return statuses[-1][1]
        return None


@dataclass
class _Pending:
    path: Path
    as_of: pd.Timestamp
    model: ModelKey
    metadata: dict[str, Any]


def alarm_rules(config: RunConfig) -> AlarmRules:
    settings = config.monitor
    return AlarmRules(
        window=settings.window,
        mae_factor=settings.mae_factor,
        mae_sigmas=settings.mae_sigmas,
        coverage_band=settings.coverage_band,
    )


def forecast_partitions(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The forecast files under `folder` with their metadata, by as_of.

    Raises:
        DataValidationError: no such folder, no partition in it, or a file without the
            forecast metadata (not written by `forecast`).
    """
    if not folder.is_dir():
        raise DataValidationError(
            f"parameter forecast_output: no forecasts folder {folder} (run `forecast` first, "
            "or give the folder it writes to)"
        )
    files = sorted(folder.glob(f"{PARTITION_PREFIX}*/{FORECAST_FILE}"))
    if not files:
        raise DataValidationError(
            f"parameter forecast_output: no forecast partitions ({PARTITION_PREFIX}.../"
            f"{FORECAST_FILE}) under {folder}"
        )
    found = []
    for path in files:
        metadata = read_metadata(path)
        if metadata is None or "model_version" not in metadata:
            raise DataValidationError(
                f"{path}: not a forecast partition (no `forecast` metadata); remove it or give "
                "the folder `forecast` writes to"
            )
        found.append((path, metadata))
    return sorted(found, key=lambda item: pd.Timestamp(item[1]["as_of"]))


def run(config: RunConfig, publish: Callable[[MonitorResult], None] | None = None) -> MonitorResult:
    """Scores every forecast partition with new actuals and checks the rules (see the module
    docstring); `publish` (the MLflow logging) is called with the result under the lock.

    Everything is read and scored before the lock is taken and anything written, so bad input
    leaves no file behind; under the lock a file is written only when its bytes change, so two
    runs side by side give one table.

    Raises:
        DataValidationError: bad input (nothing written).
        LockTimeoutError: another monitor run holds the scores folder's lock.
    """
    forecasts = forecast_partitions(Path(config.forecast.output))
    output = Path(config.monitor.output)
    rules = alarm_rules(config)
    pending, done = _pending_partitions(forecasts, output)
    contents = _score_pending(pending, config)
    with output_lock(
        output, config.forecast.lock_timeout, lock_file=MONITOR_LOCK_FILE, job="monitor"
    ):
        remove_debris(output, SCORES_FILE)
        partitions = list(done)
        for item, (content, metadata, rows, expected) in contents:
            outcome = (
                "waiting"
                if content is None
                else write_scores(output / partition_name(item.as_of), content, metadata)
            )
            partitions.append(ScoredPartition(item.as_of, item.model, outcome, rows, expected))
        partitions.sort(key=lambda item: item.as_of)
        scores = read_scores_table(output)
        statuses, notes = _statuses(scores, rules)
        latest = forecasts[-1][1]
        result = MonitorResult(
            output=output,
            partitions=partitions,
            scores=scores,
            statuses=statuses,
            in_service=(str(latest["model_name"]), str(latest["model_version"])),
            notes=notes,
        )
        write_alarm(result)
        if publish is not None:
            publish(result)
    return result


def alarm_document(result: MonitorResult) -> dict[str, Any] | None:
    """What `alarm.json` holds: the in-service version's broken rules and the numbers of its
    latest window; None when no rule is broken."""
    status = result.alarms
    if status is None:
        return None
    name, version = result.in_service
    as_of = result.statuses[result.in_service][-1][0]
    return {
        "model_name": name,
        "model_version": version,
        "as_of": as_of.isoformat(),
        "alarms": [{"rule": alarm.rule, "detail": alarm.detail} for alarm in status.alarms],
        "window": {
            "forecasts": status.forecasts,
            "rows": status.rows,
            "mae": _finite(status.mae),
            "mae_ratio": _finite(status.mae_ratio),
            "mae_threshold": _finite(status.mae_threshold),
            "skill_vs_last": _finite(status.skill_vs_last),
            "coverage": {
                level: {"coverage": _finite(share), "low": _finite(low), "high": _finite(high)}
                for level, (share, low, high) in status.coverage.items()
            },
        },
    }


def _finite(value: float) -> float | None:
    """A number for JSON: None where it is not finite (a level without a reference's band)."""
    return float(value) if math.isfinite(value) else None


def write_alarm(result: MonitorResult) -> None:
    """Writes `alarm.json` atomically when a rule is broken, and removes it when none is."""
    path = result.output / ALARM_FILE
    document = alarm_document(result)
    if document is None:
        path.unlink(missing_ok=True)
        return
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _pending_partitions(
    forecasts: list[tuple[Path, dict[str, Any]]], output: Path
) -> tuple[list[_Pending], list[ScoredPartition]]:
    """Splits the forecasts into those to score and those an earlier run scored fully."""
    pending, done = [], []
    for path, metadata in forecasts:
        as_of = pd.Timestamp(metadata["as_of"])
        model = (str(metadata["model_name"]), str(metadata["model_version"]))
        existing = read_scores_metadata(output / partition_name(as_of) / SCORES_FILE)
        if (
            existing
            and existing.get("complete")
            and existing.get("forecast") == _identity(metadata)
        ):
            rows = int(existing["rows_scored"])
            done.append(ScoredPartition(as_of, model, "complete", rows, rows))
        else:
            pending.append(_Pending(path, as_of, model, metadata))
    return pending, done


def _identity(metadata: dict[str, Any]) -> dict[str, Any]:
    """What a scores file records of the forecast it scored (a replaced forecast differs)."""
    return {
        key: metadata.get(key)
        for key in ("model_name", "model_version", "model_run_id", "as_of", "created_at")
    }


def _score_pending(
    pending: list[_Pending], config: RunConfig
) -> list[tuple[_Pending, tuple[bytes | None, dict[str, Any], int, int]]]:
    """Reads each version's actuals once and scores its partitions (nothing written here, so
    bad input anywhere leaves every file as it was)."""
    models: dict[ModelKey, ResolvedModel] = {}
    actuals: dict[str, pd.DataFrame] = {}
    results = []
    for item in pending:
        if item.model not in models:
            name, version = item.model
            models[item.model] = resolve_model(f"models:/{name}/{version}")
        model = models[item.model]
        data = training_data_config(model, config)
        key = data.model_dump_json()
        if key not in actuals:
            actuals[key] = load_history(data).frame
        history = actuals[key]
        targets = list(model.forecaster.spec.targets)
        missing = [target for target in targets if target not in history.columns]
        if missing:
            raise DataValidationError(
                f"{item.path}: the forecasts of model {model.version_uri} are of targets "
                f"{missing}, which the actuals ({data.source or data.dataset}) lack"
            )
        forecast = pd.read_parquet(item.path)
        series = sorted(forecast[SERIES_COLUMN].astype(str).unique())
        scaler = model.forecaster.scaler
        per_unit = (
            np.ones((len(series), len(targets)))
            if scaler is None
            else scaler.slopes(series, targets)
        )
        slopes = pd.DataFrame(per_unit, index=series, columns=targets)
        scores = score_forecast(forecast, history, targets, slopes)
        expected = len(forecast) * len(targets)
        if scores.empty:
            results.append((item, (None, {}, 0, expected)))
            continue
        metadata = {
            "format_version": SCORES_VERSION,
            "forecast": _identity(item.metadata),
            "targets": targets,
            "levels": forecast_levels(list(forecast.columns), targets),
            "rows_scored": len(scores),
            "rows_expected": expected,
            "complete": len(scores) == expected,
        }
        results.append((item, (scores_bytes(scores, metadata), metadata, len(scores), expected)))
    return results


def load_reference(run_id: str) -> MonitoringReference | None:
    """The reference a training run logged, or None when it logged none (trained before
    monitoring existed, or on a single validation window). Any other failure to read it (the
    store unreachable, a damaged file) raises: a monitor that quietly stopped checking its
    rules would look like one that found nothing wrong."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    folder = REFERENCE_ARTIFACT.rsplit("/", 1)[0]
    logged = {item.path for item in MlflowClient().list_artifacts(run_id, folder)}
    if REFERENCE_ARTIFACT not in logged:
        return None
    document = mlflow.artifacts.load_dict(f"runs:/{run_id}/{REFERENCE_ARTIFACT}")
    try:
        return MonitoringReference.from_dict(document)
    except (KeyError, TypeError, ValueError) as error:
        raise DataValidationError(
            f"runs:/{run_id}/{REFERENCE_ARTIFACT}: not a monitoring reference ({error!r})"
        ) from None


def _statuses(
    scores: pd.DataFrame, rules: AlarmRules
) -> tuple[dict[ModelKey, list[tuple[pd.Timestamp, WindowStatus]]], list[str]]:
    """Each version's window statuses (versions whose run logged a reference) and notes on
    those whose run logged none."""
    statuses, notes = {}, []
    if scores.empty:
        return statuses, notes
    for (name, version, run_id), rows in scores.groupby(list(MODEL_COLUMNS), sort=True):
        key = (str(name), str(version))
        reference = load_reference(str(run_id))
        if reference is None:
            notes.append(
                f"model {name} version {version}: its training run {run_id} logged no "
                f"{REFERENCE_ARTIFACT}, so its rules are not checked (train it again)"
            )
            continue
        statuses[key] = window_statuses(rows, reference, rules)
    return statuses, notes
