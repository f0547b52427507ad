"""Slow, plain reference implementation of strategy.md, used only by tests to check the fast engine.

Written from the spec alone: one loop over sessions, one loop over each session's bars, plain dicts
and lists. Section numbers in comments refer to /work/shared/spec/strategy.md ("9.x" = section 9, item x).
Where the spec leaves a point open the comment says which reading was taken.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from orb.config import FACTOR_NAMES, Config, EntryMode, SameBar, StopMode, hhmm_minutes
from orb.sessions import assign_sessions, schedule

LONG, SHORT = "long", "short"
DIRECTION = {LONG: 1, SHORT: -1}


# ----------------------------------------------------------------------------------------------
# Input: regular-hours bars grouped by session
# ----------------------------------------------------------------------------------------------


def _sessions_from_bars(bars: pd.DataFrame, config: Config) -> list[dict]:
    """Sessions present in the data (at least one regular-hours bar), oldest first (section 1)."""
    if len(bars) == 0:
        return []
    index = bars.index
    tz = config.session.timezone
    local = index.tz_convert(tz)
    first_day = local[0].date()
    last_day = local[-1].date()
    sched = schedule(first_day, last_day, config.session.calendar)
    positions = assign_sessions(index, sched)
    step = config.data.interval_minutes

    opens = bars["open"].tolist()
    highs = bars["high"].tolist()
    lows = bars["low"].tolist()
    closes = bars["close"].tolist()
    volumes = bars["volume"].tolist()
    minutes = (local.hour * 60 + local.minute).tolist()

    by_position: dict[int, list[dict]] = {}
    for row, pos in enumerate(positions.tolist()):
        if pos < 0:
            continue  # outside regular hours: ignored by the strategy (section 1)
        by_position.setdefault(pos, []).append(
            {
                "ts": index[row],
                "minute": minutes[row],
                "open": opens[row],
                "high": highs[row],
                "low": lows[row],
                "close": closes[row],
                "volume": volumes[row],
            }
        )

    sessions = []
    for pos in sorted(by_position):
        open_utc = sched["open"].iloc[pos]
        close_utc = sched["close"].iloc[pos]
        open_local = open_utc.tz_convert(tz)
        close_local = close_utc.tz_convert(tz)
        session_bars = by_position[pos]
        sessions.append(
            {
                "date": sched.index[pos].date(),
                "open_utc": open_utc,
                "close_utc": close_utc,
                "open_minute": open_local.hour * 60 + open_local.minute,
                "close_minute": close_local.hour * 60 + close_local.minute,
                "step": step,
                "bars": session_bars,
                # daily bar of the session, built from its regular-hours bars (section 1)
                "d_open": session_bars[0]["open"],
                "d_high": max(b["high"] for b in session_bars),
                "d_low": min(b["low"] for b in session_bars),
                "d_close": session_bars[-1]["close"],
            }
        )
    return sessions


# ----------------------------------------------------------------------------------------------
# Daily values: Wilder ATR and ADX from prior sessions only
# ----------------------------------------------------------------------------------------------


def _true_ranges(sessions: list[dict]) -> list[float | None]:
    """TR per session; the first session of the data has none (section 1, 9.2)."""
    out: list[float | None] = [None]
    for i in range(1, len(sessions)):
        h, lo, prev_close = sessions[i]["d_high"], sessions[i]["d_low"], sessions[i - 1]["d_close"]
        out.append(max(h - lo, abs(h - prev_close), abs(lo - prev_close)))
    return out


def _atr_for_sessions(sessions: list[dict], n: int) -> list[float | None]:
    """ATR(n) usable by each session: computed from the sessions before it only (9.2).

    after[i] is the ATR once session i has completed; the first value is the mean of the TRs of
    sessions 1..n, so session i may use it when i - 1 >= n (session n + 2 counting from 1).
    """
    tr = _true_ranges(sessions)
    after: list[float | None] = [None] * len(sessions)
    for i in range(len(sessions)):
        if i < n:
            continue
        if i == n:
            total = 0.0
            for k in range(1, n + 1):
                total += tr[k]
            after[i] = total / n
        else:
            after[i] = (after[i - 1] * (n - 1) + tr[i]) / n
    return [None] + after[:-1] if sessions else []


def _adx_for_sessions(sessions: list[dict], n: int) -> list[float | None]:
    """Wilder ADX(n) usable by each session, from prior sessions' daily bars (section 4, adx).

    The spec only names "Wilder ADX(14)"; this is the textbook construction: Wilder-smoothed TR, +DM,
    -DM (first value = mean of the first n), DX, then ADX = mean of the first n DX, Wilder-smoothed.
    """
    count = len(sessions)
    after: list[float | None] = [None] * count
    tr = _true_ranges(sessions)
    s_tr = s_pdm = s_mdm = None
    sum_tr = sum_pdm = sum_mdm = 0.0
    dx_values: list[float] = []
    adx = None
    for i in range(1, count):
        up = sessions[i]["d_high"] - sessions[i - 1]["d_high"]
        down = sessions[i - 1]["d_low"] - sessions[i]["d_low"]
        pdm = up if (up > down and up > 0) else 0.0
        mdm = down if (down > up and down > 0) else 0.0
        if i <= n:
            sum_tr += tr[i]
            sum_pdm += pdm
            sum_mdm += mdm
            if i < n:
                continue
            s_tr, s_pdm, s_mdm = sum_tr / n, sum_pdm / n, sum_mdm / n
        else:
            s_tr = (s_tr * (n - 1) + tr[i]) / n
            s_pdm = (s_pdm * (n - 1) + pdm) / n
            s_mdm = (s_mdm * (n - 1) + mdm) / n
        pdi = 100.0 * s_pdm / s_tr if s_tr > 0 else 0.0
        mdi = 100.0 * s_mdm / s_tr if s_tr > 0 else 0.0
        dx = 100.0 * abs(pdi - mdi) / (pdi + mdi) if (pdi + mdi) > 0 else 0.0
        if adx is None:
            dx_values.append(dx)
            if len(dx_values) == n:
                adx = sum(dx_values) / n
        else:
            adx = (adx * (n - 1) + dx) / n
        after[i] = adx
    return [None] + after[:-1] if sessions else []


# ----------------------------------------------------------------------------------------------
# Opening range
# ----------------------------------------------------------------------------------------------


def _or_window(session: dict, minutes: int) -> list[int]:
    """Indexes of the session's bars with open <= ts < open + N minutes (section 2)."""
    end = session["open_minute"] + minutes
    return [i for i, b in enumerate(session["bars"]) if b["minute"] < end]


