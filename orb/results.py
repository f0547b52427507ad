"""Read side of run folders (run-format.md): the one reader used by the dashboard and the API.

A run's manifest `mode` says what it holds: "backtest" (also when the key is missing), "sweep" or
"walk_forward" (docs/research.md); backtests and walk-forwards may also hold Monte Carlo files. A
file the run's mode never writes is OutputNotFound (404 in the API); a file the run should have but
lacks is RunIncomplete.

Every path is checked to stay inside the runs folder (run ids by pattern, symlinks by resolving).
Parsed files are cached keyed by (path, mtime_ns, size, inode), so a rewritten file is re-read and
new runs appear without a restart. Nothing here writes or recomputes what a run file holds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orb.errors import OrbError
from orb.schema import METRIC_KEYS
from orb.writer import sha256_file

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^=_-]{0,31}$"
LATEST_FILE = "latest"
LATEST_ALIAS = "latest"  # a run id that means "the newest run" (never a folder: runs/latest is a file)
CACHE_BYTES = int(os.environ.get("ORB_RESULTS_CACHE_MB", "512")) * 2**20

PathLike = str | os.PathLike[str]
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


class ResultsError(OrbError):
    """A run folder cannot answer a read."""


class InvalidRunId(ResultsError, ValueError):
    """A run id that breaks RUN_ID_PATTERN (it could never name a run folder)."""

    param = "run_id"


class InvalidSymbol(ResultsError, ValueError):
    """A symbol that breaks SYMBOL_PATTERN."""

    param = "symbol"


class RunNotFound(ResultsError, LookupError):
    """No run folder with that id inside the runs folder."""


class SymbolNotFound(ResultsError, LookupError):
    """The run exists but did not test that symbol."""


class OutputNotFound(RunNotFound):
    """The run exists but does not produce that output (a sweep has no trades, a backtest no sweep)."""


class RunIncomplete(ResultsError, RuntimeError):
    """The run folder is damaged: manifest missing or unreadable, or a listed file missing or unreadable."""


BACKTEST, SWEEP, WALK_FORWARD = "backtest", "sweep", "walk_forward"
MODES = (BACKTEST, SWEEP, WALK_FORWARD)
SWEEP_FILES = ("sweep.json", "sweep_results.parquet", "sweep_results.csv")
WALKFORWARD_FILES = (
    "walk_forward.json",
    "wf_folds.parquet",
    "wf_folds.csv",
    "wf_train_results.parquet",
    "wf_oos_trades.parquet",
    "wf_oos_trades.csv",
    "wf_oos_equity.parquet",
)
MONTECARLO_FILES = ("montecarlo_summary.json", "montecarlo_bands.parquet", "montecarlo_paths.parquet")
MONTECARLO_STATS = ("total_r", "max_drawdown_r", "longest_losing_streak")
PERCENTILE_KEYS = ("p5", "p25", "p50", "p75", "p95")
# Files a complete run of each mode must have (besides every file its manifest lists).
_REQUIRED = {
    BACKTEST: ("metrics.json",),
    SWEEP: ("sweep.json", "sweep_results.parquet"),
    WALK_FORWARD: ("walk_forward.json", "wf_folds.parquet", "wf_oos_equity.parquet", "metrics.json"),
}


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
    mode: str = BACKTEST  # "backtest" | "sweep" | "walk_forward" (manifest `mode`)


@dataclass(frozen=True)
class Page:
    """A slice of a filtered table: `total` rows matched, `records` are JSON-safe row dicts."""

    total: int
    records: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------- cache


class _Cache:
    """LRU of parsed files: one entry per (path, variant), replaced when the file's stat changes."""

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[tuple[str, Any], tuple[tuple[int, int, int], Any, int]] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes
        self._lock = threading.Lock()

    def get(self, file: Path, variant: Any, load: Callable[[], Any], size_of: Callable[[Any], int]) -> Any:
        st = file.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        key = (str(file), variant)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(key)
                return hit[1]
        value = load()
        nbytes = size_of(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._items[key] = (stamp, value, nbytes)
            self._bytes += nbytes
            while self._bytes > self._max and len(self._items) > 1:
                _, (_, _, freed) = self._items.popitem(last=False)
                self._bytes -= freed
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_CACHE = _Cache(CACHE_BYTES)
_CHECKED: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}  # run folder -> (folder stamp, manifest)


