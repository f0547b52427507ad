"""Yahoo Finance intraday bars through yfinance (imported lazily: it is slow to import).

Yahoo's limits are checked before any request: 1m bars only for the last 30 days and at most 8 days
per request (fetched in 7-day chunks); 2m-30m bars for the last 60 days (chunks of at most 60 days).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.bars import (
    PRICE_COLUMNS,
    empty_bars,
    make_bars,
    regular_hours,
    tidy_index,
)
from orb.data.cache import read_cached, write_cached
from orb.errors import DataError, NoDataError, RequestError, SourceUnavailableError
from orb.schema import BAR_COLUMNS
from orb.sessions import schedule, session_offset

LOOKBACK_DAYS = {"1m": 30, "2m": 60, "5m": 60, "15m": 60, "30m": 60}
CHUNK_DAYS = {"1m": 7, "2m": 60, "5m": 60, "15m": 60, "30m": 60}
NO_DATA_ERRORS = ("YFTzMissingError", "YFInvalidPeriodError")
Fetcher = Callable[[str, date, date, str], pd.DataFrame]


def earliest_day(interval: str, today: date) -> date:
    """The oldest date Yahoo serves `interval` bars for."""
    return today - timedelta(days=LOOKBACK_DAYS[interval] - 1)


def check_yahoo_request(interval: str, start: date, end: date, today: date) -> None:
    """Raise RequestError for a request Yahoo cannot serve (before anything is downloaded)."""
    if interval not in LOOKBACK_DAYS:
        raise RequestError(f"interval {interval!r} is not supported; use one of {', '.join(LOOKBACK_DAYS)}")
    if start > end:
        raise RequestError(f"--start {start} is after --end {end}; swap them")
    if start > today:
        raise RequestError(
            f"--start {start} is in the future (today is {today}); Yahoo has no bars for it yet"
        )
    earliest = earliest_day(interval, today)
    if start < earliest:
        days = LOOKBACK_DAYS[interval]
        other = "--interval 5m (60 days), " if interval == "1m" else ""
        raise RequestError(
            f"Yahoo serves {interval} bars only for the last {days} days (from {earliest}), but --start is "
            f"{start}; use {other}--data PATH (local CSV/Parquet bars) or --synthetic"
        )


def chunks(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """Request windows [a, b) (end exclusive) covering the days start..end, each within Yahoo's limit."""
    size = timedelta(days=CHUNK_DAYS[interval])
    stop = end + timedelta(days=1)
    out = []
    day = start
    while day < stop:
        out.append((day, min(day + size, stop)))
        day = out[-1][1]
    return out