def _validate_or(session: dict, minutes: int) -> str | None:
    """Skip reason of the OR validation (section 2), checked in the order the spec lists them."""
    bars = session["bars"]
    idx = _or_window(session, minutes)
    present = {bars[i]["minute"] for i in idx}
    expected = range(session["open_minute"], session["open_minute"] + minutes, session["step"])
    if any(m not in present for m in expected):
        return "missing_bar"
    stamps = [bars[i]["ts"] for i in idx]
    if any(b <= a for a, b in zip(stamps, stamps[1:], strict=False)):
        return "duplicate_timestamp"
    for i in idx:
        b = bars[i]
        values = (b["open"], b["high"], b["low"], b["close"], b["volume"])
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            return "nan_value"
    for i in idx:
        b = bars[i]
        if not (b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]):
            return "ohlc_violation"
    if sum(bars[i]["volume"] for i in idx) == 0:
        return "zero_volume"
    return None


# ----------------------------------------------------------------------------------------------
# Confluence factors (section 4, 9.13, 9.16)
# ----------------------------------------------------------------------------------------------


def _rel_volume_flag(sessions: list[dict], s: int, minutes: int, config: Config) -> int:
    """Today's first-N-minutes volume / mean of the same window in the prior sessions present (9.13)."""
    cfg = config.confluence.rel_volume
    lookback = cfg.lookback_sessions
    if s < lookback:
        return 0
    today = sum(sessions[s]["bars"][i]["volume"] for i in _or_window(sessions[s], minutes))
    total = 0
    for p in range(s - lookback, s):
        total += sum(sessions[p]["bars"][i]["volume"] for i in _or_window(sessions[p], minutes))
    mean = total / lookback
    if mean <= 0:
        return 0  # 9.16: a prior mean of 0 gives flag 0
    return 1 if today / mean >= cfg.min_ratio else 0


def _vwap_flag(bars: list[dict], e: int, side: str) -> int:
    """Session VWAP of typical price through bar e (inclusive), strict comparison (9.16)."""
    pv = 0.0
    vol = 0
    for k in range(e + 1):
        b = bars[k]
        pv += (b["high"] + b["low"] + b["close"]) / 3 * b["volume"]
        vol += b["volume"]
    if vol == 0:
        return 0
    vwap = pv / vol
    close = bars[e]["close"]
    if side == LONG:
        return 1 if close > vwap else 0
    return 1 if close < vwap else 0


