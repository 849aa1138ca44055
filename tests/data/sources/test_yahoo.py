"""`load_prices` on a recorded yfinance 1.7 response: long format, cache, errors (no network)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.data.catalog import get_entry
from pipelines.data.sources import load_source
from pipelines.data.sources.yahoo import OUTPUT_COLUMNS, load_prices
from pipelines.data.validate import validate_table
from pipelines.runtime.contract import DataValidationError

FIXTURE = (
    Path(__file__).parents[2] / "fixtures" / "yfinance" / "aapl_msft_2024-01-02_2024-01-17.csv"
)
START, END = "2024-01-02", "2024-01-17"
TRADING_DAYS = [
    "2024-01-02",
    "2024-01-03",
    "2024-01-04",
    "2024-01-05",
    "2024-01-08",
    "2024-01-09",
    "2024-01-10",
    "2024-01-11",
    "2024-01-12",
    "2024-01-16",
]
DAY_ONE = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
CACHE_KEY = "AAPL_MSFT__from-2024-01-02__to-2024-01-17"


def recorded_frame() -> pd.DataFrame:
    """The frame `yfinance.download(["AAPL", "MSFT"], ...)` returns, rebuilt from its CSV."""
    frame = pd.read_csv(FIXTURE, header=[0, 1], index_col=0, skiprows=[2])
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index), name="Date")
    frame.columns = frame.columns.set_names(["Price", "Ticker"])
    # yfinance casts each ticker's Volume to int64; only the reindexed MSFT (NaN day) is float.
    frame[("Volume", "AAPL")] = frame[("Volume", "AAPL")].astype("int64")
    return frame


class FakeDownload:
    """Stands in for `yfinance.download`: returns a frame (or raises) and records each call."""

    def __init__(self, frame: pd.DataFrame | None = None, error: Exception | None = None) -> None:
        self.frame = recorded_frame() if frame is None else frame
        self.error = error
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, tickers: list[str], **kwargs: Any) -> pd.DataFrame:
        self.calls.append((tickers, kwargs))
        if self.error is not None:
            raise self.error
        return self.frame.copy()


def clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def load(
    tmp_path: Path, download: FakeDownload, *, now: datetime = DAY_ONE, **overrides: Any
) -> Any:
    arguments: dict[str, Any] = {"tickers": ["MSFT", "AAPL"], "start": START, "end": END}
    arguments.update(overrides)
    return load_prices(
        **arguments, cache_directory=tmp_path / "yfinance", now=clock(now), download=download
    )


def test_recorded_frame_has_the_shape_yfinance_itself_assembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Feed yfinance's own download() per-ticker histories (Ticker.history is the only part
    # that talks to Yahoo) and compare what it assembles with the fixture loader's frame.
    yfinance_multi = pytest.importorskip("yfinance.multi")
    recorded = recorded_frame()

    class OfflineTicker:
        def __init__(self, ticker: str) -> None:
            self.ticker = ticker
            self._price_history = None

        def history(self, **kwargs: Any) -> pd.DataFrame:
            block = recorded.xs(self.ticker, axis=1, level="Ticker").dropna(how="all")
            block = block[["Open", "High", "Low", "Close", "Volume"]]
            block.index = block.index.tz_localize("America/New_York")
            return block.astype({"Volume": "int64"})

    monkeypatch.setattr(yfinance_multi, "Ticker", OfflineTicker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assembled = yfinance_multi.download(
            ["AAPL", "MSFT"], start=START, end=END, auto_adjust=True, progress=False
        )

    assert assembled.columns.names == ["Price", "Ticker"]
    assert assembled.index.name == "Date"
    assert assembled.index.tz is None
    pd.testing.assert_frame_equal(assembled, recorded, check_index_type=False)


def test_long_format_values_order_and_origin(tmp_path: Path) -> None:
    download = FakeDownload()

    table = load(tmp_path, download)

    frame = table.frame
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert list(frame.index) == list(range(19))  # 10 AAPL days + 9 MSFT days (NaN row dropped)
    assert list(frame["ticker"]) == ["AAPL"] * 10 + ["MSFT"] * 9
    assert list(frame["date"][:10]) == TRADING_DAYS
    assert list(frame["date"][10:]) == [day for day in TRADING_DAYS if day != "2024-01-10"]
    first = frame.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        186.03,
        187.52,
        182.61,
        184.08,
        82488700.0,
    )
    last = frame.iloc[-1]
    assert (last["ticker"], last["date"], last["close"], last["volume"]) == (
        "MSFT",
        "2024-01-16",
        386.86,
        28899500.0,
    )
    assert table.origin == "yfinance:AAPL,MSFT (fetched 2026-11-24T10:00:00Z)"
    assert table.first_data_line is None
    assert any("fetched 2026-11-24T10:00:00Z" in note for note in table.notes)
    assert any("written to" in note for note in table.notes)

    tickers, kwargs = download.calls[0]
    assert tickers == ["AAPL", "MSFT"]
    assert kwargs["start"] == START and kwargs["end"] == END and "period" not in kwargs
    assert kwargs["auto_adjust"] is True and kwargs["progress"] is False
    assert kwargs["group_by"] == "column" and kwargs["multi_level_index"] is True


def test_cache_files_are_written_with_metadata(tmp_path: Path) -> None:
    load(tmp_path, FakeDownload())

    cache = tmp_path / "yfinance"
    assert sorted(path.name for path in cache.iterdir()) == [
        f"{CACHE_KEY}.json",
        f"{CACHE_KEY}.parquet",
    ]
    metadata = json.loads((cache / f"{CACHE_KEY}.json").read_text())
    assert metadata["fetched_at"] == "2026-11-24T10:00:00Z"
    assert metadata["tickers"] == ["AAPL", "MSFT"]
    assert (metadata["start"], metadata["end"], metadata["period"]) == (START, END, None)
    assert metadata["yfinance_version"] == "1.7.0"
    assert metadata["rows"] == 19
    assert len(pd.read_parquet(cache / f"{CACHE_KEY}.parquet")) == 19


def test_cache_is_reused_on_the_same_utc_day(tmp_path: Path) -> None:
    download = FakeDownload()
    first = load(tmp_path, download)

    later = load(
        tmp_path,
        download,
        now=datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
        tickers=["aapl", "MSFT", "AAPL"],
    )  # same request, spelt differently

    assert len(download.calls) == 1
    pd.testing.assert_frame_equal(later.frame, first.frame)
    assert later.origin == first.origin  # still the time of the fetch, not of the read
    assert any(note.startswith("cache: reused") for note in later.notes)


def test_cache_from_an_earlier_day_is_refreshed(tmp_path: Path) -> None:
    download = FakeDownload()
    load(tmp_path, download)

    table = load(tmp_path, download, now=datetime(2026, 11, 25, 0, 1, tzinfo=UTC))

    assert len(download.calls) == 2
    assert table.origin == "yfinance:AAPL,MSFT (fetched 2026-11-25T00:01:00Z)"
    metadata = json.loads((tmp_path / "yfinance" / f"{CACHE_KEY}.json").read_text())
    assert metadata["fetched_at"] == "2026-11-25T00:01:00Z"


def test_refresh_fetches_again_on_the_same_day(tmp_path: Path) -> None:
    download = FakeDownload()
    load(tmp_path, download)

    load(tmp_path, download, refresh=True)

    assert len(download.calls) == 2


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"tickers": []}, "parameter tickers"),
        ({"tickers": ["AAPL", "MS FT"]}, "parameter tickers: 'MS FT'"),
        ({"tickers": ["../../etc/passwd"]}, "parameter tickers"),
        ({"tickers": ["A" * 16]}, "parameter tickers"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "parameter start: 2024-02-01 is not before"),
        ({"start": "2024-01-05", "end": "2024-01-05"}, "parameter start"),
        ({"start": "2024-13-01"}, "parameter start: expected a date"),
        ({"end": "yesterday"}, "parameter end: expected a date"),
        ({"period": "7y"}, "parameter period: expected one of 1d, 5d"),
    ],
)
def test_invalid_arguments_name_the_parameter_before_any_download(
    tmp_path: Path, overrides: dict[str, Any], parameter: str
) -> None:
    download = FakeDownload()

    with pytest.raises(DataValidationError) as caught:
        load(tmp_path, download, **overrides)

    assert str(caught.value).startswith(parameter)
    assert download.calls == []
    assert not (tmp_path / "yfinance").exists()


def test_period_is_passed_and_named_in_the_cache_key(tmp_path: Path) -> None:
    download = FakeDownload()

    load_prices(
        ["MSFT", "AAPL"],
        period="5Y",
        cache_directory=tmp_path,
        now=clock(DAY_ONE),
        download=download,
    )

    _, kwargs = download.calls[0]
    assert (kwargs["start"], kwargs["end"], kwargs["period"]) == (None, None, "5y")
    assert (tmp_path / "AAPL_MSFT__period-5y.parquet").exists()


def test_download_exception_without_cache_names_tickers_and_reason(tmp_path: Path) -> None:
    download = FakeDownload(error=ConnectionError("Failed to resolve 'query2.finance.yahoo.com'"))

    with pytest.raises(DataValidationError) as caught:
        load(tmp_path, download)

    message = str(caught.value)
    assert "AAPL, MSFT" in message
    assert "ConnectionError: Failed to resolve 'query2.finance.yahoo.com'" in message
    assert "--source" in message


@pytest.mark.parametrize(
    ("failing", "reason"),
    [
        (FakeDownload(error=TimeoutError("read timed out")), "TimeoutError: read timed out"),
        # Offline, yfinance itself swallows the errors and returns a frame without rows.
        (FakeDownload(frame=recorded_frame().iloc[0:0]), "no prices came back for any ticker"),
    ],
    ids=["exception", "empty-response"],
)
def test_failed_fetch_falls_back_to_a_stale_cache_with_a_note(
    tmp_path: Path, failing: FakeDownload, reason: str
) -> None:
    first = load(tmp_path, FakeDownload())

    table = load(tmp_path, failing, now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    assert len(failing.calls) == 1
    pd.testing.assert_frame_equal(table.frame, first.frame)
    assert table.origin == "yfinance:AAPL,MSFT (fetched 2026-11-24T10:00:00Z)"
    stale = [note for note in table.notes if "STALE" in note]
    assert len(stale) == 1
    assert reason in stale[0]
    assert "fetched 2026-11-24T10:00:00Z" in stale[0]
    metadata = json.loads((tmp_path / "yfinance" / f"{CACHE_KEY}.json").read_text())
    assert metadata["fetched_at"] == "2026-11-24T10:00:00Z"  # the old cache is kept as is


def test_empty_response_is_an_error_naming_every_ticker(tmp_path: Path) -> None:
    # Offline, yfinance logs per-ticker errors and returns a frame with no rows.
    empty = recorded_frame().iloc[0:0]

    with pytest.raises(DataValidationError) as caught:
        load(tmp_path, FakeDownload(frame=empty))

    assert "could not get prices for AAPL, MSFT" in str(caught.value)
    assert "no prices came back for any ticker" in str(caught.value)
    assert not (tmp_path / "yfinance").exists()


def test_one_ticker_without_prices_is_a_note_not_an_error(tmp_path: Path) -> None:
    # What yfinance 1.7 returns when one ticker fails: its columns (plus 'Adj Close') are NaN.
    frame = recorded_frame().drop(columns="MSFT", level="Ticker")
    for price in ("Adj Close", "Close", "High", "Low", "Open", "Volume"):
        frame[(price, "XYZQ")] = np.nan
    frame = frame.sort_index(axis=1)

    table = load(tmp_path, FakeDownload(frame=frame), tickers=["AAPL", "XYZQ"])

    assert set(table.frame["ticker"]) == {"AAPL"}
    assert len(table.frame) == 10
    assert "no prices came back for XYZQ; continuing with AAPL" in table.notes
    metadata = json.loads(
        (tmp_path / "yfinance" / "AAPL_XYZQ__from-2024-01-02__to-2024-01-17.json").read_text()
    )
    assert metadata["missing"] == ["XYZQ"]
    # The note survives a reuse of the cache.
    again = load(tmp_path, FakeDownload(error=AssertionError("cached")), tickers=["AAPL", "XYZQ"])
    assert "no prices came back for XYZQ; continuing with AAPL" in again.notes


def test_yfinance_catalog_entry_loads_and_validates_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yfinance = pytest.importorskip("yfinance")
    download = FakeDownload()
    monkeypatch.setattr(yfinance, "download", download)
    entry = get_entry("yfinance")

    table = load_source(
        entry,
        raw_directory=tmp_path,
        parameters={"tickers": "AAPL,MSFT", "start": START, "end": END},
    )
    result = validate_table(table, entry.schema(), entry.policy())

    assert len(download.calls) == 1
    assert (tmp_path / "yfinance" / f"{CACHE_KEY}.parquet").exists()
    # The catalog's default period gives way to the dates the user asked for.
    assert "period" not in download.calls[0][1]
    frame = result.frame
    assert sorted(frame["series_id"].unique()) == ["AAPL", "MSFT"]
    assert result.report.series_read == 2
    assert result.report.frequency == "trading-days"
    # MSFT's missing 2024-01-10 is a one-day gap, filled forward from 2024-01-09.
    assert (frame["series_id"] == "MSFT").sum() == 10
    msft = frame.loc[frame["series_id"] == "MSFT"].set_index("timestamp")
    assert msft.loc[pd.Timestamp("2024-01-10", tz="UTC"), "close"] == 371.91
    assert result.report.values_filled["close"] == 1
