"""Names of everything in a run folder (run-format.md, docs/research.md), the schema version and hashing.

The one place that spells a run-folder file name: the writer and the reader both take them from here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from orb.schema import RunMode

SCHEMA_VERSION = "1.1"
MODES = tuple(RunMode)
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
TMP_PREFIX = ".tmp-"  # staging folders and temp files under the runs folder
LATEST_FILE = "latest"  # runs/latest: a text file holding the newest run id

MANIFEST = "manifest.json"
CONFIG = "config.json"
METRICS = "metrics.json"
RUN_LOG = "run.log"
UNHASHED = (MANIFEST, RUN_LOG)  # the manifest lists the SHA-256 of every other file

ALL_TRADES = "all_trades.parquet"
ALL_TRADES_CSV = "all_trades.csv"
COMBINED_EQUITY = "combined_equity.parquet"

# Per-symbol files: `SYM_<kind>.<ext>`.
SYMBOL_FILES = {
    "trades": "parquet",
    "fills": "parquet",
    "equity": "parquet",
    "sessions": "parquet",
    "events": "parquet",
    "bars": "parquet",
    "metrics": "json",
    "report": "html",
}

SWEEP_JSON = "sweep.json"
SWEEP_RESULTS = "sweep_results.parquet"
SWEEP_RESULTS_CSV = "sweep_results.csv"
SWEEP_FILES = (SWEEP_JSON, SWEEP_RESULTS, SWEEP_RESULTS_CSV)
AGGREGATE = "*"  # the `symbol` of a sweep's aggregate rows

WALK_FORWARD_JSON = "walk_forward.json"
WF_FOLDS = "wf_folds.parquet"
WF_FOLDS_CSV = "wf_folds.csv"
WF_TRAIN_RESULTS = "wf_train_results.parquet"
WF_OOS_TRADES = "wf_oos_trades.parquet"
WF_OOS_TRADES_CSV = "wf_oos_trades.csv"
WF_OOS_EQUITY = "wf_oos_equity.parquet"
WALKFORWARD_FILES = (
    WALK_FORWARD_JSON,
    WF_FOLDS,
    WF_FOLDS_CSV,
    WF_TRAIN_RESULTS,
    WF_OOS_TRADES,
    WF_OOS_TRADES_CSV,
    WF_OOS_EQUITY,
)

MONTECARLO_SUMMARY = "montecarlo_summary.json"
MONTECARLO_BANDS = "montecarlo_bands.parquet"
MONTECARLO_PATHS = "montecarlo_paths.parquet"
MONTECARLO_FILES = (MONTECARLO_SUMMARY, MONTECARLO_BANDS, MONTECARLO_PATHS)

# Portfolio runs (run-format.md "Portfolio runs"): combined tables with a `symbol` column.
UNIVERSE = "universe.parquet"
ALL_FILLS = "all_fills.parquet"
ALL_EVENTS = "all_events.parquet"
PORTFOLIO_BARS = "bars.parquet"
BENCHMARK = "benchmark.parquet"
PORTFOLIO_REPORT = "portfolio_report.html"  # with --report
PORTFOLIO_FILES = (
    UNIVERSE,
    ALL_TRADES,
    ALL_TRADES_CSV,
    ALL_FILLS,
    ALL_EVENTS,
    PORTFOLIO_BARS,
    COMBINED_EQUITY,
)

# Files a complete run of each mode must have (besides every file its manifest lists).
REQUIRED = {
    RunMode.BACKTEST: (METRICS,),
    RunMode.SWEEP: (SWEEP_JSON, SWEEP_RESULTS),
    RunMode.WALK_FORWARD: (WALK_FORWARD_JSON, WF_FOLDS, WF_OOS_EQUITY, METRICS),
    RunMode.PORTFOLIO: (UNIVERSE, ALL_TRADES, COMBINED_EQUITY, METRICS),
}


def symbol_file(symbol: str, kind: str) -> str:
    """`SYM_<kind>.<ext>`, e.g. symbol_file("SPY", "trades") == "SPY_trades.parquet"."""
    return f"{symbol}_{kind}.{SYMBOL_FILES[kind]}"


def temp_name(run_id: str, pid: int) -> str:
    """The hidden staging folder of run `run_id` written by process `pid`."""
    return f"{TMP_PREFIX}{run_id}-{pid}"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(data: object) -> str:
    """Keys sorted, no whitespace: equal data gives equal text (config.json's `config_sha256`)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def sha256_json(data: object) -> str:
    """SHA-256 of canonical_json(data)."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