def _price_action_flag(bars: list[dict], e: int, side: str, k: int) -> int:
    """Bar e against the single bar k positions earlier in the session, strictly (9.16)."""
    if e - k < 0:
        return 0
    now, then = bars[e], bars[e - k]
    if side == LONG:
        return 1 if (now["high"] > then["high"] and now["low"] > then["low"]) else 0
    return 1 if (now["high"] < then["high"] and now["low"] < then["low"]) else 0


def _profile_flag(sessions: list[dict], s: int, close: float, side: str) -> int:
    """Prior session's value-area proxy from its regular-hours high/low (section 4, 9.16)."""
    if s == 0:
        return 0
    h, lo = sessions[s - 1]["d_high"], sessions[s - 1]["d_low"]
    val = lo + 0.25 * (h - lo)
    vah = lo + 0.75 * (h - lo)
    if side == LONG:
        return 1 if close > vah else 0
    return 1 if close < val else 0


def _confluence(ctx: dict, e: int, side: str) -> tuple[float, dict[str, int], bool]:
    """(score, flags per factor for `side`, passes) with bar e as the evaluation bar."""
    config = ctx["config"]
    conf = config.confluence
    bars = ctx["bars"]
    s = ctx["s"]
    flags = {name: 0 for name in FACTOR_NAMES}
    if conf.rel_volume.enabled:
        flags["rel_volume"] = ctx["rel_volume_flag"]
    if conf.vwap.enabled:
        flags["vwap"] = _vwap_flag(bars, e, side)
    if conf.price_action.enabled:
        flags["price_action"] = _price_action_flag(bars, e, side, conf.price_action.pivot_len)
    if conf.profile.enabled:
        flags["profile"] = _profile_flag(ctx["sessions"], s, bars[e]["close"], side)
    score = 0.0
    for name in FACTOR_NAMES:
        factor = getattr(conf, name)
        if factor.enabled:
            score += factor.weight * flags[name]
    required = conf.required
    adx = ctx["adx"]
    if conf.adx.enabled and adx is not None and adx < conf.adx.threshold:
        required = conf.weak_trend_required  # 9.13: ADX not yet available never marks weak
    passes = (not conf.enabled) or score >= required
    return score, flags, passes


# ----------------------------------------------------------------------------------------------
# The backtest
# ----------------------------------------------------------------------------------------------


def _needs_atr(config: Config) -> bool:
    """Whether this config's stop, width filter or buffer needs ATR(orb.atr_period) (9.3).

    Conservative reading: a non-null width bound or a non-zero ATR buffer needs the ATR in every
    entry mode (9.17 says the buffer applies in every mode).
    """
    return (
        config.orb.min_width_atr is not None
        or config.orb.max_width_atr is not None
        or config.trade.stop_mode in (StopMode.ATR, StopMode.ATR_CAPPED)
        or config.entry.buffer_atr > 0
    )


def _last_bar_index(session: dict, config: Config) -> int:
    """The session's last bar (5.5): the last bar present; with trade.flatten_time the bar stamped at
    that time, or the last bar present before it (same rule as for the close). Bars after it are not
    traded at all."""
    bars = session["bars"]
    last = len(bars) - 1
    if config.trade.flatten_time is None:
        return last
    flat = hhmm_minutes(config.trade.flatten_time)
    candidates = [i for i, b in enumerate(bars) if b["minute"] <= flat]
    return candidates[-1] if candidates else last


def _stop_price(config: Config, side: str, entry: float, or_high: float, or_low: float, atr: float | None):
    """Initial stop from the entry fill (section 5, 9.1)."""
    trade = config.trade
    d = DIRECTION[side]
    or_stop = or_low - trade.stop_buffer if side == LONG else or_high + trade.stop_buffer
    if trade.stop_mode == StopMode.OR_OPPOSITE:
        return or_stop
    atr_stop = entry - d * trade.atr_stop_mult * atr
    if trade.stop_mode == StopMode.ATR:
        return atr_stop
    return max(or_stop, atr_stop) if side == LONG else min(or_stop, atr_stop)


