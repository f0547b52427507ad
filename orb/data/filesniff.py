"""Infer a bar file's timezone and bar label from where its regular-hours bars fall.

Candidates are (exchange timezone | UTC) x (bar start | bar end). For each, the stamps are read that
way and scored: bars inside regular hours minus bars just outside them (one bar before the open, at the
close). A file holding regular hours only has one clear winner. A file with extended hours fits several
readings equally; then the opening minute decides: its volume is many times the pre-market minute before
it only when the stamps are read the right way. Too few bars to tell: the explicit settings, else the
exchange timezone and bar start, are used with a note naming the settings.

A file with more than `SAMPLE_DAYS` days is scored on that many whole days spread evenly over it (the
days are cut at a time of day outside regular hours under every reading, so no session is split); the
note says so. When the sample holds too few regular-hours bars, every bar is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from orb.errors import DataError
from orb.sessions import assign_sessions, schedule

AUTO = "auto"
MIN_EVIDENCE_BARS = 120  # regular-hours bars needed before a reading counts as evidence
SPIKE = np.log(2.0)  # the opening-minute volume must be >= 2x the minute before (median over sessions)
SAMPLE_DAYS = 100  # larger files are scored on this many of their days
DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class Reading:
    """One way of reading a file's stamps and how well it fits the exchange's sessions."""

    timezone: str
    label: str
    inside: int  # bars inside regular hours
    outside: int  # bars one step before an open or at a close
    sessions: int  # sessions with at least one regular-hours bar
    spike: float  # median log volume ratio, opening bar / the bar before it (nan when unknown)
    first_stamp: str  # the most common first regular-hours stamp of a session, as written in the file
    last_stamp: str

    @property
    def fit(self) -> int:
        return self.inside - self.outside

    def describe(self) -> str:
        tz = "timezone-aware" if self.timezone == "aware" else f"{self.timezone}"
        return f"{tz}, bar {self.label}"


def step_minutes(stamps: pd.DatetimeIndex) -> int:
    """The most common gap in minutes between consecutive stamps of one day (1 when unknown)."""
    ns = stamps.as_unit("ns").asi8
    if not (ns[1:] >= ns[:-1]).all():
        ns = np.sort(ns)
    gaps = np.diff(ns) // 60_000_000_000
    gaps = gaps[(gaps > 0) & (gaps < 24 * 60)]
    if gaps.size == 0:
        return 1
    return int(np.argmax(np.bincount(gaps)))  # the smallest of the most common gaps


def to_bar_start_utc(stamps: pd.DatetimeIndex, timezone: str, label: str, step: int) -> pd.DatetimeIndex:
    """UTC bar starts of `stamps` read in `timezone` (ignored when aware) with `label` (start | end)."""
    index = stamps
    if index.tz is None:
        index = index.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    index = index.tz_convert("UTC").as_unit("ns")
    return index - pd.Timedelta(minutes=step) if label == "end" else index


def _reading(stamps, volume, timezone, label, step, calendar, exchange_tz) -> Reading:
    utc = to_bar_start_utc(stamps, timezone, label, step)
    known = ~utc.isna()
    if not known.all():
        utc, volume, stamps = utc[known], volume[known], stamps[known]
    if len(utc) == 0:
        return Reading(timezone, label, 0, 0, 0, float("nan"), "", "")
    ns = utc.asi8
    first, last = (pd.Timestamp(t, tz="UTC").tz_convert(exchange_tz).date() for t in (ns.min(), ns.max()))
    sched = schedule(first - pd.Timedelta(days=1), last, calendar)
    pos = assign_sessions(utc, sched)
    inside = pos >= 0
    opens = pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8
    before = opens - step * 60_000_000_000
    outside = _count_in(before, ns) + _count_in(closes, ns)
    held = pos[inside]
    ordered = bool((held[1:] >= held[:-1]).all())
    if not ordered:
        order = np.argsort(held, kind="stable")
        held = held[order]
    starts = np.flatnonzero(np.concatenate(([True], held[1:] != held[:-1]))) if len(held) else held
    present = held[starts]
    spike = float("nan")
    at_open, at_before = _first_values(ns, volume, opens[present]), _first_values(ns, volume, before[present])
    both = ~np.isnan(at_open) & ~np.isnan(at_before)
    if both.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.log((at_open[both] + 1.0) / (at_before[both] + 1.0))
        spike = float(np.median(ratios))
    first_stamp = last_stamp = ""
    if len(held):
        wall = (stamps.tz_localize(None) if stamps.tz is not None else stamps).as_unit("ns").asi8[inside]
        wall = wall if ordered else wall[order]
        first_stamp = _common_minute(np.minimum.reduceat(wall, starts))
        last_stamp = _common_minute(np.maximum.reduceat(wall, starts))
    return Reading(timezone, label, int(inside.sum()), outside, len(present), spike, first_stamp, last_stamp)


def _count_in(values: np.ndarray, ns: np.ndarray) -> int:
    """How many of the stamps `ns` are in `values` (sorted and unique)."""
    if not len(values):
        return 0
    at = np.minimum(np.searchsorted(values, ns), len(values) - 1)
    return int(np.count_nonzero(values[at] == ns))


def _first_values(ns: np.ndarray, volume: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The volume of the first bar (in file order) stamped at each of `targets`; NaN where none is."""
    if not (ns[1:] >= ns[:-1]).all():
        order = np.argsort(ns, kind="stable")
        ns, volume = ns[order], volume[order]
    out = np.full(len(targets), np.nan)
    if len(targets):
        at = np.minimum(np.searchsorted(ns, targets), len(ns) - 1)
        hit = ns[at] == targets
        out[hit] = volume[at[hit]]
    return out


