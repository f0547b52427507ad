"""The files of a run folder as the reader sees them: safe paths, parsed files in one bounded cache,
strict-JSON rows.

Every path is checked to stay inside the runs folder (run ids by pattern, symlinks by resolving).
Parsed files are cached keyed by (path, mtime_ns, size, inode), so a rewritten file is re-read and new
runs appear without a restart; the cache is bounded in bytes (env ORB_RESULTS_CACHE_MB, default 512).
This is the one cache of the read side. Nothing here writes.

A damaged file is RunIncomplete naming the file and the reason, never another exception: JSON over
MAX_JSON_BYTES or nested deeper than MAX_JSON_DEPTH, a Parquet table whose columns break run-format.md
(orb.runs.columns), or a file whose SHA-256 differs from the manifest's (hashed once per file version).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
from orb.runs.columns import TABLE_COLUMNS, schema_problem, table_kind  # noqa: F401 - re-exported
from orb.runs.layout import (
    CONFIG,
    MANIFEST,
    METRICS,
    MODES,
    MONTECARLO_FILES,
    RUN_ID_PATTERN,
    SWEEP_FILES,
    UNHASHED,
    WALKFORWARD_FILES,
    sha256_file,
)
from orb.schema import RunMode
from orb.symbols import RULE, SYMBOL_PATTERN, is_symbol  # noqa: F401 - SYMBOL_PATTERN re-exported

LATEST_ALIAS = "latest"  # a run id that means "the newest run" (never a folder: runs/latest is a file)
CACHE_BYTES = int(os.environ.get("ORB_RESULTS_CACHE_MB", "512")) * 2**20
MAX_JSON_BYTES = 16 * 2**20  # the runner's JSON files are kilobytes; a bigger one is damage
MAX_JSON_DEPTH = 32  # the runner nests at most a few levels
BACKTEST, SWEEP, WALK_FORWARD = RunMode.BACKTEST, RunMode.SWEEP, RunMode.WALK_FORWARD

PathLike = str | os.PathLike[str]
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)


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


def clear_cache() -> None:
    """Forget every parsed file and run check (tests and long-lived processes after a bulk delete)."""
    _CACHE.clear()


# ---------------------------------------------------------------------------------------------- paths


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_date(value: date | str | None, label: str) -> date | None:
    """`value` (a date, datetime or YYYY-MM-DD text) as a date; ValueError naming `label` otherwise."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{label} {_short(value)} is not a date YYYY-MM-DD") from exc


def date_scalar(value: date, typ: pa.DataType) -> pa.Scalar | str:
    """`value` as a scalar comparable with a session_date column of type `typ`."""
    if pa.types.is_timestamp(typ):
        return pa.scalar(datetime.combine(value, time()), type=pa.timestamp(typ.unit, tz=typ.tz))
    if pa.types.is_date(typ):
        return pa.scalar(value, type=typ)
    return value.isoformat()


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
    """The upper-cased symbol if it follows the one symbol rule (orb.symbols), else InvalidSymbol."""
    if not is_symbol(symbol):
        raise InvalidSymbol(f"symbol {_short(symbol)} is malformed: {RULE}")
    return symbol.upper()


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
    if name == MANIFEST:
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
    if mode == BACKTEST or (mode == WALK_FORWARD and name == METRICS):
        return None
    return (
        f"run {run.name} is a {mode} run: it has no {name} (a backtest output); "
        "pass a backtest's run id (see GET /api/runs)"
    )


# ---------------------------------------------------------------------------------------------- JSON