def _legs(config: Config, side: str, entry: float, r_ps: float, shares: int) -> list[dict]:
    """Exit legs in fill order: t1, t2 (if t2_pct > 0), runner; or one target (section 5)."""
    trade = config.trade
    d = DIRECTION[side]
    if not trade.partials:
        if trade.target_r is None:
            return []  # 11.2: no profit target, the position exits by its stop or at the end of the session
        return [
            {
                "kind": "target",
                "price": entry + d * trade.target_r * r_ps,
                "qty": shares,
                "done": False,
                "filled": False,
            }
        ]
    legs = []
    n1 = math.floor(shares * trade.t1_pct)
    legs.append(
        {"kind": "t1", "price": entry + d * trade.t1_r * r_ps, "qty": n1, "done": False, "filled": False}
    )
    n2 = 0
    if trade.t2_pct > 0:
        n2 = math.floor(shares * trade.t2_pct)
        legs.append(
            {"kind": "t2", "price": entry + d * trade.t2_r * r_ps, "qty": n2, "done": False, "filled": False}
        )
    runner = shares - n1 - n2
    legs.append(
        {
            "kind": "target",
            "price": entry + d * trade.runner_r * r_ps,
            "qty": runner,
            "done": False,
            "filled": False,
        }
    )
    return legs


def _beyond_stop(pos: dict, price: float) -> bool:
    return price <= pos["stop"] if pos["side"] == LONG else price >= pos["stop"]


def _reaches(pos: dict, price: float, level: float) -> bool:
    return price >= level if pos["side"] == LONG else price <= level


def run_reference(bars: pd.DataFrame, config: Config, symbol: str, start: date | None = None) -> dict:
    """Backtest one symbol bar by bar; sessions before `start` are warm-up only."""
    sessions = _sessions_from_bars(bars, config)
    n_atr = config.orb.atr_period
    atr = _atr_for_sessions(sessions, n_atr)
    mode = config.entry.mode
    adaptive = config.orb.adaptive and mode != EntryMode.OR_CANDLE
    atr5 = _atr_for_sessions(sessions, 5) if adaptive else None
    atr20 = _atr_for_sessions(sessions, 20) if adaptive else None
    adx = _adx_for_sessions(sessions, config.confluence.adx.period) if config.confluence.adx.enabled else None

    trades: list[dict] = []
    fills: list[dict] = []
    events: list[dict] = []
    session_rows: list[dict] = []
    state = {"realized": 0.0, "trade_id": 0}

    for s, session in enumerate(sessions):
        if start is not None and session["date"] < start:
            continue  # warm-up only: feeds the daily values above, is neither traded nor reported
        row = _run_session(
            sessions,
            s,
            config,
            symbol,
            atr=atr[s],
            atr5=atr5[s] if adaptive else None,
            atr20=atr20[s] if adaptive else None,
            adx=adx[s] if adx is not None else None,
            state=state,
            trades=trades,
            fills=fills,
            events=events,
        )
        session_rows.append(row)
    return {"trades": trades, "fills": fills, "events": events, "sessions": session_rows}


def _session_row(session: dict, **values) -> dict:
    row = {
        "session_date": session["date"],
        "or_minutes": None,
        "or_high": None,
        "or_low": None,
        "or_width": None,
        "atr": None,
        "or_width_atr": None,
        "status": "skipped",
        "skip_reason": None,
        "trades": 0,
        "day_r": 0.0,
    }
    row.update(values)
    return row


