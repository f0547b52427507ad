"""Helpers shared by every source: bring a frame to the bar contract, keep regular hours, hash bars."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from orb.config import Config
from orb.schema import BAR_COLUMNS
from orb.sessions import assign_sessions

PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class LoadedBars:
    """Bars of one symbol (warm-up sessions included) and where they came from."""

    symbol: str
    bars: pd.DataFrame  # bar contract
    source: str  # "yahoo" | "cache" | "synthetic" | "file:<path>" | "alpaca" | "massive" | "databento"
    sha256: str  # bars_sha256(bars)
    warnings: tuple[str, ...]
    bad_sessions: frozenset[date] = frozenset()  # sessions holding bad bars (skip reason bad_bars)
    adjustment: str | None = None  # vendor sources: "split" | "raw" (data.adjustment); None otherwise


def empty_bars() -> pd.DataFrame:
    """A bar-contract frame with no rows."""
    index = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="timestamp")
    data = {c: np.array([], dtype="float64") for c in PRICE_COLUMNS}
    return pd.DataFrame(data | {"volume": np.array([], dtype="int64")}, index=index)


def make_bars(index: pd.DatetimeIndex, open_, high, low, close, volume) -> pd.DataFrame:
    """A bar-contract frame from arrays (index already UTC, sorted and unique)."""
    prices = np.stack([np.asarray(a, dtype="float64") for a in (open_, high, low, close)])
    return bars_from_block(index, prices, volume)


def bars_from_block(index: pd.DatetimeIndex, prices: np.ndarray, volume) -> pd.DataFrame:
    """`make_bars` around `prices` (float64, shape (4, n): open, high, low, close), which becomes the
    frame's one float block without a copy."""
    idx = pd.DatetimeIndex(index).as_unit("ns").rename("timestamp")
    frame = pd.DataFrame(prices.T, index=idx, columns=list(PRICE_COLUMNS), copy=False)
    frame["volume"] = np.asarray(volume, dtype="int64")
    return frame


def utc_index(ns: np.ndarray) -> pd.DatetimeIndex:
    """UTC nanosecond stamps (int64) as a tz-aware DatetimeIndex (no timezone arithmetic)."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("M8[ns]"), dtype="datetime64[ns, UTC]")


def bars_sha256(bars: pd.DataFrame) -> str:
    """SHA-256 of the index (int64 ns) and the OHLCV arrays, independent of any file format (the
    arrays' buffers are hashed in place, not copied to bytes first)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(pd.DatetimeIndex(bars.index).as_unit("ns").asi8, dtype="<i8"))
    for column in PRICE_COLUMNS:
        digest.update(np.ascontiguousarray(bars[column].to_numpy(), dtype="<f8"))
    digest.update(np.ascontiguousarray(bars["volume"].to_numpy(), dtype="<i8"))
    return digest.hexdigest()


UNSORTED = "{symbol}: rows were not in time order; sorted them"
DUPLICATES = "{symbol}: {count} duplicate timestamps dropped (kept the last)"


def tidy_index(frame: pd.DataFrame, symbol: str) -> tuple[pd.DataFrame, list[str]]:
    """Sort by time and drop duplicate timestamps (keeping the last), with one warning for each fix."""
    warnings: list[str] = []
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
        warnings.append(UNSORTED.format(symbol=symbol))
    duplicated = frame.index.duplicated(keep="last")
    if duplicated.any():
        frame = frame[~duplicated]
        warnings.append(DUPLICATES.format(symbol=symbol, count=int(duplicated.sum())))
    return frame, warnings


def tidy_order(ns: np.ndarray, symbol: str) -> tuple[np.ndarray | None, list[str]]:
    """What `tidy_index` does, for int64 stamps without NaT: (positions that sort `ns` stably and keep
    the last of equal stamps, or None when `ns` is already sorted and unique; the same warnings)."""
    warnings: list[str] = []
    order = None
    if len(ns) > 1 and not (ns[1:] >= ns[:-1]).all():
        order = np.argsort(ns, kind="stable")
        ns = ns[order]
        warnings.append(UNSORTED.format(symbol=symbol))
    duplicated = np.zeros(len(ns), dtype=bool)
    duplicated[:-1] = ns[:-1] == ns[1:]  # sorted: equal stamps are neighbours, the last one is kept
    if duplicated.any():
        keep = np.flatnonzero(~duplicated)
        order = keep if order is None else order[keep]
        warnings.append(DUPLICATES.format(symbol=symbol, count=int(duplicated.sum())))
    return order, warnings


def regular_hours(bars: pd.DataFrame, sched: pd.DataFrame) -> pd.DataFrame:
    """The bars that start inside the regular hours [open, close) of a session of `sched`."""
    if bars.empty:
        return bars
    positions = assign_sessions(pd.DatetimeIndex(bars.index), sched)
    return bars[positions >= 0]


def history_needs(config: Config) -> dict[str, int]:
    """The settings that need earlier sessions, with how many each needs (config key -> sessions)."""
    needs = {"orb.atr_period": config.orb.atr_period}
    if config.orb.adaptive:
        needs["orb.adaptive (ATR 20)"] = 20
    if config.confluence.enabled and config.confluence.rel_volume.enabled:
        needs["confluence.rel_volume.lookback_sessions"] = config.confluence.rel_volume.lookback_sessions
    if config.confluence.enabled and config.confluence.adx.enabled:
        needs["confluence.adx.period"] = 2 * config.confluence.adx.period
    if config.portfolio.enabled:
        needs["universe.lookback_sessions"] = config.universe.lookback_sessions  # avg_volume, rel_volume
    return needs


def spacing_minutes(ns: np.ndarray, positions: np.ndarray) -> int | None:
    """The most common gap in minutes between consecutive bars (stamps `ns`, session `positions` as
    `assign_sessions` gives them) of one session (None with too few bars)."""
    if len(ns) < 2:
        return None
    same = (positions[1:] == positions[:-1]) & (positions[1:] >= 0)
    gaps = np.diff(ns)[same] // 60_000_000_000
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return None
    return int(np.argmax(np.bincount(gaps)))  # the smallest of the most common gaps (within a session)


def resample_bars(bars: pd.DataFrame, minutes: int, sched: pd.DataFrame) -> pd.DataFrame:
    """Aggregate regular-hours bars into `minutes` bars anchored at each session's open."""
    index = pd.DatetimeIndex(bars.index).as_unit("ns")
    positions = assign_sessions(index, sched)
    opens = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8
    step = minutes * 60_000_000_000
    starts = opens[positions] + (index.asi8 - opens[positions]) // step * step
    grouped = bars.groupby(starts, sort=True)
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    return make_bars(pd.to_datetime(out.index.to_numpy(), utc=True), *(out[c] for c in BAR_COLUMNS))
