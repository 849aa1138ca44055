"""The time grid: frequency inference, regularisation onto the grid, gap filling and the
segments that long gaps leave."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipelines.runtime.contract import (
    MAX_GAPS_LISTED,
    SEGMENT_COLUMN,
    SERIES_COLUMN,
    TIMESTAMP_COLUMN,
    TRADING_DAYS,
    CleaningPolicy,
    DataValidationError,
    SourceTable,
    ValidationReport,
    epoch_nanoseconds,
)

# --------------------------------------------------------------------------------------------
# Frequency and the regular grid


def infer_frequency(timestamps: pd.Series, series_codes: np.ndarray, table: SourceTable) -> str:
    """The step of the data: a calendar alias where pandas recognises one, else the usual step."""
    times = epoch_nanoseconds(timestamps)
    same_series = series_codes[1:] == series_codes[:-1]
    steps = (times[1:] - times[:-1])[same_series]
    if not len(steps):
        raise DataValidationError(
            f"{table.origin}: cannot infer a frequency from a single row per series; "
            "pass the frequency explicitly"
        )
    first_series = timestamps[series_codes == series_codes[0]]
    if len(first_series) >= 3:
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(pd.DatetimeIndex(first_series.iloc[:1000]))
        if offset is not None:
            return offset.freqstr
    values, counts = np.unique(steps, return_counts=True)
    usual = int(values[np.argmax(counts)])
    step = pd.Timedelta(usual, unit="ns")
    if step == pd.Timedelta(days=1) and not (pd.DatetimeIndex(timestamps).day_of_week >= 5).any():
        return "B"
    return pd.tseries.frequencies.to_offset(step).freqstr


def _grid(timestamps: pd.Series, frequency: str, table: SourceTable) -> pd.DatetimeIndex:
    if frequency == TRADING_DAYS:
        return pd.DatetimeIndex(np.unique(epoch_nanoseconds(timestamps))).tz_localize("UTC")
    try:
        return pd.date_range(timestamps.min(), timestamps.max(), freq=frequency)
    except ValueError as error:
        raise DataValidationError(
            f"parameter frequency: {frequency!r} is not a frequency: {error}"
        ) from error


def _reject_finer_frequency(
    steps: np.ndarray, unit: int, frequency: str, table: SourceTable, label: str
) -> None:
    """Rejects a frequency finer than the data's usual step: it would invent every other row."""
    if len(steps) and np.median(steps) > unit:
        usual = np.median(steps) / unit
        raise DataValidationError(
            f"{table.origin}: column {label!r}: the usual step between rows is {usual:g} steps of "
            f"{frequency!r}; the frequency is finer than the data. Pass the data's own frequency"
        )