def _run_session(sessions, s, config, symbol, *, atr, atr5, atr20, adx, state, trades, fills, events) -> dict:
    session = sessions[s]
    bars = session["bars"]
    mode = config.entry.mode

    # --- warm-up (9.3): only values this config needs ---
    if config.orb.adaptive and mode != EntryMode.OR_CANDLE and (atr5 is None or atr20 is None):
        return _session_row(session, atr=atr, skip_reason="warmup")
    if _needs_atr(config) and atr is None:
        return _session_row(session, skip_reason="warmup")

    # --- OR length (section 2). or_candle: the OR of orb.base_minutes (9.18), adaptive is not applied ---
    minutes = config.orb.base_minutes
    if config.orb.adaptive and mode != EntryMode.OR_CANDLE:
        ratio = atr5 / atr20
        if ratio < config.orb.adaptive_low:
            minutes = config.orb.short_minutes
        elif ratio > config.orb.adaptive_high:
            minutes = config.orb.long_minutes

    # --- OR and its validation (section 2) ---
    if config.orb.validate_or:
        reason = _validate_or(session, minutes)
        if reason is not None:
            return _session_row(session, or_minutes=minutes, atr=atr, skip_reason=reason)
    window = _or_window(session, minutes)
    if not window:
        return _session_row(session, or_minutes=minutes, atr=atr, skip_reason="no_or_bars")
    or_high = max(bars[i]["high"] for i in window)
    or_low = min(bars[i]["low"] for i in window)
    width = or_high - or_low
    ratio = width / atr if (atr is not None and atr > 0) else None
    row = {
        "or_minutes": minutes,
        "or_high": or_high,
        "or_low": or_low,
        "or_width": width,
        "atr": atr,
        "or_width_atr": ratio,
    }
    if width == 0:
        return _session_row(session, skip_reason="zero_width", **row)
    if config.orb.min_width_atr is not None and ratio < config.orb.min_width_atr:
        return _session_row(session, skip_reason="width_below_min", **row)  # strict bound (9.11)
    if config.orb.max_width_atr is not None and ratio > config.orb.max_width_atr:
        return _session_row(session, skip_reason="width_above_max", **row)

    buffer = config.entry.buffer_fixed + (
        config.entry.buffer_atr * atr if config.entry.buffer_atr > 0 else 0.0
    )
    upper = or_high + buffer
    lower = or_low - buffer

    ctx = {
        "config": config,
        "symbol": symbol,
        "sessions": sessions,
        "s": s,
        "bars": bars,
        "adx": adx,
        "atr": atr,
        "minutes": minutes,
        "or_high": or_high,
        "or_low": or_low,
        "rel_volume_flag": _rel_volume_flag(sessions, s, minutes, config)
        if config.confluence.rel_volume.enabled
        else 0,
        "first_after_or": window[-1] + 1,  # first bar that may act on the OR (section 2)
        "allowed": _allowed_sides(config, bars, window),
        "last": _last_bar_index(session, config),
        "cutoff": hhmm_minutes(config.entry.cutoff),
        "state": state,
        "events": events,
        "logged": set(),  # (side, reason) already recorded this session (9.12)
        # per-session governance state (section 1: everything intraday resets at the open)
        "entries": 0,
        "consecutive_losses": 0,
        "day_r": 0.0,
        "session_trades": 0,
    }

    pos = None
    for i in range(ctx["last"] + 1):
        if pos is None:  # the bar starts flat (section 3)
            if mode == EntryMode.STOP:
                pos = _try_stop_entry(ctx, i, upper, lower)
            elif mode == EntryMode.CLOSE:
                pos = _try_close_entry(ctx, i, upper, lower)
            else:
                pos = _try_or_candle_entry(ctx, i, window)
        if pos is not None and pos["entry_index"] <= i:
            closed = _manage(ctx, pos, i)
            if closed:
                _book_trade(ctx, pos, trades, fills)
                pos = None

    day_r = ctx["day_r"]
    status = "traded" if ctx["session_trades"] > 0 else "no_signal"
    return _session_row(session, status=status, trades=ctx["session_trades"], day_r=day_r, **row)


# ----------------------------------------------------------------------------------------------
# Entries (section 3, 9.4, 9.12, 9.14, 9.15, 9.17)
# ----------------------------------------------------------------------------------------------


def _event(ctx: dict, i: int, side: str, reason: str, detail: str = "") -> None:
    """Record a blocked opportunity once per (session, side, reason) (9.12)."""
    key = (side, reason)
    if key in ctx["logged"]:
        return
    ctx["logged"].add(key)
    session = ctx["sessions"][ctx["s"]]
    ctx["events"].append(
        {
            "time": ctx["bars"][i]["ts"],
            "symbol": ctx["symbol"],
            "session_date": session["date"],
            "side": side,
            "reason": reason,
            "detail": detail,
        }
    )


def _governance_block(ctx: dict) -> str | None:
    """First governance rule that blocks a new entry, in the 9.12 order (section 6, 9.9)."""
    gov = ctx["config"].governance
    if ctx["entries"] >= gov.max_signals_per_day:
        return "signal_cap"
    if gov.lockout_after_losses > 0 and ctx["consecutive_losses"] >= gov.lockout_after_losses:
        return "lockout_losses"
    if gov.max_daily_loss_r is not None and ctx["day_r"] <= -gov.max_daily_loss_r:
        return "lockout_daily_r"
    return None


def _past_cutoff(ctx: dict, i: int) -> bool:
    return ctx["bars"][i]["minute"] >= ctx["cutoff"]


