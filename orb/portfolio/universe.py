"""The daily stocks-in-play universe (strategy.md 10.3-10.5, 10.9.1-10.9.4, 10.9.11).

Stage 1 (`daily_values`) turns one symbol's prepared bars into one row per session it has data for;
stage 2 (`build_grid`) lays those rows on the full grid of run sessions x run symbols, gives each row
its first failing reason, ranks the eligible rows of each session and marks the top N as selected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from orb.config import Config
from orb.engine import Prepared

DAILY_COLUMNS = ("session_date", "open_price", "avg_volume", "atr", "rel_volume", "or_high", "or_low", "skip")
UNIVERSE_COLUMNS = (
    "session_date",
    "symbol",
    "open_price",
    "avg_volume",
    "atr",
    "rel_volume",
    "or_high",
    "or_low",
    "status",
    "reason",
    "rank",
    "trades",
    "day_r",
    "day_pnl",
)
# 10.9.2 after `no_data` and `warmup` come the section-2 reasons (the engine's names), then the bounds.
BOUND_REASONS = ("min_price", "min_avg_volume", "min_atr", "min_rel_volume")


def daily_values(cfg: Config, prepared: Prepared) -> pd.DataFrame:
    """One row per reported session present in the symbol's data (DAILY_COLUMNS).

    Prior sessions are the symbol's own sessions present in its data, warm-up sessions included (9.2);
    `skip` is the engine's own section-2 skip reason ("" when none; "warmup" when the engine needs the
    ATR and it is undefined). Undefined values are NaN."""
    S = prepared.sessions
    o, v = prepared.arrays[0], prepared.arrays[4]
    n = len(S.starts)
    stops = np.append(S.starts[1:], len(v)).astype(np.int64)
    csum = np.concatenate(([0.0], np.cumsum(v)))  # whole share counts: exact in float64
    day_volume = csum[stops] - csum[S.starts]
    or_volume = csum[S.or_end] - csum[S.starts]  # the orb.base_minutes window (orb.adaptive is off)
    look = cfg.universe.lookback_sessions
    idx = np.arange(n)
    enough = idx >= look
    lb = np.maximum(idx - look, 0)
    day_cs = np.concatenate(([0.0], np.cumsum(day_volume)))
    or_cs = np.concatenate(([0.0], np.cumsum(or_volume)))
    avg_volume = np.where(enough, (day_cs[idx] - day_cs[lb]) / look, np.nan)
    or_mean = np.where(enough, (or_cs[idx] - or_cs[lb]) / look, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_volume = np.where(enough & (or_mean > 0), or_volume / or_mean, np.nan)  # 10.9.3, 10.9.11
    first = prepared.first_reported
    return pd.DataFrame(
        {
            "session_date": [d.date() for d in S.dates[first:]],
            "open_price": o[S.starts[first:]] if n else np.zeros(0),
            "avg_volume": avg_volume[first:],
            "atr": S.atr[first:],
            "rel_volume": rel_volume[first:],
            "or_high": S.or_high[first:],
            "or_low": S.or_low[first:],
            "skip": S.skip[first:],
        },
        columns=list(DAILY_COLUMNS),
    )


def build_grid(
    cfg: Config, sessions: Sequence, symbols: Sequence[str], daily: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The universe grid (10.9.1): a row per (session, symbol), sorted by date then symbol, with the
    first failing reason (10.9.2), the rank of eligible rows (10.5) and a status of `selected`,
    `not_selected` or `skipped`. `trades`, `day_r`, `day_pnl` are 0 until the simulation fills them."""
    days = sorted(sessions)
    syms = sorted(symbols)
    grid = pd.DataFrame(
        {"session_date": np.repeat(np.array(days, dtype=object), len(syms)), "symbol": syms * len(days)}
    )
    frames = [f.assign(symbol=sym) for sym, f in daily.items() if len(f)]
    values = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*DAILY_COLUMNS, "symbol"])
    )
    grid = grid.merge(
        values, on=["session_date", "symbol"], how="left", validate="one_to_one", indicator=True
    )
    has_data = (grid.pop("_merge") == "both").to_numpy()
    reason = _reasons(cfg, grid)
    grid = grid.drop(columns="skip")
    reason = np.where(~has_data, "no_data", reason)

    passing = reason == ""
    ranked = grid.loc[passing, ["session_date", "symbol", "rel_volume"]].sort_values(
        ["session_date", "rel_volume", "symbol"], ascending=[True, False, True], kind="stable"
    )
    rank = pd.Series(pd.NA, index=grid.index, dtype="Int64")
    rank.loc[ranked.index] = ranked.groupby("session_date", sort=False).cumcount().to_numpy() + 1
    selected = passing & (rank.fillna(0).to_numpy() <= cfg.portfolio.max_positions)
    status = np.where(selected, "selected", np.where(passing, "not_selected", "skipped"))
    return grid.assign(
        status=status,
        reason=pd.Series(np.where(reason == "", None, reason), dtype=object),
        rank=rank,
        trades=np.zeros(len(grid), dtype=np.int64),
        day_r=np.zeros(len(grid)),
        day_pnl=np.zeros(len(grid)),
    )[list(UNIVERSE_COLUMNS)]


