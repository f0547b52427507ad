"""Slow, plain reference implementation of portfolio mode (strategy.md section 10), for tests only.

Written from the spec alone, on top of the single-symbol reference (tests/reference_engine.py):
per symbol the daily values of 10.3 from its own sessions, the full universe grid of 10.9.1 with the
reasons of 10.9.2, the ranking of 10.5, then session by session `alloc_d = E_d / N` (10.2) and the
single-symbol reference rules for every selected symbol-session. Section numbers refer to
strategy.md ("10.9.x" = section 10, item 9, sub-item x).

Reading taken where the text allows two: "symbol order" for account-equity rows that share a
timestamp (10.7) is ascending symbol name, the same order as the ranking's tie-break.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from orb.config import Config
from orb.sessions import schedule
from tests.reference_engine import (
    _adx_for_sessions,
    _atr_for_sessions,
    _needs_atr,
    _or_window,
    _run_session,
    _sessions_from_bars,
    _validate_or,
)

UNIVERSE_COLUMNS = (
    "session_date", "symbol", "open_price", "avg_volume", "atr", "rel_volume", "or_high", "or_low",
    "status", "reason", "rank", "trades", "day_r", "day_pnl",
)  # fmt: skip


def _daily_values(sessions: list[dict], config: Config) -> list[dict]:
    """10.3 per session of one symbol: open price, avg volume, ATR, rel volume, OR and section-2 reason."""
    lookback = config.universe.lookback_sessions
    minutes = config.orb.base_minutes
    atr = _atr_for_sessions(sessions, config.orb.atr_period)
    total_vol = [sum(b["volume"] for b in ses["bars"]) for ses in sessions]
    windows = [_or_window(ses, minutes) for ses in sessions]
    or_vol = [sum(ses["bars"][i]["volume"] for i in w) for ses, w in zip(sessions, windows, strict=True)]
    out = []
    for s, ses in enumerate(sessions):
        avg_volume = rel_volume = None
        if s >= lookback:  # 10.9.3: lookback prior sessions present in the symbol's data
            avg_volume = sum(total_vol[s - lookback : s]) / lookback
            prior_or = sum(or_vol[s - lookback : s]) / lookback
            if prior_or > 0:
                rel_volume = or_vol[s] / prior_or  # 10.9.11: no OR bars -> 0, defined
        w = windows[s]
        or_high = max(ses["bars"][i]["high"] for i in w) if w else None
        or_low = min(ses["bars"][i]["low"] for i in w) if w else None
        out.append(
            {
                "open_price": ses["bars"][0]["open"],  # first regular-hours bar
                "avg_volume": avg_volume,
                "atr": atr[s],
                "rel_volume": rel_volume,
                "or_high": or_high,
                "or_low": or_low,
                "section2": _section2_reason(ses, w, or_high, or_low, atr[s], config),
            }
        )
    return out


def _section2_reason(session, window, or_high, or_low, atr, config: Config) -> str | None:
    """The single-symbol engine's section-2 reasons in its order (10.9.2, 10.9.14)."""
    minutes = config.orb.base_minutes
    if config.orb.validate_or:
        reason = _validate_or(session, minutes)
        if reason is not None:
            return reason
    if not window:
        return "no_or_bars"
    width = or_high - or_low
    if width == 0:
        return "zero_width"
    ratio = width / atr if (atr is not None and atr > 0) else None
    if config.orb.min_width_atr is not None and ratio is not None and ratio < config.orb.min_width_atr:
        return "width_below_min"
    if config.orb.max_width_atr is not None and ratio is not None and ratio > config.orb.max_width_atr:
        return "width_above_max"
    return None


def _eligibility(values: dict, config: Config) -> str | None:
    """None when eligible, else the first reason of 10.4 / 10.9.2."""
    u = config.universe
    needs_atr = u.min_atr is not None or _needs_atr(config)  # 10.9.3
    if (
        values["rel_volume"] is None
        or (u.min_avg_volume is not None and values["avg_volume"] is None)
        or (needs_atr and values["atr"] is None)
    ):
        return "warmup"
    if values["section2"] is not None:
        return values["section2"]
    if u.min_price is not None and not values["open_price"] > u.min_price:
        return "min_price"
    if u.min_avg_volume is not None and not values["avg_volume"] >= u.min_avg_volume:
        return "min_avg_volume"
    if u.min_atr is not None and not values["atr"] > u.min_atr:
        return "min_atr"
    if u.min_rel_volume is not None and not values["rel_volume"] >= u.min_rel_volume:
        return "min_rel_volume"
    return None


