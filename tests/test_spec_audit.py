"""Spec audit of the single-symbol engine: hand-written candle tables for rules of strategy.md 1-9 (and
10.9.13, 11) that tests/test_engine_scenarios.py does not pin exactly. Every expected value is derived by
hand from strategy.md (the section is cited); the helpers and the standard rows come from
test_engine_scenarios (BASE: 2-minute OR high 101 / low 100 on 1m bars, confluence off, `or_opposite`
stops, no costs unless overridden; a long at 101 risks 1.00 per share and buys 1000 shares).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from candles import utc
from test_engine_scenarios import (
    CAPITAL,
    E_LONG,
    OR_ROWS,
    QUIET_TAIL,
    Scenario,
    T,
    approx,
    check,
    config,
    day,
    run,
)

from orb.metrics import symbol_metrics

COMMISSION = {"costs.commission_per_share": 0.0035}

# fmt: off


def test_s7_cum_r_moves_at_a_trades_last_fill() -> None:
    """7: `cum_r` = running sum of `r_multiple` (a per-trade value, so it moves when the trade is complete;
    10.9.7 says so for the account, and 10.9.13 defines `drawdown_r` alike in single-symbol runs).
    Equity itself realizes per fill (7, 10.9.7): the entry books minus its commission."""
    result = run(
        COMMISSION,
        day(
            *OR_ROWS,
            E_LONG,  # 09:32 long 1000 at 101.0 (stop 100, T1 102 for 500); commission 3.5
            ("09:33", 101.2, 102.1, 101.1, 101.9, 1000),  # T1 102.0 for 500: +500 - 1.75
            ("09:34", 101.6, 101.8, 101.2, 101.5, 1000),  # last bar, low > breakeven 101: eod 500 at 101.5
        ),
    )
    # gross 500 + 250 = 750, commission 0.0035 * 2000 = 7.0, net 743, initial risk 1000: R 0.743
    (trade,) = result.trades.itertuples(index=False)
    assert trade.r_multiple == approx(0.743)
    eq = result.equity
    assert list(eq["timestamp"].map(pd.Timestamp)) == [
        utc("2024-03-05", "09:32"),
        utc("2024-03-05", "09:33"),
        utc("2024-03-05", "09:34"),
        utc("2024-03-05", "16:00"),  # 10.9.13: session-close row at the calendar close
    ]
    assert list(eq["equity"]) == [approx(99_996.5), approx(100_494.75), approx(100_743.0), approx(100_743.0)]
    assert list(eq["cum_r"]) == [0.0, 0.0, trade.r_multiple, trade.r_multiple]
    assert list(eq["drawdown_r"]) == [0.0, 0.0, 0.0, 0.0]  # cum_r never falls below its running max


def test_s7_drawdown_r_has_no_dip_inside_a_trade() -> None:
    """7 / 10.9.13 with `trade.same_bar: ohlc_path`: T1 then the original stop on one bar (9.6: the T1
    bar keeps the original stop). cum_r jumps from 0 to the trade's R at its last fill, so the only
    drawdown is the trade's own R (no intermediate +0.5 peak)."""
    result = run(
        {"trade.same_bar": "ohlc_path"},
        day(
            *OR_ROWS,
            E_LONG,  # 09:32 long 1000 at 101.0
            ("09:33", 101.5, 102.2, 99.9, 100.2, 1000),  # down bar O-H-L-C: T1 102 (500), stop 100 (500)
            ("09:34", 100.2, 100.4, 100.1, 100.3, 1000),  # last bar
        ),
    )
    # gross +500 - 500 = 0: R 0.0; the stop after a partial is not a full-stop loss
    (trade,) = result.trades.itertuples(index=False)
    assert (trade.exit_reason, bool(trade.t1_filled), trade.r_multiple) == ("stop", True, 0.0)
    assert list(result.equity["cum_r"]) == [0.0, 0.0, 0.0, 0.0]
    assert result.equity["drawdown_r"].min() == 0.0


def test_s10_9_13_session_close_row_on_an_early_close() -> None:
    """10.9.13: the session-close equity row is stamped with the calendar close (13:00 on 2024-11-29)."""
    result = run({}, day(*OR_ROWS, ("09:32", 100.5, 100.7, 100.3, 100.6, 1000), date="2024-11-29"))
    assert list(result.equity["timestamp"].map(pd.Timestamp)) == [utc("2024-11-29", "13:00")]
    assert list(result.equity["equity"]) == [CAPITAL]


