"""Workers: the local loop (`python -m orb.worker`), the Dask dispatcher and the API's worker pool.

A local worker claims the oldest queued job, runs it (orb.jobs.executor) and repeats. With a Dask
scheduler (ORB_DASK_SCHEDULER) a dispatcher claims jobs and submits each to the cluster, where the same
executor runs it; the runs folder must then be shared storage (the same path on every Dask worker), as
the job records, progress files and run folders all live in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from loguru import logger

from orb.jobs.executor import execute
from orb.jobs.store import JobStore, State, worker_name

POLL_SECONDS = 0.2
DASK_ENV = "ORB_DASK_SCHEDULER"
WORKERS_ENV = "ORB_JOB_WORKERS"


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def serve(runs_dir: Path, stop: threading.Event, max_jobs: int | None = None) -> int:
    """Claim and run jobs until `stop` is set (or `max_jobs` ran); return the number run."""
    store = JobStore(runs_dir)
    name = worker_name()
    ran = 0
    while not stop.is_set() and (max_jobs is None or ran < max_jobs):
        store.reap()
        job = store.claim(name)
        if job is None:
            stop.wait(POLL_SECONDS)
            continue
        logger.info(f"job {job.id}: running {' '.join(job.argv)}")
        try:
            state = execute(store, job, name, stop)
        except OSError as exc:  # the CLI could not be started: the job fails, the worker goes on
            store.finish(job.id, name, State.FAILED, error=f"cannot start run_backtest.py: {exc}")
            state = State.FAILED
        logger.info(f"job {job.id}: {state}")
        ran += 1
    return ran


def run_on_dask(runs_dir: str, job_id: str, claimed_by: str) -> str:
    """The Dask task: adopt the job from the dispatcher and run it on this Dask worker."""
    store = JobStore(Path(runs_dir))
    name = f"dask:{worker_name()}"
    job = store.adopt(job_id, claimed_by, name)
    if job is None:
        return "cancelled"
    return str(execute(store, job, name, die_with_parent=False))


def dispatch(runs_dir: Path, scheduler: str, stop: threading.Event) -> None:
    """Claim queued jobs and submit each to the Dask cluster, as many at once as it has threads."""
    from distributed import Client, wait

    store = JobStore(runs_dir)
    name = f"dispatch:{worker_name()}"
    with Client(scheduler, timeout="10s") as client:
        running: set = set()
        while not stop.is_set():
            store.reap()
            slots = max(sum(client.nthreads().values()), 1)
            job = store.claim(name) if len(running) < slots else None
            if job is not None:
                future = client.submit(run_on_dask, str(store.runs_dir), job.id, name, pure=False)
                running.add(future)
                continue
            if running:
                try:
                    done, _ = wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                running -= set(done)
            else:
                stop.wait(POLL_SECONDS)


def worker_count() -> int:
    """ORB_JOB_WORKERS, else one per core."""
    text = os.environ.get(WORKERS_ENV, "")
    return int(text) if text.isdigit() else os.cpu_count() or 1


def start_pool(runs_dir: Path, count: int) -> list[subprocess.Popen]:
    """`count` local worker processes (one Dask dispatcher instead when ORB_DASK_SCHEDULER is set)."""
    if count <= 0:
        return []
    JobStore(runs_dir)  # create the database before the workers race for it
    if os.environ.get(DASK_ENV):
        count = 1
    command = [sys.executable, "-m", "orb.worker", "--runs-dir", str(runs_dir)]
    return [subprocess.Popen(command, stdin=subprocess.DEVNULL) for _ in range(count)]


def stop_pool(processes: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM each worker (its running job goes back to the queue), then SIGKILL stragglers."""
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from orb import console

    parser = argparse.ArgumentParser(prog="python -m orb.worker", description="Run queued backtest jobs.")
    parser.add_argument("--runs-dir", help="runs folder (default: env ORB_RUNS_DIR, else runs/)")
    parser.add_argument("--dask-scheduler", help="tcp://HOST:PORT: run jobs on this Dask cluster")
    parser.add_argument("--max-jobs", type=int, help="exit after this many jobs (default: run forever)")
    args = parser.parse_args(argv)
    from orb.runs.read import resolve_runs_dir

    console.setup_logging("INFO", log_file=None)
    stop = threading.Event()
    _stop_on_signals(stop)
    runs_dir = resolve_runs_dir(args.runs_dir)
    scheduler = args.dask_scheduler or os.environ.get(DASK_ENV)
    logger.info(f"worker {worker_name()} on {runs_dir}" + (f" via Dask {scheduler}" if scheduler else ""))
    try:
        if scheduler:
            dispatch(runs_dir, scheduler, stop)
        else:
            serve(runs_dir, stop, args.max_jobs)
    except (OSError, TimeoutError) as exc:
        console.error_line(f"worker stopped: {exc}")
        return 1
    return 0