def eligible(cfg: Config, daily: pd.DataFrame) -> np.ndarray:
    """Per row of `daily_values`: True when the session passes every rule of 10.9.2 on its own values,
    i.e. when it can be selected (whether it is depends on the other symbols' rows)."""
    return _reasons(cfg, daily) == ""


def _reasons(cfg: Config, rows: pd.DataFrame) -> np.ndarray:
    """The first failing reason of each row of daily values (10.9.2; "" when none), `no_data` aside."""
    uni = cfg.universe
    skip = rows["skip"].fillna("").astype(str).to_numpy()
    num = {c: rows[c].to_numpy(dtype=np.float64) for c in ("open_price", "avg_volume", "atr", "rel_volume")}
    need_avg = uni.min_avg_volume is not None
    need_atr = uni.min_atr is not None
    warm = (
        np.isnan(num["rel_volume"])  # always needed, for the ranking
        | (need_avg & np.isnan(num["avg_volume"]))
        | (need_atr & np.isnan(num["atr"]))
        | (skip == "warmup")  # the engine's own need (stop mode, width filter, buffer)
    )
    bounds = {
        "min_price": (uni.min_price, lambda b: num["open_price"] > b),
        "min_avg_volume": (uni.min_avg_volume, lambda b: num["avg_volume"] >= b),
        "min_atr": (uni.min_atr, lambda b: num["atr"] > b),
        "min_rel_volume": (uni.min_rel_volume, lambda b: num["rel_volume"] >= b),
    }
    reason = np.full(len(rows), "", dtype=object)
    with np.errstate(invalid="ignore"):
        for name in reversed(BOUND_REASONS):  # later assignments win, so the first failing bound stays
            bound, passes = bounds[name]
            if bound is not None:
                reason = np.where(passes(bound), reason, name)
    reason = np.where(skip != "", skip, reason)
    return np.where(warm, "warmup", reason)


def funnel(grid: pd.DataFrame) -> dict[str, int]:
    """Symbol-sessions per outcome: each skip reason, then not_selected and selected (traded + no_signal)."""
    counts = grid.loc[grid["status"] == "skipped", "reason"].value_counts().to_dict()
    reasons = ["no_data", "warmup"]
    reasons += sorted(r for r in counts if r not in (*reasons, *BOUND_REASONS))
    reasons += list(BOUND_REASONS)
    out = {"symbol_sessions": len(grid)}
    out |= {r: int(counts.get(r, 0)) for r in reasons}
    out["not_selected"] = int((grid["status"] == "not_selected").sum())
    out["selected"] = int(grid["status"].isin(["selected", "traded", "no_signal"]).sum())
    out["traded"] = int((grid["status"] == "traded").sum())
    return out
