"""Monte Carlo speed: monte_carlo() with 10,000 paths over 1,000 trades (target: about a second),
resampling trades and resampling whole sessions (about 2 trades per session), plus writing the files.

    python benchmarks/bench_montecarlo.py [--paths 10000] [--trades 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orb.research.montecarlo import monte_carlo  # noqa: E402
from orb.runs.write import write_monte_carlo  # noqa: E402


def synthetic_trades(n: int, seed: int = 0) -> pd.DataFrame:
    """n trades, R ~ N(0.05, 1.1), one to three per session, one hour apart."""
    rng = np.random.default_rng(seed)
    per_session = rng.integers(1, 4, size=n)
    session = np.repeat(np.arange(n), per_session)[:n]
    days = pd.bdate_range("2015-01-02", periods=int(session.max()) + 1)
    return pd.DataFrame(
        {
            "r_multiple": rng.normal(0.05, 1.1, n),
            "session_date": days[session].date,
            "entry_time": pd.date_range("2015-01-02 15:00", periods=n, freq="h", tz="UTC"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--trades", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades = synthetic_trades(args.trades)
    sessions = trades["session_date"].nunique()
    print(f"{args.paths:,} paths over {args.trades:,} trades ({sessions:,} sessions)")
    for by_session in (False, True):
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = monte_carlo(trades, args.paths, seed=1, by_session=by_session)
            best = min(best, time.perf_counter() - started)
        label = "sessions" if by_session else "trades"
        rate = args.paths * args.trades / best / 1e6
        print(f"resample {label:8s}: best of {args.repeat} {best:.3f} s = {rate:,.1f} M trade-steps/s")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        names = write_monte_carlo(result, Path(folder))
        print(f"write {', '.join(names)}: {time.perf_counter() - started:.3f} s")
    total, dd = result.percentiles["total_r"], result.percentiles["max_drawdown_r"]
    print(
        f"total R p5/p50/p95 {total['p5']:+.1f}/{total['p50']:+.1f}/{total['p95']:+.1f}, "
        f"max DD R p50 {dd['p50']:.1f}, P(DD > 20 R) {result.prob_drawdown_exceeds[20.0]:.3f}"
    )


if __name__ == "__main__":
    main()
