"""EventLoopBacktest: the bar-by-bar ORB confluence engine (strategy.md sections 1-8).

Everything that does not depend on the position (sessions, opening ranges, daily values, trigger
levels, arming, confluence flags) is computed once with numpy from causal data. The loop then walks
each session's bars in time order, carrying only the state a trader would: the open position,
the session's entries, consecutive losses and realized R, and the symbol's realized equity.

Fill times are the start stamp of the bar on which the fill happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from orb.config import FACTOR_NAMES, Config, Direction, EntryMode, SameBar, StopMode, hhmm_minutes
from orb.indicators import adx_prior, session_vwap, true_range, wilder_prior
from orb.metrics import drawdowns
from orb.schema import EQUITY_COLUMNS, EVENT_COLUMNS, FILL_COLUMNS, SESSION_COLUMNS, TRADE_COLUMNS
from orb.sessions import assign_sessions, schedule

LONG, SHORT = 1, -1
SIDE_NAME = {LONG: "long", SHORT: "short"}
# strategy.md 9.12: when several rules block the same bar, the first in this order is the reason.
BLOCK_ORDER = ("cutoff", "signal_cap", "lockout_losses", "lockout_daily_r", "ambiguous_bar", "confluence")


@dataclass(frozen=True)
class BacktestResult:
    """Frames of one symbol's backtest; columns per orb.schema and run-format.md."""

    symbol: str
    trades: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.DataFrame
    sessions: pd.DataFrame
    events: pd.DataFrame
    bars: pd.DataFrame


