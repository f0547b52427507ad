"""ORB backtest dashboard: `streamlit run streamlit_app.py [-- --runs-dir DIR]`.

Read-only over the runs folder (`--runs-dir`, else env ORB_RUNS_DIR, else ./runs), through `orb.results`;
the charts come from `orb.charts`, the same ones the HTML report uses. Cached reads are keyed by the
run folder's and the runs folder's modification stamps, so a new run appears on the next refresh.
Each run shows the tabs of its mode: a backtest its trades and analysis, a sweep its ranked results
and heatmap, a walk-forward its folds and stitched out-of-sample equity; Monte Carlo output of a
backtest or walk-forward gets its own tab.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts, report
from orb.runs import read as results

KPI_KEYS = (
    ("total_trades", "Trades"),
    ("win_rate", "Win rate"),
    ("total_r", "Total R"),
    ("avg_r_per_trade", "Avg R per trade"),
    ("profit_factor", "Profit factor"),
    ("sharpe", "Sharpe"),
    ("max_drawdown_r", "Max drawdown R"),
    ("max_drawdown_pct", "Max drawdown %"),
    ("net_pnl", "Net P&L"),
    ("final_equity", "Final equity"),
)
SYMBOL_TABLE_KEYS = (
    "total_trades", "win_rate", "total_r", "avg_r", "profit_factor", "expectancy_r", "sharpe", "sortino",
    "max_drawdown_r", "max_drawdown_pct", "net_pnl", "final_equity", "long_trades", "short_trades",
    "sessions", "sessions_traded", "sessions_skipped",
)  # fmt: skip
SWEEP_TABLE_KEYS = (
    "total_r", "total_trades", "win_rate", "avg_r", "profit_factor", "expectancy_r", "sharpe",
    "max_drawdown_r", "max_drawdown_pct", "net_pnl",
)  # fmt: skip
FOLD_METRICS = ("total_r", "total_trades", "win_rate", "profit_factor", "max_drawdown_r", "sharpe")
PLOT = {"width": "stretch", "theme": None, "config": {"displaylogo": False}}
NONE = "(none)"
MODE_NAMES = {results.SWEEP: "sweep", results.WALK_FORWARD: "walk-forward"}
AGGREGATE_LABEL = "All symbols (aggregate)"


def runs_dir_from_args(argv: list[str]) -> Path:
    """The runs folder: `--runs-dir` (after `--` on the streamlit command line), ORB_RUNS_DIR, else runs/."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-dir", default=None)
    known, _ = parser.parse_known_args(argv)
    return results.resolve_runs_dir(known.runs_dir)


def _stamp(path: Path) -> tuple:
    """A cheap fingerprint of a folder's entries (names and modification times)."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        return tuple((e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in entries)
    except OSError:
        return ()


@st.cache_data(show_spinner=False)
def list_runs(runs_dir: str, stamp: tuple) -> tuple[list[results.RunSummary], str | None]:
    """Run summaries (newest first) and the default run id; `stamp` keys the cache."""
    return results.list_runs(runs_dir), results.latest_run_id(runs_dir)


@st.cache_data(show_spinner=False)
def load_run(path: str, stamp: tuple) -> dict:
    """Everything the overview needs from one run folder (raises results.ResultsError when damaged)."""
    results.check_run(path)
    syms = results.symbols(path)
    return {
        "manifest": results.load_manifest(path),
        "metrics": results.load_metrics(path),
        "config": results.load_config(path),
        "symbols": syms,
        "trades": results.load_trades(path),
        "sessions": results.load_sessions(path),
        "combined": results.load_equity(path),
        "equity": {sym: results.load_equity(path, sym) for sym in syms},
    }


@st.cache_data(show_spinner=False)
def load_research_run(path: str, stamp: tuple) -> dict:
    """Manifest, configuration and symbols of a sweep or walk-forward run (raises when damaged)."""
    results.check_run(path)
    return {
        "manifest": results.load_manifest(path),
        "config": results.load_config(path),
        "symbols": results.symbols(path),
    }


@st.cache_data(show_spinner=False)
def load_sweep(path: str, stamp: tuple) -> results.SweepResults:
    return results.load_sweep(path)


@st.cache_data(show_spinner=False)
def load_walkforward(path: str, stamp: tuple) -> results.WalkForwardResults:
    return results.load_walkforward(path)


@st.cache_data(show_spinner=False)
def load_montecarlo(path: str, stamp: tuple) -> results.MonteCarloResults:
    return results.load_montecarlo(path)


@st.cache_data(show_spinner=False)
def load_symbol_detail(path: str, stamp: tuple, symbol: str) -> dict:
    """Fills and events of one symbol."""
    return {"fills": results.load_fills(path, symbol), "events": results.load_events(path, symbol)}


def run_label(summary: results.RunSummary) -> str:
    """One line of the run picker: id, mode (research runs), symbols, dates, trades and total R (the
    out-of-sample ones of a walk-forward; none for a sweep), or why it is damaged."""
    if summary.status != "complete":
        return f"⚠ {summary.run_id} · damaged"
    mode = MODE_NAMES.get(summary.mode)
    head = f"{summary.run_id} · " + (f"{mode} · " if mode else "")
    head += f"{', '.join(summary.symbols)} · {summary.start} → {summary.end}"
    if summary.mode == results.SWEEP:
        return head
    trades = "?" if summary.trades is None else summary.trades
    total_r = "—" if summary.total_r is None else f"{summary.total_r:+.1f}R"
    oos = "OOS " if summary.mode == results.WALK_FORWARD else ""
    return f"{head} · {trades} {oos}trades · {total_r}"


def local_trades(trades: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Trades for display: entry/exit in exchange-local time, session_date as a date."""
    return trades.assign(
        session_date=pd.to_datetime(trades["session_date"]).dt.date,
        entry_time=charts.to_local(trades["entry_time"], tz),
        exit_time=charts.to_local(trades["exit_time"], tz),
    )


