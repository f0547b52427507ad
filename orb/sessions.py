"""Trading sessions from the exchange calendar (exchange_calendars): holidays, early closes, DST.

All timestamps here are tz-aware UTC; session dates are exchange-local dates (naive `datetime64`
midnight values in a DatetimeIndex named `session_date`).
"""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd

from orb.errors import RequestError

EARLIEST = pd.Timestamp("1990-01-01")
_CALENDARS: dict[str, object] = {}


def get_calendar(code: str = "XNYS", covering: date | str | None = None):
    """The exchange calendar from two years before `covering` (default 1995) to two years ahead.

    Building a calendar costs about 0.1 s per decade, so one instance is kept per code and rebuilt
    only when an earlier date is needed (the library default is 20 years back).
    """
    import exchange_calendars as xcals

    wanted = max(pd.Timestamp(covering or "1997-01-01") - pd.DateOffset(years=2), EARLIEST).normalize()
    wanted = wanted.replace(month=1, day=1)
    cal = _CALENDARS.get(code)
    if cal is not None and cal.first_session <= wanted + pd.DateOffset(days=10):
        return cal
    end = (pd.Timestamp.today() + pd.DateOffset(years=2)).strftime("%Y-12-31")
    try:
        with warnings.catch_warnings():  # exchange_calendars 4.13 uses Series.values (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            cal = xcals.get_calendar(code, start=wanted.strftime("%Y-%m-%d"), end=end)
    except xcals.errors.InvalidCalendarName:
        raise RequestError(f"unknown exchange calendar {code!r} in session.calendar; use e.g. XNYS") from None
    _CALENDARS[code] = cal
    return cal


def schedule(start: date | str, end: date | str, code: str = "XNYS") -> pd.DataFrame:
    """Sessions with start <= session_date <= end: columns `open` and `close` (UTC)."""
    cal = get_calendar(code, start)
    sched = cal.schedule.loc[pd.Timestamp(start) : pd.Timestamp(end), ["open", "close"]]
    return pd.DataFrame(
        {"open": sched["open"], "close": sched["close"]},
        index=pd.DatetimeIndex(sched.index, name="session_date"),
    )


def session_offset(day: date | str, n: int, code: str = "XNYS") -> pd.Timestamp:
    """The session `n` sessions before (n > 0) the first session on or after `day`."""
    cal = get_calendar(code, pd.Timestamp(day) - pd.DateOffset(days=2 * n))
    sessions = cal.sessions
    pos = int(sessions.searchsorted(pd.Timestamp(day)))
    return sessions[max(pos - n, 0)]


def recent_sessions(last: date | str, count: int, code: str = "XNYS") -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) of the `count` most recent sessions on or before `last`."""
    cal = get_calendar(code, pd.Timestamp(last) - pd.DateOffset(days=2 * count))
    sessions = cal.sessions
    pos = int(sessions.searchsorted(pd.Timestamp(last), side="right")) - 1
    if pos < 0:
        raise RequestError(f"no trading session on or before {last}")
    return sessions[max(pos - count + 1, 0)], sessions[pos]


def assign_sessions(index: pd.DatetimeIndex, sched: pd.DataFrame) -> np.ndarray:
    """Position in `sched` of the session whose [open, close) holds each timestamp; -1 outside."""
    if index.tz is None:
        raise ValueError("assign_sessions needs tz-aware timestamps")
    ts = index.as_unit("ns").asi8
    opens = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8
    pos = np.searchsorted(opens, ts, side="right") - 1
    valid = pos >= 0
    inside = np.zeros(len(ts), dtype=bool)
    inside[valid] = ts[valid] < closes[pos[valid]]
    return np.where(inside, pos, -1)
