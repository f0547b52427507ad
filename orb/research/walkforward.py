"""Walk-forward analysis: choose parameters on a train window, trade them on the next test window.

Folds tile the sessions of the range: fold k tests the `test` sessions that follow its train window,
test windows are consecutive and never overlap (the last one may be shorter). Rolling folds train on
the `train` sessions right before the test window; anchored folds train on everything from the first
session. The choice in a fold sees only train-window results (tasks.evaluate cuts bars after a
window's last session), and the test window is run afterwards with its own warm-up before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from orb.config import Config
from orb.errors import RequestError
from orb.metrics import combine_equity, compute_metrics, drawdowns
from orb.research.sweep import Combination, Sweep, metric_row, rank_order, typed_frame
from orb.research.tasks import Task, TaskResult


@dataclass(frozen=True)
class Fold:
    number: int  # 1-based
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    train_sessions: int
    test_sessions: int


def make_folds(sessions: Sequence[date], train: int, test: int, anchored: bool = False) -> list[Fold]:
    """Folds over `sessions` (sorted dates); RequestError when not even one test session fits."""
    if train < 1 or test < 1:
        raise RequestError(f"--wf-train {train} and --wf-test {test} must both be at least 1 session")
    n = len(sessions)
    if n <= train:
        raise RequestError(
            f"walk-forward needs more than --wf-train {train} sessions but the range has {n}; "
            f"widen --start/--end or lower --wf-train"
        )
    folds = []
    for number, test_lo in enumerate(range(train, n, test), start=1):
        test_hi = min(test_lo + test, n)
        train_lo = 0 if anchored else test_lo - train
        folds.append(
            Fold(
                number,
                sessions[train_lo],
                sessions[test_lo - 1],
                sessions[test_lo],
                sessions[test_hi - 1],
                test_lo - train_lo,
                test_hi - test_lo,
            )
        )
    return folds


@dataclass(frozen=True)
class WalkForward:
    folds: list[Fold]
    candidates: list[Combination]  # the valid combinations, in index order
    train: list[list[TaskResult]]  # per fold, one result per candidate
    chosen: list[Combination]  # per fold
    chosen_train: list[TaskResult]  # per fold: the chosen combination's train result
    test: list[TaskResult]  # per fold, with frames


Runner = Callable[[list[Task]], list[TaskResult]]


def walk_forward(sweep: Sweep, folds: Sequence[Fold], rank_by: str, run: Runner) -> WalkForward:
    """Every candidate on every train window, then each fold's best on its test window."""
    candidates = sweep.valid
    n = len(candidates)
    train_tasks = [
        Task(f * n + j, c.config, fold.train_start, fold.train_end)
        for f, fold in enumerate(folds)
        for j, c in enumerate(candidates)
    ]
    flat = run(train_tasks)
    train = [flat[f * n : (f + 1) * n] for f in range(len(folds))]
    indices = [c.index for c in candidates]
    best = [rank_order(indices, [r.aggregate for r in res], rank_by)[0] for res in train]
    chosen = [candidates[b] for b in best]
    test_tasks = [
        Task(f, c.config, fold.test_start, fold.test_end, keep_frames=True)
        for f, (fold, c) in enumerate(zip(folds, chosen, strict=True))
    ]
    chosen_train = [res[b] for res, b in zip(train, best, strict=True)]
    return WalkForward(list(folds), candidates, train, chosen, chosen_train, run(test_tasks))


def _window(fold: Fold) -> dict[str, Any]:
    return {
        "fold": fold.number,
        "train_start": fold.train_start,
        "train_end": fold.train_end,
        "train_sessions": fold.train_sessions,
        "test_start": fold.test_start,
        "test_end": fold.test_end,
        "test_sessions": fold.test_sessions,
    }


def folds_table(wf: WalkForward, sweep: Sweep) -> pd.DataFrame:
    """One row per fold: window dates, chosen combination and parameters, is_* and oos_* metrics."""
    rows = []
    for fold, combo, train, test in zip(wf.folds, wf.chosen, wf.chosen_train, wf.test, strict=True):
        is_metrics = train.aggregate
        rows.append(
            _window(fold)
            | {"combination": combo.index}
            | combo.params
            | {f"is_{k}": v for k, v in metric_row(is_metrics).items() if k != "exit_reasons"}
            | {f"oos_{k}": v for k, v in metric_row(test.aggregate).items() if k != "exit_reasons"}
        )
    return typed_frame(rows, sweep.keys)


def train_table(wf: WalkForward, sweep: Sweep, rank_by: str) -> pd.DataFrame:
    """Every candidate's train-window aggregate metrics per fold, ranked within the fold."""
    rows = []
    for fold, results in zip(wf.folds, wf.train, strict=True):
        order = rank_order([c.index for c in wf.candidates], [r.aggregate for r in results], rank_by)
        for rank, pos in enumerate(order, start=1):
            combo = wf.candidates[pos]
            rows.append(
                _window(fold)
                | {"rank": rank, "combination": combo.index}
                | combo.params
                | metric_row(results[pos].aggregate)
            )
    return typed_frame(rows, sweep.keys)