def _open_position(ctx: dict, side: str, signal_i: int, entry_i: int, raw_price: float, e: int):
    """Confluence, stop, sizing for one side; returns the position or None (event recorded).

    `signal_i` is the bar the event is stamped with, `entry_i` the entry bar, `raw_price` the fill
    before slippage, `e` the confluence evaluation bar.
    """
    config = ctx["config"]
    score, flags, passes = _confluence(ctx, e, side)
    if not passes:
        _event(ctx, signal_i, side, "confluence", f"score {score}")
        return None
    d = DIRECTION[side]
    entry = raw_price + d * config.costs.slippage_per_share  # 9.1: entry_fill includes slippage
    stop = _stop_price(config, side, entry, ctx["or_high"], ctx["or_low"], ctx["atr"])
    r_ps = (entry - stop) * d
    if not r_ps > 0:
        _event(ctx, signal_i, side, "invalid_risk", f"R per share {r_ps}")
        return None
    equity = ctx["state"].get("sizing_equity")  # 10.2: portfolio slot capital alloc_d, fixed per session
    if equity is None:
        equity = config.risk.initial_capital + ctx["state"]["realized"]  # 9.10: realized net P&L
    by_risk = equity * config.risk.risk_per_trade / r_ps
    by_leverage = config.risk.max_leverage * equity / entry
    shares = math.floor(min(by_risk, by_leverage))
    if shares < 1:
        _event(ctx, signal_i, side, "invalid_risk", f"shares {shares}")
        return None
    ctx["entries"] += 1
    legs = _legs(config, side, entry, r_ps, shares)
    return {
        "side": side,
        "dir": d,
        "entry_index": entry_i,
        "entry_time": ctx["bars"][entry_i]["ts"],
        "entry": entry,
        "initial_stop": stop,
        "stop": stop,
        "be_active": False,
        "r_ps": r_ps,
        "shares": shares,
        "remaining": shares,
        "legs": legs,
        "exits": [],  # (time, kind, price, qty)
        "mfe": 0.0,
        "mae": 0.0,
        "score": score,
        "flags": flags,
    }


def _allowed_sides(config: Config, bars: list[dict], window: list[int]) -> set[str]:
    """Sides `entry.direction` allows (11.1); or_candle: the sign of close(last OR bar) - open(first
    OR bar) over the bars present in the session's OR window (today's N, 10.9.15); 0 allows neither."""
    direction = str(config.entry.direction)
    if direction == "long":
        return {LONG}
    if direction == "short":
        return {SHORT}
    if direction == "or_candle":
        move = bars[window[-1]]["close"] - bars[window[0]]["open"]
        return {LONG} if move > 0 else {SHORT} if move < 0 else set()
    return {LONG, SHORT}


def _try_stop_entry(ctx: dict, i: int, upper: float, lower: float):
    """entry.mode stop on bar i (section 3): stop orders at the trigger levels."""
    if i < ctx["first_after_or"] or i == 0:
        return None
    bars = ctx["bars"]
    prev, bar = bars[i - 1], bars[i]
    sides = []
    allowed = ctx["allowed"]  # 11.1: a side that is not allowed is never armed and records no event
    if LONG in allowed and prev["close"] <= upper and bar["high"] >= upper:  # armed (9.4) and touched (9.11)
        sides.append(LONG)
    if SHORT in allowed and prev["close"] >= lower and bar["low"] <= lower:
        sides.append(SHORT)
    if not sides:
        return None
    if i >= ctx["last"]:
        return None  # the last bar never opens a position; like "starts flat", not an event reason (9.12)
    if _past_cutoff(ctx, i):
        for side in sides:
            _event(ctx, i, side, "cutoff")
        return None
    reason = _governance_block(ctx)
    if reason is not None:
        for side in sides:
            _event(ctx, i, side, reason)
        return None
    if len(sides) == 2:
        for side in sides:
            _event(ctx, i, side, "ambiguous_bar")
        return None
    side = sides[0]
    raw = max(upper, bar["open"]) if side == LONG else min(lower, bar["open"])  # gap fills at the open
    return _open_position(ctx, side, i, i, raw, e=i - 1)


