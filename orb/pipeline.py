"""One run: per symbol load -> backtest -> metrics; then aggregate and write the run folder.

Data flows one way (docs/architecture.md); orb.runs.write writes the files. They are staged in a
hidden folder that is renamed into place only when everything is written, so a failure or Ctrl-C
leaves no visible run.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from loguru import logger

from orb import __version__, console
from orb.config import Config
from orb.data import VENDORS, LoadedBars, load_symbol, make_vendor
from orb.data.checks import BAD_BARS_REASON
from orb.engine import BacktestResult, EventLoopBacktest
from orb.errors import DataError, SourceUnavailableError
from orb.metrics import aggregate_metrics, combine_equity, symbol_metrics
from orb.runs.layout import RUN_LOG
from orb.runs.write import (
    BacktestArtifacts,
    BarsSnapshots,
    MonteCarloArtifact,
    finish_manifest,
    publish,
    staging,
    start_run,
    write_backtest,
)
from orb.schema import RunMode, SessionStatus, SkipReason

ROUTINE_SKIPS = {
    SkipReason.WARMUP,
    SkipReason.WIDTH_BELOW_MIN,
    SkipReason.WIDTH_ABOVE_MAX,
    SkipReason.ZERO_WIDTH,
}
LIBRARIES = ("pandas", "numpy", "pyarrow", "pydantic", "exchange_calendars", "rich", "loguru")


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for, after validation."""

    symbols: tuple[str, ...]
    start: date | None  # None (file source only): the data's first session
    end: date | None  # None (file source only): the data's last session
    source: str  # yahoo | synthetic | file | alpaca | massive | databento
    output_dir: Path
    data_path: Path | Mapping[str, Path] | None = None  # one path, or SYM -> PATH (--data SYM=PATH)
    cache_dir: Path | None = None
    run_name: str | None = None
    report: bool = False
    quiet: bool = False
    command: str = ""


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    metrics: dict
    failures: dict[str, str]
    skipped: dict[str, dict[str, int]]
    wall_seconds: float
    montecarlo: dict | None = None  # montecarlo_summary.json, when the run has one


def load_all(request: RunRequest, cfg: Config) -> tuple[dict[str, LoadedBars], dict[str, str]]:
    """Bars of every requested symbol with one progress bar (done/total, ETA); failures as
    {symbol: one-line reason}, each logged once as it happens; a failed symbol never stops the others.

    Vendor sources fetch `data.concurrency` symbols at once (their shared rate limit paces the
    requests). Once the source proves unreachable, the remaining symbols are not tried (and not counted
    as done)."""
    vendor = None
    if request.source in VENDORS:
        vendor = make_vendor(request.source, cfg)
        for warning in vendor.warnings:
            logger.warning(warning)
    results: dict[str, LoadedBars | str] = {}
    unreachable: list[str] = []

    def one(sym: str) -> LoadedBars | str:
        if unreachable:
            return f"{sym} not fetched: the source was unreachable for {unreachable[0]}"
        try:
            item = load_symbol(
                sym,
                config=cfg,
                start=request.start,
                end=request.end,
                source=request.source,
                data_path=_path_for(request.data_path, sym),
                cache_dir=request.cache_dir,
                vendor=vendor,
            )
        except DataError as exc:
            if isinstance(exc, SourceUnavailableError):
                unreachable.append(sym)
            logger.opt(exception=True).debug(f"{sym}: load failed")
            return str(exc)
        return item

    workers = cfg.data.concurrency if vendor is not None else 1
    with console.progress(request.quiet) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        label = f"Loading bars ({request.source})"
        task = bar.add_task(label, total=len(request.symbols), rate="")
        futures = {pool.submit(one, sym): sym for sym in request.symbols}
        failed = 0
        for future in as_completed(futures):
            sym = futures[future]
            results[sym] = outcome = future.result()
            if isinstance(outcome, str) and "not fetched" in outcome:
                continue
            _log_outcome(outcome, many=len(request.symbols) > 1)
            failed += isinstance(outcome, str)
            described = f"{label}, {failed} failed" if failed else label  # the bar counts symbols tried
            bar.update(task, advance=1, rate=sym, description=described)
        if unreachable:
            bar.update(task, description=f"Loading bars ({request.source}): stopped, source unreachable")
    loaded = {s: r for s in request.symbols if isinstance(r := results[s], LoadedBars)}
    failures = {s: r for s in request.symbols if isinstance(r := results[s], str)}
    return loaded, failures


