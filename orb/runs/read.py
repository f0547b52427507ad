"""Read side of run folders (run-format.md): the one reader the dashboard, the API and the report use.

A run's manifest `mode` says what it holds: "backtest" (also when the key is missing), "sweep",
"walk_forward" (docs/research.md) or "portfolio" (one account over a daily universe: its trades, fills,
events, bars and sessions are read from the combined tables by orb.runs.portfolio_read, re-exported
here); backtests and walk-forwards may also hold Monte Carlo files. A
file the run's mode never writes is OutputNotFound (404 in the API); a file the run should have but
lacks is RunIncomplete. Paths, caching and JSON rows: orb.runs.store; the research readers:
orb.runs.research (both re-exported here, so front ends import this module only).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orb.metric_registry import METRICS, Kind
from orb.runs.layout import (
    ALL_TRADES,
    COMBINED_EQUITY,
    LATEST_FILE,
    MANIFEST,
    MONTECARLO_SUMMARY,
    REQUIRED,
    RUN_ID_PATTERN,  # noqa: F401 - re-exported for the API models
    symbol_file,
)
from orb.runs.portfolio_read import (  # noqa: F401 - re-exported: the portfolio readers
    benchmark_page,
    has_benchmark,
    is_portfolio,
    load_benchmark,
    load_portfolio_bars,
    load_portfolio_events,
    load_portfolio_fills,
    load_universe,
    session_dates,
    universe_page,
)
from orb.runs.portfolio_read import trades_table as _portfolio_trades
from orb.runs.portfolio_read import universe_as_sessions as _portfolio_sessions
from orb.runs.research import (  # noqa: F401 - re-exported: the research readers
    AGGREGATE,
    MONTECARLO_STATS,
    PERCENTILE_KEYS,
    SCALAR_METRIC_KEYS,
    SWEEP_SORT_KEYS,
    Histogram,
    MonteCarloResults,
    SweepResults,
    WalkForwardResults,
    histogram,
    load_montecarlo,
    load_sweep,
    load_walkforward,
    montecarlo_bands_page,
    montecarlo_histogram,
    montecarlo_summary,
    sweep_info,
    sweep_page,
    thin_positions,
    walkforward_equity_page,
    walkforward_folds_page,
    walkforward_info,
)
from orb.runs.store import (  # noqa: F401 - re-exported: errors, patterns, path checks, rows
    _CACHE,
    _RUN_ID_RE,
    BACKTEST,
    LATEST_ALIAS,
    SWEEP,
    SYMBOL_PATTERN,
    WALK_FORWARD,
    InvalidRunId,
    InvalidSymbol,
    OutputNotFound,
    Page,
    PathLike,
    ResultsError,
    RunIncomplete,
    RunNotFound,
    SymbolNotFound,
    _config,
    _downsample_table,
    _inside,
    _manifest,
    _member,
    _metrics,
    _mode,
    _plain,
    _read_table,
    _short,
    _short_error,
    _slice,
    _symbol,
    as_date,
    clear_cache,
    date_scalar,
    digest,
    downsample_positions,
    json_decimals,
    one_local_day,
    records,
    resolve_runs_dir,
    symbols,
    table_schema,
    validate_run_id,
    validate_symbol,
)
from orb.schema import RunMode

PORTFOLIO = RunMode.PORTFOLIO


@dataclass(frozen=True)
class RunSummary:
    """One line of the run list; `detail` says why a run is incomplete."""

    run_id: str
    created: datetime | None
    symbols: tuple[str, ...]
    start: str | None
    end: str | None
    status: str  # "complete" | "incomplete"
    detail: str | None
    trades: int | None
    total_r: float | None
    win_rate: float | None
    mode: str = BACKTEST  # "backtest" | "sweep" | "walk_forward" | "portfolio" (manifest `mode`)


# ---------------------------------------------------------------------------------------------- validation


def run_dir(runs_dir: PathLike, run_id: str | None) -> Path:
    """The resolved folder of `run_id` (None or "latest": the newest run) inside `runs_dir`.

    Raises InvalidRunId for a malformed id and RunNotFound for anything that is not a run folder
    inside `runs_dir` (including symlinks that lead outside it).
    """
    root = Path(runs_dir).resolve()
    if run_id is None or run_id == LATEST_ALIAS:
        newest = latest_run_id(root)
        if newest is None:
            raise RunNotFound(
                f"no complete run in {root}; create one with "
                "`python run_backtest.py --symbols SPY --synthetic`"
            )
        run_id = newest
    validate_run_id(run_id)
    path = (root / run_id).resolve()
    if not _inside(path, root) or not path.is_dir():
        raise RunNotFound(f"run {run_id} not found in {root} (see GET /api/runs)")
    return path


def _check_run(run: Path, verify: bool = False) -> dict[str, Any]:
    """The validated manifest; the answer is cached (in the one file cache) until the folder or the
    manifest changes. `verify` also checks every listed Parquet file's schema and every listed file's
    SHA-256 (each once per file version)."""
    manifest = _manifest(run)
    m = os.stat(_member(run, MANIFEST))
    variant = ("check", m.st_mtime_ns, m.st_size, m.st_ino)
    checked = _CACHE.get(run, variant, lambda: _validate(run, manifest), lambda _: 256)
    if verify:
        base = run.resolve()
        for name, expected in manifest["files"].items():
            member = _member(run, name, base)
            if name.endswith(".parquet"):
                table_schema(run, name, member)
            if digest(member) != expected:
                raise RunIncomplete(
                    f"run {run.name}: {name} does not match its SHA-256 in manifest.json (truncated or "
                    "changed after the run); re-run the backtest"
                )
    return checked


def _validate(run: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise RunIncomplete(f"run {run.name}: manifest.json lists no files; re-run the backtest")
    if not all(isinstance(value, str) for value in files.values()):
        raise RunIncomplete(f"run {run.name}: manifest.json 'files' holds a non-text hash; re-run it")
    mode = _mode(run, manifest)
    base = run.resolve()
    for name in files:
        _member(run, name, base)
    for name in REQUIRED[mode]:
        try:
            _member(run, name, base)
        except OutputNotFound:  # a file this mode writes, missing and not listed
            raise RunIncomplete(f"run {run.name} is incomplete: {name} is missing; re-run it") from None
    if mode != SWEEP:
        _metrics(run)
    return manifest


def check_run(path: PathLike, verify: bool = False) -> dict[str, Any]:
    """The manifest of a complete run; RunIncomplete names the first missing or bad file.

    A run is complete when manifest.json parses with a known mode, every file it lists exists inside
    the folder and the mode's own files are there: metrics.json with its two sections (backtest,
    walk-forward), sweep.json and sweep_results.parquet (sweep), walk_forward.json, wf_folds.parquet
    and wf_oos_equity.parquet (walk-forward). The answer is cached until the folder (a file added, removed
    or renamed) or its manifest changes. `verify=True` also compares every file's SHA-256 with the
    manifest (reads every byte, never cached).
    """
    return copy.deepcopy(_check_run(Path(path), verify))


def open_run(runs_dir: PathLike, run_id: str | None, verify: bool = False) -> Path:
    """run_dir() plus check_run(): the folder of a complete run."""
    path = run_dir(runs_dir, run_id)
    _check_run(path, verify)
    return path


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return kind(value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _summarize(run: Path) -> RunSummary:
    detail = None
    aggregate: dict[str, Any] = {}
    try:
        manifest = _check_run(run)
        if _mode(run, manifest) != SWEEP:  # a sweep has one result per combination, no run totals
            aggregate = _checked_metrics(run, _metrics(run)["aggregate"], "aggregate")
        _check_run(run, verify=True)
    except RunIncomplete as exc:
        detail = str(exc)
        try:
            manifest = _manifest(run)
        except RunIncomplete:
            manifest = {}
    listed = manifest.get("symbols")
    mode = manifest.get("mode", BACKTEST)
    return RunSummary(
        run_id=run.name,
        created=_parse_time(manifest.get("created")),
        symbols=tuple(s for s in listed if isinstance(s, str)) if isinstance(listed, list) else (),
        start=manifest.get("start") if isinstance(manifest.get("start"), str) else None,
        end=manifest.get("end") if isinstance(manifest.get("end"), str) else None,
        status="complete" if detail is None else "incomplete",
        detail=detail,
        trades=_number(aggregate.get("total_trades"), int),
        total_r=_number(aggregate.get("total_r"), float),
        win_rate=_number(aggregate.get("win_rate"), float),
        mode=mode if isinstance(mode, str) else BACKTEST,
    )


def _run_folders(root: Path) -> Iterable[Path]:
    """Visible run folders of `root`: hidden/temp names, files and symlinks leading outside are skipped."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    folders = []
    for entry in entries:
        if entry.name.startswith(".") or not _RUN_ID_RE.fullmatch(entry.name):
            continue
        try:
            if not entry.is_dir():
                continue
        except OSError:
            continue
        path = Path(entry.path)
        if entry.is_symlink() and not _inside(path.resolve(), root):
            continue
        folders.append(path)
    return folders