def _common_minute(wall: np.ndarray) -> str:
    """The most common time of day (HH:MM, the earliest of ties) of wall-clock nanosecond stamps."""
    counts = np.bincount((wall % DAY_NS) // 60_000_000_000, minlength=24 * 60)
    minute = int(np.argmax(counts))
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class Decision:
    """The timezone and label to read a file with, one line of evidence (None: nothing inferred) and
    the bar step in minutes the stamps were read with (step_minutes)."""

    timezone: str
    label: str
    note: str | None
    step: int


def decide(
    stamps: pd.DatetimeIndex,
    volume: np.ndarray,
    *,
    path: Path,
    timezone: str,
    label: str,
    calendar: str,
    exchange_tz: str,
) -> Decision:
    """How to read `stamps` (naive or aware): `timezone`/`label` may be "auto"; DataError when the file
    is ambiguous under auto, or clearly contradicts an explicit setting."""
    aware = stamps.tz is not None
    step = step_minutes(stamps)
    zones = ["aware"] if aware else list(dict.fromkeys([exchange_tz, "UTC"]))
    keep, scope = _sample(stamps, zones, step, calendar)

    def score(keep: np.ndarray | None) -> list[Reading]:
        sub, vol = (stamps, volume) if keep is None else (stamps[keep], volume[keep])
        return [
            _reading(sub, vol, tz, lab, step, calendar, exchange_tz)
            for tz in zones
            for lab in ("start", "end")
        ]

    readings = score(keep)
    if keep is not None and max(r.inside for r in readings) < MIN_EVIDENCE_BARS:
        readings, scope = score(None), ""
    best = max(r.fit for r in readings)
    evidence = max(r.inside for r in readings) >= MIN_EVIDENCE_BARS
    sessions = max(r.sessions for r in readings)
    tolerance = max(sessions // 2, 1)
    contenders = [r for r in readings if r.fit >= best - tolerance]
    winner = _winner(contenders) if evidence else None
    wanted_tz = None if timezone == AUTO or aware else timezone
    wanted_label = None if label == AUTO else label

    def settle(tz: str) -> str:
        return timezone if aware and timezone != AUTO else (exchange_tz if tz == "aware" else tz)

    if winner is None:
        if evidence and (wanted_tz is None or wanted_label is None):
            raise DataError(
                f"--data file {path}: cannot tell how its stamps are meant ({_seen(contenders)}{scope}); "
                f"set data.file_timezone (e.g. UTC or {exchange_tz}) and data.file_bar_label (start or end), "
                f"or --tz and --bar-label"
            )
        tz = wanted_tz or (exchange_tz if not aware else settle("aware"))
        chosen_label = wanted_label or "start"
        note = None
        if timezone == AUTO or label == AUTO:
            note = (
                f"{path.name}: too few regular-hours bars to infer how stamps are meant; read as "
                f"{'timezone-aware' if aware else tz}, bar {chosen_label} (set --tz / --bar-label to be sure)"
            )
        return Decision(tz, chosen_label, note, step)
    if (wanted_tz and wanted_tz != winner.timezone) or (wanted_label and wanted_label != winner.label):
        given = ", ".join(
            f"{key}={value}"
            for key, value in (("data.file_timezone", wanted_tz), ("data.file_bar_label", wanted_label))
            if value
        )
        raise DataError(
            f"--data file {path}: {_evidence(winner)}{scope}, which means {winner.describe()}, "
            f"but {given} is set; "
            f"use --tz {settle(winner.timezone)} --bar-label {winner.label} (or auto)"
        )
    if wanted_tz is not None and wanted_label is not None:
        return Decision(wanted_tz, wanted_label, None, step)
    note = f"{path.name}: read as {winner.describe()} (auto: {_evidence(winner)}{scope})"
    return Decision(settle(winner.timezone), winner.label, note, step)


def _sample(
    stamps: pd.DatetimeIndex, zones: list[str], step: int, calendar: str
) -> tuple[np.ndarray | None, str]:
    """(mask of the bars of `SAMPLE_DAYS` whole days spread evenly over the file, ", scored on N of the
    file's M days ..."), or (None, "") to score every bar: a small file, or no time of day lies outside
    regular hours under every reading."""
    ns = stamps.as_unit("ns").asi8
    known = ~np.asarray(stamps.isna())
    if not known.any():
        return None, ""
    every = bool(known.all())
    lo, hi = (ns.min(), ns.max()) if every else (ns[known].min(), ns[known].max())
    if hi - lo < SAMPLE_DAYS * DAY_NS:
        return None, ""
    sched = schedule(
        pd.Timestamp(lo).date() - pd.Timedelta(days=2),
        pd.Timestamp(hi).date() + pd.Timedelta(days=2),
        calendar,
    )
    if sched.empty:
        return None, ""
    busy = np.zeros(24 * 60, dtype=bool)  # minutes of the day (as the stamps are written) inside a session
    for wall in ["UTC"] if "aware" in zones else zones:  # aware stamps: their UTC nanoseconds
        opens = _minute_of_day(sched["open"], wall) - 2 * step
        closes = _minute_of_day(sched["close"], wall) + 2 * step
        for first, last in set(zip(opens.tolist(), closes.tolist(), strict=True)):
            last += busy.size if last < first else 0  # a session across midnight on this wall clock
            busy[np.arange(first, last + 1) % busy.size] = True
    if busy.all():
        return None, ""
    day = (ns - int(np.argmin(busy)) * 60_000_000_000) // DAY_NS
    held = day if every else day[known]
    ordered = bool((held[1:] >= held[:-1]).all())
    days = held[np.concatenate(([True], held[1:] != held[:-1]))] if ordered else np.unique(held)
    if len(days) <= SAMPLE_DAYS:
        return None, ""
    picked = days[np.linspace(0, len(days) - 1, SAMPLE_DAYS).round().astype(np.int64)]
    scope = f", scored on {SAMPLE_DAYS} of the file's {len(days)} days, evenly spread"
    if every and ordered:  # each picked day is one run of rows
        keep = np.zeros(len(day), dtype=bool)
        ends = np.searchsorted(day, picked, side="right").tolist()
        for begin, end in zip(np.searchsorted(day, picked).tolist(), ends, strict=True):
            keep[begin:end] = True
        return keep, scope
    at = np.minimum(np.searchsorted(picked, day), len(picked) - 1)
    return known & (picked[at] == day), scope


def _minute_of_day(stamps: pd.Series, wall: str) -> np.ndarray:
    """Minutes after midnight of UTC `stamps` on the wall clock of timezone `wall`."""
    local = pd.DatetimeIndex(stamps).tz_convert(wall).tz_localize(None).as_unit("ns").asi8
    return (local % DAY_NS) // 60_000_000_000


def _winner(contenders: list[Reading]) -> Reading | None:
    """The one reading that fits clearly best, or None."""
    if len(contenders) == 1:
        return contenders[0]
    ranked = sorted(contenders, key=lambda r: -np.nan_to_num(r.spike, nan=-np.inf))
    top, second = ranked[0], ranked[1]
    if np.isnan(top.spike) or top.spike < SPIKE:
        return None
    if not np.isnan(second.spike) and second.spike > top.spike - SPIKE:
        return None
    return top


def _evidence(r: Reading) -> str:
    per = r.inside / max(r.sessions, 1)
    text = (
        f"{r.sessions} sessions with {per:.0f} regular-hours bars each, "
        f"stamped {r.first_stamp}-{r.last_stamp} in the file"
    )
    if r.outside and not np.isnan(r.spike):
        text += f", opening-minute volume {np.exp(r.spike):.1f}x the minute before"
    return text


def _seen(readings: list[Reading]) -> str:
    return "; ".join(
        f"as {r.describe()}: {r.inside} bars in regular hours, opening volume ratio "
        f"{'n/a' if np.isnan(r.spike) else f'{np.exp(r.spike):.1f}x'}"
        for r in readings
    )