# ------------------------------------------------------------------------------------------ sections


def kpi_value(key: str, value) -> str:
    """A KPI card value: whole dollars for money (cents do not fit a card), else charts.format_metric."""
    if key in ("net_pnl", "final_equity") and isinstance(value, int | float):
        return f"${value:,.0f}"
    return charts.format_metric(key, value)


def show_kpis(aggregate: dict) -> None:
    for row in (KPI_KEYS[:5], KPI_KEYS[5:]):
        for col, (key, label) in zip(st.columns(len(row)), row, strict=True):
            col.metric(label, kpi_value(key, aggregate.get(key)), border=True)


def show_overview(run: dict, tz: str) -> None:
    aggregate = run["metrics"]["aggregate"]
    show_kpis(aggregate)
    st.subheader("Per-symbol metrics")
    per_symbol = charts.metrics_frame(run["metrics"]["per_symbol"])
    columns = [k for k in SYMBOL_TABLE_KEYS if k in per_symbol.columns]
    st.dataframe(
        per_symbol[columns],
        key="symbol_metrics",
        column_config={
            k: st.column_config.NumberColumn(charts.METRIC_LABELS.get(k, k), format=_number_format(k))
            for k in columns
        },
    )
    st.subheader("Equity and drawdown")
    unit = st.segmented_control("Units", ["R", "$"], default="R", key="equity_unit") or "R"
    curves = {"Combined": run["combined"], **run["equity"]}
    st.plotly_chart(charts.equity_figure(curves, unit="r" if unit == "R" else "usd", tz=tz), **PLOT)
    if run["trades"].empty:
        st.info("This run has no trades: every session was skipped or no signal passed the filters.")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.r_distribution_figure(run["trades"]), **PLOT)
    right.plotly_chart(charts.exit_reason_figure(run["trades"]), **PLOT)


def _number_format(key: str) -> str:
    if key.endswith("win_rate"):
        return "percent"
    if key in ("net_pnl", "final_equity"):
        return "dollar"
    if key in charts.COUNT_KEYS:
        return "%d"
    return "%.2f"


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
    detail = load_symbol_detail(str(path), stamp, symbol)
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
    trades = run["trades"][run["trades"]["symbol"] == symbol]
    if sessions.empty:
        st.info(f"{symbol} has no sessions in this run.")
        return
    day_r = trades.groupby(pd.to_datetime(trades["session_date"]).dt.date)["r_multiple"].sum()
    days = list(pd.to_datetime(sessions["session_date"]).dt.date)
    labels = {}
    for day, row in zip(days, sessions.itertuples(index=False), strict=True):
        if row.status == "traded":
            labels[day] = f"{day} · {row.trades} trade(s) · {day_r.get(day, 0.0):+.2f}R"
        elif row.status == "skipped":
            labels[day] = f"{day} · skipped ({row.skip_reason})"
        else:
            labels[day] = f"{day} · no signal"
    traded = [d for d in days if d in day_r.index]
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
    if scope != "All symbols":
        trades = trades[trades["symbol"] == scope]
    if trades.empty:
        st.info(f"{scope} has no trades in this run.")
        return
    st.plotly_chart(charts.time_of_day_figure(trades, tz=tz), **PLOT)
    st.plotly_chart(charts.monthly_heatmap_figure(trades), **PLOT)
    st.plotly_chart(charts.long_short_figure(trades), **PLOT)
    st.plotly_chart(charts.factor_attribution_figure(trades), **PLOT)
    with st.expander("Factor attribution table"):
        st.dataframe(charts.factor_attribution(trades), hide_index=True)
        st.dataframe(charts.score_attribution(trades), hide_index=True)