def count_runs(runs_dir: PathLike) -> int:
    """How many run folders list_runs would show (complete or not), without reading any of them."""
    return len(list(_run_folders(Path(runs_dir).resolve())))


def list_runs(runs_dir: PathLike) -> list[RunSummary]:
    """Every run folder, newest first (manifest `created`, else folder mtime); damaged ones "incomplete"
    with the file and the reason (every listed file's SHA-256 is checked, once per file version)."""
    root = Path(runs_dir).resolve()
    keyed = []
    for path in _run_folders(root):
        summary = _summarize(path)
        when = summary.created
        if when is None:
            try:
                when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except OSError:
                when = datetime.min.replace(tzinfo=UTC)
        keyed.append(((when, summary.run_id), summary))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [summary for _, summary in keyed]


def latest_run_id(runs_dir: PathLike) -> str | None:
    """The id in runs/latest when it names a complete run, else the newest complete run, else None."""
    root = Path(runs_dir).resolve()
    pointer = (root / LATEST_FILE).resolve()
    if _inside(pointer, root) and pointer.is_file():
        try:
            named = pointer.read_text(encoding="utf-8", errors="replace").strip()[:200]
        except OSError:
            named = ""
        if _RUN_ID_RE.fullmatch(named):
            candidate = (root / named).resolve()
            if _inside(candidate, root) and candidate.is_dir():
                try:
                    _check_run(candidate)
                    return named
                except RunIncomplete:
                    pass
    for summary in list_runs(root):
        if summary.status == "complete":
            return summary.run_id
    return None


