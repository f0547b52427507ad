"""One table of every metric key a run holds or a view shows: label, unit, kind, which way is better.

The run-format.md keys (`RUN_METRICS`, in metrics.json order) and the aggregate extras come first;
then the walk-forward robustness and Monte Carlo keys the views show, and a portfolio run's own. The
console, charts, dashboard, sweep ranking, `schema.METRIC_KEYS` and the API `Metrics` model are built
from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a value measures, which fixes how it is shown."""

    COUNT = "count"  # whole number of things
    DAYS = "days"  # whole calendar days
    MINUTES = "minutes"
    R = "r"  # multiples of the initial risk
    SHARE = "share"  # 0-1, shown as a percentage
    PCT = "pct"  # already in percent
    MONEY = "money"  # account currency
    RATIO = "ratio"  # unitless (profit factor, Sharpe, ...)
    BREAKDOWN = "breakdown"  # an object of counts (exit_reasons) or a list (symbols)


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"
    NONE = "none"  # neither is better (how many sessions, time held)


UNITS = {
    Kind.COUNT: "",
    Kind.DAYS: "days",
    Kind.MINUTES: "minutes",
    Kind.R: "R",
    Kind.SHARE: "0-1",
    Kind.PCT: "%",
    Kind.MONEY: "$",
    Kind.RATIO: "",
    Kind.BREAKDOWN: "",
}
_SPECS = {Kind.COUNT: "d", Kind.DAYS: "d", Kind.R: "+.2f", Kind.SHARE: ".1%", Kind.PCT: ".2f"}


