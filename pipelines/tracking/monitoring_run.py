"""Monitoring written to MLflow: one run per registered model version in the `monitoring`
experiment, its metric history over the as_of times, its plots, and the version's status tag.

- The run of a version is found by its tags (`monitored_model`, `monitored_version`) and named
  `NAME vVERSION`; each monitor run adds to it, so its history grows day by day.
- Metrics, each logged with `step` = the as_of in Unix seconds and `timestamp` = the as_of (so
  the UI's time axis reads as dates): for the window of `monitor.window` forecasts ending at
  that as_of, `rolling_mae` (original units), `mae_ratio` and `mae_threshold`, `skill_vs_last`,
  `coverage_<L>` with `coverage_<L>_low` / `_high` (the band), `alarm` (1 when a rule broke);
  and for that as_of alone `rows_scored` and `forecast_mae`. A point whose step's latest value
  is the same is not logged again, so a rerun adds nothing; a window whose actuals were partial
  gets a revised point once they arrive, 1 ms later, which MLflow then shows as the latest.
- Plots (`plots/forecast_vs_actual.png`, `plots/rolling_error.png`) are replaced each run.
- The model version is tagged `monitoring_status` = `ok` or `degraded`, with
  `monitoring_alarm` (the rules and their numbers) and `monitoring_as_of` when degraded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config.schema import RunConfig
from pipelines.runtime.contract import SERIES_COLUMN, TIMESTAMP_COLUMN
from pipelines.runtime.monitoring import WindowStatus
from pipelines.serving.monitor import (
    MODEL_COLUMNS,
    TARGET_COLUMN,
    ModelKey,
    MonitorResult,
)
from pipelines.tracking.runs import tag_text, use_experiment

STATUS_TAG = "monitoring_status"
ALARM_TAG = "monitoring_alarm"
ALARM_AS_OF_TAG = "monitoring_as_of"
MODEL_TAG = "monitored_model"
VERSION_TAG = "monitored_version"


def window_metrics(
    statuses: list[tuple[pd.Timestamp, WindowStatus]], scores: pd.DataFrame
) -> list[tuple[str, float, pd.Timestamp]]:
    """(key, value, as_of) of every metric point of one version (finite values only)."""
    points: list[tuple[str, float, pd.Timestamp]] = []
    for as_of, rows in scores.groupby("as_of", sort=True):
        stamp = pd.Timestamp(as_of)
        points.append(("rows_scored", float(len(rows)), stamp))
        points.append(("forecast_mae", float(rows["abs_error"].mean()), stamp))
    for as_of, status in statuses:
        values = {
            "rolling_mae": status.mae,
            "mae_ratio": status.mae_ratio,
            "mae_threshold": status.mae_threshold,
            "skill_vs_last": status.skill_vs_last,
            "alarm": float(bool(status.alarms)),
        }
        for level, (share, low, high) in status.coverage.items():
            values[f"coverage_{level}"] = share
            values[f"coverage_{level}_low"] = low
            values[f"coverage_{level}_high"] = high
        points.extend((key, float(value), as_of) for key, value in values.items())
    return [point for point in points if math.isfinite(point[1])]


def as_of_step(as_of: pd.Timestamp) -> int:
    """An as_of as a metric step: Unix seconds."""
    return (
        int(as_of.tz_convert("UTC").timestamp())
        if as_of.tzinfo
        else int(as_of.tz_localize("UTC").timestamp())
    )


def log_monitoring(result: MonitorResult, config: RunConfig) -> dict[ModelKey, str]:
    """Logs every scored version's run and tags each version with its status.

    Returns:
        (name, version) -> the run id.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = use_experiment(config.monitor.experiment_name)
    runs = {}
    if result.scores.empty:
        return runs
    for (name, version, model_run_id), rows in result.scores.groupby(
        list(MODEL_COLUMNS), sort=True
    ):
        key = (str(name), str(version))
        run_id = _version_run(client, experiment.experiment_id, key, str(model_run_id))
        statuses = result.statuses.get(key, [])
        _log_new_points(client, run_id, window_metrics(statuses, rows))
        for figure, path in (
            (forecast_figure(rows, config.monitor.window), "plots/forecast_vs_actual.png"),
            (rolling_error_figure(statuses), "plots/rolling_error.png"),
        ):
            if figure is not None:
                client.log_figure(run_id, figure, path)
        _tag_status(client, key, run_id, statuses[-1] if statuses else None)
        client.set_terminated(run_id)
        runs[key] = run_id
    return runs


def _version_run(client: Any, experiment_id: str, key: ModelKey, model_run_id: str) -> str:
    name, version = key
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.{MODEL_TAG} = '{_quoted(name)}' and tags.{VERSION_TAG} = "
        f"'{_quoted(version)}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(
        experiment_id,
        run_name=f"{name} v{version}",
        tags={MODEL_TAG: name, VERSION_TAG: version, "model_run_id": model_run_id},
    )
    return run.info.run_id


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _log_new_points(
    client: Any, run_id: str, points: list[tuple[str, float, pd.Timestamp]]
) -> None:
    """Logs each point unless its step's latest logged value is the same. A revised value
    (a window whose actuals were partial) is logged 1 ms after the latest at that step, so
    MLflow, which keeps the point with the largest (step, timestamp, value) as the latest,
    shows the revision, not the larger value."""
    from mlflow.entities import Metric

    latest: dict[str, dict[int, tuple[int, float]]] = {}
    new = []
    for key, value, as_of in points:
        if key not in latest:
            latest[key] = {}
            for item in client.get_metric_history(run_id, key):
                known = latest[key].get(item.step)
                if known is None or item.timestamp >= known[0]:
                    latest[key][item.step] = (item.timestamp, item.value)
        step = as_of_step(as_of)
        known = latest[key].get(step)
        if known is not None and known[1] == value:
            continue
        timestamp = step * 1000 if known is None else known[0] + 1
        latest[key][step] = (timestamp, value)
        new.append(Metric(key, value, timestamp, step))
    for first in range(0, len(new), 1000):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run_id, metrics=new[first : first + 1000])


