"""Portfolio mode (strategy.md 10) as hand-written candle tables: every expected value is derived from
the spec in the comments.

Unless a scenario says otherwise: 1m bars, 2-minute OR, confluence off, no width filter, or_opposite
stops, no costs, `universe.lookback_sessions: 2`, `orb.atr_period: 2`, `portfolio.max_positions: 2`, so
each slot holds 100,000 / 2 = 50,000 on the first session. OR_ROWS (from test_engine_scenarios.py) is
OR high 101 / low 100 with 1000 shares a bar (OR volume 2000); `warmup(D1, n)` gives n one-bar sessions
(09:30, range 2 around 100, volume 1000: ATR 2, OR volume 1000, daily volume 1000).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from candles import bars, sessions_from, utc, warmup
from test_engine_scenarios import E_LONG, OR_ROWS, QUIET_TAIL

from orb.config import load_config, with_overrides
from orb.errors import DataError
from orb.portfolio import FrameSource, backtest

D1, D2, D3, D4 = (d.date() for d in sessions_from("2024-03-05", 4))  # Tue-Fri, EST (UTC-5)
BASE = {
    "orb.base_minutes": 2,
    "orb.atr_period": 2,
    "confluence.enabled": False,
    "orb.min_width_atr": None,
    "orb.max_width_atr": None,
    "trade.stop_mode": "or_opposite",
    "costs.slippage_per_share": 0.0,
    "costs.commission_per_share": 0.0,
    "portfolio.enabled": True,
    "portfolio.max_positions": 2,
    "universe.lookback_sessions": 2,
}
NO_TARGET = {"trade.partials": False, "trade.target_r": None}
TAIL = [
    ("09:33", 100.2, 100.4, 100.1, 100.3, 1000),  # inside both levels
    ("09:34", 100.3, 100.4, 100.2, 100.3, 1000),  # the session's last bar
]
LONG_STOPPED = [
    E_LONG,  # 09:32: long at 101.0, stop 100
    ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),  # low 99.9: stop at 100.0 (-1 R)
    ("09:34", 100.2, 100.4, 100.1, 100.3, 1000),  # last bar; the short is unarmed (99.95 < 100)
]


def or_rows(volume: int, price: float = 100.0) -> list[tuple]:
    """OR_ROWS shifted to `price` (OR high price+1, low price) with `volume` shares a bar."""
    d = price - 100.0
    return [(t, o + d, h + d, lo + d, c + d, volume) for t, o, h, lo, c, _ in OR_ROWS]


def cfg(**extra):
    return with_overrides(load_config(), {**BASE, **extra})


def run(frames: dict[str, list], start=D1, end=None, **extra):
    frames_ = {sym: bars(sessions) for sym, sessions in frames.items()}
    return backtest(cfg(**extra), sorted(frames), FrameSource(frames_, start, end))


def row(res, day, symbol) -> pd.Series:
    u = res.universe
    return u[(u["session_date"] == day) & (u["symbol"] == symbol)].iloc[0]


def check_universe(res, day, expected: dict[str, tuple]) -> None:
    """expected: symbol -> (status, reason or None, rank or None)."""
    for symbol, (status, reason, rank) in expected.items():
        r = row(res, day, symbol)
        got = (
            r["status"],
            None if pd.isna(r["reason"]) else r["reason"],
            None if pd.isna(r["rank"]) else int(r["rank"]),
        )
        assert got == (status, reason, rank), f"{symbol} on {day}: {got}"


# --------------------------------------------------------------------------- eligibility (10.4, 10.9.2-3)
def test_s10_9_2_eligibility_reasons_in_order() -> None:
    bounds = {"universe.min_price": 5.0, "universe.min_avg_volume": 500, "universe.min_atr": 0.5,
              "universe.min_rel_volume": 1.0}  # fmt: skip
    frames = {
        # eligible: rel_volume 2000 / 1000 = 2.0, open 100.5, avg volume 1000, ATR 2
        "AOK": warmup(D1, 3) + [(D1, or_rows(1000) + TAIL)],
        # bars before D1 only: no_data on D1
        "BNODATA": warmup(D1, 3),
        # one prior session (< 2): rel_volume undefined -> warmup, before its price 4 < 5
        "CWARM": warmup(D1, 1, price=4.0) + [(D1, or_rows(1000, price=4.0) + TAIL)],
        # two prior sessions: rel_volume defined, ATR(2) not yet (needs 3) and min_atr is set -> warmup
        "DATRWARM": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)],
        # no bar in the OR window: rel_volume 0 (defined), reason no_or_bars before min_price
        "ENOOR": warmup(D1, 3, price=4.0) + [(D1, [("09:32", 4.0, 4.1, 3.9, 4.0, 1000)] + TAIL)],
        # OR high == OR low: zero_width (the engine's own section-2 reason)
        "FZERO": warmup(D1, 3)
        + [(D1, [("09:30", 100, 100, 100, 100, 1000), ("09:31", 100, 100, 100, 100, 1000)] + TAIL)],
        # open 4.0 <= 5: min_price, before its thin volume (avg 100 < 500)
        "GCHEAP": warmup(D1, 3, price=4.0, volume=100) + [(D1, or_rows(100, price=3.5) + TAIL)],
        # avg volume 100 < 500: min_avg_volume, before its small ATR (0.2 < 0.5)
        "HTHIN": warmup(D1, 3, rng=0.2, volume=100) + [(D1, or_rows(100) + TAIL)],
        # ATR 0.2 <= 0.5: min_atr, before its low rel_volume (800 / 1000 = 0.8)
        "ICALM": warmup(D1, 3, rng=0.2) + [(D1, or_rows(400) + TAIL)],
        # rel_volume 800 / 1000 = 0.8 < 1.0: min_rel_volume
        "JQUIET": warmup(D1, 3) + [(D1, or_rows(400) + TAIL)],
    }
    res = run(frames, **bounds)
    check_universe(res, D1, {
        "AOK": ("no_signal", None, 1),
        "BNODATA": ("skipped", "no_data", None),
        "CWARM": ("skipped", "warmup", None),
        "DATRWARM": ("skipped", "warmup", None),
        "ENOOR": ("skipped", "no_or_bars", None),
        "FZERO": ("skipped", "zero_width", None),
        "GCHEAP": ("skipped", "min_price", None),
        "HTHIN": ("skipped", "min_avg_volume", None),
        "ICALM": ("skipped", "min_atr", None),
        "JQUIET": ("skipped", "min_rel_volume", None),
    })  # fmt: skip
    r = row(res, D1, "AOK")
    assert (r["rel_volume"], r["avg_volume"], r["atr"], r["open_price"]) == (2.0, 1000.0, 2.0, 100.5)
    assert (r["or_high"], r["or_low"]) == (101.0, 100.0)
    assert row(res, D1, "ENOOR")["rel_volume"] == 0.0  # 10.9.11
    assert math.isnan(row(res, D1, "CWARM")["rel_volume"])
    assert list(res.universe.columns) == [
        "session_date", "symbol", "open_price", "avg_volume", "atr", "rel_volume", "or_high", "or_low",
        "status", "reason", "rank", "trades", "day_r", "day_pnl",
    ]  # fmt: skip
    assert res.funnel["no_data"] == 1 and res.funnel["warmup"] == 2 and res.funnel["selected"] == 1


def test_s10_9_3_atr_is_needed_only_when_something_uses_it() -> None:
    # DATRWARM of the previous test, without min_atr and with or_opposite stops: eligible
    frames = {"DATRWARM": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)]}
    check_universe(run(frames), D1, {"DATRWARM": ("no_signal", None, 1)})
    # an ATR stop needs it: warmup (AOK, with three prior sessions, has its ATR)
    frames["AOK"] = warmup(D1, 3) + [(D1, or_rows(1000) + TAIL)]
    res = run(frames, **{"trade.stop_mode": "atr"})
    check_universe(res, D1, {"DATRWARM": ("skipped", "warmup", None), "AOK": ("no_signal", None, 1)})


# --------------------------------------------------------------------------- ranking (10.5, 10.9.4)
def test_s10_5_rank_by_rel_volume_ties_by_symbol() -> None:
    day = or_rows(1000) + [E_LONG, *QUIET_TAIL]  # rel 2.0; long 101.0 at 09:32, eod 09:34 at 101.3
    frames = {
        "CCC": warmup(D1, 2) + [(D1, day)],
        "AAA": warmup(D1, 2) + [(D1, day)],
        "MMM": warmup(D1, 2) + [(D1, or_rows(1500) + [E_LONG, *QUIET_TAIL])],  # rel 3000 / 1000 = 3.0
        "BBB": warmup(D1, 2) + [(D1, day)],
    }
    res = run(frames)
    check_universe(res, D1, {
        "MMM": ("traded", None, 1),
        "AAA": ("traded", None, 2),        # tie at 2.0 with BBB and CCC: symbol ascending
        "BBB": ("not_selected", None, 3),  # rank > N = 2
        "CCC": ("not_selected", None, 4),
    })  # fmt: skip
    assert sorted(res.trades["symbol"]) == ["AAA", "MMM"]
    assert list(res.trades["rank"]) == [2, 1]  # all_trades sorted by entry time, then symbol


# --------------------------------------------------------------------------- sizing (10.2, 10.9.5)
NARROW = [
    ("09:30", 100.95, 101.0, 100.9, 100.95, 1000),  # OR high 101, low 100.9 (R 0.1 for a long at 101)
    ("09:31", 100.95, 101.0, 100.92, 100.95, 1000),  # OR volume 2000: rel 2.0
    ("09:32", 100.96, 101.2, 100.95, 101.1, 1000),  # long at 101.0 (stop 100.9)
    ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),  # above the stop
    ("09:34", 101.2, 101.4, 101.1, 101.3, 1000),  # last bar: eod at 101.3 (no target)
]


def test_s10_2_slot_sizing_with_the_leverage_cap_binding() -> None:
    frames = {
        # alloc 50,000: risk says 500 / 0.1 = 5000 shares, the cap 4 x 50,000 / 101 = 1980.2 -> 1980
        "AAA": warmup(D1, 2) + [(D1, NARROW)],
        # alloc 50,000: risk 500 / 1.0 = 500 shares (cap 1980 not binding)
        "BBB": warmup(D1, 2) + [(D1, or_rows(1000) + [E_LONG, *QUIET_TAIL])],
    }
    res = run(frames, **NO_TARGET)
    t = res.trades.set_index("symbol")
    assert int(t.loc["AAA", "shares"]) == 1980 and int(t.loc["BBB", "shares"]) == 500
    assert list(t["alloc"]) == [50_000.0, 50_000.0]
    assert (t["shares"] * t["entry_price"]).sum() <= 4.0 * 100_000
    assert t["target_price"].isna().all() and list(t["exit_reason"]) == ["eod", "eod"]  # 11.2
    # account equity (10.7, 10.9.7): both entries at 09:32 in symbol order, both eod exits at 09:34,
    # then the session close at 16:00 local (21:00 UTC)
    eq = res.equity
    assert list(eq["timestamp"]) == [utc(D1, "09:32"), utc(D1, "09:32"), utc(D1, "09:34"), utc(D1, "09:34"),
                                     utc(D1, "16:00")]  # fmt: skip
    aaa, bbb = 1980 * 0.3, 500 * 0.3
    assert eq["equity"].tolist() == pytest.approx([100_000, 100_000, 100_000 + aaa, 100_000 + aaa + bbb,
                                                   100_000 + aaa + bbb])  # fmt: skip
    assert eq["cum_r"].tolist() == pytest.approx([0, 0, 3.0, 3.3, 3.3])  # r 594/198 = 3.0, 150/500 = 0.3


def test_s10_9_5_a_second_entry_is_sized_with_alloc_not_with_the_days_pnl() -> None:
    day = or_rows(1000) + LONG_STOPPED[:2] + [
        ("09:34", 100.0, 100.8, 99.95, 100.5, 1000),  # back inside; long armed (99.95 <= 101), not touched
        ("09:35", 100.6, 101.2, 100.5, 101.1, 1000),  # second long at 101.0: 500 shares (alloc 50,000)
        ("09:36", 101.1, 101.3, 101.0, 101.2, 1000),  # last bar: eod at 101.2
    ]  # fmt: skip
    res = run({"AAA": warmup(D1, 2) + [(D1, day)]}, **{"governance.lockout_after_losses": 0})
    assert list(res.trades["shares"]) == [500, 500]  # with the day's -500 added it would be 497
    assert list(res.trades["exit_reason"]) == ["stop", "eod"]


def test_s10_1_equity_chains_across_sessions_and_a_symbol_listed_mid_period() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [
            (D1, or_rows(1000) + LONG_STOPPED),           # alloc 50,000: 500 shares, -500
            (D2, or_rows(1000) + [E_LONG, *QUIET_TAIL]),  # alloc 99,500 / 2 = 49,750: 497 shares, +0.3 each
            (D3, or_rows(1000) + TAIL),                   # no signal
            (D4, or_rows(1000) + TAIL),                   # no signal
        ],
        "BBB": [  # listed on D2: no_data on D1, warmup on D2 (0 prior sessions) and D3 (1), eligible on D4
            (D2, or_rows(1000) + TAIL),
            (D3, or_rows(1000) + TAIL),
            (D4, or_rows(1000) + [E_LONG, *QUIET_TAIL]),  # alloc 99,649.1 / 2: 498 shares, +0.3 each
        ],
    }  # fmt: skip
    res = run(frames)
    check_universe(res, D1, {"BBB": ("skipped", "no_data", None), "AAA": ("traded", None, 1)})
    check_universe(res, D2, {"BBB": ("skipped", "warmup", None), "AAA": ("traded", None, 1)})
    check_universe(res, D3, {"BBB": ("skipped", "warmup", None), "AAA": ("no_signal", None, 1)})
    # D4: both rel_volume 2000 / 2000 = 1.0, a tie: AAA rank 1, BBB rank 2
    check_universe(res, D4, {"AAA": ("no_signal", None, 1), "BBB": ("traded", None, 2)})
    t = res.trades
    assert list(t["shares"]) == [500, 497, 498]
    assert t["alloc"].tolist() == pytest.approx([50_000, 49_750, 99_649.1 / 2])
    closes = res.equity[res.equity["timestamp"].dt.tz_convert("America/New_York").dt.hour == 16]
    assert closes["equity"].tolist() == pytest.approx([99_500, 99_649.1, 99_649.1, 99_798.5])
    assert row(res, D2, "AAA")["day_pnl"] == pytest.approx(149.1)
    agg = res.metrics["aggregate"]
    assert agg["final_equity"] == pytest.approx(99_798.5)
    assert agg["daily_hit_ratio"] == pytest.approx(2 / 3)  # D1 lost, D2 and D4 won, D3 had no trade
    assert agg["worst_day_pct"] == pytest.approx(-0.5)
    assert agg["avg_positions"] == 1.0 and agg["max_positions_used"] == 1
    assert agg["sessions"] == 4 and agg["total_trades"] == 3
    assert set(res.metrics["per_symbol"]) == {"AAA", "BBB"}
    assert res.metrics["per_symbol"]["AAA"]["sharpe"] is None
    assert res.metrics["per_symbol"]["AAA"]["total_trades"] == 2


# ------------------------------------------------------------- benchmark (10.8, 10.9.9, 10.9.12)
def test_s10_9_9_benchmark_missing_a_session() -> None:
    flat = [("09:30", 100.5, 101.0, 100.0, 100.5, 1000), ("09:31", 100.5, 100.8, 100.2, 100.5, 1000)]
    frames = {
        "AAA": warmup(D1, 2) + [
            (D1, or_rows(1000) + LONG_STOPPED),           # -500: return -0.5 %
            (D2, or_rows(1000) + [E_LONG, *QUIET_TAIL]),  # +149.1
            (D3, or_rows(1000) + [E_LONG, *QUIET_TAIL]),  # alloc 49,824.55: 498 shares, +149.4
        ],
        # the benchmark, not traded: closes 100 before D1, 102 on D1, nothing on D2, 99.96 on D3
        "BM": warmup(D1, 1) + [(D1, flat[:1] + [("09:31", 101, 102, 101, 102, 10)]),
                               (D3, flat[:1] + [("09:31", 100, 100, 99.9, 99.96, 10)])],
    }  # fmt: skip
    frames_ = {sym: bars(s) for sym, s in frames.items()}
    res = backtest(cfg(**{"portfolio.benchmark": "BM"}), ["AAA"], FrameSource(frames_, D1, None))
    b = res.benchmark
    assert list(b["session_date"]) == [D1, D3]
    assert b["return"].tolist() == pytest.approx([0.02, 99.96 / 102 - 1])
    agg = res.metrics["aggregate"]
    assert agg["benchmark_return_pct"] == pytest.approx((1.02 * 99.96 / 102 - 1) * 100)
    # OLS over the sessions where both returns exist (D1, D3): two points, an exact line
    y1, y3 = -500 / 100_000, 149.4 / 99_649.1
    x1, x3 = 0.02, 99.96 / 102 - 1
    slope = (y3 - y1) / (x3 - x1)
    assert agg["beta"] == pytest.approx(slope)
    assert agg["alpha_pct"] == pytest.approx((y1 - slope * x1) * 252 * 100)
    assert set(res.universe["symbol"]) == {"AAA"}  # an untraded benchmark is not in the universe


def test_s10_9_12_benchmark_starting_late_uses_its_first_open_and_adds_its_sessions() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)],  # no data on D2
        "BM": [(D2, [("09:30", 50.0, 51.0, 50.0, 50.5, 10), ("09:31", 50.5, 51.0, 50.4, 51.0, 10)])],
    }
    frames_ = {sym: bars(s) for sym, s in frames.items()}
    res = backtest(cfg(**{"portfolio.benchmark": "BM"}), ["AAA"], FrameSource(frames_, D1, None))
    assert res.benchmark["return"].tolist() == pytest.approx([51.0 / 50.0 - 1])  # first open 50 -> close 51
    check_universe(res, D2, {"AAA": ("skipped", "no_data", None)})  # D2 is a run session (the benchmark's)
    assert res.metrics["aggregate"]["sessions"] == 2


def test_s10_9_12_benchmark_without_bars_is_one_error() -> None:
    frames_ = {"AAA": bars(warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)])}
    with pytest.raises(DataError, match="benchmark QQQ has no bars"):
        backtest(cfg(**{"portfolio.benchmark": "QQQ"}), ["AAA"], FrameSource(frames_, D1, None))


def test_empty_universe_on_every_session_is_one_error() -> None:
    frames = {"AAA": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)]}
    with pytest.raises(DataError, match=r"universe is empty on every session .*min_price 1"):
        run(frames, **{"universe.min_price": 1000.0})


# --------------------------------------------------------------------------- section 11 inside a portfolio
def test_s11_direction_or_candle_with_a_doji_in_the_universe() -> None:
    up = [("09:30", 100.5, 101.0, 100.0, 100.5, 1000), ("09:31", 100.5, 100.8, 100.2, 100.7, 1000)]  # up
    breakouts = [
        ("09:32", 100.4, 100.5, 99.8, 99.9, 1000),  # short trigger touched (not allowed for UP; DOJI none)
        ("09:33", 99.9, 100.2, 99.8, 100.1, 1000),  # back inside
        ("09:34", 100.6, 101.2, 100.5, 101.1, 1000),  # long trigger touched at 101.0
        ("09:35", 101.1, 101.3, 101.0, 101.2, 1000),  # last bar: eod at 101.2
    ]
    frames = {
        "UP": warmup(D1, 2) + [(D1, up + breakouts)],  # long only: 09:34 long, eod 101.2
        "DOJI": warmup(D1, 2) + [(D1, or_rows(1000) + breakouts)],  # open 100.5 = last OR close 100.5
    }
    res = run(frames, **{"entry.direction": "or_candle"})
    check_universe(res, D1, {"DOJI": ("no_signal", None, 1), "UP": ("traded", None, 2)})
    t = res.trades
    assert list(zip(t["symbol"], t["side"], t["exit_reason"], strict=True)) == [("UP", "long", "eod")]
    assert res.events.empty  # disallowed sides record no event


def test_result_tables_carry_the_symbol_and_the_selected_bars_only() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [(D1, or_rows(1000) + [E_LONG, *QUIET_TAIL])],
        "BBB": warmup(D1, 2) + [(D1, or_rows(400) + [E_LONG, *QUIET_TAIL])],  # rel 0.8: below the bound
    }
    res = run(frames, **{"universe.min_rel_volume": 1.0})
    assert set(res.fills["symbol"]) == {"AAA"} and set(res.bars["symbol"]) == {"AAA"}
    assert len(res.bars) == 5 and res.bars["timestamp"].min() == utc(D1, "09:30")  # warm-up bars not kept
    assert {"alloc", "rank"} <= set(res.trades.columns)
    assert np.array_equal(res.trades["rank"].to_numpy(dtype=int), [1])
