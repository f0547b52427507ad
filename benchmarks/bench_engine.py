"""Engine speed: `EventLoopBacktest.run` alone (preparation, the loop and the result frames), default
config (confluence and partials on), on the 528,390 one-minute bars of the other benchmarks (about 5.4
years of one symbol's regular sessions). Prints the median of `--repeat` runs in M bars/s with the load.

    python benchmarks/bench_engine.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BARS_END, BARS_START, load, median  # noqa: E402
from orb.config import load_config  # noqa: E402
from orb.data.synthetic import generate_bars  # noqa: E402
from orb.engine import EventLoopBacktest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    cfg = load_config()
    bars = generate_bars("SPY", BARS_START, BARS_END, 1, 42)
    print(f"bars: {len(bars):,} ({bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}); {load()}")
    engine = EventLoopBacktest(cfg, "SPY")
    result = engine.run(bars)  # warm: first-call imports and caches are not the engine's speed
    walls = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = engine.run(bars)
        walls.append(time.perf_counter() - started)
    wall = median(walls)
    print(f"trades: {len(result.trades):,}, sessions: {len(result.sessions):,}")
    print(f"engine median of {args.repeat}: {wall:.3f} s = {len(bars) / wall / 1e6:.2f} M bars/s "
          f"(best {min(walls):.3f} s); after: {load()}")  # fmt: skip


if __name__ == "__main__":
    main()
