"""The "Runs" page: every run of the registry (orb.runs.catalog) as a filterable, sortable table;
several runs compared (metrics, overlaid equity, config diff as changed key paths); deletion after a
confirmation. The same catalog functions serve `GET /api/leaderboard`, `/api/compare` and
`DELETE /api/runs/{run_id}`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from orb import charts, report
from orb.dashboard import access
from orb.dashboard.common import PLOT, label, metric_columns
from orb.errors import OrbError
from orb.runs import catalog as registry
from orb.runs import read as results

PAGE = "Runs"
METRICS = ("total_trades", "total_r", "sharpe", "max_drawdown_r")
COLUMNS = ("run_id", "mode", "symbols", "start", "end", *METRICS, "tag", "created")
SORTS = {"created": "created", "run id": "run_id", **{label(k): k for k in METRICS}}
TABLE_SQL = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM runs ORDER BY created DESC, run_id DESC"


def run_table(runs_dir: Path) -> pd.DataFrame:
    """One row per readable run, newest first; symbols joined into one text column."""
    frame = registry.catalog(runs_dir).query(TABLE_SQL)
    return frame.assign(symbols=[", ".join(s) for s in frame["symbols"]])


def filtered(frame: pd.DataFrame, modes: list[str], symbols: list[str], tag: str) -> pd.DataFrame:
    """Rows of the chosen modes, holding every chosen symbol, whose tag contains `tag`."""
    keep = frame["mode"].isin(modes) if modes else pd.Series(True, index=frame.index)
    for sym in symbols:
        keep &= frame["symbols"].str.split(", ").map(lambda names, sym=sym: sym in names)
    if tag.strip():
        keep &= frame["tag"].fillna("").str.contains(tag.strip(), case=False, regex=False)
    return frame[keep]


def show(runs_dir: Path) -> None:
    st.header("Runs")
    notice = st.session_state.pop("runs_notice", None)
    if notice:
        kind, text = notice
        (st.success if kind == "success" else st.error)(text)
    try:
        frame = run_table(runs_dir)
    except OrbError as exc:
        st.error(f"The run registry of {runs_dir} cannot be read: {exc}")
        return
    skipped = registry.catalog(runs_dir).skipped
    if skipped:
        st.warning(
            f"{len(skipped)} damaged run folder(s) left out: "
            + "; ".join(f"{name} ({why})" for name, why in sorted(skipped.items()))
        )
    if frame.empty:
        st.info(f"No runs in {runs_dir} yet: start one on the New backtest page.")
        return
    table = show_table(frame)
    st.divider()
    show_compare(runs_dir, list(table["run_id"]))
    st.divider()
    show_delete(runs_dir, list(frame["run_id"]))


def show_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The filters, the sort and the table; returns the rows shown."""
    modes, symbols, tag, sort = st.columns(4)
    all_symbols = sorted({s for names in frame["symbols"] for s in names.split(", ") if s})
    chosen_modes = modes.multiselect("Mode", sorted(frame["mode"].dropna().unique()), key="runs_mode")
    chosen_symbols = symbols.multiselect("Symbols", all_symbols, key="runs_symbols")
    text = tag.text_input("Tag contains", key="runs_tag")
    by = sort.selectbox("Sort by", list(SORTS), key="runs_sort")
    descending = sort.toggle("Descending", True, key="runs_descending")
    shown = filtered(frame, chosen_modes, chosen_symbols, text).sort_values(
        SORTS[by], ascending=not descending, na_position="last", kind="stable"
    )
    st.caption(f"{len(shown)} of {len(frame)} run(s)")
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "run_id": "Run",
            "mode": "Mode",
            "symbols": "Symbols",
            "start": "First session",
            "end": "Last session",
            "tag": "Tag",
            "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm:ss"),
            **metric_columns(METRICS),
        },
    )
    return shown


def show_compare(runs_dir: Path, run_ids: list[str]) -> None:
    """Metrics side by side, overlaid combined equity and the changed config keys of the picked runs."""
    st.subheader("Compare")
    picked = st.multiselect(
        "Runs to compare", run_ids, key="runs_compare", placeholder="Pick two or more runs of the table"
    )
    if len(picked) < 2:
        st.caption("Pick at least two runs to compare them.")
        return
    try:
        found = registry.compare(runs_dir, picked)
    except (OrbError, OSError) as exc:
        st.error(f"The runs cannot be compared: {exc}")
        return
    ids = found["run_ids"]
    rows = [
        {"metric": label(key), **{r: charts.format_metric(key, found["metrics"][key][r]) for r in ids}}
        for key in registry.SCALAR_METRICS
        if any(found["metrics"][key][r] is not None for r in ids)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    curves = {r: pd.DataFrame(points) for r, points in found["equity"].items() if points}
    if curves:
        tz = report.timezone_of(results.load_run_config(results.run_dir(runs_dir, ids[0])))
        fig = charts.equity_figure(curves, unit="r", tz=tz, title="Combined equity of the compared runs")
        st.plotly_chart(fig, key="runs_compare_equity", **PLOT)
    diff = found["config_diff"]
    st.markdown("**Config keys that differ**")
    if not diff:
        st.caption("The runs have the same configuration.")
        return
    st.dataframe(
        pd.DataFrame(
            [{"key": key, **{r: json.dumps(values.get(r)) for r in ids}} for key, values in diff.items()]
        ),
        hide_index=True,
    )


def show_delete(runs_dir: Path, run_ids: list[str]) -> None:
    """Pick a run, press Delete, then confirm; the folder goes atomically (registry.delete_run)."""
    st.subheader("Delete a run")
    pending = st.session_state.get("runs_delete_pending")
    if pending not in run_ids:
        pending = None
    target = st.selectbox("Run to delete", run_ids, index=None, key="runs_delete_pick")
    refusal = access.write_refusal()
    if refusal is not None:
        st.info(refusal, icon=":material/lock:")
    if pending is None:
        st.button(
            "Delete…",
            disabled=target is None or refusal is not None,
            key="runs_delete",
            icon=":material/delete:",
            on_click=_ask,
            args=(target,),
        )
        return
    st.warning(f"Delete run {pending}? Its folder is removed for good.")
    yes, no = st.columns(2)
    yes.button(
        f"Yes, delete {pending}",
        type="primary",
        key="runs_delete_yes",
        disabled=refusal is not None,
        on_click=_delete,
        args=(runs_dir,),
    )
    no.button("Keep it", key="runs_delete_no", on_click=_ask, args=(None,))


def _ask(run_id: str | None) -> None:
    st.session_state["runs_delete_pending"] = run_id


def _delete(runs_dir: Path) -> None:
    """Button callback: delete the pending run and drop it from the compare pick."""
    run_id = st.session_state.pop("runs_delete_pending", None)
    if run_id is None or access.write_refusal() is not None:
        return
    try:
        registry.delete_run(runs_dir, run_id)
    except (OrbError, OSError) as exc:
        st.session_state["runs_notice"] = ("error", f"Run {run_id} could not be deleted: {exc}")
        return
    st.session_state["runs_compare"] = [r for r in st.session_state.get("runs_compare", []) if r != run_id]
    st.session_state["runs_delete_pick"] = None
    st.session_state["runs_notice"] = ("success", f"Deleted run {run_id}")
