"""Derived features against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.features import add_calendar_features, add_log_returns, add_wind_vector
from pipelines.runtime.contract import DataValidationError, ValidationReport


def frame_at(times: list[str], **columns) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": "s",
            "segment": columns.pop("segment", 0),
            "timestamp": pd.to_datetime(times, utc=True),
            **columns,
        }
    )


def test_calendar_cycles_at_known_times():
    frame = frame_at(
        ["2024-01-01T00:00:00", "2024-01-01T06:00:00", "2024-01-01T12:00:00"], v=[1, 2, 3]
    )
    result, added = add_calendar_features(frame, step_seconds=3600)
    assert added == ["day_sin", "day_cos", "week_sin", "week_cos", "year_sin", "year_cos"]
    np.testing.assert_allclose(result["day_sin"], [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(result["day_cos"], [1, 0, -1], atol=1e-9)


def test_calendar_skips_cycles_a_daily_series_cannot_show():
    frame = frame_at(["2024-01-01", "2024-01-02"], v=[1, 2])
    _, added = add_calendar_features(frame, step_seconds=86400)
    assert added == ["week_sin", "week_cos", "year_sin", "year_cos"]


def test_wind_vector_replaces_direction():
    frame = frame_at(
        ["2024-01-01", "2024-01-02", "2024-01-03"],
        speed=[2.0, 1.0, 3.0],
        direction=[90.0, 180.0, 0.0],
    )
    result, added = add_wind_vector(frame, "speed", "direction")
    assert added == ["wind_x", "wind_y"] and "direction" not in result
    np.testing.assert_allclose(result["wind_x"], [0.0, -1.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(result["wind_y"], [2.0, 0.0, 0.0], atol=1e-12)


def test_log_returns_stay_inside_segments():
    frame = frame_at(
        [f"2024-01-0{d}" for d in range(1, 7)],
        close=[10.0, 11.0, 12.1, 50.0, 55.0, 44.0],
        segment=[0, 0, 0, 1, 1, 1],
    )
    report = ValidationReport(origin="test")
    result, added = add_log_returns(frame, ["close"], report)
    assert added == ["close_log_return"]
    np.testing.assert_allclose(
        result["close_log_return"], np.log([11 / 10, 12.1 / 11, 55 / 50, 44 / 55])
    )
    assert report.rows_dropped == {"first_row_of_segment_log_return": 2}


def test_log_returns_reject_non_positive_prices():
    frame = frame_at(["2024-01-01", "2024-01-02"], close=[10.0, 0.0])
    with pytest.raises(DataValidationError, match=r"column 'close': non-positive price 0\.0"):
        add_log_returns(frame, ["close"], ValidationReport(origin="test"))


def test_a_log_return_can_be_the_target(tmp_path):
    from pipelines.data.prepare import run as prepare_data
    from pipelines.data.settings import DataConfig

    dates = pd.bdate_range("2024-01-01", periods=60)
    rows = []
    for name, start in (("AAA", 10.0), ("BBB", 50.0)):
        closes = start * np.exp(np.cumsum(np.full(60, 0.01)))
        for date, close in zip(dates, closes, strict=True):
            rows.append((date.strftime("%Y-%m-%d"), close, close, close, close, 1000, name))
    path = tmp_path / "prices.csv"
    pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume", "Name"]).to_csv(
        path, index=False
    )
    prepared = prepare_data(
        DataConfig(
            dataset="stocks-5yr",
            source=str(path),
            targets=("close_log_return",),
            log_returns=True,
            input_width=5,
            horizon=2,
        )
    )
    assert prepared.spec.targets == ("close_log_return",)
    assert "close" in prepared.spec.features and "close_log_return" in prepared.spec.features
    np.testing.assert_allclose(prepared.frame["close_log_return"], 0.01, rtol=1e-9)
