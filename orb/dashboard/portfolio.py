"""The tabs of a portfolio run (strategy.md 10): account, day view, trades, analysis.

The account against its benchmark's buy and hold, positions per session and the universe funnel; one
session's ranked universe (who was selected and why the others were not) with each selected symbol's
replay one click away; average R by relative-volume bucket and the best and worst symbols by total R.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts
from orb.charts import portfolio as pcharts
from orb.dashboard import backtest, research
from orb.dashboard.common import PLOT, show_cards
from orb.dashboard.data import CACHE_ENTRIES
from orb.runs import read as results

ACCOUNT_KEYS = (
    "total_return_pct", "sharpe", "max_drawdown_pct", "daily_hit_ratio", "total_trades", "win_rate",
    "avg_positions", "worst_day_pct", "final_equity", "total_r",
)  # fmt: skip
BENCHMARK_KEYS = ("benchmark_return_pct", "beta", "alpha_pct")
CARD_LABELS = {"total_return_pct": "Account return", "win_rate": "Trade win rate", "total_trades": "Trades"}
TOP_SYMBOLS = 25


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_run(path: str, stamp: tuple) -> dict:
    """Everything the portfolio tabs read from one run folder (raises results.ResultsError when damaged).

    `sessions` are the universe rows with the run's OR minutes, the frame the session replay reads."""
    results.check_run(path)
    config = results.load_run_config(path)
    universe = results.load_universe(path)
    or_minutes = int(config.get("orb", {}).get("base_minutes", 5))
    return {
        "manifest": results.load_manifest(path),
        "metrics": results.load_metrics(path),
        "config": config,
        "symbols": results.symbols(path),
        "universe": universe,
        "sessions": universe.assign(or_minutes=or_minutes),
        "trades": results.load_trades(path),
        "combined": results.load_equity(path),
        "benchmark": results.load_benchmark(path) if results.has_benchmark(path) else None,
    }


def _card_label(key: str) -> str:
    if key in CARD_LABELS:
        return CARD_LABELS[key]
    if key in pcharts.PORTFOLIO_METRICS:
        return pcharts.portfolio_label(key)
    return charts.METRIC_LABELS.get(key, key)


def _max_positions(run: dict) -> int | None:
    value = run["config"].get("portfolio", {}).get("max_positions")
    return int(value) if isinstance(value, int) else None


def show_account(run: dict, tz: str) -> None:
    """KPI cards of the account, its equity beside the benchmark, positions per session and the funnel."""
    aggregate = run["metrics"]["aggregate"]
    keys = ACCOUNT_KEYS + (BENCHMARK_KEYS if run["benchmark"] is not None else ())
    show_cards([(_card_label(k), pcharts.portfolio_metric(k, aggregate.get(k)), None) for k in keys])
    capital = float(run["config"].get("risk", {}).get("initial_capital", 100_000.0))
    benchmark = run["manifest"].get("benchmark")
    fig = pcharts.account_figure(
        run["combined"], run["benchmark"], capital, benchmark_symbol=benchmark, tz=tz
    )
    st.plotly_chart(fig, **PLOT)
    positions = pcharts.positions_per_session(run["universe"])
    st.plotly_chart(pcharts.positions_figure(positions, _max_positions(run)), **PLOT)
    st.plotly_chart(pcharts.funnel_figure(pcharts.funnel(run["universe"])), **PLOT)


def _day_label(day, counts: pd.DataFrame) -> str:
    row = counts.loc[day]
    return f"{day} · {int(row['traded'])} traded of {int(row['selected'])} selected · {row['day_r']:+.2f}R"


