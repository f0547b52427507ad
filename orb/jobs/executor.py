"""Run one claimed job: `run_backtest.py` in its own process group, watched until it ends.

Every 0.25 s the executor reads the CLI's progress file (ORB_PROGRESS_FILE, written by
`orb.console`), records a heartbeat with progress, stage and symbol, and checks for a cancel. A cancel
(or the worker stopping) kills the whole process group and removes the run's hidden staging folder,
so no run folder appears; a cancel that lands after the CLI published its run folder cannot take it
back, so that job is recorded as succeeded, with its run. On Linux the CLI also dies with its worker
(PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from orb.jobs.request import REPO
from orb.jobs.store import Job, JobStore, State
from orb.runs.layout import TMP_PREFIX
from orb.runs.write import RESERVATION

POLL_SECONDS = 0.25
LOAD_SHARE, RUN_SHARE = 0.1, 0.85


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the worker that started it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def read_progress(path: Path, symbols: list[str]) -> tuple[float, str | None, str | None]:
    """(progress 0-1, stage, symbol) from the CLI's last progress snapshot."""
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0, "starting", None
    done = min(float(snap.get("completed") or 0) / max(float(snap.get("total") or 1), 1.0), 1.0)
    description = str(snap.get("description", ""))
    if description.startswith("Loading bars"):
        return LOAD_SHARE * done, "loading", snap.get("detail") or None
    if description.startswith("Backtest "):
        symbol = description.removeprefix("Backtest ").strip()
        index = symbols.index(symbol) if symbol in symbols else 0
        return LOAD_SHARE + RUN_SHARE * (index + done) / max(len(symbols), 1), "backtest", symbol
    stage = description.lower().replace("-", "_") or "running"
    return LOAD_SHARE + RUN_SHARE * done, stage, None


def _output_dir(argv: list[str]) -> Path:
    return Path(argv[argv.index("--output-dir") + 1])


def _kill(proc: subprocess.Popen, output_dir: Path) -> None:
    """Kill the CLI's process group and remove its hidden staging folder and run-id reservation."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for tmp in output_dir.glob(f"{TMP_PREFIX}*-{proc.pid}"):
        shutil.rmtree(tmp, ignore_errors=True)
    for reservation in output_dir.glob(f"{TMP_PREFIX}*{RESERVATION}"):
        with contextlib.suppress(OSError, ValueError):
            if int(reservation.read_text().strip()) == proc.pid:
                reservation.unlink()


def _outcome(log: Path, output_dir: Path, code: int) -> tuple[str | None, str | None]:
    """(run id if a run folder was published, one-line error if the CLI failed) from its output."""
    lines = [
        ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
    ]
    run_id = None
    if lines:
        last = Path(lines[-1])
        if last.parent.resolve() == output_dir.resolve() and last.is_dir():
            run_id = last.name
    errors = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
    error = None if code == 0 else (errors[0] if errors else f"run_backtest.py exited with code {code}")
    return run_id, error


def execute(
    store: JobStore, job: Job, worker: str, stop: threading.Event | None = None, die_with_parent: bool = True
) -> State:
    """Run `job` (claimed by `worker`) to its end; record and return the final state."""
    folder = store.job_folder(job.id)
    folder.mkdir(parents=True, exist_ok=True)
    progress_file, log = folder / "progress.json", folder / "output.log"
    progress_file.unlink(missing_ok=True)
    output_dir = _output_dir(job.argv)
    env = {**os.environ, "ORB_PROGRESS_FILE": str(progress_file), "COLUMNS": "4096", "NO_COLOR": "1"}
    env.pop("ORB_DASK_SCHEDULER", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "run_backtest.py"), *job.argv],
            cwd=folder,  # backtest_run.log lands in the job's folder
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    stopping = stop or threading.Event()
    while True:
        try:
            code = proc.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        cancel = store.heartbeat(job.id, worker, *read_progress(progress_file, job.symbols))
        if cancel or stopping.is_set():
            _kill(proc, output_dir)
            published, _ = _outcome(log, output_dir, 0)
            if published:  # the run folder was whole before the kill landed: report it, never re-run it
                store.finish(job.id, worker, State.SUCCEEDED, run_id=published)
                return State.SUCCEEDED
            if stopping.is_set() and not cancel:
                store.finish(job.id, worker, State.QUEUED)  # the worker is stopping: run it again later
                return State.QUEUED
            store.finish(job.id, worker, State.CANCELLED)
            return State.CANCELLED
    run_id, error = _outcome(log, output_dir, code)
    state = State.SUCCEEDED if code == 0 and run_id else State.FAILED
    if code == 0 and not run_id:
        error = "run_backtest.py ended without naming a run folder (see the job's output.log)"
    store.finish(job.id, worker, state, run_id=run_id, error=error)
    return state
