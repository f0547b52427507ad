"""Readers of the research outputs of a run folder: sweep, walk-forward and Monte Carlo (docs/research.md).

A file the run's mode never writes is OutputNotFound (404 in the API). Nothing here writes or
recomputes what a file holds.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orb.runs.layout import (
    AGGREGATE,
    MONTECARLO_BANDS,
    MONTECARLO_PATHS,
    MONTECARLO_SUMMARY,
    SWEEP_JSON,
    SWEEP_RESULTS,
    WALK_FORWARD_JSON,
    WF_FOLDS,
    WF_OOS_EQUITY,
    WF_OOS_TRADES,
)
from orb.runs.store import (
    Page,
    PathLike,
    RunIncomplete,
    _downsample_table,
    _metrics,
    _plain,
    _read_json,
    _read_table,
    _short,
    _slice,
    _symbol,
    records,
)
from orb.schema import METRIC_KEYS

MONTECARLO_STATS = ("total_r", "max_drawdown_r", "longest_losing_streak")
PERCENTILE_KEYS = ("p5", "p25", "p50", "p75", "p95")
SCALAR_METRIC_KEYS = tuple(k for k in METRIC_KEYS if k != "exit_reasons")
SWEEP_SORT_KEYS = ("rank", "combination", *SCALAR_METRIC_KEYS)


@dataclass(frozen=True, eq=False)
class SweepResults:
    """A sweep run: sweep.json (`info`: keys, rank_by, invalid, best, ...) and sweep_results as stored."""

    info: dict[str, Any]
    table: pd.DataFrame

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.info["keys"])

    @property
    def rank_by(self) -> str:
        return self.info["rank_by"]


@dataclass(frozen=True, eq=False)
class WalkForwardResults:
    """A walk-forward run: walk_forward.json (`info`, with `robustness`), folds, stitched OOS trades and
    equity, and metrics.json (the stitched out-of-sample metrics)."""

    info: dict[str, Any]
    folds: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    metrics: dict[str, Any]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.info["keys"])

    @property
    def robustness(self) -> dict[str, Any]:
        return self.info["robustness"]


@dataclass(frozen=True, eq=False)
class MonteCarloResults:
    """Monte Carlo output of a run: montecarlo_summary.json, the percentile bands and the per-path table."""

    summary: dict[str, Any]
    bands: pd.DataFrame
    paths: pd.DataFrame


@dataclass(frozen=True)
class Histogram:
    """Counts of values in bins: bin i is [edges[i], edges[i + 1]) (the last bin includes its right edge)."""

    edges: list[float]
    counts: list[int]


def _research_json(run: Path, name: str, shape: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """JSON object `name` of the run, RunIncomplete unless each key of `shape` holds its type."""
    info = _read_json(run, name)
    if not isinstance(info, dict):
        raise RunIncomplete(f"run {run.name}: {name} is not a JSON object; re-run it")
    for key, kind in shape.items():
        value = info.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise RunIncomplete(f"run {run.name}: {name} has no valid {key!r}; re-run it")
    keys = info.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RunIncomplete(f"run {run.name}: {name} 'keys' is not a list of config keys; re-run it")
    return info


def _sweep_info(run: Path) -> dict[str, Any]:
    return _research_json(run, SWEEP_JSON, {"keys": list, "rank_by": str, "invalid": list})


def _walkforward_info(run: Path) -> dict[str, Any]:
    return _research_json(run, WALK_FORWARD_JSON, {"keys": list, "rank_by": str, "robustness": dict})


def _montecarlo_summary(run: Path) -> dict[str, Any]:
    return _research_json(run, MONTECARLO_SUMMARY, {"n_paths": int, "percentiles": dict, "observed": dict})


def sweep_info(path: PathLike) -> dict[str, Any]:
    """sweep.json of a sweep run (OutputNotFound for other runs)."""
    return copy.deepcopy(_sweep_info(Path(path)))


def load_sweep(path: PathLike) -> SweepResults:
    """sweep.json and sweep_results.parquet of a sweep run (OutputNotFound for other runs)."""
    run = Path(path)
    info = copy.deepcopy(_sweep_info(run))
    return SweepResults(info=info, table=_read_table(run, SWEEP_RESULTS).to_pandas())


def _exit_reasons(run: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with the exit_reasons JSON text of sweep_results parsed into an object."""
    for row in rows:
        text = row.get("exit_reasons")
        if text is None:
            continue
        try:
            row["exit_reasons"] = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            row["exit_reasons"] = None
        if not isinstance(row["exit_reasons"], dict):
            raise RunIncomplete(
                f"run {run.name}: sweep_results.parquet exit_reasons {_short(text)} is not a JSON object"
            )
    return rows


