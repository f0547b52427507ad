"""Daily and intraday indicators, all causal (strategy.md sections 1, 2 and 4).

Daily arrays are indexed by session position (the sessions present in the data, in order). A value
`*_prior[s]` uses sessions before `s` only; NaN where not enough prior sessions exist.
"""

from __future__ import annotations

import numpy as np


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """TR per session; NaN for the first session (it has no previous close)."""
    prev_close = np.concatenate(([np.nan], close[:-1]))
    return np.maximum(high, prev_close) - np.minimum(low, prev_close)


def wilder_prior(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder average known before each session: mean of the first `period` values, then
    `(prev * (period - 1) + x) / period`. `values[0]` is skipped when NaN (no TR for session 0)."""
    n = len(values)
    after = np.full(n, np.nan)
    first = 1 if n and np.isnan(values[0]) else 0
    seed_end = first + period  # exclusive: the first average closes with session seed_end - 1
    if seed_end <= n:
        avg = float(np.mean(values[first:seed_end]))
        after[seed_end - 1] = avg
        for s in range(seed_end, n):
            avg = (avg * (period - 1) + values[s]) / period
            after[s] = avg
    return np.concatenate(([np.nan], after[:-1]))


def adx_prior(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder ADX(period) known before each session (NaN until 2 * period sessions have a TR)."""
    n = len(high)
    out_after = np.full(n, np.nan)
    if n < 2:
        return np.full(n, np.nan)
    up = np.diff(high)
    down = -np.diff(low)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = true_range(high, low, close)[1:]
    if len(tr) < period:
        return np.full(n, np.nan)
    s_tr, s_p, s_m = tr[:period].sum(), plus_dm[:period].sum(), minus_dm[:period].sum()
    dx_values: list[float] = []
    adx = np.nan
    for k in range(period - 1, len(tr)):
        if k >= period:
            s_tr = s_tr - s_tr / period + tr[k]
            s_p = s_p - s_p / period + plus_dm[k]
            s_m = s_m - s_m / period + minus_dm[k]
        plus_di = 100.0 * s_p / s_tr if s_tr > 0 else 0.0
        minus_di = 100.0 * s_m / s_tr if s_tr > 0 else 0.0
        total = plus_di + minus_di
        dx = 100.0 * abs(plus_di - minus_di) / total if total > 0 else 0.0
        if len(dx_values) < period:
            dx_values.append(dx)
            if len(dx_values) == period:
                adx = float(np.mean(dx_values))
        else:
            adx = (adx * (period - 1) + dx) / period
        out_after[k + 1] = adx  # tr[k] belongs to session k + 1
    return np.concatenate(([np.nan], out_after[:-1]))


def session_vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """VWAP of the typical price from each session's first bar through each bar; NaN at zero volume."""
    cum_tpv = high + low
    cum_tpv += close
    cum_tpv /= 3.0
    cum_tpv *= volume  # (high + low + close) / 3 * volume, in place
    np.cumsum(cum_tpv, out=cum_tpv)
    cum_vol = np.cumsum(volume, dtype=np.float64)
    lengths = np.diff(np.append(starts, len(high)))
    before = starts[1:] - 1  # the last bar of the previous session
    cum_vol -= np.repeat(np.concatenate(([0.0], cum_vol[before])), lengths)
    traded = cum_vol > 0
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf after an infinite price: NaN
        cum_tpv -= np.repeat(np.concatenate(([0.0], cum_tpv[before])), lengths)
        cum_tpv /= cum_vol
    cum_tpv[~traded] = np.nan
    return cum_tpv