# ---------------------------------------------------------------------------------------------- tables


def _filter_trades(
    table: pa.Table,
    side: str | None,
    exit_reason: str | None,
    start: date | str | None,
    end: date | str | None,
) -> pa.Table:
    conditions = []
    if side is not None:
        conditions.append(pc.field("side") == side)
    if exit_reason is not None:
        conditions.append(pc.field("exit_reason") == exit_reason)
    first, last = as_date(start, "start"), as_date(end, "end")
    if first is not None or last is not None:
        typ = table.schema.field("session_date").type
        if first is not None:
            conditions.append(pc.field("session_date") >= date_scalar(first, typ))
        if last is not None:
            conditions.append(pc.field("session_date") <= date_scalar(last, typ))
    if not conditions:
        return table
    expression = conditions[0]
    for condition in conditions[1:]:
        expression = expression & condition
    return table.filter(expression)


_TRADE_FILTER_COLUMNS = ("side", "exit_reason", "session_date")


def _trades_table(
    path: PathLike,
    symbol: str | None,
    side: str | None,
    exit_reason: str | None,
    start: date | str | None,
    end: date | str | None,
    columns: Sequence[str] | None,
) -> pa.Table:
    run = Path(path)
    read = None
    if columns is not None:
        read = list(dict.fromkeys([*columns, *_TRADE_FILTER_COLUMNS]))
    if is_portfolio(run):  # one symbol's trades are its rows of all_trades
        name, stored = ALL_TRADES, _portfolio_trades(run, symbol, read)
    else:
        name = ALL_TRADES if symbol is None else symbol_file(_symbol(run, symbol), "trades")
        stored = _read_table(run, name, read)
    try:
        table = _filter_trades(stored, side, exit_reason, start, end)
    except pa.ArrowException as exc:
        raise RunIncomplete(
            f"run {run.name}: {name} does not match run-format.md ({_short_error(exc)}); re-run it"
        ) from None
    return table.select(list(columns)) if columns is not None else table