def regularise(
    frame: pd.DataFrame,
    value_columns: Sequence[str],
    frequency: str,
    table: SourceTable,
    report: ValidationReport,
    label: str,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Puts every series on the regular grid; returns the frame and which rows were inserted."""
    times = epoch_nanoseconds(frame[TIMESTAMP_COLUMN])
    series_codes, series_names = pd.factorize(frame[SERIES_COLUMN], sort=False)
    same_series = series_codes[1:] == series_codes[:-1]
    offset = pd.tseries.frequencies.to_offset(frequency) if frequency != TRADING_DAYS else None
    if isinstance(offset, pd.offsets.Tick):
        # Checked before the grid exists: a grid far finer than the data could exhaust memory.
        _reject_finer_frequency(np.diff(times)[same_series], offset.nanos, frequency, table, label)
    grid = _grid(frame[TIMESTAMP_COLUMN], frequency, table)
    grid_times = epoch_nanoseconds(grid)
    positions = np.searchsorted(grid_times, times)
    positions = np.minimum(positions, len(grid_times) - 1)
    off_grid = grid_times[positions] != times
    if off_grid.any():
        rows = frame.index[off_grid]
        example = frame[TIMESTAMP_COLUMN][off_grid].iloc[0]
        raise DataValidationError(
            f"{table.origin}: column {label!r}: irregular frequency: timestamp {example} "
            f"is not on the {frequency!r} grid that starts at {grid[0]}, at "
            f"{table.describe_rows(rows, len(rows))}; resample the data or pass its frequency"
        )
    _reject_finer_frequency(np.diff(positions)[same_series], 1, frequency, table, label)
    starts = np.flatnonzero(np.r_[True, series_codes[1:] != series_codes[:-1]])
    ends = np.r_[starts[1:], len(frame)]
    first_position = positions[starts]
    last_position = positions[ends - 1]
    lengths = last_position - first_position + 1
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    total = int(lengths.sum())
    # Scatter the observed rows into a full grid per series (vectorised reindex).
    row_series = np.repeat(np.arange(len(starts)), ends - starts)
    target_rows = offsets[row_series] + positions - first_position[row_series]
    full_values = np.full((total, len(value_columns)), np.nan)
    full_values[target_rows] = frame[list(value_columns)].to_numpy(dtype="float64")
    full_series = np.repeat(np.arange(len(starts)), lengths)
    full_positions = np.arange(total) - offsets[full_series] + first_position[full_series]
    inserted = np.ones(total, dtype=bool)
    inserted[target_rows] = False
    report.missing_timestamps = int(inserted.sum())
    regular = pd.DataFrame(full_values, columns=list(value_columns))
    regular.insert(0, TIMESTAMP_COLUMN, grid[full_positions])
    regular.insert(
        0,
        SERIES_COLUMN,
        pd.array(np.asarray(series_names)[series_codes[starts]][full_series], dtype="string"),
    )
    return regular, inserted


# --------------------------------------------------------------------------------------------
# Gaps


def _runs(mask: np.ndarray, boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True in `mask`; runs break where `boundary`."""
    starts_flag = mask & (np.r_[True, ~mask[:-1]] | boundary)
    run_ids = np.cumsum(starts_flag) * mask
    run_starts = np.flatnonzero(starts_flag)
    run_lengths = np.bincount(run_ids, minlength=len(run_starts) + 1)[1:]
    return run_starts, run_starts + run_lengths


def _crosses_part_start(
    series: np.ndarray,
    times: np.ndarray,
    rows: np.ndarray,
    after: np.ndarray,
    part_starts: Mapping[str, Sequence[pd.Timestamp]],
) -> np.ndarray:
    """Which filled rows lie before a part start that their right-hand anchor lies at or after."""
    crosses = np.zeros(len(rows), dtype=bool)
    for index, (row, anchor) in enumerate(zip(rows, after, strict=True)):
        for start in part_starts.get(str(series[row]), ()):
            nanoseconds = float(pd.Timestamp(start).value)
            if times[row] < nanoseconds <= times[anchor]:
                crosses[index] = True
    return crosses


def fill_short_gaps(
    regular: pd.DataFrame,
    value_columns: Sequence[str],
    inserted: np.ndarray,
    policy: CleaningPolicy,
    report: ValidationReport,
    part_starts: Mapping[str, Sequence[pd.Timestamp]] | None = None,
) -> pd.DataFrame:
    """Fills runs of at most `max_gap` missing values that have a known value on both sides.

    With `part_starts` (per series, the first timestamps of the validation and test parts), a
    row before a part start is never interpolated towards a value at or after it: it repeats
    its last earlier value instead, so no training value depends on a validation value.
    """
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    last_of_series = np.r_[new_series[1:], True]
    times = epoch_nanoseconds(regular[TIMESTAMP_COLUMN]).astype("float64")
    values = regular[list(value_columns)].to_numpy(dtype="float64", copy=True)
    for index, column in enumerate(value_columns):
        column_values = values[:, index]
        missing = np.isnan(column_values)
        if not missing.any():
            continue
        run_starts, run_ends = _runs(missing, new_series)
        inside = ~new_series[run_starts] & ~last_of_series[run_ends - 1]
        short = (run_ends - run_starts) <= policy.max_gap
        fillable = inside & short
        if not fillable.any():
            continue
        lengths = (run_ends - run_starts)[fillable]
        rows = np.repeat(run_ends[fillable] - lengths, lengths) + _ranges(lengths)
        before = np.repeat(run_starts[fillable] - 1, lengths)
        after = np.repeat(run_ends[fillable], lengths)
        if policy.fill_method == "ffill":
            column_values[rows] = column_values[before]
        else:
            weight = (times[rows] - times[before]) / (times[after] - times[before])
            interpolated = column_values[before] + weight * (
                column_values[after] - column_values[before]
            )
            if part_starts:
                crosses = _crosses_part_start(series, times, rows, after, part_starts)
                interpolated = np.where(crosses, column_values[before], interpolated)
                report.fills_before_part_start += int(crosses.sum())
            column_values[rows] = interpolated
        report.values_filled[str(column)] = len(rows)
    regular[list(value_columns)] = values
    return regular


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..l0), [0..l1), ... without a Python loop."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts


