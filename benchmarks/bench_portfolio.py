"""Portfolio-mode scale: a synthetic universe of N symbols x 1 year of 1-minute bars, the
Zarattini-Barbon-Aziz 2024 preset (target: 500 symbols under 60 s wall and 4 GB peak on 2 cores).

Runs `run_backtest.py --symbols-file FILE --synthetic --config configs/zarattini_2024_stocks_in_play.yaml`
in a fresh process and reports its wall time; its CPU seconds with those of its workers (the figure
that load from other jobs inflates least); peak memory (resident memory sampled every 50 ms: the run's
own process, its workers, and their sum at the worst moment; with `--dask` the cluster's processes count
as workers); the time of each stage from the run's manifest; and the machine's load. `--dask` runs the
per-symbol stages on a local Dask cluster (2 single-threaded workers) instead of a process pool; its
workers start without Dask's default MALLOC_TRIM_THRESHOLD_=65536, which makes glibc map every large
array afresh and stage 1 about 3x slower (docs/scale.md). `--repeat N` runs each size N times and
prints the medians after the single runs; `--trees A B` alternates two checkouts (before and after).

    python benchmarks/bench_portfolio.py --symbols 100 [500 2000] [--workers 2] [--dask] [--repeat 1]
        [--trees A B]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRESET = Path("configs") / "zarattini_2024_stocks_in_play.yaml"
START, END = "2023-01-03", "2023-12-29"


def session_minutes() -> int:
    """One-minute bars of one symbol in START..END (the run's sessions; warm-up sessions not counted)."""
    from orb.sessions import schedule

    sched = schedule(START, END, "XNYS")
    return int(((sched["close"] - sched["open"]).dt.total_seconds() // 60).sum())


def universe_names(n: int) -> list[str]:
    """n distinct synthetic names: U0000, U0001, ..."""
    return [f"U{i:04d}" for i in range(n)]


def _rss(p: psutil.Process) -> int:
    with contextlib.suppress(psutil.Error):
        return p.memory_info().rss
    return 0


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process's finished children (a run and the workers it
    waited for) plus those of its live children (a local Dask cluster's processes)."""
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            live += times.user + times.system
    return done.ru_utime + done.ru_stime + live


def _peak_rss(driver: psutil.Process, stop: threading.Event, out: dict[str, int]) -> None:
    """Peak RSS of the run (`driver`), of every other process below this one (its workers, a local
    Dask cluster's nanny and worker processes) and of their sum, sampled until `stop`."""
    me = psutil.Process()
    peak = {"driver": 0, "workers": 0, "total": 0}
    while not stop.is_set():
        try:
            others = [p for p in me.children(recursive=True) if p.pid != driver.pid]
        except psutil.Error:
            break
        now = {"driver": _rss(driver), "workers": sum(_rss(p) for p in others)}
        now["total"] = now["driver"] + now["workers"]
        peak = {k: max(v, now[k]) for k, v in peak.items()}
        time.sleep(0.05)
    out |= peak


def run_once(n: int, workers: int, scheduler: str | None, tmp: Path, tree: Path = ROOT) -> dict:
    symbols = tmp / f"universe_{n}.txt"
    symbols.write_text("\n".join(universe_names(n)) + "\n", encoding="utf-8")
    out = tmp / f"runs_{n}"
    args = [sys.executable, str(tree / "run_backtest.py"), "--symbols-file", str(symbols), "--synthetic"]
    args += ["--start", START, "--end", END, "--config", str(tree / PRESET), "--output-dir", str(out), "-q"]
    args += ["--dask-scheduler", scheduler] if scheduler else ["--workers", str(workers)]
    before, cpu = load(), _cpu_seconds()
    started = time.perf_counter()
    proc = psutil.Popen(args, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=_peak_rss, args=(proc, stop, peak))
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    cpu = _cpu_seconds() - cpu
    if proc.returncode != 0:
        details = tmp / "backtest_run.log"  # where the CLI puts an internal error's traceback
        tail = details.read_text(errors="replace")[-3000:] if details.exists() else ""
        raise SystemExit(f"run failed ({proc.returncode}): {output.decode()[-2000:]}\n{tail}")
    run_dir = Path(output.decode().strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["aggregate"]
    bars = n * session_minutes()
    return {
        "tree": str(tree),
        "symbols": n,
        "bars": bars,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak["total"] / 2**20),
        "peak_driver_mb": round(peak["driver"] / 2**20),
        "peak_workers_mb": round(peak["workers"] / 2**20),
        "stages_s": manifest["stage_seconds"],
        "trades": metrics["total_trades"],
        "bars_per_s": round(bars / wall),
        "ms_per_symbol": round(1000 * wall / n, 1),
        "load_before": before,
        "load_after": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, nargs="+", default=[100], help="universe sizes (100)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (2)")
    parser.add_argument("--dask", action="store_true", help="use a local Dask cluster")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; medians printed after (1)")
    parser.add_argument(
        "--trees",
        type=Path,
        nargs="+",
        default=[ROOT],
        help="checkouts to run, in turn each round (A B A B ...): before/after comparisons (this one)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = None
        if args.dask:
            import dask
            from distributed import LocalCluster

            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            runs = []
            for n in args.symbols:
                for _ in range(args.repeat):
                    for tree in args.trees:
                        address = cluster.scheduler_address if cluster else None
                        runs.append(run_once(n, args.workers, address, Path(tmp), tree.resolve()))
                        print(json.dumps(runs[-1]), flush=True)
        finally:
            if cluster is not None:
                cluster.close()
    if args.repeat > 1:
        for tree in args.trees:
            for n in args.symbols:
                mine = [r for r in runs if (r["symbols"], r["tree"]) == (n, str(tree.resolve()))]
                print(json.dumps(_medians(mine)))


def _medians(runs: list[dict]) -> dict:
    """The median of every figure over the runs of one size (stages per stage)."""
    out = {
        "median_of": len(runs),
        "tree": runs[0]["tree"],
        "symbols": runs[0]["symbols"],
        "bars": runs[0]["bars"],
    }
    for key in (
        "wall_s",
        "cpu_s",
        "peak_rss_mb",
        "peak_driver_mb",
        "peak_workers_mb",
        "bars_per_s",
        "ms_per_symbol",
    ):
        out[key] = statistics.median(r[key] for r in runs)
    out["stages_s"] = {k: statistics.median(r["stages_s"][k] for r in runs) for k in runs[0]["stages_s"]}
    out["loads"] = [r["load_before"] for r in runs]
    return out


if __name__ == "__main__":
    main()
