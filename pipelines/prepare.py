"""Prepare pipeline: source -> validate -> features -> split + scale -> window counts -> files.

Usage:
    python -m pipelines.prepare                      # the catalog's default data set
    python -m pipelines.prepare --dataset weather-ltsf --input-width 96 --horizon 96 \
        --summary-json s.json
    python -m pipelines.prepare --source prices.csv --timestamp-column Date --targets Close

It writes to `--output` (default `data/processed/<dataset>`): `frame.parquet` (the clean frame
with derived features and a `part` column), `scaler.json` (fitted on the training part only),
`window_spec.json` and `summary.json`. The folder is built under a temporary name and renamed
into place, so a failed run leaves the previous output as it was. Bad input exits with status 2
and one `error: ...` line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from pipelines import features as feature_steps
from pipelines.atomic import write_atomically
from pipelines.catalog import DatasetEntry, default_entry_name, get_entry
from pipelines.paths import PROCESSED_DATA_DIRECTORY
from pipelines.sources import load_source
from pipelines.split import PART_NAMES, TRAIN, FittedScaler, SplitSpec, assign_parts, fit_scaler
from pipelines.validate import (
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    CleaningPolicy,
    DataValidationError,
    SourceTable,
    TableSchema,
    ValidationReport,
    drop_short_segments,
    epoch_nanoseconds,
    require_positive,
    validate_table,
)
from pipelines.validate import _parse_timestamps as parse_source_timestamps
from pipelines.windows import WindowSpec, window_starts

PART_COLUMN = "part"
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class PrepareConfig:
    """Everything the prepare pipeline needs; None means "the catalog entry's value"."""

    dataset: str | None = None
    source: str | None = None
    timestamp_column: str | None = None
    timestamp_format: str | None = None
    series_column: str | None = None
    value_columns: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    frequency: str | None = None
    sentinels: tuple[float, ...] | None = None
    max_gap: int | None = None
    fill_method: str | None = None
    duplicates: str | None = None
    input_width: int | None = None
    horizon: int | None = None
    stride: int = 1
    split: str = "0.7,0.1,0.2"
    scaler: str = "standard"
    per_series_scaling: bool = True
    calendar_features: bool = False
    wind_vector: bool = False
    log_returns: bool = False
    source_parameters: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    summary_json: str | None = None


@dataclass
class PrepareResult:
    frame: pd.DataFrame
    parts: np.ndarray
    scaler: FittedScaler
    spec: WindowSpec
    summary: dict[str, Any]


def resolve_entry(config: PrepareConfig) -> DatasetEntry:
    """The catalog entry to use, or an ad-hoc one for `--source` alone."""
    if config.dataset is not None or config.source is None:
        return get_entry(config.dataset or default_entry_name())
    if config.timestamp_column is None or not config.targets:
        raise DataValidationError(
            f"{config.source}: without --dataset, give --timestamp-column and --targets "
            "(and --series-column for several series in one file)"
        )
    name = Path(config.source).name.split(".")[0] or "source"
    return DatasetEntry(
        name=name,
        source={"kind": "file", "path": config.source},
        targets=config.targets,
        timestamp_column=config.timestamp_column,
    )


def _schema_and_policy(
    entry: DatasetEntry, config: PrepareConfig
) -> tuple[TableSchema, CleaningPolicy]:
    """The entry's reading schema and cleaning policy, with the config's replacements."""
    schema = entry.schema(
        timestamp_column=config.timestamp_column,
        timestamp_format=config.timestamp_format,
        series_column=config.series_column,
        value_columns=config.value_columns,
        targets=config.targets,
        frequency=config.frequency,
    )
    policy = entry.policy(
        sentinels=config.sentinels,
        max_gap=config.max_gap,
        fill_method=config.fill_method,
        duplicates=config.duplicates,
    )
    return schema, policy


def run(config: PrepareConfig) -> PrepareResult:
    """Runs the pipeline in memory and returns the prepared frame, scaler, spec and summary."""
    entry = resolve_entry(config)
    input_width = require_positive(
        "input_width", entry.input_width if config.input_width is None else config.input_width
    )
    horizon = require_positive(
        "horizon", entry.horizon if config.horizon is None else config.horizon
    )
    require_positive("stride", config.stride)
    split = SplitSpec.parse(config.split)
    schema, policy = _schema_and_policy(entry, config)

    table = load_source(entry, config.source, parameters=config.source_parameters)

    def clean(part_starts: dict[str, list[pd.Timestamp]] | None = None) -> _Cleaned:
        validated = validate_table(table, schema, policy, part_starts)
        report = validated.report
        frame, feature_columns = _add_features(
            validated.frame, list(validated.value_columns), entry, config, report
        )
        frame = drop_short_segments(frame, input_width + horizon, report, table.origin)
        parts = assign_parts(frame, split)
        frame, parts = _drop_series_without_training_rows(frame, parts, report)
        return _Cleaned(frame, parts, report, feature_columns)

    cleaned = clean()
    if policy.fill_method == "time" and cleaned.report.values_filled:
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
        targets=tuple(schema.targets),
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


def load_history(config: PrepareConfig, as_of: pd.Timestamp | None = None) -> History:
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
    table: SourceTable, schema: TableSchema, as_of: pd.Timestamp | None
) -> tuple[SourceTable, pd.Timestamp, pd.Timestamp]:
    """The table without rows after `as_of`, and the source's first and last timestamps."""
    frame = table.frame
    # Blank rows have no timestamp; validation drops (and counts) them, so they stay.
    blank = frame.isna().all(axis=1).to_numpy()
    if frame.shape[1] == 0 or blank.all():
        return table, pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    stamped = dataclasses.replace(table, frame=frame.loc[~blank])
    times = parse_source_timestamps(stamped, schema)
    first, last = times.min(), times.max()
    if as_of is None:
        return table, first, last
    if as_of < first:
        raise DataValidationError(
            f"{table.origin}: as_of {as_of.isoformat()} is before the data, which starts at "
            f"{first.isoformat()}"
        )
    keep = np.ones(len(frame), dtype=bool)
    keep[~blank] = (times <= as_of).to_numpy()
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
    config: PrepareConfig,
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
    config: PrepareConfig,
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


