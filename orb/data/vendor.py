"""What every market-data vendor shares: request pacing, retries, and an incremental Parquet cache.

- `TokenBucket`: the plan's requests per minute, respected before each request (one bucket per vendor
  and rate, shared by the threads fetching several symbols).
- `PacedAdapter`: a `requests` transport adapter that takes a token before every HTTP attempt, retries
  429 / 5xx with the server's Retry-After (else exponential backoff) and a refused connection or failed
  DNS lookup at most once. Used by clients built on `requests.Session` (alpaca-py).
- `call_with_retries`: the same policy around one client call (clients without a shared session).
- `load_vendor`: bars of sessions first..last through the cache; only the sessions it lacks are fetched
  (a later, longer request downloads only the new part). The cache keeps regular and extended hours,
  per vendor, adjustment and feed: `cache_dir/<vendor>-<adjustment>[-<feed>]/1m/SYMBOL_START_END.parquet`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from loguru import logger
from requests.adapters import HTTPAdapter

from orb.data.bars import empty_bars, make_bars, tidy_index
from orb.data.cache import BAR_DTYPES, cache_path, content_problem, write_cached
from orb.data.checks import check_bars
from orb.errors import SourceUnavailableError
from orb.schema import BAR_COLUMNS
from orb.sessions import schedule

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CONNECT_MARKERS = (
    "NameResolutionError",
    "NewConnectionError",
    "ConnectionRefusedError",
    "gaierror",
    "Failed to resolve",
    "Name or service not known",
    "Connection refused",
    "Could not resolve host",
)
CONNECT_CLASSES = frozenset(
    {"gaierror", "ConnectionRefusedError", "NameResolutionError", "NewConnectionError", "DNSError"}
)
MAX_WAIT = 120.0


class TokenBucket:
    """At most `per_minute` acquisitions per minute, with a burst of at most `burst` (thread-safe)."""

    def __init__(self, per_minute: float, burst: float | None = None, clock=time.monotonic, sleep=time.sleep):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, burst if burst is not None else min(per_minute / 60.0 * 5, per_minute))
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self.lock = threading.Lock()
        self.taken = 0

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited.

        The token is reserved under the lock (the balance may go negative), so concurrent callers are
        spaced 1/rate apart without polling."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1
            self.taken += 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


_BUCKETS: dict[tuple[str, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket_for(vendor: str, per_minute: float) -> TokenBucket:
    """The process-wide bucket of a vendor at a rate (shared by every symbol's fetch)."""
    with _BUCKETS_LOCK:
        return _BUCKETS.setdefault((vendor, per_minute), TokenBucket(per_minute))


def is_connect_failure(exc: BaseException) -> bool:
    """True for a failed DNS lookup or a refused connection anywhere in `exc`'s chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & CONNECT_CLASSES:
            return True
        if any(marker in str(current) for marker in CONNECT_MARKERS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def retry_after(headers, fallback: float) -> float:
    """Seconds to wait from a Retry-After header (seconds form), else `fallback`; capped."""
    value = (headers or {}).get("Retry-After") if headers is not None else None
    try:
        return min(max(float(value), 0.0), MAX_WAIT)
    except (TypeError, ValueError):
        return min(fallback, MAX_WAIT)


@dataclass
class Policy:
    """Retry policy of one vendor: retries of rate limits and server errors, the first backoff."""

    vendor: str
    retries: int
    backoff: float
    bucket: TokenBucket
    sleep: Callable[[float], None] = time.sleep


class PacedAdapter(HTTPAdapter):
    """requests adapter: a token before each attempt; 429/5xx retried honouring Retry-After; a connect
    failure retried once. The final answer (or error) is returned to the client as usual."""

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy
        self.attempts = 0

    def send(self, request, *args, **kwargs):  # type: ignore[override]
        policy, connect_failures = self.policy, 0
        for attempt in range(policy.retries + 1):
            policy.bucket.acquire()
            self.attempts += 1
            try:
                response = super().send(request, *args, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                if not is_connect_failure(exc) or connect_failures >= 1:
                    raise
                connect_failures += 1
                policy.sleep(min(policy.backoff, 1.0))
                continue
            if response.status_code not in RETRY_STATUS or attempt == policy.retries:
                return response
            wait = retry_after(response.headers, policy.backoff * 2**attempt)
            logger.debug(
                f"{policy.vendor}: HTTP {response.status_code}; "
                f"retry {attempt + 1}/{policy.retries} in {wait:g}s"
            )
            response.close()
            policy.sleep(wait)
        return response


def call_with_retries(
    call: Callable[[], object],
    policy: Policy,
    *,
    status_of: Callable[[BaseException], tuple[int | None, object]],
) -> object:
    """`call()` after a token; rate limits and server errors retried, a connect failure once.

    `status_of(exc)` gives (HTTP status or None, headers) of a client exception."""
    connect_failures = 0
    attempt = 0
    while True:
        policy.bucket.acquire()
        try:
            return call()
        except Exception as exc:
            status, headers = status_of(exc)
            if status is None and is_connect_failure(exc) and connect_failures < 1:
                connect_failures += 1
                policy.sleep(min(policy.backoff, 1.0))
                continue
            if status not in RETRY_STATUS or attempt >= policy.retries:
                raise
            wait = retry_after(headers, policy.backoff * 2**attempt)
            logger.debug(f"{policy.vendor}: HTTP {status}; retry {attempt + 1}/{policy.retries} in {wait:g}s")
            policy.sleep(wait)
            attempt += 1


def unreachable(vendor: str, symbol: str, exc: BaseException, env: str) -> SourceUnavailableError:
    """The one-line error of a vendor that could not be reached."""
    return SourceUnavailableError(
        f"{vendor} could not be reached for {symbol} ({type(exc).__name__}); check the network "
        f"(and ${env} if you set it), or use --data PATH or --synthetic"
    )


# ---------------------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class Segment:
    first: date
    last: date
    path: Path


def _segments(folder: Path, symbol: str) -> list[Segment]:
    out = []
    for path in sorted(folder.glob(f"{symbol}_*.parquet")):
        parts = path.stem.rsplit("_", 2)
        if len(parts) != 3 or parts[0] != symbol:
            continue
        try:
            out.append(Segment(date.fromisoformat(parts[1]), date.fromisoformat(parts[2]), path))
        except ValueError:
            continue
    return out


def _read_segment(seg: Segment, symbol: str, timezone: str, max_jump: float) -> pd.DataFrame | None:
    """A cached segment's bars, or None (the file is deleted) when it is unreadable or fails a check."""
    try:
        bars = pd.read_parquet(seg.path)
        problem = None
        if list(bars.columns) != list(BAR_COLUMNS) or any(
            str(bars[c].dtype) != t for c, t in BAR_DTYPES.items()
        ):
            problem = "wrong columns or dtypes"
        elif not isinstance(bars.index, pd.DatetimeIndex) or str(bars.index.tz) != "UTC":
            problem = "an index that is not UTC timestamps"
        elif not bars.index.is_monotonic_increasing or not bars.index.is_unique:
            problem = "unsorted or duplicate timestamps"
        else:
            days = bars.index.tz_convert(timezone).date
            if len(days) and (days.min() < seg.first or days.max() > seg.last):
                problem = "bars outside its name's dates"
            else:
                problem = content_problem(bars, timezone, max_jump)
    except Exception as exc:  # pyarrow raises many types for damaged files
        problem = f"an unreadable file ({type(exc).__name__})"
    if problem is None:
        bars = bars.set_axis(bars.index.as_unit("ns").rename("timestamp"), axis=0)
        bars.attrs = {}
        return bars
    logger.warning(f"{symbol}: cache file {seg.path} holds {problem}; discarded, fetching again")
    with contextlib.suppress(OSError):
        os.unlink(seg.path)
    return None


Fetch = Callable[[str, date, date], pd.DataFrame]


def load_vendor(
    symbol: str,
    fetch: Fetch,
    *,
    folder_name: str,
    first: date,
    last: date,
    calendar: str,
    timezone: str,
    cache_dir: Path | None,
    today: date,
    max_jump: float,
) -> tuple[pd.DataFrame, bool]:
    """(all-hours bars of sessions first..last, whether anything was fetched); the cache is read and
    extended so only the sessions it lacks are requested from `fetch(symbol, first, last)`."""
    sched = schedule(first, last, calendar)
    wanted = [d.date() for d in sched.index]
    pieces: list[pd.DataFrame] = []
    covered: set[date] = set()
    segments: list[Segment] = []
    folder = Path(cache_dir) / folder_name / "1m" if cache_dir is not None else None
    if folder is not None and folder.is_dir():
        for seg in _segments(folder, symbol):
            if seg.last < first or seg.first > last:
                continue
            bars = _read_segment(seg, symbol, timezone, max_jump)
            if bars is None:
                continue
            segments.append(seg)
            pieces.append(bars)
            covered.update(d for d in wanted if seg.first <= d <= seg.last)
    missing = [d for d in wanted if d not in covered]
    position = {d: i for i, d in enumerate(wanted)}
    runs: list[list[date]] = []
    for day in missing:
        if runs and position[day] == position[runs[-1][-1]] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    fetched = []
    for run in runs:
        if run[0] > today:
            continue
        logger.debug(f"{symbol}: fetching sessions {run[0]} .. {run[-1]}")
        fetched.append(fetch(symbol, run[0], min(run[-1], today)))
    merged = pd.concat([*pieces, *fetched]) if pieces or fetched else empty_bars()
    merged, _ = tidy_index(merged.sort_index(kind="stable"), symbol)
    if folder is not None and fetched:
        _store(folder, symbol, merged, segments, wanted, today, cache_dir, folder_name, timezone, max_jump)
    local = merged.index.tz_convert(timezone).date
    keep = (local >= first) & (local <= last) if len(merged) else np.zeros(0, dtype=bool)
    return merged[keep], bool(fetched)


def _store(folder, symbol, merged, segments, wanted, today, cache_dir, folder_name, timezone, max_jump):
    """Write the union of the old segments and the new bars as one file (sessions before today only)."""
    done = [d for d in wanted if d < today]
    span_first = min([*(s.first for s in segments), *done[:1]], default=None)
    span_last = max([*(s.last for s in segments), *done[-1:]], default=None)
    if span_first is None or not done:
        return
    local = merged.index.tz_convert(timezone).date
    keep = merged[(local >= span_first) & (local <= span_last) & (local < today)]
    result = check_bars(keep, timezone, max_jump)
    if not result.ok:
        logger.debug(f"{symbol}: not cached ({result.problems[0].describe()})")
        return
    target = cache_path(cache_dir, folder_name, "1m", symbol, span_first, span_last)
    if write_cached(cache_dir, folder_name, "1m", symbol, keep, span_first, span_last) is None:
        return
    for seg in segments:
        if seg.path != target:
            with contextlib.suppress(OSError):
                os.unlink(seg.path)


def frame_from_columns(stamps, open_, high, low, close, volume, symbol: str) -> pd.DataFrame:
    """Bars (bar contract, all hours) from vendor arrays; rows without prices dropped, sorted, unique."""
    index = pd.DatetimeIndex(stamps)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    columns = [np.asarray(x, dtype="float64") for x in (open_, high, low, close, volume)]
    keep = ~np.isnan(np.column_stack(columns)).any(axis=1) if len(index) else np.zeros(0, dtype=bool)
    volume_int = np.rint(columns[4][keep]).astype("int64")
    bars = make_bars(index[keep], *(c[keep] for c in columns[:4]), volume_int)
    return tidy_index(bars.sort_index(kind="stable"), symbol)[0]
