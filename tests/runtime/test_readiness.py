"""The readiness rule: which series can be forecast, and the first reason for those that cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.runtime.readiness import REASONS, unready_series

DAYS = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")


def frame_of(series: dict[str, tuple[pd.DatetimeIndex, list[float]]]) -> pd.DataFrame:
    parts = [
        pd.DataFrame({"series_id": name, "timestamp": times, "value": values})
        for name, (times, values) in series.items()
    ]
    return pd.concat(parts, ignore_index=True).sort_values(["series_id", "timestamp"])


def one_of_each() -> pd.DataFrame:
    """`ok` ready; then one series per reason, each of which is only that."""
    full = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    return frame_of(
        {
            "ok": (DAYS, full),
            "unknown": (DAYS, full),
            "stale": (DAYS[:4], full[:4]),
            "short": (DAYS[4:], full[4:]),
            "gappy": (DAYS.delete(4), full[:5]),
            "nan": (DAYS, [*full[:5], np.nan]),
            # A gap and a NaN before the last three rows do not matter.
            "old_trouble": (DAYS.delete(1), [np.inf, *full[2:]]),
        }
    ).reset_index(drop=True)


def test_each_series_gets_its_first_reason_with_details() -> None:
    found = unready_series(
        one_of_each(),
        input_width=3,
        features=["value"],
        frequency="D",
        as_of=DAYS[-1],
        known_series=["ok", "stale", "short", "gappy", "nan", "old_trouble"],
    )
    assert [(item.series_id, item.reason) for item in found] == [
        ("gappy", "gap"),
        ("nan", "non_finite"),
        ("short", "too_short"),
        ("stale", "stale"),
        ("unknown", "unknown"),
    ]
    details = {item.series_id: item.detail for item in found}
    assert "2024-01-04T00:00:00+00:00 is followed by 2024-01-06T00:00:00+00:00" in details["gappy"]
    assert "1 missing steps" in details["gappy"]
    assert "column 'value' at 2024-01-06T00:00:00+00:00 is nan" in details["nan"]
    assert "2 rows; the model needs the last 3 (input_width)" in details["short"]
    assert "last row is at 2024-01-04T00:00:00+00:00" in details["stale"]
    assert {item.reason for item in found} == set(REASONS)


def test_without_a_cut_or_known_series_only_the_history_decides() -> None:
    found = unready_series(one_of_each(), input_width=3, features=["value"], frequency="D")
    assert [(item.series_id, item.reason) for item in found] == [
        ("gappy", "gap"),
        ("nan", "non_finite"),
        ("short", "too_short"),
    ]


def test_the_order_of_reasons_decides_which_is_named() -> None:
    # Unknown and too short: unknown is named; stale and gappy: stale is named.
    frame = frame_of({"x": (DAYS[:2], [1.0, 2.0]), "y": (DAYS[:3].delete(1), [1.0, 2.0])})
    found = unready_series(
        frame, input_width=2, features=["value"], frequency="D", as_of=DAYS[-1], known_series=["y"]
    )
    assert [(item.series_id, item.reason) for item in found] == [("x", "unknown"), ("y", "stale")]


@pytest.mark.parametrize("frequency", ["trading-days", "B"])
def test_trading_days_have_no_gaps_and_business_days_skip_weekends(frequency: str) -> None:
    # Friday 2024-01-05 to Monday 2024-01-08: no gap on business days or on the data's calendar.
    times = pd.DatetimeIndex(["2024-01-04", "2024-01-05", "2024-01-08"], tz="UTC")
    frame = frame_of({"x": (times, [1.0, 2.0, 3.0])})
    assert unready_series(frame, input_width=3, features=["value"], frequency=frequency) == []
    daily = unready_series(frame, input_width=3, features=["value"], frequency="D")
    assert [item.reason for item in daily] == ["gap"]


def test_a_validated_frames_segments_mark_gaps_that_trading_days_cannot_show() -> None:
    # A halt the validation split into two segments: the calendar of trading days has no hole
    # to see, the segment column does.
    times = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-02-05", "2024-02-06"], tz="UTC")
    frame = frame_of({"x": (times, [1.0, 2.0, 3.0, 4.0])}).assign(segment=[0, 0, 1, 1])
    found = unready_series(frame, input_width=3, features=["value"], frequency="trading-days")
    assert [(item.series_id, item.reason) for item in found] == [("x", "gap")]
    assert "2024-01-03T00:00:00+00:00 is followed by 2024-02-05" in found[0].detail
    assert unready_series(frame, input_width=2, features=["value"], frequency="trading-days") == []


def test_unsorted_rows_and_naive_times_are_read_as_sorted_utc() -> None:
    frame = one_of_each()
    shuffled = frame.sample(frac=1.0, random_state=0)
    naive = shuffled.assign(timestamp=shuffled["timestamp"].dt.tz_localize(None))
    arguments = {"input_width": 3, "features": ["value"], "frequency": "D"}
    expected = unready_series(frame, **arguments, as_of=DAYS[-1])
    assert unready_series(shuffled, **arguments, as_of=DAYS[-1]) == expected
    assert unready_series(naive, **arguments, as_of=DAYS[-1].tz_localize(None)) == expected
