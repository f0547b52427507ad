"""Run metrics (run-format.md metric keys) and the drawdown curves of an equity table. Pure numpy/pandas.

Units and signs: drawdowns are <= 0 (`max_drawdown_r` -3.2 is 3.2 R below the peak, `max_drawdown_pct`
-2.5 is 2.5 % below it); every `*_pct` is in percent; win rates are fractions 0-1. Undefined values are
None (JSON null), never NaN or inf. R is a trade's `r_multiple`; trade order is `entry_time` (stable, so
ties keep the input order, e.g. all_trades' entry time then symbol).

Definitions (key: meaning; "None" is when the value is undefined):
    total_trades, winning_trades, losing_trades: counts; win R > 0, loss R < 0, R == 0 is neither
    win_rate: winning_trades / total_trades (None without trades)
    total_r, avg_r, median_r, expectancy_r: sum, mean, median, mean of R (total_r 0.0 without trades)
    profit_factor: sum of positive net_pnl / abs(sum of negative net_pnl), dollars (None without a loss)
    sqn: sqrt(n) * mean(R) / std(R, ddof=1) (None when n < 2 or std <= 1e-12 * max(1, |mean|))
    avg_winner_r, avg_loser_r: mean R of the winners / of the losers
    largest_winner_r, largest_loser_r: max R of the winners / min R of the losers
    max_consecutive_wins, max_consecutive_losses: longest run in trade order; R == 0 breaks both
    max_drawdown_r: min over the equity rows of (cum_r - running max of cum_r), the max starting at 0
    max_drawdown_pct: min over the equity rows of (equity / running max - 1) * 100, the max starting at
        initial_capital (both 0.0 without equity rows)
    max_drawdown_duration_days: longest span in calendar days (exchange-local dates) from an equity peak
        to the first row back at or above it, or to the last row if never recovered (0 without drawdown)
    sharpe: mean(x) / std(x, ddof=1) * sqrt(periods_per_year), x = daily return - rf,
        rf = risk_free_rate / periods_per_year (None with < 2 days or std(x) <= 1e-12 * max(1, |mean(x)|))
    sortino: mean(x) / sqrt(mean(min(0, x) ** 2)) * sqrt(periods_per_year) (None with < 2 days or no x < 0)
    calmar: cagr_pct / abs(max_drawdown_pct) (None without drawdown or cagr_pct)
    net_pnl, final_equity: sum of net_pnl; initial_capital + net_pnl
    total_return_pct: net_pnl / initial_capital * 100
    cagr_pct: ((final_equity / initial_capital) ** (1 / years) - 1) * 100, years = calendar days from the
        first to the last session day / 365.25 (None under 1 day or beyond the float range; -100 when
        final_equity <= 0)
    exposure_pct: sum(holding_minutes) / (390 * rows of the sessions table not skipped) * 100; early
        closes count as 390 minutes, so exposure is slightly understated on those days; the aggregate
        divides by symbol-sessions, so it stays within 0-100
    avg_holding_minutes: mean holding_minutes
    long_trades, short_trades, long_win_rate, short_win_rate: counts by side; side winners / side count
    sessions: distinct session dates of the sessions table
    sessions_traded: distinct dates on which any row has status `traded`
    sessions_skipped: distinct dates on which every row has status `skipped`
    exit_reasons: {exit_reason: count}, sorted by reason
    symbols, avg_r_per_trade (aggregate only): the symbols as given; total_r / total_trades

Daily returns: the days are the session dates of the sessions table together with the local dates of the
equity rows; the close of a day is the last equity row on or before it (initial_capital before the first
row), so days without trades return 0; the first day's return is against initial_capital.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from orb.schema import AGGREGATE_EXTRA_KEYS, METRIC_KEYS

if TYPE_CHECKING:  # the engine imports this module: types only
    from orb.config import Config
    from orb.engine import BacktestResult

SESSION_MINUTES = 390  # regular-hours minutes of a full session (09:30-16:00)
TRADE_INPUTS = ("r_multiple", "net_pnl", "side", "exit_reason", "holding_minutes", "entry_time")
EQUITY_INPUTS = ("timestamp", "equity", "cum_r")
SESSION_INPUTS = ("session_date", "status")


def drawdowns(equity_values, cum_r, initial_equity: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(drawdown_pct, drawdown_r), both <= 0: percent below the equity's running max and R below cum_r's.

    The equity's running max starts at `initial_equity` when given (so a loss on the first row counts),
    cum_r's running max starts at 0.
    """
    eq = np.asarray(equity_values, dtype=float)
    r = np.asarray(cum_r, dtype=float)
    peak = np.maximum.accumulate(eq if initial_equity is None else np.maximum(eq, initial_equity))
    return (eq / peak - 1.0) * 100.0, r - np.maximum.accumulate(np.maximum(r, 0.0))