def test_s5_4_targets_fill_at_their_price_when_the_bar_opens_beyond_them() -> None:
    """5.4: each pending target touched fills at its target price (a limit), even when the bar opens
    beyond it; several on one bar in order (9.6). Slippage does not apply to targets (3)."""
    check(
        Scenario(
            "s5_4_gap_beyond_t1_t2",
            day(
                *OR_ROWS,
                E_LONG,  # long 1000 at 101.0 + 0.01 slippage = 101.01; R 1.01; T1 102.02, T2 102.525
                ("09:33", 102.7, 102.8, 102.6, 102.7, 1000),  # above T1, T2: 495 at 102.02, 247 at 102.525
                ("09:34", 102.6, 102.7, 102.5, 102.6, 1000),  # last bar: 248 at 102.6 - 0.01 (eod)
            ),
            [
                T(
                    "long", "09:32", 101.01, "09:34", 102.59, "eod", 990, t1=True, t2=True,
                    # shares floor(1000 / 1.01) = 990: T1 floor(495) = 495, T2 floor(247.5) = 247, rest 248
                    fills=(
                        ("entry", "09:32", 101.01, 990),
                        ("t1", "09:33", 102.02, 495),
                        ("t2", "09:33", 102.525, 247),
                        ("eod", "09:34", 102.59, 248),
                    ),
                    extra={"gross_pnl": 495 * 1.01 + 247 * 1.515 + 248 * 1.58},
                )
            ],
            overrides={"costs.slippage_per_share": 0.01},
        )
    )


def test_s3_shares_below_one_is_invalid_risk() -> None:
    """3: `shares < 1` means no trade (event `invalid_risk`): capital 50, 1% risk over R 1.00 = 0.5."""
    check(
        Scenario(
            "s3_shares_below_one",
            day(*OR_ROWS, E_LONG, *QUIET_TAIL),  # 09:32 long touched; 09:33 above upper: no re-arm
            [],
            events=[("09:32", "long", "invalid_risk")],
            overrides={"risk.initial_capital": 50.0},
        )
    )


def test_s5_leg_sizes_are_floored_runner_takes_the_rest() -> None:
    """5: leg sizes `floor(shares * pct)`, the runner takes the rest; several targets fill on one bar (9.6).
    Capital 99,900: shares floor(999 / 1.00) = 999; T1 floor(499.5) = 499, T2 floor(249.75) = 249,
    runner 251."""
    check(
        Scenario(
            "s5_leg_floor",
            day(
                *OR_ROWS,
                E_LONG,  # long 999 at 101.0
                ("09:33", 101.5, 104.2, 101.4, 104.0, 1000),  # T1 102, T2 102.5, runner 104 all touched
                ("09:34", 104.0, 104.1, 103.9, 104.0, 1000),  # last bar (flat)
            ),
            [
                T(
                    "long", "09:32", 101.0, "09:33", 104.0, "target", 999, t1=True, t2=True,
                    fills=(
                        ("entry", "09:32", 101.0, 999),
                        ("t1", "09:33", 102.0, 499),
                        ("t2", "09:33", 102.5, 249),
                        ("target", "09:33", 104.0, 251),
                    ),
                    extra={"gross_pnl": 499 * 1.0 + 249 * 1.5 + 251 * 3.0, "r_multiple": 1625.5 / 999},
                )
            ],
            overrides={"risk.initial_capital": 99_900.0},
        )
    )


def test_s9_14_close_mode_exit_bar_is_not_a_signal_bar() -> None:
    """3 / 9.14: the signal bar must start flat, so a close beyond the level on the bar where the position
    exits is no signal; arming then needs a close back inside (9.4). Lockout off to allow a second trade."""
    check(
        Scenario(
            "s9_14_exit_bar_no_signal",
            day(
                *OR_ROWS,  # last OR close 100.5: long armed
                ("09:32", 100.6, 101.2, 100.5, 101.1, 1000),  # close 101.1 > 101: signal, fill at next open
                ("09:33", 101.1, 101.3, 100.5, 100.9, 1000),  # entry 101.1 (R 1.1, 909 shares); close inside
                ("09:34", 100.8, 101.3, 99.9, 101.2, 1000),  # stop 100; close 101.2 > 101 but not flat
                ("09:35", 101.2, 101.4, 101.1, 101.3, 1000),  # close(t-1) 101.2 > 101: long unarmed
                ("09:36", 101.3, 101.3, 100.8, 100.9, 1000),  # close back inside: armed again
                ("09:37", 100.9, 101.4, 100.9, 101.3, 1000),  # signal: fill at 09:38 open
                ("09:38", 101.4, 101.6, 101.3, 101.5, 1000),  # entry 101.4, R 1.4
                ("09:39", 101.5, 101.7, 101.4, 101.6, 1000),  # last bar: eod at 101.6
            ),
            [
                T("long", "09:33", 101.1, "09:34", 100.0, "stop", 909),
                # equity 100,000 - 909 * 1.1 = 99,000.1; floor(990.001 / 1.4) = 707
                T("long", "09:38", 101.4, "09:39", 101.6, "eod", 707),
            ],
            overrides={"entry.mode": "close", "governance.lockout_after_losses": 0},
        )
    )


