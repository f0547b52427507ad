"""The tabs of a backtest run: overview, trades, session replay, analysis, sessions, compare, config."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts, report
from orb.dashboard import data
from orb.dashboard.common import PLOT, local_trades, metric_columns, show_cards, show_kpis
from orb.metric_registry import money, plural
from orb.runs import read as results

SYMBOL_TABLE_KEYS = (
    "total_trades", "win_rate", "total_r", "avg_r", "profit_factor", "expectancy_r", "sharpe", "sortino",
    "max_drawdown_r", "max_drawdown_pct", "net_pnl", "final_equity", "long_trades", "short_trades",
    "sessions", "sessions_traded", "sessions_skipped",
)  # fmt: skip


DEFAULT_BENCHMARK = "SPY"


@st.cache_data(show_spinner=False, max_entries=data.CACHE_ENTRIES)
def load_session_closes(path: str, stamp: tuple, symbol: str, tz: str) -> pd.DataFrame:
    """First open and last close of every session of a symbol's bars snapshot (SYM_bars.parquet)."""
    return charts.session_closes(results.load_bars(path, symbol), tz)


def all_fills(run: dict, path: Path, stamp: tuple) -> pd.DataFrame:
    frames = [data.load_symbol_detail(str(path), stamp, sym)["fills"] for sym in run["symbols"]]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["kind", "shares"])


def start_equity(run: dict) -> float:
    """The combined equity's start: the initial capital of every symbol (strategy.md 7)."""
    return float(run["config"].get("risk", {}).get("initial_capital", 0.0)) * len(run["symbols"])


def benchmark_symbol(run: dict) -> str:
    """The run's benchmark: config `portfolio.benchmark` when set, else SPY."""
    return str((run["config"].get("portfolio") or {}).get("benchmark") or DEFAULT_BENCHMARK)


def show_costs(run: dict, path: Path, stamp: tuple) -> None:
    """Cards of the run's total trading costs in $ (commission and slippage)."""
    slippage = float(run["config"].get("costs", {}).get("slippage_per_share", 0.0))
    costs = charts.trading_costs(run["trades"], all_fills(run, path, stamp), slippage)
    net = run["metrics"]["aggregate"].get("net_pnl")
    share = (
        f" ({costs.total / (net + costs.total):.1%} of the P&L before costs)"
        if isinstance(net, int | float) and net + costs.total > 0
        else ""
    )
    show_cards(
        [
            ("Total costs", money(costs.total), f"Commission plus slippage{share}. {charts.SLIPPAGE_HELP}"),
            ("Commission", money(costs.commission), "The sum of the trades' `commission` column."),
            ("Slippage", money(costs.slippage), charts.SLIPPAGE_HELP),
            (
                "Costs per trade",
                money(costs.total / len(run["trades"])) if len(run["trades"]) else "—",
                "Total costs divided by the number of trades.",
            ),
        ],
        per_row=5,
    )


def show_benchmark(run: dict, path: Path, stamp: tuple, tz: str) -> None:
    """The combined equity over the benchmark's buy-and-hold, when the run holds the benchmark's bars."""
    symbol = benchmark_symbol(run)
    if symbol not in run["symbols"]:
        st.caption(
            f"No {symbol} bars in this run: the {symbol} buy-and-hold curve is drawn for runs with {symbol}."
        )
        return
    closes = load_session_closes(str(path), stamp, symbol, tz)
    held = charts.buy_and_hold(closes, start_equity(run))
    st.plotly_chart(charts.benchmark_figure(run["combined"], held, symbol, tz=tz), **PLOT)
    st.caption(
        f"{symbol} buy-and-hold: the combined starting capital ({money(start_equity(run))}) bought at the "
        f"first session's open and held, valued at each session's close ({symbol}_bars.parquet of this run)."
    )


