"""Engine speed: EventLoopBacktest alone, default config (confluence and partials on), on about
525,600 one-minute synthetic bars of one symbol (about 5.4 years of regular sessions).

    python benchmarks/bench_engine.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orb.config import load_config  # noqa: E402
from orb.data.synthetic import generate_bars  # noqa: E402
from orb.engine import EventLoopBacktest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config()
    bars = generate_bars("SPY", "2019-01-02", "2024-05-24", 1, cfg.data.seed)
    print(f"bars: {len(bars):,} ({bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d})")
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = EventLoopBacktest(cfg, "SPY").run(bars)
        best = min(best, time.perf_counter() - started)
    print(f"trades: {len(result.trades):,}, sessions: {len(result.sessions):,}")
    print(f"engine best of {args.repeat}: {best:.3f} s = {len(bars) / best:,.0f} bars/s")


if __name__ == "__main__":
    main()