@dataclass(frozen=True)
class OutOfSample:
    trades: pd.DataFrame  # fold + trade columns; trade_id made unique as F<fold>-<trade_id>
    equity: pd.DataFrame  # timestamp, equity, cum_r, drawdown_pct, drawdown_r, fold
    metrics: dict  # {"aggregate": ..., "per_symbol": ...}


def stitch(wf: WalkForward, base: Config) -> OutOfSample:
    """Test windows joined end to end. Each window was traded from the initial capital; the stitched
    equity adds every earlier window's P&L and R, so it equals the initial capital plus the cumulative
    net P&L of the stitched trades."""
    initial = base.risk.initial_capital
    symbols = list(wf.test[0].frames) if wf.test else []
    trades, equities, sessions = [], {}, {}
    for sym in symbols:
        parts, pnl, r_sum = [], 0.0, 0.0
        sessions[sym] = pd.concat([res.frames[sym].sessions for res in wf.test], ignore_index=True)
        for fold, combo, res in zip(wf.folds, wf.chosen, wf.test, strict=True):
            fr = res.frames[sym]
            trades.append(
                fr.trades.assign(trade_id=[f"F{fold.number:02d}-{t}" for t in fr.trades["trade_id"]]).assign(
                    fold=fold.number
                )
            )
            eq = fr.equity.assign(
                equity=fr.equity["equity"] - combo.config.risk.initial_capital + initial + pnl,
                cum_r=fr.equity["cum_r"] + r_sum,
            )
            if len(eq):
                pnl, r_sum = float(eq["equity"].iloc[-1]) - initial, float(eq["cum_r"].iloc[-1])
            parts.append(eq)
        eq = pd.concat(parts, ignore_index=True)
        dd_pct, dd_r = drawdowns(eq["equity"], eq["cum_r"], initial_equity=initial)
        equities[sym] = eq.assign(drawdown_pct=dd_pct, drawdown_r=dd_r)
    all_trades = pd.concat(trades, ignore_index=True).sort_values(
        ["entry_time", "symbol"], kind="stable", ignore_index=True
    )
    all_trades = all_trades[["fold", *[c for c in all_trades.columns if c != "fold"]]]
    kw = {
        "periods_per_year": base.metrics.periods_per_year,
        "risk_free_rate": base.metrics.risk_free_rate,
        "timezone": base.session.timezone,
    }
    per_symbol = {
        sym: compute_metrics(
            all_trades[all_trades["symbol"] == sym],
            equities[sym],
            sessions[sym],
            initial_capital=initial,
            **kw,
        )
        for sym in symbols
    }
    combined = combine_equity(equities, initial)
    aggregate = compute_metrics(
        all_trades,
        combined,
        pd.concat(sessions.values(), ignore_index=True),
        initial_capital=initial * len(symbols),
        symbols=symbols,
        **kw,
    )
    local = pd.DatetimeIndex(combined["timestamp"]).tz_convert(base.session.timezone).tz_localize(None)
    starts = pd.DatetimeIndex([pd.Timestamp(f.test_start) for f in wf.folds]).as_unit("ns")
    fold_no = np.searchsorted(starts.asi8, local.normalize().as_unit("ns").asi8, side="right")
    return OutOfSample(
        all_trades,
        combined.assign(fold=fold_no.astype("int64")),
        {"aggregate": aggregate, "per_symbol": per_symbol},
    )


def robustness(wf: WalkForward, sweep: Sweep) -> dict[str, Any]:
    """Walk-forward efficiency, share of profitable test folds and per-parameter stability."""
    is_r = sum(t.aggregate["total_r"] for t in wf.chosen_train)
    oos_r = sum(t.aggregate["total_r"] for t in wf.test)
    is_per = is_r / sum(f.train_sessions for f in wf.folds)
    oos_per = oos_r / sum(f.test_sessions for f in wf.folds)
    stability = {}
    for key in sweep.keys:
        values = [c.params[key] for c in wf.chosen]
        mode, count = Counter(map(_hashable, values)).most_common(1)[0]
        stability[key] = {
            "chosen": values,
            "distinct": len(set(map(_hashable, values))),
            "mode": next(v for v in values if _hashable(v) == mode),
            "mode_share": count / len(values),
            "changes": sum(_hashable(a) != _hashable(b) for a, b in pairwise(values)),
        }
    return {
        "folds": len(wf.folds),
        "is_total_r": is_r,
        "oos_total_r": oos_r,
        "is_r_per_session": is_per,
        "oos_r_per_session": oos_per,
        "efficiency": oos_per / is_per if is_per > 0 else None,
        "profitable_fold_share": sum(t.aggregate["total_r"] > 0 for t in wf.test) / len(wf.test),
        "combination_changes": sum(a.index != b.index for a, b in pairwise(wf.chosen)),
        "parameter_stability": stability,
    }


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, list | dict) else value
