"""The data layer: bars of one symbol from Yahoo, Alpaca, Massive, Databento, synthetic generation or
local files, with a Parquet cache.

Every source returns the bar contract (orb.schema) covering `data.warmup_sessions` sessions before
`start` through the session `end`, regular hours only, after one bar check (orb.data.checks): sessions
holding bad bars are returned in `LoadedBars.bad_sessions` (`data.bad_bars: skip`) or stop the load.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.bars import LoadedBars, bars_sha256, regular_hours, resample_bars
from orb.data.cache import read_cached, write_cached
from orb.data.checks import apply_bad_bars_policy, check_bars
from orb.data.files import load_file
from orb.errors import NoDataError, RequestError
from orb.sessions import schedule, session_offset
from orb.symbols import normalize_symbol as validate_symbol  # the one rule (orb.symbols)

if TYPE_CHECKING:
    from orb.data.yahoo import Fetcher

__all__ = [
    "VENDORS",
    "LoadedBars",
    "SOURCES",
    "load_symbol",
    "make_vendor",
    "validate_symbol",
]

VENDORS = ("alpaca", "massive", "databento")
SOURCES = ("yahoo", "synthetic", "file", *VENDORS)


def _check_request(source: str, data_path: Path | None, start: date | None, end: date | None) -> None:
    """RequestError for a source, path or date range that cannot be loaded."""
    if source not in SOURCES:
        raise RequestError(f"unknown data source {source!r}; use one of {', '.join(SOURCES)}")
    if source == "file" and data_path is None:
        raise RequestError("the file source needs a path: pass --data PATH")
    if source != "file" and (start is None or end is None):
        raise RequestError(f"the {source} source needs --start and --end dates")
    if start is not None and end is not None and start > end:
        raise RequestError(f"start {start} is after end {end}; swap them")


def load_symbol(
    symbol: str,
    *,
    config: Config,
    start: date | None,
    end: date | None,
    source: str,
    data_path: Path | None = None,
    cache_dir: Path | None = None,
    fetcher: Fetcher | None = None,
    vendor=None,
) -> LoadedBars:
    """Bars of `symbol` for the sessions start..end plus the configured warm-up sessions before start.

    For the file source, `start`/`end` None mean the file's first/last session (no extra warm-up).
    `vendor` is a ready vendor source object (see `make_vendor`); one is made when None.

    Problems that were fixed or tolerated are returned in `warnings` (not logged here).
    """
    symbol = validate_symbol(symbol)
    _check_request(source, data_path, start, end)
    calendar = config.session.calendar
    first = last = None
    if end is not None:
        sessions = schedule(start or end, end, calendar)
        if sessions.empty:
            raise RequestError(
                f"no {calendar} trading session between {start} and {end}; pick dates that include one"
            )
        last = sessions.index[-1].date()
    if start is not None:
        first = session_offset(start, config.data.warmup_sessions, calendar).date()
    warnings: list[str] = []
    adjustment = None
    if source in VENDORS:
        if vendor is None:
            vendor = make_vendor(source, config)
            warnings += vendor.warnings
        bars, origin = _load_from_vendor(symbol, vendor, config, first, last, cache_dir)
        adjustment = "raw" if source == "databento" else config.data.adjustment
    elif source == "file":
        bars, path, warnings = load_file(
            data_path, symbol, config=config, start=start, first=first, last=last
        )
        origin = f"file:{path}"
    elif source == "synthetic":
        bars, origin = _load_synthetic(symbol, config, first, last, cache_dir)
    else:
        from orb.data.yahoo import fetch_yahoo, load_yahoo  # only the sources a run uses are imported

        today = pd.Timestamp.now(tz=config.session.timezone).date()
        bars, origin, warnings = load_yahoo(
            symbol,
            config=config,
            start=start,
            first=first,
            last=last,
            cache_dir=cache_dir,
            fetcher=fetcher or fetch_yahoo,
            today=today,
        )
    if bars.empty:
        raise NoDataError(
            f"no data for {symbol} between {first} and {last} ({origin} has no regular-hours bars)"
        )
    where = {"cache": "the cache"}.get(origin, origin.removeprefix("file:"))
    with ThreadPoolExecutor(max_workers=1) as pool:  # hash and check side by side (both release the GIL)
        digest = pool.submit(bars_sha256, bars)
        result = check_bars(bars, config.session.timezone, config.data.max_jump)
        bad_sessions, notes = apply_bad_bars_policy(symbol, result, where, config.data.bad_bars)
        sha256 = digest.result()
    return LoadedBars(symbol, bars, origin, sha256, tuple(warnings + notes), bad_sessions, adjustment)


def make_vendor(source: str, config: Config, sleep=None):
    """The source object of a vendor (AlpacaSource, MassiveSource or DatabentoSource); DataError when
    its key is missing. One object may serve several symbols (and threads)."""
    if source == "alpaca":
        from orb.data.alpaca import AlpacaSource

        return AlpacaSource(config, sleep)
    if source == "massive":
        from orb.data.massive import MassiveSource

        return MassiveSource(config, sleep)
    from orb.data.databento import DatabentoSource

    return DatabentoSource(config, sleep)


def _load_from_vendor(symbol, vendor, config, first, last, cache_dir) -> tuple[pd.DataFrame, str]:
    """Regular-hours bars of sessions first..last through the cache (only missing sessions fetched)."""
    from orb.data.vendor import load_vendor  # imports requests: only for vendor sources

    calendar, tz = config.session.calendar, config.session.timezone
    today = pd.Timestamp.now(tz=tz).date()
    all_hours, fetched = load_vendor(
        symbol,
        vendor.fetch,
        folder_name=vendor.folder,
        first=first,
        last=last,
        calendar=calendar,
        timezone=tz,
        cache_dir=cache_dir,
        today=today,
        max_jump=config.data.max_jump,
    )
    sched = schedule(first, last, calendar)
    bars = regular_hours(all_hours, sched)
    if config.data.interval_minutes > 1 and not bars.empty:
        bars = resample_bars(bars, config.data.interval_minutes, sched)
    origin = vendor.name if fetched else "cache"
    if bars.empty:
        raise NoDataError(
            f"no data for {symbol} between {first} and {last} from {vendor.name} (no regular-hours bars: "
            f"the symbol may be unknown to {vendor.name}, or the range before its history); "
            f"check the symbol or pick later dates"
        )
    logger.info(f"{symbol}: {len(bars)} {config.data.interval} bars from {origin} ({vendor.name})")
    return bars, origin


def _load_synthetic(
    symbol: str, config: Config, first: date, last: date, cache_dir: Path | None
) -> tuple[pd.DataFrame, str]:
    """Generated bars (or the cached copy) of sessions first..last."""
    interval, calendar, seed = config.data.interval, config.session.calendar, config.data.seed
    universe = config.portfolio.enabled  # portfolio runs: the universe generator (profiles, news days)
    folder = f"synthetic-seed{seed}" + ("-universe" if universe else "")
    checks = (config.session.timezone, config.data.max_jump)
    if cache_dir is not None and (
        hit := read_cached(cache_dir, folder, interval, symbol, first, last, calendar, *checks)
    ):
        logger.info(f"{symbol}: {len(hit[0])} bars from cache {hit[1]}")
        return hit[0], "cache"
    from orb.data.synthetic import generate_bars

    bars = generate_bars(symbol, first, last, config.data.interval_minutes, seed, calendar, universe)
    logger.info(f"{symbol}: generated {len(bars)} synthetic {interval} bars (seed {seed})")
    if cache_dir is not None and not bars.empty:
        write_cached(cache_dir, folder, interval, symbol, bars, first, last)
    return bars, "synthetic"