def clear_cache() -> None:
    """Forget every parsed file and run check (tests and long-lived processes after a bulk delete)."""
    _CACHE.clear()
    _CHECKED.clear()


# ---------------------------------------------------------------------------------------------- paths


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _inside(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)


def resolve_runs_dir(cli_value: PathLike | None = None) -> Path:
    """The runs folder: `--runs-dir`/`--output-dir` value, else env ORB_RUNS_DIR, else ./runs (absolute)."""
    value = cli_value or os.environ.get("ORB_RUNS_DIR") or "runs"
    return Path(value).expanduser().resolve()


def validate_run_id(run_id: object) -> str:
    """`run_id` if it matches RUN_ID_PATTERN, else InvalidRunId."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise InvalidRunId(
            f"run id {_short(run_id)} is malformed: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit (see GET /api/runs)"
        )
    return run_id


def validate_symbol(symbol: object) -> str:
    """The upper-cased symbol if it matches SYMBOL_PATTERN, else InvalidSymbol."""
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        raise InvalidSymbol(f"symbol {_short(symbol)} is malformed: use a ticker like SPY or BRK-B")
    return symbol.upper()


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


def _member(run: Path, name: str, base: Path | None = None) -> Path:
    """The file `name` of run folder `run` (resolved: `base`), refusing names or symlinks that leave it."""
    base = base or run.resolve()
    path = base / name
    try:
        plain = "/" not in name and name not in ("", ".", "..") and not stat.S_ISLNK(os.lstat(path).st_mode)
        if not plain:
            path = path.resolve()
    except (OSError, ValueError):  # missing, or a name the OS refuses (NUL)
        plain = False
    if not plain and not _inside(path, base):
        raise RunIncomplete(f"run {run.name}: {_short(name)} points outside the run folder")
    if not path.is_file():
        absent = _not_produced(run, name)
        if absent is not None:
            raise OutputNotFound(absent)
        raise RunIncomplete(f"run {run.name} is incomplete: {name} is missing; re-run the backtest")
    return path


def _not_produced(run: Path, name: str) -> str | None:
    """Why `name` is not an output of `run` (its mode never writes it), or None when it should be there."""
    if name == "manifest.json":
        return None
    try:
        manifest = _manifest(run)
        mode = _mode(run, manifest)
    except RunIncomplete:
        return None
    files = manifest.get("files")
    if isinstance(files, dict) and name in files:
        return None
    if name in MONTECARLO_FILES:
        return (
            f"run {run.name} has no Monte Carlo output ({name}); make one with "
            "`python run_backtest.py ... --monte-carlo N`"
        )
    if name in SWEEP_FILES:
        return None if mode == SWEEP else f"run {run.name} is a {mode} run, not a sweep: it has no {name}"
    if name in WALKFORWARD_FILES:
        if mode == WALK_FORWARD:
            return None
        return f"run {run.name} is a {mode} run, not a walk-forward: it has no {name}"
    if mode == BACKTEST or (mode == WALK_FORWARD and name == "metrics.json"):
        return None
    return (
        f"run {run.name} is a {mode} run: it has no {name} (a backtest output); "
        "pass a backtest's run id (see GET /api/runs)"
    )


# ---------------------------------------------------------------------------------------------- JSON


def _read_json(run: Path, name: str) -> Any:
    path = _member(run, name)

    def load() -> Any:
        try:
            # NaN/Infinity are not JSON; should a writer emit them they read as null.
            return json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda _: None)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RunIncomplete(f"run {run.name}: {name} is unreadable ({exc}); re-run the backtest") from exc

    return _CACHE.get(path, "json", load, lambda v: path.stat().st_size * 8 + 256)


def _manifest(run: Path) -> dict[str, Any]:
    manifest = _read_json(run, "manifest.json")
    if not isinstance(manifest, dict):
        raise RunIncomplete(f"run {run.name}: manifest.json is not a JSON object; re-run the backtest")
    return manifest


def _mode(run: Path, manifest: dict[str, Any]) -> str:
    mode = manifest.get("mode", BACKTEST)
    if mode not in MODES:
        raise RunIncomplete(
            f"run {run.name}: manifest.json mode {_short(mode)} is not one of {', '.join(MODES)}; "
            "update orb or re-run it"
        )
    return mode


def run_mode(path: PathLike) -> str:
    """The run's mode: "backtest" (manifest without `mode`), "sweep" or "walk_forward"."""
    run = Path(path)
    return _mode(run, _manifest(run))