@dataclass(frozen=True)
class MetricInputs:
    """The columns the metrics read, as arrays in table order (TRADE_INPUTS, EQUITY_INPUTS,
    SESSION_INPUTS): what `compute_metrics` takes from its frames, or a loop gives without building them."""

    entry_time: np.ndarray  # datetime64[ns] (UTC)
    r_multiple: np.ndarray  # float64
    net_pnl: np.ndarray  # float64
    side: np.ndarray  # str
    exit_reason: np.ndarray  # str
    holding_minutes: np.ndarray  # float64
    equity_ns: np.ndarray  # int64 ns since the epoch (UTC)
    equity: np.ndarray  # float64
    cum_r: np.ndarray  # float64
    session_days: np.ndarray  # datetime64[D]
    status: np.ndarray  # str


def metric_inputs(trades: pd.DataFrame, equity: pd.DataFrame, sessions: pd.DataFrame) -> MetricInputs:
    """The metric inputs of run-format.md frames (only the columns the metrics read)."""
    trades = _inputs(trades, TRADE_INPUTS, "trades")
    equity = _inputs(equity, EQUITY_INPUTS, "equity")
    sessions = _inputs(sessions, SESSION_INPUTS, "sessions")
    return MetricInputs(
        entry_time=pd.to_datetime(trades["entry_time"], utc=True).to_numpy(),
        r_multiple=trades["r_multiple"].to_numpy(dtype=float),
        net_pnl=trades["net_pnl"].to_numpy(dtype=float),
        side=trades["side"].astype(str).to_numpy(),
        exit_reason=trades["exit_reason"].astype(str).dropna().to_numpy(),
        holding_minutes=trades["holding_minutes"].to_numpy(dtype=float),
        equity_ns=pd.DatetimeIndex(pd.to_datetime(equity["timestamp"], utc=True)).as_unit("ns").asi8,
        equity=equity["equity"].to_numpy(dtype=float),
        cum_r=equity["cum_r"].to_numpy(dtype=float),
        session_days=_days(sessions["session_date"]),
        status=sessions["status"].astype(str).to_numpy(),
    )


def compute_metrics(
    trades: pd.DataFrame,
    equity: pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    initial_capital: float,
    periods_per_year: int,
    risk_free_rate: float,
    symbols: list[str] | None = None,
    timezone: str = "America/New_York",
) -> dict:
    """Every metric key of run-format.md (module table), in METRIC_KEYS order, JSON-safe.

    With `symbols` (the aggregate) the keys `symbols` and `avg_r_per_trade` follow; `trades`, `sessions`
    are then all symbols' rows and `equity` the combined equity with `initial_capital` the sum of capitals.
    `timezone` is the exchange timezone giving the local date of equity rows.
    """
    return metrics_of(
        metric_inputs(trades, equity, sessions),
        initial_capital=initial_capital,
        periods_per_year=periods_per_year,
        risk_free_rate=risk_free_rate,
        symbols=symbols,
        timezone=timezone,
    )


def metrics_of(
    x: MetricInputs,
    *,
    initial_capital: float,
    periods_per_year: int,
    risk_free_rate: float,
    symbols: list[str] | None = None,
    timezone: str = "America/New_York",
) -> dict:
    """`compute_metrics` of inputs already taken from the frames."""
    values = _trade_metrics(x)
    net_pnl = float(x.net_pnl.sum())
    final_equity = initial_capital + net_pnl

    order = np.argsort(x.equity_ns, kind="stable")
    eq = x.equity[order]
    local = pd.DatetimeIndex(x.equity_ns[order], tz="UTC").tz_convert(timezone).tz_localize(None)
    eq_days = local.to_numpy().astype("datetime64[D]")  # what _days gives, without its conversions
    session_days = x.session_days
    days = np.union1d(session_days, eq_days)

    dd_pct, dd_r = drawdowns(eq, x.cum_r[order], initial_equity=initial_capital)
    max_dd_pct = float(dd_pct.min()) if len(eq) else 0.0
    cagr = _cagr(final_equity / initial_capital, days)
    sharpe, sortino = _sharpe_sortino(
        _daily_returns(eq, eq_days, days, initial_capital), periods_per_year, risk_free_rate
    )

    status = x.status
    unique_days, inverse = np.unique(session_days, return_inverse=True)
    rows_per_day = np.bincount(inverse, minlength=len(unique_days))
    traded_per_day = np.bincount(inverse, weights=status == "traded", minlength=len(unique_days))
    skipped_per_day = np.bincount(inverse, weights=status == "skipped", minlength=len(unique_days))
    active_sessions = int((status != "skipped").sum())
    holding = float(x.holding_minutes.sum())

    values.update(
        max_drawdown_r=float(dd_r.min()) if len(eq) else 0.0,
        max_drawdown_pct=max_dd_pct,
        max_drawdown_duration_days=_max_drawdown_days(eq, eq_days, days, initial_capital),
        sharpe=sharpe,
        sortino=sortino,
        calmar=_ratio(cagr, abs(max_dd_pct)) if cagr is not None else None,
        net_pnl=net_pnl,
        total_return_pct=net_pnl / initial_capital * 100.0,
        cagr_pct=cagr,
        final_equity=final_equity,
        exposure_pct=_ratio(holding * 100.0, SESSION_MINUTES * active_sessions),
        sessions=len(unique_days),
        sessions_traded=int((traded_per_day > 0).sum()),
        sessions_skipped=int((skipped_per_day == rows_per_day).sum()),
    )
    out = {key: _json_safe(values[key]) for key in METRIC_KEYS}
    if symbols is not None:
        extra = {
            "symbols": [str(s) for s in symbols],
            "avg_r_per_trade": _ratio(values["total_r"], values["total_trades"]),
        }
        out.update((key, extra[key]) for key in AGGREGATE_EXTRA_KEYS)
    return out