def record_gaps(
    regular: pd.DataFrame,
    incomplete_before: np.ndarray,
    incomplete_after: np.ndarray,
    inserted: np.ndarray,
    report: ValidationReport,
) -> None:
    """Counts the gaps: runs of rows missing a timestamp or a value, per series.

    A gap is `filled` when every row of it was filled, `split` when rows inside a series stay
    missing (they are dropped and the series is cut there), and `trimmed` when it touches the
    start or end of a series (nothing to interpolate from; the rows are dropped).
    """
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    last_of_series = np.r_[new_series[1:], True]
    run_starts, run_ends = _runs(incomplete_before, new_series)
    at_edge = new_series[run_starts] | last_of_series[run_ends - 1]
    still_missing = np.add.reduceat(incomplete_after, run_starts) > 0 if len(run_starts) else []
    actions = np.where(at_edge, "trimmed", np.where(still_missing, "split", "filled"))
    report.gap_counts = {
        action: int((actions == action).sum()) for action in ("filled", "split", "trimmed")
    }
    timestamps = regular[TIMESTAMP_COLUMN]
    for start, end, action in zip(
        run_starts[:MAX_GAPS_LISTED], run_ends[:MAX_GAPS_LISTED], actions, strict=False
    ):
        report.gaps.append(
            {
                "series_id": str(series[start]),
                "after": None if new_series[start] else str(timestamps.iloc[start - 1]),
                "before": None if last_of_series[end - 1] else str(timestamps.iloc[end]),
                "steps": int(end - start),
                "missing_timestamps": int(inserted[start:end].sum()),
                "action": str(action),
            }
        )


def drop_unfilled(
    regular: pd.DataFrame,
    value_columns: Sequence[str],
    inserted: np.ndarray,
    report: ValidationReport,
) -> pd.DataFrame:
    """Drops rows still missing a value; each stretch of kept rows becomes its own segment."""
    incomplete = regular[list(value_columns)].isna().any(axis=1).to_numpy()
    report.count_dropped("long_gap_missing_timestamps", int((incomplete & inserted).sum()))
    report.count_dropped("missing_values_not_filled", int((incomplete & ~inserted).sum()))
    series = regular[SERIES_COLUMN].to_numpy()
    new_series = np.r_[True, series[1:] != series[:-1]]
    previous_dropped = np.r_[False, incomplete[:-1]]
    starts_segment = (new_series | previous_dropped) & ~incomplete
    segment = np.cumsum(starts_segment) - 1
    kept = regular.loc[~incomplete].copy()
    kept.insert(1, SEGMENT_COLUMN, segment[~incomplete].astype("int64"))
    return kept.reset_index(drop=True)


def drop_short_segments(
    frame: pd.DataFrame, min_rows: int, report: ValidationReport, origin: str
) -> pd.DataFrame:
    """Drops segments shorter than one window, lists series left with nothing, and renumbers.

    Raises:
        DataValidationError: when no series keeps a segment long enough for one window.
    """
    sizes = frame.groupby(SEGMENT_COLUMN, sort=False)[SEGMENT_COLUMN].transform("size").to_numpy()
    short = sizes < min_rows
    report.count_dropped("segment_shorter_than_window", int(short.sum()))
    before = frame.groupby(SERIES_COLUMN, sort=False).size()
    kept = frame.loc[~short]
    after = kept.groupby(SERIES_COLUMN, sort=False).size()
    for series_id, rows in before.items():
        if series_id not in after.index:
            report.dropped_series.append(
                {
                    "series_id": str(series_id),
                    "rows": int(rows),
                    "reason": f"no stretch of {min_rows} regular rows (input width + horizon)",
                }
            )
    if kept.empty:
        longest = int(sizes.max()) if len(sizes) else 0
        raise DataValidationError(
            f"{origin}: too few rows for the requested windows: a window needs {min_rows} "
            f"consecutive rows (input width + horizon) but the longest clean stretch has {longest}"
        )
    kept = kept.copy()
    kept[SEGMENT_COLUMN] = pd.factorize(kept[SEGMENT_COLUMN])[0].astype("int64")
    return kept.reset_index(drop=True)
