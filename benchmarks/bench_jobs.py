"""Jobs and registry speed: POST -> run start latency, N small jobs through W workers against the same
N CLI commands one after another, and leaderboard/catalog timings over many run folders.

    python benchmarks/bench_jobs.py [--jobs 50] [--workers 2] [--runs 500] [--queries 100]

Every job is a small synthetic backtest (SPY, 2024-01-02..2024-01-31). Latency: a real
`python api_server.py` with one idle worker; POST, then poll until the job's stage leaves `starting`
(the CLI is running) - reported as claim latency (created -> claimed) and start latency (POST -> the
CLI reporting progress). Throughput: jobs queued in-process, W `python -m orb.worker` processes.
Registry: one real run folder copied `--runs` times; cold build = a new Catalog's first connection;
leaderboard = `orb.runs.catalog.leaderboard` on the warm catalog.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from job_processes import api_server, start_worker, wait_for  # noqa: E402

from orb.jobs import service  # noqa: E402
from orb.jobs.store import FINAL  # noqa: E402
from orb.runs import catalog as runs_catalog  # noqa: E402

JOB = {"symbols": ["SPY"], "start": "2024-01-02", "end": "2024-01-31", "source": "synthetic"}
CLI = ["--symbols", "SPY", "--synthetic", "--start", "2024-01-02", "--end", "2024-01-31", "--quiet"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def latency(tmp: Path, samples: int) -> None:
    claims, starts = [], []
    with api_server(tmp / "latency", workers=1) as base:
        for _ in range(samples):
            sent = time.monotonic()
            job_id = httpx.post(f"{base}/api/jobs", json=JOB, timeout=60).json()["job_id"]

            def started(job_id=job_id):
                job = httpx.get(f"{base}/api/jobs/{job_id}", timeout=10).json()
                return job if job["stage"] not in (None, "starting") else None

            job = wait_for(started, timeout=120, every=0.02)
            starts.append(time.monotonic() - sent)
            claims.append(job["queue_seconds"])
            wait_for(
                lambda job_id=job_id: httpx.get(f"{base}/api/jobs/{job_id}").json()["state"] in FINAL, 120
            )
    claim_ms = statistics.median(claims) * 1000, max(claims) * 1000
    print(f"claim latency (created -> claimed): p50 {claim_ms[0]:.0f} ms, max {claim_ms[1]:.0f} ms")
    start_s = statistics.median(starts), max(starts)
    print(f"start latency (POST -> CLI progress): p50 {start_s[0]:.2f} s, max {start_s[1]:.2f} s")


def throughput(tmp: Path, jobs: int, workers: int) -> None:
    runs = tmp / "throughput"
    ids = [service.submit(runs, JOB).id for _ in range(jobs)]
    began = time.monotonic()
    procs = [start_worker(runs) for _ in range(workers)]
    try:
        wait_for(lambda: all(service.get_job(runs, i).state in FINAL for i in ids), timeout=3600, every=0.2)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    pooled = time.monotonic() - began
    states = {str(service.get_job(runs, i).state) for i in ids}
    began = time.monotonic()
    out = tmp / "cli"
    for _ in range(jobs):
        command = [sys.executable, str(REPO / "run_backtest.py"), *CLI, "--output-dir", str(out)]
        subprocess.run(command, cwd=tmp, check=True, capture_output=True)
    serial = time.monotonic() - began
    print(
        f"{jobs} jobs through {workers} workers: {pooled:.1f} s ({jobs / pooled:.2f} jobs/s), states {states}"
    )
    print(f"{jobs} CLI commands one after another: {serial:.1f} s ({jobs / serial:.2f} runs/s)")


def registry(tmp: Path, runs: int, queries: int) -> None:
    root = tmp / "registry"
    command = [sys.executable, str(REPO / "run_backtest.py"), "--symbols", "SPY", "QQQ", "--synthetic"]
    command += ["--start", "2024-01-02", "--end", "2024-03-28", "--output-dir", str(root), "--quiet"]
    subprocess.run(command, cwd=tmp, check=True, capture_output=True)
    (seed,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for i in range(1, runs):
        shutil.copytree(seed, root / f"{seed.name}_c{i:04d}")
    began = time.perf_counter()
    runs_catalog.catalog(root).connection()
    cold = time.perf_counter() - began
    timings = []
    for _ in range(queries):
        began = time.perf_counter()
        rows = runs_catalog.leaderboard(root, "sharpe", "backtest", "SPY", 20)
        timings.append(time.perf_counter() - began)
    assert len(rows) == 20
    print(f"catalog cold build over {runs} run folders: {cold:.2f} s")
    print(
        f"leaderboard over {runs} run folders ({queries} queries): "
        f"p50 {pct(timings, 0.5) * 1000:.1f} ms, p99 {pct(timings, 0.99) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--latency-samples", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_jobs_") as tmp:
        latency(Path(tmp), args.latency_samples)
        throughput(Path(tmp), args.jobs, args.workers)
        registry(Path(tmp), args.runs, args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
