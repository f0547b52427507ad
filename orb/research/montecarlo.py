"""Monte Carlo bootstrap of a run's trade R sequence: how much of the result (and its drawdown) is luck.

Each path draws, with replacement, as many units as the run has: trades (`r_multiple` in entry order),
or with `by_session` whole sessions (all trades of one `session_date`, in entry order, so intraday
clustering is kept). Given `sessions` (a portfolio run: every session of the account), the units are
those sessions, the ones without a trade included (a flat day of the account), so the number of trading
days varies between paths as it could have in the run.

Per path: total R, max drawdown in R (the minimum of cum R minus its running max,
the max starting at 0; <= 0, measured after every trade, like `max_drawdown_r` of orb.metrics but at
trade rather than fill granularity), and the longest losing streak (consecutive trades with R < 0; a
trade with R == 0 breaks it, as in orb.metrics).

The summary gives percentiles 5/25/50/75/95 of each (numpy's linear interpolation), the probability
that the drawdown is deeper than each threshold in R (`-max_drawdown_r > threshold`, strictly), and the
bands: percentiles of cum R after each step (trade, or session with `by_session`) across paths, with
the run's own cum R as `observed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

PERCENTILES = (5, 25, 50, 75, 95)
STATS = ("total_r", "max_drawdown_r", "longest_losing_streak")
_CHUNK_CELLS = 2_000_000  # paths x steps simulated at once (about 16 MB per float64 array)


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """Per-path statistics, their summary and the percentile bands of one bootstrap."""

    n_paths: int
    seed: int
    by_session: bool
    n_trades: int
    n_units: int  # trades, or sessions with by_session: the draws per path
    dd_thresholds: tuple[float, ...]
    total_r: np.ndarray  # (n_paths,)
    max_drawdown_r: np.ndarray  # (n_paths,), <= 0
    longest_losing_streak: np.ndarray  # (n_paths,), int64
    observed: dict[str, float | int]  # the run's own sequence
    percentiles: dict[str, dict[str, float]]  # stat -> {"p5": ..., ..., "p95": ...}
    prob_drawdown_exceeds: dict[float, float]  # threshold (R) -> share of paths deeper than it
    bands: pd.DataFrame  # step, p5, p25, p50, p75, p95, observed

    def summary(self) -> dict:
        """The JSON-able summary (montecarlo_summary.json; orb.runs.write writes the files)."""
        return {
            "n_paths": self.n_paths,
            "seed": self.seed,
            "resample": "sessions" if self.by_session else "trades",
            "n_trades": self.n_trades,
            "n_units": self.n_units,
            "percentiles": self.percentiles,
            "mean": {stat: float(np.mean(getattr(self, stat))) for stat in STATS},
            "observed": self.observed,
            "drawdown_thresholds_r": list(self.dd_thresholds),
            "prob_max_drawdown_exceeds": {
                _key(threshold): p for threshold, p in self.prob_drawdown_exceeds.items()
            },
        }

    def paths(self) -> pd.DataFrame:
        """One row per path: path, total_r, max_drawdown_r, longest_losing_streak."""
        return pd.DataFrame(
            {
                "path": np.arange(self.n_paths, dtype=np.int64),
                "total_r": self.total_r,
                "max_drawdown_r": self.max_drawdown_r,
                "longest_losing_streak": self.longest_losing_streak,
            }
        )


def monte_carlo(
    trades: pd.DataFrame,
    n_paths: int,
    seed: int,
    *,
    by_session: bool = False,
    dd_thresholds: tuple[float, ...] = (5.0, 10.0, 20.0),
    sessions: Sequence[date] | None = None,
) -> MonteCarloResult:
    """Bootstrap `n_paths` resamplings of the trades' `r_multiple` (or of whole sessions) with `seed`.

    `sessions` (with `by_session` only) lists every session to draw from, each trade's among them."""
    if n_paths < 1:
        raise ValueError(f"monte carlo: n_paths must be >= 1, got {n_paths}")
    if any(not np.isfinite(t) or t < 0 for t in dd_thresholds):
        raise ValueError(f"monte carlo: drawdown thresholds must be finite R >= 0, got {dd_thresholds}")
    if sessions is not None and not by_session:
        raise ValueError("monte carlo: sessions are the units of a by_session bootstrap only")
    unit_r, unit_real = _units(trades, by_session, sessions)
    n_units, width = unit_r.shape
    rng = np.random.default_rng(seed)
    total = np.zeros(n_paths)
    max_dd = np.zeros(n_paths)
    streak = np.zeros(n_paths, dtype=np.int64)
    cum_units = np.zeros((n_paths, n_units))
    if n_units:
        chunk = max(1, _CHUNK_CELLS // (n_units * width))
        for a in range(0, n_paths, chunk):
            b = min(a + chunk, n_paths)
            draw = rng.integers(0, n_units, size=(b - a, n_units))
            total[a:b], max_dd[a:b], streak[a:b], cum_units[a:b] = _path_stats(unit_r[draw], unit_real[draw])
    obs_total, obs_dd, obs_streak, obs_cum = _path_stats(unit_r[None], unit_real[None])
    cum_units.sort(axis=0)  # in place: the per-path cum R is not needed past the bands
    band_values = _sorted_percentiles(cum_units, PERCENTILES)
    bands = pd.DataFrame(
        {
            "step": np.arange(1, n_units + 1, dtype=np.int64),
            **{f"p{q}": band_values[i] for i, q in enumerate(PERCENTILES)},
            "observed": obs_cum[0],
        }
    )
    thresholds = tuple(float(t) for t in dd_thresholds)
    stats = {"total_r": total, "max_drawdown_r": max_dd, "longest_losing_streak": streak}
    return MonteCarloResult(
        n_paths=n_paths,
        seed=seed,
        by_session=by_session,
        n_trades=int(unit_real.sum()),
        n_units=n_units,
        dd_thresholds=thresholds,
        total_r=total,
        max_drawdown_r=max_dd,
        longest_losing_streak=streak,
        observed={
            "total_r": float(obs_total[0]),
            "max_drawdown_r": float(obs_dd[0]),
            "longest_losing_streak": int(obs_streak[0]),
        },
        percentiles={
            stat: {f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)}
            for stat, x in stats.items()
        },
        prob_drawdown_exceeds={t: float(np.mean(-max_dd > t)) for t in thresholds},
        bands=bands,
    )


