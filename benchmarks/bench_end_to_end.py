"""Whole-process speed and memory of `run_backtest.py` (imports, load, full rules, every output file).

1. About 525,720 one-minute bars of one symbol read from a local Parquet file (`--data`), default config.
2. `--symbols SPY QQQ IWM --start 2024-01-02 --end 2024-12-31 --synthetic` (about 295,000 bars).

Each command runs `--repeat` times in a fresh process; the best wall time and the peak RSS are printed.

    python benchmarks/bench_end_to_end.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from orb.data.synthetic import generate_bars

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bars = generate_bars("SPY", "2019-01-02", "2024-05-28", 1, 42)
        data = work / "SPY.parquet"
        bars.reset_index().to_parquet(data, index=False)
        first, last = bars.index[0].date(), bars.index[-1].date()
        script = str(ROOT / "run_backtest.py")
        cases = {
            f"file, 1 symbol, {len(bars):,} bars": [
                sys.executable, script, "--symbols", "SPY", "--data", str(data), "--config",
                str(_utc_config(work)), "--start", str(first), "--end", str(last), "-q",
            ],
            "synthetic, SPY QQQ IWM, 2024 (about 295,000 bars)": [
                sys.executable, script, "--symbols", "SPY", "QQQ", "IWM", "--start", "2024-01-02",
                "--end", "2024-12-31", "--synthetic", "-q",
            ],
        }  # fmt: skip
        for name, cmd in cases.items():
            runs = [timed([*cmd, "--output-dir", str(work / "runs")], work) for _ in range(args.repeat)]
            best = min(w for w, _ in runs)
            peak = max(m for _, m in runs)
            print(f"{name}: best wall {best:.2f} s of {args.repeat}, peak RSS {peak:,.0f} MiB")


def _utc_config(work: Path) -> Path:
    path = work / "utc.yaml"
    path.write_text("data:\n  file_timezone: UTC\n")
    return path


if __name__ == "__main__":
    main()
