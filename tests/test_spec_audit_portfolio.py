"""Spec audit of portfolio mode (strategy.md 10, 11): hand-written scenarios for rules no other test pins
exactly. Every expected value is computed by hand from the spec in the comments (section cited).

Setup as in test_portfolio.py: 1m bars, 2-minute OR, confluence off, no width filter, or_opposite stops,
no costs, `universe.lookback_sessions: 2`, `orb.atr_period: 2`, `portfolio.max_positions: 2`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from candles import bars, sessions_from, utc, warmup
from test_engine_scenarios import E_LONG, QUIET_TAIL
from test_portfolio import BASE, LONG_STOPPED, NARROW, NO_TARGET, TAIL, check_universe, or_rows, row

from orb.config import load_config, with_overrides
from orb.errors import DataError
from orb.portfolio import FrameSource, backtest
from orb.runs.write import write_parquet

D1, D2, D3, D4 = (d.date() for d in sessions_from("2024-03-05", 4))  # Tue-Fri, EST (UTC-5)
WIN = or_rows(1000) + [E_LONG, *QUIET_TAIL]  # long 101.0 at 09:32 (stop 100, R_ps 1), eod 101.3 at 09:34


def cfg(**extra):
    return with_overrides(load_config(), {**BASE, **extra})


def run(frames: dict[str, list], symbols=None, start=D1, **extra):
    frames_ = {sym: bars(sessions) for sym, sessions in frames.items()}
    return backtest(cfg(**extra), sorted(symbols or frames), FrameSource(frames_, start, None))


# ------------------------------------------------------------------ daily values (10.3, 9.2, 10.9.3, 10.9.11)
def test_s10_3_volume_means_use_exactly_the_prior_lookback_sessions_present() -> None:
    frames = {
        # warm-up: three one-bar sessions (09:30, inside the OR window): OR volume = day volume
        "AAA": warmup(D1, 3, volumes=[100, 200, 300])
        + [
            # D1: OR volume 2 x 200 = 400, day volume 400 + 2000 = 2400.
            #     prior 2 sessions: OR 200, 300 -> mean 250: rel 400 / 250 = 1.6; avg_volume 250
            (D1, or_rows(200) + TAIL),
            # D2: OR 2000, day 4000. prior: 300 (OR 300, day 300) and D1 (OR 400, day 2400):
            #     rel 2000 / 350; avg_volume (300 + 2400) / 2 = 1350
            (D2, or_rows(1000) + TAIL),
            # no data on D3 (a run session through BBB): no_data; the chain skips it (9.2)
            # D4: OR 1000. prior present: D1 (OR 400, day 2400), D2 (OR 2000, day 4000):
            #     rel 1000 / 1200; avg_volume 3200
            (D4, or_rows(500) + TAIL),
        ],
        "BBB": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL), (D3, or_rows(1000) + TAIL)],
        "CCC": warmup(D1, 2)
        + [
            # D1: bars but none in the OR window: OR volume 0, rel 0 / 1000 = 0 (defined), no_or_bars;
            #     open_price is the open of the first regular-hours bar (09:32: 100.2); day volume 3000
            (D1, [("09:32", 100.2, 100.4, 100.1, 100.3, 1000)] + TAIL),
            # D2: OR 1000; prior: warm-up (OR 1000, day 1000) and D1 (OR 0, day 3000): the 0 counts
            #     (10.9.11): rel 1000 / 500 = 2.0; avg_volume 2000
            (D2, or_rows(500) + TAIL),
        ],
    }
    res = run(frames)

    def values(day, sym):
        r = row(res, day, sym)
        return r["open_price"], r["avg_volume"], r["rel_volume"]

    assert values(D1, "AAA") == pytest.approx((100.5, 250.0, 1.6))
    assert values(D2, "AAA") == pytest.approx((100.5, 1350.0, 2000 / 350))
    assert values(D4, "AAA") == pytest.approx((100.5, 3200.0, 1000 / 1200))
    assert values(D1, "CCC") == pytest.approx((100.2, 1000.0, 0.0))
    assert values(D2, "CCC") == pytest.approx((100.5, 2000.0, 2.0))
    check_universe(res, D1, {"CCC": ("skipped", "no_or_bars", None)})
    check_universe(res, D3, {"AAA": ("skipped", "no_data", None), "CCC": ("skipped", "no_data", None)})
    assert math.isnan(row(res, D3, "AAA")["rel_volume"])


# ------------------------------------------------------------------ bounds at equality (10.4)
# "open_price > min_price, avg_volume >= min_avg_volume, atr > min_atr, rel_volume >= min_rel_volume"
# PROBE: warm-up 3 sessions (ATR 2, avg volume 1000), D1 open 100.5, rel 2000 / 1000 = 2.0
PROBE = warmup(D1, 3) + [(D1, or_rows(1000) + TAIL)]
TAIL_200 = [(t, o + 100, h + 100, lo + 100, c + 100, v) for t, o, h, lo, c, v in TAIL]  # inside 200-201
OTHER = warmup(D1, 3, price=200.0, rng=3.0, volume=1000) + [(D1, or_rows(1000, price=200.0) + TAIL_200)]


@pytest.mark.parametrize(
    ("bound", "value", "expected"),
    [
        ("universe.min_price", 100.5, ("skipped", "min_price", None)),  # strict: equal fails
        ("universe.min_avg_volume", 1000, ("no_signal", None, 1)),  # >=: equal passes (ties by symbol)
        ("universe.min_atr", 2.0, ("skipped", "min_atr", None)),  # strict: equal fails
        ("universe.min_rel_volume", 2.0, ("no_signal", None, 1)),  # >=: equal passes
    ],
)
def test_s10_4_bounds_at_equality(bound, value, expected) -> None:
    res = run({"APROBE": PROBE, "ZOTHER": OTHER}, **{bound: value})  # ZOTHER (open 200.5, ATR 3) passes
    check_universe(res, D1, {"APROBE": expected, "ZOTHER": ("no_signal", None, 2 if expected[2] else 1)})


@pytest.mark.parametrize(
    "extra", [{"entry.buffer_atr": 0.1}, {"orb.min_width_atr": 0.1}], ids=["buffer", "width_filter"]
)
def test_s10_9_3_atr_needed_by_the_buffer_or_the_width_filter(extra) -> None:
    # two prior sessions: rel_volume defined, ATR(2) undefined (needs 3): warmup when something uses it
    frames = {"DATRWARM": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL)], "AOK": PROBE}
    res = run(frames, **extra)
    check_universe(res, D1, {"DATRWARM": ("skipped", "warmup", None), "AOK": ("no_signal", None, 1)})


# ------------------------------------------------------------------ account rows with commission (10.9.7)
def test_s10_9_7_entry_books_minus_its_commission_and_cum_r_moves_at_the_last_fill() -> None:
    # alloc 50,000: shares floor(min(500 / 1, 4 x 50,000 / 101)) = 500; commission 0.01 a share = 5 a fill
    res = run({"AAA": warmup(D1, 2) + [(D1, WIN)]}, **NO_TARGET, **{"costs.commission_per_share": 0.01})
    eq = res.equity
    assert list(eq["timestamp"]) == [utc(D1, "09:32"), utc(D1, "09:34"), utc(D1, "16:00")]
    # entry: 100,000 - 5; eod exit: + 500 x 0.3 - 5 = +145 -> 100,140 (net 140)
    assert eq["equity"].tolist() == pytest.approx([99_995.0, 100_140.0, 100_140.0])
    # r = 140 / (1 x 500) = 0.28, booked at the trade's last fill, not at the entry
    assert eq["cum_r"].tolist() == pytest.approx([0.0, 0.28, 0.28])
    # 10.9.13 "equity / running max of equity - 1": the running max is read as starting at the initial
    # capital (the curve's value before its first row), so the entry's commission is a drawdown
    assert eq["drawdown_pct"].tolist() == pytest.approx([(99_995 / 100_000 - 1) * 100, 0.0, 0.0])
    assert eq["drawdown_r"].tolist() == [0.0, 0.0, 0.0]
    assert res.trades["net_pnl"].tolist() == pytest.approx([140.0])
    assert row(res, D1, "AAA")["day_pnl"] == pytest.approx(140.0)


def test_s10_9_7_each_exit_leg_books_its_pnl_minus_its_commission() -> None:
    # partials (5): 500 shares long 101.0, stop 100 (R 1): T1 250 at 102, T2 125 at 102.5, runner 125
    day = or_rows(1000) + [
        E_LONG,                                        # 09:32 entry: -500 x 0.01 = -5
        ("09:33", 101.1, 102.1, 101.0, 102.0, 1000),   # T1: 250 x 1.0 - 2.5 = +247.5; BE stop 101 next bar
        ("09:34", 102.0, 102.6, 101.9, 102.4, 1000),   # T2: 125 x 1.5 - 1.25 = +186.25 (low above 101)
        ("09:35", 102.4, 102.5, 102.2, 102.3, 1000),   # last bar: eod 125 x 1.3 - 1.25 = +161.25
    ]  # fmt: skip
    res = run({"AAA": warmup(D1, 2) + [(D1, day)]}, **{"costs.commission_per_share": 0.01})
    eq = res.equity
    assert list(eq["timestamp"]) == [utc(D1, t) for t in ("09:32", "09:33", "09:34", "09:35", "16:00")]
    assert eq["equity"].tolist() == pytest.approx([99_995.0, 100_242.5, 100_428.75, 100_590.0, 100_590.0])
    assert eq["cum_r"].tolist() == pytest.approx([0, 0, 0, 1.18, 1.18])  # 590 / 500 at the last leg
    assert res.fills["kind"].tolist() == ["entry", "t1", "t2", "eod"]


def test_s10_9_10_defaults() -> None:
    c = load_config()
    assert not c.portfolio.enabled and c.portfolio.max_positions == 20 and c.portfolio.benchmark is None
    u = c.universe
    assert (u.min_price, u.min_avg_volume, u.min_atr, u.min_rel_volume, u.lookback_sessions) == (
        None, None, None, None, 14,
    )  # fmt: skip


def test_s10_7_same_time_fills_in_symbol_order_whatever_order_the_symbols_are_given() -> None:
    # AAA: NARROW, 1980 shares (leverage cap), +0.3 each = +594; BBB: 500 shares, +150; both exit at 09:34
    frames_ = {"AAA": bars(warmup(D1, 2) + [(D1, NARROW)]), "BBB": bars(warmup(D1, 2) + [(D1, WIN)])}
    res = backtest(cfg(**NO_TARGET), ["BBB", "AAA"], FrameSource(frames_, D1, None))
    at_exit = res.equity[res.equity["timestamp"] == utc(D1, "09:34")]
    assert at_exit["equity"].tolist() == pytest.approx([100_594.0, 100_744.0])  # AAA's row first


def test_s10_9_13_session_close_row_on_an_early_close() -> None:
    day = pd.Timestamp("2024-11-29").date()  # XNYS closes 13:00 EST (18:00 UTC) after Thanksgiving
    res = run({"AAA": warmup(day, 2) + [(day, WIN)]}, start=day, **NO_TARGET)
    assert res.equity["timestamp"].iloc[-1] == utc(day, "13:00") == pd.Timestamp("2024-11-29 18:00", tz="UTC")


# ---------------------------------------------------- account metrics (10.7, 10.8, 10.9.8-9, 10.9.12)
def test_s10_7_daily_returns_count_every_session_including_a_benchmark_only_one() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [
            (D1, or_rows(1000) + LONG_STOPPED),  # 500 shares, -500: E 100,000 -> 99,500
            # no data on D2 (a run session only through the benchmark): return 0
            # D3: prior present D1 (OR 2000), warm-up (OR 1000): rel 2000 / 1500, eligible.
            #     alloc 99,500 / 2 = 49,750: 497 shares, +0.3 each = +149.1
            (D3, WIN),
        ],
        # benchmark, not traded: closes 100 (warm-up), 101 (D1), 99 (D2), 100 (D3)
        "BM": warmup(D1, 1) + [
            (D1, [("09:30", 100.0, 101.0, 100.0, 101.0, 10)]),
            (D2, [("09:30", 101.0, 101.0, 99.0, 99.0, 10)]),
            (D3, [("09:30", 99.0, 100.0, 99.0, 100.0, 10)]),
        ],
    }  # fmt: skip
    res = run(frames, symbols=["AAA"], **{"portfolio.benchmark": "BM"})
    check_universe(res, D2, {"AAA": ("skipped", "no_data", None)})
    closes = res.equity[res.equity["timestamp"].dt.tz_convert("America/New_York").dt.hour == 16]
    assert list(closes["timestamp"]) == [utc(D1, "16:00"), utc(D2, "16:00"), utc(D3, "16:00")]
    y = np.array([-500 / 100_000, 0.0, 149.1 / 99_500])  # E_{d+1} / E_d - 1 on D1, D2, D3
    agg = res.metrics["aggregate"]
    mean, std = y.mean(), math.sqrt(((y - y.mean()) ** 2).sum() / 2)  # sample std (ddof 1)
    assert agg["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert agg["final_equity"] == pytest.approx(99_649.1)
    assert agg["worst_day_pct"] == pytest.approx(-0.5)
    assert agg["daily_hit_ratio"] == pytest.approx(0.5)  # D1 lost, D3 won; D2 had no trade
    assert agg["sessions"] == 3
    x = np.array([101 / 100 - 1, 99 / 101 - 1, 100 / 99 - 1])  # benchmark close-to-close (10.9.9)
    assert res.benchmark["return"].tolist() == pytest.approx(x.tolist())
    assert agg["benchmark_return_pct"] == pytest.approx(0.0, abs=1e-9)  # 100 -> 100
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert agg["beta"] == pytest.approx(slope)
    assert agg["alpha_pct"] == pytest.approx((y.mean() - slope * x.mean()) * 252 * 100)


def test_s10_9_8_no_trade_at_all_and_a_one_point_benchmark_give_nulls() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [(D1, or_rows(1000) + TAIL), (D2, or_rows(1000) + TAIL)],  # no signal
        "BM": [(D2, [("09:30", 50.0, 51.0, 50.0, 51.0, 10)])],  # one session: one OLS point
    }
    res = run(frames, symbols=["AAA"], **{"portfolio.benchmark": "BM"})
    agg = res.metrics["aggregate"]
    assert agg["daily_hit_ratio"] is None and agg["avg_positions"] is None  # no session with a trade
    assert agg["max_positions_used"] == 0 and agg["total_trades"] == 0
    assert agg["worst_day_pct"] == 0.0  # every session's return is 0
    assert agg["sharpe"] is None  # zero variance
    assert agg["beta"] is None and agg["alpha_pct"] is None  # fewer than 2 points
    assert agg["benchmark_return_pct"] == pytest.approx(2.0)  # first return from its open: 51 / 50 - 1


def test_s10_9_9_flat_benchmark_has_no_beta() -> None:
    flat = [("09:30", 100.0, 100.0, 100.0, 100.0, 10)]
    frames = {
        "AAA": warmup(D1, 2) + [(D1, or_rows(1000) + LONG_STOPPED), (D2, WIN)],
        "BM": warmup(D1, 1) + [(D1, flat), (D2, flat)],  # returns 0, 0: benchmark variance 0
    }
    agg = run(frames, symbols=["AAA"], **{"portfolio.benchmark": "BM"}).metrics["aggregate"]
    assert agg["beta"] is None and agg["alpha_pct"] is None
    assert agg["benchmark_return_pct"] == 0.0


def test_s10_9_12_benchmark_with_only_warmup_bars_is_one_error() -> None:
    frames_ = {"AAA": bars(warmup(D1, 2) + [(D1, WIN)]), "BM": bars(warmup(D1, 3))}  # no bar from D1 on
    with pytest.raises(DataError, match="benchmark BM has no bars"):
        backtest(cfg(**{"portfolio.benchmark": "BM"}), ["AAA"], FrameSource(frames_, D1, None))


def test_s10_8_positions_count_distinct_symbols_traded() -> None:
    frames = {
        "AAA": warmup(D1, 2) + [(D1, WIN), (D2, WIN)],  # trades D1 and D2
        "BBB": warmup(D1, 2) + [(D1, WIN), (D2, or_rows(1000) + TAIL)],  # trades D1, no signal D2
    }
    res = run(frames, **NO_TARGET)
    agg = res.metrics["aggregate"]
    assert agg["max_positions_used"] == 2  # D1
    assert agg["avg_positions"] == pytest.approx(1.5)  # (2 + 1) / 2 sessions with a trade
    assert agg["daily_hit_ratio"] == 1.0
    check_universe(res, D2, {"AAA": ("traded", None, 1), "BBB": ("no_signal", None, 2)})


def test_s10_9_9_a_benchmark_among_the_symbols_is_an_ordinary_member() -> None:
    frames = {"AAA": warmup(D1, 2) + [(D1, WIN)], "BM": warmup(D1, 2) + [(D1, or_rows(500) + TAIL)]}
    res = run(frames, **{"portfolio.benchmark": "BM"})
    # AAA rel 2000 / 1000 = 2.0 (rank 1), BM rel 1000 / 1000 = 1.0 (rank 2)
    check_universe(res, D1, {"AAA": ("traded", None, 1), "BM": ("no_signal", None, 2)})
    # BM's return: prior close 100 (warm-up), D1 close 100.3 (TAIL's last bar)
    assert res.benchmark["return"].tolist() == pytest.approx([100.3 / 100.0 - 1])


def test_s10_9_4_universe_dtypes(tmp_path) -> None:
    frames = {"AAA": warmup(D1, 2) + [(D1, WIN)], "BBB": warmup(D1, 1) + [(D1, WIN)]}  # BBB: warmup
    u = run(frames).universe
    assert str(u["rank"].dtype) == "Int64" and u["rank"].isna().tolist() == [False, True]
    assert u["reason"].tolist() == [None, "warmup"]
    assert u["trades"].dtype == np.int64 and u["day_r"].dtype == np.float64
    assert u["trades"].tolist() == [1, 0] and u["day_pnl"].tolist() == pytest.approx([150.0, 0.0])
    # as written to universe.parquet: a date column, rank and reason null (not NaN / "") where undefined
    write_parquet(u, tmp_path / "universe.parquet")
    table = pq.read_table(tmp_path / "universe.parquet")
    assert str(table.schema.field("session_date").type) == "date32[day]"
    assert table.column("rank").to_pylist() == [1, None]
    assert table.column("reason").to_pylist() == [None, "warmup"]