def _inputs(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    """The frame, or an empty one with `columns` when it has no rows; missing columns are an error."""
    if len(frame) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"metrics: {name} table lacks column(s) {', '.join(missing)}; pass run-format.md columns"
        )
    return frame


def _trade_metrics(x: MetricInputs) -> dict:
    order = np.argsort(x.entry_time, kind="stable")
    r = x.r_multiple[order]
    pnl = x.net_pnl
    side = x.side[order]
    n = len(r)
    win, loss = r > 0, r < 0
    long, short = side == "long", side == "short"
    gross_loss = -pnl[pnl < 0].sum()
    reasons = Counter(x.exit_reason.tolist())
    return {
        "total_trades": n,
        "winning_trades": int(win.sum()),
        "losing_trades": int(loss.sum()),
        "win_rate": _ratio(win.sum(), n),
        "total_r": float(r.sum()),
        "avg_r": _mean(r),
        "median_r": float(np.median(r)) if n else None,
        "profit_factor": float(pnl[pnl > 0].sum() / gross_loss) if gross_loss > 0 else None,
        "expectancy_r": _mean(r),
        "sqn": _sqn(r),
        "avg_winner_r": _mean(r[win]),
        "avg_loser_r": _mean(r[loss]),
        "largest_winner_r": float(r[win].max()) if win.any() else None,
        "largest_loser_r": float(r[loss].min()) if loss.any() else None,
        "max_consecutive_wins": _longest_run(win),
        "max_consecutive_losses": _longest_run(loss),
        "avg_holding_minutes": _mean(x.holding_minutes),
        "long_trades": int(long.sum()),
        "short_trades": int(short.sum()),
        "long_win_rate": _ratio((win & long).sum(), long.sum()),
        "short_win_rate": _ratio((win & short).sum(), short.sum()),
        "exit_reasons": {str(k): int(reasons[k]) for k in sorted(reasons)},
    }


def _days(values) -> np.ndarray:
    """Naive dates (datetime64[D]) of date-like values."""
    stamps = pd.DatetimeIndex(pd.to_datetime(values))
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    return stamps.to_numpy().astype("datetime64[D]")