def show_overview(run: dict, tz: str, path: Path, stamp: tuple) -> None:
    aggregate = run["metrics"]["aggregate"]
    show_kpis(aggregate)
    if not run["trades"].empty:
        show_costs(run, path, stamp)
    st.subheader("Per-symbol metrics")
    per_symbol = charts.metrics_frame(run["metrics"]["per_symbol"])
    columns = [k for k in SYMBOL_TABLE_KEYS if k in per_symbol.columns]
    st.dataframe(per_symbol[columns], key="symbol_metrics", column_config=metric_columns(columns))
    st.subheader("Equity and drawdown")
    unit = st.segmented_control("Units", ["R", "$"], default="R", key="equity_unit") or "R"
    curves = {"Combined": run["combined"], **run["equity"]}
    st.plotly_chart(charts.equity_figure(curves, unit="r" if unit == "R" else "usd", tz=tz), **PLOT)
    show_benchmark(run, path, stamp, tz)
    if run["trades"].empty:
        st.info("This run has no trades: every session was skipped or no signal passed the filters.")
        return
    daily = charts.daily_pnl(run["sessions"], run["combined"], start_equity(run), tz)
    st.plotly_chart(charts.calendar_figure(daily), **PLOT)
    left, right = st.columns(2)
    left.plotly_chart(charts.r_distribution_figure(run["trades"]), **PLOT)
    right.plotly_chart(charts.exit_reason_figure(run["trades"], aggregate), **PLOT)
    st.plotly_chart(charts.mfe_mae_figure(run["trades"]), **PLOT)


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
    st.caption(
        f"{len(shown):,} of {plural(len(trades), 'trade')} · times in {tz} · select a row to replay its "
        "session here and in the Session replay tab"
    )
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
        follow_selection(run_id, trade)
        st.subheader(f"Replay of trade {trade['trade_id']}")
        symbol, day = str(trade["symbol"]), trade["session_date"]
        show_replay(path, stamp, run, symbol, day, trade["trade_id"], key=f"trade_replay_{run_id}")


def replay_keys(run_id: str, symbol: str = "") -> dict[str, str]:
    """Session-state keys of the replay tab: its symbol and session pickers and the selected trade."""
    return {
        "symbol": f"replay_symbol_{run_id}",
        "session": f"replay_session_{run_id}_{symbol}",
        "trade": f"replay_trade_{run_id}",
        "followed": f"replay_followed_{run_id}",
    }


def select_trade(run_id: str, symbol: str, session_date, trade_id: str) -> None:
    """Point the replay tab at one trade (its symbol, its session, the trade itself)."""
    keys = replay_keys(run_id, symbol)
    st.session_state[keys["symbol"]] = symbol
    st.session_state[keys["session"]] = pd.Timestamp(session_date).date()
    st.session_state[keys["trade"]] = trade_id


def follow_selection(run_id: str, trade: pd.Series) -> None:
    """A new selection in the Trades table moves the replay tab to that trade (once per new selection, so
    the replay's own controls keep working while the table row stays selected)."""
    keys = replay_keys(run_id)
    if st.session_state.get(keys["followed"]) != trade["trade_id"]:
        st.session_state[keys["followed"]] = trade["trade_id"]
        select_trade(run_id, str(trade["symbol"]), trade["session_date"], trade["trade_id"])


def follow_link(run_id: str, ordered: pd.DataFrame | None) -> None:
    """A `?trade=ID` in the page address opens that trade's replay (once per address, like a selection)."""
    wanted = st.query_params.get("trade")
    keys = replay_keys(run_id)
    if not wanted or ordered is None or st.session_state.get(f"{keys['followed']}_link") == wanted:
        return
    st.session_state[f"{keys['followed']}_link"] = wanted
    match = ordered[ordered["trade_id"] == wanted]
    if len(match):
        trade = match.iloc[0]
        select_trade(run_id, str(trade["symbol"]), trade["day"], wanted)


def show_replay(
    path: Path, stamp: tuple, run: dict, symbol: str, session_date, selected=None, *, key: str
) -> None:
    detail = data.load_symbol_detail(str(path), stamp, symbol)
    trades = run["trades"][run["trades"]["symbol"] == symbol]
    sessions = run["sessions"][run["sessions"]["symbol"] == symbol]
    fig = report.session_replay(
        path, symbol, session_date, trades=trades, fills=detail["fills"], sessions=sessions, selected=selected
    )
    st.plotly_chart(fig, key=key, **PLOT)  # keyed: both tabs may draw the same session
    day = pd.Timestamp(session_date).date()
    events = detail["events"]
    events = events[pd.to_datetime(events["session_date"]).dt.date == day]
    if len(events):
        with st.expander(f"Blocked signals that session ({len(events)})"):
            local = events.assign(time=charts.to_local(events["time"], report.timezone_of(run["config"])))
            st.dataframe(local, key=f"{key}_events")


def trade_order(trades: pd.DataFrame) -> pd.DataFrame:
    """The run's trades in replay order (session, entry time, symbol), with a date `day` column."""
    ordered = trades.assign(day=pd.to_datetime(trades["session_date"]).dt.date)
    return ordered.sort_values(["day", "entry_time", "symbol", "trade_id"], kind="stable").reset_index(
        drop=True
    )


