"""Shared pieces of the dashboard pages: run labels, KPI cards, metric column formats."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orb import charts, metric_registry
from orb.metric_registry import Kind, plural
from orb.runs import read as results

KPI_KEYS = (
    "total_trades", "win_rate", "total_r", "avg_r_per_trade", "profit_factor", "sharpe", "max_drawdown_r",
    "max_drawdown_pct", "net_pnl", "final_equity",
)  # fmt: skip
PLOT = {"width": "stretch", "theme": None, "config": {"displaylogo": False}}
MODE_NAMES = {results.SWEEP: "sweep", results.WALK_FORWARD: "walk-forward", results.PORTFOLIO: "portfolio"}


def run_label(summary: results.RunSummary) -> str:
    """One line of the run picker: id, mode (research runs), symbols, dates, trades and total R (the
    out-of-sample ones of a walk-forward; none for a sweep), or why it is damaged."""
    if summary.status != "complete":
        return f"⚠ {summary.run_id} · damaged"
    mode = MODE_NAMES.get(summary.mode)
    head = f"{summary.run_id} · " + (f"{mode} · " if mode else "")
    names = (
        summary.symbols
        if len(summary.symbols) <= 8
        else [*summary.symbols[:8], f"+{len(summary.symbols) - 8}"]
    )
    head += f"{', '.join(names)} · {summary.start} → {summary.end}"
    if summary.mode == results.SWEEP:
        return head
    oos = "OOS " if summary.mode == results.WALK_FORWARD else ""
    trades = f"? {oos}trades" if summary.trades is None else plural(summary.trades, f"{oos}trade")
    total_r = "—" if summary.total_r is None else f"{summary.total_r:+.1f}R"
    return f"{head} · {trades} · {total_r}"


def local_trades(trades: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Trades for display: entry/exit in exchange-local time, session_date as a date."""
    return trades.assign(
        session_date=pd.to_datetime(trades["session_date"]).dt.date,
        entry_time=charts.to_local(trades["entry_time"], tz),
        exit_time=charts.to_local(trades["exit_time"], tz),
    )


def kpi_label(key: str) -> str:
    """A KPI card label: the registry label without a trailing unit sign the value already shows."""
    return metric_registry.label(key).removesuffix(" $")


def kpi_value(key: str, value) -> str:
    """A KPI card value: the registry format ('-$5,888.45', as in the tables)."""
    return charts.format_metric(key, value)


def show_kpis(aggregate: dict) -> None:
    for row in (KPI_KEYS[:5], KPI_KEYS[5:]):
        for col, key in zip(st.columns(len(row)), row, strict=True):
            col.metric(kpi_label(key), kpi_value(key, aggregate.get(key)), border=True)


def number_format(key: str) -> str:
    """The st.column_config number format of a metric column (prefixed is_/oos_ keys included)."""
    metric = metric_registry.METRICS.get(key.removeprefix("is_").removeprefix("oos_"))
    kind = None if metric is None else metric.kind
    if kind is Kind.SHARE:
        return "percent"
    if kind is Kind.MONEY:
        return "dollar"
    if metric is not None and metric.integer:
        return "%d"
    return "%.2f"


def label(key: str) -> str:
    """The registry label of a metric key; an in-sample/out-of-sample `is_`/`oos_` key says IS/OOS."""
    for prefix, text in (("is_", "IS"), ("oos_", "OOS")):
        if key not in metric_registry.METRICS and key.startswith(prefix):
            return f"{text} {metric_registry.label(key.removeprefix(prefix))}"
    return metric_registry.label(key)


def metric_columns(keys) -> dict:
    """Column labels and formats of metric columns (raw values kept, so sorting stays numeric)."""
    return {k: st.column_config.NumberColumn(label(k), format=number_format(k)) for k in keys}


def show_cards(cards: list | tuple, per_row: int = 5) -> None:
    """KPI cards (label, value, help or None), at most `per_row` to a row."""
    for start in range(0, len(cards), per_row):
        row = cards[start : start + per_row]
        for col, (label, value, help_text) in zip(st.columns(per_row), row, strict=False):
            col.metric(label, value, help=help_text, border=True)
