"""Parquet bar cache: `cache_dir/<source>/<interval>/SYMBOL_START_END.parquet`.

A file named START..END holds the regular-hours bars of the sessions START..END (session dates).
A request inside a cached range is served from the narrowest covering file. A file that cannot be
read, has the wrong columns or dtypes, holds bars outside its name's range, does not match the content
hash stored in it when it was written (prices edited after writing), or fails the bar check
(orb.data.checks) is logged at WARNING and ignored, so the caller fetches again. Writes are atomic
(temp file + os.replace); a temp file a killed writer left behind is removed by the next write of the
symbol's folder once it is an hour old (younger ones may belong to a writer still at work).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from loguru import logger

from orb.data.bars import bars_sha256
from orb.data.checks import check_bars
from orb.schema import BAR_COLUMNS
from orb.sessions import schedule

BAR_DTYPES = {"open": "float64", "high": "float64", "low": "float64", "close": "float64", "volume": "int64"}
HASH_KEY = "orb_bars_sha256"  # stored in the Parquet metadata (DataFrame.attrs) by write_cached
STALE_TEMP_SECONDS = 3600


def content_problem(bars: pd.DataFrame, timezone: str, max_jump: float) -> str | None:
    """Why cached bars with a sound structure cannot be trusted: hash mismatch or bad bars (None: fine)."""
    stored = bars.attrs.get(HASH_KEY)
    if stored is None:
        return "no content hash (written by an older version)"
    if stored != bars_sha256(bars):
        return "bars that differ from what was written (content hash mismatch)"
    result = check_bars(bars, timezone, max_jump)
    return None if result.ok else f"bad bars: {result.problems[0].describe()}"


def cache_path(cache_dir: Path, source: str, interval: str, symbol: str, start: date, end: date) -> Path:
    """Where bars of `symbol` for sessions start..end are stored."""
    return Path(cache_dir) / source / interval / f"{symbol}_{start.isoformat()}_{end.isoformat()}.parquet"


def _covering(folder: Path, symbol: str, start: date, end: date) -> list[tuple[date, date, Path]]:
    """Cache files of `symbol` whose range holds start..end, narrowest first."""
    found = []
    for path in folder.glob(f"{symbol}_*.parquet"):
        parts = path.stem.rsplit("_", 2)
        if len(parts) != 3 or parts[0] != symbol:
            continue
        try:
            first_day, last_day = date.fromisoformat(parts[1]), date.fromisoformat(parts[2])
        except ValueError:
            logger.warning(f"cache file {path} has no START_END dates in its name; ignoring it")
            continue
        if first_day <= start and end <= last_day:
            found.append((first_day, last_day, path))
    return sorted(found, key=lambda item: ((item[1] - item[0]).days, item[2].name))


def _problem(
    bars: pd.DataFrame, first: date, last: date, calendar: str, timezone: str, max_jump: float
) -> str | None:
    """Why a cached frame cannot be trusted for sessions first..last (None when it can)."""
    if list(bars.columns) != list(BAR_COLUMNS):
        return f"columns {list(bars.columns)} instead of {list(BAR_COLUMNS)}"
    wrong = [c for c, dtype in BAR_DTYPES.items() if str(bars[c].dtype) != dtype]
    if wrong:
        return f"wrong dtypes for {', '.join(wrong)}"
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
        return "an index that is not a UTC DatetimeIndex"
    if bars.empty:
        return "no bars"
    if not index.is_monotonic_increasing or not index.is_unique:
        return "unsorted or duplicate timestamps"
    if np.isnan(bars[["open", "high", "low", "close"]].to_numpy()).any():
        return "NaN prices"
    sched = schedule(first, last, calendar)
    if sched.empty or index[0] < sched["open"].iloc[0] or index[-1] >= sched["close"].iloc[-1]:
        return f"bars from {index[0]} to {index[-1]}, outside its name's range"
    return content_problem(bars, timezone, max_jump)


def read_cached(
    cache_dir: Path,
    source: str,
    interval: str,
    symbol: str,
    start: date,
    end: date,
    calendar: str,
    timezone: str = "America/New_York",
    max_jump: float = 0.5,
) -> tuple[pd.DataFrame, Path] | None:
    """Bars of sessions start..end from the narrowest valid covering file, or None."""
    folder = Path(cache_dir) / source / interval
    if not folder.is_dir():
        return None
    for first, last, path in _covering(folder, symbol, start, end):
        try:
            bars = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for damaged files
            logger.warning(
                f"cache file {path} is unreadable ({type(exc).__name__}); ignoring it and fetching again"
            )
            continue
        problem = _problem(bars, first, last, calendar, timezone, max_jump)
        if problem:
            logger.warning(f"cache file {path} holds {problem}; ignoring it and fetching again")
            continue
        sched = schedule(start, end, calendar)
        inside = (bars.index >= sched["open"].iloc[0]) & (bars.index < sched["close"].iloc[-1])
        bars = bars[inside]
        bars = bars.set_axis(bars.index.as_unit("ns").rename("timestamp"), axis=0)
        bars.attrs = {}
        return bars, path
    return None


def write_cached(
    cache_dir: Path, source: str, interval: str, symbol: str, bars: pd.DataFrame, start: date, end: date
) -> Path | None:
    """Store bars of sessions start..end atomically; a failure is logged and returns None."""
    path = cache_path(cache_dir, source, interval, symbol, start, end)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale_temps(path.parent, symbol)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False
        ) as tmp:
            tmp_name = tmp.name
        stored = bars.copy(deep=False)
        stored.attrs = {HASH_KEY: bars_sha256(bars)}
        stored.to_parquet(tmp_name)
        os.replace(tmp_name, path)
    except OSError as exc:
        logger.warning(f"could not write cache file {path} ({exc}); continuing without caching {symbol}")
        return None
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    logger.debug(f"{symbol}: cached {len(bars)} bars in {path}")
    return path


def _sweep_stale_temps(folder: Path, symbol: str) -> None:
    """Remove `symbol`'s temp files in `folder` older than STALE_TEMP_SECONDS (a killed writer's)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for tmp in folder.glob(f".{symbol}_*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                logger.debug(f"removed {tmp}, left by an interrupted cache write")
        except OSError:
            continue  # gone already, or not ours to remove: the next write tries again
