"""The scores table of monitoring: each forecast row scored against its actual, and the
partitions it is written to (one per as_of, atomic, rewritten only when their bytes change).

Scores table: one row per (series, as_of, step, target), sorted by series, step then target (the
model's order): `series_id`, `as_of`, `timestamp` (the forecast time), `step`, `target`,
`forecast`, `actual`, `error` (actual - forecast), `abs_error`, `squared_error`, `last_value` (the
last actual known at as_of: the naive forecast), `last_value_abs_error`,
`last_value_squared_error`, `abs_error_scaled`, `last_value_abs_error_scaled` (in the model's
scaled units, which the rules use), then per interval level L: `lo_L`, `hi_L`, `hit_L` (actual
inside, bounds included), `width_L`; and `model_name`, `model_version`, `model_run_id`. Errors
are in original units unless named `_scaled`. The Parquet schema metadata key `scores` holds the
forecast it scored (model, version, as_of, the forecast's created_at), the targets and levels,
and the rows scored and expected.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.storage import write_atomically, write_folder_atomically
from pipelines.runtime.contract import SERIES_COLUMN, STEP_COLUMN, TIMESTAMP_COLUMN
from pipelines.runtime.intervals import interval_column
from pipelines.serving.partitions import PARTITION_PREFIX, STAGING_PREFIX, read_metadata

SCORES_FILE = "scores.parquet"
METADATA_KEY = b"scores"
SCORES_VERSION = 1
TARGET_COLUMN = "target"
MODEL_COLUMNS = ("model_name", "model_version", "model_run_id")


# --------------------------------------------------------------------------------------------
# The pure core: one forecast against the actuals


def forecast_levels(columns: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The interval levels (names, ascending) whose bounds every target has in `columns`."""
    found = None
    for target in targets:
        prefix = f"{target}_lo_"
        names = set()
        for column in columns:
            if column.startswith(prefix):
                name = column[len(prefix) :]
                if _is_number(name) and interval_column(target, "hi", float(name)) in columns:
                    names.add(name)
        found = names if found is None else found & names
    return sorted(found or (), key=float)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def score_forecast(
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
    targets: Sequence[str],
    slopes: pd.DataFrame,
) -> pd.DataFrame:
    """The scores of one forecast partition's rows that have an actual.

    Args:
        forecast: the partition's frame (`series_id`, `timestamp`, `step`, the targets, their
            bounds, the model columns, `as_of`).
        actuals: validated history (`series_id`, `timestamp`, the targets), any length.
        targets: the model's targets, in its order.
        slopes: scaled units per original unit, indexed by series id, one column per target.

    Returns:
        The scores table's rows (see the module docstring); empty when no actual has arrived.
    """
    as_of = pd.Timestamp(forecast["as_of"].iloc[0])
    levels = forecast_levels(list(forecast.columns), targets)
    keys = [SERIES_COLUMN, TIMESTAMP_COLUMN]
    history = actuals[[*keys, *targets]].reset_index(drop=True)
    history[SERIES_COLUMN] = history[SERIES_COLUMN].astype(str)
    history[TIMESTAMP_COLUMN] = _utc(history[TIMESTAMP_COLUMN])
    # The as-published policy keeps a file's duplicate rows and its order: the later of two
    # rows at one time is the actual, and "last" means latest in time.
    history = history.sort_values(keys, kind="stable").drop_duplicates(keys, keep="last")
    rows = forecast.reset_index(drop=True)
    rows[SERIES_COLUMN] = rows[SERIES_COLUMN].astype(str)
    rows[TIMESTAMP_COLUMN] = _utc(rows[TIMESTAMP_COLUMN])
    known = history.loc[history[TIMESTAMP_COLUMN] <= as_of]
    last = known.groupby(SERIES_COLUMN, sort=False)[list(targets)].last()
    arrived = rows[keys].merge(history, on=keys, how="left", validate="one_to_one")
    parts = []
    for position, target in enumerate(targets):
        actual = arrived[target].to_numpy(dtype="float64")
        present = ~np.isnan(actual)
        if not present.any():
            continue
        part = rows.loc[present, [SERIES_COLUMN, TIMESTAMP_COLUMN, STEP_COLUMN]].copy()
        series = part[SERIES_COLUMN].to_numpy()
        predicted = rows.loc[present, target].to_numpy(dtype="float64")
        observed = actual[present]
        naive = last[target].reindex(series).to_numpy(dtype="float64")
        slope = np.abs(slopes[target].reindex(series).to_numpy(dtype="float64"))
        error = observed - predicted
        part.insert(1, "as_of", as_of)
        part[TARGET_COLUMN] = target
        part["_target_position"] = position
        part["forecast"] = predicted
        part["actual"] = observed
        part["error"] = error
        part["abs_error"] = np.abs(error)
        part["squared_error"] = error**2
        part["last_value"] = naive
        part["last_value_abs_error"] = np.abs(observed - naive)
        part["last_value_squared_error"] = (observed - naive) ** 2
        part["abs_error_scaled"] = np.abs(error) * slope
        part["last_value_abs_error_scaled"] = np.abs(observed - naive) * slope
        for level in levels:
            low = rows.loc[present, interval_column(target, "lo", float(level))].to_numpy("float64")
            high = rows.loc[present, interval_column(target, "hi", float(level))].to_numpy(
                "float64"
            )
            part[f"lo_{level}"] = low
            part[f"hi_{level}"] = high
            # A bound the model could not give (NaN) neither covers nor misses.
            bounded = np.isfinite(low) & np.isfinite(high)
            part[f"hit_{level}"] = pd.array(
                np.where(bounded, (observed >= low) & (observed <= high), False), dtype="boolean"
            )
            part.loc[~bounded, f"hit_{level}"] = pd.NA
            part[f"width_{level}"] = high - low
        for column in MODEL_COLUMNS:
            part[column] = rows.loc[present, column].astype(str).to_numpy()
        parts.append(part)
    if not parts:
        return pd.DataFrame()
    scores = pd.concat(parts, ignore_index=True)
    scores = scores.sort_values(
        [SERIES_COLUMN, STEP_COLUMN, "_target_position"], kind="stable"
    ).drop(columns="_target_position")
    scores["as_of"] = _utc(scores["as_of"])
    return scores.reset_index(drop=True)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.reset_index(drop=True), utc=True).astype("datetime64[us, UTC]")


