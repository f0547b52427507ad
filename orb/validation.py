"""OR data validation (strategy.md 2, `orb.validate`): one skip reason per session, "" when valid."""

from __future__ import annotations

import numpy as np


def validate_or(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    offset: np.ndarray,
    starts: np.ndarray,
    or_end: np.ndarray,
    or_minutes: np.ndarray,
    dirty: np.ndarray,
    interval: int,
) -> list[str]:
    """The first failing check of each session's OR window [starts, or_end), in the order of strategy.md 2.

    `offset` is each bar's minutes since its session open; `dirty` flags sessions whose OR window had a
    duplicate or out-of-order stamp in the raw bars; `interval` is the bar length in minutes."""
    out = []
    for s in range(len(starts)):
        a, b = starts[s], or_end[s]
        expected = or_minutes[s] // interval
        offs = offset[a:b]
        if b == a:
            out.append("missing_bar")  # an empty window lacks every expected bar
        elif b - a != expected or not np.array_equal(offs, np.arange(expected) * interval):
            out.append("missing_bar")
        elif dirty[s]:
            out.append("duplicate_timestamp")
        elif (
            np.isnan(o[a:b]).any()
            or np.isnan(h[a:b]).any()
            or np.isnan(lo[a:b]).any()
            or np.isnan(c[a:b]).any()
        ):
            out.append("nan_value")
        elif (lo[a:b] > np.minimum(o[a:b], c[a:b])).any() or (np.maximum(o[a:b], c[a:b]) > h[a:b]).any():
            out.append("ohlc_violation")
        elif v[a:b].sum() <= 0:
            out.append("zero_volume")
        else:
            out.append("")
    return out