def _units(
    trades: pd.DataFrame, by_session: bool, sessions: Sequence[date] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The draw units as a (units, width) matrix of R padded with 0, and the mask of real trades.

    Trades are ordered by entry time (stable); with `by_session` a unit is one session's trades (one
    unit per entry of `sessions` when given, empty for a session without trades).
    """
    needed = ["r_multiple", *(["session_date"] if by_session else [])]
    missing = [c for c in needed if c not in trades.columns]
    if missing:
        raise ValueError(f"monte carlo: the trades table lacks column(s) {', '.join(missing)}")
    if "entry_time" in trades.columns and len(trades):
        order = np.argsort(pd.to_datetime(trades["entry_time"], utc=True).to_numpy(), kind="stable")
        trades = trades.iloc[order]
    r = trades["r_multiple"].to_numpy(dtype=np.float64)
    if not np.isfinite(r).all():
        raise ValueError("monte carlo: r_multiple has NaN or infinite values; pass a run's trades table")
    if not by_session:
        return r[:, None], np.ones((len(r), 1), dtype=bool)
    days = pd.to_datetime(trades["session_date"])
    if sessions is None:
        codes, _ = pd.factorize(days, sort=True)
        n_units = int(codes.max()) + 1 if len(codes) else 0
    else:
        grid = pd.DatetimeIndex(sorted(set(pd.to_datetime(pd.Series(list(sessions), dtype=object)))))
        codes = grid.get_indexer(days)
        if (codes < 0).any():
            raise ValueError("monte carlo: a trade's session_date is not among the sessions given")
        n_units = len(grid)
    counts = np.bincount(codes, minlength=n_units)
    width = max(1, int(counts.max())) if n_units else 1
    order = np.argsort(codes, kind="stable")  # sessions in date order, trades in entry order inside
    slot = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
    unit_r = np.zeros((n_units, width))
    real = np.zeros((n_units, width), dtype=bool)
    unit_r[codes[order], slot] = r[order]
    real[codes[order], slot] = True
    return unit_r, real


def _path_stats(r: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Total R, max drawdown R, longest losing streak and cum R per unit of (paths, units, width) draws."""
    paths, n_units, width = r.shape
    flat = r.reshape(paths, n_units * width)
    if flat.shape[1] == 0:
        zeros = np.zeros(paths)
        return zeros, zeros, np.zeros(paths, dtype=np.int64), np.zeros((paths, 0))
    cum = np.cumsum(flat, axis=1)
    peak = np.maximum.accumulate(np.maximum(cum, 0.0), axis=1)
    max_dd = np.min(cum - peak, axis=1)
    # Losing streak without looping: the run length at a loss is the count of real trades so far minus
    # the count at the last real non-loss; padding slots neither extend nor break a run.
    is_real = real.reshape(paths, n_units * width)
    loss = flat < 0
    count = np.cumsum(is_real, axis=1, dtype=np.int64)
    last_break = np.maximum.accumulate(np.where(is_real & ~loss, count, 0), axis=1)
    streak = np.max(np.where(loss, count - last_break, 0), axis=1)
    return cum[:, -1], max_dd, streak, cum[:, width - 1 :: width]


def _sorted_percentiles(values: np.ndarray, qs: tuple[int, ...]) -> np.ndarray:
    """np.percentile(values, qs, axis=0) (linear method, same float formula) of values sorted on axis 0.

    Sorting once and indexing is about three times faster than numpy's partition per percentile.
    """
    n = len(values)
    pos = np.asarray(qs, dtype=np.float64) / 100.0 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = (pos - lo)[:, None]
    a, b = values[lo], values[hi]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)


def _key(threshold: float) -> str:
    """A JSON key for a threshold: '5' for 5.0, '7.5' for 7.5."""
    return f"{threshold:g}"