def has_montecarlo(path: PathLike) -> bool:
    """Whether the run's manifest lists Monte Carlo output."""
    files = _manifest(Path(path)).get("files")
    return isinstance(files, dict) and MONTECARLO_FILES[0] in files


def _metrics(run: Path) -> dict[str, Any]:
    metrics = _read_json(run, "metrics.json")
    if not (
        isinstance(metrics, dict)
        and isinstance(metrics.get("aggregate"), dict)
        and isinstance(metrics.get("per_symbol"), dict)
    ):
        raise RunIncomplete(
            f"run {run.name}: metrics.json lacks 'aggregate' or 'per_symbol'; re-run the backtest"
        )
    return metrics


def load_symbol_metrics(path: PathLike, symbol: str | None = None) -> dict[str, Any]:
    """The aggregate metrics (symbol None) or one symbol's metrics from metrics.json."""
    run = Path(path)
    metrics = _metrics(run)
    if symbol is None:
        return copy.deepcopy(metrics["aggregate"])
    sym = _symbol(run, symbol)
    per_symbol = metrics["per_symbol"].get(sym)
    if not isinstance(per_symbol, dict):
        raise SymbolNotFound(f"run {run.name} has no metrics for {sym} (it failed or produced none)")
    return copy.deepcopy(per_symbol)


def _config(run: Path) -> dict[str, Any]:
    config = _read_json(run, "config.json")
    if not isinstance(config, dict):
        raise RunIncomplete(f"run {run.name}: config.json is not a JSON object; re-run the backtest")
    return config


# Parsed JSON is cached and shared, so the public readers hand out copies.


def load_manifest(path: PathLike) -> dict[str, Any]:
    """manifest.json of run folder `path` (RunIncomplete when missing or not an object)."""
    return copy.deepcopy(_manifest(Path(path)))


def load_metrics(path: PathLike) -> dict[str, Any]:
    """metrics.json of run folder `path`: {"aggregate": {...}, "per_symbol": {SYM: {...}}}."""
    return copy.deepcopy(_metrics(Path(path)))


def load_config(path: PathLike) -> dict[str, Any]:
    """config.json of run folder `path`: the fully resolved configuration that ran."""
    return copy.deepcopy(_config(Path(path)))


def symbols(path: PathLike) -> list[str]:
    """The symbols of the run (manifest order)."""
    run = Path(path)
    listed = _manifest(run).get("symbols")
    if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
        raise RunIncomplete(
            f"run {run.name}: manifest.json 'symbols' is not a list of names; re-run the backtest"
        )
    return list(listed)


def _symbol(run: Path, symbol: str) -> str:
    sym = validate_symbol(symbol)
    known = symbols(run)
    if sym not in known:
        failed = _manifest(run).get("failed_symbols")
        if isinstance(failed, dict) and sym in failed:
            raise SymbolNotFound(f"symbol {sym} failed in run {run.name}: {failed[sym]}")
        raise SymbolNotFound(f"symbol {sym} is not in run {run.name} (symbols: {', '.join(known) or 'none'})")
    return sym


# ---------------------------------------------------------------------------------------------- validation


