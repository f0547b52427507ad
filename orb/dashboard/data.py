"""The dashboard's reads of the runs folder: one bounded Streamlit cache over orb.runs.read.

Each loader is keyed by the folder's `stamp` (names and modification times of its entries), so a new or
rewritten run is read again on the next refresh; at most CACHE_ENTRIES results are kept per loader.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from orb.runs import read as results

CACHE_ENTRIES = 8


def stamp(path: Path) -> tuple:
    """A cheap fingerprint of a folder's entries (names and modification times)."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        return tuple((e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in entries)
    except OSError:
        return ()


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def list_runs(runs_dir: str, stamp: tuple) -> tuple[list[results.RunSummary], str | None]:
    """Run summaries (newest first) and the default run id; `stamp` keys the cache."""
    return results.list_runs(runs_dir), results.latest_run_id(runs_dir)


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_run(path: str, stamp: tuple) -> dict:
    """Everything the overview needs from one run folder (raises results.ResultsError when damaged)."""
    results.check_run(path)
    syms = results.symbols(path)
    return {
        "manifest": results.load_manifest(path),
        "metrics": results.load_metrics(path),
        "config": results.load_run_config(path),
        "symbols": syms,
        "trades": results.load_trades(path),
        "sessions": results.load_sessions(path),
        "combined": results.load_equity(path),
        "equity": {sym: results.load_equity(path, sym) for sym in syms},
    }


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_research_run(path: str, stamp: tuple) -> dict:
    """Manifest, configuration and symbols of a sweep or walk-forward run (raises when damaged)."""
    results.check_run(path)
    return {
        "manifest": results.load_manifest(path),
        "config": results.load_run_config(path),
        "symbols": results.symbols(path),
    }


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_sweep(path: str, stamp: tuple) -> results.SweepResults:
    return results.load_sweep(path)


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_walkforward(path: str, stamp: tuple) -> results.WalkForwardResults:
    return results.load_walkforward(path)


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_montecarlo(path: str, stamp: tuple) -> results.MonteCarloResults:
    return results.load_montecarlo(path)


@st.cache_data(show_spinner=False, max_entries=CACHE_ENTRIES)
def load_symbol_detail(path: str, stamp: tuple, symbol: str) -> dict:
    """Fills and events of one symbol."""
    return {"fills": results.load_fills(path, symbol), "events": results.load_events(path, symbol)}