def _too_deep(value: Any, limit: int) -> bool:
    """Whether parsed JSON `value` nests containers deeper than `limit` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _parse_json(run: Path, name: str, path: Path) -> Any:
    """The parsed file: at most MAX_JSON_BYTES, nested at most MAX_JSON_DEPTH levels."""
    damaged = f"run {run.name}: {name} is unreadable"
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            raise RunIncomplete(
                f"{damaged} (over {MAX_JSON_BYTES >> 20} MB, the limit for a run's JSON file); "
                "re-run the backtest"
            )
        # NaN/Infinity are not JSON; should a writer emit them they read as null.
        value = json.loads(data.decode("utf-8"), parse_constant=lambda _: None)
    except RecursionError:
        value = None
        deep = True
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunIncomplete(f"{damaged} ({_short_error(exc)}); re-run the backtest") from None
    else:
        deep = _too_deep(value, MAX_JSON_DEPTH)
    if deep:
        raise RunIncomplete(f"{damaged} (nested deeper than {MAX_JSON_DEPTH} levels); re-run the backtest")
    return value


def _short_error(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."


def _read_json(run: Path, name: str, shape: Callable[[Any], None] | None = None) -> Any:
    """The parsed file, checked by `shape` (raising RunIncomplete) before its SHA-256 is."""
    path = _member(run, name)

    def load() -> Any:
        value = _parse_json(run, name, path)
        if shape is not None:
            shape(value)
        _check_digest(run, name, path)
        return value

    return _CACHE.get(path, "json", load, lambda v: path.stat().st_size * 8 + 256)


# ---------------------------------------------------------------------------------------------- hashes


def digest(path: Path) -> str:
    """SHA-256 of the file, computed once per file version (the one cache, keyed by its stat)."""
    return _CACHE.get(path, "sha256", lambda: sha256_file(path), lambda _: 160)


def _check_digest(run: Path, name: str, path: Path) -> None:
    """RunIncomplete when the manifest lists `name` with another SHA-256 (a truncated or changed file)."""
    if name in UNHASHED:
        return
    files = _manifest(run).get("files")
    expected = files.get(name) if isinstance(files, dict) else None
    if isinstance(expected, str) and digest(path) != expected:
        raise RunIncomplete(
            f"run {run.name}: {name} does not match its SHA-256 in manifest.json (truncated or changed "
            "after the run); re-run the backtest"
        )


def _manifest(run: Path) -> dict[str, Any]:
    manifest = _read_json(run, MANIFEST)
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


def _metrics(run: Path) -> dict[str, Any]:
    def shape(metrics: Any) -> None:
        if not (
            isinstance(metrics, dict)
            and isinstance(metrics.get("aggregate"), dict)
            and isinstance(metrics.get("per_symbol"), dict)
        ):
            raise RunIncomplete(
                f"run {run.name}: metrics.json lacks 'aggregate' or 'per_symbol'; re-run the backtest"
            )

    return _read_json(run, METRICS, shape)


def _config(run: Path) -> dict[str, Any]:
    def shape(config: Any) -> None:
        if not isinstance(config, dict):
            raise RunIncomplete(f"run {run.name}: config.json is not a JSON object; re-run the backtest")

    return _read_json(run, CONFIG, shape)


# Parsed JSON is cached and shared, so the public readers hand out copies.
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


def _check_schema(run: Path, name: str, schema: pa.Schema) -> None:
    """RunIncomplete when a column a reader needs is missing or a run-format.md column has another type."""
    problem = schema_problem(name, schema)
    if problem is not None:
        raise RunIncomplete(f"run {run.name}: {name} does not match run-format.md ({problem}); re-run it")


def table_schema(run: Path, name: str, path: Path) -> pa.Schema:
    """The Parquet schema of run file `name` (at `path`), checked against TABLE_COLUMNS; read from the
    file's footer once per file version."""

    def load() -> pa.Schema:
        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise RunIncomplete(
                f"run {run.name}: {name} is unreadable ({_short_error(exc)}); re-run the backtest"
            ) from None
        _check_schema(run, name, schema)
        return schema

    return _CACHE.get(path, "schema", load, lambda schema: 64 * len(schema) + 256)


def _read_table(run: Path, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    path = _member(run, name)
    wanted = tuple(columns) if columns is not None else None

    def load() -> pa.Table:
        unreadable = f"run {run.name}: {name} is unreadable"
        schema = table_schema(run, name, path)
        missing = [c for c in wanted or () if c not in schema.names]
        if missing:
            raise ValueError(f"{name} has no column(s) {', '.join(missing)}")
        try:
            table = pq.read_table(path, columns=list(wanted) if wanted is not None else None)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise RunIncomplete(f"{unreadable} ({_short_error(exc)}); re-run the backtest") from None
        _check_digest(run, name, path)
        return table

    return _CACHE.get(path, wanted, load, lambda t: t.nbytes + 1024)


def _slice(table: pa.Table, offset: int, limit: int | None) -> pa.Table:
    if offset >= table.num_rows:
        return table.slice(0, 0)
    return table.slice(offset, limit)


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


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose stored pandas index (if any) is back to a column."""
    if frame.index.name is not None:
        return frame.reset_index()
    return frame


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


PRICE_COLUMNS = frozenset({
    "entry_price", "stop_price", "t1_price", "t2_price", "target_price", "exit_price", "r_per_share",
    "or_high", "or_low", "or_width", "atr", "long_trigger", "short_trigger", "price", "open", "high", "low",
    "close",
})  # fmt: skip
MONEY_COLUMNS = frozenset(
    {"gross_pnl", "commission", "net_pnl", "initial_risk", "equity", "day_pnl", "alloc"}
)
R_COLUMNS = frozenset({"r_multiple", "gross_r", "mfe_r", "mae_r", "cum_r", "drawdown_r", "day_r"})


def json_decimals(column: str) -> int:
    """Decimals a float column keeps in JSON rows: prices 6, money 4 (sub-cent commissions), R 4, others 6.

    Enough for every value the engine computes (prices tick in cents or less) while dropping binary
    noise such as 196.18000000000004; the Parquet files keep full precision.
    """
    if column in MONEY_COLUMNS or column in R_COLUMNS:
        return 4
    return 6


def records(table: pa.Table, rounded: bool = False) -> list[dict[str, Any]]:
    """Rows as dicts fit for strict JSON: NaN/Infinity None, times 'YYYY-MM-DDTHH:MM:SS+00:00', dates ISO;
    with `rounded`, floats rounded to json_decimals(column)."""
    columns = [_json_column(table.column(i), name) for i, name in enumerate(table.column_names)]
    rows = pa.table(columns, names=table.column_names).to_pylist()
    if rounded:
        floats = [
            (name, json_decimals(name))
            for name in table.column_names
            if pa.types.is_floating(table.schema.field(name).type)
        ]
        for row in rows:
            for name, digits in floats:
                value = row[name]
                if value is not None:
                    row[name] = round(value, digits)
    return rows


def one_local_day(run: Path, table: pa.Table, day: date | None) -> pa.Table:
    """`table`'s rows whose UTC `timestamp` falls on local `day` of the run's exchange (all when None)."""
    if day is None:
        return table
    zone = ZoneInfo(str(_config(run).get("session", {}).get("timezone", "America/New_York")))
    lo = datetime.combine(day, time(), zone).astimezone(UTC)
    hi = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    typ = table.schema.field("timestamp").type
    return table.filter(
        (pc.field("timestamp") >= pa.scalar(lo, type=typ)) & (pc.field("timestamp") < pa.scalar(hi, type=typ))
    )
