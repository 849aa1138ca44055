"""Prepare: source -> validate -> features -> split + scale -> window counts, in memory.

`run(config)` returns the clean frame (with derived features and its part per row), the scaler
fitted on the training part only, the window spec and a summary; `load_history(config, as_of)`
gives the validated history up to a time, unsplit, for forecasting. Nothing here writes files
or talks to MLflow: `pipelines.data.prepared` writes the prepared files, `pipelines.cli.prepare`
is the command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data import features as feature_steps
from pipelines.data.catalog import DatasetEntry, default_entry_name, get_entry
from pipelines.data.gaps import drop_short_segments
from pipelines.data.settings import DataConfig
from pipelines.data.sources import load_source
from pipelines.data.split import TRAIN, UNUSED, SplitSpec, assign_parts
from pipelines.data.timestamps import parse_source_timestamps
from pipelines.data.validate import read_as_published, validate_table
from pipelines.runtime.contract import (
    PART_NAMES,
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    CleaningPolicy,
    DataValidationError,
    SourceTable,
    TableSchema,
    ValidationReport,
    epoch_nanoseconds,
    require_positive,
)
from pipelines.runtime.scaling import FittedScaler, fit_scaler
from pipelines.runtime.windows import WindowSpec, window_starts

PART_COLUMN = "part"


@dataclass
class PrepareResult:
    frame: pd.DataFrame
    parts: np.ndarray
    scaler: FittedScaler
    spec: WindowSpec
    summary: dict[str, Any]


def resolve_entry(config: DataConfig) -> DatasetEntry:
    """The catalog entry to use, or an ad-hoc one for a file outside the catalog (whose
    timestamp column and targets `DataConfig` requires)."""
    if config.dataset is not None or config.source is None:
        return get_entry(config.dataset or default_entry_name())
    name = Path(config.source).name.split(".")[0] or "source"
    return DatasetEntry(
        name=name,
        source={"kind": "file", "path": config.source},
        targets=config.targets,
        timestamp_column=config.timestamp_column,
    )


def resolve_widths(config: DataConfig, entry: DatasetEntry | None = None) -> tuple[int, int]:
    """(input_width, horizon): the config's, else the catalog entry's."""
    entry = entry or resolve_entry(config)
    input_width = require_positive(
        "input_width", entry.input_width if config.input_width is None else config.input_width
    )
    horizon = require_positive(
        "horizon", entry.horizon if config.horizon is None else config.horizon
    )
    return input_width, horizon


def requested_targets(entry: DatasetEntry, config: DataConfig) -> tuple[str, ...]:
    """The targets to forecast: the config's, else the entry's."""
    return tuple(config.targets or entry.targets)


def _derived_targets(entry: DatasetEntry, config: DataConfig) -> dict[str, str]:
    """Feature columns that may be targets, mapped to the source column they come from."""
    if not (config.log_returns or entry.features.get("log_returns", False)):
        return {}
    return {f"{column}_log_return": column for column in entry.price_columns}


def _schema_and_policy(
    entry: DatasetEntry, config: DataConfig
) -> tuple[TableSchema, CleaningPolicy]:
    """The entry's reading schema and cleaning policy, with the config's replacements.

    A target that a feature step derives (`close_log_return` from `close`) is read as its
    source column; `requested_targets` gives the targets as asked for.
    """
    derived = _derived_targets(entry, config)
    targets = tuple(
        dict.fromkeys(derived.get(target, target) for target in requested_targets(entry, config))
    )
    schema = entry.schema(
        timestamp_column=config.timestamp_column,
        timestamp_format=config.timestamp_format,
        series_column=config.series_column,
        value_columns=config.value_columns,
        targets=targets,
        frequency=config.frequency,
    )
    policy = entry.policy(
        sentinels=config.sentinels,
        max_gap=config.max_gap,
        fill_method=config.fill_method,
        duplicates=config.duplicates,
    )
    return schema, policy


def run(
    config: DataConfig,
    *,
    as_of: pd.Timestamp | None = None,
    since: pd.Timestamp | None = None,
) -> PrepareResult:
    """Runs the pipeline in memory and returns the prepared frame, scaler, spec and summary.

    Args:
        config: the data settings.
        as_of: the last time to use (UTC); rows after it are removed from the source table
            before validation, so no repair, split or scaler ever sees them (a backtest fold's
            origin). None uses every row.
        since: the first time to use (a sliding training window); None: from the start.
    """
    entry = resolve_entry(config)
    input_width, horizon = resolve_widths(config, entry)
    require_positive("stride", config.stride)
    split = SplitSpec.parse(config.split)
    schema, policy = _schema_and_policy(entry, config)

    table = load_source(entry, config.source, parameters=config.source_parameters)
    if as_of is not None or since is not None:
        table = _rows_until(table, schema, as_of, since)[0]

    def clean(part_starts: dict[str, list[pd.Timestamp]] | None = None) -> _Cleaned:
        if config.policy == "as_published":
            validated = read_as_published(table, schema)
        else:
            validated = validate_table(table, schema, policy, part_starts)
        report = validated.report
        frame, feature_columns = _add_features(
            validated.frame, list(validated.value_columns), entry, config, report
        )
        frame = drop_short_segments(frame, input_width + horizon, report, table.origin)
        parts = assign_parts(frame, split)
        frame, parts = _drop_unused_rows(frame, parts, report)
        frame, parts = _drop_series_without_training_rows(frame, parts, report)
        return _Cleaned(frame, parts, report, feature_columns)

    cleaned = clean()
    if (
        config.policy == "validate"
        and policy.fill_method == "time"
        and cleaned.report.values_filled
    ):
        # Gaps are filled before the parts are known. Filling never adds or drops rows, so the
        # parts found now hold for a second pass that keeps interpolation inside each part.
        cleaned = clean(_part_starts(cleaned.frame, cleaned.parts))
    frame, parts, report, feature_columns = (
        cleaned.frame,
        cleaned.parts,
        cleaned.report,
        cleaned.feature_columns,
    )
    spec = WindowSpec(
        input_width=input_width,
        horizon=horizon,
        features=tuple(feature_columns),
        targets=requested_targets(entry, config),
        stride=config.stride,
    )
    starts = window_starts(frame[SEGMENT_COLUMN].to_numpy(), parts, spec)
    if not len(starts["train"]):
        raise DataValidationError(
            f"{table.origin}: parameter split {split.describe()}: no training window fits "
            f"(input width {input_width} + horizon {horizon} = {spec.total_width} rows "
            "are needed inside the training part of a segment)"
        )
    scaler = fit_scaler(
        frame,
        parts,
        feature_columns,
        kind=config.scaler,  # type: ignore[arg-type]
        per_series=config.per_series_scaling,
    )
    frame = frame.assign(**{PART_COLUMN: pd.Categorical.from_codes(parts, categories=PART_NAMES)})
    summary = _summary(entry, table.origin, frame, report, spec, split, starts, config)
    return PrepareResult(frame=frame, parts=parts, scaler=scaler, spec=spec, summary=summary)


@dataclass
class History:
    """A validated frame with derived features, cut at `as_of`, not split (see `load_history`).

    Attributes:
        frame: `series_id`, `segment`, `timestamp` (UTC), value and feature columns; sorted;
            every series kept, however short.
        feature_columns: value columns then derived features, as `run` names them.
        report: what validation repaired.
        as_of: the cut: no row after it was read, validated or filled.
        first_timestamp: the earliest timestamp in the source (before the cut).
        last_timestamp: the latest timestamp in the source (before the cut).
        origin: where the rows came from.
        dataset: the catalog entry's name (or the file's name for a plain source).
    """

    frame: pd.DataFrame
    feature_columns: list[str]
    report: ValidationReport
    as_of: pd.Timestamp
    first_timestamp: pd.Timestamp
    last_timestamp: pd.Timestamp
    origin: str
    dataset: str


def load_history(config: DataConfig, as_of: pd.Timestamp | None = None) -> History:
    """Source -> validate -> features, as `run` does, but without split or dropped series.

    Rows after `as_of` are removed from the source table before validation, so gap filling,
    frequency inference and features never see them (no look-ahead).

    Args:
        config: the data settings (window, split and scaler settings are ignored).
        as_of: the last time to use (UTC); None uses the latest timestamp of the source.

    Returns:
        The history up to `as_of`.

    Raises:
        DataValidationError: unreadable or invalid data, or `as_of` before the first row.
    """
    entry = resolve_entry(config)
    schema, policy = _schema_and_policy(entry, config)
    table = load_source(entry, config.source, parameters=config.source_parameters)
    table, first, last = _rows_until(table, schema, as_of)
    cut = last if as_of is None else as_of
    if config.policy == "as_published":
        validated = read_as_published(table, schema)
    else:
        validated = validate_table(table, schema, policy)
    frame, feature_columns = _add_features(
        validated.frame, list(validated.value_columns), entry, config, validated.report
    )
    return History(
        frame=frame,
        feature_columns=feature_columns,
        report=validated.report,
        as_of=cut,
        first_timestamp=first,
        last_timestamp=last,
        origin=table.origin,
        dataset=entry.name,
    )


def _rows_until(
    table: SourceTable,
    schema: TableSchema,
    as_of: pd.Timestamp | None,
    since: pd.Timestamp | None = None,
) -> tuple[SourceTable, pd.Timestamp, pd.Timestamp]:
    """The table without rows after `as_of` (or before `since`), and the source's first and
    last timestamps."""
    frame = table.frame
    # Blank rows have no timestamp; validation drops (and counts) them, so they stay.
    blank = frame.isna().all(axis=1).to_numpy()
    if frame.shape[1] == 0 or blank.all():
        return table, pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    stamped = dataclasses.replace(table, frame=frame.loc[~blank])
    times = parse_source_timestamps(stamped, schema)
    first, last = times.min(), times.max()
    if as_of is None and since is None:
        return table, first, last
    if as_of is not None and as_of < first:
        raise DataValidationError(
            f"{table.origin}: as_of {as_of.isoformat()} is before the data, which starts at "
            f"{first.isoformat()}"
        )
    keep = np.ones(len(frame), dtype=bool)
    inside = np.ones(len(times), dtype=bool)
    if as_of is not None:
        inside &= (times <= as_of).to_numpy()
    if since is not None:
        inside &= (times >= since).to_numpy()
    keep[~blank] = inside
    return dataclasses.replace(table, frame=frame.loc[keep]), first, last


@dataclass
class _Cleaned:
    frame: pd.DataFrame
    parts: np.ndarray
    report: ValidationReport
    feature_columns: list[str]


def _part_starts(frame: pd.DataFrame, parts: np.ndarray) -> dict[str, list[pd.Timestamp]]:
    """Per series, the first timestamp of each part after the training part."""
    later = frame.loc[parts > TRAIN, [SERIES_COLUMN, TIMESTAMP_COLUMN]].assign(
        part=parts[parts > TRAIN]
    )
    firsts = later.groupby([SERIES_COLUMN, "part"], sort=False)[TIMESTAMP_COLUMN].min()
    starts: dict[str, list[pd.Timestamp]] = {}
    for (series_id, _), timestamp in firsts.items():
        starts.setdefault(str(series_id), []).append(timestamp)
    return starts


def _add_features(
    frame: pd.DataFrame,
    columns: list[str],
    entry: DatasetEntry,
    config: DataConfig,
    report: ValidationReport,
) -> tuple[pd.DataFrame, list[str]]:
    options = feature_steps.FeatureOptions(
        calendar=config.calendar_features or entry.features.get("calendar", False),
        wind_vector=config.wind_vector or entry.features.get("wind_vector", False),
        log_returns=config.log_returns or entry.features.get("log_returns", False),
    )
    if options.wind_vector:
        if not entry.wind:
            raise DataValidationError(
                f"parameter wind_vector: dataset {entry.name!r} names no wind columns"
            )
        frame, added = feature_steps.add_wind_vector(
            frame, entry.wind["speed"], entry.wind["direction"]
        )
        columns = [c for c in columns if c != entry.wind["direction"]] + added
    if options.log_returns:
        if not entry.price_columns:
            raise DataValidationError(
                f"parameter log_returns: dataset {entry.name!r} names no price columns"
            )
        frame, added = feature_steps.add_log_returns(frame, entry.price_columns, report)
        columns += added
    if options.calendar:
        step = _median_step_seconds(frame)
        frame, added = feature_steps.add_calendar_features(frame, step)
        columns += added
    return frame, columns


def _median_step_seconds(frame: pd.DataFrame) -> float:
    times = epoch_nanoseconds(frame[TIMESTAMP_COLUMN])
    segments = frame[SEGMENT_COLUMN].to_numpy()
    steps = np.diff(times)[segments[1:] == segments[:-1]]
    return float(np.median(steps)) / 1e9 if len(steps) else 0.0


def _drop_unused_rows(
    frame: pd.DataFrame, parts: np.ndarray, report: ValidationReport
) -> tuple[pd.DataFrame, np.ndarray]:
    """Drops the rows a row-count split leaves out (those after its test rows)."""
    unused = parts == UNUSED
    if not unused.any():
        return frame, parts
    report.count_dropped("after_the_split", int(unused.sum()))
    return frame.loc[~unused].reset_index(drop=True), parts[~unused]


def _drop_series_without_training_rows(
    frame: pd.DataFrame, parts: np.ndarray, report: ValidationReport
) -> tuple[pd.DataFrame, np.ndarray]:
    has_training = (
        pd.Series(parts == TRAIN).groupby(frame[SERIES_COLUMN].to_numpy()).transform("any")
    )
    keep = has_training.to_numpy()
    if keep.all():
        return frame, parts
    for series_id, rows in frame.loc[~keep].groupby(SERIES_COLUMN, sort=False).size().items():
        report.dropped_series.append(
            {
                "series_id": str(series_id),
                "rows": int(rows),
                "reason": "no rows before the validation start",
            }
        )
    report.count_dropped("series_without_training_rows", int((~keep).sum()))
    if not keep.any():
        raise DataValidationError("parameter split: no series has rows before the validation start")
    return frame.loc[keep].reset_index(drop=True), parts[keep]


def _summary(
    entry: DatasetEntry,
    origin: str,
    frame: pd.DataFrame,
    report: ValidationReport,
    spec: WindowSpec,
    split: SplitSpec,
    starts: dict[str, np.ndarray],
    config: DataConfig,
) -> dict[str, Any]:
    times = frame[TIMESTAMP_COLUMN]
    validation = report.as_dict()
    return {
        "dataset": entry.name,
        "source": origin,
        "source_notes": validation.pop("notes"),
        "rows": len(frame),
        "rows_read": validation.pop("rows_read"),
        "series": int(frame[SERIES_COLUMN].nunique()),
        "series_read": validation.pop("series_read"),
        "segments": int(frame[SEGMENT_COLUMN].nunique()),
        "columns": list(spec.features),
        "targets": list(spec.targets),
        "time_range": {"start": times.min().isoformat(), "end": times.max().isoformat()},
        "frequency": validation.pop("frequency"),
        "validation": validation,
        "split": split.describe(),
        "rows_per_split": {name: int((frame[PART_COLUMN] == name).sum()) for name in PART_NAMES},
        "window": {"input_width": spec.input_width, "horizon": spec.horizon, "stride": spec.stride},
        "windows": {name: len(part_starts) for name, part_starts in starts.items()},
        "scaler": {
            "kind": config.scaler,
            "per_series": config.per_series_scaling,
            "fitted_on": "train",
        },
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable report of a summary."""
    validation = summary["validation"]
    gaps = validation["gaps"]
    lines = [
        f"dataset      {summary['dataset']}  ({summary['source']})",
        f"rows         {summary['rows']:,} kept of {summary['rows_read']:,} read; "
        f"series {summary['series']} of {summary['series_read']}; segments {summary['segments']}",
        f"time range   {summary['time_range']['start']} .. {summary['time_range']['end']} "
        f"every {summary['frequency']}",
        f"columns      {len(summary['columns'])}: {', '.join(summary['columns'][:8])}"
        + (" ..." if len(summary["columns"]) > 8 else ""),
        f"targets      {', '.join(summary['targets'])}",
        f"duplicates   {validation['duplicate_rows_dropped']} identical dropped, "
        f"{validation['conflicting_duplicates_resolved']} conflicting resolved; "
        f"{validation['rows_unsorted']} rows out of order (sorted)",
        f"sentinels    {_format_counts(validation['sentinel_values'])}",
        f"gaps         {gaps['count']} ({validation['missing_timestamps']} missing steps): "
        f"{gaps['filled']} filled, {gaps['split']} split a series, {gaps['trimmed']} at an edge",
        f"filled       {_format_counts(validation['values_filled'])}",
        f"dropped rows {_format_counts(validation['rows_dropped'])}",
    ]
    if validation["dropped_series"]:
        names = ", ".join(item["series_id"] for item in validation["dropped_series"][:10])
        lines.append(f"dropped      {len(validation['dropped_series'])} series: {names}")
    if validation["ignored_columns"]:
        lines.append(f"ignored      non-numeric columns {', '.join(validation['ignored_columns'])}")
    windows = summary["windows"]
    rows = summary["rows_per_split"]
    lines.append(
        f"split        {summary['split']}: rows "
        + ", ".join(f"{name} {rows[name]:,}" for name in PART_NAMES)
    )
    lines.append(
        f"windows      input {summary['window']['input_width']} -> horizon "
        f"{summary['window']['horizon']} (stride {summary['window']['stride']}): "
        + ", ".join(f"{name} {windows[name]:,}" for name in PART_NAMES)
    )
    for note in summary["source_notes"]:
        lines.append(f"note         {note}")
    return "\n".join(lines)


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counts.items()) or "none"