@dataclass(frozen=True)
class Metric:
    """One metric key. `short` is the compact column header of the console tables."""

    key: str
    label: str
    kind: Kind
    better: Better = Better.HIGHER
    short: str = ""

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def integer(self) -> bool:
        """Whole numbers (int64 columns, no decimals shown)."""
        return self.kind in (Kind.COUNT, Kind.DAYS)

    @property
    def spec(self) -> str:
        """A format spec for compact tables (`f"{value:{spec}}"`)."""
        return _SPECS.get(self.kind, ".2f")

    @property
    def header(self) -> str:
        return self.short or self.label

    def format(self, value: Any) -> str:
        """The value for display: '—' for undefined, % for shares, $ for money, R for R values."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "—"
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        if self.integer:
            return f"{int(value):,}"
        if self.kind is Kind.SHARE:
            return f"{value:.1%}"
        if self.kind is Kind.MONEY:
            return money(value)
        if self.kind is Kind.PCT:
            return f"{value:.2f}%"
        if self.kind is Kind.R:
            return f"{value:+.2f}R"
        return f"{value:,.2f}"


def money(value: float) -> str:
    """Dollars with cents, the sign before the dollar sign: '-$5,888.45', '$1,234.50'."""
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 trade', '2 trades', '1,200 sessions' (`many` for irregular plurals)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


C, D, M, R, S, P, USD, X, B = (
    Kind.COUNT, Kind.DAYS, Kind.MINUTES, Kind.R, Kind.SHARE, Kind.PCT, Kind.MONEY, Kind.RATIO, Kind.BREAKDOWN,
)  # fmt: skip
LOW, NONE = Better.LOWER, Better.NONE

RUN_METRICS = (
    Metric("total_trades", "Trades", C, NONE),
    Metric("winning_trades", "Winners", C),
    Metric("losing_trades", "Losers", C, LOW),
    Metric("win_rate", "Win rate", S, short="Win Rate"),
    Metric("total_r", "Total R", R),
    Metric("avg_r", "Avg R", R),
    Metric("median_r", "Median R", R),
    Metric("profit_factor", "Profit factor", X, short="Profit Factor"),
    Metric("expectancy_r", "Expectancy R", R),
    Metric("sqn", "SQN", X),
    Metric("avg_winner_r", "Avg winner R", R),
    Metric("avg_loser_r", "Avg loser R", R),
    Metric("largest_winner_r", "Largest winner R", R),
    Metric("largest_loser_r", "Largest loser R", R),
    Metric("max_consecutive_wins", "Max consecutive wins", C),
    Metric("max_consecutive_losses", "Max consecutive losses", C, LOW),
    Metric("max_drawdown_r", "Max drawdown R", R, short="Max DD R"),  # <= 0: higher is shallower
    Metric("max_drawdown_pct", "Max drawdown %", P, short="Max DD %"),
    Metric("max_drawdown_duration_days", "Max drawdown days", D, LOW),
    Metric("sharpe", "Sharpe", X),
    Metric("sortino", "Sortino", X),
    Metric("calmar", "Calmar", X),
    Metric("net_pnl", "Net P&L $", USD),
    Metric("total_return_pct", "Total return %", P),
    Metric("cagr_pct", "CAGR %", P),
    Metric("final_equity", "Final equity $", USD),
    Metric("exposure_pct", "Exposure %", P, NONE),
    Metric("avg_holding_minutes", "Avg holding min", M, NONE),
    Metric("long_trades", "Long trades", C, NONE),
    Metric("short_trades", "Short trades", C, NONE),
    Metric("long_win_rate", "Long win rate", S),
    Metric("short_win_rate", "Short win rate", S),
    Metric("sessions", "Sessions", C, NONE),
    Metric("sessions_traded", "Sessions traded", C, NONE),
    Metric("sessions_skipped", "Sessions skipped", C, NONE),
    Metric("exit_reasons", "Trades per exit reason", B, NONE),
)
AGGREGATE_METRICS = (
    Metric("symbols", "Symbols", B, NONE),
    Metric("avg_r_per_trade", "Avg R per trade", R, short="Avg R per Trade"),
)
RESEARCH_METRICS = (  # walk-forward robustness (walk_forward.json) and Monte Carlo path statistics
    Metric("is_total_r", "IS total R", R),
    Metric("oos_total_r", "OOS total R", R),
    Metric("is_r_per_session", "IS R per session", R),
    Metric("oos_r_per_session", "OOS R per session", R),
    Metric("efficiency", "Walk-forward efficiency", X),
    Metric("profitable_fold_share", "Profitable OOS folds", S),
    Metric("combination_changes", "Combination changes", C, LOW),
    Metric("longest_losing_streak", "Longest losing streak", C, LOW),
)

PORTFOLIO_METRICS = (  # a portfolio run's aggregate extras (strategy.md 10.8)
    Metric("daily_hit_ratio", "Daily hit ratio", S),
    Metric("worst_day_pct", "Worst day", P),
    Metric("avg_positions", "Average positions", X, NONE),
    Metric("max_positions_used", "Most positions in a session", C, NONE),
    Metric("benchmark_return_pct", "Benchmark buy and hold", P, NONE),
    Metric("beta", "Beta", X, NONE),
    Metric("alpha_pct", "Alpha (per year)", P),
)
METRICS: dict[str, Metric] = {
    m.key: m for m in (*RUN_METRICS, *AGGREGATE_METRICS, *RESEARCH_METRICS, *PORTFOLIO_METRICS)
}
RUN_METRIC_KEYS = tuple(m.key for m in RUN_METRICS)
SCALAR_RUN_METRIC_KEYS = tuple(m.key for m in RUN_METRICS if m.kind is not Kind.BREAKDOWN)
PORTFOLIO_METRIC_KEYS = tuple(m.key for m in PORTFOLIO_METRICS)


def label(key: str) -> str:
    """The display label of a key (the key itself when unknown)."""
    metric = METRICS.get(key)
    return key if metric is None else metric.label


def header(key: str) -> str:
    """The compact column header of a key (console tables)."""
    metric = METRICS.get(key)
    return key if metric is None else metric.header


def format_value(key: str, value: Any) -> str:
    """A value of `key` for display; unknown keys read their kind from the suffix (_pct, _r)."""
    metric = METRICS.get(key)
    if metric is None:
        kind = P if key.endswith("_pct") else R if key.endswith("_r") else X
        metric = Metric(key, key, kind)
    return metric.format(value)