def show_sessions(run: dict) -> None:
    sessions = run["sessions"]
    skipped = sessions[sessions["status"] == "skipped"]
    counts = sessions.groupby(["symbol", "status"]).size().unstack(fill_value=0)
    st.dataframe(counts, key="session_counts")
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
    events = pd.concat([load_symbol_detail(str(path), stamp, sym)["events"] for sym in run["symbols"]])
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
    other_id = st.selectbox("Compare with", others, key="compare_run")
    other_path = results.run_dir(runs_dir, other_id)
    try:
        other = load_run(str(other_path), _stamp(other_path))
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


# ------------------------------------------------------------------------------------------ research


def _label(key: str) -> str:
    return charts.METRIC_LABELS.get(key, key)


def _params_text(params: dict) -> str:
    return ", ".join(f"{key} = {value}" for key, value in params.items())


def metric_columns(keys) -> dict:
    """Column labels and formats of metric columns (raw values kept, so sorting stays numeric)."""
    return {k: st.column_config.NumberColumn(_label(k), format=_number_format(k)) for k in keys}


def show_cards(cards: list | tuple, per_row: int = 5) -> None:
    """KPI cards (label, value, help or None), at most `per_row` to a row."""
    for start in range(0, len(cards), per_row):
        row = cards[start : start + per_row]
        for col, (label, value, help_text) in zip(st.columns(per_row), row, strict=False):
            col.metric(label, value, help=help_text, border=True)


