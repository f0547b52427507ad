"""The tabs of research runs: a sweep's heatmap and ranked table, a walk-forward's folds and stitched
out-of-sample result, and Monte Carlo bands and drawdowns (docs/research.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts
from orb.dashboard import data
from orb.dashboard.common import PLOT, local_trades, metric_columns, show_cards, show_kpis
from orb.dashboard.common import label as metric_label
from orb.metric_registry import SCALAR_RUN_METRIC_KEYS
from orb.runs import read as results

SWEEP_TABLE_KEYS = (
    "total_r", "total_trades", "win_rate", "avg_r", "profit_factor", "expectancy_r", "sharpe",
    "max_drawdown_r", "max_drawdown_pct", "net_pnl",
)  # fmt: skip
FOLD_METRICS = ("total_r", "total_trades", "win_rate", "profit_factor", "max_drawdown_r", "sharpe")
NONE = "(none)"
AGGREGATE_LABEL = "All symbols (aggregate)"


def _params_text(params: dict) -> str:
    return ", ".join(f"{key} = {value}" for key, value in params.items())


def show_sweep(path: Path, stamp: tuple, run_id: str) -> None:
    """A sweep run: its heatmap over two chosen parameters and the sortable results table."""
    sweep = data.load_sweep(str(path), stamp)
    info, table, keys = sweep.info, sweep.table, list(sweep.keys)
    invalid = info.get("invalid") or []
    st.caption(
        f"{info.get('combinations')} combinations, {info.get('evaluated')} evaluated, "
        f"{len(invalid)} invalid · ranked by {sweep.rank_by} on the aggregate over all symbols · "
        f"sweep file `{info.get('sweep_file')}`"
    )
    ranked = table[table["symbol"] == results.AGGREGATE].sort_values("rank", kind="stable")[sweep.rank_by]
    label = metric_label(sweep.rank_by)
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
    metrics = [k for k in SCALAR_RUN_METRIC_KEYS if k in table.columns]
    c1, c2, c3, c4, c5 = st.columns(5)
    scope = c1.selectbox(
        "Rows",
        [results.AGGREGATE, *symbols],
        format_func=lambda sym: AGGREGATE_LABEL if sym == results.AGGREGATE else sym,
        key=f"sweep_scope_{run_id}",
    )
    default = metrics.index(sweep.rank_by) if sweep.rank_by in metrics else 0
    metric = c2.selectbox(
        "Metric", metrics, index=default, format_func=metric_label, key=f"sweep_metric_{run_id}"
    )
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
    sort_by = c1.selectbox("Sort by", sortable, format_func=metric_label, key=f"sweep_sort_{run_id}")
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
    wf = data.load_walkforward(str(path), stamp)
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
        ("OOS R per session", charts.format_metric("oos_r_per_session", rob.get("oos_r_per_session")), None),
        ("IS R per session", charts.format_metric("is_r_per_session", rob.get("is_r_per_session")), None),
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
    mc = data.load_montecarlo(str(path), stamp)
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
