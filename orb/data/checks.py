"""One bar check for every path (files, cache, vendors, synthetic): values no market can print.

A bar is bad when a price is non-positive or non-finite, OHLC is inconsistent
(low <= min(open, close) <= max(open, close) <= high), volume is negative, or the price jumps more than
`max_jump` (a fraction) from the previous bar's close within one session. Each problem is reported per
symbol with its count and first offending stamp; the sessions holding bad bars are returned so they can
be skipped (reason `bad_bars`) or the run stopped (`data.bad_bars: error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from orb.errors import DataError

BAD_BARS_REASON = "bad_bars"
DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class BarProblem:
    """One kind of bad bar: how many and the first few stamps (UTC)."""

    kind: str
    count: int
    first: tuple[pd.Timestamp, ...]

    def describe(self) -> str:
        head, *rest = (f"{t:%Y-%m-%d %H:%M}" for t in self.first)
        also = f"; then {', '.join(rest)}" if rest else ""
        return f"{self.count} bars {self.kind} (first at {head} UTC{also})"


@dataclass(frozen=True)
class CheckResult:
    """Problems found in a frame and the exchange-local session dates holding them."""

    problems: tuple[BarProblem, ...]
    bad_sessions: frozenset[date]

    @property
    def ok(self) -> bool:
        return not self.problems


def _masks(bars: pd.DataFrame, sessions: np.ndarray, max_jump: float) -> dict[str, np.ndarray]:
    o, h, lo, c = (bars[col].to_numpy(dtype="float64") for col in ("open", "high", "low", "close"))
    v = bars["volume"].to_numpy()
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        positive = (o > 0) & (h > 0) & (lo > 0) & (c > 0)
        ohlc = finite & positive & ((lo > np.minimum(o, c)) | (np.maximum(o, c) > h))
        prev_close = np.concatenate(([np.nan], c[:-1]))
        same = np.concatenate(([False], sessions[1:] == sessions[:-1]))
        move = np.maximum(np.abs(o / prev_close - 1), np.abs(c / prev_close - 1))
        jump = same & finite & positive & np.concatenate(([False], positive[:-1])) & (move > max_jump)
    return {
        "have non-finite prices (NaN or inf)": ~finite,
        "have zero or negative prices": finite & ~positive,
        "violate low <= min(open, close) <= max(open, close) <= high": ohlc,
        "have negative volume": v < 0,
        f"jump more than {max_jump:.0%} from the previous bar's close": jump,
    }


def check_bars(bars: pd.DataFrame, timezone: str, max_jump: float = 0.5) -> CheckResult:
    """Every problem in `bars` (the bar contract; sessions are exchange-local dates in `timezone`)."""
    if bars.empty:
        return CheckResult((), frozenset())
    wall = pd.DatetimeIndex(bars.index).tz_convert(timezone).tz_localize(None).as_unit("ns").asi8
    sessions = wall - wall % DAY_NS  # local midnight of each bar's day
    problems, bad = [], np.zeros(len(bars), dtype=bool)
    for kind, mask in _masks(bars, sessions, max_jump).items():
        if mask.any():
            stamps = tuple(pd.DatetimeIndex(bars.index[mask][:3]).tz_convert("UTC"))
            problems.append(BarProblem(kind, int(mask.sum()), stamps))
            bad |= mask
    days = frozenset(d.date() for d in pd.DatetimeIndex(np.unique(sessions[bad]).view("datetime64[ns]")))
    return CheckResult(tuple(problems), days)


def report_lines(symbol: str, result: CheckResult, where: str, action: str) -> list[str]:
    """One line per problem: `SYM: N bars <kind> (first at ...) in <where>; <action>`."""
    return [f"{symbol}: {p.describe()} in {where}; {action}" for p in result.problems]


def apply_bad_bars_policy(
    symbol: str, result: CheckResult, where: str, policy: str
) -> tuple[frozenset[date], list[str]]:
    """(sessions to skip, warnings) under `data.bad_bars: skip`; DataError naming the problem under
    `error`."""
    if result.ok:
        return frozenset(), []
    days = sorted(result.bad_sessions)
    if policy == "error":
        first = result.problems[0]
        more = f" and {len(result.problems) - 1} other kind(s)" if len(result.problems) > 1 else ""
        raise DataError(
            f"{symbol}: {first.describe()}{more} in {where}; fix the data, or set data.bad_bars: skip "
            f"to skip the {len(days)} session(s) holding them"
        )
    shown = ", ".join(str(d) for d in days[:3]) + (f" and {len(days) - 3} more" if len(days) > 3 else "")
    action = f"session(s) {shown} skipped (reason {BAD_BARS_REASON})"
    return frozenset(days), report_lines(symbol, result, where, action)