def run_reference_portfolio(
    bars_by_symbol: dict[str, pd.DataFrame],
    config: Config,
    start: date,
    end: date,
    benchmark: pd.DataFrame | None = None,
) -> dict:
    """Universe rows, trades (with alloc and rank), fills, account equity rows and portfolio metrics."""
    symbols = sorted(bars_by_symbol)
    per_symbol = {sym: _sessions_from_bars(bars_by_symbol[sym], config) for sym in symbols}
    bench_sessions = _sessions_from_bars(benchmark, config) if benchmark is not None else []

    # 10.9.12: calendar sessions between the run's dates present in any loaded symbol's data.
    present = {ses["date"] for sessions in [*per_symbol.values(), bench_sessions] for ses in sessions}
    run_days = sorted(d for d in present if start <= d <= end)
    sched = schedule(run_days[0], run_days[-1], config.session.calendar) if run_days else None

    index = {sym: {ses["date"]: s for s, ses in enumerate(per_symbol[sym])} for sym in symbols}
    values = {sym: _daily_values(per_symbol[sym], config) for sym in symbols}
    adx = {
        sym: _adx_for_sessions(per_symbol[sym], config.confluence.adx.period)
        if config.confluence.adx.enabled
        else None
        for sym in symbols
    }
    atr = {sym: _atr_for_sessions(per_symbol[sym], config.orb.atr_period) for sym in symbols}
    states = {sym: {"realized": 0.0, "trade_id": 0} for sym in symbols}
    n_slots = config.portfolio.max_positions

    universe, trades, fills, equity_rows, daily = [], [], [], [], []
    equity = config.risk.initial_capital
    cum_r = 0.0
    for day in run_days:
        rows = {}
        for sym in symbols:
            s = index[sym].get(day)
            if s is None:
                rows[sym] = _row(day, sym, None, "skipped", "no_data")  # 10.9.1
                continue
            v = values[sym][s]
            reason = _eligibility(v, config)
            rows[sym] = _row(day, sym, v, "skipped" if reason else "eligible", reason)
        eligible = sorted((r for r in rows.values() if r["status"] == "eligible"),
                          key=lambda r: (-r["rel_volume"], r["symbol"]))  # fmt: skip
        alloc = equity / n_slots  # 10.2: E_d / N
        day_fills, day_trades = [], []
        for rank, row in enumerate(eligible, start=1):
            row["rank"] = rank
            if rank > n_slots:
                row["status"] = "not_selected"
                continue
            sym = row["symbol"]
            s = index[sym][day]
            state = states[sym]
            state["sizing_equity"] = alloc  # 10.9.5: every entry of the session sized with alloc_d
            t, f, ev = [], [], []
            _run_session(per_symbol[sym], s, config, sym, atr=atr[sym][s], atr5=None, atr20=None,
                         adx=adx[sym][s] if adx[sym] is not None else None, state=state,
                         trades=t, fills=f, events=ev)  # fmt: skip
            for trade in t:
                trade["alloc"], trade["rank"] = alloc, rank
            row["status"] = "traded" if t else "no_signal"
            row["trades"] = len(t)
            row["day_r"] = sum(x["r_multiple"] for x in t)
            row["day_pnl"] = sum(x["net_pnl"] for x in t)
            day_trades.extend(t)
            last_fill = {}
            for order, fill in enumerate(f):
                fill["_order"] = order
                last_fill[fill["trade_id"]] = order
            r_by_id = {x["trade_id"]: x["r_multiple"] for x in t}
            for fill in f:
                fill["_r"] = (
                    r_by_id[fill["trade_id"]] if last_fill[fill["trade_id"]] == fill["_order"] else 0.0
                )
            day_fills.extend(f)
        # 10.7: a row after every fill; same timestamp: symbol order, then fill order.
        start_equity = equity
        for fill in sorted(day_fills, key=lambda x: (x["time"], x["symbol"], x["_order"])):
            trade = next(
                x for x in day_trades if x["symbol"] == fill["symbol"] and x["trade_id"] == fill["trade_id"]
            )
            gross = (
                0.0
                if fill["kind"] == "entry"
                else (
                    (fill["price"] - trade["entry_price"])
                    * fill["shares"]
                    * (1 if trade["side"] == "long" else -1)
                )
            )
            equity += gross - fill["commission"]  # 10.9.7
            cum_r += fill["_r"]
            equity_rows.append({"timestamp": fill["time"], "equity": equity, "cum_r": cum_r})
        close = sched.loc[pd.Timestamp(day), "close"]
        equity_rows.append({"timestamp": close, "equity": equity, "cum_r": cum_r})  # 10.9.13
        daily.append({"session_date": day, "start": start_equity, "end": equity,
                      "traded": {t["symbol"] for t in day_trades}, "pnl": equity - start_equity})  # fmt: skip
        trades.extend(day_trades)
        fills.extend(day_fills)
        universe.extend(rows[sym] for sym in symbols)
    return {
        "universe": universe,
        "trades": trades,
        "fills": fills,
        "equity": equity_rows,
        "metrics": _metrics(daily, bench_sessions, run_days, config),
    }


