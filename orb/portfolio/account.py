"""Stage 2 of a portfolio run: the selected symbol-sessions traded from one account (strategy.md 10.1,
10.2, 10.6, 10.7, 10.9.5, 10.9.7, 10.9.13).

Session by session: `alloc_d = E_d / max_positions`; each selected symbol runs the session with the
engine's own rules (`SessionLoop`), every entry sized with `alloc_d`; `E_{d+1}` is `E_d` plus the
session's realized net P&L. The account equity gets a row after every fill (fills at one time in symbol
order, then fill order) and a row at each session's calendar close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from orb.config import Config
from orb.engine import BacktestResult, EventLoopBacktest, Prepared
from orb.metrics import drawdowns
from orb.schema import EQUITY_COLUMNS

_SIDE = {"long": 1, "short": -1}


@dataclass(frozen=True)
class Account:
    """The simulation's output: per-symbol engine frames, the account curve and per-session values."""

    results: dict[str, BacktestResult]  # symbols that were selected at least once
    equity: pd.DataFrame  # EQUITY_COLUMNS
    sessions: pd.DataFrame  # session_date, open_equity (E_d), alloc, close_equity (E_{d+1}), pnl, positions


def simulate(
    cfg: Config,
    sessions: Sequence[date],
    close_ns: Sequence[int],
    selected: Mapping[date, list[str]],
    prepared: Mapping[str, Prepared],
) -> Account:
    """Trade `selected[d]` (symbols) on each session d of `sessions` (ascending; `close_ns` their calendar
    closes in ns UTC) from the prepared selected sessions of each symbol."""
    loops = {sym: EventLoopBacktest(cfg, sym).session_loop(p) for sym, p in sorted(prepared.items())}
    n_slots = cfg.portfolio.max_positions
    equity = cfg.risk.initial_capital
    cum_r = 0.0
    rows: list[tuple[int, float, float]] = []
    per_session = []
    for day, close in zip(sessions, close_ns, strict=True):
        open_equity = equity
        alloc = open_equity / n_slots
        booked: list[tuple] = []  # (time, symbol order, fill order, pnl, r at the trade's last fill)
        traded_symbols = 0
        day_pnl = 0.0
        for order, sym in enumerate(sorted(selected.get(day, ()))):
            out = loops[sym].run_session(day, alloc)
            if not out.trades:
                continue
            traded_symbols += 1
            trades = {t["trade_id"]: t for t in out.trades}
            day_pnl += sum(t["net_pnl"] for t in out.trades)
            last_fill = {fill[0]: k for k, fill in enumerate(out.fills)}
            for k, (trade_id, _, ts, kind, price, qty, commission) in enumerate(out.fills):
                trade = trades[trade_id]
                pnl = -commission  # 10.9.7: an entry books minus its commission, an exit leg its P&L too
                if kind != "entry":
                    pnl += (price - trade["entry_price"]) * qty * _SIDE[trade["side"]]
                r = trade["r_multiple"] if last_fill[trade_id] == k else 0.0
                booked.append((ts, order, k, pnl, r))
        booked.sort(key=lambda row: row[:3])
        for ts, _, _, pnl, r in booked:
            equity += pnl
            cum_r += r
            rows.append((ts, equity, cum_r))
        rows.append((int(close), equity, cum_r))
        per_session.append((day, open_equity, alloc, equity, day_pnl, traded_symbols))

    stamps = np.array([r[0] for r in rows], dtype=np.int64)
    values = np.array([r[1] for r in rows], dtype=np.float64)
    cum = np.array([r[2] for r in rows], dtype=np.float64)
    dd_pct, dd_r = drawdowns(values, cum, initial_equity=cfg.risk.initial_capital)
    curve = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(stamps, utc=True).as_unit("ns"),
            "equity": values,
            "cum_r": cum,
            "drawdown_pct": dd_pct,
            "drawdown_r": dd_r,
        }
    )[list(EQUITY_COLUMNS)]
    table = pd.DataFrame(
        per_session, columns=["session_date", "open_equity", "alloc", "close_equity", "pnl", "positions"]
    )
    return Account({sym: loop.results() for sym, loop in loops.items()}, curve, table)
