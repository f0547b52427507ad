"""The run registry: in-process DuckDB views over every run folder of a runs folder.

Views: `runs` (manifest fields, mode, tag, config hash and JSON, aggregate metrics as columns),
`trades` (every `all_trades.parquet` with `run_id`), `sessions`, `equity` (per symbol; `symbol` '*'
is the combined curve), `sweep_results` and `folds` (walk-forward `wf_folds.parquet`), each with
`run_id`. Built lazily and rebuilt only when a run folder appears, goes or changes (folder mtimes).
Read-only: only SELECT statements run, and DuckDB may read files inside the runs folder only. A
damaged run folder is left out and reported in `Catalog.skipped`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from orb.errors import OrbError
from orb.runs import read as results
from orb.schema import METRIC_KEYS

SCALAR_METRICS = tuple(k for k in METRIC_KEYS if k != "exit_reasons")
COUNT_METRICS = frozenset(
    {"total_trades", "winning_trades", "losing_trades", "max_consecutive_wins", "max_consecutive_losses"}
    | {"long_trades", "short_trades", "sessions", "sessions_traded", "sessions_skipped"}
)
SCAN_THREADS = 8
VIEWS = ("runs", "trades", "sessions", "equity", "sweep_results", "folds")
_STAMP = re.compile(r"^(?:backtest)_\d{8}_\d{6}(?:_\d+)?(?:_(?P<tag>.+))?$")
_ALLOWED_STATEMENTS = ("SELECT", "EXPLAIN")
# per view: the file name pattern inside a run folder, and how `symbol` comes from the file name
_FILES = {
    "trades": ("all_trades.parquet", None),
    "sessions": ("*_sessions.parquet", "_sessions.parquet"),
    "equity": ("*_equity.parquet", "_equity.parquet"),
    "sweep_results": ("sweep_results.parquet", None),
    "folds": ("wf_folds.parquet", None),
}


class CatalogError(OrbError):
    """A catalog query that cannot run (not a SELECT, unknown column, bad SQL)."""


@dataclass(frozen=True)
class _Run:
    run_id: str
    row: dict[str, Any]
    files: dict[str, list[Path]]


def _tag(run_id: str, command: str) -> str | None:
    parts = command.split()
    if "--run-name" in parts[:-1]:
        return parts[parts.index("--run-name") + 1]
    match = _STAMP.match(run_id)
    return match.group("tag") if match else None


def _scan(path: Path) -> _Run:
    """One run folder's `runs` row and view files; OrbError/OSError/ValueError when damaged."""
    manifest = results.check_run(path)
    mode = results.run_mode(path)
    metrics = results.load_metrics(path).get("aggregate", {}) if (path / "metrics.json").exists() else {}
    config = results.load_run_config(path)
    row: dict[str, Any] = {
        "run_id": path.name,
        "created": pd.Timestamp(manifest["created"]) if manifest.get("created") else None,
        "mode": mode,
        "tag": _tag(path.name, str(manifest.get("command", ""))),
        "symbols": list(manifest.get("symbols", [])),
        "start": manifest.get("start"),
        "end": manifest.get("end"),
        "interval": manifest.get("interval"),
        "seed": manifest.get("seed"),
        "config_sha256": manifest.get("config_sha256"),
        "package_version": manifest.get("package_version"),
        "git_commit": manifest.get("git_commit"),
        "wall_time_seconds": manifest.get("wall_time_seconds"),
        "command": manifest.get("command"),
        "config": json.dumps(config, sort_keys=True),
    }
    for key in SCALAR_METRICS:
        value = metrics.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        row[key] = (int(value) if key in COUNT_METRICS else float(value)) if number else None
    files: dict[str, list[Path]] = {}
    for view, (pattern, _) in _FILES.items():
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if view == "equity" and (path / "combined_equity.parquet").is_file():
            found = [p for p in found if p.name != "combined_equity.parquet"] + [
                path / "combined_equity.parquet"
            ]
        for file in found:
            pq.read_metadata(file)  # a truncated or foreign file makes the folder damaged
        files[view] = found
    return _Run(path.name, row, files)


