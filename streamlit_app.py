"""ORB backtest dashboard: `streamlit run streamlit_app.py [-- --runs-dir DIR]`.

Read-only over the runs folder (`--runs-dir`, else env ORB_RUNS_DIR, else ./runs), through `orb.runs.read`;
the charts come from `orb.charts`, the same ones the HTML report uses. Cached reads (orb.dashboard.data)
are keyed by the run folder's and the runs folder's modification stamps, so a new run appears on the next
refresh. Each run shows the tabs of its mode (orb.dashboard.backtest, orb.dashboard.research): a backtest
its trades and analysis, a sweep its ranked results and heatmap, a walk-forward its folds and stitched
out-of-sample equity, a portfolio run its account, daily universe and analysis (orb.dashboard.portfolio);
Monte Carlo output of a backtest, walk-forward or portfolio run gets its own tab.
Two more pages (sidebar "Page"): Runs (orb.dashboard.runs_page: the run registry, compare, delete) and
New backtest (orb.dashboard.jobs: submit, track and cancel jobs); those two write to the runs folder,
with the API's key when ORB_API_KEY is set (orb.dashboard.access).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from orb import report
from orb.dashboard import access, backtest, data, jobs, portfolio, research, runs_page
from orb.dashboard.common import MODE_NAMES, run_label
from orb.metric_registry import plural
from orb.runs import read as results


def runs_dir_from_args(argv: list[str]) -> Path:
    """The runs folder: `--runs-dir` (after `--` on the streamlit command line), ORB_RUNS_DIR, else runs/."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs-dir", default=None)
    known, _ = parser.parse_known_args(argv)
    return results.resolve_runs_dir(known.runs_dir)


PAGES = {jobs.RUN_PAGE: None, runs_page.PAGE: runs_page.show, jobs.PAGE: jobs.show}


def main() -> None:
    st.set_page_config(page_title="ORB backtests", page_icon="📈", layout="wide")
    runs_dir = runs_dir_from_args(sys.argv[1:])
    summaries, latest = data.list_runs(str(runs_dir), data.stamp(runs_dir))
    with st.sidebar:
        st.title("ORB backtests")
        st.caption(f"Runs folder: `{runs_dir}`")
        if st.button("Refresh", icon=":material/refresh:", help="Look for new runs"):
            st.rerun()
        page = st.radio("Page", PAGES, key="page")
        access.key_field()
    if page != jobs.RUN_PAGE:
        PAGES[page](runs_dir)
        return
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
        st.caption(f"{plural(len(ids), 'run')}, newest first")
        st.caption(run_label(by_id[run_id]))
    summary = by_id[run_id]
    if summary.status != "complete":
        st.error(f"Run {run_id} is damaged and cannot be shown: {summary.detail}")
        return
    mode = summary.mode
    try:
        path = results.run_dir(runs_dir, run_id)
        stamp = data.stamp(path)
        loader = {results.BACKTEST: data.load_run, results.PORTFOLIO: portfolio.load_run}
        run = loader.get(mode, data.load_research_run)(str(path), stamp)
        montecarlo = results.has_montecarlo(path)
    except results.ResultsError as exc:
        st.error(f"Run {run_id} cannot be read: {exc}")
        return
    tz = report.timezone_of(run["config"])
    manifest = run["manifest"]
    st.header(f"Run {run_id}")
    st.caption(
        (f"{MODE_NAMES[mode]} · " if mode in MODE_NAMES else "")
        + f"{_symbols_text(run['symbols'])} · sessions {manifest.get('start')} to {manifest.get('end')} · "
        f"interval {run['config'].get('data', {}).get('interval')} · created {manifest.get('created')} · "
        f"times in {tz}"
    )
    try:
        show_mode_tabs(runs_dir, summaries, run_id, mode, run, path, stamp, tz, montecarlo)
    except results.ResultsError as exc:
        st.error(f"Run {run_id} cannot be read: {exc}")


def _symbols_text(symbols: list[str]) -> str:
    return (
        ", ".join(symbols)
        if len(symbols) <= 12
        else f"{len(symbols)} symbols ({', '.join(symbols[:10])}, ...)"
    )


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
            research.show_sweep(path, stamp, run_id)
    elif mode == results.PORTFOLIO:
        portfolio.show_tabs(run, path, stamp, run_id, tz, montecarlo)
        return
    elif mode == results.WALK_FORWARD:
        names = ["Walk-forward", *(["Monte Carlo"] if montecarlo else []), "Config"]
        tabs = st.tabs(names)
        with tabs[0]:
            research.show_walkforward(path, stamp, run_id, tz)
        if montecarlo:
            with tabs[1]:
                research.show_montecarlo(path, stamp, run_id, mode)
        config_tab = tabs[-1]
    else:
        names = ["Overview", "Trades", "Session replay", "Analysis", "Sessions"]
        names += ["Monte Carlo"] if montecarlo else []
        tabs = st.tabs([*names, "Compare", "Config"])
        with tabs[0]:
            backtest.show_overview(run, tz, path, stamp)
        with tabs[1]:
            backtest.show_trades(run, path, stamp, run_id, tz)
        with tabs[2]:
            backtest.show_replay_tab(run, path, stamp, run_id)
        with tabs[3]:
            backtest.show_analysis(run, run_id, tz)
        with tabs[4]:
            backtest.show_sessions(run)
            backtest.show_blocked(run, path, stamp)
        if montecarlo:
            with tabs[5]:
                research.show_montecarlo(path, stamp, run_id, mode)
        with tabs[-2]:
            backtest.show_compare(runs_dir, summaries, run_id, run, tz)
        config_tab = tabs[-1]
    with config_tab:
        backtest.show_config(run)


main()