def show_sweep(path: Path, stamp: tuple, run_id: str) -> None:
    """A sweep run: its heatmap over two chosen parameters and the sortable results table."""
    sweep = load_sweep(str(path), stamp)
    info, table, keys = sweep.info, sweep.table, list(sweep.keys)
    invalid = info.get("invalid") or []
    st.caption(
        f"{info.get('combinations')} combinations, {info.get('evaluated')} evaluated, "
        f"{len(invalid)} invalid · ranked by {sweep.rank_by} on the aggregate over all symbols · "
        f"sweep file `{info.get('sweep_file')}`"
    )
    ranked = table[table["symbol"] == results.AGGREGATE].sort_values("rank", kind="stable")[sweep.rank_by]
    label = _label(sweep.rank_by)
    show_cards(
        (
            ("Combinations", f"{info.get('combinations')}", "In the sweep file, invalid ones included"),
            ("Evaluated", f"{info.get('evaluated')}", None),
            ("Invalid", f"{len(invalid)}", "Refused by the configuration validation and skipped"),
            (
                f"Best {label}",
                charts.format_metric(sweep.rank_by, ranked.iloc[0] if len(ranked) else None),
                None,
            ),
            (
                f"Worst {label}",
                charts.format_metric(sweep.rank_by, ranked.iloc[-1] if len(ranked) else None),
                None,
            ),
        )
    )
    best = info.get("best")
    if isinstance(best, dict):
        st.markdown(
            f"**Rank 1:** combination {best.get('combination')}: {_params_text(best.get('params', {}))}"
        )
    symbols = [sym for sym in pd.unique(table["symbol"]) if sym != results.AGGREGATE]
    metrics = [k for k in results.SCALAR_METRIC_KEYS if k in table.columns]
    c1, c2, c3, c4, c5 = st.columns(5)
    scope = c1.selectbox(
        "Rows",
        [results.AGGREGATE, *symbols],
        format_func=lambda sym: AGGREGATE_LABEL if sym == results.AGGREGATE else sym,
        key=f"sweep_scope_{run_id}",
    )
    default = metrics.index(sweep.rank_by) if sweep.rank_by in metrics else 0
    metric = c2.selectbox("Metric", metrics, index=default, format_func=_label, key=f"sweep_metric_{run_id}")
    x = c3.selectbox("X parameter", keys, key=f"sweep_x_{run_id}")
    y_options = [k for k in keys if k != x] or [NONE]
    y = c4.selectbox("Y parameter", y_options, key=f"sweep_y_{run_id}")
    agg = "mean"
    if len(keys) > 2:
        agg = c5.selectbox(
            "Cell value",
            list(charts.HEATMAP_AGGREGATIONS),
            help="Combinations sharing an X and Y value differ in other parameters: their mean, max or min.",
            key=f"sweep_agg_{run_id}",
        )
    rows = table[table["symbol"] == scope]
    fig = charts.sweep_heatmap_figure(rows, x, None if y == NONE else y, metric, agg=agg)
    st.plotly_chart(fig, **PLOT)

    st.subheader("Results")
    sortable = [k for k in ("rank", "combination", *metrics) if k in table.columns]
    c1, c2 = st.columns([3, 1])
    sort_by = c1.selectbox("Sort by", sortable, format_func=_label, key=f"sweep_sort_{run_id}")
    reverse = c2.toggle("Reverse order", key=f"sweep_reverse_{run_id}")
    ascending = (sort_by in ("rank", "combination")) != reverse
    shown = rows.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable")
    wanted = dict.fromkeys([sweep.rank_by, metric, sort_by, *SWEEP_TABLE_KEYS])
    columns = ["rank", "combination", "symbol", *keys, *(k for k in wanted if k in metrics)]
    st.caption(
        f"{len(shown)} rows · {'best' if sort_by == 'rank' else 'highest'} first unless reversed · "
        "click a column header to sort by it"
    )
    st.dataframe(
        shown[columns],
        key=f"sweep_table_{run_id}",
        hide_index=True,
        column_config=metric_columns(metrics),
    )
    st.download_button(
        "Download all sweep results (CSV)",
        table.to_csv(index=False).encode("utf-8"),
        file_name=f"{run_id}_sweep_results.csv",
        mime="text/csv",
        key=f"sweep_download_{run_id}",
    )
    if invalid:
        with st.expander(f"Invalid combinations ({len(invalid)}), skipped"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "combination": item.get("combination"),
                            "parameters": _params_text(item.get("params", {})),
                            "error": item.get("error"),
                        }
                        for item in invalid
                    ]
                ),
                hide_index=True,
            )