def _log_outcome(outcome: LoadedBars | str, many: bool) -> None:
    """A failure is logged as it happens when several symbols load (one alone ends the run anyway)."""
    if isinstance(outcome, str):
        if many:
            logger.warning(outcome)
        return
    for warning in outcome.warnings:
        logger.warning(warning)


def _path_for(data_path: Path | Mapping[str, Path] | None, sym: str) -> Path | None:
    """The --data path of `sym` (a SYM=PATH pairing, or the one path/folder for every symbol)."""
    return data_path.get(sym) if isinstance(data_path, Mapping) else data_path


def no_data_error(failures: dict[str, str]) -> DataError:
    """The one-line error when no symbol could be loaded."""
    first, *others = failures.values()
    if not others:
        return DataError(first)
    untried = [sym for sym, msg in failures.items() if "not fetched" in msg]
    if len(untried) == len(others):
        return DataError(f"{first} ({', '.join(untried)} not tried)")
    return DataError(f"every symbol failed: {'; '.join(failures.values())}")


def _backtest_all(
    loaded: dict[str, LoadedBars],
    request: RunRequest,
    cfg: Config,
    prepared_bars: Callable[[str, pd.DataFrame], None] | None = None,
) -> dict[str, BacktestResult]:
    """Each symbol's backtest; `prepared_bars(symbol, bars)` gets the bars of its result (the snapshot)
    before its loop runs."""
    results: dict[str, BacktestResult] = {}
    with console.progress(request.quiet) as bar:
        for sym, item in loaded.items():
            task = bar.add_task(f"Backtest {sym}", total=max(len(item.bars), 1), rate="")
            started = time.perf_counter()

            def report(done: int, total: int, task=task, started=started) -> None:
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, total=max(total, 1), rate=f"{rate:,.0f} bars/s")

            engine = EventLoopBacktest(cfg, sym)
            skip = dict.fromkeys(item.bad_sessions, BAD_BARS_REASON)
            prepared = engine.prepare(item.bars, request.start, request.end, skip)
            if prepared_bars is not None:
                prepared_bars(sym, prepared.reported_bars())
            results[sym] = engine.run_prepared(prepared, report)
            bar.update(task, completed=bar.tasks[task].total)
            res = results[sym]
            _log_skips(sym, res.sessions)
            logger.info(
                f"{sym}: {console.plural(len(res.trades), 'trade')} over "
                f"{console.plural(len(res.sessions), 'session')} "
                f"({int((res.sessions['status'] == SessionStatus.SKIPPED).sum())} skipped)"
            )
    return results


def _log_skips(sym: str, sessions: pd.DataFrame) -> None:
    """Each skipped session with its reason: data problems at WARNING, warm-up and filters at DEBUG."""
    skipped = sessions[sessions["status"] == SessionStatus.SKIPPED]
    for day, reason in zip(skipped["session_date"], skipped["skip_reason"], strict=True):
        level = "DEBUG" if reason in ROUTINE_SKIPS else "WARNING"
        logger.log(level, f"{sym} {day}: session skipped ({reason})")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions(source: str) -> dict[str, str]:
    from importlib import metadata  # ~12 ms of imports (email, zipfile, ...): on `provenance`'s thread

    clients = {"yahoo": "yfinance", "alpaca": "alpaca-py", "massive": "massive", "databento": "databento"}
    names = (*LIBRARIES, clients[source]) if source in clients else LIBRARIES
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class Provenance:
    """What the manifest records of the code that ran: orb's git commit and the libraries' versions."""

    git_commit: str | None
    libraries: dict[str, str]


def provenance(source: str) -> Provenance:
    """The Provenance of a run from `source` (its vendor's client library included)."""
    return Provenance(_git_commit(), _versions(source))


Analysis = Callable[[pd.DataFrame], MonteCarloArtifact]  # all_trades -> extra files of the run


