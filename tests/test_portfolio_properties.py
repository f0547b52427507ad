"""Properties of portfolio mode (strategy.md 10) on the synthetic universe (news days, varied symbols)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from orb.config import load_config, with_overrides
from orb.data.synthetic import generate_bars
from orb.engine import EventLoopBacktest
from orb.errors import DataError
from orb.portfolio import FrameSource, backtest

SYMBOLS = ("ALFA", "BRAVO", "CHAR", "DELT", "ECHO", "FOXT", "GOLF")
FIRST, START, END = date(2024, 1, 2), date(2024, 1, 24), date(2024, 2, 29)
BASE = {
    "portfolio.enabled": True,
    "orb.base_minutes": 5,
    "universe.lookback_sessions": 5,
    "governance.lockout_after_losses": 0,
}
SETTINGS = settings(
    max_examples=examples(5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each example is a whole run
)


@lru_cache(maxsize=4)
def universe_bars(seed: int) -> dict[str, pd.DataFrame]:
    return {s: generate_bars(s, FIRST, END, 1, seed, universe=True) for s in SYMBOLS}


def cfg(**extra):
    return with_overrides(load_config(), {**BASE, **extra})


def run(config, frames, start=START, end=None, symbols=SYMBOLS):
    return backtest(config, list(symbols), FrameSource(frames, start, end))


params = st.fixed_dictionaries(
    {
        "portfolio.max_positions": st.integers(1, 4),
        "risk.risk_per_trade": st.sampled_from([0.005, 0.01, 0.05, 0.2]),
        "risk.max_leverage": st.sampled_from([1.0, 2.0, 4.0]),
        "universe.min_rel_volume": st.sampled_from([None, 1.0, 2.0]),
        "trade.stop_mode": st.sampled_from(["atr", "or_opposite", "atr_capped"]),
        "trade.atr_stop_mult": st.sampled_from([0.1, 0.5]),
        "confluence.enabled": st.booleans(),
    }
)


@SETTINGS
@given(seed=st.sampled_from([1, 2]), extra=params)
def test_gross_open_value_never_exceeds_leverage_times_account_equity(seed, extra) -> None:
    config = cfg(**extra)
    res = run(config, universe_bars(seed))
    t = res.trades
    local_day = res.equity["timestamp"].dt.tz_convert("America/New_York").dt.date
    closes = res.equity.groupby(local_day)["equity"].last()  # the session-close row is each day's last
    open_equity = dict(zip(closes.index, [100_000.0, *closes.iloc[:-1]], strict=True))
    n = config.portfolio.max_positions
    lev = config.risk.max_leverage
    for day, trades in t.groupby("session_date"):
        e_d = open_equity[day]
        assert trades["alloc"].eq(e_d / n).all()
        assert trades["symbol"].nunique() <= n
        value = trades["shares"].to_numpy() * trades["entry_price"].to_numpy()
        for when in trades["entry_time"]:
            live = (trades["entry_time"] <= when) & (trades["exit_time"] >= when)
            assert value[live.to_numpy()].sum() <= lev * e_d * (1 + 1e-12)


@SETTINGS
@given(seed=st.sampled_from([1, 2]), extra=params, pick=st.integers(0, 10_000))
def test_a_symbol_sessions_trades_depend_only_on_its_own_bars_and_alloc(seed, extra, pick) -> None:
    """Changing another symbol's bars after the OR on the last session changes none of the other
    symbols' trades (same rank, same alloc_d), and nothing on earlier sessions."""
    config = cfg(**extra)
    frames = universe_bars(seed)
    base = run(config, frames)
    last = max(base.universe["session_date"])
    sym = SYMBOLS[pick % len(SYMBOLS)]
    bars = frames[sym]
    local = bars.index.tz_convert("America/New_York")
    after_or = (local.date == last) & ((local.hour * 60 + local.minute) >= 9 * 60 + 35)
    scale = np.where(after_or, 1.0 + 0.03 * np.sin(np.arange(len(bars))), 1.0)
    changed = bars.assign(
        open=bars["open"] * scale, high=bars["high"] * scale * np.where(after_or, 1.01, 1.0),
        low=bars["low"] * scale * np.where(after_or, 0.99, 1.0), close=bars["close"] * scale,
        volume=np.where(after_or, bars["volume"] * 3, bars["volume"]),
    )  # fmt: skip
    other = run(config, {**frames, sym: changed})
    keep = [
        "session_date",
        "symbol",
        "open_price",
        "avg_volume",
        "atr",
        "rel_volume",
        "or_high",
        "or_low",
        "rank",
    ]
    pd.testing.assert_frame_equal(base.universe[keep], other.universe[keep])
    mine = (base.trades["symbol"] == sym) & (base.trades["session_date"] == last)
    theirs = (other.trades["symbol"] == sym) & (other.trades["session_date"] == last)
    pd.testing.assert_frame_equal(
        base.trades[~mine].reset_index(drop=True), other.trades[~theirs].reset_index(drop=True)
    )


