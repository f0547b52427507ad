"""The write side of the run folder (run-format.md): atomic, hashed, byte-identical on reruns.

A run is written into a hidden `.tmp-<id>-<pid>` folder under the output directory (`staging`) and
renamed into place only when complete (`publish`); `latest` is updated last. Run ids are reserved
atomically (`reserve_run_id`); temp folders and files of dead processes are swept
(`sweep_crash_leftovers`). Compute modules return artifacts (the engine's
BacktestResult, the research modules' frozen dataclasses); the `write_*` functions of this module are
the only code that turns them into files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from orb.engine import BacktestResult
from orb.errors import OutputError
from orb.runs import layout as L
from orb.runs.csvfile import csv_bytes
from orb.runs.layout import SCHEMA_VERSION, TMP_PREFIX, sha256_file

TIME_COLUMNS = ("entry_time", "exit_time", "breakeven_time", "time", "timestamp")


class MonteCarloArtifact(Protocol):
    """What a Monte Carlo bootstrap hands the writer (orb.research.montecarlo.MonteCarloResult)."""

    @property
    def bands(self) -> pd.DataFrame: ...

    def summary(self) -> dict[str, Any]: ...

    def paths(self) -> pd.DataFrame: ...


@dataclass(frozen=True, eq=False)
class BacktestArtifacts:
    """Everything a backtest run folder holds besides the manifest and the log."""

    results: Mapping[str, BacktestResult]  # symbol -> the engine's frames
    per_symbol: dict[str, dict]  # symbol -> metrics
    aggregate: dict
    all_trades: pd.DataFrame
    combined_equity: pd.DataFrame
    config: dict  # the resolved configuration (Config.to_dict())
    montecarlo: MonteCarloArtifact | None = None


@dataclass(frozen=True, eq=False)
class SweepArtifacts:
    """A sweep's ranked results table and its sweep.json."""

    table: pd.DataFrame
    info: dict[str, Any]
    config: dict


@dataclass(frozen=True, eq=False)
class WalkForwardArtifacts:
    """A walk-forward's folds, train results, stitched out-of-sample trades/equity/metrics and its json."""

    folds: pd.DataFrame
    train_results: pd.DataFrame
    oos_trades: pd.DataFrame
    oos_equity: pd.DataFrame
    metrics: dict  # {"aggregate": ..., "per_symbol": ...} of the stitched out-of-sample run
    info: dict[str, Any]
    config: dict
    montecarlo: MonteCarloArtifact | None = None


# ---------------------------------------------------------------------------------------------- folder


def ensure_writable(output_dir: Path) -> None:
    """Fail before any work when the output directory cannot hold a run (probe with a real file)."""
    probe = output_dir / f"{TMP_PREFIX}probe-{os.getpid()}"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(
            f"output directory {output_dir} is not writable ({reason}); choose another with --output-dir"
        ) from None
    finally:  # also on Ctrl-C between the write and here: no probe is left behind
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def base_run_id(now: datetime, run_name: str | None) -> str:
    """`backtest_YYYYMMDD_HHMMSS` in local time, with the optional tag appended."""
    run_id = now.strftime("backtest_%Y%m%d_%H%M%S")
    return f"{run_id}_{run_name}" if run_name else run_id


LEFTOVER_AGE_SECONDS = 3600  # a temp file whose owner cannot be told is swept only when this old


def sweep_crash_leftovers(output_dir: Path) -> list[Path]:
    """Remove temp folders and files left by crashed runs: staging folders, `.tmp-probe-<pid>`,
    `.tmp-latest-<pid>` and id reservations (`.tmp-<id>.id` holding the pid) whose process is gone
    (a temp file naming no pid only when older than LEFTOVER_AGE_SECONDS); return what was removed."""
    removed = []
    for path in output_dir.glob(f"{TMP_PREFIX}*"):
        try:
            is_dir = path.is_dir() and not path.is_symlink()
            owner = (
                _reservation_pid(path) if path.name.endswith(RESERVATION) else path.name.rsplit("-", 1)[-1]
            )
            if owner.isdigit():
                if _alive(int(owner)):
                    continue
            elif not is_dir and time.time() - path.lstat().st_mtime < LEFTOVER_AGE_SECONDS:
                continue
            if is_dir:
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
        removed.append(path)
    return removed