def show_day(run: dict, path: Path, stamp: tuple, run_id: str) -> None:
    """One session: its ranked universe, and the replay of the selected symbol picked."""
    universe = run["universe"]
    days = pd.to_datetime(universe["session_date"]).dt.date
    frame = universe.assign(session_date=days, selected=universe["status"].isin(["traded", "no_signal"]))
    counts = frame.groupby("session_date").agg(
        traded=("status", lambda s: int((s == "traded").sum())),
        selected=("selected", "sum"),
        day_r=("day_r", "sum"),
    )
    choices = list(counts.index)
    traded_days = [d for d in choices if counts.loc[d, "traded"] > 0]
    default = choices.index(traded_days[0]) if traded_days else 0
    day = st.selectbox(
        "Session", choices, index=default, format_func=lambda d: _day_label(d, counts), key=f"day_{run_id}"
    )
    today = frame[frame["session_date"] == day].drop(columns="selected")
    table = pcharts.universe_day_table(today, _max_positions(run))
    st.caption(
        f"{len(table)} symbols · eligible ranked by relative volume (ties: symbol); the first "
        f"{_max_positions(run)} are selected"
    )
    st.dataframe(
        table,
        hide_index=True,
        key=f"universe_{run_id}_{day}",
        column_config={
            "rank": st.column_config.NumberColumn("Rank", format="%d"),
            "why": st.column_config.TextColumn("Why"),
            "rel_volume": st.column_config.NumberColumn("Rel. volume", format="%.2fx"),
            "open_price": st.column_config.NumberColumn("Open $", format="%.2f"),
            "avg_volume": st.column_config.NumberColumn("Avg volume", format="%.0f"),
            "atr": st.column_config.NumberColumn("ATR", format="%.2f"),
            "day_r": st.column_config.NumberColumn("Day R", format="%+.2f"),
            "day_pnl": st.column_config.NumberColumn("Day $", format="dollar"),
        },
    )
    selected = list(table.loc[table["status"].isin(["traded", "no_signal"]), "symbol"])
    if not selected:
        st.info("No symbol was selected this session: the universe was empty.")
        return
    symbol = st.segmented_control(
        "Replay a selected symbol", selected, default=selected[0], key=f"day_replay_{run_id}_{day}"
    )
    if symbol:
        backtest.show_replay(path, stamp, run, str(symbol), day, key=f"day_replay_{symbol}_{day}")


def show_analysis(run: dict, run_id: str, tz: str) -> None:
    """Average R by relative-volume bucket, best and worst symbols, and the trade statistics."""
    trades = run["trades"]
    if trades.empty:
        st.info("No trades in this run: nothing to analyse.")
        return
    n = st.slider("Relative-volume buckets", 2, 20, 10, key=f"rv_buckets_{run_id}")
    buckets = pcharts.rel_volume_buckets(trades, run["universe"], n)
    st.plotly_chart(pcharts.rel_volume_figure(buckets), **PLOT)
    with st.expander("Relative-volume buckets table"):
        st.dataframe(buckets, hide_index=True, key=f"rv_table_{run_id}")
    best, worst = pcharts.best_and_worst(trades, TOP_SYMBOLS)
    st.plotly_chart(pcharts.symbols_figure(best, worst), **PLOT)
    left, right = st.columns(2)
    left.caption(f"Best {len(best)} symbols by total R")
    left.dataframe(best, hide_index=True, key=f"best_{run_id}")
    right.caption(f"Worst {len(worst)} symbols by total R")
    right.dataframe(worst, hide_index=True, key=f"worst_{run_id}")
    aggregate = run["metrics"]["aggregate"]
    left, right = st.columns(2)
    left.plotly_chart(charts.r_distribution_figure(trades), **PLOT)
    right.plotly_chart(charts.exit_reason_figure(trades, aggregate), **PLOT)
    st.plotly_chart(charts.time_of_day_figure(trades, tz=tz), **PLOT)
    st.plotly_chart(charts.monthly_heatmap_figure(trades), **PLOT)


def show_tabs(run: dict, path: Path, stamp: tuple, run_id: str, tz: str, montecarlo: bool) -> None:
    """Account, Day view, Trades, Analysis, Monte Carlo (when the run has it) and Config."""
    names = ["Account", "Day view", "Trades", "Analysis", *(["Monte Carlo"] if montecarlo else []), "Config"]
    tabs = st.tabs(names)
    with tabs[0]:
        show_account(run, tz)
    with tabs[1]:
        show_day(run, path, stamp, run_id)
    with tabs[2]:
        traded = sorted(run["trades"]["symbol"].astype(str).unique())  # the filter lists those that traded
        backtest.show_trades({**run, "symbols": traded}, path, stamp, run_id, tz)
    with tabs[3]:
        show_analysis(run, run_id, tz)
    if montecarlo:
        with tabs[4]:
            research.show_montecarlo(path, stamp, run_id, results.PORTFOLIO)
    with tabs[-1]:
        backtest.show_config(run)
