"""The scores table's pure parts: a forecast scored against actuals by hand, and writes that
never roll back newer scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.serving.scores import SCORES_FILE, score_forecast, scores_bytes, write_scores

AS_OF = pd.Timestamp("2024-01-01", tz="UTC")


def forecast(bounds: list[float]) -> pd.DataFrame:
    times = AS_OF + pd.to_timedelta([1, 2], unit="D")
    return pd.DataFrame(
        {
            "series_id": ["s", "s"],
            "timestamp": times,
            "step": [1, 2],
            "y": [10.0, 20.0],
            "y_lo_80": [9.0, bounds[0]],
            "y_hi_80": [11.0, bounds[1]],
            "model_name": ["m", "m"],
            "model_version": ["1", "1"],
            "model_run_id": ["r", "r"],
            "as_of": [AS_OF, AS_OF],
        }
    )


def test_duplicate_actuals_keep_the_later_row_and_a_missing_bound_neither_hits_nor_misses() -> None:
    actuals = pd.DataFrame(
        {
            "series_id": ["s", "s", "s", "s"],
            # As published: out of order, and two rows at day 1 (the later one counts).
            "timestamp": AS_OF + pd.to_timedelta([1, 0, 1, 2], unit="D"),
            "y": [99.0, 5.0, 10.5, 26.0],
        }
    )
    slopes = pd.DataFrame({"y": [0.5]}, index=["s"])

    scores = score_forecast(forecast([np.nan, np.nan]), actuals, ["y"], slopes)

    assert scores["actual"].tolist() == [10.5, 26.0]
    assert scores["error"].tolist() == [0.5, 6.0]
    assert scores["last_value"].tolist() == [5.0, 5.0]  # the actual at as_of
    assert scores["abs_error_scaled"].tolist() == [0.25, 3.0]
    assert scores["last_value_abs_error"].tolist() == [5.5, 21.0]
    assert scores["hit_80"].tolist() == [True, pd.NA]


def test_scores_of_older_actuals_never_replace_more_rows(tmp_path: Path) -> None:
    actuals = pd.DataFrame(
        {
            "series_id": ["s", "s", "s"],
            "timestamp": AS_OF + pd.to_timedelta([0, 1, 2], unit="D"),
            "y": [5.0, 10.0, 20.0],
        }
    )
    slopes = pd.DataFrame({"y": [1.0]}, index=["s"])
    frame = forecast([19.0, 21.0])
    identity = {"forecast": {"model_version": "1"}}
    both = score_forecast(frame, actuals, ["y"], slopes)
    first = score_forecast(frame, actuals.iloc[:2], ["y"], slopes)
    partition = tmp_path / "as_of=x"

    newer = {**identity, "rows_scored": 2}
    assert write_scores(partition, scores_bytes(both, newer), newer) == "written"
    older = {**identity, "rows_scored": 1}
    assert write_scores(partition, scores_bytes(first, older), older) == "unchanged"
    assert len(pd.read_parquet(partition / SCORES_FILE)) == 2