def _tag_status(
    client: Any, key: ModelKey, run_id: str, latest: tuple[pd.Timestamp, WindowStatus] | None
) -> None:
    name, version = key
    if latest is None:
        return
    as_of, status = latest
    degraded = bool(status.alarms)
    tags = {STATUS_TAG: "degraded" if degraded else "ok", ALARM_AS_OF_TAG: as_of.isoformat()}
    tags[ALARM_TAG] = tag_text(
        "; ".join(f"{alarm.rule}: {alarm.detail}" for alarm in status.alarms) or "none"
    )
    from mlflow.exceptions import MlflowException

    for tag, value in tags.items():
        client.set_tag(run_id, tag, value)
    try:
        for tag, value in tags.items():
            client.set_model_version_tag(name, version, tag, value)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        # The version was deleted from the registry after it forecast: its scores and its
        # monitoring run remain, and there is no version left to tag.


def forecast_figure(scores: pd.DataFrame, window: int) -> Any:
    """The last `window` forecasts of the first series and target against the actuals, with
    the widest interval band."""
    from matplotlib.figure import Figure

    if scores.empty:
        return None
    series = sorted(scores[SERIES_COLUMN].unique())[0]
    target = scores[TARGET_COLUMN].iloc[0]
    rows = scores.loc[(scores[SERIES_COLUMN] == series) & (scores[TARGET_COLUMN] == target)]
    as_ofs = sorted(rows["as_of"].unique())[-window:]
    rows = rows.loc[rows["as_of"].isin(as_ofs)]
    levels = sorted(
        (column.removeprefix("lo_") for column in rows.columns if column.startswith("lo_")),
        key=float,
    )
    figure = Figure(figsize=(10, 3.2))
    axis = figure.subplots()
    actual = rows.drop_duplicates(TIMESTAMP_COLUMN).sort_values(TIMESTAMP_COLUMN)
    axis.plot(actual[TIMESTAMP_COLUMN], actual["actual"], color="black", label="actual")
    for index, (_, forecast) in enumerate(rows.groupby("as_of", sort=True)):
        forecast = forecast.sort_values(TIMESTAMP_COLUMN)
        axis.plot(
            forecast[TIMESTAMP_COLUMN],
            forecast["forecast"],
            color="tab:blue",
            label="forecast" if index == 0 else None,
        )
        if levels and forecast[f"lo_{levels[-1]}"].notna().all():
            axis.fill_between(
                forecast[TIMESTAMP_COLUMN],
                forecast[f"lo_{levels[-1]}"],
                forecast[f"hi_{levels[-1]}"],
                color="tab:blue",
                alpha=0.15,
                label=f"{levels[-1]}% interval" if index == 0 else None,
            )
    axis.set_title(f"{series} {target}: the last {len(as_ofs)} forecasts and the actuals")
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    return figure


def rolling_error_figure(statuses: list[tuple[pd.Timestamp, WindowStatus]]) -> Any:
    """The rolling MAE ratio with its alarm threshold, skill, and coverage with its bands."""
    from matplotlib.figure import Figure

    if not statuses:
        return None
    times = [as_of for as_of, _ in statuses]
    figure = Figure(figsize=(10, 5.5))
    error_axis, coverage_axis = figure.subplots(2, 1, sharex=True)
    error_axis.plot(times, [s.mae_ratio for _, s in statuses], marker=".", label="MAE ratio")
    error_axis.plot(
        times,
        [s.mae_threshold for _, s in statuses],
        ls="--",
        color="tab:red",
        label="alarm threshold",
    )
    error_axis.plot(
        times,
        [1 - s.skill_vs_last for _, s in statuses],
        marker=".",
        color="tab:green",
        label="MAE / last value's (alarm above 1)",
    )
    alarmed = [(as_of, s.mae_ratio) for as_of, s in statuses if s.alarms]
    if alarmed:
        error_axis.scatter(*zip(*alarmed, strict=True), color="tab:red", zorder=3, label="alarm")
    error_axis.axhline(1, color="grey", lw=0.8)
    error_axis.set_ylabel("to the validation reference")
    error_axis.legend(loc="upper left", fontsize="small")
    for level in statuses[-1][1].coverage:
        shares = np.array([s.coverage.get(level, (np.nan,) * 3) for _, s in statuses])
        line = coverage_axis.plot(times, shares[:, 0], marker=".", label=f"coverage {level}%")
        coverage_axis.fill_between(
            times, shares[:, 1], shares[:, 2], alpha=0.15, color=line[0].get_color()
        )
    coverage_axis.set_ylabel("coverage (band: no alarm)")
    coverage_axis.legend(loc="lower left", fontsize="small")
    figure.autofmt_xdate()
    return figure
