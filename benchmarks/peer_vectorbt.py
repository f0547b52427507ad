"""The peer of `bench_sweep.py`: a whole vectorbt process running an ORB sweep with the parameters as
columns, on the same bars and the same grid as our sweep (`--grid 200` or `1000` combinations).

Per column: OR length N (a 15-minute OR uses the first 15 bars), a long entry on the first close above
the OR high and a short entry on the first close below the OR low after the OR, a stop at
`atr_stop_mult` x the prior-session ATR(14) from the entry (as a fraction of the close), one 2 R target,
an exit at the session's last bar, a slippage per share (as a fraction of the close). It is a simpler
ORB than ours (no confluence, no partials, no governance); it measures vectorbt's cost per combination.

    python benchmarks/peer_vectorbt.py BARS.parquet 200
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")
import vectorbt as vbt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.grids import grid_values  # noqa: E402

NY = "America/New_York"


def main(path: str, size: int) -> None:
    minutes, stops, slips = grid_values(size)
    raw = pd.read_parquet(path).set_index("timestamp")
    local = raw.index.tz_convert(NY)
    day = np.asarray(local.normalize().asi8)
    minute = np.asarray(local.hour * 60 + local.minute) - (9 * 60 + 30)
    close = raw["close"].to_numpy()
    high, low = raw["high"].to_numpy(), raw["low"].to_numpy()
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ses = np.cumsum(np.r_[True, day[1:] != day[:-1]]) - 1
    last = np.r_[starts[1:] - 1, len(day) - 1]
    d_high, d_low = np.maximum.reduceat(high, starts), np.minimum.reduceat(low, starts)
    d_close = close[last]
    prev_close = np.r_[np.nan, d_close[:-1]]
    tr = np.maximum(d_high, prev_close) - np.minimum(d_low, prev_close)
    atr = pd.Series(tr).ewm(alpha=1 / 14, adjust=False).mean().shift(1).to_numpy()[ses]
    exits = np.zeros(len(day), dtype=bool)
    exits[last] = True
    columns, long_cols, short_cols, sl, tp, slip = [], [], [], [], [], []
    for n in minutes:
        in_or = minute < n
        or_hi = pd.Series(np.where(in_or, high, -np.inf)).groupby(ses).transform("max").to_numpy()
        or_lo = pd.Series(np.where(in_or, low, np.inf)).groupby(ses).transform("min").to_numpy()
        after = ~in_or & ~exits
        long_e = after & (close > or_hi)
        short_e = after & (close < or_lo)
        for m in stops:
            frac = m * atr / close
            for s in slips:
                columns.append((n, m, s))
                long_cols.append(long_e)
                short_cols.append(short_e)
                sl.append(frac)
                tp.append(2 * frac)
                slip.append(s / close)
    index = raw.index
    names = pd.MultiIndex.from_tuples(columns, names=["or", "stop", "slip"])
    frame = lambda cols: pd.DataFrame(np.column_stack(cols), index=index, columns=names)  # noqa: E731
    pf = vbt.Portfolio.from_signals(
        pd.Series(close, index=index),
        entries=frame(long_cols),
        exits=pd.DataFrame(np.repeat(exits[:, None], len(columns), axis=1), index=index, columns=names),
        short_entries=frame(short_cols),
        short_exits=pd.DataFrame(np.repeat(exits[:, None], len(columns), axis=1), index=index, columns=names),
        sl_stop=frame(sl),
        tp_stop=frame(tp),
        slippage=frame(slip),
        init_cash=100_000.0,
        freq="1min",
    )
    print(f"vectorbt: {len(columns)} combinations, total return of the best {pf.total_return().max():.4f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
