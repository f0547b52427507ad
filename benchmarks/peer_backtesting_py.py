"""The peer of `bench_end_to_end.py`: a whole backtesting.py process running the simple ORB of
tests/test_parity_backtesting_py.py (OR 15, stop entries at the armed OR side, stop at the other side,
one 2 R target, exit at the session's last close, no entry from 15:00, one trade per session) on the
bars of a Parquet file (UTC `timestamp`, open, high, low, close, volume).

    python benchmarks/peer_backtesting_py.py BARS.parquet
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

NY = "America/New_York"
OPEN, CLOSE, CUTOFF = 9 * 60 + 30, 16 * 60, 15 * 60
OR_MINUTES, TARGET_R, SIZE = 15, 2.0, 100


class OpeningRangeBreakout(Strategy):
    """The strategy class of tests/test_parity_backtesting_py.py (New York local naive bar-start stamps)."""

    def init(self):
        index = pd.DatetimeIndex(self.data.index)
        minute = np.asarray(index.hour * 60 + index.minute)
        rth = (minute >= OPEN) & (minute < CLOSE)
        day = np.asarray(index.normalize().asi8)
        n = len(index)
        self.minute = minute
        self.session = np.where(rth, day, -1)
        self.or_high = np.full(n, np.nan)
        self.or_low = np.full(n, np.nan)
        self.last_bar = np.zeros(n, dtype=bool)
        high, low = np.asarray(self.data.High), np.asarray(self.data.Low)
        for key in np.unique(day[rth]):
            bars = np.flatnonzero(self.session == key)
            in_or = bars[minute[bars] < OPEN + OR_MINUTES]
            known = bars[minute[bars] >= OPEN + OR_MINUTES - 1]
            self.or_high[known] = high[in_or].max()
            self.or_low[known] = low[in_or].min()
            self.last_bar[bars[-1]] = True
        self.traded_session = None

    def next(self):
        i = len(self.data) - 1
        for order in self.orders:
            if not order.is_contingent:
                order.cancel()
        if self.position:
            trade = self.trades[0]
            if trade.entry_bar == i:
                self.traded_session = self.session[i]
                risk = abs(trade.entry_price - (self.or_low[i] if trade.is_long else self.or_high[i]))
                direction = 1 if trade.is_long else -1
                trade.sl = self.or_low[i] if trade.is_long else self.or_high[i]
                trade.tp = trade.entry_price + direction * TARGET_R * risk
            if self.last_bar[i]:
                trade.sl = None
                trade.tp = None
                trade.close()
            return
        nxt = i + 1
        if (
            nxt >= len(self.session)
            or self.session[i] == -1
            or self.session[nxt] != self.session[i]
            or np.isnan(self.or_high[i])
            or self.last_bar[nxt]
            or self.minute[nxt] >= CUTOFF
            or self.traded_session == self.session[i]
        ):
            return
        close = self.data.Close[-1]
        if close <= self.or_high[i]:
            self.buy(size=SIZE, stop=self.or_high[i])
        if close >= self.or_low[i]:
            self.sell(size=SIZE, stop=self.or_low[i])


def main(path: str) -> None:
    raw = pd.read_parquet(path).set_index("timestamp")
    feed = raw.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    feed.index = raw.index.tz_convert(NY).tz_localize(None)
    bt = Backtest(
        feed,
        OpeningRangeBreakout,
        cash=10_000_000,
        commission=0.0,
        spread=0.0,
        margin=1.0,
        trade_on_close=True,
        hedging=False,
        exclusive_orders=False,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    print(f"backtesting.py: {len(stats['_trades'])} trades")


if __name__ == "__main__":
    main(sys.argv[1])