def _scan_or_reason(path: Path) -> _Run | str:
    """The scanned run, or one line saying why the folder is damaged."""
    try:
        return _scan(path)
    except (OrbError, OSError, ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _view_sql(view: str, paths: list[Path]) -> str:
    if not paths:
        return "SELECT NULL::VARCHAR AS run_id WHERE false"
    run_id = r"regexp_extract(filename, '([^/\\]+)[/\\][^/\\]+$', 1)"
    suffix = _FILES[view][1]
    symbol = ""
    if suffix:
        name = r"regexp_extract(filename, '([^/\\]+)$', 1)"
        symbol = (
            f", CASE WHEN {name} = 'combined_equity.parquet' THEN '*' "
            f"ELSE replace({name}, '{suffix}', '') END AS symbol"
        )
    return (
        f"SELECT {run_id} AS run_id{symbol}, * EXCLUDE (filename) "
        f"FROM read_parquet({_sql_list(paths)}, union_by_name = true, filename = true)"
    )


class Catalog:
    """DuckDB views over `runs_dir`; `query` runs one read-only SELECT."""

    def __init__(self, runs_dir: str | Path) -> None:
        self.root = Path(runs_dir).resolve()
        self.skipped: dict[str, str] = {}
        self._stamp_seen: tuple | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._scanned: dict[str, tuple[int, _Run | str]] = {}
        self._lock = threading.RLock()

    def _stamp(self) -> tuple[tuple[str, int], ...]:
        """(name, mtime) of every visible folder: cheap (no file is read), changes with any run."""
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return ()
        return tuple(
            sorted(
                (e.name, _mtime(Path(e.path))) for e in entries if not e.name.startswith(".") and e.is_dir()
            )
        )

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The connection, rebuilt when a run folder was added, removed or changed."""
        with self._lock:
            stamp = self._stamp()
            if self._con is None or stamp != self._stamp_seen:
                self._con = self._build([self.root / s.run_id for s in results.list_runs(self.root)])
                self._stamp_seen = stamp
            return self._con

    def _build(self, folders: list[Path]) -> duckdb.DuckDBPyConnection:
        scanned: dict[str, tuple[int, _Run | str]] = {}
        todo = []
        for path in folders:
            mtime = _mtime(path)
            hit = self._scanned.get(path.name)
            if hit is not None and hit[0] == mtime:
                scanned[path.name] = hit
            else:
                todo.append((path, mtime))
        with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
            for (path, mtime), item in zip(
                todo, pool.map(_scan_or_reason, [p for p, _ in todo]), strict=True
            ):
                scanned[path.name] = (mtime, item)
        self._scanned = scanned
        good = [item for _, item in scanned.values() if isinstance(item, _Run)]
        self.skipped = {name: item for name, (_, item) in scanned.items() if isinstance(item, str)}
        con = duckdb.connect(":memory:")
        frame = pd.DataFrame([r.row for r in good], columns=_run_columns())
        counts = {k: "Int64" for k in SCALAR_METRICS if k in COUNT_METRICS}
        frame = frame.astype({"created": "datetime64[us, UTC]", "seed": "Int64", **counts})
        con.register("_runs_frame", frame)
        con.execute("CREATE TABLE runs AS SELECT * FROM _runs_frame")
        con.unregister("_runs_frame")
        for view in _FILES:
            con.execute(f"CREATE VIEW {view} AS {_view_sql(view, [f for r in good for f in r.files[view]])}")
        root = str(self.root).replace("'", "''")
        con.execute(f"SET allowed_directories = ['{root}/']")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """The result of one SELECT as a DataFrame; CatalogError for anything else or a failing query."""
        with self._lock:
            con = self.connection()
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise CatalogError(f"SQL does not parse: {_first_line(exc)}") from None
            if len(statements) != 1 or statements[0].type.name not in _ALLOWED_STATEMENTS:
                raise CatalogError("the catalog is read-only: give exactly one SELECT statement")
            try:
                return con.sql(sql, params=params or None).to_arrow_table().to_pandas()
            except duckdb.Error as exc:
                raise CatalogError(f"query failed: {_first_line(exc)}") from None

    def schema(self) -> dict[str, list[tuple[str, str]]]:
        """Each view's columns and DuckDB types."""
        with self._lock:
            con = self.connection()
            out = {}
            for view in VIEWS:
                rows = con.execute(f"DESCRIBE {view}").fetchall()
                out[view] = [(r[0], r[1]) for r in rows]
            return out


def _run_columns() -> list[str]:
    fixed = ["run_id", "created", "mode", "tag", "symbols", "start", "end", "interval", "seed"]
    fixed += ["config_sha256", "package_version", "git_commit", "wall_time_seconds", "command", "config"]
    return fixed + list(SCALAR_METRICS)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


_CATALOGS: dict[Path, Catalog] = {}
_CATALOGS_LOCK = threading.Lock()


def catalog(runs_dir: str | Path) -> Catalog:
    """The shared Catalog of a runs folder (one per process)."""
    root = Path(runs_dir).resolve()
    with _CATALOGS_LOCK:
        if root not in _CATALOGS:
            _CATALOGS[root] = Catalog(root)
        return _CATALOGS[root]


# ---------------------------------------------------------------------------------- fixed queries

LEADERBOARD_COLUMNS = ("run_id", "created", "mode", "tag", "symbols", "start", "end", "total_trades")


def leaderboard(
    runs_dir: str | Path,
    metric: str = "total_r",
    mode: str | None = None,
    symbol: str | None = None,
    limit: int = 20,
    ascending: bool = False,
) -> list[dict[str, Any]]:
    """Runs ranked by an aggregate metric (best first; `ascending` for smaller-is-better), as rows."""
    if metric not in SCALAR_METRICS:
        raise CatalogError(f"unknown metric {metric!r}; use one of {', '.join(SCALAR_METRICS)}")
    where, params = [f'"{metric}" IS NOT NULL'], []
    if mode:
        where.append("mode = ?")
        params.append(mode)
    if symbol:
        where.append("list_contains(symbols, ?)")
        params.append(symbol.upper())
    columns = ", ".join(f'"{c}"' for c in dict.fromkeys((*LEADERBOARD_COLUMNS, metric)))
    order = "ASC" if ascending else "DESC"
    sql = (
        f"SELECT {columns} FROM runs WHERE {' AND '.join(where)} "
        f'ORDER BY "{metric}" {order}, created DESC, run_id LIMIT ?'
    )
    frame = catalog(runs_dir).query(sql, [*params, int(limit)])
    return _records(frame)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe row dicts (timestamps ISO-8601, NaN as None, lists as lists)."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def config_diff(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The dotted key paths whose values differ between the runs: {key: {run_id: value}}."""
    flat = {run_id: _flatten(cfg) for run_id, cfg in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    return {
        key: {run_id: f.get(key) for run_id, f in flat.items()}
        for key in keys
        if len({json.dumps(f.get(key), sort_keys=True) for f in flat.values()}) > 1
    }


def compare(runs_dir: str | Path, run_ids: list[str], max_points: int = 500) -> dict[str, Any]:
    """Aggregate metrics side by side, the config diff and each run's combined equity (downsampled)."""
    root = Path(runs_dir).resolve()
    opened = [results.open_run(root, run_id) for run_id in run_ids]  # "latest" becomes its real id
    paths = {path.name: path for path in opened}
    frame = catalog(root).query(
        "SELECT * EXCLUDE (config, command) FROM runs WHERE list_contains(?, run_id)", [list(paths)]
    )
    rows = {r["run_id"]: r for r in _records(frame)}
    metrics = {key: {run_id: rows.get(run_id, {}).get(key) for run_id in paths} for key in SCALAR_METRICS}
    equity = {}
    for run_id, path in paths.items():
        if rows.get(run_id, {}).get("mode") == "sweep":
            continue  # a sweep has no single equity curve
        try:
            equity[run_id] = results.equity_page(path, None, max_points).records
        except OrbError:
            continue
    return {
        "run_ids": list(paths),
        "runs": [rows[r] for r in paths if r in rows],
        "metrics": metrics,
        "config_diff": config_diff({r: results.load_run_config(p) for r, p in paths.items()}),
        "equity": equity,
    }


def delete_run(runs_dir: str | Path, run_id: str) -> None:
    """Remove a run folder atomically (renamed to a hidden temp name, then deleted); `latest` then
    names the newest remaining run (or is removed)."""
    root = Path(runs_dir).resolve()
    path = results.run_dir(root, results.validate_run_id(run_id))
    hidden = root / f".tmp-deleted-{path.name}-{os.getpid()}"
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)
    latest = root / results.LATEST_FILE
    named = latest.read_text(encoding="utf-8").strip() if latest.is_file() else None
    if named is not None and named != path.name and (root / named).is_dir():
        return
    remaining = [s.run_id for s in results.list_runs(root) if s.status == "complete"]
    if remaining:
        tmp = root / f".tmp-latest-{os.getpid()}"
        tmp.write_text(remaining[0] + "\n", encoding="utf-8")
        os.replace(tmp, latest)
    else:
        latest.unlink(missing_ok=True)