def _row(day, sym, v, status, reason) -> dict:
    v = v or {}
    return {
        "session_date": day,
        "symbol": sym,
        "open_price": v.get("open_price"),
        "avg_volume": v.get("avg_volume"),
        "atr": v.get("atr"),
        "rel_volume": v.get("rel_volume"),
        "or_high": v.get("or_high"),
        "or_low": v.get("or_low"),
        "status": status,
        "reason": reason,
        "rank": None,
        "trades": 0,
        "day_r": 0.0,
        "day_pnl": 0.0,
    }


def _metrics(daily: list[dict], bench_sessions: list[dict], run_days: list[date], config: Config) -> dict:
    """The portfolio keys of 10.8 / 10.9.8 / 10.9.9 and the account's Sharpe and return."""
    ret = np.array([d["end"] / d["start"] - 1 for d in daily])
    with_trade = [d for d in daily if d["traded"]]
    out = {
        "daily_hit_ratio": (sum(d["pnl"] > 0 for d in with_trade) / len(with_trade)) if with_trade else None,
        "worst_day_pct": float(ret.min() * 100) if len(ret) else None,
        "avg_positions": (sum(len(d["traded"]) for d in with_trade) / len(with_trade))
        if with_trade
        else None,
        "max_positions_used": max((len(d["traded"]) for d in daily), default=0),
        "final_equity": daily[-1]["end"] if daily else config.risk.initial_capital,
        "total_return_pct": (daily[-1]["end"] / config.risk.initial_capital - 1) * 100 if daily else 0.0,
    }
    ppy = config.metrics.periods_per_year
    excess = ret - config.metrics.risk_free_rate / ppy
    std = excess.std(ddof=1) if len(excess) > 1 else 0.0
    out["sharpe"] = (
        float(excess.mean() / std * math.sqrt(ppy)) if std > 1e-12 * max(1, abs(excess.mean())) else None
    )
    if bench_sessions:
        out.update(_benchmark(ret, bench_sessions, run_days, ppy))
    return out


def _benchmark(account: np.ndarray, bench_sessions: list[dict], run_days: list[date], ppy: int) -> dict:
    """10.9.9: close_d / close_prev - 1 over the run's sessions; OLS of the account on it."""
    closes = {ses["date"]: ses["d_close"] for ses in bench_sessions}
    dates = [ses["date"] for ses in bench_sessions]
    bench = []
    for day in run_days:
        if day not in closes:
            bench.append(None)  # the benchmark misses this session
            continue
        k = dates.index(day)
        prev = bench_sessions[k - 1]["d_close"] if k > 0 else bench_sessions[k]["d_open"]
        bench.append(closes[day] / prev - 1)
    valid = [b for b in bench if b is not None]
    total = (float(np.prod([1 + b for b in valid])) - 1) * 100 if valid else None
    pairs = [(a, b) for a, b in zip(account, bench, strict=True) if b is not None]
    beta = alpha = None
    if len(pairs) >= 2:
        y = np.array([p[0] for p in pairs])
        x = np.array([p[1] for p in pairs])
        var = ((x - x.mean()) ** 2).sum()
        if var > 0:
            beta = float(((x - x.mean()) * (y - y.mean())).sum() / var)
            alpha = float((y.mean() - beta * x.mean()) * ppy * 100)
    return {"benchmark_return_pct": total, "beta": beta, "alpha_pct": alpha}
