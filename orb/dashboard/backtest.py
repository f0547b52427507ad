"""The tabs of a backtest run: overview, trades, session replay, analysis, sessions, compare, config."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts, report
from orb.dashboard import data
from orb.dashboard.common import PLOT, local_trades, metric_columns, show_kpis
from orb.runs import read as results

SYMBOL_TABLE_KEYS = (
    "total_trades", "win_rate", "total_r", "avg_r", "profit_factor", "expectancy_r", "sharpe", "sortino",
    "max_drawdown_r", "max_drawdown_pct", "net_pnl", "final_equity", "long_trades", "short_trades",
    "sessions", "sessions_traded", "sessions_skipped",
)  # fmt: skip


def show_overview(run: dict, tz: str) -> None:
    aggregate = run["metrics"]["aggregate"]
    show_kpis(aggregate)
    st.subheader("Per-symbol metrics")
    per_symbol = charts.metrics_frame(run["metrics"]["per_symbol"])
    columns = [k for k in SYMBOL_TABLE_KEYS if k in per_symbol.columns]
    st.dataframe(per_symbol[columns], key="symbol_metrics", column_config=metric_columns(columns))
    st.subheader("Equity and drawdown")
    unit = st.segmented_control("Units", ["R", "$"], default="R", key="equity_unit") or "R"
    curves = {"Combined": run["combined"], **run["equity"]}
    st.plotly_chart(charts.equity_figure(curves, unit="r" if unit == "R" else "usd", tz=tz), **PLOT)
    if run["trades"].empty:
        st.info("This run has no trades: every session was skipped or no signal passed the filters.")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.r_distribution_figure(run["trades"]), **PLOT)
    right.plotly_chart(charts.exit_reason_figure(run["trades"], aggregate), **PLOT)


def filter_trades(trades: pd.DataFrame, symbols: list[str], run_id: str) -> pd.DataFrame:
    """The trade filters (symbol, side, exit reason, date range, R range) and the filtered trades."""
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect("Symbol", symbols, default=symbols, key=f"f_symbol_{run_id}")
    sides = c2.multiselect("Side", ["long", "short"], default=["long", "short"], key=f"f_side_{run_id}")
    reasons_all = sorted(trades["exit_reason"].unique())
    reasons = c3.multiselect("Exit reason", reasons_all, default=reasons_all, key=f"f_reason_{run_id}")
    days = pd.to_datetime(trades["session_date"]).dt.date
    c4, c5 = st.columns(2)
    picked = c4.date_input(
        "Session dates",
        value=(days.min(), days.max()),
        min_value=days.min(),
        max_value=days.max(),
        format="YYYY-MM-DD",
        key=f"f_dates_{run_id}",
    )
    first, last = (
        (picked[0], picked[-1]) if isinstance(picked, tuple | list) and picked else (days.min(), days.max())
    )
    lo, hi = math.floor(trades["r_multiple"].min()), math.ceil(trades["r_multiple"].max())
    hi = hi if hi > lo else lo + 1
    r_lo, r_hi = c5.slider("Net R", float(lo), float(hi), (float(lo), float(hi)), 0.05, key=f"f_r_{run_id}")
    keep = (
        trades["symbol"].isin(chosen)
        & trades["side"].isin(sides)
        & trades["exit_reason"].isin(reasons)
        & (days >= first)
        & (days <= last)
        & trades["r_multiple"].between(r_lo, r_hi)
    )
    return trades[keep]


def trade_columns() -> dict:
    """Column labels and formats of the trades table."""
    labels = dict(report.TRADE_LIST_COLUMNS)
    config = {
        c: st.column_config.NumberColumn(labels[c], format="%.2f")
        for c in ("entry_price", "stop_price", "exit_price")
    }
    config |= {c: st.column_config.TextColumn(labels[c]) for c in ("trade_id", "side", "exit_reason")}
    return config | {
        "symbol": st.column_config.TextColumn("Symbol"),
        "session_date": st.column_config.DateColumn("Session"),
        "entry_time": st.column_config.DatetimeColumn("Entry", format="HH:mm"),
        "exit_time": st.column_config.DatetimeColumn("Exit", format="HH:mm"),
        "shares": st.column_config.NumberColumn("Shares", format="%d"),
        "score": st.column_config.NumberColumn("Score", format="%g"),
        "r_multiple": st.column_config.NumberColumn("R", format="%+.2f"),
        "net_pnl": st.column_config.NumberColumn("Net $", format="dollar"),
        "mfe_r": st.column_config.NumberColumn("MFE R", format="%+.2f"),
        "mae_r": st.column_config.NumberColumn("MAE R", format="%+.2f"),
    }


def show_trades(run: dict, path: Path, stamp: tuple, run_id: str, tz: str) -> None:
    trades = run["trades"]
    if trades.empty:
        st.info("No trades in this run.")
        return
    shown = filter_trades(trades, run["symbols"], run_id).reset_index(drop=True)
    st.caption(f"{len(shown)} of {len(trades)} trades · times in {tz} · select a row to replay its session")
    table = local_trades(shown, tz)
    columns = [c for c, _ in report.TRADE_LIST_COLUMNS if c in table.columns]
    columns.insert(1, "symbol")
    event = st.dataframe(
        table[columns],
        key=f"trades_table_{run_id}",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_config=trade_columns(),
    )
    st.download_button(
        "Download filtered trades (CSV)",
        shown.to_csv(index=False).encode("utf-8"),
        file_name=f"{run_id}_trades.csv",
        mime="text/csv",
        key=f"download_{run_id}",
    )
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(shown):  # a selection made before the filters changed may point past the end
        trade = shown.iloc[rows[0]]
        st.subheader(f"Replay of trade {trade['trade_id']}")
        show_replay(path, stamp, run, str(trade["symbol"]), trade["session_date"])


def show_replay(path: Path, stamp: tuple, run: dict, symbol: str, session_date) -> None:
    detail = data.load_symbol_detail(str(path), stamp, symbol)
    trades = run["trades"][run["trades"]["symbol"] == symbol]
    sessions = run["sessions"][run["sessions"]["symbol"] == symbol]
    fig = report.session_replay(
        path, symbol, session_date, trades=trades, fills=detail["fills"], sessions=sessions
    )
    st.plotly_chart(fig, **PLOT)
    day = pd.Timestamp(session_date).date()
    events = detail["events"]
    events = events[pd.to_datetime(events["session_date"]).dt.date == day]
    if len(events):
        with st.expander(f"Blocked signals that session ({len(events)})"):
            st.dataframe(
                events.assign(time=charts.to_local(events["time"], report.timezone_of(run["config"])))
            )


def show_replay_tab(run: dict, path: Path, stamp: tuple, run_id: str) -> None:
    c1, c2 = st.columns([1, 3])
    symbol = c1.selectbox("Symbol", run["symbols"], key=f"replay_symbol_{run_id}")
    sessions = run["sessions"][run["sessions"]["symbol"] == symbol]
    if sessions.empty:
        st.info(f"{symbol} has no sessions in this run.")
        return
    days = list(pd.to_datetime(sessions["session_date"]).dt.date)
    labels = {}
    for day, row in zip(days, sessions.itertuples(index=False), strict=True):
        if row.status == "traded":
            labels[day] = f"{day} · {row.trades} trade(s) · {row.day_r:+.2f}R"
        elif row.status == "skipped":
            labels[day] = f"{day} · skipped ({row.skip_reason})"
        else:
            labels[day] = f"{day} · no signal"
    traded = [day for day, status in zip(days, sessions["status"], strict=True) if status == "traded"]
    default = days.index(traded[0]) if traded else 0
    day = c2.selectbox(
        "Session", days, index=default, format_func=labels.get, key=f"replay_session_{run_id}_{symbol}"
    )
    show_replay(path, stamp, run, symbol, day)


def show_analysis(run: dict, run_id: str, tz: str) -> None:
    trades = run["trades"]
    if trades.empty:
        st.info("No trades in this run: nothing to analyse.")
        return
    scope = st.selectbox("Trades of", ["All symbols", *run["symbols"]], key=f"analysis_scope_{run_id}")
    metrics = run["metrics"]["aggregate"]
    if scope != "All symbols":
        trades = trades[trades["symbol"] == scope]
        metrics = run["metrics"]["per_symbol"][scope]
    if trades.empty:
        st.info(f"{scope} has no trades in this run.")
        return
    st.plotly_chart(charts.time_of_day_figure(trades, tz=tz), **PLOT)
    st.plotly_chart(charts.monthly_heatmap_figure(trades), **PLOT)
    st.plotly_chart(charts.long_short_figure(trades, metrics), **PLOT)
    st.plotly_chart(charts.factor_attribution_figure(trades), **PLOT)
    with st.expander("Factor attribution table"):
        st.dataframe(charts.factor_attribution(trades), hide_index=True)
        st.dataframe(charts.score_attribution(trades), hide_index=True)


def show_sessions(run: dict) -> None:
    """Session counts per symbol (metrics.json) and the skipped sessions with their reasons."""
    keys = ("sessions", "sessions_traded", "sessions_skipped")
    counts = charts.metrics_frame(run["metrics"]["per_symbol"])[list(keys)]
    st.dataframe(counts, key="session_counts", column_config=metric_columns(keys))
    sessions = run["sessions"]
    skipped = sessions[sessions["status"] == "skipped"]
    if skipped.empty:
        st.success("No session was skipped.")
        return
    st.subheader(f"Sessions skipped ({len(skipped)})")
    reasons = skipped.groupby(["symbol", "skip_reason"]).size().rename("sessions").reset_index()
    st.dataframe(reasons, hide_index=True, key="skip_reasons")
    view = skipped[["symbol", "session_date", "skip_reason", "or_width_atr"]]
    st.dataframe(view.assign(session_date=pd.to_datetime(view["session_date"]).dt.date), hide_index=True)


def show_blocked(run: dict, path: Path, stamp: tuple) -> None:
    """Counts of blocked signals (governance and filter events) per symbol and reason."""
    events = pd.concat([data.load_symbol_detail(str(path), stamp, sym)["events"] for sym in run["symbols"]])
    st.subheader(f"Blocked signals ({len(events)})")
    if events.empty:
        st.caption("No signal was blocked by a filter or a governance rule.")
        return
    counts = events.groupby(["symbol", "reason"]).size().unstack(fill_value=0)
    st.dataframe(counts, key="blocked_counts")


def difference(key: str, delta: float) -> str:
    """A signed metric difference ('+4.8%', '-354', '+$1,234.00')."""
    text = charts.format_metric(key, delta)
    return f"+{text}" if delta > 0 and not text.startswith("+") else text


def show_compare(runs_dir: Path, summaries: list, run_id: str, run: dict, tz: str) -> None:
    others = [
        s.run_id
        for s in summaries
        if s.status == "complete" and s.mode == results.BACKTEST and s.run_id != run_id
    ]
    if not others:
        st.info("Only one complete backtest in the runs folder: nothing to compare with yet.")
        return
    other_id = st.selectbox(
        "Compare with", others, index=None, placeholder="Choose a run to compare with", key="compare_run"
    )
    if other_id is None:
        return
    try:
        other_path = results.run_dir(runs_dir, other_id)
        other = data.load_run(str(other_path), data.stamp(other_path))
    except results.ResultsError as exc:
        st.error(str(exc))
        return
    a, b = run["metrics"]["aggregate"], other["metrics"]["aggregate"]
    rows = []
    for key, label in charts.METRIC_LABELS.items():
        if key not in a and key not in b:
            continue
        va, vb = a.get(key), b.get(key)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (va, vb))
        rows.append(
            {
                "metric": label,
                run_id: charts.format_metric(key, va),
                other_id: charts.format_metric(key, vb),
                "difference (B - A)": difference(key, vb - va) if numeric else "—",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="compare_table")
    unit = st.segmented_control("Units", ["R", "$"], default="R", key="compare_unit") or "R"
    curves = {f"A {run_id}": run["combined"], f"B {other_id}": other["combined"]}
    fig = charts.equity_figure(
        curves, unit="r" if unit == "R" else "usd", tz=tz, title="Combined equity, A vs B"
    )
    st.plotly_chart(fig, **PLOT)


def show_config(run: dict) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Configuration")
        st.json(run["config"], expanded=1)
    with right:
        st.subheader("Manifest")
        st.json(run["manifest"], expanded=1)
