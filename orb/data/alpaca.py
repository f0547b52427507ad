"""Alpaca historical 1-minute stock bars through alpaca-py (`StockHistoricalDataClient`).

Keys come from APCA_API_KEY_ID / APCA_API_SECRET_KEY; the base URL from `data.alpaca.url`, else
$ORB_ALPACA_URL, else Alpaca's. Every HTTP attempt (each page too) goes through a `PacedAdapter`, so
the plan's requests per minute are respected up front and 429s wait as long as Retry-After says.
Bars are requested a month at a time (a few 10,000-bar pages each), split-adjusted unless
`data.adjustment: raw`, feed `sip` unless `data.alpaca.feed` says otherwise.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from time import sleep as _sleep
from zoneinfo import ZoneInfo

import pandas as pd
import requests

from orb.config import Config
from orb.data.bars import empty_bars
from orb.data.vendor import PacedAdapter, Policy, bucket_for, frame_from_columns, unreachable
from orb.errors import DataError, NoDataError, SourceUnavailableError
from orb.sessions import schedule

KEY_ENV, SECRET_ENV, URL_ENV = "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "ORB_ALPACA_URL"
CHUNK_SESSIONS = 21
REALTIME_DELAY = timedelta(minutes=16)  # free plans: SIP history ends 15 minutes ago


class AlpacaSource:
    """Fetches bars of one symbol at a time; one client (and adapter) per source object."""

    name = "alpaca"

    def __init__(self, config: Config, sleep=None):
        from alpaca.data.historical import StockHistoricalDataClient

        settings = config.data.alpaca
        key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if not key or not secret:
            raise DataError(
                f"alpaca needs an API key: set {KEY_ENV} and {SECRET_ENV} (free keys at "
                f"https://app.alpaca.markets, 'API Keys'), or use --data PATH or --synthetic"
            )
        bucket = bucket_for("alpaca", settings.requests_per_minute)
        policy = Policy("alpaca", settings.retries, settings.backoff_seconds, bucket, sleep or _sleep)
        self.config = config
        self.adapter = PacedAdapter(policy)
        url = settings.url or os.environ.get(URL_ENV) or None
        self.client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
        self.client._retry = 0  # retries happen in the adapter, which honours Retry-After
        self.client._session.mount("https://", self.adapter)
        self.client._session.mount("http://", self.adapter)
        self.folder = f"alpaca-{config.data.adjustment}-{settings.feed}"
        self.warnings: list[str] = []
        rel_volume = config.confluence.enabled and config.confluence.rel_volume.enabled
        if settings.feed == "iex" and rel_volume:
            self.warnings.append(
                "alpaca feed iex carries one venue's volume (a few % of the total), which distorts "
                "confluence.rel_volume; use data.alpaca.feed: sip"
            )

    @property
    def requests(self) -> int:
        return self.adapter.attempts

    def fetch(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        """All-hours bars of the sessions first..last (bar contract)."""
        sessions = [d.date() for d in schedule(first, last, self.config.session.calendar).index]
        frames = [
            self._fetch_chunk(symbol, chunk[0], chunk[-1])
            for chunk in (sessions[i : i + CHUNK_SESSIONS] for i in range(0, len(sessions), CHUNK_SESSIONS))
        ]
        return pd.concat(frames) if frames else empty_bars()

    def _fetch_chunk(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        from alpaca.common.enums import Sort
        from alpaca.common.exceptions import APIError
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        tz = ZoneInfo(self.config.session.timezone)
        start = datetime.combine(first, time(0, 0), tz).astimezone(UTC)
        end = min(
            datetime.combine(last, time(23, 59), tz).astimezone(UTC), datetime.now(UTC) - REALTIME_DELAY
        )
        if end <= start:
            return empty_bars()
        request = StockBarsRequest(
            symbol_or_symbols=[symbol],
            timeframe=TimeFrame(1, TimeFrameUnit.Minute),
            start=start,
            end=end,
            adjustment=Adjustment.SPLIT if self.config.data.adjustment == "split" else Adjustment.RAW,
            feed=DataFeed(self.config.data.alpaca.feed),
            sort=Sort.ASC,
        )
        try:
            raw = self.client.get_stock_bars(request)
        except APIError as exc:
            raise _api_error(symbol, exc, self.config.data.alpaca.feed) from None
        except requests.exceptions.RequestException as exc:
            raise unreachable("alpaca", symbol, exc, URL_ENV) from None
        rows = (raw or {}).get(symbol) or []
        if not rows:
            return empty_bars()
        frame = pd.DataFrame.from_records(rows, columns=["t", "o", "h", "l", "c", "v"])
        stamps = pd.to_datetime(frame["t"], utc=True, format="ISO8601")
        return frame_from_columns(stamps, frame["o"], frame["h"], frame["l"], frame["c"], frame["v"], symbol)


def _api_error(symbol: str, exc, feed: str) -> DataError:
    """One line naming the symbol, the vendor and what to do, for an HTTP error answer."""
    status = getattr(exc, "status_code", None)
    try:
        message = exc.message
    except Exception:  # the body is not JSON
        message = str(exc)[:120]
    what = f"HTTP {status}: {message}"
    if status in (401, 403):
        return DataError(
            f"alpaca refused the request for {symbol} ({what}); check {KEY_ENV} / {SECRET_ENV}, and that "
            f"your plan allows feed {feed} this recent (free plans: SIP up to 15 minutes ago), "
            f"or set data.alpaca.feed: iex"
        )
    if status == 429:
        return SourceUnavailableError(
            f"alpaca kept rate-limiting {symbol} after its retries ({what}); set "
            f"data.alpaca.requests_per_minute "
            f"to your plan's limit (free: 200) or retry later"
        )
    if status is not None and status >= 500:
        return SourceUnavailableError(f"alpaca failed for {symbol} ({what}); retry later")
    return NoDataError(
        f"alpaca has no bars for {symbol} ({what}); check the symbol (e.g. BRK.B) and the dates"
    )
