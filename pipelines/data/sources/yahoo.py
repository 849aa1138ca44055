"""Daily prices from Yahoo Finance through the `yfinance` package, cached with their fetch time.

Yahoo's data change (late corrections, dividend adjustments) and the service is sometimes
unreachable, so every response is kept under the raw-data folder as Parquet with a JSON record
of when and how it was fetched. A run reuses the cache fetched on the same UTC day, and falls
back to an older one, with a note saying so, when Yahoo cannot be reached.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.data.storage import write_atomically
from pipelines.runtime.contract import DataValidationError, SourceTable

VALID_PERIODS = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")
"""The `period` values yfinance 1.7 documents for `yfinance.download`."""
DEFAULT_PERIOD = "1mo"
"""What yfinance fetches when neither dates nor a period are given; named so the cache says so."""
TICKER_PATTERN = re.compile(r"^[A-Za-z0-9.^=-]{1,15}$")
"""Yahoo symbols (AAPL, BRK-B, ^GSPC, EURUSD=X, SAP.DE); also safe inside a cache file name."""
PRICE_COLUMNS = ("open", "high", "low", "close")
OUTPUT_COLUMNS = ("date", "ticker", *PRICE_COLUMNS, "volume")
MAX_KEY_TICKERS = 80
"""Longest ticker part of a cache file name before it is shortened with a hash."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Request:
    """Validated arguments: upper-case sorted tickers, ISO dates and the effective period."""

    tickers: tuple[str, ...]
    start: str | None
    end: str | None
    period: str | None
    notes: tuple[str, ...]

    @property
    def key(self) -> str:
        """A readable, deterministic file name, e.g. `AAPL_MSFT__from-2024-01-02__to-2024-02-01`.

        Long ticker lists keep their first five symbols and a hash of all of them.
        """
        joined = "_".join(self.tickers)
        if len(joined) > MAX_KEY_TICKERS:
            digest = hashlib.sha256(",".join(self.tickers).encode()).hexdigest()[:12]
            joined = f"{'_'.join(self.tickers[:5])}_and-{len(self.tickers) - 5}-more-{digest}"
        parts = [joined]
        if self.start:
            parts.append(f"from-{self.start}")
        if self.end:
            parts.append(f"to-{self.end}")
        if self.period:
            parts.append(f"period-{self.period}")
        return "__".join(parts)

    def describe(self) -> str:
        pieces = []
        if self.start:
            pieces.append(f"from {self.start}")
        if self.end:
            pieces.append(f"to {self.end} (exclusive)")
        if self.period:
            pieces.append(f"period {self.period}")
        return ", ".join(pieces)


@dataclass(frozen=True)
class _Cache:
    frame: pd.DataFrame
    fetched_at: datetime
    missing: tuple[str, ...]
    parquet: Path


