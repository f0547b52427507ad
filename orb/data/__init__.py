"""The data layer: bars of one symbol from Yahoo, synthetic generation or local files, with a Parquet cache.

Every source returns the bar contract (orb.schema) covering `data.warmup_sessions` sessions before
`start` through the session `end`, regular hours only.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.bars import LoadedBars, bars_sha256
from orb.data.cache import read_cached, write_cached
from orb.data.files import load_file
from orb.data.synthetic import generate_bars
from orb.data.yahoo import Fetcher, check_yahoo_request, fetch_yahoo, load_yahoo
from orb.errors import NoDataError, RequestError
from orb.sessions import schedule, session_offset
from orb.symbols import normalize_symbol as validate_symbol  # the one rule (orb.symbols)

__all__ = ["LoadedBars", "SOURCES", "check_yahoo_request", "load_symbol", "validate_symbol"]

SOURCES = ("yahoo", "synthetic", "file")


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
) -> LoadedBars:
    """Bars of `symbol` for the sessions start..end plus the configured warm-up sessions before start.

    For the file source, `start`/`end` None mean the file's first/last session (no extra warm-up).

    Problems that were fixed or tolerated are returned in `warnings` (not logged here).
    """
    symbol = validate_symbol(symbol)
    if source not in SOURCES:
        raise RequestError(f"unknown data source {source!r}; use one of {', '.join(SOURCES)}")
    if source == "file" and data_path is None:
        raise RequestError("the file source needs a path: pass --data PATH")
    if source != "file" and (start is None or end is None):
        raise RequestError(f"the {source} source needs --start and --end dates")
    if start is not None and end is not None and start > end:
        raise RequestError(f"start {start} is after end {end}; swap them")
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
    if source == "file":
        bars, path, warnings = load_file(
            data_path, symbol, config=config, start=start, first=first, last=last
        )
        origin = f"file:{path}"
    elif source == "synthetic":
        bars, origin = _load_synthetic(symbol, config, first, last, cache_dir)
    else:
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
    return LoadedBars(symbol, bars, origin, bars_sha256(bars), tuple(warnings))


def _load_synthetic(
    symbol: str, config: Config, first: date, last: date, cache_dir: Path | None
) -> tuple[pd.DataFrame, str]:
    """Generated bars (or the cached copy) of sessions first..last."""
    interval, calendar, seed = config.data.interval, config.session.calendar, config.data.seed
    universe = config.portfolio.enabled  # portfolio runs: the universe generator (profiles, news days)
    folder = f"synthetic-seed{seed}" + ("-universe" if universe else "")
    if cache_dir is not None and (
        hit := read_cached(cache_dir, folder, interval, symbol, first, last, calendar)
    ):
        logger.info(f"{symbol}: {len(hit[0])} bars from cache {hit[1]}")
        return hit[0], "cache"
    bars = generate_bars(symbol, first, last, config.data.interval_minutes, seed, calendar, universe)
    logger.info(f"{symbol}: generated {len(bars)} synthetic {interval} bars (seed {seed})")
    if cache_dir is not None and not bars.empty:
        write_cached(cache_dir, folder, interval, symbol, bars, first, last)
    return bars, "synthetic"