def _reservation_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()[:12]
    except (OSError, UnicodeDecodeError):
        return ""


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_run(output_dir: Path, run_name: str | None, now: datetime | None = None) -> str:
    """Check the output directory, sweep crash leftovers and reserve the new run's id."""
    ensure_writable(output_dir)
    for stale in sweep_crash_leftovers(output_dir):
        logger.debug(f"removed the temp folder of a crashed run: {stale}")
    return reserve_run_id(output_dir, base_run_id(now or datetime.now(), run_name))


@contextmanager
def staging(output_dir: Path, run_id: str) -> Iterator[Path]:
    """A hidden temp folder for a run; removed if the block raises (Ctrl-C included)."""
    tmp = output_dir / L.temp_name(run_id, os.getpid())
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot create {tmp} ({exc.strerror}); check --output-dir") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        release_run_id(output_dir, run_id)
        raise


RESERVATION = ".id"  # `.tmp-<run_id>.id`: created with O_EXCL, it holds the reserving process's pid


def _reservation(output_dir: Path, run_id: str) -> Path:
    return output_dir / f"{TMP_PREFIX}{run_id}{RESERVATION}"


def reserve_run_id(output_dir: Path, base: str) -> str:
    """The first of `base`, `base_2`, ... not taken by a run, reserved atomically for this process (an
    O_EXCL `.tmp-<id>.id` file, so two processes never get the same id; `publish` releases it)."""
    for n in range(1, 1000):
        run_id = base if n == 1 else f"{base}_{n}"
        if (output_dir / run_id).exists() or any(output_dir.glob(f"{TMP_PREFIX}{run_id}-*")):
            continue
        try:
            fd = os.open(_reservation(output_dir, run_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(
                f"cannot reserve a run id in {output_dir} ({exc.strerror}); check --output-dir"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        if (output_dir / run_id).exists():  # published by a writer that reserved nothing
            release_run_id(output_dir, run_id)
            continue
        return run_id
    raise OutputError(f"too many runs named {base} in {output_dir}; use --run-name")


def release_run_id(output_dir: Path, run_id: str) -> None:
    """Drop this process's reservation of `run_id` (after publishing it, or when the run failed)."""
    with contextlib.suppress(OSError):
        _reservation(output_dir, run_id).unlink()


def publish(tmp: Path, output_dir: Path, run_id: str) -> Path:
    """Rename the finished temp folder to `run_id` (or the next free suffix if another run took it in
    the meantime, fixing the manifest's run_id); then release the reservation and update `latest`."""
    reserved = run_id
    for _ in range(1000):
        target = output_dir / run_id
        if not target.exists():
            try:
                os.rename(tmp, target)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    release_run_id(output_dir, reserved)
                    raise OutputError(
                        f"cannot move the run into {target} ({exc.strerror}); check --output-dir"
                    ) from None
        run_id = reserve_run_id(output_dir, run_id)
        manifest_path = tmp / L.MANIFEST
        write_json({**json.loads(manifest_path.read_text()), "run_id": run_id}, manifest_path)
        release_run_id(output_dir, reserved)
        reserved = run_id
    else:
        raise OutputError(f"cannot find a free run id for {run_id} in {output_dir}; use --run-name")
    release_run_id(output_dir, reserved)
    _atomic_text(output_dir / L.LATEST_FILE, run_id + "\n")
    return target


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def finish_manifest(tmp: Path, manifest: dict, known: Mapping[str, str] | None = None) -> None:
    """Hash every file of the folder into the manifest (the manifest and run.log excluded) and write it.
    `known`: file name -> SHA-256 of files hashed as they were written (not read again)."""
    known = known or {}
    files = {
        p.name: known.get(p.name) or sha256_file(p)
        for p in sorted(tmp.iterdir())
        if p.is_file() and p.name not in L.UNHASHED
    }
    write_json({**manifest, "schema_version": SCHEMA_VERSION, "files": files}, tmp / L.MANIFEST)


# ---------------------------------------------------------------------------------------------- formats


def write_parquet(frame: pd.DataFrame, path: Path, dictionary: bool = True) -> None:
    """Parquet without the pandas index: the bytes of `DataFrame.to_parquet(index=False)`, so the same
    frame gives the same bytes. `dictionary=False` skips dictionary encoding."""
    path.write_bytes(_parquet_bytes(frame, use_dictionary=dictionary))


SNAPSHOT_ENCODING = {"timestamp": "DELTA_BINARY_PACKED", "volume": "DELTA_BINARY_PACKED"}


def write_bars_snapshot(bars: pd.DataFrame, path: Path) -> str:
    """The bars snapshot (`timestamp` column first) and the SHA-256 of its bytes. Prices are stored plain
    (no dictionary: they are mostly distinct), the integer columns delta-packed: a third smaller and
    faster to write than dictionary pages, read by any Parquet reader."""
    data = _parquet_bytes(bars, use_dictionary=False, column_encoding=SNAPSHOT_ENCODING)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _parquet_bytes(frame: pd.DataFrame, **options) -> bytes | pa.Buffer:
    """Snappy Parquet of `frame` without its index, as `DataFrame.to_parquet` writes it (attrs included),
    converted on this thread: a thread pool per small frame costs more than it saves."""
    if frame.attrs:
        return frame.to_parquet(None, index=False, engine="pyarrow", compression="snappy", **options)
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy", **options)
    return sink.getvalue()


def write_json(data: object, path: Path) -> None:
    """Strict JSON (NaN or Infinity raise), two-space indent, trailing newline."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with times as ISO-8601 with offset (UTC)."""
    path.write_bytes(csv_bytes(frame, TIME_COLUMNS))


@dataclass(frozen=True)
class PortfolioArtifacts:
    """Everything a portfolio run writes besides run.log and the manifest (strategy.md 10)."""

    universe: pd.DataFrame
    trades: pd.DataFrame
    fills: pd.DataFrame
    events: pd.DataFrame
    bars: pd.DataFrame
    equity: pd.DataFrame
    benchmark: pd.DataFrame | None
    metrics: dict
    config: dict
    montecarlo: MonteCarloArtifact | None = None  # --monte-carlo: the account's sessions resampled


# ---------------------------------------------------------------------------------------------- run modes


class BarsSnapshots:
    """The bars snapshots of a backtest, each written and hashed on one second thread as soon as its bars
    are known (`start`), so the engine runs meanwhile (pyarrow and hashlib release the GIL). Leaving the
    `with` block waits for the writes (none outlives the staging folder)."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: dict[str, Future[str]] = {}

    def __enter__(self) -> BarsSnapshots:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, symbol: str, bars: pd.DataFrame) -> None:
        """Write `symbol`'s snapshot of `bars` on the thread, unless it was started already."""
        name = L.symbol_file(symbol, "bars")
        if name not in self._pending:
            path = self._folder / name
            self._pending[name] = self._pool.submit(lambda: write_bars_snapshot(bars.reset_index(), path))

    def hashes(self) -> dict[str, str]:
        """{file name: SHA-256} once every snapshot is written; re-raises a failed write."""
        return {name: done.result() for name, done in self._pending.items()}


def write_backtest(
    folder: Path, art: BacktestArtifacts, snapshots: BarsSnapshots | None = None
) -> dict[str, str]:
    """The files of a backtest (run-format.md), manifest excluded; returns the SHA-256 of the bars
    snapshots (the large files). `snapshots`: those already started; a symbol's snapshot not started yet
    is started first, so it is written while the other files are."""
    with contextlib.ExitStack() as stack:
        if snapshots is None:
            snapshots = stack.enter_context(BarsSnapshots(folder))
        for sym, res in art.results.items():
            snapshots.start(sym, res.bars)
        for sym, res in art.results.items():
            write_parquet(res.trades, folder / L.symbol_file(sym, "trades"))
            write_parquet(res.fills, folder / L.symbol_file(sym, "fills"))
            write_parquet(res.equity, folder / L.symbol_file(sym, "equity"))
            write_parquet(res.sessions, folder / L.symbol_file(sym, "sessions"))
            write_parquet(res.events, folder / L.symbol_file(sym, "events"))
            write_json(art.per_symbol[sym], folder / L.symbol_file(sym, "metrics"))
        write_parquet(art.all_trades, folder / L.ALL_TRADES)
        write_csv(art.all_trades, folder / L.ALL_TRADES_CSV)
        write_parquet(art.combined_equity, folder / L.COMBINED_EQUITY)
        write_json({"aggregate": art.aggregate, "per_symbol": art.per_symbol}, folder / L.METRICS)
        write_json(art.config, folder / L.CONFIG)
        if art.montecarlo is not None:
            write_monte_carlo(art.montecarlo, folder)
        return snapshots.hashes()


def write_portfolio(folder: Path, art: PortfolioArtifacts) -> None:
    """The files of a portfolio run (run-format.md "Portfolio runs"), manifest excluded."""
    write_parquet(art.universe, folder / L.UNIVERSE)
    write_parquet(art.trades, folder / L.ALL_TRADES)
    write_csv(art.trades, folder / L.ALL_TRADES_CSV)
    write_parquet(art.fills, folder / L.ALL_FILLS)
    write_parquet(art.events, folder / L.ALL_EVENTS)
    write_parquet(art.bars, folder / L.PORTFOLIO_BARS)
    write_parquet(art.equity, folder / L.COMBINED_EQUITY)
    if art.benchmark is not None:
        write_parquet(art.benchmark, folder / L.BENCHMARK)
    write_json(art.metrics, folder / L.METRICS)
    write_json(art.config, folder / L.CONFIG)
    if art.montecarlo is not None:
        write_monte_carlo(art.montecarlo, folder)


def write_sweep(folder: Path, art: SweepArtifacts) -> None:
    """The files of a sweep (docs/research.md), manifest excluded."""
    write_parquet(art.table, folder / L.SWEEP_RESULTS)
    write_csv(art.table, folder / L.SWEEP_RESULTS_CSV)
    write_json(art.info, folder / L.SWEEP_JSON)
    write_json(art.config, folder / L.CONFIG)


def write_walk_forward(folder: Path, art: WalkForwardArtifacts) -> None:
    """The files of a walk-forward (docs/research.md), manifest excluded."""
    write_parquet(art.folds, folder / L.WF_FOLDS)
    write_csv(art.folds, folder / L.WF_FOLDS_CSV)
    write_parquet(art.train_results, folder / L.WF_TRAIN_RESULTS)
    write_parquet(art.oos_trades, folder / L.WF_OOS_TRADES)
    write_csv(art.oos_trades, folder / L.WF_OOS_TRADES_CSV)
    write_parquet(art.oos_equity, folder / L.WF_OOS_EQUITY)
    write_json(art.info, folder / L.WALK_FORWARD_JSON)
    write_json(art.metrics, folder / L.METRICS)  # the walk-forward's result: its stitched OOS run
    write_json(art.config, folder / L.CONFIG)
    if art.montecarlo is not None:
        write_monte_carlo(art.montecarlo, folder)


def write_monte_carlo(result: MonteCarloArtifact, folder: Path) -> list[str]:
    """Write the summary (strict JSON), the bands and the per-path table into `folder`; return the names."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(result.summary(), folder / L.MONTECARLO_SUMMARY)
        write_parquet(result.bands, folder / L.MONTECARLO_BANDS)
        write_parquet(result.paths(), folder / L.MONTECARLO_PATHS)
    except OSError as exc:
        raise OutputError(
            f"cannot write the Monte Carlo files into {folder} ({exc.strerror}); check the output directory"
        ) from None
    return list(L.MONTECARLO_FILES)