def test_s7_sharpe_and_sortino_use_daily_session_close_returns() -> None:
    """7: daily returns of the equity at session close; a session without trades returns 0; the first
    return is against the initial capital. Sharpe = mean / std(ddof=1) * sqrt(252) (rf 0); Sortino
    with the root mean square of the negative returns (orb/metrics.py; strategy.md does not name the
    downside deviation or the ddof)."""
    sessions = [
        ("2024-03-04", [*OR_ROWS, E_LONG, *QUIET_TAIL]),  # long 1000 at 101, eod 101.3: +300
        ("2024-03-05", [*OR_ROWS, ("09:32", 100.5, 100.7, 100.3, 100.6, 1000)]),  # no trade: return 0
        (
            "2024-03-06",
            [
                *OR_ROWS,
                E_LONG,  # long floor(1003 / 1.00) = 1003 at 101
                ("09:33", 100.8, 100.9, 99.9, 100.0, 1000),  # stop 100: -1003
                ("09:34", 100.0, 100.2, 99.9, 100.1, 1000),
            ],
        ),
    ]
    result = run({}, sessions)
    assert list(result.trades["net_pnl"]) == [approx(300.0), approx(-1003.0)]
    returns = np.array([300 / 100_000, 0.0, -1003 / 100_300])
    metrics = symbol_metrics(result, config({}))
    expected_sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    expected_sortino = returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * math.sqrt(252)
    assert metrics["sharpe"] == approx(expected_sharpe)
    assert metrics["sortino"] == approx(expected_sortino)
    assert metrics["final_equity"] == approx(99_297.0)


def _validated(rows_in_order) -> pd.Series:
    """The sessions-table row of one session whose raw rows are given in file order, `orb.validate` on."""
    from candles import bars

    from orb.engine import EventLoopBacktest

    result = EventLoopBacktest(config({"orb.validate": True}), symbol="TEST").run(
        bars(day(*rows_in_order), sort=False)
    )
    return result.sessions.iloc[-1]


def test_s10_9_14_missing_bar_comes_before_duplicate_timestamp() -> None:
    """10.9.14: "The OR validation reasons, in this order: `missing_bar` (an expected bar absent, or an
    empty window), `duplicate_timestamp`, ...": a window with its 09:30 bar twice and no 09:31 bar."""
    row = _validated([OR_ROWS[0], OR_ROWS[0], E_LONG, *QUIET_TAIL])
    assert (row["status"], row["skip_reason"]) == ("skipped", "missing_bar")


def test_s2_duplicate_outside_the_or_window_does_not_skip() -> None:
    """2: "a session is skipped when its OR window lacks any expected bar, has a duplicate or
    non-monotonic timestamp, ...": a repeated 09:33 bar (after the OR) leaves the window valid, so the
    session trades (long at 101, eod 09:34 at 101.3)."""
    row = _validated([*OR_ROWS, E_LONG, QUIET_TAIL[0], QUIET_TAIL[0], QUIET_TAIL[1]])
    assert (row["status"], row["trades"]) == ("traded", 1)


def test_s2_out_of_order_stamp_inside_the_or_window_skips() -> None:
    """2 / 10.9.14: the 09:31 OR bar stored after the 09:32 bar is a non-monotonic timestamp in the window."""
    row = _validated([OR_ROWS[0], E_LONG, OR_ROWS[1], *QUIET_TAIL])
    assert (row["status"], row["skip_reason"]) == ("skipped", "duplicate_timestamp")


def test_s3_the_last_bar_is_never_an_opportunity_even_past_the_cutoff() -> None:
    """Section 3 bars the session's last bar from opening a position, a rule with no event name. The
    engine reads it like "starts flat" and "the OR is final": a bar that cannot open a position at all
    is not an opportunity (9.12), so an armed touch on the last bar records nothing, past the cutoff
    or not. The other reading (9.12 lists `cutoff` first among the blocking reasons, so the touch
    would be a `cutoff` event) is not taken; this pins the one implemented."""
    check(
        Scenario(
            "s9_12_last_bar_past_cutoff",
            day(
                *OR_ROWS,
                ("09:32", 100.5, 100.7, 100.3, 100.6, 1000),  # quiet
                ("09:33", 100.6, 100.8, 100.4, 100.7, 1000),  # quiet, close 100.7 <= 101: long armed
                ("09:34", 100.7, 101.2, 100.6, 100.9, 1000),  # last bar, at the cutoff, long touched
            ),
            [],
            events=[],
            overrides={"entry.cutoff": "09:34"},
        )
    )
