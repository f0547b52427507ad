"""The bar loop of one symbol (strategy.md sections 3-7, 9, 11): it walks each session in time order,
carrying only the state a trader would: the open position, the session's entries, consecutive losses
and realized R, and the symbol's realized equity. It visits only the bars that can act: while flat, the
bars where an armed, allowed side touches its trigger (found for all sessions at once with numpy);
while in a position, the next bar that touches the stop or the next target (a numpy scan from the
current bar). Every other bar changes nothing. Fill times are the start stamp of the fill's bar.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from orb.config import FACTOR_NAMES, Config, Direction, EntryMode, SameBar, StopMode, hhmm_minutes
from orb.loop_rows import EPOCH_ORDINAL, TIME, BacktestResult, Day, Position, frame
from orb.metrics import MetricInputs, drawdowns
from orb.prepare import Prepared
from orb.schema import EQUITY_COLUMNS, EVENT_COLUMNS, FILL_COLUMNS, SESSION_COLUMNS, TRADE_COLUMNS

LONG, SHORT = 1, -1
SIDE_NAME = {LONG: "long", SHORT: "short"}
# strategy.md 9.12: when several rules block the same bar, the first in this order is the reason.
BLOCK_ORDER = ("cutoff", "signal_cap", "lockout_losses", "lockout_daily_r", "ambiguous_bar", "confluence")


class Loop:
    """Mutable state of one symbol's bar loop; produces the result frames."""

    def __init__(self, cfg: Config, symbol: str, p: Prepared, record: bool = True):
        self.record = record  # False: fills and events are not kept (`measure`)
        self.cfg = cfg
        self.symbol = symbol
        self.o, self.h, self.lo, self.c, _ = p.arrays
        self.vwap = p.vwap
        self.ts = p.ts_ns  # int64 ns since the epoch, UTC
        self.S = S = p.sessions
        derived = p.derived.get("loop")
        if derived is None:
            with np.errstate(invalid="ignore"):  # NaN when either is NaN
                low_open, high_open = np.minimum(self.o, self.lo), np.maximum(self.o, self.h)
            dates = [d.date() for d in S.dates]
            derived = (dates, S.close_ts.as_unit("ns").asi8.tolist(), low_open, high_open, p.ses)
            p.derived["loop"] = derived
        self.dates, self.close_ns, self.low_open, self.high_open, self._ses = derived
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
        self.cutoff = hhmm_minutes(cfg.entry.cutoff)
        self.pivot = cfg.confluence.price_action.pivot_len
        conf = cfg.confluence
        self.factors = [(name, getattr(conf, name)) for name in FACTOR_NAMES]
        # (session, bar, side) -> _confluence's answer, shared by the loops on `p` with this confluence
        self.scored = p.derived.setdefault(("confluence", conf.model_dump_json()), {})
        key = ("opportunities", cfg.entry.mode, cfg.entry.direction, cfg.session.timezone)
        if key not in p.derived:
            p.derived[key] = self._find_opportunities()
        (
            self.or_minute,
            self.opp,
            self.opp_long,
            self.opp_short,
            self.opp_minute,
            self.opp_from,
            self.opp_to,
        ) = p.derived[key]

    def _local_minutes(self, idx: np.ndarray) -> list[int]:
        """Exchange-local minute of the day (hour * 60 + minute) of the bars at `idx`."""
        local = pd.DatetimeIndex(self.ts[idx], tz="UTC").tz_convert(self.cfg.session.timezone)
        return (local.hour * 60 + local.minute).to_numpy().tolist()

    def _find_opportunities(self) -> tuple:
        """The bars on which an entry rule can act, found for every session at once with numpy.

        stop mode: a side is armed and its trigger touched (strategy.md 3); close mode: an armed side's
        close beyond its trigger with t+1 not the session's last bar (9.14); only sides `entry.direction`
        allows (11.1); bars from the first after the OR to before the last. Every other bar can do
        nothing while flat, so the loop visits these bars only. Session s holds `opp[opp_from[s]:
        opp_to[s]]`; `opp_long`/`opp_short` say which sides act, `opp_minute` the local minute.
        or_candle mode: `or_minute`, the local minute of each session's first bar after the OR."""
        S, n = self.S, len(self.ts)
        mode = self.cfg.entry.mode
        if mode is EntryMode.OR_CANDLE:
            or_minute = self._local_minutes(np.minimum(S.or_end, max(n - 1, 0))) if n else []
            return or_minute, [], [], [], [], [], []
        ses = self._ses
        long_ok, short_ok = self._allowed_sides()
        c, upper, lower = self.c, S.upper[ses], S.lower[ses]
        c_prev = np.concatenate(([np.nan], c[:-1]))  # close(t-1); t is never a session's first bar here
        last = S.ends - 1  # the session's last bar never opens a position
        if mode is EntryMode.STOP:
            stop_at = last
            long_act = (c_prev <= upper) & (self.h >= upper)
            short_act = (c_prev >= lower) & (self.lo <= lower)
        else:
            stop_at = last - 1  # t+1 must exist and not be the last bar
            long_act = (c_prev <= upper) & (c > upper)
            short_act = (c_prev >= lower) & (c < lower)
        idx = np.arange(n)
        window = (idx >= S.or_end[ses]) & (idx < stop_at[ses])
        long_act &= long_ok[ses]
        short_act &= short_ok[ses]
        opp = np.flatnonzero(window & (long_act | short_act))
        return (
            [],
            opp.tolist(),
            long_act[opp].tolist(),
            short_act[opp].tolist(),
            self._local_minutes(opp),
            np.searchsorted(opp, S.or_end).tolist(),
            np.searchsorted(opp, np.maximum(stop_at, S.or_end)).tolist(),
        )

    # -- confluence (strategy.md 4, 9.13, 9.16) --
    def _flags(self, s: int, e: int, side: int) -> dict[str, int]:
        S = self.S
        start = S.starts[s]
        h, lo = self.h, self.lo
        close = self.c.item(e)
        k = self.pivot
        flags = {"rel_volume": int(S.relvol_flag[s])}
        vw = self.vwap.item(e)
        flags["vwap"] = int(not math.isnan(vw) and (close > vw if side == LONG else close < vw))
        if e - k >= start:
            if side == LONG:
                pa = h.item(e) > h.item(e - k) and lo.item(e) > lo.item(e - k)
            else:
                pa = h.item(e) < h.item(e - k) and lo.item(e) < lo.item(e - k)
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
        if not self.record or key in self.logged:
            return
        self.logged.add(key)
        self.events.append((int(self.ts[i]), self.symbol, self.dates[s], SIDE_NAME[side], reason, detail))

    def _governance_block(self, minute: int) -> str:
        """First blocking rule of 9.12's order among the side-independent ones, or "" (`minute`: the
        bar's local minute of the day)."""
        gov = self.cfg.governance
        day = self.day
        if minute >= self.cutoff:
            return "cutoff"
        if day.entries >= gov.max_signals_per_day:
            return "signal_cap"
        if gov.lockout_after_losses and day.full_stops >= gov.lockout_after_losses:
            return "lockout_losses"
        if gov.max_daily_loss_r is not None and day.r <= -gov.max_daily_loss_r:
            return "lockout_daily_r"
        return ""

    def _allowed_sides(self) -> tuple[np.ndarray, np.ndarray]:
        """Per session, (long, short) allowed by `entry.direction` (strategy.md 11.1).

        `or_candle`: the sign of close(last OR bar) - open(first OR bar), bars present in the window;
        a doji allows neither side."""
        direction = self.cfg.entry.direction
        n_ses = len(self.S.starts)
        yes, no = np.ones(n_ses, dtype=bool), np.zeros(n_ses, dtype=bool)
        if direction is Direction.BOTH:
            return yes, yes
        if direction is Direction.LONG:
            return yes, no
        if direction is Direction.SHORT:
            return no, yes
        if not len(self.ts):
            return no, no
        body = self.c[np.maximum(self.S.or_end - 1, 0)] - self.o[self.S.starts]
        return body > 0, body < 0

    def _session_stop_mode(self, s: int) -> None:
        """Stop orders at the trigger levels (strategy.md 3, 9.4, 9.12)."""
        S = self.S
        upper, lower = S.upper[s], S.lower[s]
        o = self.o
        i = S.or_end[s]  # the first bar that may act; after a trade, the bar after its exit
        for k in range(self.opp_from[s], self.opp_to[s]):
            t = self.opp[k]  # armed and touched; a side entry.direction does not allow is never armed (11.1)
            if t < i:
                continue  # a position was open on this bar
            i = t
            sides = [side for side, ok in ((LONG, self.opp_long[k]), (SHORT, self.opp_short[k])) if ok]
            block = self._governance_block(self.opp_minute[k])
            if block and not self.record:
                break  # each rule of _governance_block holds to the session's end: only events would follow
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
            raw = max(upper, o.item(i)) if side == LONG else min(lower, o.item(i))
            exit_bar = self._enter(s, i, side, raw, score, flags)
            i = i + 1 if exit_bar is None else exit_bar + 1

    def _session_close_mode(self, s: int) -> None:
        """Close signals filled at the next bar's open (strategy.md 3, 9.14)."""
        o = self.o
        i = self.S.or_end[s]
        for k in range(self.opp_from[s], self.opp_to[s]):
            t = self.opp[k]  # an armed, allowed side closed beyond its trigger; t+1 is not the last bar
            if t < i:
                continue
            i = t
            side = LONG if self.opp_long[k] else SHORT
            block = self._governance_block(self.opp_minute[k])
            if block and not self.record:
                break  # as in stop mode: no entry can follow
            if block:
                self._event(s, i, side, block, f"{SIDE_NAME[side]} close signal")
                i += 1
                continue
            ok, score, flags = self._confluence(s, i, side)  # data up to the close of t
            if not ok:
                self._event(s, i, side, "confluence", f"score {score:g} below required")
                i += 1
                continue
            exit_bar = self._enter(s, i + 1, side, o.item(i + 1), score, flags, signal_bar=i)
            i = i + 1 if exit_bar is None else exit_bar + 1

    def _session_or_candle(self, s: int) -> None:
        """Opening-candle direction, market entry on the first bar after the OR (9.15, 9.18)."""
        S = self.S
        a, b = S.starts[s], S.or_end[s]
        body = self.c.item(b - 1) - self.o.item(a)
        if body == 0 or b >= S.ends[s] - 1:  # no direction, or no entry bar before the last bar
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
        ts = int(self.ts[i])
        if self.record:
            self.fills.append((pos.trade_id, self.symbol, ts, kind, price, qty, commission))
        self.equity_rows.append((ts, self.equity, self.cum_r))

    def _manage(self, s: int, i0: int, pos: Position) -> int:
        """Walk bars from the entry bar until the position is flat; return the exit bar."""
        last = self.S.ends[s] - 1
        o, h, lo, c = self.o, self.h, self.lo, self.c
        low_open, high_open = self.low_open, self.high_open
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
                    pos.be_time = int(self.ts[i + 1])
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
        entry_time, exit_time = int(self.ts[i0]), int(self.ts[i1])
        holding = (exit_time - entry_time) / 60e9
        if not self.record:  # `measure`: only what the metrics read (metric_inputs)
            self.trades.append(
                {"entry_time": entry_time, "r_multiple": r, "net_pnl": net, "side": SIDE_NAME[pos.side],
                 "exit_reason": reason, "holding_minutes": holding}
            )  # fmt: skip
            return
        legs = {kind: price for kind, price, _ in pos.initial_legs}
        # MFE/MAE from the bars while open, entry and exit bars included (strategy.md 5).
        hi, lw = self.h[i0 : i1 + 1].max(), self.lo[i0 : i1 + 1].min()
        mfe, mae = (hi - pos.entry, lw - pos.entry) if pos.side == LONG else (pos.entry - lw, pos.entry - hi)
        mfe, mae = max(mfe, 0.0), min(mae, 0.0)  # the entry fill itself is an excursion of 0
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
                "holding_minutes": holding,
                "or_high": S.or_high[s],
                "or_low": S.or_low[s],
                "or_minutes": int(S.or_minutes[s]),
                "score": score,
                "breakeven_time": pos.be_time,
                **{f"factor_{name}": flags[name] for name in FACTOR_NAMES},
            }
        )

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
        factor_cols = [f"factor_{name}" for name in FACTOR_NAMES]
        trades = frame(
            self.trades,
            [*TRADE_COLUMNS, *factor_cols],
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
        eq = frame(self.equity_rows, ("timestamp", "equity", "cum_r"), {"timestamp": TIME})
        eq = eq.sort_values("timestamp", kind="stable", ignore_index=True)
        dd_pct, dd_r = drawdowns(
            eq["equity"].to_numpy(), eq["cum_r"].to_numpy(), initial_equity=self.cfg.risk.initial_capital
        )
        equity = eq.assign(drawdown_pct=dd_pct, drawdown_r=dd_r)[list(EQUITY_COLUMNS)]
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
