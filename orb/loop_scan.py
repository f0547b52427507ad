"""What orb.loop derives from a `Prepared` before its first session, with numpy: the per-session values
as Python lists (the loop reads them one at a time), and the bars on which an entry rule can act.

Both depend on the prepared data and a few entry settings only, so a sweep keeps them in `p.derived`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from orb.config import Config, Direction, EntryMode
from orb.prepare import Prepared


@dataclass(frozen=True, slots=True)
class SessionLists:
    """`Prepared.sessions` as Python lists (floats, ints, bools, dates), read by the loop one value at a
    time; `low_open` / `high_open` are min(open, low) / max(open, high) per bar (NaN when either is)."""

    dates: list
    close_ns: list
    starts: list
    ends: list
    or_end: list
    or_minutes: list
    or_high: list
    or_low: list
    atr: list
    upper: list
    lower: list
    adx_weak: list
    relvol_flag: list
    prev_high: list
    prev_low: list
    low_open: np.ndarray
    high_open: np.ndarray


def session_lists(p: Prepared) -> SessionLists:
    """One `.tolist()` per per-session array of `p`."""
    S = p.sessions
    o, h, lo, _, _ = p.arrays
    with np.errstate(invalid="ignore"):  # NaN when either is NaN
        low_open, high_open = np.minimum(o, lo), np.maximum(o, h)
    return SessionLists(
        dates=S.dates.date.tolist(),
        close_ns=S.close_ts.as_unit("ns").asi8.tolist(),
        **{
            name: getattr(S, name).tolist()
            for name in ("starts", "ends", "or_end", "or_minutes", "or_high", "or_low", "atr", "upper",
                         "lower", "adx_weak", "relvol_flag", "prev_high", "prev_low")
        },
        low_open=low_open,
        high_open=high_open,
    )  # fmt: skip


def local_minutes(p: Prepared, idx: np.ndarray, timezone: str) -> list[int]:
    """Exchange-local minute of the day (hour * 60 + minute) of the bars at `idx`.

    Each bar takes its session's UTC offset, exact when no session spans an offset change (checked at
    every session's first and last bar; otherwise every stamp is converted)."""
    S, ts = p.sessions, p.ts_ns
    n = len(ts)
    if not len(idx):
        return []
    edges = np.concatenate((S.starts, np.append(S.starts[1:], n) - 1))
    local = pd.DatetimeIndex(ts[edges], tz="UTC").tz_convert(timezone).tz_localize(None)
    offset = local.as_unit("ns").asi8 - ts[edges]
    first, last = np.split(offset, 2)
    if not np.array_equal(first, last):
        moved = pd.DatetimeIndex(ts[idx], tz="UTC").tz_convert(timezone)
        return (moved.hour * 60 + moved.minute).to_numpy().tolist()
    wall = ts[idx] + first[p.ses[idx]]
    return (wall // 60_000_000_000 % 1440).tolist()


def allowed_sides(cfg: Config, p: Prepared) -> tuple[np.ndarray, np.ndarray] | None:
    """Per session, (long, short) allowed by `entry.direction` (strategy.md 11.1); None: both, always.

    `or_candle`: the sign of close(last OR bar) - open(first OR bar), bars present in the window;
    a doji allows neither side."""
    direction = cfg.entry.direction
    if direction is Direction.BOTH:
        return None
    n_ses = len(p.sessions.starts)
    yes, no = np.ones(n_ses, dtype=bool), np.zeros(n_ses, dtype=bool)
    if direction is Direction.LONG:
        return yes, no
    if direction is Direction.SHORT:
        return no, yes
    if not len(p.ts_ns):
        return no, no
    o, _, _, c, _ = p.arrays
    body = c[np.maximum(p.sessions.or_end - 1, 0)] - o[p.sessions.starts]
    return body > 0, body < 0


def find_opportunities(cfg: Config, p: Prepared) -> tuple:
    """The bars on which an entry rule can act, found for every session at once.

    stop mode: a side is armed and its trigger touched (strategy.md 3); close mode: an armed side's
    close beyond its trigger with t+1 not the session's last bar (9.14); only sides `entry.direction`
    allows (11.1); bars from the first after the OR to before the last. Every other bar can do
    nothing while flat, so the loop visits these bars only. Session s holds `opp[opp_from[s]:
    opp_to[s]]`; `opp_long`/`opp_short` say which sides act, `opp_minute` the local minute.
    or_candle mode: `or_minute`, the local minute of each session's first bar after the OR."""
    S, n = p.sessions, len(p.ts_ns)
    mode, tz = cfg.entry.mode, cfg.session.timezone
    if mode is EntryMode.OR_CANDLE:
        or_minute = local_minutes(p, np.minimum(S.or_end, max(n - 1, 0)), tz) if n else []
        return or_minute, [], [], [], [], [], []
    _, h, lo, c, _ = p.arrays
    lengths = np.diff(np.append(S.starts, n))  # a session's bars are contiguous: x[ses] is a repeat
    upper, lower = np.repeat(S.upper, lengths), np.repeat(S.lower, lengths)
    c_prev = np.empty(n)  # close(t-1); t is never a session's first bar here
    c_prev[:1] = np.nan
    c_prev[1:] = c[:-1]
    last = S.ends - 1  # the session's last bar never opens a position
    long_act = c_prev <= upper
    short_act = c_prev >= lower
    if mode is EntryMode.STOP:
        stop_at = last
        long_act &= h >= upper
        short_act &= lo <= lower
    else:
        stop_at = last - 1  # t+1 must exist and not be the last bar
        long_act &= c > upper
        short_act &= c < lower
    sides = allowed_sides(cfg, p)
    if sides is not None:
        long_act &= np.repeat(sides[0], lengths)
        short_act &= np.repeat(sides[1], lengths)
    acting = np.flatnonzero(long_act | short_act)
    ses = p.ses[acting]
    opp = acting[(acting >= S.or_end[ses]) & (acting < stop_at[ses])]  # in the session's window
    return (
        [],
        opp.tolist(),
        long_act[opp].tolist(),
        short_act[opp].tolist(),
        local_minutes(p, opp, tz),
        np.searchsorted(opp, S.or_end).tolist(),
        np.searchsorted(opp, np.maximum(stop_at, S.or_end)).tolist(),
    )