def _check_run(run: Path, verify: bool = False) -> dict[str, Any]:
    folder = os.stat(run)
    stamp = (folder.st_mtime_ns, folder.st_ino)
    manifest = _manifest(run)
    hit = _CHECKED.get(str(run))
    if not verify and hit is not None and hit[0] == stamp and hit[1] is manifest:
        return manifest
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise RunIncomplete(f"run {run.name}: manifest.json lists no files; re-run the backtest")
    mode = _mode(run, manifest)
    base = run.resolve()
    for name, digest in files.items():
        member = _member(run, name, base)
        if verify and sha256_file(member) != digest:
            raise RunIncomplete(f"run {run.name}: {name} does not match its SHA-256 in manifest.json")
    for name in _REQUIRED[mode]:
        try:
            _member(run, name, base)
        except OutputNotFound:  # a file this mode writes, missing and not listed
            raise RunIncomplete(f"run {run.name} is incomplete: {name} is missing; re-run it") from None
    if mode != SWEEP:
        _metrics(run)
    _CHECKED[str(run)] = (stamp, manifest)
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
            aggregate = _metrics(run)["aggregate"]
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


def list_runs(runs_dir: PathLike) -> list[RunSummary]:
    """Every run folder, newest first (manifest `created`, else folder mtime); damaged ones "incomplete"."""
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