def fetch_yahoo(symbol: str, start: date, end: date, interval: str, *, session=None, timeout: float = 10.0):
    """One yfinance request for bars of the days [start, end) (end exclusive), as yfinance returns them.

    Errors are raised (not logged): yfinance's exceptions, or the HTTP library's network errors.
    `session` (a requests or curl_cffi Session) replaces yfinance's process-wide HTTP session.
    """
    import logging
    import warnings

    import yfinance as yf

    debug = yf.config.debug
    hidden, yf_logger = debug.hide_exceptions, logging.getLogger("yfinance")
    level = yf_logger.level
    debug.hide_exceptions = False
    yf_logger.setLevel(logging.CRITICAL)  # its errors reach the caller as exceptions instead
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yfinance's own pandas deprecation warnings
            return yf.Ticker(symbol, session=session).history(
                start=start.isoformat(),
                end=end.isoformat(),
                interval=interval,
                prepost=False,
                actions=False,
                auto_adjust=False,
                timeout=timeout,
            )
    finally:
        debug.hide_exceptions = hidden
        yf_logger.setLevel(level)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _transient_cause(exc: BaseException) -> BaseException | None:
    """The network failure, timeout or rate limit in `exc`'s chain (HTTP errors derive from OSError).

    The chain matters: yfinance 1.7 over `requests` turns a network error into an AttributeError
    while handling it (`requests.exceptions.DNSError` does not exist).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) or "YFRateLimitError" in _class_names(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, without libcurl's 'See https://...' hint, at most ~120 chars."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"\.? See https?://\S+.*$", "", text)
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fetch_chunk(
    fetcher: Fetcher,
    symbol: str,
    window: tuple[date, date],
    interval: str,
    *,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> pd.DataFrame | str:
    """The raw frame of one window, or the reason Yahoo gave for having no bars in it.

    A failed DNS lookup or refused connection is retried once, quickly (offline fails fast)."""
    connect_failures = 0
    attempt = 0
    while True:
        try:
            return fetcher(symbol, window[0], window[1], interval)
        except DataError:
            raise
        except Exception as exc:
            names = _class_names(exc)
            if "YFPricesMissingError" in names:
                return str(getattr(exc, "rationale", "") or _one_line(exc)).splitlines()[0]
            if names & set(NO_DATA_ERRORS):
                raise NoDataError(
                    f"no data for {symbol} between {window[0]} and {window[1]} ({_one_line(exc)}); "
                    f"check the symbol"
                ) from exc
            cause = _transient_cause(exc)
            if cause is None:
                raise DataError(
                    f"Yahoo's answer for {symbol} could not be read ({_one_line(exc)}); "
                    f"retry later, or use --data PATH or --synthetic"
                ) from exc
            from orb.data.vendor import is_connect_failure  # imports requests: only on a failure

            connect = is_connect_failure(exc)
            if (connect and connect_failures >= 1) or (not connect and attempt >= retries):
                tries = connect_failures + 1 if connect else attempt + 1
                raise SourceUnavailableError(
                    f"Yahoo could not be reached for {symbol} after {tries} attempt(s) "
                    f"({_one_line(cause)}); "
                    f"check the network, or use --synthetic or --data PATH"
                ) from exc
            wait = min(backoff, 0.5) if connect else backoff * 2**attempt
            connect_failures += connect
            attempt += not connect
            logger.warning(
                f"{symbol}: Yahoo request failed ({_one_line(cause)}); "
                f"retry {'once' if connect else f'{attempt}/{retries}'} in {wait:g}s"
            )
            sleep(wait)


def normalize_yahoo(raw: pd.DataFrame | None, symbol: str, timezone: str) -> tuple[pd.DataFrame, list[str]]:
    """yfinance's frame (history or download shape) as bars (sorted, unique, UTC); not yet RTH-filtered."""
    if raw is None or len(raw) == 0:
        return empty_bars(), []
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):
        frame = _single_ticker(frame, symbol)
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in BAR_COLUMNS if c not in by_name]
    if missing:
        raise DataError(
            f"Yahoo answered for {symbol} without the columns {', '.join(missing)}; "
            f"retry later, or use --data PATH"
        )
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"Yahoo answered for {symbol} without timestamps; retry later, or use --data PATH")
    index = frame.index if frame.index.tz is not None else frame.index.tz_localize(timezone)
    prices = {
        c: pd.to_numeric(frame[by_name[c]], errors="coerce").to_numpy(dtype="float64") for c in PRICE_COLUMNS
    }
    volume = pd.to_numeric(frame[by_name["volume"]], errors="coerce").to_numpy(dtype="float64")
    keep = ~np.isnan(np.column_stack(list(prices.values()))).any(axis=1)
    warnings = []
    if not keep.all():
        warnings.append(f"{symbol}: {int((~keep).sum())} Yahoo rows without prices dropped")
    volume = np.rint(np.nan_to_num(volume[keep], nan=0.0))
    bars = make_bars(
        index.tz_convert("UTC")[keep], *(prices[c][keep] for c in PRICE_COLUMNS), volume.astype("int64")
    )
    bars, fixes = tidy_index(bars, symbol)
    return bars, warnings + fixes


