"""Session preparation: regular-hours bars, their sessions, and everything the engine computes before
its loop (strategy.md 1-4): daily values, opening ranges, skip reasons, trigger levels, confluence flags.

Nothing here depends on a position; all of it is causal (a session's values use prior sessions only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from orb.config import Config, EntryMode, StopMode, hhmm_minutes
from orb.indicators import adx_prior, session_vwap, true_range, wilder_prior
from orb.sessions import assign_sessions, schedule
from orb.validation import validate_or


@dataclass(frozen=True)
class Sessions:
    """Per-session arrays (position s = the s-th session present in the data)."""

    dates: pd.DatetimeIndex
    close_ts: pd.DatetimeIndex
    starts: np.ndarray  # first bar index
    ends: np.ndarray  # one past the last usable bar (flatten_time applied)
    or_end: np.ndarray  # one past the last OR bar
    or_minutes: np.ndarray
    or_high: np.ndarray
    or_low: np.ndarray
    atr: np.ndarray
    skip: list[str]  # skip reason or ""
    upper: np.ndarray
    lower: np.ndarray
    adx_weak: np.ndarray
    relvol_flag: np.ndarray
    prev_high: np.ndarray
    prev_low: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """One symbol's regular-hours bars and everything computed before the loop (`EventLoopBacktest.prepare`).

    Session position s is the s-th session present; sessions before `first_reported` only warm up."""

    bars: pd.DataFrame
    arrays: tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
    ]  # open, high, low, close, volume
    vwap: np.ndarray
    ts_ns: np.ndarray
    ses: np.ndarray  # session position of each bar
    sessions: Sessions
    first_reported: int
    # What a loop derives from these arrays for one entry rule, kept for the next loop on them (sweeps).
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    def reported_bars(self) -> pd.DataFrame:
        """The bars of the reported sessions (a run's bars snapshot)."""
        return self.bars[self.ses >= self.first_reported] if self.first_reported else self.bars

    def only(self, positions: np.ndarray) -> Prepared:
        """The same values for the sessions at `positions` only (ascending): their bars and per-session
        arrays, sliced, never recomputed, so a session runs exactly as it does in the full data."""
        S = self.sessions
        pos = np.asarray(positions, dtype=np.int64)
        stops = np.append(S.starts[1:], len(self.ts_ns))[pos]
        lengths = stops - S.starts[pos]
        idx = np.concatenate([np.arange(a, b) for a, b in zip(S.starts[pos], stops, strict=True)] or [[]])
        idx = idx.astype(np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)[: len(pos)]
        shift = starts - S.starts[pos]
        sub = Sessions(
            dates=S.dates[pos],
            close_ts=S.close_ts[pos],
            starts=starts,
            ends=S.ends[pos] + shift,
            or_end=S.or_end[pos] + shift,
            skip=[S.skip[s] for s in pos],
            **{
                name: getattr(S, name)[pos]
                for name in ("or_minutes", "or_high", "or_low", "atr", "upper", "lower", "adx_weak",
                             "relvol_flag", "prev_high", "prev_low")
            },
        )  # fmt: skip
        return Prepared(
            bars=self.bars.iloc[idx],
            arrays=tuple(a[idx] for a in self.arrays),
            vwap=self.vwap[idx],
            ts_ns=self.ts_ns[idx],
            ses=np.repeat(np.arange(len(pos)), lengths),
            sessions=sub,
            first_reported=0,
        )


def regular_bars(
    cfg: Config, bars: pd.DataFrame, end: date | None
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Regular-hours bars of sessions present up to `end`, with their session position.

    Returns (bars, schedule of present sessions, session position per bar, flags of the bars whose
    stamp was duplicated or out of order in the raw bars).
    """
    raw_index = bars.index
    if raw_index.tz is None:
        raise ValueError("bars need a tz-aware UTC index (the bar contract)")
    stamps = raw_index.asi8
    if (np.diff(stamps) > 0).all():  # strictly increasing: no duplicate, none out of order
        bad_ts = raw_index[:0]
    else:
        dup = raw_index.duplicated(keep="last")
        backwards = np.flatnonzero(np.diff(stamps) < 0)  # bar i+1 stamped before bar i
        bad_ts = raw_index[np.union1d(np.flatnonzero(dup), np.concatenate((backwards, backwards + 1)))]
        if len(bad_ts):
            bars = bars[~dup].sort_index(kind="stable")
    index = bars.index
    if len(index) == 0:
        empty = schedule("2000-01-03", "2000-01-02", cfg.session.calendar)
        return bars, empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    tz = cfg.session.timezone
    first = index[0].tz_convert(tz).date()
    last = index[-1].tz_convert(tz).date()
    sched = schedule(first - pd.Timedelta(days=1), last, cfg.session.calendar)
    if end is not None:
        sched = sched.loc[: pd.Timestamp(end)]
    pos = assign_sessions(index, sched)
    keep = pos >= 0
    held = pos[keep]  # non-decreasing: the bars are in time order here
    present = held[np.concatenate(([True], held[1:] != held[:-1]))] if len(held) else held
    sched = sched.iloc[present]
    remap = np.full(max(int(pos.max()) + 1, 1), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    ses = remap[held]
    bars = bars[keep]
    bad_bar = bars.index.isin(bad_ts) if len(bad_ts) else np.zeros(len(bars), dtype=bool)
    return bars, sched, ses, bad_bar


def session_arrays(
    cfg: Config, bars: pd.DataFrame, sched: pd.DataFrame, ses: np.ndarray, bad_bar: np.ndarray
) -> tuple[tuple[np.ndarray, ...], Sessions]:
    """The bar arrays (open, high, low, close, volume) and every per-session value of strategy.md 1-4;
    `bad_bar` flags the bars whose raw stamp was duplicated or out of order."""
    o = bars["open"].to_numpy(dtype=np.float64)
    h = bars["high"].to_numpy(dtype=np.float64)
    lo = bars["low"].to_numpy(dtype=np.float64)
    c = bars["close"].to_numpy(dtype=np.float64)
    v = bars["volume"].to_numpy(dtype=np.float64)
    n_ses = len(sched)
    starts = np.searchsorted(ses, np.arange(n_ses))
    stops = np.append(starts[1:], len(ses))
    ts_ns = bars.index.as_unit("ns").asi8
    open_ns = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8
    minute_ns = 60_000_000_000
    since_open = ts_ns - np.repeat(open_ns, stops - starts)  # ns; a session's bars are contiguous

    def before(minutes: np.ndarray) -> np.ndarray:
        """Per session, one past its last bar stamped less than `minutes` after the open (ts is sorted)."""
        return np.clip(np.searchsorted(ts_ns, open_ns + minutes.astype(np.int64) * minute_ns), starts, stops)

    # Daily values from regular-hours bars (strategy.md 1): high, low, close per session.
    d_high = np.maximum.reduceat(h, starts) if n_ses else np.zeros(0)
    d_low = np.minimum.reduceat(lo, starts) if n_ses else np.zeros(0)
    d_close = c[stops - 1] if n_ses else np.zeros(0)
    tr = true_range(d_high, d_low, d_close)
    atr = wilder_prior(tr, cfg.orb.atr_period)

    # Opening-range length per session (strategy.md 2, adaptive from prior sessions only).
    or_minutes = np.full(n_ses, cfg.orb.base_minutes, dtype=np.int64)
    adaptive_missing = np.zeros(n_ses, dtype=bool)
    if cfg.orb.adaptive and cfg.entry.mode is not EntryMode.OR_CANDLE:  # 9.18: or_candle uses base
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = wilder_prior(tr, 5) / wilder_prior(tr, 20)
        adaptive_missing = np.isnan(ratio)
        or_minutes = np.where(ratio < cfg.orb.adaptive_low, cfg.orb.short_minutes, or_minutes)
        or_minutes = np.where(ratio > cfg.orb.adaptive_high, cfg.orb.long_minutes, or_minutes)

    or_end = before(or_minutes)
    has_or = or_end > starts
    if n_ses:  # per-session max/min of the OR bars [starts, or_end) (a NaN after h: or_end may be n)
        bounds = np.stack((starts, or_end), axis=1).ravel()
        or_high = np.where(has_or, np.maximum.reduceat(np.append(h, np.nan), bounds)[::2], np.nan)
        or_low = np.where(has_or, np.minimum.reduceat(np.append(lo, np.nan), bounds)[::2], np.nan)
    else:
        or_high = or_low = np.zeros(0)

    # Flatten time (strategy.md 5.5): the bar stamped flatten_time (or the last one before it) is
    # the session's last bar.
    ends = stops.copy()
    if cfg.trade.flatten_time is not None:
        local_open = sched["open"].dt.tz_convert(cfg.session.timezone)
        open_min = (local_open.dt.hour * 60 + local_open.dt.minute).to_numpy()
        flat_off = hhmm_minutes(cfg.trade.flatten_time) - open_min  # minutes after the open
        ends = before(flat_off + 1)  # the bars at most flat_off minutes after the open

    # Skip reasons, in the order they become known (strategy.md 1, 2).
    if cfg.orb.validate_or:
        interval = cfg.data.interval_minutes
        offset = since_open // minute_ns  # minutes since the session open
        in_or = np.arange(len(ses)) < np.repeat(or_end, stops - starts)
        dirty = np.bincount(ses[in_or & bad_bar], minlength=n_ses) > 0  # 2: in the OR window only
        invalid = validate_or(o, h, lo, c, v, offset, starts, or_end, or_minutes, dirty, interval)
    else:
        invalid = [""] * n_ses
    skip = _skip_reasons(cfg, or_high - or_low, atr, adaptive_missing, invalid, has_or)

    # Trigger levels (strategy.md 3, 9.17).
    buffer = cfg.entry.buffer_fixed + (cfg.entry.buffer_atr * atr if cfg.entry.buffer_atr > 0 else 0.0)
    upper = or_high + buffer
    lower = or_low - buffer

    # ADX weak trend (strategy.md 4, 9.13): unavailable ADX does not mark the trend weak.
    adx_cfg = cfg.confluence.adx
    if adx_cfg.enabled:
        adx = adx_prior(d_high, d_low, d_close, adx_cfg.period)
        adx_weak = ~np.isnan(adx) & (adx < adx_cfg.threshold)
    else:
        adx_weak = np.zeros(n_ses, dtype=bool)

    relvol_flag = _relvol_flags(cfg, v, ses, since_open, or_minutes)
    prev_high = np.concatenate(([np.nan], d_high[:-1]))
    prev_low = np.concatenate(([np.nan], d_low[:-1]))
    return (
        (o, h, lo, c, v),
        Sessions(
            dates=pd.DatetimeIndex(sched.index),
            close_ts=pd.DatetimeIndex(sched["close"]),
            starts=starts,
            ends=ends,
            or_end=or_end,
            or_minutes=or_minutes,
            or_high=or_high,
            or_low=or_low,
            atr=atr,
            skip=skip,
            upper=upper,
            lower=lower,
            adx_weak=adx_weak,
            relvol_flag=relvol_flag,
            prev_high=prev_high,
            prev_low=prev_low,
        ),
    )


def _skip_reasons(cfg: Config, width, atr, adaptive_missing, invalid: list[str], has_or) -> list[str]:
    """Per session the first reason not to trade it (strategy.md 1, 2), "" when none."""
    need_atr = (
        cfg.trade.stop_mode in (StopMode.ATR, StopMode.ATR_CAPPED)
        or cfg.orb.min_width_atr is not None
        or cfg.orb.max_width_atr is not None
        or cfg.entry.buffer_atr > 0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        width_atr = (width / atr).tolist()
    no_atr = (np.isnan(atr) if need_atr else np.zeros(len(atr), dtype=bool)) | adaptive_missing
    no_atr, has_or, width = no_atr.tolist(), has_or.tolist(), width.tolist()
    skip: list[str] = []
    for s in range(len(width)):
        reason = ""
        if no_atr[s]:
            reason = "warmup"
        elif invalid[s]:  # with validation, an empty window is `missing_bar`
            reason = invalid[s]
        elif not has_or[s]:
            reason = "no_or_bars"
        elif width[s] == 0:
            reason = "zero_width"
        elif cfg.orb.min_width_atr is not None and width_atr[s] < cfg.orb.min_width_atr:
            reason = "width_below_min"
        elif cfg.orb.max_width_atr is not None and width_atr[s] > cfg.orb.max_width_atr:
            reason = "width_above_max"
        skip.append(reason)
    return skip


def _relvol_flags(cfg: Config, v, ses, since_open, or_minutes) -> np.ndarray:
    """rel_volume (9.13, 9.16): today's first-N-minute volume vs the same window of prior sessions
    (`since_open`: each bar's ns since its session open)."""
    n_ses = len(or_minutes)
    rv = cfg.confluence.rel_volume
    relvol_flag = np.zeros(n_ses, dtype=bool)
    for minutes in np.unique(or_minutes):
        window = since_open < minutes * 60_000_000_000
        window_vol = np.bincount(ses[window], weights=v[window], minlength=n_ses)
        csum = np.concatenate(([0.0], np.cumsum(window_vol)))
        idx = np.arange(n_ses)
        enough = idx >= rv.lookback_sessions
        lb = np.maximum(idx - rv.lookback_sessions, 0)
        prior_mean = (csum[idx] - csum[lb]) / rv.lookback_sessions
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = enough & (prior_mean > 0) & (window_vol / prior_mean >= rv.min_ratio)
        relvol_flag = np.where(or_minutes == minutes, ok, relvol_flag)
    return relvol_flag


def prepare(
    cfg: Config,
    bars: pd.DataFrame,
    start: date | None = None,
    end: date | None = None,
    skip_sessions: Mapping[date, str] | None = None,
) -> Prepared:
    """Everything that does not depend on the position, for the sessions up to `end`; sessions before
    `start` only warm up daily values. A session date in `skip_sessions` is skipped with that reason
    (the data layer's `bad_bars`), before any other."""
    rth, sched, ses, bad_bar = regular_bars(cfg, bars, end)
    (o, h, lo, c, v), S = session_arrays(cfg, rth, sched, ses, bad_bar)
    if skip_sessions:
        skip = [skip_sessions.get(day.date()) or reason for day, reason in zip(S.dates, S.skip, strict=True)]
        S = replace(S, skip=skip)
    vwap = session_vwap(h, lo, c, v, S.starts) if len(S.starts) else np.zeros(0)
    first_reported = int(np.searchsorted(S.dates, pd.Timestamp(start))) if start is not None else 0
    return Prepared(rth, (o, h, lo, c, v), vwap, rth.index.as_unit("ns").asi8, ses, S, first_reported)


def prepare_key(cfg: Config) -> str:
    """The config values `prepare` reads: two configs with the same key prepare identical sessions from
    the same bars (sweeps share one `Prepared` across such combinations)."""
    models = (cfg.session, cfg.orb, cfg.confluence.adx, cfg.confluence.rel_volume)
    scalars = (
        cfg.data.interval_minutes,
        cfg.entry.mode is EntryMode.OR_CANDLE,
        cfg.entry.buffer_fixed,
        cfg.entry.buffer_atr,
        cfg.trade.stop_mode,
        cfg.trade.flatten_time,
    )
    return "|".join(map(repr, (*models, *scalars)))  # a section's repr shows every field


class PreparedMemo:
    """The last few `Prepared` of one process, by symbol, bars object, window and `prepare_key`.

    The bars are the caller's: they must not change while the memo holds them."""

    def __init__(self, size: int = 6):
        self.size = size
        self._held: dict[tuple, Prepared] = {}

    def get(
        self,
        cfg: Config,
        symbol: str,
        bars: pd.DataFrame,
        start: date | None,
        end: date | None,
        skip_sessions: Mapping[date, str] | None = None,
    ) -> Prepared:
        skip = tuple(sorted((skip_sessions or {}).items()))
        key = (symbol, id(bars), len(bars), start, end, skip, prepare_key(cfg))
        found = self._held.pop(key, None)
        if found is None:
            found = prepare(cfg, _up_to(bars, cfg, end), start, end, dict(skip))
            while len(self._held) >= self.size:
                self._held.pop(next(iter(self._held)))
        self._held[key] = found  # most recently used last
        return found


def _up_to(bars: pd.DataFrame, cfg: Config, end: date | None) -> pd.DataFrame:
    """The bars stamped before the day after `end` (exchange-local), so nothing later is seen."""
    if end is None:
        return bars
    next_day = pd.Timestamp(end, tz=cfg.session.timezone) + pd.Timedelta(days=1)
    return bars.iloc[: bars.index.searchsorted(next_day.tz_convert("UTC"))]