def _read_table(run: Path, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    path = _member(run, name)
    wanted = tuple(columns) if columns is not None else None

    def load() -> pa.Table:
        try:
            if wanted is not None:
                present = set(pq.read_schema(path).names)
                missing = [c for c in wanted if c not in present]
                if missing:
                    raise ValueError(f"{name} has no column(s) {', '.join(missing)}")
            return pq.read_table(path, columns=list(wanted) if wanted is not None else None)
        except (OSError, pa.ArrowException) as exc:
            raise RunIncomplete(f"run {run.name}: {name} is unreadable ({exc}); re-run the backtest") from exc

    return _CACHE.get(path, wanted, load, lambda t: t.nbytes + 1024)


def _date_scalar(value: date, typ: pa.DataType) -> pa.Scalar | str:
    """`value` as a scalar comparable with a session_date column of type `typ`."""
    if pa.types.is_timestamp(typ):
        return pa.scalar(datetime.combine(value, time()), type=pa.timestamp(typ.unit, tz=typ.tz))
    if pa.types.is_date(typ):
        return pa.scalar(value, type=typ)
    return value.isoformat()


def _as_date(value: date | str | None, label: str) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{label} {_short(value)} is not a date YYYY-MM-DD") from exc


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
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if first is not None or last is not None:
        typ = table.schema.field("session_date").type
        if first is not None:
            conditions.append(pc.field("session_date") >= _date_scalar(first, typ))
        if last is not None:
            conditions.append(pc.field("session_date") <= _date_scalar(last, typ))
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
    name = "all_trades.parquet" if symbol is None else f"{_symbol(run, symbol)}_trades.parquet"
    read = None
    if columns is not None:
        read = list(dict.fromkeys([*columns, *_TRADE_FILTER_COLUMNS]))
    table = _filter_trades(_read_table(run, name, read), side, exit_reason, start, end)
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
    """Trades of one symbol (SYM_trades.parquet) or all (all_trades.parquet), filtered.

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
) -> Page:
    """One page of filtered trades as JSON-safe records, plus the number of matching trades."""
    table = _trades_table(path, symbol, side, exit_reason, start, end, None)
    return Page(total=table.num_rows, records=records(_slice(table, offset, limit)))


def _slice(table: pa.Table, offset: int, limit: int | None) -> pa.Table:
    if offset >= table.num_rows:
        return table.slice(0, 0)
    return table.slice(offset, limit)


def load_fills(path: PathLike, symbol: str) -> pd.DataFrame:
    """SYM_fills.parquet: one row per fill."""
    run = Path(path)
    return _read_table(run, f"{_symbol(run, symbol)}_fills.parquet").to_pandas()


def _equity_table(path: PathLike, symbol: str | None) -> pa.Table:
    run = Path(path)
    name = "combined_equity.parquet" if symbol is None else f"{_symbol(run, symbol)}_equity.parquet"
    return _read_table(run, name)


def load_equity(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """Equity of one symbol, or the combined equity when `symbol` is None (columns as stored)."""
    return _plain(_equity_table(path, symbol).to_pandas())


def downsample_positions(equity: np.ndarray, drawdown: np.ndarray | None, max_points: int) -> np.ndarray:
    """Sorted row positions to keep so that at most `max_points` (>= 2) remain.

    Keeps the first and last rows and, in each of (max_points - 2) // 3 equal buckets between them,
    the highest equity, the deepest drawdown and the highest equity before that drawdown point, so the
    maximum drawdown of the kept points equals the full curve's. `drawdown` (e.g. drawdown_pct) is
    only used to pick points; without it the relative drawdown of `equity` is used.
    """
    n = len(equity)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    high = np.where(np.isnan(equity), -np.inf, equity)
    if drawdown is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = equity / np.maximum.accumulate(high) - 1
    depth = np.where(np.isnan(drawdown), np.inf, drawdown)
    keep = {0, n - 1}
    edges = np.linspace(1, n - 1, (max_points - 2) // 3 + 1).astype(np.int64)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            trough = lo + int(np.argmin(depth[lo:hi]))
            keep.update(
                (trough, lo + int(np.argmax(high[lo:hi])), lo + int(np.argmax(high[lo : trough + 1])))
            )
    return np.array(sorted(keep), dtype=np.int64)


def _downsample_table(table: pa.Table, max_points: int | None) -> pa.Table:
    if max_points is None or table.num_rows <= max_points:
        return table
    equity = table.column("equity").to_numpy(zero_copy_only=False).astype(np.float64)
    drawdown = None
    if "drawdown_pct" in table.column_names:
        drawdown = table.column("drawdown_pct").to_numpy(zero_copy_only=False).astype(np.float64)
    return table.take(pa.array(downsample_positions(equity, drawdown, max_points)))


def downsample_equity(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """A new equity frame of at most `max_points` rows (see downsample_positions)."""
    if len(frame) <= max_points:
        return frame.copy()
    drawdown = frame["drawdown_pct"].to_numpy(np.float64) if "drawdown_pct" in frame else None
    keep = downsample_positions(frame["equity"].to_numpy(np.float64), drawdown, max_points)
    return frame.iloc[keep].reset_index(drop=True)


def equity_page(path: PathLike, symbol: str | None = None, max_points: int | None = None) -> Page:
    """Equity points as JSON-safe records (downsampled to `max_points`), plus the stored number of points."""
    table = _equity_table(path, symbol)
    return Page(total=table.num_rows, records=records(_downsample_table(table, max_points)))


def load_sessions(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """SYM_sessions.parquet with a `symbol` column first; every symbol's sessions when `symbol` is None."""
    return _sessions_table(path, symbol).to_pandas()


def _sessions_table(path: PathLike, symbol: str | None) -> pa.Table:
    run = Path(path)
    parts = []
    for sym in symbols(run) if symbol is None else [_symbol(run, symbol)]:
        table = _read_table(run, f"{sym}_sessions.parquet")
        if "symbol" not in table.column_names:
            table = table.add_column(0, "symbol", pa.array([sym] * table.num_rows, pa.string()))
        parts.append(table)
    if not parts:
        return pa.table({"symbol": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def sessions_page(path: PathLike, symbol: str | None = None) -> Page:
    """Sessions as JSON-safe records (every symbol when `symbol` is None)."""
    table = _sessions_table(path, symbol)
    return Page(total=table.num_rows, records=records(table))


def load_events(path: PathLike, symbol: str) -> pd.DataFrame:
    """SYM_events.parquet: governance and filter events."""
    run = Path(path)
    return _read_table(run, f"{_symbol(run, symbol)}_events.parquet").to_pandas()


def load_bars(path: PathLike, symbol: str, session_date: date | str | None = None) -> pd.DataFrame:
    """SYM_bars.parquet as the bar contract (UTC `timestamp` index); only `session_date`'s bars if given."""
    run = Path(path)
    table = _read_table(run, f"{_symbol(run, symbol)}_bars.parquet")
    day = _as_date(session_date, "session_date")
    if day is not None:
        zone = ZoneInfo(str(_config(run).get("session", {}).get("timezone", "America/New_York")))
        lo = datetime.combine(day, time(), zone).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
        typ = table.schema.field("timestamp").type
        table = table.filter(
            (pc.field("timestamp") >= pa.scalar(lo, type=typ))
            & (pc.field("timestamp") < pa.scalar(hi, type=typ))
        )
    frame = table.to_pandas()
    if frame.index.name != "timestamp":
        frame = frame.set_index("timestamp")
    return frame


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose stored pandas index (if any) is back to a column."""
    if frame.index.name is not None:
        return frame.reset_index()
    return frame


# ---------------------------------------------------------------------------------------------- research

AGGREGATE = "*"  # the `symbol` of a sweep's aggregate rows
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
    return _research_json(run, "sweep.json", {"keys": list, "rank_by": str, "invalid": list})


def _walkforward_info(run: Path) -> dict[str, Any]:
    return _research_json(run, "walk_forward.json", {"keys": list, "rank_by": str, "robustness": dict})


def _montecarlo_summary(run: Path) -> dict[str, Any]:
    return _research_json(
        run, "montecarlo_summary.json", {"n_paths": int, "percentiles": dict, "observed": dict}
    )


def sweep_info(path: PathLike) -> dict[str, Any]:
    """sweep.json of a sweep run (OutputNotFound for other runs)."""
    return copy.deepcopy(_sweep_info(Path(path)))


def load_sweep(path: PathLike) -> SweepResults:
    """sweep.json and sweep_results.parquet of a sweep run (OutputNotFound for other runs)."""
    run = Path(path)
    info = copy.deepcopy(_sweep_info(run))
    return SweepResults(info=info, table=_read_table(run, "sweep_results.parquet").to_pandas())


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
    table = _read_table(run, "sweep_results.parquet")
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
        folds=_read_table(run, "wf_folds.parquet").to_pandas(),
        trades=_read_table(run, "wf_oos_trades.parquet").to_pandas(),
        equity=_plain(_read_table(run, "wf_oos_equity.parquet").to_pandas()),
        metrics=load_metrics(run),
    )


def walkforward_folds_page(path: PathLike) -> Page:
    """wf_folds as JSON-safe records (dates YYYY-MM-DD), one per fold."""
    run = Path(path)
    _walkforward_info(run)
    table = _read_table(run, "wf_folds.parquet")
    return Page(total=table.num_rows, records=records(table))


def walkforward_equity_page(path: PathLike, max_points: int | None = None) -> Page:
    """The stitched out-of-sample equity (with its `fold`), downsampled like equity_page."""
    run = Path(path)
    _walkforward_info(run)
    table = _read_table(run, "wf_oos_equity.parquet")
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
        bands=_read_table(run, "montecarlo_bands.parquet").to_pandas(),
        paths=_read_table(run, "montecarlo_paths.parquet").to_pandas(),
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
    table = _read_table(run, "montecarlo_bands.parquet")
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
    table = _read_table(run, "montecarlo_paths.parquet")
    if stat not in table.column_names:
        raise RunIncomplete(f"run {run.name}: montecarlo_paths.parquet has no {stat} column; re-run it")
    column = table.column(stat)
    dtype = np.float64 if pa.types.is_floating(column.type) else None
    values = column.to_numpy() if dtype is None else column.to_numpy().astype(dtype)
    return histogram(np.asarray(values), bins)


# ---------------------------------------------------------------------------------------------- JSON rows


def _json_column(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """`column` with NaN/Infinity as null, times as ISO strings with +00:00 and dates as YYYY-MM-DD."""
    typ = column.type
    if pa.types.is_floating(typ):
        return pc.if_else(pc.is_finite(column), column, pa.scalar(None, typ))
    if pa.types.is_timestamp(typ):
        if typ.tz is None and name == "session_date":
            return pc.cast(pc.cast(column, pa.date32()), pa.string())
        utc = pc.cast(column, pa.timestamp(typ.unit, "UTC"))  # naive times are UTC by contract
        with contextlib.suppress(pa.ArrowInvalid):  # whole seconds print without a fraction
            utc = pc.cast(utc, pa.timestamp("s", "UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S+00:00")
    if pa.types.is_date(typ):
        return pc.cast(column, pa.string())
    return column


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts fit for strict JSON: NaN/Infinity None, times 'YYYY-MM-DDTHH:MM:SS+00:00', dates ISO."""
    columns = [_json_column(table.column(i), name) for i, name in enumerate(table.column_names)]
    return pa.table(columns, names=table.column_names).to_pylist()
