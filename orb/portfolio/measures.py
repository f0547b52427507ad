"""Account metrics of a portfolio run (strategy.md 10.7, 10.8, 10.9.8, 10.9.9) and the benchmark series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from orb.config import Config
from orb.engine import Prepared
from orb.metrics import compute_metrics

# Keys computed from an equity curve: null in a portfolio run's per-symbol entries (run-format.md).
EQUITY_KEYS = (
    "max_drawdown_r",
    "max_drawdown_pct",
    "max_drawdown_duration_days",
    "sharpe",
    "sortino",
    "calmar",
    "total_return_pct",
    "cagr_pct",
    "final_equity",
)
PORTFOLIO_KEYS = ("daily_hit_ratio", "worst_day_pct", "avg_positions", "max_positions_used")
BENCHMARK_KEYS = ("benchmark_return_pct", "beta", "alpha_pct")
BENCHMARK_COLUMNS = ("session_date", "close", "return")


def benchmark_series(prepared: Prepared, sessions: Sequence[date]) -> pd.DataFrame:
    """The benchmark's close and daily return on each run session it has data for (10.9.9).

    The return is close / previous close present in its data (a warm-up session counts); with no
    earlier session, the first session's open stands in for the previous close."""
    S = prepared.sessions
    o, c = prepared.arrays[0], prepared.arrays[3]
    if not len(S.starts):
        return pd.DataFrame(columns=list(BENCHMARK_COLUMNS))
    stops = np.append(S.starts[1:], len(c))
    close = c[stops - 1]
    prev = np.concatenate(([o[S.starts[0]]], close[:-1]))
    days = [d.date() for d in S.dates]
    wanted = set(sessions)
    keep = np.array([d in wanted for d in days], dtype=bool)
    return pd.DataFrame(
        {
            "session_date": [d for d, k in zip(days, keep, strict=True) if k],
            "close": close[keep],
            "return": close[keep] / prev[keep] - 1.0,
        }
    )


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """(intercept, slope) of y on x with an intercept; None with < 2 points or no variance in x."""
    if len(x) < 2:
        return None, None
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        return None, None
    slope = float(dx @ (y - y.mean())) / sxx
    return float(y.mean() - slope * x.mean()), slope


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def account_metrics(
    cfg: Config,
    trades: pd.DataFrame,
    equity: pd.DataFrame,
    universe: pd.DataFrame,
    account_sessions: pd.DataFrame,
    symbols: list[str],
    benchmark: pd.DataFrame | None,
) -> dict:
    """metrics.json `aggregate` of a portfolio run: orb.metrics over the account curve and all trades,
    then the portfolio keys (and the benchmark keys when a benchmark is set).

    The sessions table given to orb.metrics is the universe grid with `not_selected` counted as skipped,
    so `sessions_skipped` counts sessions where no symbol was selected and `exposure_pct` is the share
    of the selected symbol-sessions' minutes spent in a position."""
    status = universe["status"].where(universe["status"] != "not_selected", "skipped")
    sessions = pd.DataFrame({"session_date": universe["session_date"], "status": status})
    out = compute_metrics(
        trades,
        equity,
        sessions,
        initial_capital=cfg.risk.initial_capital,
        periods_per_year=cfg.metrics.periods_per_year,
        risk_free_rate=cfg.metrics.risk_free_rate,
        symbols=symbols,
        timezone=cfg.session.timezone,
    )
    acct = account_sessions
    returns = acct["close_equity"].to_numpy() / acct["open_equity"].to_numpy() - 1.0
    active = acct["positions"].to_numpy() > 0
    pnl = acct["pnl"].to_numpy()
    out["daily_hit_ratio"] = float((pnl[active] > 0).mean()) if active.any() else None
    out["worst_day_pct"] = _finite(float(returns.min()) * 100.0) if len(returns) else None
    out["avg_positions"] = float(acct["positions"].to_numpy()[active].mean()) if active.any() else None
    out["max_positions_used"] = int(acct["positions"].max()) if len(acct) else 0
    if benchmark is not None:
        bench = benchmark.set_index("session_date")["return"]
        mine = pd.Series(returns, index=acct["session_date"].to_numpy())
        both = bench.index[bench.index.isin(mine.index)]
        intercept, slope = _ols(bench.loc[both].to_numpy(dtype=float), mine.loc[both].to_numpy(dtype=float))
        growth = float(np.prod(1.0 + bench.to_numpy(dtype=float))) if len(bench) else math.nan
        out["benchmark_return_pct"] = _finite((growth - 1.0) * 100.0)
        out["beta"] = _finite(slope)
        out["alpha_pct"] = (
            None if intercept is None else _finite(intercept * cfg.metrics.periods_per_year * 100)
        )
    return out


def symbol_statistics(cfg: Config, trades: pd.DataFrame, universe_rows: pd.DataFrame) -> dict:
    """metrics.json `per_symbol` entry: trade statistics of one symbol, equity-based keys null."""
    empty = pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "equity": pd.Series([], dtype=float),
            "cum_r": pd.Series([], dtype=float),
        }
    )
    rows = universe_rows[universe_rows["status"].isin(["traded", "no_signal"])]
    out = compute_metrics(
        trades,
        empty,
        pd.DataFrame({"session_date": rows["session_date"], "status": rows["status"]}),
        initial_capital=cfg.risk.initial_capital,
        periods_per_year=cfg.metrics.periods_per_year,
        risk_free_rate=cfg.metrics.risk_free_rate,
        timezone=cfg.session.timezone,
    )
    return out | dict.fromkeys(EQUITY_KEYS)
