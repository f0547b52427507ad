"""The peer of `bench_end_to_end.py`: a whole backtesting.py process running the simple ORB of
tests/test_parity_backtesting_py.py (tests/backtesting_orb.py: OR 15, stop entries at the armed OR side,
stop at the other side, one 2 R target, exit at the session's last close, no entry from 15:00, one trade
per session) on the bars of a Parquet file (UTC `timestamp`, open, high, low, close, volume).

    python benchmarks/peer_backtesting_py.py BARS.parquet
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.backtesting_orb import make_backtest  # noqa: E402


def main(path: str) -> None:
    bt = make_backtest(pd.read_parquet(path).set_index("timestamp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    print(f"backtesting.py: {len(stats['_trades'])} trades")


if __name__ == "__main__":
    main(sys.argv[1])