def _null_nan(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(column.type):
        return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column


def sweep_page(
    path: PathLike,
    symbol: str | None = None,
    *,
    sort_by: str = "rank",
    descending: bool | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Page:
    """Rows of sweep_results as JSON-safe records (exit_reasons as an object), filtered, sorted and sliced.

    `symbol` keeps one symbol's rows, AGGREGATE ("*") the aggregate rows, None every row. `sort_by` is
    one of SWEEP_SORT_KEYS; `descending` defaults to False for rank and combination and True for a
    metric (best first for most metrics). Ties, and undefined values (last), keep the stored rank order.
    """
    run = Path(path)
    if sort_by not in SWEEP_SORT_KEYS:
        raise ValueError(f"sort_by {_short(sort_by)} is not one of {', '.join(SWEEP_SORT_KEYS)}")
    _sweep_info(run)
    table = _read_table(run, SWEEP_RESULTS)
    if sort_by not in table.column_names or "symbol" not in table.column_names:
        raise RunIncomplete(f"run {run.name}: sweep_results.parquet has no {sort_by} column; re-run it")
    if symbol is not None:
        wanted = AGGREGATE if symbol == AGGREGATE else _symbol(run, symbol)
        table = table.filter(pc.field("symbol") == wanted)
    if descending is None:
        descending = sort_by not in ("rank", "combination")
    if sort_by != "rank" or descending:
        order = pc.sort_indices(
            pa.table({"key": _null_nan(table.column(sort_by))}),
            sort_keys=[("key", "descending" if descending else "ascending")],
        )  # stable, nulls last (the default): ties keep the stored order
        table = table.take(order)
    return Page(total=table.num_rows, records=_exit_reasons(run, records(_slice(table, offset, limit))))


def walkforward_info(path: PathLike) -> dict[str, Any]:
    """walk_forward.json of a walk-forward run (robustness inside; OutputNotFound for other runs)."""
    return copy.deepcopy(_walkforward_info(Path(path)))


def load_walkforward(path: PathLike) -> WalkForwardResults:
    """Everything a walk-forward run wrote (OutputNotFound for other runs)."""
    run = Path(path)
    info = copy.deepcopy(_walkforward_info(run))
    return WalkForwardResults(
        info=info,
        folds=_read_table(run, WF_FOLDS).to_pandas(),
        trades=_read_table(run, WF_OOS_TRADES).to_pandas(),
        equity=_plain(_read_table(run, WF_OOS_EQUITY).to_pandas()),
        metrics=copy.deepcopy(_metrics(run)),
    )


def walkforward_folds_page(path: PathLike) -> Page:
    """wf_folds as JSON-safe records (dates YYYY-MM-DD), one per fold."""
    run = Path(path)
    _walkforward_info(run)
    table = _read_table(run, WF_FOLDS)
    return Page(total=table.num_rows, records=records(table))


def walkforward_equity_page(path: PathLike, max_points: int | None = None) -> Page:
    """The stitched out-of-sample equity (with its `fold`), downsampled like equity_page."""
    run = Path(path)
    _walkforward_info(run)
    table = _read_table(run, WF_OOS_EQUITY)
    return Page(total=table.num_rows, records=records(_downsample_table(table, max_points)))


def montecarlo_summary(path: PathLike) -> dict[str, Any]:
    """montecarlo_summary.json of the run (OutputNotFound when it has no Monte Carlo output)."""
    return copy.deepcopy(_montecarlo_summary(Path(path)))


def load_montecarlo(path: PathLike) -> MonteCarloResults:
    """The Monte Carlo summary, bands and paths of the run (OutputNotFound when it has none)."""
    run = Path(path)
    summary = copy.deepcopy(_montecarlo_summary(run))
    return MonteCarloResults(
        summary=summary,
        bands=_read_table(run, MONTECARLO_BANDS).to_pandas(),
        paths=_read_table(run, MONTECARLO_PATHS).to_pandas(),
    )


def thin_positions(n: int, max_points: int) -> np.ndarray:
    """At most `max_points` (>= 2) evenly spaced positions of 0..n-1, first and last included."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def montecarlo_bands_page(path: PathLike, max_points: int | None = None) -> Page:
    """The percentile bands as JSON-safe records; at most `max_points` evenly spaced steps if given."""
    run = Path(path)
    _montecarlo_summary(run)
    table = _read_table(run, MONTECARLO_BANDS)
    total = table.num_rows
    if max_points is not None and total > max_points:
        table = table.take(pa.array(thin_positions(total, max_points)))
    return Page(total=total, records=records(table))


def histogram(values: np.ndarray, bins: int) -> Histogram:
    """Counts of the finite `values` in `bins` equal bins; whole numbers spanning at most `bins` values get
    one bin per number (edges at k - 0.5)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if not len(finite):
        return Histogram(edges=[], counts=[])
    low, high = float(finite.min()), float(finite.max())
    if np.all(finite == np.round(finite)) and high - low + 1 <= bins:
        counts, edges = np.histogram(finite, bins=np.arange(low - 0.5, high + 1.5))
    else:
        counts, edges = np.histogram(finite, bins=bins)
    return Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def montecarlo_histogram(path: PathLike, stat: str, bins: int = 30) -> Histogram:
    """Histogram of one per-path statistic (MONTECARLO_STATS) of montecarlo_paths.parquet."""
    run = Path(path)
    if stat not in MONTECARLO_STATS:
        raise ValueError(f"stat {_short(stat)} is not one of {', '.join(MONTECARLO_STATS)}")
    _montecarlo_summary(run)
    table = _read_table(run, MONTECARLO_PATHS)
    if stat not in table.column_names:
        raise RunIncomplete(f"run {run.name}: montecarlo_paths.parquet has no {stat} column; re-run it")
    column = table.column(stat)
    dtype = np.float64 if pa.types.is_floating(column.type) else None
    values = column.to_numpy() if dtype is None else column.to_numpy().astype(dtype)
    return histogram(np.asarray(values), bins)
