"""Sweep speed: 200 and 1,000 combinations over 1 symbol x 1 year of 1-minute bars, 2 workers, next to
vectorbt running an ORB sweep with the parameters as columns on the same bars (benchmarks/peer_vectorbt.py,
when vectorbt is installed; a benchmark-only dependency).

Each case is a whole fresh process (interpreter, imports, bars from one Parquet file, every combination,
the run folder), alternated A/B per round, `--repeat` rounds; prints medians, combinations per second, the
ratio and the machine load.

    python benchmarks/bench_sweep.py [--repeat 3] [--sizes 200 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, alternate, load, median  # noqa: E402
from benchmarks.grids import grid_yaml  # noqa: E402

FIRST, START, END = "2022-11-01", "2023-01-03", "2023-12-29"  # warm-up sessions from November 2022


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000], choices=[200, 1000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from orb.data.synthetic import generate_bars

    peer = importlib.util.find_spec("vectorbt") is not None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "SPY.parquet"
        bars = generate_bars("SPY", FIRST, END, 1, 42)
        bars.reset_index().to_parquet(data, index=False)
        (work / "utc.yaml").write_text("data: {file_timezone: UTC}\n")
        cases = {}
        for size in args.sizes:
            grid = work / f"grid{size}.yaml"
            grid.write_text(grid_yaml(size))
            cases[f"orb, {size} combinations, {args.workers} workers"] = [
                sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "--data", str(data),
                "--config", str(work / "utc.yaml"), "--start", START, "--end", END, "--sweep", str(grid),
                "--workers", str(args.workers), "--output-dir", str(work / "runs"), "-q",
            ]  # fmt: skip
            if peer:
                cases[f"vectorbt, {size} combinations"] = [
                    sys.executable, str(ROOT / "benchmarks/peer_vectorbt.py"), str(data), str(size)
                ]  # fmt: skip
        print(f"1 symbol, {len(bars):,} bars ({FIRST} .. {END}), {args.repeat} alternated rounds; {load()}")
        runs = alternate(cases, ROOT, args.repeat)
        after = load()
    for name, results in runs.items():
        wall = median([w for w, _ in results])
        size = int(name.split(", ")[1].split()[0])
        print(f"  {name:40s} median {wall:7.2f} s = {size / wall:6.1f} combinations/s")
    for size in args.sizes:
        ours = median([w for w, _ in runs[f"orb, {size} combinations, {args.workers} workers"]])
        if peer:
            theirs = median([w for w, _ in runs[f"vectorbt, {size} combinations"]])
            print(f"  {size} combinations: vectorbt takes x{theirs / ours:.1f} as long as orb")
    if not peer:
        print("  vectorbt is not installed (pip install vectorbt): no peer figure")
    print(f"after: {after}")


if __name__ == "__main__":
    main()