def load_prices(
    tickers: Sequence[str],
    *,
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    cache_directory: Path,
    refresh: bool = False,
    now: Callable[[], datetime] = _utc_now,
    download: Callable[..., pd.DataFrame] | None = None,
) -> SourceTable:
    """Fetches daily prices of `tickers` from Yahoo Finance as one long table, through a cache.

    Prices are adjusted for splits and dividends (`auto_adjust=True`, yfinance's default), so
    `close` is the adjusted close. The response is cached in `cache_directory` as
    `<key>.parquet` plus `<key>.json` (fetch time, arguments, yfinance version, row count); the
    key is built from the sorted tickers and the dates or period, so the same request finds the
    same files. A cache fetched on the same UTC day (per `now()`) is reused without asking
    Yahoo unless `refresh` is set; an older one is fetched again. When the fetch fails (an
    exception from yfinance, or no rows for any ticker, which is how yfinance reports being
    offline) and an older cache exists, that cache is returned with a note saying it is stale
    and when it was fetched, so a run can go on offline with known, dated data.

    Args:
        tickers: Yahoo symbols, e.g. `["AAPL", "MSFT"]`; a comma-separated string also works.
        start: first day, `YYYY-MM-DD`, inclusive.
        end: last day, `YYYY-MM-DD`, exclusive (yfinance's convention).
        period: one of `VALID_PERIODS`; ignored when both `start` and `end` are given (explicit
            dates win over a catalog default). Without dates or period, `1mo` is fetched.
        cache_directory: where responses are cached; created when first written.
        refresh: fetch again even when today's cache exists.
        now: the current time (UTC); injectable for tests.
        download: called like `yfinance.download`; None means `yfinance.download`, looked up at
            call time so tests can replace it.

    Returns:
        Columns `date` (YYYY-MM-DD text), `ticker`, `open`, `high`, `low`, `close`, `volume`,
        one row per ticker and trading day, sorted by ticker then date; the notes give the fetch
        time, whether the cache was used, and tickers for which nothing came back.

    Raises:
        DataValidationError: an invalid argument (naming the parameter), or no prices for any
            ticker and no cache to fall back to (naming the tickers and the reason).
    """
    request = _validate_arguments(tickers, start, end, period)
    current = _as_utc(now())
    parquet_path = Path(cache_directory) / f"{request.key}.parquet"
    metadata_path = Path(cache_directory) / f"{request.key}.json"
    cache_notes: list[str] = []
    cached = _read_cache(parquet_path, metadata_path, request, cache_notes)
    if cached is not None and not refresh and cached.fetched_at.date() == current.date():
        note = (
            f"cache: reused {parquet_path.name}, fetched {_iso(cached.fetched_at)} "
            "(same UTC day; refresh to fetch again)"
        )
        return _table(
            request, cached.frame, cached.fetched_at, cached.missing, [*cache_notes, note]
        )

    fetch = download if download is not None else _yfinance_download()
    try:
        raw = fetch(list(request.tickers), **_download_arguments(request))
    except Exception as error:  # yfinance and its HTTP stack raise many unrelated types
        reason = f"{type(error).__name__}: {error}"
        return _fallback(request, cached, cache_notes, f"yfinance failed: {reason}")
    prices = _long_format(raw, request)
    if prices.empty:
        reason = (
            "no prices came back for any ticker (misspelt or delisted symbols, no trading "
            "in the range, or Yahoo Finance could not be reached)"
        )
        return _fallback(request, cached, cache_notes, reason)
    found = set(prices["ticker"])
    missing = tuple(ticker for ticker in request.tickers if ticker not in found)
    _write_cache(parquet_path, metadata_path, prices, request, current, missing)
    note = f"cache: fetched from Yahoo Finance and written to {parquet_path.name}"
    return _table(request, prices, current, missing, [*cache_notes, note])


# --------------------------------------------------------------------------------------------
# Arguments


def _validate_arguments(
    tickers: Sequence[str], start: str | None, end: str | None, period: str | None
) -> _Request:
    if isinstance(tickers, str):
        tickers = [part for part in re.split(r"[,\s]+", tickers) if part]
    symbols = []
    for ticker in tickers:
        text = str(ticker).strip()
        if not isinstance(ticker, str) or not TICKER_PATTERN.match(text):
            raise DataValidationError(
                f"parameter tickers: {ticker!r} is not a ticker symbol (1 to 15 letters, digits "
                "or . ^ = -, e.g. AAPL, BRK-B, ^GSPC)"
            )
        symbols.append(text.upper())
    if not symbols:
        raise DataValidationError(
            "parameter tickers: expected at least one ticker symbol (e.g. AAPL,MSFT), got none"
        )
    start_date = _parse_date("start", start)
    end_date = _parse_date("end", end)
    if start_date is not None and end_date is not None and start_date >= end_date:
        raise DataValidationError(
            f"parameter start: {start_date} is not before end {end_date} (end is exclusive)"
        )
    notes = []
    if period is not None:
        period = str(period).strip().lower()
        if period not in VALID_PERIODS:
            raise DataValidationError(
                f"parameter period: expected one of {', '.join(VALID_PERIODS)}, got {period!r}"
            )
        if start_date is not None and end_date is not None:
            notes.append(f"period {period} ignored: start and end were given")
            period = None
    elif start_date is None and end_date is None:
        period = DEFAULT_PERIOD
    return _Request(
        tickers=tuple(sorted(set(symbols))),
        start=start_date.isoformat() if start_date else None,
        end=end_date.isoformat() if end_date else None,
        period=period,
        notes=tuple(notes),
    )


