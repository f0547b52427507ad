"""Build bar-contract frames from hand-written candle tables in exchange-local (New York) time.

A row is `("HH:MM", open, high, low, close, volume)`: the 1-minute bar STARTING at that local time.
A session is `(date, rows)`; `bars(sessions)` turns a list of sessions into the engine's bar contract
(DatetimeIndex `timestamp`, tz-aware UTC, bar start, sorted, unique; float64 prices, int64 volume).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
import pandas as pd

from orb.sessions import get_calendar

TZ = "America/New_York"
Row = tuple  # ("HH:MM", open, high, low, close, volume)
Session = tuple  # (date | "YYYY-MM-DD", [Row, ...])


def utc(day: date | str, hhmm: str) -> pd.Timestamp:
    """The UTC instant of local time `hhmm` on the local date `day`."""
    return pd.Timestamp(f"{pd.Timestamp(day).date()} {hhmm}").tz_localize(TZ).tz_convert("UTC")


def bars(sessions: Iterable[Session], *, sort: bool = True) -> pd.DataFrame:
    """The bar contract for several sessions of hand-written rows (`sort=False` keeps row order)."""
    stamps, values = [], []
    for day, rows in sessions:
        for hhmm, o, h, lo, c, v in rows:
            stamps.append(utc(day, hhmm))
            values.append((o, h, lo, c, v))
    index = pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns")
    arr = np.array([v[:4] for v in values], dtype="float64").reshape(-1, 4)
    frame = pd.DataFrame(
        {
            "open": arr[:, 0],
            "high": arr[:, 1],
            "low": arr[:, 2],
            "close": arr[:, 3],
            "volume": np.array([v[4] for v in values], dtype="int64"),
        },
        index=index,
    )
    return frame.sort_index(kind="stable") if sort else frame


def sessions_before(day: date | str, n: int) -> list[pd.Timestamp]:
    """The `n` XNYS sessions immediately before `day`, oldest first."""
    sessions = get_calendar("XNYS").sessions
    pos = int(sessions.searchsorted(pd.Timestamp(day)))
    if pos < n:
        raise ValueError(f"fewer than {n} sessions before {day} in the calendar")
    return list(sessions[pos - n : pos])


def sessions_from(day: date | str, n: int) -> list[pd.Timestamp]:
    """The `n` XNYS sessions starting on or after `day`, oldest first."""
    sessions = get_calendar("XNYS").sessions
    pos = int(sessions.searchsorted(pd.Timestamp(day)))
    return list(sessions[pos : pos + n])


def warmup(
    before: date | str,
    n: int,
    *,
    price: float = 100.0,
    rng: float = 2.0,
    volume: int = 1000,
    hlc: Sequence[tuple[float, float, float]] | None = None,
    volumes: Sequence[int] | None = None,
) -> list[Session]:
    """`n` one-bar sessions (a 09:30 bar each) just before `before`.

    By default every bar is open=close=`price`, high/low = price +/- rng/2, so each true range after
    the first is `rng` and the Wilder ATR of these sessions is exactly `rng`. `hlc` gives explicit
    (high, low, close) per session (open = close) and `volumes` explicit volumes, oldest first.
    """
    days = sessions_before(before, n)
    if hlc is None:
        hlc = [(price + rng / 2, price - rng / 2, price)] * n
    if volumes is None:
        volumes = [volume] * n
    if len(hlc) != n or len(volumes) != n:
        raise ValueError("hlc and volumes need one entry per warm-up session")
    return [
        (day.date(), [("09:30", c, h, lo, c, v)])
        for day, (h, lo, c), v in zip(days, hlc, volumes, strict=True)
    ]