def _single_ticker(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Flatten `download()`'s (Price, Ticker) columns to the price names of `symbol`."""
    columns = frame.columns
    for level in range(columns.nlevels):
        if symbol in set(columns.get_level_values(level)):
            return frame.xs(symbol, axis=1, level=level)
    tickers = sorted({str(v) for lvl in range(columns.nlevels) for v in columns.get_level_values(lvl)})
    raise DataError(
        f"Yahoo answered for other tickers ({', '.join(tickers)}) instead of {symbol}; retry later"
    )


def download_yahoo(
    symbol: str,
    first: date,
    last: date,
    interval: str,
    *,
    fetcher: Fetcher,
    retries: int,
    backoff: float,
    timezone: str,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[pd.DataFrame, list[str]]:
    """Bars of the days first..last, fetched in chunks with retries; NoDataError when Yahoo has none."""
    frames, warnings, reasons = [], [], []
    windows = chunks(first, last, interval)
    for window in windows:
        logger.debug(
            f"{symbol}: Yahoo request {window[0]} .. {window[1]} (end exclusive), interval {interval}"
        )
        raw = _fetch_chunk(fetcher, symbol, window, interval, retries=retries, backoff=backoff, sleep=sleep)
        if isinstance(raw, str):
            reasons.append(raw)
            continue
        bars, notes = normalize_yahoo(raw, symbol, timezone)
        frames.append(bars)
        warnings.extend(notes)
    bars = pd.concat(frames) if frames else empty_bars()
    if bars.empty:
        reason = reasons[-1] if reasons else "Yahoo returned no bars"
        raise NoDataError(f"no data for {symbol} between {first} and {last} ({reason})")
    bars, fixes = tidy_index(bars, symbol)
    logger.info(f"{symbol}: downloaded {len(bars)} {interval} bars from Yahoo in {len(windows)} request(s)")
    return bars, warnings + fixes


def load_yahoo(
    symbol: str,
    *,
    config: Config,
    start: date,
    first: date,
    last: date,
    cache_dir: Path | None,
    fetcher: Fetcher,
    today: date,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[pd.DataFrame, str, list[str]]:
    """(bars, source, warnings) of sessions first..last from cache or Yahoo, warm-up clamped to its window."""
    interval, calendar = config.data.interval, config.session.calendar
    checks = (config.session.timezone, config.data.max_jump)
    if cache_dir is not None and (
        hit := read_cached(cache_dir, "yahoo", interval, symbol, first, last, calendar, *checks)
    ):
        logger.info(f"{symbol}: {len(hit[0])} bars from cache {hit[1]}")
        return hit[0], "cache", []
    check_yahoo_request(interval, start, last, today)
    warnings = []
    earliest = earliest_day(interval, today)
    if first < earliest:
        first = session_offset(earliest, 0, calendar).date()
        available = len(schedule(first, start - timedelta(days=1), calendar)) if first < start else 0
        warnings.append(
            f"{symbol}: Yahoo serves {interval} bars only for the last {LOOKBACK_DAYS[interval]} days, so "
            f"{available} of the {config.data.warmup_sessions} warm-up sessions before {start} "
            f"are available; "
            f"sessions lacking warm-up are skipped (reason warmup)"
        )
        if cache_dir is not None and (
            hit := read_cached(cache_dir, "yahoo", interval, symbol, first, last, calendar, *checks)
        ):
            logger.info(f"{symbol}: {len(hit[0])} bars from cache {hit[1]}")
            return hit[0], "cache", warnings
    fetch_last = min(last, today)
    raw, notes = download_yahoo(
        symbol,
        first,
        fetch_last,
        interval,
        fetcher=fetcher,
        retries=config.data.yahoo_retries,
        backoff=config.data.yahoo_backoff_seconds,
        timezone=config.session.timezone,
        sleep=sleep,
    )
    sched = schedule(first, fetch_last, calendar)
    bars = regular_hours(raw, sched)
    if bars.empty:
        raise NoDataError(
            f"no data for {symbol} between {first} and {fetch_last} (Yahoo returned no regular-hours bars)"
        )
    warnings += notes
    if cache_dir is not None:
        _cache_complete_sessions(cache_dir, interval, symbol, bars, sched, today)
    return bars, "yahoo", warnings


def _cache_complete_sessions(
    cache_dir: Path, interval: str, symbol: str, bars: pd.DataFrame, sched: pd.DataFrame, today: date
) -> None:
    """Cache the sessions before `today` (today's may still be trading)."""
    done = sched[sched.index < pd.Timestamp(today)]
    if done.empty:
        return
    kept = bars[bars.index < done["close"].iloc[-1]]
    if not kept.empty:
        write_cached(cache_dir, "yahoo", interval, symbol, kept, done.index[0].date(), done.index[-1].date())