def _parse_date(name: str, value: Any) -> date | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataValidationError(
            f"parameter {name}: expected a date as YYYY-MM-DD, got {value!r}"
        ) from None


def _as_utc(moment: datetime) -> datetime:
    # A naive clock reading is taken as UTC, the zone the cache's day boundary uses.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# yfinance


def _yfinance_download() -> Callable[..., pd.DataFrame]:
    import yfinance  # imported late: it is slow to import and only this source needs it

    return yfinance.download


def _yfinance_version() -> str:
    try:
        return importlib.metadata.version("yfinance")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _download_arguments(request: _Request) -> dict[str, Any]:
    """Pins every option whose default shapes the response, so a yfinance upgrade cannot."""
    arguments: dict[str, Any] = {
        "start": request.start,
        "end": request.end,
        "interval": "1d",
        "auto_adjust": True,
        "actions": False,
        "group_by": "column",
        "multi_level_index": True,
        "keepna": False,
        "progress": False,
        "threads": True,
    }
    if request.period is not None:
        arguments["period"] = request.period
    return arguments


def _long_format(raw: pd.DataFrame | None, request: _Request) -> pd.DataFrame:
    """Turns yfinance's wide frame (columns `Price` x `Ticker`) into one row per ticker-day.

    yfinance 1.7 returns, with `group_by="column"`, MultiIndex columns named
    `["Price", "Ticker"]` (e.g. `("Close", "AAPL")`) over a tz-naive DatetimeIndex named
    `Date`, reindexed to the union of all tickers' days: a day one ticker did not trade is a
    row of NaN for it. A ticker that failed has only NaN (plus an `Adj Close` column).
    """
    if raw is None or raw.empty:
        return pd.DataFrame({column: [] for column in OUTPUT_COLUMNS})
    if isinstance(raw.columns, pd.MultiIndex):
        pieces = [_one_ticker(block, str(ticker)) for ticker, block in _split_by_ticker(raw)]
    elif len(request.tickers) == 1:
        pieces = [_one_ticker(raw, request.tickers[0])]
    else:
        raise DataValidationError(
            f"yfinance:{','.join(request.tickers)}: unexpected response: one column level "
            f"({', '.join(map(str, raw.columns))}) for several tickers"
        )
    prices = pd.concat(pieces, ignore_index=True)
    prices = prices.loc[~prices[list(PRICE_COLUMNS)].isna().all(axis=1)]
    prices = prices.sort_values(["ticker", "date"], kind="stable")
    return prices.reset_index(drop=True)