def _daily_returns(eq: np.ndarray, eq_days: np.ndarray, days: np.ndarray, initial: float) -> np.ndarray:
    """Return of each day's closing equity (last row on or before the day) over the previous day's."""
    closes = np.concatenate([[initial], eq])[np.searchsorted(eq_days, days, side="right")]
    previous = np.concatenate([[initial], closes[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return closes / previous - 1.0


def _sharpe_sortino(returns: np.ndarray, periods_per_year: int, risk_free_rate: float):
    if len(returns) < 2:
        return None, None
    excess = returns - risk_free_rate / periods_per_year
    scale = math.sqrt(periods_per_year)
    mean = excess.mean()
    std = excess.std(ddof=1)
    sharpe = None if _negligible(std, mean) else mean / std * scale
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    return sharpe, (mean / downside * scale if downside > 0 else None)


def _max_drawdown_days(eq: np.ndarray, eq_days: np.ndarray, days: np.ndarray, initial: float) -> int:
    """Longest calendar-day span from an equity peak to recovery (or the last row); 0 without drawdown."""
    if len(eq) == 0:
        return 0
    values = np.concatenate([[initial], eq])  # the curve starts at initial capital on the first day
    dates = np.concatenate([days[:1], eq_days]).astype(np.int64)
    under = values < np.maximum.accumulate(values)
    index = np.arange(len(values))
    last_peak = np.maximum.accumulate(np.where(under, 0, index))
    peak_before = np.concatenate([[0], last_peak[:-1]])
    in_or_ending = under | np.concatenate([[False], under[:-1]])
    return int(np.max(np.where(in_or_ending, dates - dates[peak_before], 0)))


def _cagr(growth: float, days: np.ndarray) -> float | None:
    span = int((days[-1] - days[0]).astype(np.int64)) if len(days) else 0
    if span < 1:
        return None
    if growth <= 0:
        return -100.0
    try:
        return (growth ** (365.25 / span) - 1.0) * 100.0
    except OverflowError:  # a growth near the float limit, annualised over under a year
        return None


def _sqn(r: np.ndarray) -> float | None:
    if len(r) < 2:
        return None
    mean, std = r.mean(), r.std(ddof=1)
    return None if _negligible(std, mean) else math.sqrt(len(r)) * mean / std


def _negligible(std: float, mean: float) -> bool:
    """A spread that is float noise (a constant series summed or divided in floats)."""
    return std <= 1e-12 * max(1.0, abs(mean))


def _longest_run(mask: np.ndarray) -> int:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def _ratio(num, den) -> float | None:
    return float(num) / float(den) if den else None


def _json_safe(value):
    """Plain Python scalars; non-finite floats become None."""
    if isinstance(value, dict | list | str) or value is None:
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def combine_equity(equities: Mapping[str, pd.DataFrame], initial_capital: float) -> pd.DataFrame:
    """Sum of symbol equities (and cum_r) over the union of timestamps, each carried forward
    (strategy.md 7); a symbol counts its initial capital before its first row."""
    stamps, total_eq, total_r = _combined(
        [
            (
                pd.DatetimeIndex(eq["timestamp"]).as_unit("ns").asi8,
                eq["equity"].to_numpy(),
                eq["cum_r"].to_numpy(),
            )
            for eq in equities.values()
        ],
        initial_capital,
    )
    dd_pct, dd_r = drawdowns(total_eq, total_r, initial_equity=initial_capital * len(equities))
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(stamps, utc=True),
            "equity": total_eq,
            "cum_r": total_r,
            "drawdown_pct": dd_pct,
            "drawdown_r": dd_r,
        }
    )


def _combined(curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]], initial_capital: float):
    """(stamps, equity, cum_r) of `combine_equity` from each symbol's (ns, equity, cum_r) sorted by time."""
    stamps = np.unique(np.concatenate([ns for ns, _, _ in curves]))
    total_eq = np.zeros(len(stamps))
    total_r = np.zeros(len(stamps))
    for ns, equity, cum_r in curves:
        # the last row at or before each stamp (rows are sorted by time; ties keep the latest)
        pos = np.searchsorted(ns, stamps, side="right") - 1
        has = pos >= 0
        total_eq += np.where(has, equity[np.maximum(pos, 0)], initial_capital)
        total_r += np.where(has, cum_r[np.maximum(pos, 0)], 0.0)
    return stamps, total_eq, total_r


def aggregate_inputs(inputs: Mapping[str, MetricInputs], initial_capital: float) -> MetricInputs:
    """The aggregate's inputs from each symbol's (equity rows sorted by time): all trades and sessions in
    symbol order, the combined equity (`combine_equity`)."""
    parts = list(inputs.values())
    stamps, total_eq, total_r = _combined([(x.equity_ns, x.equity, x.cum_r) for x in parts], initial_capital)

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(x, name) for x in parts])

    return MetricInputs(
        **{name: joined(name) for name in ("entry_time", "r_multiple", "net_pnl", "side", "exit_reason",
                                          "holding_minutes", "session_days", "status")},
        equity_ns=stamps,
        equity=total_eq,
        cum_r=total_r,
    )  # fmt: skip


def symbol_metrics(result: BacktestResult, cfg: Config) -> dict:
    """run-format.md metrics of one symbol's backtest."""
    return compute_metrics(
        result.trades,
        result.equity,
        result.sessions,
        initial_capital=cfg.risk.initial_capital,
        periods_per_year=cfg.metrics.periods_per_year,
        risk_free_rate=cfg.metrics.risk_free_rate,
        timezone=cfg.session.timezone,
    )


def aggregate_metrics(
    results: Mapping[str, BacktestResult], cfg: Config, combined: pd.DataFrame | None = None
) -> dict:
    """Aggregate metrics: all trades, every symbol's sessions, the combined equity (computed unless
    given) and summed capital."""
    trades = pd.concat([r.trades for r in results.values()], ignore_index=True)
    sessions = pd.concat([r.sessions for r in results.values()], ignore_index=True)
    if combined is None:
        combined = combine_equity({s: r.equity for s, r in results.items()}, cfg.risk.initial_capital)
    return compute_metrics(
        trades,
        combined,
        sessions,
        initial_capital=cfg.risk.initial_capital * len(results),
        periods_per_year=cfg.metrics.periods_per_year,
        risk_free_rate=cfg.metrics.risk_free_rate,
        symbols=list(results),
        timezone=cfg.session.timezone,
    )
