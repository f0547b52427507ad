"""Portfolio mode against the plain reference written from strategy.md section 10 alone.

Every universe row (status, reason, rank, daily values), every trade (fills, sizing with alloc_d),
the account equity rows and the portfolio metrics must agree on the synthetic universe (varied
price, volume and volatility, news days), under several configs that exercise each rule.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache

import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.data.synthetic import generate_bars
from orb.portfolio import FrameSource, backtest
from tests.reference_portfolio import run_reference_portfolio

SYMBOLS = ("ALFA", "BRAVO", "CHAR", "DELT", "ECHO", "FOXT", "GOLF", "HOTL", "INDI")
FIRST, START, END = date(2024, 1, 2), date(2024, 2, 1), date(2024, 3, 28)

CONFIGS = {
    "defaults": {},
    "paper": {  # Zarattini, Barbon & Aziz 2024: 5-minute candle direction, stop 10 % ATR, exit at the close
        "orb.base_minutes": 5,
        "entry.direction": "or_candle",
        "trade.stop_mode": "atr",
        "trade.atr_stop_mult": 0.1,
        "trade.partials": False,
        "trade.target_r": None,
        "confluence.enabled": False,
        "governance.max_signals_per_day": 1,
        "orb.min_width_atr": None,
        "orb.max_width_atr": None,
        "universe.min_price": 5.0,
        "universe.min_avg_volume": 100_000,
        "universe.min_atr": 0.5,
        "universe.min_rel_volume": 1.0,
        "portfolio.max_positions": 3,
    },
    "tight_slots": {  # leverage cap binding, one slot
        "portfolio.max_positions": 1,
        "risk.risk_per_trade": 0.2,
        "risk.max_leverage": 1.0,
        "trade.stop_mode": "or_opposite",
    },
    "close_long_validated": {
        "entry.mode": "close",
        "entry.direction": "long",
        "orb.validate": True,
        "universe.lookback_sessions": 5,
        "portfolio.max_positions": 4,
        "universe.min_rel_volume": 0.8,
    },
    "short_single_target": {
        "entry.direction": "short",
        "trade.partials": False,
        "trade.target_r": 1.5,
        "portfolio.max_positions": 2,
        "universe.min_price": 20.0,
        "universe.min_avg_volume": 2_000_000,
    },
}


@lru_cache(maxsize=2)
def universe_bars() -> dict[str, pd.DataFrame]:
    frames = {s: generate_bars(s, FIRST, END, 1, 7, universe=True) for s in SYMBOLS}
    # HOTL lists mid-period (no bars before Feb 20); INDI misses a week (a gap in its data).
    frames["HOTL"] = frames["HOTL"][frames["HOTL"].index >= pd.Timestamp("2024-02-20", tz="UTC")]
    indi = frames["INDI"]
    frames["INDI"] = indi[
        (indi.index < pd.Timestamp("2024-02-12", tz="UTC"))
        | (indi.index >= pd.Timestamp("2024-02-20", tz="UTC"))
    ]
    return frames


def config(name: str, **extra):
    return with_overrides(load_config(), {"portfolio.enabled": True, **CONFIGS[name], **extra})


def _num(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA:
        return b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    if b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b)):
        return False
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@lru_cache(maxsize=8)
def _run_both(name: str, benchmark: str | None = None):
    frames = universe_bars()
    extra = {"portfolio.benchmark": benchmark} if benchmark else {}
    cfg = config(name, **extra)
    bench_frames = dict(frames)
    if benchmark and benchmark not in frames:
        spy = generate_bars(benchmark, FIRST, END, 1, 7)
        bench_frames[benchmark] = spy[spy.index.normalize() != pd.Timestamp("2024-03-01", tz="UTC")]
    ours = backtest(cfg, list(SYMBOLS), FrameSource(bench_frames, START, END))
    ref = run_reference_portfolio(frames, cfg, START, END, bench_frames.get(benchmark) if benchmark else None)
    return ours, ref


@pytest.mark.parametrize("name", list(CONFIGS))
def test_universe_rows_equal_the_reference(name):
    ours, ref = _run_both(name)
    got = ours.universe.assign(session_date=lambda f: pd.to_datetime(f["session_date"]).dt.date)
    got = {(r.session_date, r.symbol): r for r in got.itertuples(index=False)}
    assert len(got) == len(ref["universe"])
    for want in ref["universe"]:
        row = got[(want["session_date"], want["symbol"])]
        where = f"{want['symbol']} {want['session_date']}"
        assert row.status == want["status"], where
        assert (row.reason if isinstance(row.reason, str) else None) == want["reason"], where
        assert _num(row.rank, want["rank"]), where
        assert row.trades == want["trades"], where
        for col in ("open_price", "avg_volume", "atr", "rel_volume", "or_high", "or_low", "day_r", "day_pnl"):
            assert _num(getattr(row, col), want[col]), (where, col, getattr(row, col), want[col])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_trades_and_account_equity_equal_the_reference(name):
    ours, ref = _run_both(name)
    assert len(ref["trades"]) > 0, "the scenario must trade"
    got = ours.trades.sort_values(["symbol", "entry_time"], ignore_index=True)
    want = sorted(ref["trades"], key=lambda t: (t["symbol"], t["entry_time"]))
    assert len(got) == len(want)
    for g, w in zip(got.to_dict("records"), want, strict=True):
        where = f"{w['symbol']} {w['entry_time']}"
        for col in ("side", "exit_reason", "shares", "rank", "t1_filled", "t2_filled"):
            assert g[col] == w[col], (where, col)
        for col in ("entry_time", "exit_time"):
            assert pd.Timestamp(g[col]) == pd.Timestamp(w[col]), (where, col)
        for col in ("entry_price", "stop_price", "exit_price", "target_price", "net_pnl", "r_multiple",
                    "commission", "alloc"):  # fmt: skip
            assert _num(g[col], w[col]), (where, col, g[col], w[col])
    eq = ours.equity
    assert len(eq) == len(ref["equity"])
    for g, w in zip(eq.to_dict("records"), ref["equity"], strict=True):
        assert pd.Timestamp(g["timestamp"]) == pd.Timestamp(w["timestamp"])
        assert _num(g["equity"], w["equity"]) and _num(g["cum_r"], w["cum_r"]), (g, w)


@pytest.mark.parametrize("name", ["defaults", "paper"])
def test_portfolio_metrics_and_benchmark_equal_the_reference(name):
    ours, ref = _run_both(name, benchmark="SPY")
    agg = ours.metrics["aggregate"]
    for key, value in ref["metrics"].items():
        assert _num(agg[key], value), (key, agg[key], value)
    assert ref["metrics"]["beta"] is not None


def test_reference_sees_every_status():
    """The scenarios above are only worth something if every status and several reasons occur."""
    statuses, reasons = set(), set()
    for name in CONFIGS:
        _, ref = _run_both(name)
        statuses |= {r["status"] for r in ref["universe"]}
        reasons |= {r["reason"] for r in ref["universe"] if r["reason"]}
    assert statuses == {"traded", "no_signal", "not_selected", "skipped"}
    assert {
        "no_data",
        "warmup",
        "width_below_min",
        "min_price",
        "min_avg_volume",
        "min_atr",
        "min_rel_volume",
    } <= reasons
