"""Sweep speed: 100 combinations over 1 symbol x 1 year of synthetic 1-minute bars (target: under 15 s
wall with 2 workers on a 2-core machine).

Measures, for 1 and 2 workers, the task phase (process pool start + 100 backtests with metrics, bars
loaded once beforehand) and the whole `run_backtest.py --sweep` command in a fresh process (interpreter
start, data generation, tasks, run folder); prints combinations per second and the 1 -> 2 speed-up.

    python benchmarks/bench_sweep.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orb.config import load_config  # noqa: E402
from orb.data import load_symbol  # noqa: E402
from orb.research.sweep import load_sweep  # noqa: E402
from orb.research.tasks import Task, run_tasks  # noqa: E402

START, END = date(2023, 1, 3), date(2023, 12, 29)
GRID = """grid:
  orb.base_minutes: [5, 10, 15, 20, 30]
  trade.atr_stop_mult: [0.5, 0.8, 1.0, 1.5]
  costs.slippage_per_share: [0.0, 0.01, 0.02, 0.03, 0.05]
"""


def task_phase(tasks: list[Task], bars: dict, workers: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run_tasks(tasks, bars, workers=workers)
        best = min(best, time.perf_counter() - started)
    return best


def command(sweep_path: Path, workers: int, out: Path, repeat: int) -> float:
    args = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "--synthetic"]
    args += ["--start", START.isoformat(), "--end", END.isoformat(), "--sweep", str(sweep_path)]
    args += ["--workers", str(workers), "--output-dir", str(out), "-q"]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, check=True, cwd=out, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1, help="best of N (other load on the machine skews)")
    args = parser.parse_args()
    cfg = load_config()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sweep_path = out / "bench_sweep.yaml"
        sweep_path.write_text(GRID)
        sweep = load_sweep(sweep_path, cfg)
        bars = {"SPY": load_symbol("SPY", config=cfg, start=START, end=END, source="synthetic").bars}
        tasks = [Task(i, c.config, START, END) for i, c in enumerate(sweep.valid)]
        n = len(tasks)
        print(f"{n} combinations x SPY, {len(bars['SPY']):,} bars ({START} .. {END}, warm-up included)")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        phase = {w: task_phase(tasks, bars, w, args.repeat) for w in (1, 2)}
        whole = {w: command(sweep_path, w, out, args.repeat) for w in (1, 2)}
    for w in (1, 2):
        print(
            f"workers {w}: task phase {phase[w]:6.2f} s = {n / phase[w]:6.1f} combinations/s; "
            f"whole command {whole[w]:6.2f} s = {n / whole[w]:6.1f} combinations/s"
        )
    speedup = f"task phase x{phase[1] / phase[2]:.2f}, whole command x{whole[1] / whole[2]:.2f}"
    print(f"speed-up 1 -> 2 workers: {speedup}")
    verdict = "met" if whole[2] < 15 else "MISSED"
    print(f"target < 15 s wall with 2 workers: {verdict} ({whole[2]:.2f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
