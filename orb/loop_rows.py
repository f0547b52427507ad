"""The engine's row types and frame building: one symbol's result frames (BacktestResult), the
per-session governance state and the open position of orb.loop, and rows -> frames with fixed dtypes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BacktestResult:
    """Frames of one symbol's backtest; columns per orb.schema and run-format.md."""

    symbol: str
    trades: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.DataFrame
    sessions: pd.DataFrame
    events: pd.DataFrame
    bars: pd.DataFrame


TIME = "datetime64[ns, UTC]"
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # datetime64[D] counts days from it
NAT = np.iinfo(np.int64).min  # int64 ns that pandas reads as NaT


_EMPTY: dict[tuple, pd.DataFrame] = {}  # empty frames by (columns, dtypes)


def frame(rows: list, columns, dtypes: dict[str, str]) -> pd.DataFrame:
    """Rows (tuples or lists in column order) as a frame with fixed dtypes; time columns hold int64 ns
    since the epoch (UTC); other columns keep the dtype their values give (float64 for numbers, object
    for dates)."""
    columns = list(columns)
    if not rows:
        key = (tuple(columns), tuple(dtypes.items()))
        if key not in _EMPTY:
            _EMPTY[key] = pd.DataFrame([], columns=columns).astype(dtypes)
        return _EMPTY[key].copy()  # copy-on-write: nothing is copied until someone writes
    values = zip(*rows, strict=True)
    data = {}
    for col, column in zip(columns, values, strict=True):
        dtype = dtypes.get(col)
        if dtype == TIME:  # int64 min is NaT
            data[col] = pd.DatetimeIndex(np.array(column, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")
        elif dtype == "str":
            data[col] = pd.array(np.array(column, dtype=object), dtype="str")
        elif dtype is not None:
            data[col] = np.array(column, dtype=dtype)
        else:
            data[col] = np.array(column)
    return pd.DataFrame(data, columns=columns)


class Day:
    """Per-session governance state (strategy.md 6), reset at each session open."""

    __slots__ = ("entries", "full_stops", "r")

    def __init__(self) -> None:
        self.entries = 0
        self.full_stops = 0
        self.r = 0.0


class Position:
    """An open position and its pending target legs [kind, price, shares]."""

    __slots__ = (
        "trade_id",
        "side",
        "entry",
        "stop",
        "initial_stop",
        "r_ps",
        "shares",
        "remaining",
        "legs",
        "initial_legs",
        "t1_reached",
        "t1_filled",
        "t2_filled",
        "at_breakeven",
        "be_time",
        "gross",
        "commission",
        "exit_price",
        "exit_kind",
    )

    def __init__(self, trade_id, side, entry, stop, r_ps, shares, legs):
        self.trade_id = trade_id
        self.side = side
        self.entry = entry
        self.stop = stop
        self.initial_stop = stop
        self.r_ps = r_ps
        self.shares = shares
        self.remaining = shares
        self.legs = legs
        self.initial_legs = [tuple(leg) for leg in legs]
        self.t1_reached = False
        self.t1_filled = False
        self.t2_filled = False
        self.at_breakeven = False
        self.be_time = NAT  # stamp of the first bar under the breakeven stop
        self.gross = 0.0
        self.commission = 0.0
        self.exit_price = math.nan
        self.exit_kind = ""