def run(request: RunRequest, cfg: Config, analyse: Analysis | None = None) -> RunOutcome:
    """Execute a run end to end; raise OrbError when nothing could be saved.

    `analyse` (the CLI's --monte-carlo) gets the run's all_trades; its result is written into the run."""
    started = time.perf_counter()
    run_id = start_run(request.output_dir, request.run_name)
    side = ThreadPoolExecutor(max_workers=1)  # git and the package metadata, read while the bars load
    code = side.submit(provenance, request.source)
    with side, staging(request.output_dir, run_id) as tmp:
        sink = console.add_run_log(tmp / RUN_LOG)
        try:
            logger.debug(f"command: {request.command}")
            logger.debug(f"config sha256 {cfg.sha256()}: {cfg.canonical_json()}")
            loaded, failures = load_all(request, cfg)
            if not loaded:
                raise no_data_error(failures)
            with BarsSnapshots(tmp) as snapshots:  # each written while the next loops run
                results = _backtest_all(loaded, request, cfg, snapshots.start)
                artifacts = backtest_artifacts(results, cfg, analyse)
                hashed = write_backtest(tmp, artifacts, snapshots)
            wall = time.perf_counter() - started
            manifest = build_manifest(request, cfg, run_id, loaded, failures, wall, code=code.result())
            finish_manifest(tmp, manifest, hashed)
            if request.report:  # the report reads the staged run through orb.runs.read: after a manifest
                from orb.report import write_report

                for sym in artifacts.results:
                    logger.info(f"{sym}: report {write_report(tmp, sym).name}")
                manifest["wall_time_seconds"] = round(time.perf_counter() - started, 3)
                finish_manifest(tmp, manifest, hashed)
        finally:
            logger.remove(sink)
        run_dir = publish(tmp, request.output_dir, run_id)
    skipped = {
        sym: res.sessions.loc[res.sessions["status"] == SessionStatus.SKIPPED, "skip_reason"]
        .value_counts()
        .to_dict()
        for sym, res in artifacts.results.items()
    }
    metrics = {"aggregate": artifacts.aggregate, "per_symbol": artifacts.per_symbol}
    mc = artifacts.montecarlo.summary() if artifacts.montecarlo is not None else None
    return RunOutcome(run_dir, metrics, failures, skipped, time.perf_counter() - started, mc)


def backtest_artifacts(
    results: dict[str, BacktestResult], cfg: Config, analyse: Analysis | None = None
) -> BacktestArtifacts:
    """Metrics, all_trades and the combined equity of the symbols' results (each built once)."""
    all_trades = pd.concat([r.trades for r in results.values()], ignore_index=True).sort_values(
        ["entry_time", "symbol"], kind="stable", ignore_index=True
    )
    combined = combine_equity({s: r.equity for s, r in results.items()}, cfg.risk.initial_capital)
    return BacktestArtifacts(
        results=results,
        per_symbol={sym: symbol_metrics(res, cfg) for sym, res in results.items()},
        aggregate=aggregate_metrics(results, cfg, combined),
        all_trades=all_trades,
        combined_equity=combined,
        config=cfg.to_dict(),
        montecarlo=analyse(all_trades) if analyse is not None else None,
    )


def build_manifest(
    request: RunRequest,
    cfg: Config,
    run_id: str,
    loaded: dict[str, LoadedBars],
    failures: dict[str, str],
    wall: float,
    mode: str = RunMode.BACKTEST,
    code: Provenance | None = None,
) -> dict:
    """manifest.json without its file hashes (run-format.md); dates default to the data's own. `code`:
    the run's `provenance`, when it was read already."""
    code = code or provenance(request.source)
    tz = cfg.session.timezone
    first = min(item.bars.index[0] for item in loaded.values()).tz_convert(tz).date()
    last = max(item.bars.index[-1] for item in loaded.values()).tz_convert(tz).date()
    return {
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": request.command,
        "symbols": list(loaded),
        "failed_symbols": failures,
        "mode": str(mode),
        "start": str(request.start or first),
        "end": str(request.end or last),
        "interval": cfg.data.interval,
        "sources": {sym: item.source for sym, item in loaded.items()},
        "data_sha256": {sym: item.sha256 for sym, item in loaded.items()},
        "adjustment": {sym: item.adjustment for sym, item in loaded.items()},  # vendors: split or raw
        "config_sha256": cfg.sha256(),
        "package_version": __version__,
        "git_commit": code.git_commit,
        "python": platform.python_version(),
        "libraries": code.libraries,
        "seed": cfg.data.seed,
        "wall_time_seconds": round(wall, 3),
    }