def _try_close_entry(ctx: dict, i: int, upper: float, lower: float):
    """entry.mode close (section 3, 9.14, 9.17): signal on close(t), fill at open(t+1)."""
    if i < ctx["first_after_or"] or i == 0:
        return None
    bars = ctx["bars"]
    prev, bar = bars[i - 1], bars[i]
    sides = []
    allowed = ctx["allowed"]  # 11.1
    if LONG in allowed and prev["close"] <= upper and bar["close"] > upper:  # strict signal (9.17)
        sides.append(LONG)
    if SHORT in allowed and prev["close"] >= lower and bar["close"] < lower:
        sides.append(SHORT)
    if not sides:
        return None
    # 9.14: the signal bar is not the last bar; the fill bar t+1 exists and is not the last bar.
    # Like "starts flat" and "OR final" these are not event reasons of 9.12: such a bar is not an
    # opportunity at all, so they are checked before the cutoff and block silently.
    if i + 1 >= ctx["last"]:
        return None
    if _past_cutoff(ctx, i):
        for side in sides:
            _event(ctx, i, side, "cutoff")
        return None
    reason = _governance_block(ctx)
    if reason is not None:
        for side in sides:
            _event(ctx, i, side, reason)
        return None
    side = sides[0]  # close > upper and close < lower cannot both hold (upper >= lower)
    return _open_position(ctx, side, i, i + 1, bars[i + 1]["open"], e=i)


def _try_or_candle_entry(ctx: dict, i: int, window: list[int]):
    """entry.mode or_candle (section 3, 9.15, 9.18): direction of the OR candle, one entry per session."""
    if i != ctx["first_after_or"] or i >= len(ctx["bars"]):
        return None
    bars = ctx["bars"]
    move = bars[window[-1]]["close"] - bars[window[0]]["open"]
    if move == 0:
        return None
    side = LONG if move > 0 else SHORT
    if i >= ctx["last"]:
        return None  # 9.15 order: exists, not the last bar (silent), before the cutoff
    if _past_cutoff(ctx, i):
        _event(ctx, i, side, "cutoff")
        return None
    reason = _governance_block(ctx)  # cannot block the session's only entry, kept for uniformity
    if reason is not None:
        _event(ctx, i, side, reason)
        return None
    return _open_position(ctx, side, i, i, bars[i]["open"], e=window[-1])


# ----------------------------------------------------------------------------------------------
# Exits (section 5, 9.5-9.8)
# ----------------------------------------------------------------------------------------------


def _exit(pos: dict, ts, kind: str, price: float, qty: int) -> None:
    pos["exits"].append({"time": ts, "kind": kind, "price": price, "qty": qty})
    pos["remaining"] -= qty


def _exit_rest_at_stop(ctx: dict, pos: dict, ts, price: float, reason: str) -> None:
    slip = ctx["config"].costs.slippage_per_share
    _exit(pos, ts, reason, price - pos["dir"] * slip, pos["remaining"])


def _fill_targets(pos: dict, ts, favourable: float) -> bool:
    """Fill every pending target touched, in order (5.4, 9.6, 9.8); True when T1's price was reached."""
    t1_reached = False
    for leg in pos["legs"]:
        if leg["done"]:
            continue
        if not _reaches(pos, favourable, leg["price"]):
            break
        leg["done"] = True
        if leg["kind"] == "t1":
            t1_reached = True
        if leg["qty"] > 0:
            leg["filled"] = True
            _exit(pos, ts, leg["kind"], leg["price"], leg["qty"])  # limit fill: no slippage
        if pos["remaining"] == 0:
            break
    return t1_reached


def _manage(ctx: dict, pos: dict, i: int) -> bool:
    """Run bar i for the open position; True when it is closed."""
    config = ctx["config"]
    bar = ctx["bars"][i]
    ts = bar["ts"]
    long = pos["side"] == LONG
    adverse = bar["low"] if long else bar["high"]
    favourable = bar["high"] if long else bar["low"]
    d = pos["dir"]

    # MFE / MAE over the bars while open, entry bar included (5, last bullet). The spec does not say
    # whether they may cross 0; the excursion path starts at the entry fill, so MFE >= 0 >= MAE.
    pos["mfe"] = max(pos["mfe"], (favourable - pos["entry"]) * d / pos["r_ps"])
    pos["mae"] = min(pos["mae"], (adverse - pos["entry"]) * d / pos["r_ps"])

    stop_reason = "breakeven" if pos["be_active"] else "stop"
    t1_reached = False
    if i == pos["entry_index"]:
        # 5.1 / 9.5: only the stop, filled at the stop price; targets wait for the next bar
        if _beyond_stop(pos, adverse):
            _exit_rest_at_stop(ctx, pos, ts, pos["stop"], stop_reason)
    elif _beyond_stop(pos, bar["open"]):
        _exit_rest_at_stop(ctx, pos, ts, bar["open"], stop_reason)  # 5.2: gap through the stop
    elif _beyond_stop(pos, adverse):
        # 5.3: stop touched. ohlc_path: O->L->H->C when close >= open, else O->H->L->C
        favourable_first = False
        if config.trade.same_bar == SameBar.OHLC_PATH:
            high_first = bar["close"] < bar["open"]
            favourable_first = high_first if long else not high_first
        if favourable_first:
            t1_reached = _fill_targets(pos, ts, favourable)
        if pos["remaining"] > 0:
            # 9.6: on the T1 bar the remaining shares keep the stop they had at the bar's start
            _exit_rest_at_stop(ctx, pos, ts, pos["stop"], stop_reason)
    else:
        t1_reached = _fill_targets(pos, ts, favourable)  # 5.4

    if pos["remaining"] > 0 and i == ctx["last"]:
        slip = config.costs.slippage_per_share
        _exit(pos, ts, "eod", bar["close"] - d * slip, pos["remaining"])  # 5.5, 9.7
    if t1_reached and not pos["be_active"]:
        pos["be_active"] = True  # 9.6: from the next bar on
        pos["stop"] = pos["entry"] + d * config.trade.be_buffer
    return pos["remaining"] == 0