def folds_table(folds: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The folds for display: windows, the chosen combination and in-sample vs out-of-sample metrics."""
    window = ["fold", "train_start", "train_end", "train_sessions", "test_start", "test_end", "test_sessions"]
    pairs = [c for key in FOLD_METRICS for c in (f"is_{key}", f"oos_{key}") if c in folds.columns]
    shown = folds[[*window, "combination", *keys, *pairs]]
    return shown.assign(
        **{c: pd.to_datetime(shown[c]).dt.date for c in window if c.endswith(("start", "end"))}
    )


def show_walkforward(path: Path, stamp: tuple, run_id: str, tz: str) -> None:
    """A walk-forward run: robustness KPIs, folds (IS vs OOS), parameter stability, stitched OOS equity."""
    wf = load_walkforward(str(path), stamp)
    info, rob, keys = wf.info, wf.robustness, list(wf.keys)
    windows = "anchored" if info.get("anchored") else "rolling"
    st.caption(
        f"{rob.get('folds')} folds · train {info.get('train_sessions')} sessions ({windows}), test "
        f"{info.get('test_sessions')} sessions · each fold trades the combination with the best "
        f"{info.get('rank_by')} on its train window ({info.get('evaluated')} combinations)"
    )
    folds = len(wf.folds)
    profitable = rob.get("profitable_fold_share")
    cards = (
        ("Walk-forward efficiency", charts.format_metric("efficiency", rob.get("efficiency")),
         "Out-of-sample R per session / in-sample R per session (— when in-sample R per session <= 0)"),
        (f"Profitable OOS folds ({'?' if profitable is None else round(profitable * folds)}/{folds})",
         "—" if profitable is None else f"{profitable:.0%}",
         "Share of folds whose test window made more than 0 R"),
        ("OOS total R", charts.format_metric("total_r", rob.get("oos_total_r")), None),
        ("IS total R", charts.format_metric("total_r", rob.get("is_total_r")), None),
        ("OOS R per session", charts.format_metric("oos_r", rob.get("oos_r_per_session")), None),
        ("IS R per session", charts.format_metric("is_r", rob.get("is_r_per_session")), None),
        ("Combination changes", f"{rob.get('combination_changes')}",
         "Folds whose chosen combination differs from the previous fold's"),
    )  # fmt: skip
    show_cards(cards, per_row=4)
    st.subheader("Folds: in-sample (train) vs out-of-sample (test)")
    table = folds_table(wf.folds, keys)
    st.dataframe(
        table,
        key=f"wf_folds_{run_id}",
        hide_index=True,
        column_config=metric_columns([c for c in table.columns if c.startswith(("is_", "oos_"))])
        | {c: st.column_config.DateColumn(c) for c in table.columns if c.endswith(("_start", "_end"))},
    )
    st.plotly_chart(charts.walkforward_folds_figure(wf.folds), **PLOT)
    st.subheader("Parameter stability")
    st.dataframe(
        charts.parameter_stability_frame(rob),
        key=f"wf_stability_{run_id}",
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn("share", format="percent")},
    )
    st.subheader("Stitched out-of-sample result")
    show_kpis(wf.metrics["aggregate"])
    unit = st.segmented_control("Units", ["R", "$"], default="R", key=f"wf_unit_{run_id}") or "R"
    st.plotly_chart(
        charts.walkforward_equity_figure(wf.equity, unit="r" if unit == "R" else "usd", tz=tz), **PLOT
    )
    with st.expander(f"Out-of-sample trades ({len(wf.trades)})"):
        if wf.trades.empty:
            st.caption("No out-of-sample trades.")
        else:
            st.dataframe(local_trades(wf.trades, tz), hide_index=True, key=f"wf_trades_{run_id}")


def show_montecarlo(path: Path, stamp: tuple, run_id: str, mode: str) -> None:
    """Monte Carlo output: percentile bands of cum R, the max drawdown histogram, exceedance probabilities."""
    mc = load_montecarlo(str(path), stamp)
    summary = mc.summary
    unit = "session" if summary.get("resample") == "sessions" else "trade"
    source = "stitched out-of-sample trades" if mode == results.WALK_FORWARD else "trades"
    st.caption(
        f"{summary.get('n_paths'):,} bootstrap paths of the run's {summary.get('n_trades')} {source}, "
        f"resampled by {unit} (seed {summary.get('seed')}); each path draws {summary.get('n_units')} "
        f"{unit}s with replacement"
    )
    pct, observed = summary.get("percentiles", {}), summary.get("observed", {})
    cards = [
        ("Median total R", charts.format_metric("total_r", pct.get("total_r", {}).get("p50")), None),
        ("5th pct total R", charts.format_metric("total_r", pct.get("total_r", {}).get("p5")), None),
        ("This run's max DD", charts.format_metric("max_drawdown_r", observed.get("max_drawdown_r")), None),
        (
            "Median max DD",
            charts.format_metric("max_drawdown_r", pct.get("max_drawdown_r", {}).get("p50")),
            None,
        ),
        (
            "5th pct max DD",
            charts.format_metric("max_drawdown_r", pct.get("max_drawdown_r", {}).get("p5")),
            "Only 5% of paths have a deeper max drawdown",
        ),
    ]
    exceed = {float(t): share for t, share in (summary.get("prob_max_drawdown_exceeds") or {}).items()}
    cards += [
        (f"P(DD > {t:g}R)", f"{share:.1%}", f"Share of paths whose max drawdown is deeper than {t:g}R")
        for t, share in exceed.items()
    ]
    show_cards(cards)
    st.plotly_chart(charts.montecarlo_bands_figure(mc.bands, unit=unit), **PLOT)
    st.plotly_chart(
        charts.montecarlo_drawdown_figure(
            mc.paths["max_drawdown_r"], observed=observed.get("max_drawdown_r"), exceed=exceed
        ),
        **PLOT,
    )
    st.dataframe(
        charts.montecarlo_table(summary),
        key=f"mc_table_{run_id}",
        column_config={
            k: st.column_config.NumberColumn(k, format="%.2f")
            for k in ("p5", "p25", "p50", "p75", "p95", "mean", "this run")
        },
    )


# ------------------------------------------------------------------------------------------------ app


def main() -> None:
    st.set_page_config(page_title="ORB backtests", page_icon="📈", layout="wide")
    runs_dir = runs_dir_from_args(sys.argv[1:])
    summaries, latest = list_runs(str(runs_dir), _stamp(runs_dir))
    with st.sidebar:
        st.title("ORB backtests")
        st.caption(f"Runs folder: `{runs_dir}`")
        if st.button("Refresh", icon=":material/refresh:", help="Look for new runs"):
            st.rerun()
    if not summaries:
        st.warning(
            f"No runs in {runs_dir}. Create one with "
            "`python run_backtest.py --symbols SPY QQQ --synthetic`, or point the dashboard at another "
            "folder: `streamlit run streamlit_app.py -- --runs-dir DIR` (or set ORB_RUNS_DIR)."
        )
        return
    by_id = {s.run_id: s for s in summaries}
    ids = list(by_id)
    with st.sidebar:
        run_id = st.selectbox(
            "Run",
            ids,
            index=ids.index(latest) if latest in by_id else 0,
            format_func=lambda rid: run_label(by_id[rid]),
            key="run_picker",
        )
        st.caption(f"{len(ids)} run(s), newest first")
        st.caption(run_label(by_id[run_id]))
    summary = by_id[run_id]
    if summary.status != "complete":
        st.error(f"Run {run_id} is damaged and cannot be shown: {summary.detail}")
        return
    mode = summary.mode
    try:
        path = results.run_dir(runs_dir, run_id)
        stamp = _stamp(path)
        run = load_run(str(path), stamp) if mode == results.BACKTEST else load_research_run(str(path), stamp)
        montecarlo = results.has_montecarlo(path)
    except results.ResultsError as exc:
        st.error(f"Run {run_id} cannot be read: {exc}")
        return
    tz = report.timezone_of(run["config"])
    manifest = run["manifest"]
    st.header(f"Run {run_id}")
    st.caption(
        (f"{MODE_NAMES[mode]} · " if mode in MODE_NAMES else "")
        + f"{', '.join(run['symbols'])} · sessions {manifest.get('start')} to {manifest.get('end')} · "
        f"interval {run['config'].get('data', {}).get('interval')} · created {manifest.get('created')} · "
        f"times in {tz}"
    )
    try:
        show_mode_tabs(runs_dir, summaries, run_id, mode, run, path, stamp, tz, montecarlo)
    except results.ResultsError as exc:
        st.error(f"Run {run_id} cannot be read: {exc}")


def show_mode_tabs(
    runs_dir: Path,
    summaries: list,
    run_id: str,
    mode: str,
    run: dict,
    path: Path,
    stamp: tuple,
    tz: str,
    montecarlo: bool,
) -> None:
    """The tabs that apply to the run's mode (Monte Carlo only when the run has that output)."""
    if mode == results.SWEEP:
        sweep_tab, config_tab = st.tabs(["Sweep", "Config"])
        with sweep_tab:
            show_sweep(path, stamp, run_id)
    elif mode == results.WALK_FORWARD:
        names = ["Walk-forward", *(["Monte Carlo"] if montecarlo else []), "Config"]
        tabs = st.tabs(names)
        with tabs[0]:
            show_walkforward(path, stamp, run_id, tz)
        if montecarlo:
            with tabs[1]:
                show_montecarlo(path, stamp, run_id, mode)
        config_tab = tabs[-1]
    else:
        names = ["Overview", "Trades", "Session replay", "Analysis", "Sessions"]
        names += ["Monte Carlo"] if montecarlo else []
        tabs = st.tabs([*names, "Compare", "Config"])
        with tabs[0]:
            show_overview(run, tz)
        with tabs[1]:
            show_trades(run, path, stamp, run_id, tz)
        with tabs[2]:
            show_replay_tab(run, path, stamp, run_id)
        with tabs[3]:
            show_analysis(run, run_id, tz)
        with tabs[4]:
            show_sessions(run)
            show_blocked(run, path, stamp)
        if montecarlo:
            with tabs[5]:
                show_montecarlo(path, stamp, run_id, mode)
        with tabs[-2]:
            show_compare(runs_dir, summaries, run_id, run, tz)
        config_tab = tabs[-1]
    with config_tab:
        show_config(run)


main()
