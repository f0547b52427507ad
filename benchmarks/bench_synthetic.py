"""Synthetic generator speed: one year of one-minute bars for one symbol (2024, 252 sessions), plus
five years and the coarser intervals.

    python benchmarks/bench_synthetic.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orb.data.synthetic import generate_bars  # noqa: E402
from orb.sessions import get_calendar  # noqa: E402


def best_of(repeat: int, *args) -> tuple[float, int]:
    """Fastest wall time over `repeat` runs and the number of bars generated."""
    best, rows = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(generate_bars(*args))
        best = min(best, time.perf_counter() - started)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    get_calendar("XNYS")
    print(f"calendar load (once per process): {time.perf_counter() - started:.3f} s")
    started = time.perf_counter()
    generate_bars("SPY", "2024-01-02", "2024-01-02", 1, 42)
    print(f"first call for a symbol (daily path 1990-2049, cached): {time.perf_counter() - started:.3f} s")
    cases = [
        ("1 year, 1m", ("SPY", "2024-01-02", "2024-12-31", 1, 42)),
        ("5 years, 1m", ("SPY", "2020-01-02", "2024-12-31", 1, 42)),
        ("1 year, 5m", ("SPY", "2024-01-02", "2024-12-31", 5, 42)),
        ("1 year, 30m", ("SPY", "2024-01-02", "2024-12-31", 30, 42)),
    ]
    for label, case in cases:
        seconds, rows = best_of(args.repeat, *case)
        print(f"{label:>12}: {rows:>9,} bars in {seconds:.3f} s ({rows / seconds:,.0f} bars/s)")


if __name__ == "__main__":
    main()
