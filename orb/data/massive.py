"""Massive (formerly Polygon.io) 1-minute aggregates through the `massive` client (`RESTClient`).

Key: MASSIVE_API_KEY (or POLYGON_API_KEY); base URL: `data.massive.url`, else $ORB_MASSIVE_URL, else
Massive's. One `list_aggs` call per window of at most 40 sessions (up to ~38,000 minutes of regular and
extended hours: one 50,000-aggregate page), each after a token of the plan's rate (free: 5 per minute),
so the free plan never sees a 429; the client itself retries a 429 honouring Retry-After. Minutes
without trades are absent in the answer and stay absent here.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime
from datetime import time as clock
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from orb.config import Config
from orb.data.bars import empty_bars
from orb.data.vendor import Policy, bucket_for, call_with_retries, frame_from_columns, is_connect_failure
from orb.errors import DataError, NoDataError, SourceUnavailableError
from orb.sessions import schedule

KEY_ENVS, URL_ENV = ("MASSIVE_API_KEY", "POLYGON_API_KEY"), "ORB_MASSIVE_URL"
WINDOW_SESSIONS = 40
PAGE_LIMIT = 50_000


class MassiveSource:
    """Fetches minute aggregates of one symbol at a time."""

    name = "massive"

    def __init__(self, config: Config, sleep=None):
        from massive import RESTClient

        settings = config.data.massive
        key = next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)
        if not key:
            raise DataError(
                "massive needs an API key: set MASSIVE_API_KEY (or POLYGON_API_KEY) from "
                "https://massive.com/dashboard, or use --data PATH or --synthetic"
            )
        url = settings.url or os.environ.get(URL_ENV) or "https://api.massive.com"
        self.config = config
        bucket = bucket_for("massive", settings.requests_per_minute)
        self.policy = Policy("massive", 0, settings.backoff_seconds, bucket, sleep or time.sleep)
        self.client = RESTClient(api_key=key, base=url, retries=settings.retries, pagination=True)
        self.folder = f"massive-{config.data.adjustment}"
        self.warnings: list[str] = []
        self.calls = 0

    def fetch(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        """All-hours bars of the sessions first..last (bar contract)."""
        sessions = [d.date() for d in schedule(first, last, self.config.session.calendar).index]
        frames = [
            self._window(symbol, chunk[0], chunk[-1])
            for chunk in (sessions[i : i + WINDOW_SESSIONS] for i in range(0, len(sessions), WINDOW_SESSIONS))
        ]
        return pd.concat(frames) if frames else empty_bars()

    def _window(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        tz = ZoneInfo(self.config.session.timezone)
        start_ms = int(datetime.combine(first, clock(0, 0), tz).timestamp() * 1000)
        end_ms = int(datetime.combine(last, clock(23, 59), tz).timestamp() * 1000)

        def call():
            self.calls += 1
            aggs = self.client.list_aggs(
                symbol,
                1,
                "minute",
                start_ms,
                end_ms,
                adjusted=self.config.data.adjustment == "split",
                sort="asc",
                limit=PAGE_LIMIT,
            )
            return [(a.timestamp, a.open, a.high, a.low, a.close, a.volume) for a in aggs]

        try:
            rows = call_with_retries(call, self.policy, status_of=lambda exc: (None, None))
        except Exception as exc:
            raise _error(symbol, exc) from None
        if not rows:
            return empty_bars()
        table = np.array(rows, dtype="float64")
        stamps = pd.to_datetime(table[:, 0].astype("int64"), unit="ms", utc=True)
        return frame_from_columns(stamps, *(table[:, i] for i in range(1, 6)), symbol)


def _error(symbol: str, exc: BaseException) -> DataError:
    """One line naming the symbol, the vendor and what to do."""
    name = type(exc).__name__
    if name == "BadResponse":
        try:
            body = json.loads(str(exc))
        except ValueError:
            body = {"error": str(exc)[:120]}
        status, message = body.get("status", "ERROR"), body.get("error") or body.get("message") or ""
        if status in ("NOT_AUTHORIZED",) or "API Key" in message or "authoriz" in message.lower():
            return DataError(
                f"massive refused the request for {symbol} ({status}: {message}); check MASSIVE_API_KEY, "
                f"and that your plan covers this range (free: about 2 years of minute bars)"
            )
        return NoDataError(
            f"massive has no bars for {symbol} ({status}: {message}); check the symbol and dates"
        )
    if name == "MaxRetryError" and "429" in str(exc):
        return SourceUnavailableError(
            f"massive kept rate-limiting {symbol} after its retries (HTTP 429); set "
            f"data.massive.requests_per_minute to your plan's limit (free: 5) or retry later"
        )
    if name == "AuthError":
        return DataError(f"massive rejected the API key for {symbol}; check MASSIVE_API_KEY")
    if is_connect_failure(exc) or name in ("MaxRetryError", "TimeoutError", "ReadTimeoutError"):
        return SourceUnavailableError(
            f"massive could not be reached for {symbol} ({name}); check the network (and ${URL_ENV} if you "
            f"set it), or use --data PATH or --synthetic"
        )
    return DataError(
        f"massive's answer for {symbol} could not be read ({name}: {str(exc)[:120]}); retry later"
    )
