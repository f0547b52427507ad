"""Databento 1-minute bars (schema ohlcv-1m): local DBN files, and the Historical API.

Files: `--data FILE.dbn.zst` (or `.dbn`) read with `databento.DBNStore.from_bytes`; `ts_event` is the
bar start (UTC). API: with DATABENTO_API_KEY set, `databento.Historical` (gateway `data.databento.url`,
else $ORB_DATABENTO_URL, else Databento's); the cost of every download is estimated with
`metadata.get_cost` and printed before it, and a download above `data.databento.max_cost` (`--max-cost`)
is refused. The client does not retry: rate limits (honouring Retry-After) and server errors are retried
here. Databento prices are not split-adjusted, so these bars are recorded as `raw`.
"""

from __future__ import annotations

import os
import time
import warnings
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.bars import empty_bars
from orb.data.vendor import Policy, bucket_for, call_with_retries, frame_from_columns, is_connect_failure
from orb.errors import DataError, NoDataError, SourceUnavailableError

KEY_ENV, URL_ENV = "DATABENTO_API_KEY", "ORB_DATABENTO_URL"
SCHEMA = "ohlcv-1m"


def _import_databento():
    """`import databento` without its process-wide `simplefilter("always", DeprecationWarning)`."""
    saved = warnings.filters[:]
    try:
        import databento
    finally:
        warnings.filters[:] = saved
    return databento


def store_frame(store) -> pd.DataFrame:
    """A DBNStore's OHLCV records as columns timestamp (UTC bar start), symbol, open..volume."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pandas4Warning from databento's to_df under pandas 3
        df = store.to_df(price_type="float", pretty_ts=True, map_symbols=True)
    if df.empty:
        return pd.DataFrame(columns=["timestamp", "symbol", "open", "high", "low", "close", "volume"])
    out = df.reset_index().rename(columns={"ts_event": "timestamp"})
    return out[["timestamp", "symbol", "open", "high", "low", "close", "volume"]].astype({"volume": "int64"})


def read_dbn_file(path: Path) -> pd.DataFrame:
    """A local DBN file as a frame (see store_frame); DataError naming the file when it is not ohlcv-1m."""
    db = _import_databento()
    try:
        store = db.DBNStore.from_bytes(path.read_bytes())  # from_file leaves its file handle open
    except Exception as exc:  # databento raises several types for damaged files
        raise DataError(
            f"--data file {path} is not a readable DBN file ({type(exc).__name__}); "
            f"pass a .dbn.zst file of schema {SCHEMA}"
        ) from None
    if str(store.schema) != SCHEMA:
        raise DataError(
            f"--data file {path} holds schema {store.schema}, not {SCHEMA}; download {SCHEMA} bars"
        )
    return store_frame(store)


class DatabentoSource:
    """Fetches ohlcv-1m bars of one symbol at a time from the Historical API; `max_cost` bounds the
    run's total (every symbol's downloads together)."""

    name = "databento"

    def __init__(self, config: Config, sleep=None):
        settings = config.data.databento
        key = os.environ.get(KEY_ENV)
        if not key:
            raise DataError(
                f"databento needs an API key: set {KEY_ENV} (keys start with db-, from "
                f"https://databento.com/portal/keys), or pass a downloaded file with --data FILE.dbn.zst"
            )
        db = _import_databento()
        gateway = settings.url or os.environ.get(URL_ENV) or "https://hist.databento.com"
        self.client = db.Historical(key=key, gateway=gateway)
        self.config = config
        bucket = bucket_for("databento", settings.requests_per_minute)
        self.policy = Policy(
            "databento", settings.retries, settings.backoff_seconds, bucket, sleep or time.sleep
        )
        self.folder = f"databento-raw-{settings.dataset}"
        self.warnings: list[str] = []
        if config.data.adjustment == "split":
            self.warnings.append(
                "databento prices are not split-adjusted: a split inside the range corrupts ATR and "
                "prior-day values; these bars are recorded as adjustment raw"
            )
        self.cost = 0.0

    def fetch(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        """All-hours bars of the sessions first..last, after printing (and bounding) the cost."""
        settings = self.config.data.databento
        tz = ZoneInfo(self.config.session.timezone)
        start = datetime.combine(first, clock(0, 0), tz).astimezone(ZoneInfo("UTC"))
        end = datetime.combine(last + timedelta(days=1), clock(0, 0), tz).astimezone(ZoneInfo("UTC"))
        args = dict(dataset=settings.dataset, symbols=[symbol], schema=SCHEMA, start=start, end=end)
        cost = float(self._call(symbol, lambda: self.client.metadata.get_cost(**args)))
        logger.info(f"{symbol}: databento {settings.dataset} {SCHEMA} {first} .. {last} costs ${cost:.2f}")
        if settings.max_cost is not None and self.cost + cost > settings.max_cost:
            earlier = f" (${self.cost + cost:.2f} with this run's earlier downloads)" if self.cost else ""
            raise DataError(
                f"databento download for {symbol} ({first} .. {last}) is estimated at ${cost:.2f}{earlier}, "
                f"over --max-cost ${settings.max_cost:.2f}; raise --max-cost or shorten the range"
            )
        self.cost += cost
        store = self._call(symbol, lambda: self.client.timeseries.get_range(**args))
        frame = store_frame(store)
        if frame.empty:
            return empty_bars()
        frame = frame[frame["symbol"].astype(str).str.upper() == symbol]
        cols = (frame[c] for c in ("open", "high", "low", "close", "volume"))
        return frame_from_columns(pd.DatetimeIndex(frame["timestamp"]), *cols, symbol)

    def _call(self, symbol: str, call):
        try:
            return call_with_retries(call, self.policy, status_of=_status)
        except Exception as exc:
            raise _error(symbol, exc, self.config.data.databento.dataset) from None


def _status(exc: BaseException) -> tuple[int | None, object]:
    return getattr(exc, "http_status", None), getattr(exc, "headers", None)


def _error(symbol: str, exc: BaseException, dataset: str) -> DataError:
    """One line naming the symbol, the vendor and what to do."""
    status = getattr(exc, "http_status", None)
    message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0][:160] if str(exc) else ""
    if status in (401, 403):
        return DataError(
            f"databento refused the request for {symbol} (HTTP {status}: {message}); check {KEY_ENV}"
        )
    if status == 429:
        return SourceUnavailableError(
            f"databento kept rate-limiting {symbol} after its retries (HTTP 429); retry later"
        )
    if status is not None and status >= 500:
        return SourceUnavailableError(
            f"databento failed for {symbol} (HTTP {status}: {message}); retry later"
        )
    if status is not None:
        return NoDataError(
            f"databento has no {SCHEMA} bars for {symbol} on {dataset} (HTTP {status}: {message}); "
            f"check the symbol, the dates and data.databento.dataset"
        )
    if is_connect_failure(exc) or isinstance(exc, OSError):
        return SourceUnavailableError(
            f"databento could not be reached for {symbol} ({type(exc).__name__}); check the network "
            f"(and ${URL_ENV} if you set it), or use --data FILE.dbn.zst"
        )
    return DataError(f"databento's answer for {symbol} could not be read ({type(exc).__name__}); retry later")
