"""Portfolio-mode scale: a synthetic universe of N symbols x 1 year of 1-minute bars, the
Zarattini-Barbon-Aziz 2024 preset (target: 500 symbols under 60 s wall and 4 GB peak on 2 cores).

Runs `run_backtest.py --symbols-file FILE --synthetic --config configs/zarattini_2024_stocks_in_play.yaml`
in a fresh process and reports wall time, peak memory (the sum of the resident memory of the run and its
worker processes, sampled every 50 ms) and the time of each stage from the run's manifest. `--dask`
runs the per-symbol stages on a local Dask cluster (2 single-threaded workers) instead of a process pool.

    python benchmarks/bench_portfolio.py --symbols 100 [500 2000] [--workers 2] [--dask]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs" / "zarattini_2024_stocks_in_play.yaml"
START, END = "2023-01-03", "2023-12-29"


def universe_names(n: int) -> list[str]:
    """n distinct synthetic names: U0000, U0001, ..."""
    return [f"U{i:04d}" for i in range(n)]


def _peak_rss(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    peak = 0
    while not stop.is_set():
        try:
            family = [proc, *proc.children(recursive=True)]
            total = 0
            for p in family:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
        except psutil.Error:
            break
        time.sleep(0.05)
    out.append(peak)


def run_once(n: int, workers: int, scheduler: str | None, tmp: Path) -> dict:
    symbols = tmp / f"universe_{n}.txt"
    symbols.write_text("\n".join(universe_names(n)) + "\n", encoding="utf-8")
    out = tmp / f"runs_{n}"
    args = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols-file", str(symbols), "--synthetic"]
    args += ["--start", START, "--end", END, "--config", str(PRESET), "--output-dir", str(out), "-q"]
    args += ["--dask-scheduler", scheduler] if scheduler else ["--workers", str(workers)]
    started = time.perf_counter()
    proc = psutil.Popen(args, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop, peak = threading.Event(), []
    sampler = threading.Thread(target=_peak_rss, args=(proc, stop, peak))
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {output.decode()[-2000:]}")
    run_dir = Path(output.decode().strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["aggregate"]
    return {
        "symbols": n,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak[0] / 2**20),
        "stages_s": manifest["stage_seconds"],
        "trades": metrics["total_trades"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, nargs="+", default=[100], help="universe sizes (100)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (2)")
    parser.add_argument("--dask", action="store_true", help="use a local Dask cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = None
        if args.dask:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            for n in args.symbols:
                result = run_once(n, args.workers, cluster.scheduler_address if cluster else None, Path(tmp))
                bars = n * 252 * 390
                result["bars_per_s"] = round(bars / result["wall_s"])
                result["ms_per_symbol"] = round(1000 * result["wall_s"] / n, 1)
                print(json.dumps(result))
        finally:
            if cluster is not None:
                cluster.close()


if __name__ == "__main__":
    main()
