"""orb.metrics: hand-computed metrics on tiny tables, edge cases, JSON safety, and properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from orb.metrics import compute_metrics, drawdowns
from orb.schema import AGGREGATE_EXTRA_KEYS, METRIC_KEYS

CAPITAL = 10_000.0
PARAMS = {"initial_capital": CAPITAL, "periods_per_year": 252, "risk_free_rate": 0.0}


def utc(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz="UTC")


def make_trades(rows: list[dict]) -> pd.DataFrame:
    """Trades with 100 $ of initial risk each, so net_pnl = 100 * R."""
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["r_multiple"])
    return frame.assign(net_pnl=frame["r_multiple"] * 100.0)


def make_equity(points: list[tuple[pd.Timestamp, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(points, columns=["timestamp", "equity", "cum_r"])


def make_sessions(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"session_date": pd.to_datetime([d for d, _ in rows]), "status": [s for _, s in rows]}
    )


def assert_strict_json(metrics: dict) -> None:
    json.dumps(metrics, allow_nan=False)  # raises on NaN / inf and on numpy scalars
    for value in metrics.values():
        assert value is None or type(value) in (int, float, dict, list)


# The worked example: five trades R = [2, -1, -1, 0.5, 3] on Jan 2-8 2024 (one per session),
# given out of order so that entry_time decides the trade order. Trade order: W L L W W.
DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
EXAMPLE_ROWS = [
    {
        "entry_time": utc(DAYS[3], "15:00"),
        "r_multiple": 0.5,
        "side": "short",
        "exit_reason": "eod",
        "holding_minutes": 80.0,
    },
    {
        "entry_time": utc(DAYS[0], "15:00"),
        "r_multiple": 2.0,
        "side": "long",
        "exit_reason": "target",
        "holding_minutes": 100.0,
    },
    {
        "entry_time": utc(DAYS[2], "15:00"),
        "r_multiple": -1.0,
        "side": "long",
        "exit_reason": "stop",
        "holding_minutes": 50.0,
    },
    {
        "entry_time": utc(DAYS[1], "15:00"),
        "r_multiple": -1.0,
        "side": "short",
        "exit_reason": "stop",
        "holding_minutes": 50.0,
    },
    {
        "entry_time": utc(DAYS[4], "15:00"),
        "r_multiple": 3.0,
        "side": "long",
        "exit_reason": "target",
        "holding_minutes": 110.0,
    },
]
# Equity at each session close (21:00 UTC = 16:00 New York in January): 10000 + cumulative net_pnl.
# cum_r: 2, 1, 0, 0.5, 3.5; equity: 10200, 10100, 10000, 10050, 10350, then flat on Jan 9.
EXAMPLE_EQUITY = [
    (utc(DAYS[0], "21:00"), 10_200.0, 2.0),
    (utc(DAYS[1], "21:00"), 10_100.0, 1.0),
    (utc(DAYS[2], "21:00"), 10_000.0, 0.0),
    (utc(DAYS[3], "21:00"), 10_050.0, 0.5),
    (utc(DAYS[4], "21:00"), 10_350.0, 3.5),
    (utc("2024-01-09", "21:00"), 10_350.0, 3.5),
]
EXAMPLE_SESSIONS = [(d, "traded") for d in DAYS] + [("2024-01-09", "no_signal"), ("2024-01-10", "skipped")]


@pytest.fixture
def example() -> dict:
    return compute_metrics(
        make_trades(EXAMPLE_ROWS), make_equity(EXAMPLE_EQUITY), make_sessions(EXAMPLE_SESSIONS), **PARAMS
    )


def test_trade_counts_and_r_statistics(example):
    assert example["total_trades"] == 5
    assert example["winning_trades"] == 3  # 2, 0.5, 3
    assert example["losing_trades"] == 2
    assert example["win_rate"] == pytest.approx(0.6)
    assert example["total_r"] == pytest.approx(3.5)  # 2 - 1 - 1 + 0.5 + 3
    assert example["avg_r"] == pytest.approx(0.7)  # 3.5 / 5
    assert example["expectancy_r"] == pytest.approx(0.7)
    assert example["median_r"] == pytest.approx(0.5)  # sorted: -1, -1, 0.5, 2, 3
    # gross profit 200 + 50 + 300 = 550 $, gross loss 100 + 100 = 200 $
    assert example["profit_factor"] == pytest.approx(2.75)
    # deviations from 0.7: 1.3, -1.7, -1.7, -0.2, 2.3; squares sum 12.8; var = 12.8 / 4 = 3.2
    # sqn = sqrt(5) * 0.7 / sqrt(3.2) = 0.7 * sqrt(1.5625) = 0.7 * 1.25
    assert example["sqn"] == pytest.approx(0.875)
    assert example["avg_winner_r"] == pytest.approx(5.5 / 3)
    assert example["avg_loser_r"] == pytest.approx(-1.0)
    assert example["largest_winner_r"] == pytest.approx(3.0)
    assert example["largest_loser_r"] == pytest.approx(-1.0)
    # entry order W L L W W (test_trade_order_is_entry_time checks that the order is entry_time)
    assert example["max_consecutive_wins"] == 2
    assert example["max_consecutive_losses"] == 2


def test_sides_exits_holding_and_money(example):
    assert example["long_trades"] == 3 and example["short_trades"] == 2
    assert example["long_win_rate"] == pytest.approx(2 / 3)  # longs: 2, -1, 3
    assert example["short_win_rate"] == pytest.approx(0.5)  # shorts: -1, 0.5
    assert example["exit_reasons"] == {"eod": 1, "stop": 2, "target": 2}
    assert list(example["exit_reasons"]) == ["eod", "stop", "target"]
    assert example["avg_holding_minutes"] == pytest.approx(78.0)  # 390 / 5
    assert example["net_pnl"] == pytest.approx(350.0)
    assert example["final_equity"] == pytest.approx(10_350.0)
    assert example["total_return_pct"] == pytest.approx(3.5)  # 350 / 10000 * 100
    # 390 minutes held over 6 sessions not skipped (5 traded + 1 no_signal) of 390 minutes
    assert example["exposure_pct"] == pytest.approx(100 / 6)


def test_sessions_counts(example):
    assert example["sessions"] == 7
    assert example["sessions_traded"] == 5
    assert example["sessions_skipped"] == 1


def test_drawdowns_and_ratios(example):
    assert example["max_drawdown_r"] == pytest.approx(-2.0)  # cum_r peak 2 -> trough 0
    assert example["max_drawdown_pct"] == pytest.approx((10_000 / 10_200 - 1) * 100)  # -1.96 %
    assert example["max_drawdown_duration_days"] == 6  # peak Jan 2, back above it Jan 8
    # session days Jan 2 .. Jan 10: 8 calendar days
    cagr = (1.035 ** (365.25 / 8) - 1) * 100
    assert example["cagr_pct"] == pytest.approx(cagr)
    assert example["calmar"] == pytest.approx(cagr / (100 - 10_000 / 10_200 * 100))
    # daily closes 10200, 10100, 10000, 10050, 10350, 10350, 10350 (Jan 10 skipped: no row, 0 return)
    closes = np.array([10_200, 10_100, 10_000, 10_050, 10_350, 10_350, 10_350.0])
    returns = closes / np.concatenate([[10_000.0], closes[:-1]]) - 1
    assert example["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert example["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(252))


def test_key_order_and_strict_json(example):
    assert tuple(example) == METRIC_KEYS
    assert_strict_json(example)


def test_sharpe_sortino_by_hand():
    # closes 110, 99, 108.9 from 100: returns 0.1, -0.1, 0.1; mean 1/30; var (2 * (1/15)^2 + (2/15)^2) / 2
    # = 1/75; sharpe = (1/30) / sqrt(1/75) * sqrt(252) = sqrt(75 * 252) / 30
    # downside = sqrt((0 + 0.01 + 0) / 3); sortino = (1/30) / sqrt(1/300) * sqrt(252) = sqrt(252 / 3)
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]
    equity = make_equity([(utc(d, "21:00"), v, 0.0) for d, v in zip(days, [110.0, 99.0, 108.9], strict=True)])
    sessions = make_sessions([(d, "traded") for d in days])
    m = compute_metrics(pd.DataFrame(), equity, sessions, **{**PARAMS, "initial_capital": 100.0})
    assert m["sharpe"] == pytest.approx(math.sqrt(75 * 252) / 30)
    assert m["sortino"] == pytest.approx(math.sqrt(84))
    # risk-free 2.52 % a year over 252 periods is 0.01 a day: excess mean 1/30 - 0.01, same std
    m_rf = compute_metrics(
        pd.DataFrame(), equity, sessions, **{**PARAMS, "initial_capital": 100.0, "risk_free_rate": 2.52}
    )
    assert m_rf["sharpe"] == pytest.approx((1 / 30 - 0.01) * math.sqrt(75) * math.sqrt(252))


def test_sessions_without_equity_rows_count_as_zero_return():
    # Jan 2 close 110 (intraday row 99.99 earlier that day is not the close), no row Jan 3, Jan 4 close 121:
    # returns 0.1, 0, 0.1; mean 1/15; deviations 1/30, -1/15, 1/30 -> var (2/900 + 4/900) / 2 = 1/300
    # sharpe = (1/15) / sqrt(1/300) * sqrt(252) = sqrt(300) / 15 * sqrt(252). Dropping the empty day would
    # leave 0.1, 0.1 (zero variance, None).
    equity = make_equity(
        [
            (utc("2024-01-02", "15:00"), 99.99, 0.0),
            (utc("2024-01-02", "21:00"), 110.0, 1.0),
            (utc("2024-01-04", "21:00"), 121.0, 2.0),
        ]
    )
    sessions = make_sessions(
        [("2024-01-02", "traded"), ("2024-01-03", "no_signal"), ("2024-01-04", "traded")]
    )
    m = compute_metrics(pd.DataFrame(), equity, sessions, **{**PARAMS, "initial_capital": 100.0})
    assert m["sharpe"] == pytest.approx(math.sqrt(300) / 15 * math.sqrt(252))
    assert m["sortino"] is None  # no negative day
    assert m["max_drawdown_pct"] == pytest.approx(-0.01)  # 99.99 / 100 - 1, below the initial capital


def test_drawdown_duration_unrecovered_and_first_row_loss():
    # initial 100; Jan 2: 90 (under the initial capital from day one), Jan 4: 100 (recovered: 2 days),
    # Jan 8: 120 (peak), Jan 10: 110, Jan 31: 119 (never recovered: Jan 8 -> Jan 31 = 23 days)
    equity = make_equity(
        [
            (utc("2024-01-02", "21:00"), 90.0, -1.0),
            (utc("2024-01-04", "21:00"), 100.0, 0.0),
            (utc("2024-01-08", "21:00"), 120.0, 2.0),
            (utc("2024-01-10", "21:00"), 110.0, 1.0),
            (utc("2024-01-31", "21:00"), 119.0, 1.9),
        ]
    )
    m = compute_metrics(pd.DataFrame(), equity, pd.DataFrame(), **{**PARAMS, "initial_capital": 100.0})
    assert m["max_drawdown_duration_days"] == 23
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)  # 90 / 100 - 1 beats 110 / 120 - 1 = -8.33 %
    assert m["max_drawdown_r"] == pytest.approx(-1.0)  # 0 -> -1 beats 2 -> 1


def test_cagr_and_calmar_over_four_years():
    # 2020-01-02 .. 2024-01-02 is 366 + 3 * 365 = 1461 days = 4 * 365.25: exactly 4 years.
    # 10000 -> 14641 = 1.1 ** 4: CAGR 10 %; worst drawdown 9500 / 10000 - 1 = -5 %: calmar 10 / 5 = 2
    trades = make_trades(
        [
            {
                "entry_time": utc("2024-01-02", "15:00"),
                "r_multiple": 46.41,
                "side": "long",
                "exit_reason": "target",
                "holding_minutes": 60.0,
            }
        ]
    )
    equity = make_equity(
        [(utc("2020-01-02", "21:00"), 9_500.0, -5.0), (utc("2024-01-02", "21:00"), 14_641.0, 41.41)]
    )
    sessions = make_sessions([("2020-01-02", "traded"), ("2024-01-02", "traded")])
    m = compute_metrics(trades, equity, sessions, **PARAMS)
    assert m["final_equity"] == pytest.approx(14_641.0)
    assert m["cagr_pct"] == pytest.approx(10.0)
    assert m["calmar"] == pytest.approx(2.0)


def test_cagr_beyond_the_float_range_is_none():
    # 1e304 times the capital from 2023-01-03 to 2023-12-29 (360 days), compounded evenly over the
    # weekdays: growth ** (365.25 / 360) = 10 ** 308.4 is above the largest float (1.8e308)
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2023-01-03", "2023-12-29")]
    steps = np.linspace(0.0, 304.0, len(days))
    equity = make_equity(
        [
            (utc(d, "21:00"), CAPITAL * 10.0**k, float(i))
            for i, (d, k) in enumerate(zip(days, steps, strict=True))
        ]
    )
    final = float(equity["equity"].iloc[-1])
    trades = make_trades(
        [
            {
                "entry_time": utc(days[-1], "15:00"),
                "r_multiple": 1.0,
                "side": "long",
                "exit_reason": "close",
                "holding_minutes": 60.0,
            }
        ]
    ).assign(net_pnl=final - CAPITAL)
    m = compute_metrics(trades, equity, make_sessions([(d, "traded") for d in days]), **PARAMS)
    assert m["cagr_pct"] is None and m["calmar"] is None
    assert m["total_return_pct"] == pytest.approx(1e306)
    assert_strict_json(m)


def test_no_trades_gives_zero_counts_and_none_ratios():
    equity = make_equity([(utc(d, "21:00"), CAPITAL, 0.0) for d in DAYS[:3]])
    sessions = make_sessions([(DAYS[0], "no_signal"), (DAYS[1], "skipped"), (DAYS[2], "no_signal")])
    m = compute_metrics(
        pd.DataFrame(
            columns=["r_multiple", "net_pnl", "side", "exit_reason", "holding_minutes", "entry_time"]
        ),
        equity,
        sessions,
        **PARAMS,
    )
    for key in (
        "total_trades",
        "winning_trades",
        "losing_trades",
        "max_consecutive_wins",
        "max_consecutive_losses",
        "long_trades",
        "short_trades",
        "sessions_traded",
    ):
        assert m[key] == 0, key
    for key in (
        "win_rate",
        "avg_r",
        "median_r",
        "profit_factor",
        "expectancy_r",
        "sqn",
        "avg_winner_r",
        "avg_loser_r",
        "largest_winner_r",
        "largest_loser_r",
        "sharpe",
        "sortino",
        "calmar",
        "avg_holding_minutes",
        "long_win_rate",
        "short_win_rate",
    ):
        assert m[key] is None, key
    assert m["total_r"] == 0.0 and m["net_pnl"] == 0.0 and m["final_equity"] == CAPITAL
    assert m["max_drawdown_r"] == 0.0 and m["max_drawdown_pct"] == 0.0
    assert m["max_drawdown_duration_days"] == 0
    assert m["exposure_pct"] == 0.0  # 0 minutes over 2 sessions not skipped
    assert m["cagr_pct"] == 0.0  # flat over 2 days
    assert m["sessions"] == 3 and m["sessions_skipped"] == 1
    assert m["exit_reasons"] == {}
    assert_strict_json(m)


def test_empty_everything():
    m = compute_metrics(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), **PARAMS)
    assert tuple(m) == METRIC_KEYS
    assert m["sessions"] == 0 and m["exposure_pct"] is None and m["cagr_pct"] is None
    assert_strict_json(m)


def test_all_winners_have_no_profit_factor():
    rows = [
        {
            "entry_time": utc(DAYS[i], "15:00"),
            "r_multiple": r,
            "side": "long",
            "exit_reason": "target",
            "holding_minutes": 30.0,
        }
        for i, r in enumerate([1.0, 2.0, 0.5])
    ]
    m = compute_metrics(make_trades(rows), pd.DataFrame(), pd.DataFrame(), **PARAMS)
    assert m["profit_factor"] is None
    assert m["losing_trades"] == 0 and m["avg_loser_r"] is None and m["largest_loser_r"] is None
    assert m["max_consecutive_wins"] == 3 and m["max_consecutive_losses"] == 0
    assert m["win_rate"] == 1.0 and m["short_win_rate"] is None
    assert_strict_json(m)


def test_zero_variance_gives_no_sqn():
    rows = [
        {
            "entry_time": utc(DAYS[i], "15:00"),
            "r_multiple": 1.0,
            "side": "long",
            "exit_reason": "target",
            "holding_minutes": 30.0,
        }
        for i in range(3)
    ]
    m = compute_metrics(make_trades(rows), pd.DataFrame(), pd.DataFrame(), **PARAMS)
    assert m["sqn"] is None  # std of [1, 1, 1] is 0


def test_constant_daily_returns_give_no_sharpe():
    # closes 110, 121, 133.1 from 100: every return is 0.1 up to float rounding (std ~1e-17, not 0)
    days = DAYS[:3]
    equity = make_equity(
        [(utc(d, "21:00"), v, 0.0) for d, v in zip(days, [110.0, 121.0, 133.1], strict=True)]
    )
    m = compute_metrics(
        pd.DataFrame(),
        equity,
        make_sessions([(d, "traded") for d in days]),
        **{**PARAMS, "initial_capital": 100.0},
    )
    assert m["sharpe"] is None
    assert m["sortino"] is None  # no day below the risk-free rate


def test_one_trade():
    rows = [
        {
            "entry_time": utc(DAYS[0], "15:00"),
            "r_multiple": -0.5,
            "side": "short",
            "exit_reason": "stop",
            "holding_minutes": 12.0,
        }
    ]
    equity = make_equity([(utc(DAYS[0], "21:00"), 9_950.0, -0.5)])
    m = compute_metrics(make_trades(rows), equity, make_sessions([(DAYS[0], "traded")]), **PARAMS)
    assert m["total_trades"] == 1 and m["losing_trades"] == 1 and m["win_rate"] == 0.0
    assert m["median_r"] == -0.5 and m["largest_loser_r"] == -0.5 and m["largest_winner_r"] is None
    assert m["sqn"] is None  # n < 2
    assert m["profit_factor"] == 0.0  # 0 $ of profit over 50 $ of loss
    assert m["sharpe"] is None and m["sortino"] is None  # a single day
    assert m["cagr_pct"] is None  # a single session day spans 0 days
    assert m["max_drawdown_pct"] == pytest.approx(-0.5) and m["max_drawdown_r"] == pytest.approx(-0.5)
    assert m["exposure_pct"] == pytest.approx(12 / 390 * 100)
    assert_strict_json(m)


def test_zero_r_is_neither_win_nor_loss_and_breaks_streaks():
    rows = [
        {
            "entry_time": pd.Timestamp("2024-01-02 15:00", tz="UTC") + pd.Timedelta(days=i),
            "r_multiple": r,
            "side": "long",
            "exit_reason": "eod",
            "holding_minutes": 30.0,
        }
        for i, r in enumerate([1.0, 0.0, 1.0, -1.0, 0.0, -1.0])
    ]
    m = compute_metrics(make_trades(rows), pd.DataFrame(), pd.DataFrame(), **PARAMS)
    assert (m["winning_trades"], m["losing_trades"]) == (2, 2)
    assert m["win_rate"] == pytest.approx(2 / 6)
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (1, 1)


def test_trade_order_is_entry_time():
    # input order L L W W W; entry order W L W L W -> longest runs 1 and 1
    times = [
        utc(DAYS[1], "15:00"),
        utc(DAYS[3], "15:00"),
        utc(DAYS[0], "15:00"),
        utc(DAYS[2], "15:00"),
        utc(DAYS[4], "15:00"),
    ]
    rows = [
        {"entry_time": t, "r_multiple": r, "side": "long", "exit_reason": "eod", "holding_minutes": 1.0}
        for t, r in zip(times, [-1.0, -1.0, 1.0, 1.0, 1.0], strict=True)
    ]
    m = compute_metrics(make_trades(rows), pd.DataFrame(), pd.DataFrame(), **PARAMS)
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (1, 1)


def test_aggregate_keys_and_session_counts():
    # A: Jan 2 traded (+1 R), Jan 3 skipped, Jan 4 skipped.
    # B: Jan 2 no_signal, Jan 3 skipped, Jan 4 traded (-1 R twice), Jan 5 no_signal.
    # Distinct dates 4; traded by any: Jan 2, Jan 4; skipped by all: Jan 3 only.
    trades = make_trades(
        [
            {
                "entry_time": utc("2024-01-02", "15:00"),
                "r_multiple": 1.0,
                "side": "long",
                "exit_reason": "target",
                "holding_minutes": 60.0,
                "symbol": "A",
            },
            {
                "entry_time": utc("2024-01-04", "15:00"),
                "r_multiple": -1.0,
                "side": "short",
                "exit_reason": "stop",
                "holding_minutes": 30.0,
                "symbol": "B",
            },
            {
                "entry_time": utc("2024-01-04", "16:00"),
                "r_multiple": -1.0,
                "side": "short",
                "exit_reason": "stop",
                "holding_minutes": 66.0,
                "symbol": "B",
            },
        ]
    )
    sessions = make_sessions(
        [
            ("2024-01-02", "traded"),
            ("2024-01-03", "skipped"),
            ("2024-01-04", "skipped"),
            ("2024-01-02", "no_signal"),
            ("2024-01-03", "skipped"),
            ("2024-01-04", "traded"),
            ("2024-01-05", "no_signal"),
        ]
    )
    # combined equity of two 10000 $ symbols: 20100 after A's win, 20000 and 19900 after B's losses
    equity = make_equity(
        [
            (utc("2024-01-02", "21:00"), 20_100.0, 1.0),
            (utc("2024-01-04", "15:30"), 20_000.0, 0.0),
            (utc("2024-01-04", "21:00"), 19_900.0, -1.0),
        ]
    )
    m = compute_metrics(
        trades, equity, sessions, **{**PARAMS, "initial_capital": 20_000.0}, symbols=["A", "B"]
    )
    assert tuple(m) == METRIC_KEYS + AGGREGATE_EXTRA_KEYS
    assert m["symbols"] == ["A", "B"]
    assert m["avg_r_per_trade"] == pytest.approx(-1 / 3)
    assert (m["sessions"], m["sessions_traded"], m["sessions_skipped"]) == (4, 2, 1)
    # 156 minutes held over 4 symbol-sessions not skipped (A Jan 2, B Jan 2, Jan 4, Jan 5)
    assert m["exposure_pct"] == pytest.approx(156 / (4 * 390) * 100)
    assert m["max_drawdown_r"] == pytest.approx(-2.0)  # cum_r 1 -> -1
    assert m["max_drawdown_pct"] == pytest.approx((19_900 / 20_100 - 1) * 100)
    assert m["total_return_pct"] == pytest.approx(-0.5)  # -100 $ of 20000
    assert_strict_json(m)


def test_missing_column_is_one_clear_error():
    trades = make_trades(
        [{"entry_time": utc(DAYS[0], "15:00"), "r_multiple": 1.0, "side": "long", "holding_minutes": 5.0}]
    )
    with pytest.raises(ValueError, match="trades table lacks column.*exit_reason"):
        compute_metrics(trades, pd.DataFrame(), pd.DataFrame(), **PARAMS)


def test_drawdowns_helper_units_and_signs():
    pct, r = drawdowns([90.0, 100.0, 120.0, 110.0], [-1.0, 0.5, 2.0, 1.5], initial_equity=100.0)
    # equity peaks 100 (initial), 100, 120, 120 -> -10 %, 0, 0, 110 / 120 - 1 = -8.33 %
    np.testing.assert_allclose(pct, [-10.0, 0.0, 0.0, (110 / 120 - 1) * 100])
    # cum_r peaks from 0: 0, 0.5, 2, 2 -> -1, 0, 0, -0.5
    np.testing.assert_allclose(r, [-1.0, 0.0, 0.0, -0.5])
    pct_no_initial, _ = drawdowns([90.0, 100.0], [0.0, 0.0])
    np.testing.assert_allclose(pct_no_initial, [0.0, 0.0])  # the peak starts at the first row


def test_hundred_thousand_trades_is_fast():
    import time

    n = 100_000
    rng = np.random.default_rng(7)
    days = pd.bdate_range("2000-01-03", periods=n // 2)
    r = rng.normal(0.1, 1.0, n)
    trades = pd.DataFrame(
        {
            "entry_time": (days.repeat(2) + pd.Timedelta(hours=15)).tz_localize("UTC"),
            "r_multiple": r,
            "net_pnl": r * 100,
            "side": rng.choice(["long", "short"], n),
            "exit_reason": rng.choice(["stop", "target", "eod"], n),
            "holding_minutes": rng.uniform(1, 300, n),
        }
    )
    equity = make_equity(
        list(
            zip(
                trades["entry_time"] + pd.Timedelta(hours=1),
                CAPITAL * 10 + np.cumsum(r * 100),
                np.cumsum(r),
                strict=True,
            )
        )
    )
    sessions = pd.DataFrame({"session_date": days, "status": "traded"})
    start = time.perf_counter()
    m = compute_metrics(trades, equity, sessions, **PARAMS)
    assert time.perf_counter() - start < 2.0  # about 0.15 s on the dev machine; loose for shared CI
    assert m["total_trades"] == n


def brute_force_max_drawdown_r(rs: list[float]) -> float:
    peak, cum, worst = 0.0, 0.0, 0.0
    for x in rs:
        cum += x
        peak = max(peak, cum)
        worst = min(worst, cum - peak)
    return worst


def brute_force_longest(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


@settings(max_examples=examples(60), deadline=None)
@given(
    rs=st.lists(st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2)), max_size=40),
    sides=st.lists(st.sampled_from(["long", "short"]), min_size=40, max_size=40),
)
def test_properties(rs, sides):
    n = len(rs)
    times = pd.date_range("2024-01-02 15:00", periods=n, freq="D", tz="UTC")
    trades = make_trades(
        [
            {"entry_time": t, "r_multiple": r, "side": s, "exit_reason": "eod", "holding_minutes": 10.0}
            for t, r, s in zip(times, rs, sides[:n], strict=True)
        ]
    )
    cum = np.cumsum(rs)
    equity = make_equity(list(zip(times + pd.Timedelta(hours=5), CAPITAL + cum * 100, cum, strict=True)))
    sessions = pd.DataFrame({"session_date": times.tz_localize(None).normalize(), "status": "traded"})
    m = compute_metrics(trades, equity, sessions, **PARAMS)
    assert_strict_json(m)
    assert m["total_r"] == pytest.approx(math.fsum(rs), abs=1e-9)
    assert m["winning_trades"] + m["losing_trades"] <= m["total_trades"] == n
    assert m["win_rate"] is None if n == 0 else 0.0 <= m["win_rate"] <= 1.0
    assert m["max_drawdown_r"] <= 0.0 and m["max_drawdown_pct"] <= 0.0
    assert m["max_drawdown_r"] == pytest.approx(brute_force_max_drawdown_r(rs), abs=1e-9)
    assert m["max_consecutive_wins"] == brute_force_longest([r > 0 for r in rs])
    assert m["max_consecutive_losses"] == brute_force_longest([r < 0 for r in rs])
    assert m["long_trades"] + m["short_trades"] == n