def load_trades(
    path: PathLike,
    symbol: str | None = None,
    *,
    side: str | None = None,
    exit_reason: str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Trades of one symbol (SYM_trades.parquet; a portfolio run: its rows of all_trades) or all
    (all_trades.parquet), filtered.

    `start`/`end` bound `session_date` (inclusive); `columns` limits what is read from disk.
    """
    return _trades_table(path, symbol, side, exit_reason, start, end, columns).to_pandas()


def trades_page(
    path: PathLike,
    symbol: str | None = None,
    *,
    side: str | None = None,
    exit_reason: str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    offset: int = 0,
    limit: int | None = None,
    rounded: bool = False,
) -> Page:
    """One page of filtered trades as JSON-safe records, plus the number of matching trades; `rounded`
    (the API) rounds floats to store.json_decimals."""
    table = _trades_table(path, symbol, side, exit_reason, start, end, None)
    return Page(total=table.num_rows, records=records(_slice(table, offset, limit), rounded))


def load_fills(path: PathLike, symbol: str) -> pd.DataFrame:
    """SYM_fills.parquet: one row per fill (a portfolio run: the symbol's rows of all_fills)."""
    run = Path(path)
    if is_portfolio(run):
        return load_portfolio_fills(run, symbol)
    return _read_table(run, symbol_file(_symbol(run, symbol), "fills")).to_pandas()


def _equity_table(path: PathLike, symbol: str | None) -> pa.Table:
    run = Path(path)
    if symbol is not None and is_portfolio(run):
        raise OutputNotFound(
            f"run {run.name} is a portfolio run: its only equity is the account's "
            "(combined_equity.parquet); omit the symbol"
        )
    name = COMBINED_EQUITY if symbol is None else symbol_file(_symbol(run, symbol), "equity")
    return _read_table(run, name)


def load_equity(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """Equity of one symbol, or the combined equity when `symbol` is None (columns as stored)."""
    return _plain(_equity_table(path, symbol).to_pandas())


def downsample_equity(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """A new equity frame of at most `max_points` rows (see downsample_positions)."""
    if len(frame) <= max_points:
        return frame.copy()
    drawdown = frame["drawdown_pct"].to_numpy(np.float64) if "drawdown_pct" in frame else None
    keep = downsample_positions(frame["equity"].to_numpy(np.float64), drawdown, max_points)
    return frame.iloc[keep].reset_index(drop=True)


def equity_page(
    path: PathLike, symbol: str | None = None, max_points: int | None = None, rounded: bool = False
) -> Page:
    """Equity points as JSON-safe records (downsampled to `max_points`; `rounded` as in trades_page),
    plus the stored number of points."""
    table = _equity_table(path, symbol)
    return Page(total=table.num_rows, records=records(_downsample_table(table, max_points), rounded))


def load_sessions(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """SYM_sessions.parquet with a `symbol` column first; every symbol's sessions when `symbol` is None.

    A portfolio run answers with its universe rows (universe.parquet columns)."""
    return _sessions_table(path, symbol).to_pandas()


def _sessions_table(path: PathLike, symbol: str | None) -> pa.Table:
    run = Path(path)
    if is_portfolio(run):  # a portfolio run's sessions are its universe rows
        return _portfolio_sessions(run, symbol)
    parts = []
    for sym in symbols(run) if symbol is None else [_symbol(run, symbol)]:
        table = _read_table(run, symbol_file(sym, "sessions"))
        if "symbol" not in table.column_names:
            table = table.add_column(0, "symbol", pa.array([sym] * table.num_rows, pa.string()))
        parts.append(table)
    if not parts:
        return pa.table({"symbol": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def sessions_page(path: PathLike, symbol: str | None = None, rounded: bool = False) -> Page:
    """Sessions as JSON-safe records (every symbol when `symbol` is None; `rounded` as in trades_page)."""
    table = _sessions_table(path, symbol)
    return Page(total=table.num_rows, records=records(table, rounded))


def load_events(path: PathLike, symbol: str) -> pd.DataFrame:
    """SYM_events.parquet: governance and filter events (a portfolio run: the symbol's all_events rows)."""
    run = Path(path)
    if is_portfolio(run):
        return load_portfolio_events(run, symbol)
    return _read_table(run, symbol_file(_symbol(run, symbol), "events")).to_pandas()


def load_bars(path: PathLike, symbol: str, session_date: date | str | None = None) -> pd.DataFrame:
    """SYM_bars.parquet as the bar contract (UTC `timestamp` index); only `session_date`'s bars if given.

    A portfolio run holds bars of the selected symbol-sessions only (bars.parquet)."""
    run = Path(path)
    if is_portfolio(run):
        return load_portfolio_bars(run, symbol, session_date)
    table = _read_table(run, symbol_file(_symbol(run, symbol), "bars"))
    table = one_local_day(run, table, as_date(session_date, "session_date"))
    frame = table.to_pandas()
    if frame.index.name != "timestamp":
        frame = frame.set_index("timestamp")
    return frame


def run_mode(path: PathLike) -> str:
    """The run's mode: "backtest" (manifest without `mode`), "sweep", "walk_forward" or "portfolio"."""
    run = Path(path)
    return _mode(run, _manifest(run))


def has_montecarlo(path: PathLike) -> bool:
    """Whether the run's manifest lists Monte Carlo output."""
    files = _manifest(Path(path)).get("files")
    return isinstance(files, dict) and MONTECARLO_SUMMARY in files


def _metric_ok(key: str, value: Any) -> bool:
    metric = METRICS.get(key)
    if metric is None or value is None:
        return True
    if metric.kind is Kind.BREAKDOWN:
        if isinstance(value, dict):
            return all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
        return isinstance(value, int | list) and not isinstance(value, bool)
    return _number(value, float) is not None


def _checked_metrics(run: Path, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` when every registry key is a finite number or null (breakdowns their shape)."""
    for key, value in values.items():
        if not _metric_ok(key, value):
            raise RunIncomplete(
                f"run {run.name}: metrics.json {where} {key} is {_short(value)}, which does not match "
                "run-format.md (a number or null); re-run the backtest"
            )
    return values


def load_symbol_metrics(path: PathLike, symbol: str | None = None) -> dict[str, Any]:
    """The aggregate metrics (symbol None) or one symbol's metrics from metrics.json (RunIncomplete when
    a value is not a number or null)."""
    run = Path(path)
    metrics = _metrics(run)
    if symbol is None:
        return copy.deepcopy(_checked_metrics(run, metrics["aggregate"], "aggregate"))
    sym = _symbol(run, symbol)
    per_symbol = metrics["per_symbol"].get(sym)
    if not isinstance(per_symbol, dict):
        if is_portfolio(run):
            raise SymbolNotFound(f"{sym} never traded in portfolio run {run.name}: it has no metrics")
        raise SymbolNotFound(f"run {run.name} has no metrics for {sym} (it failed or produced none)")
    return copy.deepcopy(_checked_metrics(run, per_symbol, sym))


def load_manifest(path: PathLike) -> dict[str, Any]:
    """manifest.json of run folder `path` (RunIncomplete when missing or not an object)."""
    return copy.deepcopy(_manifest(Path(path)))


def load_metrics(path: PathLike) -> dict[str, Any]:
    """metrics.json of run folder `path`: {"aggregate": {...}, "per_symbol": {SYM: {...}}} (RunIncomplete
    when a value is not a number or null)."""
    run = Path(path)
    metrics = _metrics(run)
    _checked_metrics(run, metrics["aggregate"], "aggregate")
    for sym, values in metrics["per_symbol"].items():
        if isinstance(values, dict):
            _checked_metrics(run, values, str(sym))
    return copy.deepcopy(metrics)


def load_run_config(path: PathLike) -> dict[str, Any]:
    """config.json of run folder `path`: the fully resolved configuration that ran."""
    return copy.deepcopy(_config(Path(path)))
