"""The simple ORB as a backtesting.py strategy, shared by tests/test_parity_backtesting_py.py (where its
rules and the conventions aligned with strategy.md are described) and benchmarks/peer_backtesting_py.py.
Only numpy, pandas and backtesting.py are imported: the benchmark times this module's import as the peer's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

NY = "America/New_York"
TARGET_R = 2.0
CUTOFF = 15 * 60  # 15:00, minutes after midnight
OPEN, CLOSE = 9 * 60 + 30, 16 * 60
SIZE = 100


class OpeningRangeBreakout(Strategy):
    """ORB on 1-minute bars with New York local (naive) bar-start stamps, extended hours included."""

    or_minutes = 15  # a backtesting.py strategy parameter (set by Backtest.run)

    def init(self):
        index = pd.DatetimeIndex(self.data.index)
        minute = np.asarray(index.hour * 60 + index.minute)
        rth = (minute >= OPEN) & (minute < CLOSE)
        day = np.asarray(index.normalize().asi8)
        n = len(index)
        self.minute = minute
        self.session = np.where(rth, day, -1)  # session key per bar, -1 outside regular hours
        self.or_high = np.full(n, np.nan)
        self.or_low = np.full(n, np.nan)
        self.last_bar = np.zeros(n, dtype=bool)
        high, low = np.asarray(self.data.High), np.asarray(self.data.Low)
        for key in np.unique(day[rth]):
            bars = np.flatnonzero(self.session == key)
            in_or = bars[minute[bars] < OPEN + self.or_minutes]
            # The OR is known from its last bar's close on: only those bars carry it.
            known = bars[minute[bars] >= OPEN + self.or_minutes - 1]
            self.or_high[known] = high[in_or].max()
            self.or_low[known] = low[in_or].min()
            self.last_bar[bars[-1]] = True
        self.traded_session = None

    def next(self):
        i = len(self.data) - 1
        for order in self.orders:
            if not order.is_contingent:
                order.cancel()  # pending entry stops live one bar
        if self.position:
            trade = self.trades[0]
            if trade.entry_bar == i:  # entered on this bar: bracket it from the next bar on
                self.traded_session = self.session[i]
                risk = abs(trade.entry_price - (self.or_low[i] if trade.is_long else self.or_high[i]))
                direction = 1 if trade.is_long else -1
                trade.sl = self.or_low[i] if trade.is_long else self.or_high[i]
                trade.tp = trade.entry_price + direction * TARGET_R * risk
            if self.last_bar[i]:
                trade.sl = None
                trade.tp = None
                trade.close()  # trade_on_close: fills at this bar's close
            return
        nxt = i + 1
        if (
            nxt >= len(self.session)
            or self.session[i] == -1
            or self.session[nxt] != self.session[i]
            or np.isnan(self.or_high[i])  # bar i is before the last OR bar
            or self.last_bar[nxt]  # the last bar never opens a position
            or self.minute[nxt] >= CUTOFF
            or self.traded_session == self.session[i]
        ):
            return
        close = self.data.Close[-1]
        if close <= self.or_high[i]:
            self.buy(size=SIZE, stop=self.or_high[i])
        if close >= self.or_low[i]:
            self.sell(size=SIZE, stop=self.or_low[i])


def make_backtest(raw: pd.DataFrame) -> Backtest:
    """backtesting.py set up as the parity test aligns it, on `raw` (UTC bar-start index, every bar)."""
    feed = raw.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    feed.index = raw.index.tz_convert(NY).tz_localize(None)
    return Backtest(
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
