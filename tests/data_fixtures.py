"""Fixtures for the data-layer tests: real SPY bars, yfinance-shaped frames and Yahoo chart payloads.

Real files come from tests/data when the repository ships them, else from the shared data folder
($ORB_SHARED_DATA, default ../shared/data beside the repository); tests skip when neither has them.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orb.sessions import schedule

REPO_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("ORB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
NY = "America/New_York"


def real(name: str) -> Path:
    """A real bar file by name (tests/data first, then shared/data/real); skip the test when absent."""
    for folder in (REPO_DATA, SHARED_DATA / "real"):
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"real data file {name} not available")


def yahoo_recording(name: str) -> Path:
    """A recorded Yahoo HTTP exchange from shared/data/yahoo; skip the test when absent."""
    path = SHARED_DATA / "yahoo" / name
    if not path.exists():
        pytest.skip(f"recorded Yahoo response {path} not available")
    return path


@lru_cache(maxsize=1)
def real_sessions() -> tuple[pd.DataFrame, ...]:
    """The 43 real SPY regular-hours sessions of Jan and Mar 2011 (390 bars each, UTC bar start)."""
    frame = pd.read_parquet(real("spy_1min_2011-01_2011-03_utc_barstart.parquet")).set_index("timestamp")
    local = frame.index.tz_convert(NY)
    minutes = local.hour * 60 + local.minute
    rth = frame[(minutes >= 570) & (minutes < 960)]
    days = rth.index.tz_convert(NY).date
    return tuple(group for _, group in rth.groupby(days))


def restamped_bars(first: date, last: date, *, interval_minutes: int = 1) -> pd.DataFrame:
    """Real SPY values (session i of 2011 for the i-th session) stamped on the XNYS sessions first..last.

    Returns a lower-case OHLCV frame indexed by tz-aware New York bar starts; early closes keep the
    first 210 minutes. Coarser intervals aggregate the real minutes.
    """
    real = real_sessions()
    parts = []
    for i, (_, row) in enumerate(schedule(first, last).iterrows()):
        source = real[i % len(real)]
        n = int((row["close"] - row["open"]) / pd.Timedelta(minutes=1))
        src = source.iloc[:n]
        stamps = pd.DatetimeIndex(row["open"] + pd.to_timedelta(np.arange(n), unit="min")).tz_convert(NY)
        part = pd.DataFrame(
            src[["open", "high", "low", "close", "volume"]].to_numpy(),
            index=stamps,
            columns=["open", "high", "low", "close", "volume"],
        )
        if interval_minutes > 1:
            part = part.resample(f"{interval_minutes}min", origin=stamps[0]).agg(
                {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
            )
        parts.append(part)
    out = pd.concat(parts) if parts else pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
    return out.astype({"volume": "int64"})


def yf_history_frame(bars: pd.DataFrame, *, actions: bool = False) -> pd.DataFrame:
    """The shape of `Ticker.history(auto_adjust=False, actions=False)`; actions=True: 8 default columns."""
    out = pd.DataFrame(
        {
            "Open": bars["open"].astype("float64"),
            "High": bars["high"].astype("float64"),
            "Low": bars["low"].astype("float64"),
            "Close": bars["close"].astype("float64"),
        }
    )
    if actions:
        out = out.assign(
            Volume=bars["volume"].astype("int64"),
            Dividends=0.0,
            **{"Stock Splits": 0.0, "Capital Gains": 0.0},
        )
    else:
        out = out.assign(**{"Adj Close": out["Close"]}, Volume=bars["volume"].astype("int64"))
    out.index = pd.DatetimeIndex(bars.index, name="Datetime")
    return out


def yf_download_frame(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The shape of `yf.download(symbol, ...)`: (Price, Ticker) MultiIndex columns in alphabetical order."""
    flat = {
        "Close": bars["close"].astype("float64"),
        "High": bars["high"].astype("float64"),
        "Low": bars["low"].astype("float64"),
        "Open": bars["open"].astype("float64"),
        "Volume": bars["volume"].astype("int64"),
    }
    out = pd.DataFrame({(name, symbol): values for name, values in flat.items()})
    out.columns = pd.MultiIndex.from_tuples(list(out.columns), names=["Price", "Ticker"])
    out.index = pd.DatetimeIndex(bars.index, name="Datetime")
    return out


def yf_empty_frame() -> pd.DataFrame:
    """yfinance's `utils.empty_df()`: 0 rows, 6 columns including Adj Close, index named Date."""
    out = pd.DataFrame(
        index=[], data={c: np.nan for c in ("Open", "High", "Low", "Close", "Adj Close", "Volume")}
    )
    out.index.name = "Date"
    return out


def chart_payload(symbol: str, bars: pd.DataFrame, sessions: pd.DataFrame) -> dict:
    """A Yahoo v8 chart response (YFINANCE.md 2.1) holding `bars` (epoch-second bar starts)."""
    periods = [
        [
            {
                "timezone": "EST",
                "start": int(r.open.timestamp()),
                "end": int(r.close.timestamp()),
                "gmtoffset": -18000,
            }
        ]
        for r in sessions.itertuples()
    ]
    regular = periods[-1][0] if periods else {"timezone": "EST", "start": 0, "end": 0, "gmtoffset": -18000}
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "PCX",
        "instrumentType": "ETF",
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": NY,
        "priceHint": 2,
        "currentTradingPeriod": {"pre": regular, "regular": regular, "post": regular},
        "tradingPeriods": periods,
        "dataGranularity": "1m",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    stamps = [int(t.timestamp()) for t in bars.index]
    quote = {c: [float(v) for v in bars[c]] for c in ("open", "high", "low", "close")}
    quote["volume"] = [int(v) for v in bars["volume"]]
    return {
        "chart": {
            "result": [{"meta": meta, "timestamp": stamps, "indicators": {"quote": [quote]}}],
            "error": None,
        }
    }


class CountingFetcher:
    """A fetcher with fetch_yahoo's signature answering from `make(...)`; records each call."""

    def __init__(self, make):
        self.make = make
        self.calls: list[tuple[str, date, date, str]] = []

    def __call__(self, symbol: str, start: date, end: date, interval: str) -> pd.DataFrame:
        self.calls.append((symbol, start, end, interval))
        return self.make(symbol, start, end, interval)


def real_history_fetcher(symbol: str, start: date, end: date, interval: str) -> pd.DataFrame:
    """yfinance history-shaped real bars for the sessions in [start, end) (end exclusive)."""
    last = pd.Timestamp(end) - pd.Timedelta(days=1)
    minutes = int(interval.removesuffix("m"))
    bars = restamped_bars(start, last.date(), interval_minutes=minutes)
    return yf_history_frame(bars) if len(bars) else yf_empty_frame()