# --------------------------------------------------------------------------------------------
# Output


OUTPUT_FILES = ("frame.parquet", "scaler.json", "window_spec.json", "summary.json")


def check_output_folder(output: Path) -> None:
    """Refuses an --output that exists and is not a previous prepare output.

    The folder is replaced whole, so anything else in it would be lost: a user's folder (or
    `--output .`) must never be mistaken for ours.
    """
    if not output.exists():
        return
    if not output.is_dir():
        raise DataValidationError(f"parameter output: {output} exists and is not a folder")
    unexpected = sorted(p.name for p in output.iterdir() if p.name not in OUTPUT_FILES)
    if unexpected or not (output / "summary.json").is_file():
        shown = ", ".join(unexpected[:5]) or "no summary.json"
        raise DataValidationError(
            f"parameter output: {output} exists and is not a prepare output ({shown}); "
            "choose a new folder or remove it"
        )


def write_outputs(result: PrepareResult, output: Path) -> None:
    """Writes the prepared files into `output`, replacing it only once everything is written."""
    output = output.resolve()
    check_output_folder(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        result.frame.to_parquet(staging / "frame.parquet", index=False)
        result.scaler.save(staging / "scaler.json")
        (staging / "window_spec.json").write_text(json.dumps(result.spec.to_dict(), indent=1))
        (staging / "summary.json").write_text(json.dumps(result.summary, indent=1, default=str))
        _replace_directory(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_outputs(folder: Path) -> PrepareResult:
    """Reads what `write_outputs` wrote back into a `PrepareResult` (the inverse round trip).

    Raises:
        DataValidationError: `folder` is not a complete prepare output.
    """
    missing = [name for name in OUTPUT_FILES if not (folder / name).is_file()]
    if missing:
        raise DataValidationError(f"{folder}: not a prepare output (missing {', '.join(missing)})")
    frame = pd.read_parquet(folder / "frame.parquet")
    parts = pd.Categorical(frame[PART_COLUMN], categories=PART_NAMES).codes.astype("int8")
    if (parts < 0).any():
        raise DataValidationError(f"{folder / 'frame.parquet'}: column {PART_COLUMN!r} is damaged")
    frame[PART_COLUMN] = pd.Categorical.from_codes(parts, categories=PART_NAMES)
    spec = WindowSpec.from_dict(json.loads((folder / "window_spec.json").read_text()))
    summary = json.loads((folder / "summary.json").read_text())
    return PrepareResult(
        frame=frame,
        parts=parts,
        scaler=FittedScaler.load(folder / "scaler.json"),
        spec=spec,
        summary=summary,
    )


def _replace_directory(staging: Path, output: Path) -> None:
    if not output.exists():
        os.replace(staging, output)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.old.", dir=output.parent))
    os.replace(output, retired / output.name)
    os.replace(staging, output)
    shutil.rmtree(retired, ignore_errors=True)


def write_json_atomically(document: dict[str, Any], path: Path) -> None:
    """Writes `document` as JSON to `path` via a temporary file and a rename."""
    write_atomically(
        path.resolve(),
        lambda temporary: temporary.write_text(json.dumps(document, indent=1, default=str)),
    )


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


# --------------------------------------------------------------------------------------------
# Command line


def _columns(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _integer(text: str) -> int | None:
    """An integer option; "" (an MLproject parameter left empty) means not given."""
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from error


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in _columns(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from error


def build_parser() -> argparse.ArgumentParser:
    """The prepare command's options (also used by tests and by the MLproject entry point)."""
    parser = _OneLineErrorParser(
        prog="python -m pipelines.prepare",
        description="Validate a data set, split it, fit scalers on the training part, and "
        "count windows. With no options: the catalog's default data set.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="catalog entry (data/catalog.yaml)")
    data.add_argument("--source", help="CSV/Parquet file; with --dataset it replaces its location")
    data.add_argument("--timestamp-column")
    data.add_argument("--timestamp-format", help="strftime format, when not ISO 8601")
    data.add_argument(
        "--series-column", help="column naming each series (e.g. a ticker); 'none' for one series"
    )
    data.add_argument(
        "--columns",
        type=_columns,
        dest="value_columns",
        help="numeric columns to keep, comma-separated (default: all numeric)",
    )
    data.add_argument("--targets", type=_columns, help="columns to forecast, comma-separated")
    data.add_argument("--frequency", help="pandas alias (10min, h, D, B) or trading-days")
    data.add_argument("--tickers", help="yfinance: tickers, comma-separated")
    data.add_argument("--start", help="yfinance: first date")
    data.add_argument("--end", help="yfinance: last date (exclusive)")
    data.add_argument(
        "--refresh",
        action="store_true",
        default=None,
        help="yfinance: fetch again even if today's response is cached",
    )
    cleaning = parser.add_argument_group("cleaning")
    cleaning.add_argument("--sentinels", type=_numbers, help="values meaning 'missing', e.g. -9999")
    cleaning.add_argument(
        "--max-gap", type=_integer, help="longest gap (steps) filled; longer split"
    )
    cleaning.add_argument("--fill-method", choices=["time", "ffill"])
    cleaning.add_argument(
        "--duplicates",
        choices=["error", "first", "last", "mean"],
        help="conflicting rows with one timestamp",
    )
    windows = parser.add_argument_group("windows and split")
    windows.add_argument("--input-width", type=_integer)
    windows.add_argument("--horizon", type=_integer)
    windows.add_argument("--stride", type=_integer, default=1)
    windows.add_argument(
        "--split",
        default="0.7,0.1,0.2",
        help="train,validation,test fractions, or validation_start,test_start dates",
    )
    windows.add_argument("--scaler", choices=["standard", "minmax"], default="standard")
    windows.add_argument(
        "--global-scaler",
        action="store_true",
        help="one scaler over all series instead of one per series",
    )
    derived = parser.add_argument_group("features")
    derived.add_argument("--calendar-features", action="store_true")
    derived.add_argument("--wind-vector", action="store_true")
    derived.add_argument("--log-returns", action="store_true")
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output", help="folder for the prepared files (default data/processed/NAME)"
    )
    output.add_argument("--summary-json", help="also write the summary to this JSON file")
    output.add_argument(
        "--log-run",
        action="store_true",
        help="also log the prepared data as an MLflow prepare run, which `main` reuses when its "
        "inputs are the same (MLFLOW_TRACKING_URI; inside `mlflow run`, that run)",
    )
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> PrepareConfig:
    """Maps parsed options onto a `PrepareConfig`; yfinance options become source parameters."""
    source_parameters = {
        key: getattr(arguments, key)
        for key in ("tickers", "start", "end", "refresh")
        if getattr(arguments, key) is not None
    }
    return PrepareConfig(
        dataset=arguments.dataset,
        source=arguments.source,
        timestamp_column=arguments.timestamp_column,
        timestamp_format=arguments.timestamp_format,
        series_column=arguments.series_column,
        value_columns=arguments.value_columns,
        targets=arguments.targets,
        frequency=arguments.frequency,
        sentinels=arguments.sentinels,
        max_gap=arguments.max_gap,
        fill_method=arguments.fill_method,
        duplicates=arguments.duplicates,
        input_width=arguments.input_width,
        horizon=arguments.horizon,
        stride=arguments.stride,
        split=arguments.split,
        scaler=arguments.scaler,
        per_series_scaling=not arguments.global_scaler,
        calendar_features=arguments.calendar_features,
        wind_vector=arguments.wind_vector,
        log_returns=arguments.log_returns,
        source_parameters=source_parameters,
        output=arguments.output,
        summary_json=arguments.summary_json,
    )


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one `error: ...` line and exit status 2, like data errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the prepare command line; returns the exit status (0, or 2 on bad input)."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    for name, value in vars(arguments).items():
        if value in ("", ()) or value is None:
            # Empty MLproject parameters mean "not given": the option's default applies.
            setattr(arguments, name, parser.get_default(name))
    config = config_from_arguments(arguments)
    try:
        if config.output:
            check_output_folder(Path(config.output).resolve())
        if config.summary_json and Path(config.summary_json).is_dir():
            raise DataValidationError(f"parameter summary_json: {config.summary_json} is a folder")
        result = run(config)
        output = (
            Path(config.output)
            if config.output
            else PROCESSED_DATA_DIRECTORY / result.summary["dataset"]
        )
        result.summary["output"] = str(output)
        result.summary["config"] = {
            key: value for key, value in asdict(config).items() if value not in (None, {}, ())
        }
        write_outputs(result, output)
        if config.summary_json:
            write_json_atomically(result.summary, Path(config.summary_json))
    except (DataValidationError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_summary(result.summary))
    print(f"output       {output}")
    if arguments.log_run:
        from pipelines.lineage import record_prepare_run

        print(f"prepare run  {record_prepare_run(result, config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