@SETTINGS
@given(seed=st.sampled_from([1, 2]), extra=params, cut=st.integers(1, 20))
def test_truncation_invariance_across_the_portfolio(seed, extra, cut) -> None:
    config = cfg(**extra)
    frames = universe_bars(seed)
    full = run(config, frames)
    days = sorted(full.universe["session_date"].unique())
    end = days[min(cut, len(days) - 1)]
    upto = full.universe["session_date"] <= end
    picked = full.universe.loc[upto, "status"].isin(["selected", "traded", "no_signal"])
    if not picked.any():  # nothing in play up to the cut: the shorter run refuses, naming why
        with pytest.raises(DataError, match="the universe is empty on every session"):
            run(config, frames, end=end)
        return
    part = run(config, frames, end=end)
    pd.testing.assert_frame_equal(full.universe[upto].reset_index(drop=True), part.universe)
    pd.testing.assert_frame_equal(
        full.trades[full.trades["session_date"] <= end].reset_index(drop=True), part.trades
    )
    n_rows = len(part.equity)
    pd.testing.assert_frame_equal(full.equity.iloc[:n_rows], part.equity)


def test_determinism_in_process_and_on_two_worker_processes() -> None:
    config = cfg(**{"portfolio.max_positions": 3})
    frames = universe_bars(1)
    a = run(config, frames)
    b = backtest(config, list(SYMBOLS), FrameSource(frames, START, None), workers=2)
    for name in ("universe", "trades", "fills", "events", "bars", "equity"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.metrics == b.metrics


@SETTINGS
@given(seed=st.sampled_from([1, 2, 3]), extra=params)
def test_one_symbol_and_one_slot_equals_the_single_symbol_engine(seed, extra) -> None:
    """With one symbol, max_positions 1 and no universe bound, every session the engine trades is
    selected and alloc_d is the symbol's equity at the open. The engine sizes a second entry of a
    session with that day's P&L included (9.10), the portfolio with alloc_d (10.9.5): with one entry
    per session the two are the same."""
    extra = extra | {"portfolio.max_positions": 1, "universe.min_rel_volume": None,
                     "governance.max_signals_per_day": 1}  # fmt: skip
    config = cfg(**extra)
    frames = universe_bars(seed)
    for sym in SYMBOLS[:3]:
        res = run(config, {sym: frames[sym]}, symbols=[sym])
        single = EventLoopBacktest(config, sym).run(frames[sym], start=START)
        assert (res.universe["status"] != "not_selected").all()
        pd.testing.assert_frame_equal(res.trades.drop(columns=["alloc", "rank"]), single.trades)
        assert res.equity["equity"].iloc[-1] == pytest.approx(single.equity["equity"].iloc[-1], rel=1e-12)


def test_the_stages_on_a_dask_cluster_give_the_same_run() -> None:
    distributed = pytest.importorskip("distributed")
    config = cfg(**{"portfolio.max_positions": 3})
    frames = universe_bars(1)
    local = run(config, frames)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:  # fmt: skip
        remote = backtest(
            config, list(SYMBOLS), FrameSource(frames, START, None), scheduler=cluster.scheduler_address
        )
    for name in ("universe", "trades", "fills", "equity"):
        pd.testing.assert_frame_equal(getattr(local, name), getattr(remote, name))
    assert local.metrics == remote.metrics