@dataclass(frozen=True)
class _Sessions:
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
    sessions: _Sessions
    first_reported: int

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
        sub = _Sessions(
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


class EventLoopBacktest:
    """Backtest one symbol: `EventLoopBacktest(config, "SPY").run(bars, start, end)`."""

    def __init__(self, config: Config, symbol: str):
        self.config = config
        self.symbol = symbol

    # ------------------------------------------------------------------ preparation
    def _regular_bars(
        self, bars: pd.DataFrame, start: date | None, end: date | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
        """Regular-hours bars of sessions present up to `end`, with their session position.

        Returns (bars, schedule of present sessions, session position per bar, flags of sessions whose
        raw bars had duplicate or unsorted stamps).
        """
        cfg = self.config
        raw_index = bars.index
        if raw_index.tz is None:
            raise ValueError("bars need a tz-aware UTC index (the bar contract)")
        dup = raw_index.duplicated(keep="last")
        stamps = raw_index.asi8
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
        present = np.unique(pos[keep])
        sched = sched.iloc[present]
        remap = np.full(max(int(pos.max()) + 1, 1), -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        ses = remap[pos[keep]]
        bars = bars[keep]
        dirty = np.zeros(len(sched), dtype=bool)  # sessions with a duplicate or out-of-order stamp
        if len(bad_ts):
            bad_pos = assign_sessions(pd.DatetimeIndex(bad_ts), sched)
            dirty[bad_pos[bad_pos >= 0]] = True
        return bars, sched, ses, dirty

    def _prepare(self, bars: pd.DataFrame, sched: pd.DataFrame, ses: np.ndarray, dirty: np.ndarray):
        cfg = self.config
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
        offset = (ts_ns - open_ns[ses]) // minute_ns  # minutes since the session open

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

        in_or = offset < or_minutes[ses]
        or_count = np.bincount(ses[in_or], minlength=n_ses)
        or_end = starts + or_count
        has_or = or_count > 0
        if n_ses:  # per-session max/min of the OR bars (the other bars are masked out)
            or_high = np.where(has_or, np.maximum.reduceat(np.where(in_or, h, -np.inf), starts), np.nan)
            or_low = np.where(has_or, np.minimum.reduceat(np.where(in_or, lo, np.inf), starts), np.nan)
        else:
            or_high = or_low = np.zeros(0)

        # Flatten time (strategy.md 5.5): the bar stamped flatten_time (or the last one before it) is
        # the session's last bar.
        ends = stops.copy()
        if cfg.trade.flatten_time is not None:
            local_open = sched["open"].dt.tz_convert(cfg.session.timezone)
            open_min = (local_open.dt.hour * 60 + local_open.dt.minute).to_numpy()
            flat_off = hhmm_minutes(cfg.trade.flatten_time) - open_min  # minutes after the open
            ends = starts + np.bincount(ses[offset <= flat_off[ses]], minlength=n_ses)
            ends = np.minimum(np.maximum(ends, starts), stops)

        # Skip reasons, in the order they become known (strategy.md 1, 2).
        need_atr = (
            cfg.trade.stop_mode in (StopMode.ATR, StopMode.ATR_CAPPED)
            or cfg.orb.min_width_atr is not None
            or cfg.orb.max_width_atr is not None
            or cfg.entry.buffer_atr > 0
        )
        invalid = self._validate_or(o, h, lo, c, v, ses, offset, starts, or_end, or_minutes, dirty)
        width = or_high - or_low
        with np.errstate(invalid="ignore", divide="ignore"):
            width_atr = width / atr
        skip: list[str] = []
        for s in range(n_ses):
            reason = ""
            if (need_atr and np.isnan(atr[s])) or adaptive_missing[s]:
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

        # rel_volume (9.13, 9.16): today's first-N-minute volume vs the same window of prior sessions.
        rv = cfg.confluence.rel_volume
        relvol_flag = np.zeros(n_ses, dtype=bool)
        for minutes in np.unique(or_minutes):
            window_vol = np.bincount(ses[offset < minutes], weights=v[offset < minutes], minlength=n_ses)
            csum = np.concatenate(([0.0], np.cumsum(window_vol)))
            idx = np.arange(n_ses)
            enough = idx >= rv.lookback_sessions
            lb = np.maximum(idx - rv.lookback_sessions, 0)
            prior_mean = (csum[idx] - csum[lb]) / rv.lookback_sessions
            with np.errstate(invalid="ignore", divide="ignore"):
                ok = enough & (prior_mean > 0) & (window_vol / prior_mean >= rv.min_ratio)
            relvol_flag = np.where(or_minutes == minutes, ok, relvol_flag)

        prev_high = np.concatenate(([np.nan], d_high[:-1]))
        prev_low = np.concatenate(([np.nan], d_low[:-1]))
        return (
            (o, h, lo, c, v),
            _Sessions(
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

    def _validate_or(self, o, h, lo, c, v, ses, offset, starts, or_end, or_minutes, dirty) -> list[str]:
        """OR data validation (strategy.md 2): a reason per session, "" when valid or not enforced."""
        n_ses = len(starts)
        if not self.config.orb.validate_or:
            return [""] * n_ses
        interval = self.config.data.interval_minutes
        out = []
        for s in range(n_ses):
            a, b = starts[s], or_end[s]
            expected = or_minutes[s] // interval
            offs = offset[a:b]
            if b == a:
                out.append("missing_bar")  # an empty window lacks every expected bar
            elif dirty[s]:
                out.append("duplicate_timestamp")
            elif b - a != expected or not np.array_equal(offs, np.arange(expected) * interval):
                out.append("missing_bar")
            elif (
                np.isnan(o[a:b]).any()
                or np.isnan(h[a:b]).any()
                or np.isnan(lo[a:b]).any()
                or np.isnan(c[a:b]).any()
            ):
                out.append("nan_value")
            elif (lo[a:b] > np.minimum(o[a:b], c[a:b])).any() or (np.maximum(o[a:b], c[a:b]) > h[a:b]).any():
                out.append("ohlc_violation")
            elif v[a:b].sum() <= 0:
                out.append("zero_volume")
            else:
                out.append("")
        return out

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        bars: pd.DataFrame,
        start: date | None = None,
        end: date | None = None,
        progress: Callable[[int, int], None] | None = None,
        skip_sessions: Mapping[date, str] | None = None,
    ) -> BacktestResult:
        """Backtest `bars` (the bar contract); sessions before `start` only warm up daily values.

        `progress(bars_done, bars_total)` is called every few sessions when given. A session date in
        `skip_sessions` is skipped with that reason (the data layer's `bad_bars`), before any other.
        """
        p = self.prepare(bars, start, end, skip_sessions)
        S, ts_ns, first_reported = p.sessions, p.ts_ns, p.first_reported
        loop = _Loop(self, *p.arrays, p.vwap, ts_ns, S)
        n_ses = len(S.starts)
        for s in range(first_reported, n_ses):
            loop.run_session(s)
            if progress is not None and (s % 32 == 31 or s == n_ses - 1):
                progress(int(S.starts[s + 1]) if s + 1 < n_ses else len(ts_ns), len(ts_ns))
        return loop.results(p.bars[p.ses >= first_reported])

    def prepare(
        self,
        bars: pd.DataFrame,
        start: date | None = None,
        end: date | None = None,
        skip_sessions: Mapping[date, str] | None = None,
    ) -> Prepared:
        """Everything that does not depend on the position, for the sessions up to `end`; a session date
        in `skip_sessions` is skipped with that reason (the data layer's `bad_bars`), before any other."""
        rth, sched, ses, dirty = self._regular_bars(bars, start, end)
        (o, h, lo, c, v), S = self._prepare(rth, sched, ses, dirty)
        for s, day in enumerate(S.dates if skip_sessions else ()):
            if reason := skip_sessions.get(day.date()):
                S.skip[s] = reason
        vwap = session_vwap(h, lo, c, v, S.starts) if len(S.starts) else np.zeros(0)
        first_reported = int(np.searchsorted(S.dates, pd.Timestamp(start))) if start is not None else 0
        return Prepared(rth, (o, h, lo, c, v), vwap, rth.index.as_unit("ns").asi8, ses, S, first_reported)

    def session_loop(self, prepared: Prepared) -> SessionLoop:
        """A loop that runs chosen sessions of `prepared` one at a time (portfolio mode, strategy.md 10.6)."""
        return SessionLoop(_Loop(self, *prepared.arrays, prepared.vwap, prepared.ts_ns, prepared.sessions),
                           prepared.bars)  # fmt: skip


@dataclass(frozen=True)
class SessionOutcome:
    """What one session added: trade rows (TRADE_COLUMNS order) and fill tuples (FILL_COLUMNS order)."""

    trades: list[dict]
    fills: list[tuple]


class SessionLoop:
    """The engine's own session rules (sections 3-6) for sessions chosen by the caller, each entry sized
    with a given equity (strategy.md 10.2, 10.9.5) instead of the symbol's realized equity."""

    def __init__(self, loop: _Loop, bars: pd.DataFrame):
        self._loop = loop
        self._bars = bars
        self._position = {day: s for s, day in enumerate(loop.dates)}

    def run_session(self, day: date, sizing_equity: float) -> SessionOutcome:
        loop = self._loop
        n_trades, n_fills = len(loop.trades), len(loop.fills)
        loop.sizing_equity = sizing_equity
        loop.run_session(self._position[day])
        return SessionOutcome(loop.trades[n_trades:], loop.fills[n_fills:])

    def results(self) -> BacktestResult:
        """The frames of every session run so far (equity and cum_r are this symbol's own)."""
        return self._loop.results(self._bars)


class _Loop:
    """Mutable state of one symbol's bar loop; produces the result frames."""

    def __init__(self, bt: EventLoopBacktest, o, h, lo, c, v, vwap, ts, S: _Sessions):
        cfg = bt.config
        self.cfg = cfg
        self.symbol = bt.symbol
        self.o, self.h, self.lo, self.c = o.tolist(), h.tolist(), lo.tolist(), c.tolist()
        self.h_arr, self.lo_arr = h, lo
        self.dates = [d.date() for d in S.dates]
        self.close_ns = S.close_ts.as_unit("ns").asi8.tolist()
        self.vwap = vwap.tolist()
        self.ts = ts.tolist()  # int64 ns since the epoch, UTC
        self.S = S
        self.equity = cfg.risk.initial_capital
        self.sizing_equity: float | None = None  # portfolio mode: alloc_d in place of equity (10.2)
        self.cum_r = 0.0
        self.trades: list[dict] = []
        self.fills: list[tuple] = []
        self.equity_rows: list[tuple] = []
        self.events: list[tuple] = []
        self.session_rows: list[tuple] = []
        self.slip = cfg.costs.slippage_per_share
        self.comm = cfg.costs.commission_per_share
        tz = cfg.session.timezone
        local = pd.DatetimeIndex(ts, tz="UTC").tz_convert(tz)
        self.local_minute = (local.hour * 60 + local.minute).to_numpy().tolist()
        self.cutoff = hhmm_minutes(cfg.entry.cutoff)
        self.pivot = cfg.confluence.price_action.pivot_len

    # -- confluence (strategy.md 4, 9.13, 9.16) --
    def _flags(self, s: int, e: int, side: int) -> dict[str, int]:
        S = self.S
        start = S.starts[s]
        close = self.c[e]
        k = self.pivot
        flags = {"rel_volume": int(S.relvol_flag[s])}
        vw = self.vwap[e]
        flags["vwap"] = int(not math.isnan(vw) and (close > vw if side == LONG else close < vw))
        if e - k >= start:
            if side == LONG:
                pa = self.h[e] > self.h[e - k] and self.lo[e] > self.lo[e - k]
            else:
                pa = self.h[e] < self.h[e - k] and self.lo[e] < self.lo[e - k]
        else:
            pa = False
        flags["price_action"] = int(pa)
        ph, pl = S.prev_high[s], S.prev_low[s]
        if math.isnan(ph):
            flags["profile"] = 0
        else:
            flags["profile"] = int(
                close > pl + 0.75 * (ph - pl) if side == LONG else close < pl + 0.25 * (ph - pl)
            )
        return flags

    def _confluence(self, s: int, e: int, side: int) -> tuple[bool, float, dict[str, int]]:
        conf = self.cfg.confluence
        factors = {name: getattr(conf, name) for name in FACTOR_NAMES}
        flags = {name: flag if factors[name].enabled else 0 for name, flag in self._flags(s, e, side).items()}
        score = float(sum(factors[name].weight * flag for name, flag in flags.items()))
        if not conf.enabled:
            return True, score, flags
        required = conf.weak_trend_required if self.S.adx_weak[s] else conf.required
        return score >= required, score, flags

    # -- session --
    def run_session(self, s: int) -> None:
        S = self.S
        date_ = self.dates[s]
        reason = S.skip[s]
        if reason:
            self._end_session(s, date_, "skipped", reason, 0, 0.0)
            return
        self.day = _Day()
        self.logged: set[tuple[int, str]] = set()
        mode = self.cfg.entry.mode
        if mode is EntryMode.STOP:
            self._session_stop_mode(s)
        elif mode is EntryMode.CLOSE:
            self._session_close_mode(s)
        else:
            self._session_or_candle(s)
        status = "traded" if self.day.entries else "no_signal"
        self._end_session(s, date_, status, "", self.day.entries, self.day.r)

    def _end_session(self, s: int, date_, status: str, reason: str, trades: int, day_r: float) -> None:
        S = self.S
        atr = S.atr[s]
        width = S.or_high[s] - S.or_low[s]
        self.session_rows.append(
            (
                date_,
                int(S.or_minutes[s]),
                S.or_high[s],
                S.or_low[s],
                width,
                atr,
                width / atr if atr > 0 else math.nan,
                status,
                reason or None,
                trades,
                day_r,
                S.upper[s],
                S.lower[s],
            )
        )
        self.equity_rows.append((self.close_ns[s], self.equity, self.cum_r))

    def _event(self, s: int, i: int, side: int, reason: str, detail: str) -> None:
        """Record a blocked opportunity once per (session, side, reason) (strategy.md 9.12)."""
        key = (side, reason)
        if key in self.logged:
            return
        self.logged.add(key)
        self.events.append((self.ts[i], self.symbol, self.dates[s], SIDE_NAME[side], reason, detail))

    def _governance_block(self, i: int) -> str:
        """First blocking rule of 9.12's order among the side-independent ones, or ""."""
        gov = self.cfg.governance
        day = self.day
        if self.local_minute[i] >= self.cutoff:
            return "cutoff"
        if day.entries >= gov.max_signals_per_day:
            return "signal_cap"
        if gov.lockout_after_losses and day.full_stops >= gov.lockout_after_losses:
            return "lockout_losses"
        if gov.max_daily_loss_r is not None and day.r <= -gov.max_daily_loss_r:
            return "lockout_daily_r"
        return ""

    def _allowed_sides(self, s: int) -> tuple[bool, bool]:
        """(long, short) allowed by `entry.direction` (strategy.md 11.1) for session s.

        `or_candle`: the sign of close(last OR bar) - open(first OR bar), bars present in the window;
        a doji allows neither side."""
        direction = self.cfg.entry.direction
        if direction is Direction.BOTH:
            return True, True
        if direction is Direction.LONG:
            return True, False
        if direction is Direction.SHORT:
            return False, True
        body = self.c[self.S.or_end[s] - 1] - self.o[self.S.starts[s]]
        return body > 0, body < 0

    def _session_stop_mode(self, s: int) -> None:
        """Stop orders at the trigger levels (strategy.md 3, 9.4, 9.12)."""
        S = self.S
        upper, lower = S.upper[s], S.lower[s]
        h, lo, c, o = self.h, self.lo, self.c, self.o
        last = S.ends[s] - 1
        i = S.or_end[s]
        long_ok, short_ok = self._allowed_sides(s)
        while i < last:  # the session's last bar never opens a position
            # armed and touched; a side entry.direction does not allow is never armed (11.1)
            long_opp = long_ok and c[i - 1] <= upper and h[i] >= upper
            short_opp = short_ok and c[i - 1] >= lower and lo[i] <= lower
            if not (long_opp or short_opp):
                i += 1
                continue
            sides = [side for side, ok in ((LONG, long_opp), (SHORT, short_opp)) if ok]
            block = self._governance_block(i)
            if not block and len(sides) == 2:
                block = "ambiguous_bar"  # both armed sides touched: the bar is skipped
            if block:
                for side in sides:
                    self._event(s, i, side, block, f"{SIDE_NAME[side]} trigger touched")
                i += 1
                continue
            side = sides[0]
            ok, score, flags = self._confluence(s, i - 1, side)  # data up to the close of t-1
            if not ok:
                self._event(s, i, side, "confluence", f"score {score:g} below required")
                i += 1
                continue
            # Stop entry: a gap through the level fills at the open (strategy.md 3).
            raw = max(upper, o[i]) if side == LONG else min(lower, o[i])
            exit_bar = self._enter(s, i, side, raw, score, flags)
            i = i + 1 if exit_bar is None else exit_bar + 1

    def _session_close_mode(self, s: int) -> None:
        """Close signals filled at the next bar's open (strategy.md 3, 9.14)."""
        S = self.S
        upper, lower = S.upper[s], S.lower[s]
        c, o = self.c, self.o
        last = S.ends[s] - 1
        i = S.or_end[s]
        long_ok, short_ok = self._allowed_sides(s)
        while i < last:
            long_sig = long_ok and c[i - 1] <= upper and c[i] > upper  # 11.1: only allowed sides arm
            short_sig = short_ok and c[i - 1] >= lower and c[i] < lower
            if not (long_sig or short_sig) or i + 1 >= last:  # t+1 must exist and not be the last bar
                i += 1
                continue
            side = LONG if long_sig else SHORT
            block = self._governance_block(i)
            if block:
                self._event(s, i, side, block, f"{SIDE_NAME[side]} close signal")
                i += 1
                continue
            ok, score, flags = self._confluence(s, i, side)  # data up to the close of t
            if not ok:
                self._event(s, i, side, "confluence", f"score {score:g} below required")
                i += 1
                continue
            exit_bar = self._enter(s, i + 1, side, o[i + 1], score, flags, signal_bar=i)
            i = i + 1 if exit_bar is None else exit_bar + 1

    def _session_or_candle(self, s: int) -> None:
        """Opening-candle direction, market entry on the first bar after the OR (9.15, 9.18)."""
        S = self.S
        a, b = S.starts[s], S.or_end[s]
        body = self.c[b - 1] - self.o[a]
        if body == 0 or b >= S.ends[s] - 1:  # no direction, or no entry bar before the last bar
            return
        side = LONG if body > 0 else SHORT
        if self.local_minute[b] >= self.cutoff:
            self._event(s, b, side, "cutoff", "first bar after the OR is past the cutoff")
            return
        ok, score, flags = self._confluence(s, b - 1, side)
        if not ok:
            self._event(s, b, side, "confluence", f"score {score:g} below required")
            return
        self._enter(s, b, side, self.o[b], score, flags)

    # -- a trade --
    def _enter(
        self,
        s: int,
        i: int,
        side: int,
        raw_price: float,
        score: float,
        flags: dict,
        signal_bar: int | None = None,
    ) -> int | None:
        """Size and open a position on bar i, manage it to its exit; return the exit bar (None: no trade).

        A blocked entry is recorded on the opportunity's bar: `signal_bar` in close mode, else i."""
        cfg = self.cfg
        S = self.S
        entry = raw_price + side * self.slip  # 9.1: entry_fill includes slippage
        or_stop = (
            S.or_low[s] - cfg.trade.stop_buffer if side == LONG else S.or_high[s] + cfg.trade.stop_buffer
        )
        mode = cfg.trade.stop_mode
        atr = S.atr[s]
        if mode is StopMode.OR_OPPOSITE:
            stop = or_stop
        elif mode is StopMode.ATR:
            stop = entry - side * cfg.trade.atr_stop_mult * atr
        else:  # atr_capped: never farther than atr_stop_mult ATR from the entry fill
            capped = entry - side * cfg.trade.atr_stop_mult * atr
            stop = max(or_stop, capped) if side == LONG else min(or_stop, capped)
        r_ps = (entry - stop) * side
        shares = 0
        if r_ps > 0:
            eq = self.equity if self.sizing_equity is None else self.sizing_equity
            shares = math.floor(min(eq * cfg.risk.risk_per_trade / r_ps, cfg.risk.max_leverage * eq / entry))
        if r_ps <= 0 or shares < 1:
            at = i if signal_bar is None else signal_bar
            self._event(s, at, side, "invalid_risk", f"risk per share {r_ps:.4f}, shares {shares}")
            return None

        t = cfg.trade
        if t.partials:
            q1 = math.floor(shares * t.t1_pct)
            q2 = math.floor(shares * t.t2_pct) if t.t2_pct > 0 else 0
            legs = [
                ["t1", entry + side * t.t1_r * r_ps, q1],
                *([["t2", entry + side * t.t2_r * r_ps, q2]] if t.t2_pct > 0 else []),
                ["target", entry + side * t.runner_r * r_ps, shares - q1 - q2],
            ]
        elif t.target_r is not None:
            legs = [["target", entry + side * t.target_r * r_ps, shares]]
        else:
            legs = []  # 11.2: no target; the position exits by its stop or at the session's end
        trade_id = f"{self.symbol}-{len(self.trades) + 1:05d}"
        self.day.entries += 1
        pos = _Position(trade_id, side, entry, stop, r_ps, shares, legs)
        self._fill(pos, i, "entry", entry, shares)
        exit_bar = self._manage(s, i, pos)
        self._close_trade(s, pos, i, exit_bar, score, flags)
        return exit_bar

    def _fill(self, pos: _Position, i: int, kind: str, price: float, qty: int) -> None:
        """Book one fill: commission always, leg P&L on exits; equity row after it (strategy.md 7)."""
        commission = qty * self.comm
        pnl = -commission
        if kind != "entry":
            gross = (price - pos.entry) * qty * pos.side
            pos.gross += gross
            pos.remaining -= qty
            pnl += gross
            pos.exit_price = price
            pos.exit_kind = kind
        pos.commission += commission
        self.equity += pnl
        self.cum_r += pnl / (pos.r_ps * pos.shares)
        self.fills.append((pos.trade_id, self.symbol, self.ts[i], kind, price, qty, commission))
        self.equity_rows.append((self.ts[i], self.equity, self.cum_r))

    def _manage(self, s: int, i0: int, pos: _Position) -> int:
        """Walk bars from the entry bar until the position is flat; return the exit bar."""
        last = self.S.ends[s] - 1
        o, h, lo, c = self.o, self.h, self.lo, self.c
        side = pos.side
        slip = self.slip
        ohlc_path = self.cfg.trade.same_bar is SameBar.OHLC_PATH
        be_level = pos.entry + side * self.cfg.trade.be_buffer
        i = i0
        while True:
            stop = pos.stop
            if i > i0:
                # Fast scan: skip bars that touch neither the stop nor the next target.
                target = pos.legs[0][1] if pos.legs else side * math.inf
                if side == LONG:
                    while i < last and o[i] > stop and lo[i] > stop and h[i] < target:
                        i += 1
                else:
                    while i < last and o[i] < stop and h[i] < stop and lo[i] > target:
                        i += 1
            fav, adv = (h[i], lo[i]) if side == LONG else (lo[i], h[i])
            stop_kind = "breakeven" if pos.at_breakeven else "stop"
            stop_touched = adv <= stop if side == LONG else adv >= stop
            if i == i0:
                # 5.1 / 9.5: on the entry bar only the stop is checked, filled at the stop price.
                if stop_touched:
                    self._fill(pos, i, stop_kind, stop - side * slip, pos.remaining)
                    return i
            elif (o[i] - stop) * side <= 0:
                # 5.2: the bar opens through the stop: everything left exits at the open.
                self._fill(pos, i, stop_kind, o[i] - side * slip, pos.remaining)
                return i
            elif stop_touched:
                # 5.3: stop and (maybe) targets on one bar. pessimistic: the stop comes first.
                # ohlc_path: targets the open already reached fill first; then O->L->H->C when
                # close >= open (stop first for a long), else O->H->L->C (a long's targets first).
                if ohlc_path:
                    self._fill_targets(pos, i, o[i])
                    targets_first = (c[i] < o[i]) if side == LONG else (c[i] >= o[i])  # the bar's path
                    if targets_first and pos.remaining:
                        self._fill_targets(pos, i, fav)
                if pos.remaining:
                    self._fill(pos, i, stop_kind, stop - side * slip, pos.remaining)
                return i
            else:
                # 5.4: each pending target touched fills at its price, in order.
                self._fill_targets(pos, i, fav)
            if pos.remaining == 0:
                return i
            if pos.t1_reached and not pos.at_breakeven:
                # 9.6: the breakeven stop takes effect from the bar after T1.
                pos.stop = be_level
                pos.at_breakeven = True
                if i < last:
                    pos.be_time = self.ts[i + 1]
            if i >= last:
                # 5.5 / 9.7: at the session's last bar whatever is left exits at the close.
                self._fill(pos, i, "eod", c[i] - side * slip, pos.remaining)
                return i
            i += 1

    def _fill_targets(self, pos: _Position, i: int, reach: float) -> None:
        """Fill, in order, every pending target the price `reach` touched (9.6, 9.8)."""
        while pos.legs:
            kind, price, qty = pos.legs[0]
            if (reach - price) * pos.side < 0:
                return
            pos.legs.pop(0)
            if kind == "t1":
                pos.t1_reached = True
            if qty > 0:  # 9.8: a leg of 0 shares does not fill
                if kind == "t1":
                    pos.t1_filled = True
                elif kind == "t2":
                    pos.t2_filled = True
                self._fill(pos, i, kind, price, qty)

    def _close_trade(self, s: int, pos: _Position, i0: int, i1: int, score: float, flags: dict) -> None:
        S = self.S
        initial_risk = pos.r_ps * pos.shares
        net = pos.gross - pos.commission
        r = net / initial_risk
        reason = {"t1": "target", "t2": "target"}.get(pos.exit_kind, pos.exit_kind)
        day = self.day
        day.r += r
        # 9.9: a full-stop loss adds 1, a winner resets, anything else leaves the count.
        if reason == "stop" and not (pos.t1_filled or pos.t2_filled):
            day.full_stops += 1
        elif r > 0:
            day.full_stops = 0
        legs = {kind: price for kind, price, _ in pos.initial_legs}
        # MFE/MAE from the bars while open, entry and exit bars included (strategy.md 5).
        hi, lw = self.h_arr[i0 : i1 + 1].max(), self.lo_arr[i0 : i1 + 1].min()
        mfe, mae = (hi - pos.entry, lw - pos.entry) if pos.side == LONG else (pos.entry - lw, pos.entry - hi)
        mfe, mae = max(mfe, 0.0), min(mae, 0.0)  # the entry fill itself is an excursion of 0
        entry_time, exit_time = self.ts[i0], self.ts[i1]
        self.trades.append(
            {
                "trade_id": pos.trade_id,
                "symbol": self.symbol,
                "session_date": self.dates[s],
                "side": SIDE_NAME[pos.side],
                "entry_time": entry_time,
                "entry_price": pos.entry,
                "stop_price": pos.initial_stop,
                "r_per_share": pos.r_ps,
                "shares": pos.shares,
                "t1_price": legs.get("t1", math.nan),
                "t2_price": legs.get("t2", math.nan),
                "target_price": legs.get("target", math.nan),
                "exit_time": exit_time,
                "exit_price": pos.exit_price,
                "exit_reason": reason,
                "t1_filled": pos.t1_filled,
                "t2_filled": pos.t2_filled,
                "gross_pnl": pos.gross,
                "commission": pos.commission,
                "net_pnl": net,
                "initial_risk": initial_risk,
                "r_multiple": r,
                "gross_r": pos.gross / initial_risk,
                "mfe_r": mfe / pos.r_ps,
                "mae_r": mae / pos.r_ps,
                "holding_minutes": (exit_time - entry_time) / 60e9,
                "or_high": S.or_high[s],
                "or_low": S.or_low[s],
                "or_minutes": int(S.or_minutes[s]),
                "score": score,
                "breakeven_time": pos.be_time,
                **{f"factor_{name}": flags[name] for name in FACTOR_NAMES},
            }
        )

    # -- output frames --
    def results(self, bars: pd.DataFrame) -> BacktestResult:
        """The frames, with the same dtypes whether they hold rows or not."""
        factor_cols = [f"factor_{name}" for name in FACTOR_NAMES]
        trades = _frame(
            self.trades,
            [*TRADE_COLUMNS, *factor_cols],
            {"trade_id": "str", "symbol": "str", "side": "str", "exit_reason": "str", "shares": "int64",
             "or_minutes": "int64", "t1_filled": "bool", "t2_filled": "bool",
             "entry_time": _TIME, "exit_time": _TIME, "breakeven_time": _TIME,
             **dict.fromkeys(factor_cols, "int64")},
        )  # fmt: skip
        fills = _frame(
            self.fills,
            FILL_COLUMNS,
            {"trade_id": "str", "symbol": "str", "kind": "str", "time": _TIME, "shares": "int64"},
        )
        eq = _frame(self.equity_rows, ("timestamp", "equity", "cum_r"), {"timestamp": _TIME})
        eq = eq.sort_values("timestamp", kind="stable", ignore_index=True)
        dd_pct, dd_r = drawdowns(
            eq["equity"].to_numpy(), eq["cum_r"].to_numpy(), initial_equity=self.cfg.risk.initial_capital
        )
        equity = eq.assign(drawdown_pct=dd_pct, drawdown_r=dd_r)[list(EQUITY_COLUMNS)]
        sessions = _frame(
            self.session_rows,
            SESSION_COLUMNS,
            {"or_minutes": "int64", "trades": "int64", "status": "str", "skip_reason": "str"},
        )
        events = _frame(
            self.events,
            EVENT_COLUMNS,
            {"time": _TIME, "symbol": "str", "side": "str", "reason": "str", "detail": "str"},
        )
        return BacktestResult(self.symbol, trades, fills, equity, sessions, events, bars)


_TIME = "datetime64[ns, UTC]"
_NAT = np.iinfo(np.int64).min  # int64 ns that pandas reads as NaT


def _frame(rows: list, columns, dtypes: dict[str, str]) -> pd.DataFrame:
    """Rows as a frame with fixed dtypes; time columns hold int64 ns since the epoch (UTC)."""
    frame = pd.DataFrame(rows, columns=list(columns))
    for col, dtype in dtypes.items():
        if dtype == _TIME:
            frame[col] = pd.to_datetime(frame[col].astype("int64"), utc=True).astype(_TIME)
        else:
            frame[col] = frame[col].astype(dtype)
    return frame


class _Day:
    """Per-session governance state (strategy.md 6), reset at each session open."""

    __slots__ = ("entries", "full_stops", "r")

    def __init__(self) -> None:
        self.entries = 0
        self.full_stops = 0
        self.r = 0.0


class _Position:
    """An open position and its pending target legs [kind, price, shares]."""

    __slots__ = (
        "trade_id",
        "side",
        "entry",
        "stop",
        "initial_stop",
        "r_ps",
        "shares",
        "remaining",
        "legs",
        "initial_legs",
        "t1_reached",
        "t1_filled",
        "t2_filled",
        "at_breakeven",
        "be_time",
        "gross",
        "commission",
        "exit_price",
        "exit_kind",
        "mfe",
        "mae",
    )

    def __init__(self, trade_id, side, entry, stop, r_ps, shares, legs):
        self.trade_id = trade_id
        self.side = side
        self.entry = entry
        self.stop = stop
        self.initial_stop = stop
        self.r_ps = r_ps
        self.shares = shares
        self.remaining = shares
        self.legs = legs
        self.initial_legs = [tuple(leg) for leg in legs]
        self.t1_reached = False
        self.t1_filled = False
        self.t2_filled = False
        self.at_breakeven = False
        self.be_time = _NAT  # stamp of the first bar under the breakeven stop
        self.gross = 0.0
        self.commission = 0.0
        self.exit_price = math.nan
        self.exit_kind = ""