def _split_by_ticker(raw: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    columns = raw.columns
    if columns.nlevels != 2:
        raise DataValidationError(
            f"yfinance: unexpected response: {columns.nlevels} column levels, expected 2"
        )
    if "Ticker" in columns.names:
        level = columns.names.index("Ticker")
    else:
        # Older yfinance left the levels unnamed; the ticker level is the one without 'Close'.
        level = 1 if "Close" in columns.get_level_values(0) else 0
    tickers = list(dict.fromkeys(columns.get_level_values(level)))
    return [(ticker, raw.xs(ticker, axis=1, level=level)) for ticker in tickers]


def _one_ticker(block: pd.DataFrame, ticker: str) -> pd.DataFrame:
    block = block.set_axis([str(column).strip().lower() for column in block.columns], axis=1)
    absent = [column for column in (*PRICE_COLUMNS, "volume") if column not in block.columns]
    if absent:
        raise DataValidationError(
            f"yfinance:{ticker}: unexpected response: no column(s) {', '.join(absent)} "
            f"(got {', '.join(map(str, block.columns))})"
        )
    index = pd.DatetimeIndex(block.index)
    if index.tz is not None:
        # Daily bars are stamped at midnight exchange time; the local wall date is the day.
        index = index.tz_localize(None)
    frame = pd.DataFrame(
        {
            "date": index.strftime("%Y-%m-%d"),
            "ticker": ticker.upper(),
            **{
                column: pd.to_numeric(block[column], errors="coerce").to_numpy(dtype="float64")
                for column in (*PRICE_COLUMNS, "volume")
            },
        }
    )
    return frame


# --------------------------------------------------------------------------------------------
# Cache


def _read_cache(
    parquet_path: Path, metadata_path: Path, request: _Request, notes: list[str]
) -> _Cache | None:
    """The cached response for this request, or None (with a note when it was unreadable)."""
    if not (parquet_path.exists() and metadata_path.exists()):
        return None
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        fetched_at = _as_utc(datetime.fromisoformat(metadata["fetched_at"]))
        if tuple(metadata["tickers"]) != request.tickers:
            # Shortened keys of long ticker lists could collide; never serve another request.
            return None
        frame = pd.read_parquet(parquet_path)
    except Exception as error:  # JSON, key, date and Parquet errors all mean "not usable"
        notes.append(f"cache: ignored unreadable {parquet_path.name}: {error}")
        return None
    if list(frame.columns) != list(OUTPUT_COLUMNS):
        notes.append(f"cache: ignored {parquet_path.name}: unexpected columns")
        return None
    return _Cache(
        frame=frame,
        fetched_at=fetched_at,
        missing=tuple(metadata.get("missing", ())),
        parquet=parquet_path,
    )


def _write_cache(
    parquet_path: Path,
    metadata_path: Path,
    prices: pd.DataFrame,
    request: _Request,
    fetched_at: datetime,
    missing: tuple[str, ...],
) -> None:
    parquet_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "fetched_at": _iso(fetched_at),
        "tickers": list(request.tickers),
        "start": request.start,
        "end": request.end,
        "period": request.period,
        "yfinance_version": _yfinance_version(),
        "rows": len(prices),
        "missing": list(missing),
    }
    # Parquet first, JSON last: the JSON says "complete", so it must never precede its data.
    write_atomically(parquet_path, lambda path: prices.to_parquet(path, index=False))
    write_atomically(
        metadata_path,
        lambda path: path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8"),
    )


# --------------------------------------------------------------------------------------------
# Results


def _fallback(
    request: _Request, cached: _Cache | None, cache_notes: list[str], reason: str
) -> SourceTable:
    """Serves the older cache when the fetch failed, or raises naming tickers and reason."""
    tickers = ", ".join(request.tickers)
    if cached is None:
        raise DataValidationError(
            f"yfinance:{','.join(request.tickers)}: could not get prices for {tickers} "
            f"({request.describe()}): {reason}; check the ticker symbols and the connection, "
            "or pass --source PATH to a CSV with columns date, ticker, open, high, low, close, "
            "volume"
        )
    note = f"cache: STALE: {reason}; using {cached.parquet.name} fetched {_iso(cached.fetched_at)}"
    return _table(request, cached.frame, cached.fetched_at, cached.missing, [*cache_notes, note])


def _table(
    request: _Request,
    prices: pd.DataFrame,
    fetched_at: datetime,
    missing: tuple[str, ...],
    notes: list[str],
) -> SourceTable:
    found = [ticker for ticker in request.tickers if ticker not in missing]
    all_notes = [
        f"fetched {_iso(fetched_at)} from Yahoo Finance ({request.describe()}); prices adjusted "
        "for splits and dividends",
        *request.notes,
        *notes,
    ]
    if missing:
        all_notes.append(
            f"no prices came back for {', '.join(missing)}; continuing with {', '.join(found)}"
        )
    frame = prices.reset_index(drop=True)
    return SourceTable(
        frame=frame,
        origin=f"yfinance:{','.join(request.tickers)} (fetched {_iso(fetched_at)})",
        first_data_line=None,
        notes=tuple(all_notes),
    )