def neighbours(ordered: pd.DataFrame, current: str | None, day) -> tuple:
    """The trades before and after `current` in replay order (None at either end); without a current
    trade, the last trade before `day` and the first from `day` on."""
    if current is not None and (ordered["trade_id"] == current).any():
        at = int(ordered.index[ordered["trade_id"] == current][0])
        before = ordered.iloc[at - 1] if at > 0 else None
        after = ordered.iloc[at + 1] if at + 1 < len(ordered) else None
        return before, after
    earlier, later = ordered[ordered["day"] < day], ordered[ordered["day"] >= day]
    return (earlier.iloc[-1] if len(earlier) else None), (later.iloc[0] if len(later) else None)


def trade_buttons(run_id: str, ordered: pd.DataFrame, symbol: str, current: str | None, day) -> None:
    """Best and worst trade of the run; previous and next trade of `symbol` (in replay order)."""
    before, after = neighbours(ordered[ordered["symbol"] == symbol].reset_index(drop=True), current, day)
    r = ordered["r_multiple"].astype(float)
    targets = (
        ("Best trade", ordered.loc[r.idxmax()], "best", ":material/trending_up:"),
        ("Worst trade", ordered.loc[r.idxmin()], "worst", ":material/trending_down:"),
        (f"Previous {symbol} trade", before, "previous", ":material/chevron_left:"),
        (f"Next {symbol} trade", after, "next", ":material/chevron_right:"),
    )
    for col, (label, trade, name, icon) in zip(st.columns(len(targets)), targets, strict=True):
        col.button(
            label,
            key=f"replay_{name}_{run_id}",
            icon=icon,
            width="stretch",
            disabled=trade is None,
            help=None if trade is None else f"#{trade['trade_id']} {trade['symbol']} {trade['day']}",
            on_click=select_trade,
            args=(run_id, "", None, None)
            if trade is None
            else (run_id, str(trade["symbol"]), trade["day"], trade["trade_id"]),
        )


def session_label(row) -> str:
    """One option of the session picker: the date and what happened that session."""
    if row.status == "traded":
        return f"{row.day} · {plural(int(row.trades), 'trade')} · {row.day_r:+.2f}R"
    if row.status == "skipped":
        return f"{row.day} · skipped ({row.skip_reason})"
    return f"{row.day} · no signal"


def show_replay_tab(run: dict, path: Path, stamp: tuple, run_id: str) -> None:
    """One session's replay; it follows the trade selected in the Trades tab and the trade buttons."""
    ordered = trade_order(run["trades"]) if len(run["trades"]) else None
    keys = replay_keys(run_id)
    follow_link(run_id, ordered)
    c1, c2 = st.columns([1, 3])
    symbol = c1.selectbox("Symbol", run["symbols"], key=keys["symbol"])
    sessions = run["sessions"][run["sessions"]["symbol"] == symbol]
    if sessions.empty:
        st.info(f"{symbol} has no sessions in this run.")
        return
    sessions = sessions.assign(day=pd.to_datetime(sessions["session_date"]).dt.date)
    days = list(sessions["day"])
    labels = {row.day: session_label(row) for row in sessions.itertuples(index=False)}
    keys = replay_keys(run_id, symbol)
    if st.session_state.get(keys["session"]) not in labels:
        traded = sessions[sessions["status"] == "traded"]
        st.session_state[keys["session"]] = traded["day"].iloc[0] if len(traded) else days[0]
    day = c2.selectbox("Session", days, format_func=labels.get, key=keys["session"])
    day_trades = (
        ordered[(ordered["symbol"] == symbol) & (ordered["day"] == day)] if ordered is not None else None
    )
    current = st.session_state.get(keys["trade"])
    if day_trades is None or not (day_trades["trade_id"] == current).any():
        current = day_trades["trade_id"].iloc[0] if day_trades is not None and len(day_trades) else None
    st.session_state[keys["trade"]] = current  # what is shown: the previous/next buttons start from it
    if ordered is not None:
        trade_buttons(run_id, ordered, symbol, current, day)
    if current is not None:
        trade = ordered[ordered["trade_id"] == current].iloc[0]
        number = int(ordered.index[ordered["trade_id"] == current][0]) + 1
        others = len(day_trades) - 1
        note = (
            f" · {plural(others, 'other trade')} this session, dimmed; the selected one is shaded"
            if others
            else ""
        )
        st.caption(
            f"Trade {number:,} of {len(ordered):,}: #{current} {trade['side']} · {trade['exit_reason']} · "
            f"{trade['r_multiple']:+.2f}R · {money(float(trade['net_pnl']))}{note}"
        )
    show_replay(path, stamp, run, symbol, day, current, key=f"replay_chart_{run_id}")


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