def _book_trade(ctx: dict, pos: dict, trades: list[dict], fills: list[dict]) -> None:
    """Accounting (section 7) and governance counters (9.9) for a closed trade."""
    config = ctx["config"]
    state = ctx["state"]
    state["trade_id"] += 1
    trade_id = state["trade_id"]
    comm_rate = config.costs.commission_per_share
    d = pos["dir"]
    commission = pos["shares"] * comm_rate
    fills.append(
        {
            "trade_id": trade_id,
            "symbol": ctx["symbol"],
            "time": pos["entry_time"],
            "kind": "entry",
            "price": pos["entry"],
            "shares": pos["shares"],
            "commission": pos["shares"] * comm_rate,
        }
    )
    gross = 0.0
    for x in pos["exits"]:
        gross += (x["price"] - pos["entry"]) * x["qty"] * d
        commission += x["qty"] * comm_rate
        fills.append(
            {
                "trade_id": trade_id,
                "symbol": ctx["symbol"],
                "time": x["time"],
                "kind": x["kind"],
                "price": x["price"],
                "shares": x["qty"],
                "commission": x["qty"] * comm_rate,
            }
        )
    net = gross - commission
    initial_risk = pos["r_ps"] * pos["shares"]
    r_multiple = net / initial_risk
    last = pos["exits"][-1]
    kind = last["kind"]
    exit_reason = "target" if kind in ("t1", "t2", "target") else kind
    legs = {leg["kind"]: leg for leg in pos["legs"]}
    t1_filled = "t1" in legs and legs["t1"]["filled"]
    t2_filled = "t2" in legs and legs["t2"]["filled"]
    session = ctx["sessions"][ctx["s"]]
    trade = {
        "trade_id": trade_id,
        "symbol": ctx["symbol"],
        "session_date": session["date"],
        "side": pos["side"],
        "entry_time": pos["entry_time"],
        "entry_price": pos["entry"],
        "stop_price": pos["initial_stop"],
        "r_per_share": pos["r_ps"],
        "shares": pos["shares"],
        "t1_price": legs["t1"]["price"] if "t1" in legs else float("nan"),
        "t2_price": legs["t2"]["price"] if "t2" in legs else float("nan"),
        "target_price": legs["target"]["price"] if "target" in legs else float("nan"),
        "exit_time": last["time"],
        "exit_price": last["price"],
        "exit_reason": exit_reason,
        "t1_filled": t1_filled,
        "t2_filled": t2_filled,
        "gross_pnl": gross,
        "commission": commission,
        "net_pnl": net,
        "initial_risk": initial_risk,
        "r_multiple": r_multiple,
        "gross_r": gross / initial_risk,
        "mfe_r": pos["mfe"],
        "mae_r": pos["mae"],
        "or_high": ctx["or_high"],
        "or_low": ctx["or_low"],
        "or_minutes": ctx["minutes"],
        "holding_minutes": (last["time"] - pos["entry_time"]).total_seconds() / 60,
        "score": pos["score"],
    }
    for name in FACTOR_NAMES:
        trade[f"factor_{name}"] = pos["flags"][name]
    trades.append(trade)

    state["realized"] += net
    ctx["session_trades"] += 1
    ctx["day_r"] += r_multiple
    # 9.9: a full-stop loss adds 1, net R > 0 resets, anything else leaves the count
    if exit_reason == "stop" and not (t1_filled or t2_filled):
        ctx["consecutive_losses"] += 1
    elif r_multiple > 0:
        ctx["consecutive_losses"] = 0