# --------------------------------------------------------------------------------------------
# The scores table: partitions written atomically, only when their bytes change


def scores_bytes(scores: pd.DataFrame, metadata: dict[str, Any]) -> bytes:
    """The Parquet file of a scores frame and its metadata document (deterministic bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(scores, preserve_index=False)
    table = table.replace_schema_metadata(
        {METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_scores_metadata(path: Path) -> dict[str, Any] | None:
    """The `scores` metadata of a written file, or None when it has none or is unreadable."""
    return read_metadata(path, METADATA_KEY)


def write_scores(partition: Path, content: bytes, metadata: dict[str, Any]) -> str:
    """Writes a scores partition atomically unless it already holds exactly `content`, or
    more scored rows of the same forecast than `metadata` (the document inside `content`)
    says (a run that read older actuals never rolls back a newer one's); returns `written`,
    `updated` or `unchanged` (call under the lock)."""
    target = partition / SCORES_FILE
    if target.exists():
        if target.read_bytes() == content:
            return "unchanged"
        existing = read_scores_metadata(target)
        if (
            existing is not None
            and existing.get("forecast") == metadata.get("forecast")
            and int(existing.get("rows_scored", 0)) > int(metadata["rows_scored"])
        ):
            return "unchanged"
        write_atomically(target, lambda temporary: temporary.write_bytes(content), durable=True)
        return "updated"
    write_folder_atomically(
        partition,
        lambda staging: (staging / SCORES_FILE).write_bytes(content),
        staging_prefix=STAGING_PREFIX,
        durable=True,
    )
    return "written"


def read_scores_table(output: Path) -> pd.DataFrame:
    """Every scores partition under `output`, one frame (levels a partition lacks are NaN)."""
    paths = sorted(output.glob(f"{PARTITION_PREFIX}*/{SCORES_FILE}"))
    frames = [frame for frame in map(pd.read_parquet, paths) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
