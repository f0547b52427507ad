"""Deterministic synthetic minute bars that follow the exchange calendar.

Every random number is a counter-based hash of (seed, symbol, calendar day, stream, minute), so a
session's bars depend only on its date: any sub-range gives identical bars for the sessions it shares
with a larger range. The price level is a slow mean-reverting walk over every calendar day from
1990 (with a small upward drift, anchored at the symbol's early-2024 level); a session closes on
that walk's value for its date and opens at the previous calendar day's value plus an overnight
gap, so each open is consistent with the prior session's close. Inside the session the path is a
Brownian bridge from open to close with U-shaped volatility; trend days (a large move for the
day) and range days (a small one) alternate by a per-day draw; volume is U-shaped with a closing
auction spike, higher on trend days and on volatile minutes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from orb.data.bars import empty_bars, make_bars
from orb.sessions import schedule

ORIGIN = date(1990, 1, 1)
HORIZON = date(2049, 12, 31)
ANCHOR = date(2024, 1, 2)
DRIFT_PER_YEAR = 0.07
REVERSION_DAYS = 180.0
TREND_DAY_SHARE = 0.3  # weekdays whose close-to-close move is large (trend days)
TREND_BASE = 0.8  # trend-day move: sigma * (TREND_BASE + 0.5|z|)
RANGE_SCALE = 0.7  # range-day move: sigma * RANGE_SCALE * z
INTRADAY_NOISE = 0.9  # intraday bridge noise, in daily sigmas
MAX_MINUTES = 390

# Hash streams: one per kind of draw, so no two draws share a counter.
_DAILY, _REGIME, _VOLCLUSTER, _GAP, _DAYVOLUME, _STEP, _WICK_HIGH, _WICK_LOW, _MINUTE_VOLUME = range(9)
_NEWS = 9  # universe mode only: news days

# Universe mode (`universe=True`, portfolio runs): news days on a share of weekdays, with a large move
# for the day and the opening half hour's volume many times normal.
NEWS_DAY_SHARE = 0.04
NEWS_MOVE = 2.5  # news-day move: sigma * (NEWS_MOVE + |z|), in the direction of z
NEWS_DAY_VOLUME = 2.5  # whole-day volume factor on a news day
NEWS_OPEN_VOLUME = 6.0  # extra factor on the first NEWS_OPEN_MINUTES minutes' volume
NEWS_OPEN_MINUTES = 30

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class SymbolProfile:
    """Price level near 2024-01-02, daily volatility (log) and typical daily volume of a symbol."""

    level: float
    daily_vol: float
    daily_volume: float


KNOWN_PROFILES = {
    "SPY": SymbolProfile(470.0, 0.009, 70e6),
    "QQQ": SymbolProfile(400.0, 0.012, 45e6),
    "IWM": SymbolProfile(200.0, 0.014, 30e6),
}


def _digest_u64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def symbol_profile(symbol: str) -> SymbolProfile:
    """The known profile, or one derived from a stable hash of the symbol (level 20 to 640)."""
    if symbol in KNOWN_PROFILES:
        return KNOWN_PROFILES[symbol]
    h = _digest_u64(f"orb-profile:{symbol}")
    u1, u2, u3 = (((h >> shift) & 0xFFFF) / 65535.0 for shift in (0, 16, 32))
    return SymbolProfile(
        level=round(20.0 * 2.0 ** (5.0 * u1), 2),
        daily_vol=0.012 + 0.013 * u2,
        daily_volume=10 ** (5.5 + 1.5 * u3),
    )


def universe_profile(symbol: str) -> SymbolProfile:
    """Universe mode: the known profile, or a wider one than `symbol_profile` so that every universe
    bound matters (level $1 to $1,000, daily volatility 1 % to 5 %, daily volume 30,000 to 30 M)."""
    if symbol in KNOWN_PROFILES:
        return KNOWN_PROFILES[symbol]
    h = _digest_u64(f"orb-universe-profile:{symbol}")
    u1, u2, u3 = (((h >> shift) & 0xFFFF) / 65535.0 for shift in (0, 16, 32))
    return SymbolProfile(
        level=round(10.0 ** (3.0 * u1), 2),
        daily_vol=0.01 + 0.04 * u2,
        daily_volume=10 ** (4.5 + 3.0 * u3),
    )


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _uniform(key: int, day: np.ndarray, stream: int, counter: np.ndarray | int = 0) -> np.ndarray:
    """Uniforms in (0, 1) hashed from (key, day, stream, counter); shapes broadcast."""
    day_u = np.asarray(day, dtype=np.uint64)
    base = _splitmix(np.asarray(key, dtype=np.uint64) ^ _splitmix(day_u * np.uint64(64) + np.uint64(stream)))
    h = _splitmix(base + np.asarray(counter, dtype=np.uint64))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _normal(key: int, day: np.ndarray, stream: int, counter: np.ndarray | int = 0) -> np.ndarray:
    """Standard normals by Box-Muller over two hashed uniforms."""
    c = np.asarray(counter, dtype=np.uint64) * np.uint64(2)
    u1 = _uniform(key, day, stream, c)
    u2 = _uniform(key, day, stream, c + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class _DailyPath:
    """Per calendar day from ORIGIN: log close level, overnight gap, intraday volatility, volume factor."""

    log_close: np.ndarray
    gap: np.ndarray
    intraday_vol: np.ndarray
    volume_factor: np.ndarray


@lru_cache(maxsize=32)
def _daily_path(key: int, symbol: str, universe: bool = False) -> _DailyPath:
    profile = universe_profile(symbol) if universe else symbol_profile(symbol)
    first = ORIGIN.toordinal()
    days = np.arange(first, HORIZON.toordinal() + 1, dtype=np.int64)
    weekday = ((days - 1) % 7) < 5  # date.fromordinal(1) is a Monday
    cluster_noise = _normal(key, days, _VOLCLUSTER)
    window = 21
    cluster = np.convolve(cluster_noise, np.ones(window), mode="full")[: days.size] / np.sqrt(window)
    vol_factor = np.exp(0.25 * cluster)
    sigma = profile.daily_vol * vol_factor * np.where(weekday, 1.0, 0.25)
    z = _normal(key, days, _DAILY)
    trend = weekday & (_uniform(key, days, _REGIME) < TREND_DAY_SHARE)
    step = sigma * np.where(trend, np.sign(z) * (TREND_BASE + 0.5 * np.abs(z)), RANGE_SCALE * z)
    news = _news_days(key, symbol, days) if universe else None
    if news is not None:
        step = np.where(news, sigma * np.sign(z) * (NEWS_MOVE + np.abs(z)), step)
    phi = np.exp(-1.0 / REVERSION_DAYS)
    t = np.arange(days.size, dtype=np.float64)
    walk = phi**t * np.cumsum(step * phi**-t)  # x[t] = phi * x[t-1] + step[t], vectorised
    anchor = ANCHOR.toordinal() - first
    drift = DRIFT_PER_YEAR * (t - anchor) / 365.25
    log_close = np.log(profile.level) + drift + walk - walk[anchor]
    gap = 0.35 * sigma * _normal(key, days, _GAP)
    day_volume = profile.daily_volume * vol_factor * np.where(trend, 1.35, 0.9)
    day_volume = day_volume * np.exp(0.3 * _normal(key, days, _DAYVOLUME) - 0.045)
    if news is not None:
        day_volume = np.where(news, day_volume * NEWS_DAY_VOLUME, day_volume)
    return _DailyPath(log_close, gap, INTRADAY_NOISE * sigma, day_volume)


def _news_days(key: int, symbol: str, days: np.ndarray) -> np.ndarray:
    """Weekdays that are news days for `symbol` (none for the known index ETFs)."""
    weekday = ((days - 1) % 7) < 5
    if symbol in KNOWN_PROFILES:
        return np.zeros(days.size, dtype=bool)
    return weekday & (_uniform(key, days, _NEWS) < NEWS_DAY_SHARE)


def news_days(symbol: str, start: date, end: date, seed: int, calendar_code: str = "XNYS") -> list[date]:
    """The sessions start..end that are news days of `symbol` in universe mode."""
    sched = schedule(start, end, calendar_code)
    ordinals = np.array([d.toordinal() for d in sched.index.date], dtype=np.int64)
    flags = _news_days(_stream_key(seed, symbol), symbol, ordinals)
    return [d for d, f in zip(sched.index.date, flags, strict=True) if f]


def _stream_key(seed: int, symbol: str) -> int:
    return _digest_u64(f"orb-synthetic:{seed}:{symbol}")


def generate_bars(
    symbol: str,
    start: date,
    end: date,
    interval_minutes: int,
    seed: int,
    calendar_code: str = "XNYS",
    universe: bool = False,
) -> pd.DataFrame:
    """Regular-hours bars (bar contract) of every session with start <= session date <= end.

    `universe=True` (portfolio runs) draws the symbol from `universe_profile` and adds news days."""
    if interval_minutes < 1 or MAX_MINUTES % interval_minutes:
        raise ValueError(f"interval_minutes must divide {MAX_MINUTES}, got {interval_minutes}")
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if start <= ORIGIN or end > HORIZON:
        raise ValueError(f"synthetic bars cover {ORIGIN} to {HORIZON}; got {start} to {end}")
    sched = schedule(start, end, calendar_code)
    if sched.empty:
        return empty_bars()
    key = _stream_key(seed, symbol)
    path = _daily_path(key, symbol, universe)
    ordinals = np.array([d.toordinal() for d in sched.index.date], dtype=np.int64)
    day_idx = ordinals - ORIGIN.toordinal()
    opens_ns = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8
    closes_ns = pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8
    n_minutes = np.minimum((closes_ns - opens_ns) // 60_000_000_000, MAX_MINUTES)

    k = np.arange(MAX_MINUTES)
    valid = k[None, :] < n_minutes[:, None]
    n = n_minutes[:, None].astype(np.float64)
    x = k[None, :] / np.maximum(n - 1.0, 1.0)
    shape = np.where(valid, 0.6 + 1.0 * (2.0 * x - 1.0) ** 2 + 1.2 * np.exp(-k[None, :] / 12.0), 0.0)
    shape = shape * np.sqrt(n / (shape**2).sum(axis=1, keepdims=True))  # sum of shape**2 == minutes

    day = ordinals[:, None]
    step_sd = (path.intraday_vol[day_idx] / np.sqrt(n_minutes))[:, None] * shape
    z = _normal(key, day, _STEP, k[None, :])
    walk = np.cumsum(step_sd * z, axis=1)
    clock = np.cumsum(shape**2, axis=1) / n  # variance time, 1 at the session's last minute
    open_log = path.log_close[day_idx - 1] + path.gap[day_idx]
    move = path.log_close[day_idx] - open_log
    last = walk[np.arange(len(day_idx)), n_minutes - 1]
    log_close = open_log[:, None] + walk - clock * (last - move)[:, None]

    close = np.exp(log_close)
    open_ = np.concatenate([np.exp(open_log)[:, None], close[:, :-1]], axis=1)
    wick_high = np.abs(_normal(key, day, _WICK_HIGH, k[None, :])) * step_sd * 0.6
    wick_low = np.abs(_normal(key, day, _WICK_LOW, k[None, :])) * step_sd * 0.6
    high = np.maximum(open_, close) * np.exp(wick_high)
    low = np.minimum(open_, close) * np.exp(-wick_low)

    end_dist = (n_minutes[:, None] - 1 - k[None, :]).astype(np.float64)
    weight = np.where(valid, 0.45 + 2.6 * np.exp(-k[None, :] / 18.0) + 1.4 * np.exp(-end_dist / 22.0), 0.0)
    weight = np.where(end_dist == 0, weight * 6.0, weight)
    if universe:  # a news day's opening half hour trades many times its normal volume
        news = _news_days(key, symbol, ordinals)[:, None] & (k[None, :] < NEWS_OPEN_MINUTES)
        weight = np.where(news, weight * NEWS_OPEN_VOLUME, weight)
    weight = weight / weight.sum(axis=1, keepdims=True)
    noise = np.exp(0.35 * _normal(key, day, _MINUTE_VOLUME, k[None, :]) - 0.06125) * (0.75 + 0.3 * np.abs(z))
    volume = np.maximum(np.rint(path.volume_factor[day_idx][:, None] * weight * noise), 1.0)

    open_, high, low, close, volume, valid = _aggregate(
        open_, high, low, close, volume, valid, interval_minutes
    )
    open_, close = np.round(open_, 2), np.round(close, 2)
    high = np.maximum(np.round(high, 2), np.maximum(open_, close))
    low = np.minimum(np.round(low, 2), np.minimum(open_, close))
    step_ns = interval_minutes * 60_000_000_000
    stamps = opens_ns[:, None] + np.arange(valid.shape[1])[None, :] * step_ns
    index = pd.DatetimeIndex(stamps[valid].astype("datetime64[ns]")).tz_localize(
        "UTC"
    )  # fast path, same index
    return make_bars(
        index, open_[valid], high[valid], low[valid], close[valid], volume[valid].astype(np.int64)
    )


def _aggregate(open_, high, low, close, volume, valid, m: int):
    """Combine (sessions x minutes) grids into m-minute bars; a bar exists when its first minute does."""
    if m == 1:
        return open_, high, low, close, volume, valid
    rows, cols = open_.shape
    shape = (rows, cols // m, m)
    ok = valid.reshape(shape)
    count = ok.sum(axis=2)
    last = np.maximum(count - 1, 0)
    pick = np.take_along_axis
    closes = pick(close.reshape(shape), last[:, :, None], axis=2)[:, :, 0]
    highs = np.where(ok, high.reshape(shape), -np.inf).max(axis=2)
    lows = np.where(ok, low.reshape(shape), np.inf).min(axis=2)
    volumes = np.where(ok, volume.reshape(shape), 0.0).sum(axis=2)
    return open_.reshape(shape)[:, :, 0], highs, lows, closes, volumes, ok[:, :, 0]
