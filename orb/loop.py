"""The bar loop of one symbol (strategy.md sections 3-7, 9, 11): it walks each session in time order,
carrying only the state a trader would: the open position, the session's entries, consecutive losses
and realized R, and the symbol's realized equity. It visits only the bars that can act: while flat, the
bars where an armed, allowed side touches its trigger (found for all sessions at once with numpy);
while in a position, the next bar that touches the stop or the next target (a numpy scan from the
current bar). Every other bar changes nothing. Fill times are the start stamp of the fill's bar.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from operator import itemgetter

import numpy as np
import pandas as pd

from orb.config import FACTOR_NAMES, Config, EntryMode, SameBar, StopMode, hhmm_minutes
from orb.loop_rows import EPOCH_ORDINAL, TIME, BacktestResult, Day, Position, frame
from orb.loop_scan import find_opportunities, session_lists
from orb.metrics import MetricInputs, drawdowns
from orb.prepare import Prepared
from orb.schema import EQUITY_COLUMNS, EVENT_COLUMNS, FILL_COLUMNS, SESSION_COLUMNS, TRADE_COLUMNS

LONG, SHORT = 1, -1
SIDE_NAME = {LONG: "long", SHORT: "short"}
# strategy.md 9.12: when several rules block the same bar, the first in this order is the reason.
BLOCK_ORDER = ("cutoff", "signal_cap", "lockout_losses", "lockout_daily_r", "ambiguous_bar", "confluence")
TRADE_ROW = (*TRADE_COLUMNS, *(f"factor_{name}" for name in FACTOR_NAMES))  # a trade row's values
MFE_AT = TRADE_ROW.index("mfe_r")  # mae_r follows


class Loop:
    """Mutable state of one symbol's bar loop; produces the result frames."""

    def __init__(self, cfg: Config, symbol: str, p: Prepared, record: bool = True):
        self.record = record  # False: fills and events are not kept (`measure`)
        self.cfg = cfg
        self.symbol = symbol
        self.o, self.h, self.lo, self.c, _ = p.arrays
        self.vwap = p.vwap
        self.ts = p.ts_ns  # int64 ns since the epoch, UTC
        self.skip = p.sessions.skip
        lists = p.derived.get("lists")
        if lists is None:
            lists = p.derived["lists"] = session_lists(p)
        self.L = lists
        self.dates = lists.dates
        self.equity = cfg.risk.initial_capital
        self.sizing_equity: float | None = None  # portfolio mode: alloc_d in place of equity (10.2)
        self.cum_r = 0.0
        self.trades: list = []  # lists in TRADE_ROW order (dicts of the metric inputs when not `record`)
        self.pending: list[tuple] = []  # (row, entry bar, exit bar, long, entry, r_ps): no MFE/MAE yet
        self.fills: list[tuple] = []
        self.equity_rows: list[tuple] = []
        self.events: list[tuple] = []
        self.session_rows: list[tuple] = []
        self.slip = cfg.costs.slippage_per_share
        self.comm = cfg.costs.commission_per_share
        self.cutoff = hhmm_minutes(cfg.entry.cutoff)
        gov = cfg.governance
        self.max_signals, self.lockout_losses, self.max_loss_r = (
            gov.max_signals_per_day,
            gov.lockout_after_losses,
            gov.max_daily_loss_r,
        )
        self.pivot = cfg.confluence.price_action.pivot_len
        conf = cfg.confluence
        self.factors = [(name, getattr(conf, name)) for name in FACTOR_NAMES]
        # (session, bar, side) -> _confluence's answer, shared by the loops on `p` with this confluence
        self.scored = p.derived.setdefault(("confluence", conf), {})
        key = ("opportunities", cfg.entry.mode, cfg.entry.direction, cfg.session.timezone)
        if key not in p.derived:
            p.derived[key] = find_opportunities(cfg, p)
        (
            self.or_minute,
            self.opp,
            self.opp_long,
            self.opp_short,
            self.opp_minute,
            self.opp_from,
            self.opp_to,
        ) = p.derived[key]

    # -- confluence (strategy.md 4, 9.13, 9.16) --
    def _flags(self, s: int, e: int, side: int) -> dict[str, int]:
        L = self.L
        h, lo = self.h, self.lo
        close = self.c.item(e)
        k = self.pivot
        flags = {"rel_volume": int(L.relvol_flag[s])}
        vw = self.vwap.item(e)
        flags["vwap"] = int(not math.isnan(vw) and (close > vw if side == LONG else close < vw))
        if e - k >= L.starts[s]:
            if side == LONG:
                pa = h.item(e) > h.item(e - k) and lo.item(e) > lo.item(e - k)
            else:
                pa = h.item(e) < h.item(e - k) and lo.item(e) < lo.item(e - k)
        else:
            pa = False
        flags["price_action"] = int(pa)
        ph, pl = L.prev_high[s], L.prev_low[s]
        if math.isnan(ph):
            flags["profile"] = 0
        else:
            flags["profile"] = int(
                close > pl + 0.75 * (ph - pl) if side == LONG else close < pl + 0.25 * (ph - pl)
            )
        return flags

    def _confluence(self, s: int, e: int, side: int) -> tuple[bool, float, dict[str, int]]:
        """(allowed, score, flags) of an entry on `side` with data up to the close of bar e; the flags are
        shared (read only)."""
        key = (s, e, side)
        found = self.scored.get(key)
        if found is None:
            found = self.scored[key] = self._score(s, e, side)
        return found

    def _score(self, s: int, e: int, side: int) -> tuple[bool, float, dict[str, int]]:
        conf = self.cfg.confluence
        raw = self._flags(s, e, side)
        flags = {name: raw[name] if factor.enabled else 0 for name, factor in self.factors}
        score = float(sum(factor.weight * flags[name] for name, factor in self.factors))
        if not conf.enabled:
            return True, score, flags
        required = conf.weak_trend_required if self.L.adx_weak[s] else conf.required
        return score >= required, score, flags

    # -- session --
    def run_session(self, s: int) -> None:
        date_ = self.dates[s]
        reason = self.skip[s]
        if reason:
            self._end_session(s, date_, "skipped", reason, 0, 0.0)
            return
        self.day = Day()
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
        L = self.L
        atr = L.atr[s]
        width = L.or_high[s] - L.or_low[s]
        self.session_rows.append(
            (
                date_,
                L.or_minutes[s],
                L.or_high[s],
                L.or_low[s],
                width,
                atr,
                width / atr if atr > 0 else math.nan,
                status,
                reason or None,
                trades,
                day_r,
                L.upper[s],
                L.lower[s],
            )
        )
        self.equity_rows.append((L.close_ns[s], self.equity, self.cum_r))

    def _event(self, s: int, i: int, side: int, reason: str, detail: str) -> None:
        """Record a blocked opportunity once per (session, side, reason) (strategy.md 9.12)."""
        key = (side, reason)
        if not self.record or key in self.logged:
            return
        self.logged.add(key)
        self.events.append((self.ts.item(i), self.symbol, self.dates[s], SIDE_NAME[side], reason, detail))

    def _day_block(self) -> str:
        """First blocking rule of 9.12's order among those on the session's state (after `cutoff`, which
        the bar's time decides), or ""."""
        day = self.day
        if day.entries >= self.max_signals:
            return "signal_cap"
        if self.lockout_losses and day.full_stops >= self.lockout_losses:
            return "lockout_losses"
        if self.max_loss_r is not None and day.r <= -self.max_loss_r:
            return "lockout_daily_r"
        return ""

    def _blocked(
        self, s: int, k: int, end: int, day_block: str, details: tuple[str, str], one_side: bool
    ) -> int:
        """Record the events of session s's opportunities from k on while a governance rule blocks them;
        return the first that no rule blocks (`end`: none). While flat and blocked the session's state
        does not change, so `day_block` (_day_block's answer) holds throughout; `cutoff` comes first.
        `one_side` (close mode): an opportunity acts on its long side if that is armed, else its short."""
        opp, minute, longs, shorts = self.opp, self.opp_minute, self.opp_long, self.opp_short
        cutoff = self.cutoff
        for j in range(k, end):
            block = "cutoff" if minute[j] >= cutoff else day_block
            if not block:
                return j
            if longs[j]:
                self._event(s, opp[j], LONG, block, details[0])
            if shorts[j] and not (one_side and longs[j]):
                self._event(s, opp[j], SHORT, block, details[1])
        return end

    def _session_stop_mode(self, s: int) -> None:
        """Stop orders at the trigger levels (strategy.md 3, 9.4, 9.12)."""
        upper, lower = self.L.upper[s], self.L.lower[s]
        o, opp, opp_minute, cutoff = self.o, self.opp, self.opp_minute, self.cutoff
        opp_long, opp_short = self.opp_long, self.opp_short
        k, end = self.opp_from[s], self.opp_to[s]
        while k < end:
            i = opp[k]  # armed and touched; a side entry.direction does not allow is never armed (11.1)
            long_ok, short_ok = opp_long[k], opp_short[k]
            day_block = self._day_block()
            if day_block or opp_minute[k] >= cutoff:
                if not self.record:
                    break  # each governance rule holds to the session's end: only events would follow
                k = self._blocked(
                    s, k, end, day_block, ("long trigger touched", "short trigger touched"), False
                )
                continue
            k += 1
            if long_ok and short_ok:
                for side in (LONG, SHORT):  # both armed sides touched: the bar is skipped
                    self._event(s, i, side, "ambiguous_bar", f"{SIDE_NAME[side]} trigger touched")
                continue
            side = LONG if long_ok else SHORT
            ok, score, flags = self._confluence(s, i - 1, side)  # data up to the close of t-1
            if not ok:
                self._event(s, i, side, "confluence", f"score {score:g} below required")
                continue
            # Stop entry: a gap through the level fills at the open (strategy.md 3).
            raw = max(upper, o.item(i)) if side == LONG else min(lower, o.item(i))
            exit_bar = self._enter(s, i, side, raw, score, flags)
            if exit_bar is not None:  # the next opportunity is after the exit bar
                k = bisect_left(opp, exit_bar + 1, k, end)

    def _session_close_mode(self, s: int) -> None:
        """Close signals filled at the next bar's open (strategy.md 3, 9.14)."""
        o, opp, opp_long, opp_minute, cutoff = self.o, self.opp, self.opp_long, self.opp_minute, self.cutoff
        k, end = self.opp_from[s], self.opp_to[s]
        while k < end:
            i = opp[k]  # an armed, allowed side closed beyond its trigger; t+1 is not the last bar
            side = LONG if opp_long[k] else SHORT
            day_block = self._day_block()
            if day_block or opp_minute[k] >= cutoff:
                if not self.record:
                    break  # as in stop mode: no entry can follow
                k = self._blocked(s, k, end, day_block, ("long close signal", "short close signal"), True)
                continue
            k += 1
            ok, score, flags = self._confluence(s, i, side)  # data up to the close of t
            if not ok:
                self._event(s, i, side, "confluence", f"score {score:g} below required")
                continue
            exit_bar = self._enter(s, i + 1, side, o.item(i + 1), score, flags, signal_bar=i)
            if exit_bar is not None:
                k = bisect_left(opp, exit_bar + 1, k, end)

    def _session_or_candle(self, s: int) -> None:
        """Opening-candle direction, market entry on the first bar after the OR (9.15, 9.18)."""
        L = self.L
        a, b = L.starts[s], L.or_end[s]
        body = self.c.item(b - 1) - self.o.item(a)
        if body == 0 or b >= L.ends[s] - 1:  # no direction, or no entry bar before the last bar
            return
        side = LONG if body > 0 else SHORT
        if self.or_minute[s] >= self.cutoff:
            self._event(s, b, side, "cutoff", "first bar after the OR is past the cutoff")
            return
        ok, score, flags = self._confluence(s, b - 1, side)
        if not ok:
            self._event(s, b, side, "confluence", f"score {score:g} below required")
            return
        self._enter(s, b, side, self.o.item(b), score, flags)

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
        L = self.L
        entry = raw_price + side * self.slip  # 9.1: entry_fill includes slippage
        or_stop = (
            L.or_low[s] - cfg.trade.stop_buffer if side == LONG else L.or_high[s] + cfg.trade.stop_buffer
        )
        mode = cfg.trade.stop_mode
        atr = L.atr[s]
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
        pos = Position(trade_id, side, entry, stop, r_ps, shares, legs)
        self._fill(pos, i, "entry", entry, shares)
        exit_bar = self._manage(s, i, pos)
        self._close_trade(s, pos, i, exit_bar, score, flags)
        return exit_bar

    def _fill(self, pos: Position, i: int, kind: str, price: float, qty: int) -> None:
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
        if kind != "entry" and pos.remaining == 0:  # 7 / 10.9.7: cum_r moves by r_multiple at the last fill
            self.cum_r += (pos.gross - pos.commission) / (pos.r_ps * pos.shares)
        ts = self.ts.item(i)
        if self.record:
            self.fills.append((pos.trade_id, self.symbol, ts, kind, price, qty, commission))
        self.equity_rows.append((ts, self.equity, self.cum_r))

    def _manage(self, s: int, i0: int, pos: Position) -> int:
        """Walk bars from the entry bar until the position is flat; return the exit bar."""
        last = self.L.ends[s] - 1
        o, h, lo, c = self.o, self.h, self.lo, self.c
        low_open, high_open = self.L.low_open, self.L.high_open
        side = pos.side
        slip = self.slip
        ohlc_path = self.cfg.trade.same_bar is SameBar.OHLC_PATH
        be_level = pos.entry + side * self.cfg.trade.be_buffer
        i = i0
        while True:
            stop = pos.stop
            if i0 < i < last:
                # Skip the bars before the last that touch neither the stop nor the next target.
                target = pos.legs[0][1] if pos.legs else side * math.inf
                if side == LONG:  # a NaN makes a bar not quiet, as in the bar-by-bar rules
                    quiet = (low_open[i:last] > stop) & (h[i:last] < target)
                else:
                    quiet = (high_open[i:last] < stop) & (lo[i:last] > target)
                k = int(quiet.argmin())  # the first bar that is not quiet
                i = last if quiet[k] else i + k
            oi, hi, li, ci = o.item(i), h.item(i), lo.item(i), c.item(i)  # Python floats
            fav, adv = (hi, li) if side == LONG else (li, hi)
            stop_kind = "breakeven" if pos.at_breakeven else "stop"
            stop_touched = adv <= stop if side == LONG else adv >= stop
            if i == i0:
                # 5.1 / 9.5: on the entry bar only the stop is checked, filled at the stop price.
                if stop_touched:
                    self._fill(pos, i, stop_kind, stop - side * slip, pos.remaining)
                    return i
            elif (oi - stop) * side <= 0:
                # 5.2: the bar opens through the stop: everything left exits at the open.
                self._fill(pos, i, stop_kind, oi - side * slip, pos.remaining)
                return i
            elif stop_touched:
                # 5.3: stop and (maybe) targets on one bar. pessimistic: the stop comes first.
                # ohlc_path: targets the open already reached fill first; then O->L->H->C when
                # close >= open (stop first for a long), else O->H->L->C (a long's targets first).
                if ohlc_path:
                    self._fill_targets(pos, i, oi)
                    targets_first = (ci < oi) if side == LONG else (ci >= oi)  # the bar's path
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
                    pos.be_time = self.ts.item(i + 1)
            if i >= last:
                # 5.5 / 9.7: at the session's last bar whatever is left exits at the close.
                self._fill(pos, i, "eod", ci - side * slip, pos.remaining)
                return i
            i += 1

    def _fill_targets(self, pos: Position, i: int, reach: float) -> None:
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

    def _close_trade(self, s: int, pos: Position, i0: int, i1: int, score: float, flags: dict) -> None:
        L = self.L
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
        entry_time, exit_time = self.ts.item(i0), self.ts.item(i1)
        holding = (exit_time - entry_time) / 60e9
        if not self.record:  # `measure`: only what the metrics read (metric_inputs)
            self.trades.append(
                {"entry_time": entry_time, "r_multiple": r, "net_pnl": net, "side": SIDE_NAME[pos.side],
                 "exit_reason": reason, "holding_minutes": holding}
            )  # fmt: skip
            return
        legs = {kind: price for kind, price, _ in pos.initial_legs}
        row = [
            pos.trade_id,
            self.symbol,
            L.dates[s],
            SIDE_NAME[pos.side],
            entry_time,
            pos.entry,
            pos.initial_stop,
            pos.r_ps,
            pos.shares,
            legs.get("t1", math.nan),
            legs.get("t2", math.nan),
            legs.get("target", math.nan),
            exit_time,
            pos.exit_price,
            reason,
            pos.t1_filled,
            pos.t2_filled,
            pos.gross,
            pos.commission,
            net,
            initial_risk,
            r,
            pos.gross / initial_risk,
            math.nan,  # mfe_r and mae_r: set by _excursions
            math.nan,
            holding,
            L.or_high[s],
            L.or_low[s],
            L.or_minutes[s],
            score,
            pos.be_time,
            *[flags[name] for name in FACTOR_NAMES],
        ]
        self.trades.append(row)
        self.pending.append((row, i0, i1, pos.side == LONG, pos.entry, pos.r_ps))

    def excursions(self) -> None:
        """Set mfe_r and mae_r of the trades closed since the last call, all at once: from the bars while
        open, entry and exit bars included (strategy.md 5); the entry fill itself is an excursion of 0."""
        if not self.pending:
            return
        rows, *columns = zip(*self.pending, strict=True)
        self.pending = []
        i0, i1, long, entry, r_ps = map(np.array, columns)
        bounds = np.stack((i0, i1), axis=1).ravel()  # reduceat over [i0, i1), then bar i1 itself
        hi = np.maximum(np.maximum.reduceat(self.h, bounds)[::2], self.h[i1])
        lw = np.minimum(np.minimum.reduceat(self.lo, bounds)[::2], self.lo[i1])
        with np.errstate(all="ignore"):  # as Python float arithmetic: inf or NaN, never a warning
            mfe = np.maximum(np.where(long, hi - entry, entry - lw), 0.0) / r_ps
            mae = np.minimum(np.where(long, lw - entry, entry - hi), 0.0) / r_ps
        for row, up, down in zip(rows, mfe.tolist(), mae.tolist(), strict=True):
            row[MFE_AT], row[MFE_AT + 1] = up, down

    # -- output frames --
    def metric_inputs(self) -> MetricInputs:
        """What `results` would give the metrics, straight from the rows (equity sorted by time, stable)."""
        trades = self.trades
        columns = list(zip(*self.equity_rows, strict=True)) or [(), (), ()]
        ts, equity, cum_r = (
            np.array(c, dtype=t) for c, t in zip(columns, (np.int64, float, float), strict=True)
        )
        order = np.argsort(ts, kind="stable")
        days = np.array([row[0].toordinal() for row in self.session_rows], dtype=np.int64) - EPOCH_ORDINAL
        return MetricInputs(
            entry_time=np.array([t["entry_time"] for t in trades], dtype=np.int64).view("M8[ns]"),
            r_multiple=np.array([t["r_multiple"] for t in trades], dtype=np.float64),
            net_pnl=np.array([t["net_pnl"] for t in trades], dtype=np.float64),
            side=np.array([t["side"] for t in trades], dtype=object),
            exit_reason=np.array([t["exit_reason"] for t in trades], dtype=object),
            holding_minutes=np.array([t["holding_minutes"] for t in trades], dtype=np.float64),
            equity_ns=ts[order],
            equity=equity[order],
            cum_r=cum_r[order],
            session_days=days.view("M8[D]"),
            status=np.array([row[7] for row in self.session_rows], dtype=object),
        )

    def results(self, bars: pd.DataFrame, lean: bool = False) -> BacktestResult:
        """The frames, with the same dtypes whether they hold rows or not (`lean`: fills and events empty)."""
        self.excursions()
        factor_cols = TRADE_ROW[len(TRADE_COLUMNS) :]
        trades = frame(
            self.trades,
            TRADE_ROW,
            {"trade_id": "str", "symbol": "str", "side": "str", "exit_reason": "str", "shares": "int64",
             "or_minutes": "int64", "t1_filled": "bool", "t2_filled": "bool",
             "entry_time": TIME, "exit_time": TIME, "breakeven_time": TIME,
             **dict.fromkeys(factor_cols, "int64")},
        )  # fmt: skip
        fills = frame(
            [] if lean else self.fills,
            FILL_COLUMNS,
            {"trade_id": "str", "symbol": "str", "kind": "str", "time": TIME, "shares": "int64"},
        )
        rows = sorted(self.equity_rows, key=itemgetter(0))  # by time, stable
        equity = frame(rows, EQUITY_COLUMNS[:3], {"timestamp": TIME})
        equity["drawdown_pct"], equity["drawdown_r"] = drawdowns(
            equity["equity"].to_numpy(),
            equity["cum_r"].to_numpy(),
            initial_equity=self.cfg.risk.initial_capital,
        )  # the columns of EQUITY_COLUMNS, in order
        sessions = frame(
            self.session_rows,
            SESSION_COLUMNS,
            {"or_minutes": "int64", "trades": "int64", "status": "str", "skip_reason": "str"},
        )
        events = frame(
            [] if lean else self.events,
            EVENT_COLUMNS,
            {"time": TIME, "symbol": "str", "side": "str", "reason": "str", "detail": "str"},
        )
        return BacktestResult(self.symbol, trades, fills, equity, sessions, events, bars)
