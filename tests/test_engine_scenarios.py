"""Hand-written candle scenarios for EventLoopBacktest; every expected value is derived from strategy.md.

Unless a scenario overrides it, the config is small and cost-free (see BASE): 2-minute OR on 1m bars,
confluence off, no width filter, `or_opposite` stops, zero slippage and commission. The standard OR
(OR_ROWS) is high 101 / low 100, so with 100,000 equity and 1% risk a long at 101 risks 1.00 per share
and buys 1000 shares (T1 102 for 500, T2 102.5 for 250, runner 104 for 250); a short at 100 mirrors it
(stop 101, T1 99, T2 98.5, runner 97). Times in the tables are New York local bar-start times.
Scenario ids start with the strategy.md section they pin (s9_5 = section 9, item 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from candles import bars, sessions_from, utc, warmup

from orb.config import FACTOR_NAMES, load_config, with_overrides
from orb.engine import EventLoopBacktest
from orb.schema import EQUITY_COLUMNS, EVENT_COLUMNS, FILL_COLUMNS, SESSION_COLUMNS, TRADE_COLUMNS

D = "2024-03-05"  # a normal Tuesday (EST, UTC-5)
CAPITAL = 100_000.0
BASE = {
    "orb.base_minutes": 2,
    "confluence.enabled": False,
    "orb.min_width_atr": None,
    "orb.max_width_atr": None,
    "trade.stop_mode": "or_opposite",
    "costs.slippage_per_share": 0.0,
    "costs.commission_per_share": 0.0,
}
ANY = object()  # expected value: any non-empty string (the spec does not name it)

OR_ROWS = [
    ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # OR bar 1: OR high 101, OR low 100
    ("09:31", 100.5, 100.8, 100.2, 100.5, 1000),  # OR bar 2 (final at 09:32); close inside: both sides armed
]
E_LONG = ("09:32", 100.6, 101.2, 100.5, 101.1, 1000)  # crosses upper 101 from below: long fills at 101.0
E_SHORT = ("09:32", 100.4, 100.5, 99.8, 99.9, 1000)  # crosses lower 100 from above: short fills at 100.0
ATR_WARMUP = warmup(D, 15)  # 15 one-bar sessions of range 2 around 100: ATR(14) = 2.0 on D; prior H/L 101/99


def config(overrides: dict[str, Any]):
    return with_overrides(load_config(), {**BASE, **overrides})


def run(overrides: dict[str, Any], sessions, start=None):
    start_date = None if start is None else pd.Timestamp(start).date()
    return EventLoopBacktest(config(overrides), symbol="TEST").run(bars(sessions), start=start_date)


def ts(when: str, day: str) -> pd.Timestamp:
    """'HH:MM' on `day`, or 'YYYY-MM-DD HH:MM'."""
    return utc(*when.split(" ")) if " " in when else utc(day, when)


def approx(x: float):
    return pytest.approx(x, rel=1e-12, abs=1e-9)


@dataclass(frozen=True)
class T:
    """An expected trade; `extra` holds further trade columns to compare; `fills` the expected legs."""

    side: str
    entry: str
    entry_price: float
    exit: str
    exit_price: float
    reason: str
    shares: int
    t1: bool = False
    t2: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    fills: tuple = ()  # (kind, time, price, shares)


@dataclass(frozen=True)
class Scenario:
    id: str
    sessions: list
    trades: list[T]
    events: list[tuple] = field(default_factory=list)  # (time | None, side | None, reason); None = any
    overrides: dict[str, Any] = field(default_factory=dict)
    start: str | None = None
    session: dict[str, Any] = field(default_factory=dict)  # expected columns of the last session's row
    final_equity: float | None = None

    @property
    def day(self) -> str:
        return str(pd.Timestamp(self.sessions[-1][0]).date())


def day(*rows, date: str = D):
    return [(date, list(rows))]


def check_trades(result, expected: list[T], on: str) -> None:
    got = result.trades.sort_values("entry_time", kind="stable").reset_index(drop=True)
    cols = ["side", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "shares"]
    shown = got[cols].to_string() if len(got) else "(no trades)"
    assert len(got) == len(expected), f"expected {len(expected)} trades, got:\n{shown}"
    for i, exp in enumerate(expected):
        row = got.iloc[i]
        where = f"trade {i}:\n{shown}"
        assert row["side"] == exp.side, where
        assert pd.Timestamp(row["entry_time"]) == ts(exp.entry, on), where
        assert row["entry_price"] == approx(exp.entry_price), where
        assert pd.Timestamp(row["exit_time"]) == ts(exp.exit, on), where
        assert row["exit_price"] == approx(exp.exit_price), where
        assert row["exit_reason"] == exp.reason, where
        assert int(row["shares"]) == exp.shares, where
        assert bool(row["t1_filled"]) is exp.t1, where
        assert bool(row["t2_filled"]) is exp.t2, where
        for key, value in exp.extra.items():
            assert row[key] == approx(value), f"{key} of trade {i}: {row[key]!r} != {value!r}"
        if exp.fills:
            legs = result.fills[result.fills["trade_id"] == row["trade_id"]].sort_values(
                "time", kind="stable"
            )
            got_legs = [
                (k, pd.Timestamp(t), p, int(s))
                for k, t, p, s in legs[["kind", "time", "price", "shares"]].itertuples(index=False)
            ]
            assert len(got_legs) == len(exp.fills), f"fills of trade {i}: {got_legs}"
            for (kind, when, price, shares), (gk, gt, gp, gs) in zip(exp.fills, got_legs, strict=True):
                assert (gk, gt, gs) == (kind, ts(when, on), shares), f"fills of trade {i}: {got_legs}"
                assert gp == approx(price), f"fills of trade {i}: {got_legs}"


def check_events(result, expected: list[tuple], on: str) -> None:
    ev = result.events
    remaining = [
        (pd.Timestamp(t), s, r) for t, s, r in ev[["time", "side", "reason"]].itertuples(index=False)
    ]
    shown = ev[["time", "side", "reason", "detail"]].to_string() if len(ev) else "(no events)"
    for when, side, reason in expected:
        hits = [
            g
            for g in remaining
            if g[2] == reason and (when is None or g[0] == ts(when, on)) and (side is None or g[1] == side)
        ]
        assert hits, f"missing event {(when, side, reason)}; events:\n{shown}"
        if when is None or side is None:
            remaining = [g for g in remaining if g not in hits]
        else:
            remaining.remove(hits[0])
    assert not remaining, f"unexpected events {remaining}; events:\n{shown}"


def check_session(result, expected: dict[str, Any], on: str) -> None:
    rows = result.sessions
    dates = [pd.Timestamp(d).date() for d in rows["session_date"]]
    row = rows.iloc[dates.index(pd.Timestamp(on).date())]
    for key, value in expected.items():
        if value is ANY:
            assert isinstance(row[key], str) and row[key], f"{key}: {row[key]!r}"
        elif isinstance(value, float):
            assert row[key] == approx(value), f"{key}: {row[key]!r} != {value!r}"
        else:
            assert row[key] == value, f"{key}: {row[key]!r} != {value!r}"


def check(sc: Scenario) -> Any:
    result = run(sc.overrides, sc.sessions, sc.start)
    check_trades(result, sc.trades, sc.day)
    check_events(result, sc.events, sc.day)
    if sc.session:
        check_session(result, sc.session, sc.day)
    if sc.final_equity is not None:
        assert result.equity["equity"].iloc[-1] == approx(sc.final_equity)
    return result


def only_factor(name: str, **extra: Any) -> dict[str, Any]:
    """Confluence on with a single enabled factor of weight 1 and required score 1."""
    out: dict[str, Any] = {
        "confluence.enabled": True,
        "confluence.required": 1,
        "confluence.adx.enabled": False,
    }
    out |= {f"confluence.{f}.enabled": f == name for f in FACTOR_NAMES}
    return out | extra


QUIET_TAIL = [
    ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),  # inside no level
    ("09:34", 101.2, 101.4, 101.1, 101.3, 1000),  # session's last bar: eod at 101.3
]
LONG_EOD = T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000)
COSTS = {"costs.slippage_per_share": 0.01, "costs.commission_per_share": 0.0035}
NO_FACTORS = {"confluence.enabled": True} | {f"confluence.{f}.enabled": False for f in FACTOR_NAMES}

# fmt: off
# ------------------------------------------------------------------------------------------------ scenarios
SCENARIOS = [
    # ---- section 3: stop entries
    Scenario(
        "s3_stop_entry_fills_at_trigger_then_stop",
        day(*OR_ROWS,
            E_LONG,  # opens 100.6 under upper 101, high 101.2: long 101.0
            ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),   # opens above stop 100, low 99.9: stop at 100.0
            ("09:34", 100.2, 100.4, 100.1, 100.3, 1000)),  # last bar (short unarmed: 99.95 < 100)
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000,
           extra={"stop_price": 100.0, "r_per_share": 1.0, "t1_price": 102.0, "t2_price": 102.5,
                  "target_price": 104.0, "gross_pnl": -1000.0, "net_pnl": -1000.0, "commission": 0.0,
                  "initial_risk": 1000.0, "r_multiple": -1.0, "gross_r": -1.0, "or_high": 101.0,
                  "or_low": 100.0, "or_minutes": 2},
           fills=(("entry", "09:32", 101.0, 1000), ("stop", "09:33", 100.0, 1000)))],
        final_equity=CAPITAL - 1000.0,
    ),
    Scenario(
        "s3_stop_gap_through_long_fills_at_open",
        day(*OR_ROWS,
            ("09:32", 101.25, 101.5, 101.2, 101.4, 1000),  # opens above upper 101: long at the open 101.25
            ("09:33", 101.4, 101.6, 101.3, 101.5, 1000),   # R 1.25 -> 800 shares; T1 102.5 not reached
            ("09:34", 101.5, 101.7, 101.4, 101.6, 1000)),  # last bar: eod at 101.6
        [T("long", "09:32", 101.25, "09:34", 101.6, "eod", 800,
           extra={"r_multiple": 0.35 / 1.25, "t1_price": 102.5})],
    ),
    Scenario(
        "s3_stop_gap_through_short_fills_at_open",
        day(*OR_ROWS,
            ("09:32", 99.5, 99.8, 99.4, 99.6, 1000),       # opens below lower 100: short at the open 99.5
            ("09:33", 99.6, 99.7, 99.3, 99.4, 1000),       # R = 101 - 99.5 = 1.5 -> 666 shares; T1 98.0
            ("09:34", 99.4, 99.5, 99.2, 99.3, 1000)),      # last bar: eod at 99.3
        [T("short", "09:32", 99.5, "09:34", 99.3, "eod", 666, extra={"stop_price": 101.0, "t1_price": 98.0})],
    ),
    # ---- section 5: exits
    Scenario(
        "s5_gap_through_stop_exits_at_open",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 99.5, 99.7, 99.3, 99.6, 1000),       # opens below stop 100: all exit at the open 99.5
            ("09:34", 99.6, 99.8, 99.5, 99.7, 1000)),      # last bar; short unarmed (close 99.6 < 100)
        [T("long", "09:32", 101.0, "09:33", 99.5, "stop", 1000, extra={"r_multiple": -1.5})],
    ),
    Scenario(
        "s5_same_bar_stop_and_target_pessimistic_stop_first",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.2, 99.9, 101.0, 1000),    # touches stop 100 and T1 102: pessimistic -> stop
            ("09:34", 100.6, 100.7, 100.4, 100.5, 1000)),  # last bar, quiet
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000,
           fills=(("entry", "09:32", 101.0, 1000), ("stop", "09:33", 100.0, 1000)))],
    ),
    Scenario(
        "s5_same_bar_ohlc_path_up_bar_low_first_stop",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.2, 99.9, 101.5, 1000),    # close >= open: O->L->H->C, stop 100 comes first
            ("09:34", 101.5, 101.6, 101.4, 101.5, 1000)),  # last bar (long unarmed: close 101.5 > 101)
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000)],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s5_same_bar_ohlc_path_down_bar_high_first_t1_then_stop",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.5, 102.2, 99.9, 101.1, 1000),    # down bar O->H->L->C: T1 102, stop 100
            ("09:34", 100.6, 100.7, 100.4, 100.5, 1000)),  # last bar, quiet
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000, t1=True,
           extra={"gross_pnl": 0.0, "r_multiple": 0.0},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),
                  ("stop", "09:33", 100.0, 500)))],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s9_5_entry_bar_stop_fills_at_stop_price_not_open",
        day(*OR_ROWS,
            ("09:32", 99.5, 101.8, 99.4, 101.0, 1000),     # long 101.75; stop 100 at 100.0, not 99.5
            ("09:33", 101.0, 101.1, 100.9, 101.0, 1000),   # quiet (lower 99.25 never touched)
            ("09:34", 101.0, 101.1, 100.9, 101.0, 1000)),  # last bar
        [T("long", "09:32", 101.75, "09:32", 100.0, "stop", 571,
           extra={"stop_price": 100.0, "r_multiple": -1.0})],
        overrides={"entry.buffer_fixed": 0.75},
    ),
    Scenario(
        "s9_5_targets_not_filled_on_entry_bar",
        day(*OR_ROWS,
            ("09:32", 100.6, 102.6, 100.5, 102.4, 1000),   # long 101.0; T1/T2 touched: they wait
            ("09:33", 101.9, 101.95, 101.5, 101.6, 1000),  # below T1
            ("09:34", 101.6, 101.8, 101.5, 101.7, 1000)),  # last bar: eod at 101.7
        [T("long", "09:32", 101.0, "09:34", 101.7, "eod", 1000,
           fills=(("entry", "09:32", 101.0, 1000), ("eod", "09:34", 101.7, 1000)))],
    ),
    Scenario(
        "s9_6_t1_then_breakeven_from_next_bar",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),  # T1 102: 500 shares
            ("09:34", 102.0, 102.1, 100.9, 101.0, 1000),   # low <= breakeven 101: 500 exit at 101.0
            ("09:35", 100.95, 100.98, 100.8, 100.9, 1000)),  # last bar, quiet
        [T("long", "09:32", 101.0, "09:34", 101.0, "breakeven", 1000, t1=True,
           extra={"gross_pnl": 500.0, "r_multiple": 0.5, "stop_price": 100.0},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),
                  ("breakeven", "09:34", 101.0, 500)))],
    ),
    Scenario(
        "s5_breakeven_gap_exits_at_open",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),  # T1 102: 500 shares
            ("09:34", 100.8, 100.9, 100.6, 100.7, 1000),   # opens under breakeven 101: 500 at 100.8
            ("09:35", 100.7, 100.8, 100.6, 100.7, 1000)),  # last bar, quiet
        [T("long", "09:32", 101.0, "09:34", 100.8, "breakeven", 1000, t1=True, extra={"gross_pnl": 400.0})],
    ),
    Scenario(
        "s5_breakeven_buffer_moves_the_level",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0; breakeven 101 + 0.25 = 101.25
            ("09:33", 101.3, 102.1, 101.3, 102.0, 1000),   # T1 102: 500 shares
            ("09:34", 102.0, 102.1, 101.2, 101.3, 1000),   # low 101.2 <= 101.25: 500 exit at 101.25
            ("09:35", 101.3, 101.4, 101.2, 101.3, 1000)),  # last bar (long unarmed)
        [T("long", "09:32", 101.0, "09:34", 101.25, "breakeven", 1000, t1=True, extra={"gross_pnl": 625.0})],
        overrides={"trade.be_buffer": 0.25},
    ),
    Scenario(
        "s9_6_t1_bar_keeps_original_stop",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.1, 100.95, 102.0, 1000),  # T1; low < 101 but the stop is still 100
            ("09:34", 102.0, 102.05, 101.5, 101.6, 1000),  # above breakeven 101
            ("09:35", 101.6, 101.7, 101.4, 101.5, 1000)),  # last bar: 500 exit eod at 101.5
        [T("long", "09:32", 101.0, "09:35", 101.5, "eod", 1000, t1=True,
           extra={"gross_pnl": 750.0, "r_multiple": 0.75})],
    ),
    Scenario(
        "s9_6_several_targets_on_one_bar_in_order",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.2, 104.5, 101.1, 104.2, 1000),  # T1 102, T2 102.5, runner 104 all touched: in order
            ("09:34", 104.2, 104.3, 104.0, 104.1, 1000)),  # last bar (long unarmed)
        [T("long", "09:32", 101.0, "09:33", 104.0, "target", 1000, t1=True, t2=True,
           extra={"gross_pnl": 1625.0, "r_multiple": 1.625},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),
                  ("t2", "09:33", 102.5, 250), ("target", "09:33", 104.0, 250)))],
    ),
    Scenario(
        "s5_runner_target_after_t1_and_t2",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),  # T1 102
            ("09:34", 102.0, 102.6, 101.8, 102.5, 1000),   # T2 102.5 (breakeven 101 untouched)
            ("09:35", 102.5, 104.1, 102.4, 104.0, 1000),   # runner 104
            ("09:36", 104.0, 104.1, 103.9, 104.0, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:35", 104.0, "target", 1000, t1=True, t2=True,
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),
                  ("t2", "09:34", 102.5, 250), ("target", "09:35", 104.0, 250)))],
    ),
    Scenario(
        "s5_t2_pct_zero_disables_t2",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0: T1 500, runner 500
            ("09:33", 101.1, 102.6, 101.05, 102.5, 1000),  # T1 102 fills; 102.5 is no target now
            ("09:34", 102.5, 104.1, 102.4, 104.0, 1000),   # runner 104: 500
            ("09:35", 104.0, 104.1, 103.9, 104.0, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:34", 104.0, "target", 1000, t1=True,
           extra={"gross_pnl": 2000.0},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),
                  ("target", "09:34", 104.0, 500)))],
        overrides={"trade.t2_pct": 0.0},
    ),
    Scenario(
        "s9_6_short_t1_then_breakeven",
        day(*OR_ROWS,
            E_SHORT,  # short 100.0: stop 101, T1 99, breakeven 100 after T1
            ("09:33", 99.9, 99.95, 98.9, 99.0, 1000),      # T1 99: 500 shares
            ("09:34", 99.0, 100.1, 98.8, 100.0, 1000),     # high >= breakeven 100: 500 exit at 100.0
            ("09:35", 100.1, 100.2, 100.05, 100.1, 1000)),  # last bar, quiet
        [T("short", "09:32", 100.0, "09:34", 100.0, "breakeven", 1000, t1=True,
           extra={"gross_pnl": 500.0, "t1_price": 99.0, "t2_price": 98.5, "target_price": 97.0},
           fills=(("entry", "09:32", 100.0, 1000), ("t1", "09:33", 99.0, 500),
                  ("breakeven", "09:34", 100.0, 500)))],
    ),
    Scenario(
        "s9_8_zero_share_legs_skipped_breakeven_still_armed",
        day(*OR_ROWS,
            E_LONG,  # long 101.0: risk 1.0 / R 1 = 1 share; T1, T2 legs 0
            ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),  # reaches T1 102: no fill, breakeven armed
            ("09:34", 102.0, 102.05, 100.9, 101.0, 1000),  # breakeven 101: the share exits at 101.0
            ("09:35", 100.95, 100.98, 100.8, 100.9, 1000)),  # last bar, quiet
        [T("long", "09:32", 101.0, "09:34", 101.0, "breakeven", 1, extra={"gross_pnl": 0.0},
           fills=(("entry", "09:32", 101.0, 1), ("breakeven", "09:34", 101.0, 1)))],
        overrides={"risk.risk_per_trade": 0.00001},
    ),
    Scenario(
        "s5_single_target_when_partials_false",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0, target 2R = 103
            ("09:33", 101.1, 103.2, 101.0, 103.1, 1000),   # target 103: all 1000
            ("09:34", 103.1, 103.2, 103.0, 103.1, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 103.0, "target", 1000,
           extra={"r_multiple": 2.0, "target_price": 103.0},
           fills=(("entry", "09:32", 101.0, 1000), ("target", "09:33", 103.0, 1000)))],
        overrides={"trade.partials": False},
    ),
    Scenario(
        "s5_5_eod_normal_day_on_bar_before_close",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("15:58", 101.2, 101.3, 101.1, 101.2, 1000),
            ("15:59", 101.2, 101.5, 101.1, 101.4, 1000),   # bar stamped close - 1 min: eod at its close 101.4
            date="2024-07-10"),                            # summer (EDT, UTC-4)
        [T("long", "09:32", 101.0, "15:59", 101.4, "eod", 1000)],
    ),
    Scenario(
        "s5_5_eod_on_early_close_2024_11_29",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("12:59", 101.2, 101.5, 101.1, 101.3, 1000),   # 13:00 close: the last bar, eod at 101.3
            ("13:00", 101.3, 103.0, 101.3, 102.9, 1000),   # after the early close: ignored
            ("13:01", 102.9, 105.0, 102.8, 104.9, 1000),   # after the early close: ignored
            date="2024-11-29"),
        [T("long", "09:32", 101.0, "12:59", 101.3, "eod", 1000)],
    ),
    Scenario(
        "s5_5_flatten_time_exits_eod",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("09:34", 101.2, 101.4, 101.1, 101.3, 1000),   # flatten_time 09:34: eod at 101.3
            ("09:35", 101.3, 102.5, 101.2, 101.4, 1000),   # would fill T1 102 if still open (long unarmed)
            ("09:36", 101.4, 102.5, 101.3, 101.5, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000)],
        overrides={"trade.flatten_time": "09:34"},
    ),
    Scenario(
        "s1_five_minute_bars_eod_on_1555",
        day(("09:30", 100.5, 101.0, 100.0, 100.5, 5000),  # OR bar 1 (10-minute OR = two 5m bars)
            ("09:35", 100.5, 100.8, 100.2, 100.5, 5000),  # OR bar 2: OR 101 / 100
            ("09:40", 100.6, 101.2, 100.5, 101.1, 5000),  # long 101.0
            ("15:50", 101.1, 101.3, 101.0, 101.2, 5000),
            ("15:55", 101.2, 101.5, 101.1, 101.4, 5000)),  # bar stamped close - 5 min: eod 101.4
        [T("long", "09:40", 101.0, "15:55", 101.4, "eod", 1000, extra={"or_minutes": 10})],
        overrides={"data.interval": "5m", "orb.base_minutes": 10},
    ),
    Scenario(
        "s1_bars_outside_regular_hours_ignored",
        day(("09:00", 100.5, 105.0, 95.0, 100.5, 5000),   # pre-market: not part of the OR
            *OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("15:59", 101.2, 101.5, 101.1, 101.4, 1000),   # last regular bar: eod at 101.4
            ("16:00", 101.4, 110.0, 101.4, 109.0, 1000)),  # after hours: ignored
        [T("long", "09:32", 101.0, "15:59", 101.4, "eod", 1000, extra={"or_high": 101.0, "or_low": 100.0})],
    ),
    Scenario(
        "s9_7_stop_checked_before_eod_on_last_bar",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("09:34", 100.5, 100.6, 99.9, 100.3, 1000)),   # last bar: stop at 100.0, not eod at 100.3
        [T("long", "09:32", 101.0, "09:34", 100.0, "stop", 1000)],
    ),
    Scenario(
        "s9_7_target_before_eod_on_last_bar",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("09:34", 101.2, 102.2, 101.1, 101.8, 1000)),  # last bar: T1 102 (500) first, 500 eod at 101.8
        [T("long", "09:32", 101.0, "09:34", 101.8, "eod", 1000, t1=True, extra={"gross_pnl": 900.0},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:34", 102.0, 500),
                  ("eod", "09:34", 101.8, 500)))],
    ),
    Scenario(
        "s9_11_touching_trigger_and_target_fills",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.0, 100.5, 100.9, 1000),   # high == upper 101: long at 101.0
            ("09:33", 100.9, 102.0, 100.8, 101.9, 1000),   # high == T1 102: 500 at 102.0
            ("09:34", 101.9, 102.0, 101.8, 101.9, 1000)),  # last bar: eod 500 at 101.9
        [T("long", "09:32", 101.0, "09:34", 101.9, "eod", 1000, t1=True, extra={"gross_pnl": 950.0})],
    ),
    # ---- section 9.4: arming
    Scenario(
        "s9_4_ambiguous_bar_both_armed_sides_touched",
        day(*OR_ROWS,
            ("09:32", 100.5, 101.2, 99.8, 100.4, 1000),    # both armed, both touched: no trade, ambiguous_bar
            ("09:33", 100.4, 100.6, 100.3, 100.5, 1000),
            ("09:34", 100.5, 100.6, 100.4, 100.5, 1000)),  # last bar
        [],
        [("09:32", None, "ambiguous_bar")],
    ),
    Scenario(
        "s9_4_unarmed_touched_side_ignored",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 99.6, 99.7, 1000),  # short 100.0; stop 101 + 1 = 102, R 2: 500; target 96
            ("09:33", 99.7, 99.8, 95.9, 96.5, 1000),       # target 96; close 96.5 < lower: short unarmed next
            ("09:34", 99.5, 101.2, 99.4, 101.0, 1000),     # long 101.0; short touched (99.4) but unarmed
            ("09:35", 101.0, 101.3, 100.8, 101.2, 1000)),  # last bar: eod 101.2
        [T("short", "09:32", 100.0, "09:33", 96.0, "target", 500,
           extra={"r_multiple": 2.0, "stop_price": 102.0}),
         # stop 100 - 1 = 99, R 2; equity 102,000 -> 1020 / 2 = 510 shares
         T("long", "09:34", 101.0, "09:35", 101.2, "eod", 510, extra={"stop_price": 99.0})],
        overrides={"trade.stop_buffer": 1.0, "trade.partials": False},
    ),
    Scenario(
        "s9_4_same_side_reentry_needs_close_back_inside",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.1, 103.2, 101.0, 103.1, 1000),   # target 103; close 103.1 > upper: long unarmed
            ("09:34", 103.1, 103.5, 102.8, 103.0, 1000),   # touches upper, unarmed: ignored
            ("09:35", 103.0, 103.1, 100.9, 101.0, 1000),   # still unarmed; closes at upper 101.0: armed again
            ("09:36", 101.0, 101.3, 100.9, 101.2, 1000),   # long 101.0; equity 102,000 -> 1020 shares
            ("09:37", 101.2, 101.4, 101.1, 101.3, 1000)),  # last bar: eod 101.3
        [T("long", "09:32", 101.0, "09:33", 103.0, "target", 1000),
         T("long", "09:36", 101.0, "09:37", 101.3, "eod", 1020)],
        overrides={"trade.partials": False},
    ),
    Scenario(
        "s9_4_opposite_side_enters_on_bar_after_exit",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.0, 101.05, 99.95, 100.0, 1000),  # stop 100 (lower touched: not flat)
            ("09:34", 100.0, 100.1, 99.8, 99.9, 1000),     # short armed: short 100.0; equity 99,000 -> 990
            ("09:35", 99.9, 100.0, 99.7, 99.8, 1000)),     # last bar: eod 99.8
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000),
         T("short", "09:34", 100.0, "09:35", 99.8, "eod", 990, extra={"gross_pnl": 0.2 * 990})],
        overrides={"governance.lockout_after_losses": 0},
    ),
    # ---- section 3: cutoff and the session's last bar
    Scenario(
        "s3_cutoff_event_once_per_session_and_side",
        [(date, [*OR_ROWS,
                 ("09:32", 100.5, 100.7, 100.3, 100.6, 1000),   # quiet
                 ("09:33", 100.6, 100.8, 100.4, 100.7, 1000),   # quiet
                 ("09:34", 100.7, 101.2, 100.6, 100.9, 1000),   # armed, touched at the cutoff 09:34: cutoff
                 ("09:35", 100.9, 101.3, 100.8, 101.0, 1000),   # again: already recorded for (session, long)
                 ("09:36", 101.0, 101.1, 100.9, 101.0, 1000)])  # last bar
         for date in ("2024-03-05", "2024-03-06")],
        [],
        [("2024-03-05 09:34", "long", "cutoff"), ("2024-03-06 09:34", "long", "cutoff")],
        overrides={"entry.cutoff": "09:34"},
    ),
    Scenario(
        "s3_entry_on_bar_before_cutoff",
        day(*OR_ROWS, E_LONG, *QUIET_TAIL),                # 09:32 < cutoff 09:33: long
        [LONG_EOD],
        overrides={"entry.cutoff": "09:33"},
    ),
    Scenario(
        "s3_no_entry_on_session_last_bar",
        day(*OR_ROWS,
            ("09:32", 100.5, 100.7, 100.3, 100.6, 1000),   # quiet
            ("09:33", 100.6, 101.2, 100.5, 101.1, 1000)),  # last bar: armed and touched, but no entry
        [],
    ),
    # ---- section 1 + 6: governance resets at each session open
    Scenario(
        "s1_lockout_and_counts_reset_next_session",
        [("2024-03-05", [*OR_ROWS,
                         E_LONG,                                        # long 101.0
                         ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # full stop 100 -> lockout
                         ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # armed, touched: lockout_losses
                         ("09:35", 101.1, 101.2, 101.0, 101.1, 1000)]),  # last bar
         ("2024-03-06", [*OR_ROWS, E_LONG, *QUIET_TAIL])],             # new session: long 101.0, 990 shares
        [T("long", "2024-03-05 09:32", 101.0, "2024-03-05 09:33", 100.0, "stop", 1000),
         T("long", "2024-03-06 09:32", 101.0, "2024-03-06 09:34", 101.3, "eod", 990)],
        [("2024-03-05 09:34", "long", "lockout_losses")],
    ),
    # ---- section 6: governance
    Scenario(
        "s6_signal_cap_event_once",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0 (entry 1 of 1)
            ("09:33", 101.1, 103.2, 100.9, 100.95, 1000),  # target 103; closes back inside
            ("09:34", 100.95, 101.3, 100.9, 101.2, 1000),  # armed, touched: signal_cap
            ("09:35", 101.2, 101.3, 100.8, 100.9, 1000),   # unarmed touch: ignored
            ("09:36", 100.9, 101.4, 100.85, 101.1, 1000),  # armed, touched: signal_cap already recorded
            ("09:37", 101.1, 101.2, 101.0, 101.1, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 103.0, "target", 1000)],
        [("09:34", "long", "signal_cap")],
        overrides={"governance.max_signals_per_day": 1, "trade.partials": False},
    ),
]

LOSS_THEN_TOUCHES = day(
    *OR_ROWS,
    E_LONG,                                        # long 101.0
    ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # full stop at 100; closes inside
    ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # long armed and touched
    ("09:35", 101.1, 101.15, 99.8, 99.9, 1000),    # short armed (101.1 >= 100) and touched; long unarmed
    ("09:36", 99.9, 100.0, 99.8, 99.9, 1000),      # last bar
)
FIRST_LOSS = T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000)

SCENARIOS += [
    Scenario(
        "s6_lockout_after_one_full_stop_loss",
        LOSS_THEN_TOUCHES,
        [FIRST_LOSS],
        [("09:34", "long", "lockout_losses"), ("09:35", "short", "lockout_losses")],
    ),
    Scenario(
        "s9_9_lockout_after_losses_zero_disables",
        LOSS_THEN_TOUCHES,
        # equity 99,000 -> 990 shares; 09:35 opens 101.1, low 99.8: stop 100
        [FIRST_LOSS, T("long", "09:34", 101.0, "09:35", 100.0, "stop", 990)],
        overrides={"governance.lockout_after_losses": 0},
    ),
    Scenario(
        "s9_12_signal_cap_before_lockout_losses",
        LOSS_THEN_TOUCHES,
        [FIRST_LOSS],
        [("09:34", "long", "signal_cap"), ("09:35", "short", "signal_cap")],
        overrides={"governance.max_signals_per_day": 1, "governance.max_daily_loss_r": 1.0},
    ),
    Scenario(
        "s9_12_lockout_losses_before_lockout_daily_r",
        LOSS_THEN_TOUCHES,
        [FIRST_LOSS],
        [("09:34", "long", "lockout_losses"), ("09:35", "short", "lockout_losses")],
        overrides={"governance.max_daily_loss_r": 1.0},
    ),
    Scenario(
        "s9_12_cutoff_before_every_other_reason",
        LOSS_THEN_TOUCHES,
        [FIRST_LOSS],
        [("09:34", "long", "cutoff"), ("09:35", "short", "cutoff")],
        overrides={"entry.cutoff": "09:34", "governance.max_signals_per_day": 1,
                   "governance.max_daily_loss_r": 1.0},
    ),
    Scenario(
        "s9_9_lockout_count_reset_by_winner",
        day(*OR_ROWS,
            E_LONG,                                        # 1: long 101.0, 1000 shares
            ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # 1: full stop -> count 1; equity 99,000
            ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # 2: long 101.0, 990 shares
            ("09:35", 101.2, 103.1, 100.85, 100.9, 1000),  # 2: target 103, +1980 -> count 0; equity 100,980
            ("09:36", 100.9, 101.1, 100.85, 101.0, 1000),  # 3: long 101.0, 1009 shares
            ("09:37", 101.0, 101.05, 99.9, 100.5, 1000),   # 3: full stop -> count 1 (2 without the reset)
            ("09:38", 100.5, 101.2, 100.4, 101.1, 1000),   # 4: long 101.0, equity 99,971 -> 999 shares
            ("09:39", 101.1, 101.3, 101.0, 101.2, 1000)),  # last bar: eod 101.2
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000),
         T("long", "09:34", 101.0, "09:35", 103.0, "target", 990),
         T("long", "09:36", 101.0, "09:37", 100.0, "stop", 1009),
         T("long", "09:38", 101.0, "09:39", 101.2, "eod", 999)],
        overrides={"governance.lockout_after_losses": 2, "governance.max_signals_per_day": 5,
                   "governance.max_daily_loss_r": None, "trade.partials": False},
    ),
    Scenario(
        "s9_9_breakeven_exit_with_loss_leaves_count_unchanged",
        day(*OR_ROWS,
            E_LONG,                                        # 1: long 101.0
            ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # 1: full stop -> count 1; equity 99,000
            ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # 2: long 101.0, 990 shares
            ("09:35", 101.1, 102.1, 101.05, 102.0, 1000),  # 2: T1 102 (495)
            ("09:36", 99.0, 99.2, 98.9, 99.1, 1000),  # 2: gap under breakeven 101: 495 at 99.0, net -0.5 R
            ("09:37", 99.1, 100.6, 99.05, 100.5, 1000),    # back inside (short unarmed, long untouched)
            ("09:38", 100.5, 101.2, 100.4, 101.1, 1000),   # 3: allowed (count 1 < 2); equity 98,505 -> 985
            ("09:39", 101.1, 101.15, 99.9, 100.5, 1000),   # 3: full stop -> count 2: locked out
            ("09:40", 100.5, 101.2, 100.4, 101.1, 1000),   # armed, touched: lockout_losses
            ("09:41", 101.1, 101.2, 101.0, 101.1, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000),
         T("long", "09:34", 101.0, "09:36", 99.0, "breakeven", 990, t1=True,
           extra={"gross_pnl": -495.0, "r_multiple": -0.5}),
         T("long", "09:38", 101.0, "09:39", 100.0, "stop", 985)],
        [("09:40", "long", "lockout_losses")],
        overrides={"governance.lockout_after_losses": 2, "governance.max_signals_per_day": 5,
                   "governance.max_daily_loss_r": None},
    ),
]

TWO_LOSSES_THEN_TOUCH = day(
    *OR_ROWS,
    E_LONG,                                        # 1: long 101.0, 1000 shares
    ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # 1: stop 100, -1.0 R
    ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # 2: long 101.0, 990 shares
    ("09:35", 101.1, 101.15, 99.95, 100.5, 1000),  # 2: stop 100, -1.0 R: day R = -2.0
    ("09:36", 100.5, 101.2, 100.4, 101.1, 1000),   # long armed and touched
    ("09:37", 101.1, 101.2, 101.0, 101.1, 1000),   # last bar: eod 101.1
)
TWO_LOSSES = [FIRST_LOSS, T("long", "09:34", 101.0, "09:35", 100.0, "stop", 990)]
NO_LOCKOUT = {"governance.lockout_after_losses": 0, "governance.max_signals_per_day": 5}
SCENARIOS += [
    Scenario(
        "s9_9_daily_loss_lockout_at_equality",
        TWO_LOSSES_THEN_TOUCH,
        TWO_LOSSES,
        [("09:36", "long", "lockout_daily_r")],
        overrides=NO_LOCKOUT | {"governance.max_daily_loss_r": 2.0},
    ),
    Scenario(
        "s6_daily_loss_null_disables",
        TWO_LOSSES_THEN_TOUCH,
        # equity 99,000 - 990 = 98,010 -> 980 shares
        [*TWO_LOSSES, T("long", "09:36", 101.0, "09:37", 101.1, "eod", 980)],
        overrides=NO_LOCKOUT | {"governance.max_daily_loss_r": None},
    ),
    Scenario(
        "s9_9_invalid_risk_not_counted_toward_signal_cap",
        day(*OR_ROWS,
            ("09:32", 101.25, 101.4, 101.2, 101.3, 1000),  # fill 101.25, R 1.25: risk 1.0 -> 0 shares
            ("09:33", 101.3, 101.35, 100.9, 100.95, 1000),  # long unarmed (101.3 > 101); closes inside
            ("09:34", 100.95, 101.2, 100.9, 101.1, 1000),  # fill 101.0, R 1: 1 share; the cap of 1 still free
            ("09:35", 101.1, 101.3, 101.0, 101.2, 1000)),  # last bar: eod 101.2
        [T("long", "09:34", 101.0, "09:35", 101.2, "eod", 1)],
        [("09:32", "long", "invalid_risk")],
        overrides={"risk.risk_per_trade": 0.00001, "governance.max_signals_per_day": 1},
    ),
    Scenario(
        "s9_1_or_candle_stop_on_wrong_side_invalid_risk",
        day(("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
            ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8 > 100.2: long
            ("09:32", 99.5, 99.7, 99.4, 99.6, 1000),      # market fill 99.5 is under the stop 100: R_ps < 0
            ("09:33", 99.6, 99.7, 99.5, 99.6, 1000)),     # last bar
        [],
        [(None, "long", "invalid_risk")],
        overrides={"entry.mode": "or_candle"},
    ),
    Scenario(
        "s9_12_ambiguous_before_confluence",
        day(*OR_ROWS,
            ("09:32", 100.5, 101.2, 99.8, 100.4, 1000),    # both armed sides touched; confluence fails too
            ("09:33", 100.4, 100.6, 100.3, 100.5, 1000),
            ("09:34", 100.5, 100.6, 100.4, 100.5, 1000)),  # last bar
        [],
        [("09:32", None, "ambiguous_bar")],
        overrides=NO_FACTORS,                              # score 0 < required 2
    ),
    Scenario(
        "s9_12_confluence_before_invalid_risk",
        day(*OR_ROWS,
            ("09:32", 101.25, 101.4, 101.2, 101.3, 1000),  # 0 shares and score 0 < 2: confluence
            *QUIET_TAIL),
        [],
        [("09:32", "long", "confluence")],
        overrides=NO_FACTORS | {"risk.risk_per_trade": 0.00001},
    ),
    # ---- section 5: stop modes (ATR_WARMUP: ATR 2.0)
    Scenario(
        "s5_stop_mode_atr",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            E_LONG,  # long 101.0; stop 101 - 0.75 * 2.0 = 99.5: 666 shares
            ("09:33", 101.0, 101.05, 99.7, 99.8, 1000),    # under the OR low 100, above the ATR stop
            ("09:34", 99.8, 99.9, 99.5, 99.6, 1000),       # touches 99.5 exactly: stop
            ("09:35", 99.6, 99.7, 99.5, 99.6, 1000))],     # last bar
        [T("long", "09:32", 101.0, "09:34", 99.5, "stop", 666,
           extra={"stop_price": 99.5, "r_multiple": -1.0})],
        overrides={"trade.stop_mode": "atr", "trade.atr_stop_mult": 0.75},
        start=D,
        session={"atr": 2.0, "status": "traded", "trades": 1},
    ),
    Scenario(
        "s5_stop_mode_atr_capped_capped",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            ("09:32", 100.7, 101.2, 100.6, 101.1, 1000),  # long 101.0; stop max(100, 101 - 0.5) = 100.5: 2000
            ("09:33", 101.0, 101.05, 100.5, 100.6, 1000),  # touches 100.5: stop
            ("09:34", 100.6, 100.7, 100.5, 100.6, 1000))],  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.5, "stop", 2000,
           extra={"stop_price": 100.5, "r_per_share": 0.5})],
        overrides={"trade.stop_mode": "atr_capped", "trade.atr_stop_mult": 0.25},
        start=D,
    ),
    Scenario(
        "s5_stop_mode_atr_capped_not_capped",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            ("09:32", 100.7, 101.2, 100.6, 101.1, 1000),   # long 101.0; stop max(100, 101 - 1.5) = 100: 1000
            ("09:33", 101.0, 101.05, 100.0, 100.1, 1000),  # touches 100: stop
            ("09:34", 100.1, 100.2, 100.05, 100.1, 1000))],  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000, extra={"stop_price": 100.0})],
        overrides={"trade.stop_mode": "atr_capped", "trade.atr_stop_mult": 0.75},
        start=D,
    ),
    Scenario(
        "s5_stop_mode_atr_capped_short",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            ("09:32", 100.3, 100.4, 99.8, 99.9, 1000),  # short 100.0; stop min(101, 100 + 0.5) = 100.5: 2000
            ("09:33", 99.9, 100.5, 99.85, 100.4, 1000),    # touches 100.5: stop
            ("09:34", 100.4, 100.45, 100.3, 100.4, 1000))],  # last bar
        [T("short", "09:32", 100.0, "09:33", 100.5, "stop", 2000,
           extra={"stop_price": 100.5, "t1_price": 99.5})],
        overrides={"trade.stop_mode": "atr_capped", "trade.atr_stop_mult": 0.25},
        start=D,
    ),
    Scenario(
        "s5_stop_mode_or_opposite_with_stop_buffer",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0; stop 100 - 0.25 = 99.75: 800 shares
            ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),   # under the OR low, above 99.75
            ("09:34", 99.95, 100.0, 99.75, 99.8, 1000),    # touches 99.75: stop
            ("09:35", 99.8, 99.9, 99.75, 99.8, 1000)),     # last bar
        [T("long", "09:32", 101.0, "09:34", 99.75, "stop", 800, extra={"stop_price": 99.75})],
        overrides={"trade.stop_buffer": 0.25},
    ),
    # ---- section 3: entry modes
    Scenario(
        "s3_close_mode_fills_at_next_open",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # close 101.2 > upper: signal
            ("09:33", 101.25, 101.4, 101.2, 101.3, 1000),  # fill at this open 101.25, R 1.25 -> 800
            ("09:34", 101.3, 101.5, 101.2, 101.4, 1000)),  # last bar: eod 101.4
        [T("long", "09:33", 101.25, "09:34", 101.4, "eod", 800)],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_17_close_mode_signal_is_strict",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.0, 1000),   # high crosses upper, close == upper: no signal
            ("09:33", 101.0, 101.1, 100.9, 101.0, 1000),
            ("09:34", 101.0, 101.1, 100.9, 101.0, 1000)),  # last bar
        [],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_17_close_mode_uses_buffered_level",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # close 101.2 <= upper 101.25: no signal
            ("09:33", 101.2, 101.4, 101.1, 101.3, 1000),   # close 101.3 > 101.25: signal
            ("09:34", 101.3, 101.4, 101.2, 101.35, 1000),  # fill at the open 101.3: R 1.3 -> 769 shares
            ("09:35", 101.35, 101.5, 101.3, 101.4, 1000)),  # last bar: eod 101.4
        [T("long", "09:34", 101.3, "09:35", 101.4, "eod", 769)],
        overrides={"entry.mode": "close", "entry.buffer_fixed": 0.25},
    ),
    Scenario(
        "s9_14_close_mode_rearms_only_after_close_back_inside",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # signal
            ("09:33", 101.25, 101.4, 101.2, 101.3, 1000),  # fill 101.25, 800 shares; target 2R = 103.75
            ("09:34", 101.3, 103.8, 101.2, 103.5, 1000),   # target 103.75
            ("09:35", 103.5, 103.6, 103.4, 103.5, 1000),   # close > upper but close(t-1) > upper: unarmed
            ("09:36", 103.5, 103.6, 100.8, 100.9, 1000),   # closes back inside
            ("09:37", 100.9, 101.3, 100.85, 101.2, 1000),  # armed, close 101.2 > upper: signal
            ("09:38", 101.25, 101.3, 101.1, 101.25, 1000),  # fill 101.25; equity 102,000 -> 816 shares
            ("09:39", 101.25, 101.3, 101.2, 101.3, 1000)),  # last bar: eod 101.3
        [T("long", "09:33", 101.25, "09:34", 103.75, "target", 800),
         T("long", "09:38", 101.25, "09:39", 101.3, "eod", 816)],
        overrides={"entry.mode": "close", "trade.partials": False},
    ),
    Scenario(
        "s9_14_close_mode_cutoff_applies_to_signal_bar",
        day(*OR_ROWS,
            ("09:32", 100.6, 100.8, 100.5, 100.7, 1000),
            ("09:33", 100.7, 101.3, 100.6, 101.2, 1000),   # signal before the cutoff 09:34
            ("09:34", 101.25, 101.4, 101.2, 101.3, 1000),  # fill at the open 101.25 on the cutoff bar
            ("09:35", 101.3, 101.5, 101.2, 101.4, 1000)),  # last bar: eod 101.4
        [T("long", "09:34", 101.25, "09:35", 101.4, "eod", 800)],
        overrides={"entry.mode": "close", "entry.cutoff": "09:34"},
    ),
    Scenario(
        "s9_14_close_mode_fill_bar_must_not_be_last",
        day(*OR_ROWS,
            ("09:32", 100.6, 100.8, 100.5, 100.7, 1000),
            ("09:33", 100.7, 101.3, 100.6, 101.2, 1000),  # signal, but the fill bar is the session's last bar
            ("09:34", 101.25, 101.4, 101.2, 101.3, 1000)),  # last bar
        [],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_14_close_mode_fill_bar_is_entry_bar",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # signal
            ("09:33", 101.25, 101.3, 99.9, 100.0, 1000),   # fill 101.25; low 99.9 <= stop 100: stop at 100.0
            ("09:34", 100.0, 100.1, 99.95, 100.0, 1000)),  # last bar
        [T("long", "09:33", 101.25, "09:33", 100.0, "stop", 800)],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s3_or_candle_long_market_entry",
        day(("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
            ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8 > 100.2: long
            ("09:32", 100.75, 100.9, 100.6, 100.8, 1000),  # fill at the open 100.75; stop 100, R 0.75 -> 1333
            ("09:33", 100.8, 101.0, 100.7, 100.9, 1000),
            ("09:34", 100.9, 101.0, 100.8, 100.95, 1000)),  # last bar: eod 100.95
        [T("long", "09:32", 100.75, "09:34", 100.95, "eod", 1333,
           extra={"stop_price": 100.0, "target_price": 102.25})],
        overrides={"entry.mode": "or_candle", "trade.partials": False},
    ),
    Scenario(
        "s3_or_candle_short_one_entry_per_session",
        day(("09:30", 100.8, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.8
            ("09:31", 100.5, 100.7, 100.1, 100.3, 1000),  # OR bar 2 closes 100.3 < 100.8: short
            ("09:32", 100.25, 100.3, 100.1, 100.2, 1000),  # short at the open 100.25; R 0.75: 1333
            ("09:33", 100.2, 101.0, 100.1, 100.9, 1000),  # touches stop 101
            ("09:34", 100.9, 101.5, 99.0, 99.5, 1000),    # crosses both OR sides: no second or_candle entry
            ("09:35", 99.5, 99.6, 99.4, 99.5, 1000)),     # last bar
        [T("short", "09:32", 100.25, "09:33", 101.0, "stop", 1333)],
        overrides={"entry.mode": "or_candle", "governance.lockout_after_losses": 0,
                   "governance.max_daily_loss_r": None},
    ),
    Scenario(
        "s3_or_candle_zero_body_no_trade",
        day(("09:30", 100.5, 101.0, 100.0, 100.7, 1000),  # OR bar 1 opens 100.5
            ("09:31", 100.7, 100.9, 100.3, 100.5, 1000),  # OR bar 2 closes 100.5 == 100.5: no direction
            ("09:32", 100.6, 101.5, 100.5, 101.4, 1000),
            ("09:33", 101.4, 101.5, 101.3, 101.4, 1000)),  # last bar
        [],
        overrides={"entry.mode": "or_candle"},
    ),
    # ---- section 3: buffers
    Scenario(
        "s3_buffer_fixed_moves_trigger",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.2, 100.5, 101.1, 1000),   # upper 101.25 not reached; close <= 101.25: armed
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),   # long at 101.25; stop 100, R 1.25 -> 800
            ("09:34", 101.2, 101.4, 101.1, 101.3, 1000)),  # last bar: eod 101.3
        [T("long", "09:33", 101.25, "09:34", 101.3, "eod", 800)],
        overrides={"entry.buffer_fixed": 0.25},
    ),
    Scenario(
        "s3_buffer_atr_moves_trigger",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            ("09:32", 100.6, 101.2, 100.5, 101.1, 1000),   # upper 101 + 0.125 * 2.0 = 101.25 not reached
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),   # long at 101.25
            ("09:34", 101.2, 101.4, 101.1, 101.3, 1000))],  # last bar: eod 101.3
        [T("long", "09:33", 101.25, "09:34", 101.3, "eod", 800)],
        overrides={"entry.buffer_atr": 0.125},
        start=D,
    ),
    # ---- section 3 + 9.1: costs and sizing
    Scenario(
        "s3_slippage_and_commission_t1_then_breakeven",
        day(*OR_ROWS,
            E_LONG,  # fill 101.01; R 1.01 -> 990; T1 102.02 (495); BE 101.01
            ("09:33", 101.1, 102.1, 101.05, 102.05, 1000),  # T1 102.02, a limit: no slippage
            ("09:34", 102.0, 102.1, 100.9, 101.0, 1000),   # breakeven 101.01 touched: market exit 101.00
            ("09:35", 100.95, 100.98, 100.8, 100.9, 1000)),  # last bar
        [T("long", "09:32", 101.01, "09:34", 101.0, "breakeven", 990, t1=True,
           extra={"r_per_share": 1.01, "t1_price": 102.02, "t2_price": 102.525, "target_price": 104.04,
                  "gross_pnl": 495.0, "commission": 6.93, "net_pnl": 488.07, "initial_risk": 999.9,
                  "r_multiple": 488.07 / 999.9, "gross_r": 495.0 / 999.9},
           fills=(("entry", "09:32", 101.01, 990), ("t1", "09:33", 102.02, 495),
                  ("breakeven", "09:34", 101.0, 495)))],
        overrides=COSTS,
        final_equity=CAPITAL + 488.07,
    ),
    Scenario(
        "s3_slippage_short_eod_exit",
        day(*OR_ROWS,
            E_SHORT,                                       # fill 100 - 0.01 = 99.99; stop 101, R 1.01 -> 990
            ("09:33", 99.9, 100.0, 99.6, 99.7, 1000),
            ("09:34", 99.7, 99.8, 99.5, 99.6, 1000)),      # last bar: eod market buy 99.6 + 0.01 = 99.61
        [T("short", "09:32", 99.99, "09:34", 99.61, "eod", 990,
           extra={"gross_pnl": 0.38 * 990, "commission": 6.93, "net_pnl": 0.38 * 990 - 6.93})],
        overrides=COSTS,
        final_equity=CAPITAL + 0.38 * 990 - 6.93,
    ),
    Scenario(
        "s3_slippage_on_gap_stop",
        day(*OR_ROWS,
            E_LONG,                                        # fill 101.01, 990 shares
            ("09:33", 99.5, 99.7, 99.3, 99.6, 1000),  # gap under stop 100: market exit 99.5 - 0.01 = 99.49
            ("09:34", 99.6, 99.8, 99.5, 99.7, 1000)),      # last bar
        [T("long", "09:32", 101.01, "09:33", 99.49, "stop", 990,
           extra={"gross_pnl": -1.52 * 990, "commission": 6.93})],
        overrides=COSTS,
    ),
    Scenario(
        "s3_sizing_capped_by_max_leverage",
        day(("09:30", 100.7, 101.0, 100.5, 100.8, 1000),  # OR high 101, OR low 100.5
            ("09:31", 100.8, 100.9, 100.6, 100.8, 1000),
            ("09:32", 100.8, 101.2, 100.7, 101.1, 1000),  # long 101.0, R 0.5: risk 2000, leverage 2 -> 1980
            ("09:33", 101.1, 101.3, 101.0, 101.2, 1000),
            ("09:34", 101.2, 101.4, 101.1, 101.3, 1000)),  # last bar: eod 101.3
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1980)],
        overrides={"risk.max_leverage": 2.0},
    ),
    Scenario(
        "s9_10_sizing_compounds_net_pnl",
        day(*OR_ROWS,
            E_LONG,                                        # 1: long 101.0, 1000 shares
            ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # 1: stop: gross -1000, commission 7: equity 98,993
            ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # 2: long 101.0, floor(989.93) = 989
            ("09:35", 101.1, 101.3, 101.0, 101.2, 1000)),  # last bar: eod 101.2
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000, extra={"net_pnl": -1007.0}),
         T("long", "09:34", 101.0, "09:35", 101.2, "eod", 989)],
        overrides={"costs.commission_per_share": 0.0035, "governance.lockout_after_losses": 0},
    ),
    # ---- section 2: width filter (ATR 2.0, OR width 1.0: ratio 0.5)
    *[
        Scenario(
            f"s2_width_filter_{name}",
            [*ATR_WARMUP, *day(*OR_ROWS, E_LONG, *QUIET_TAIL)],
            [LONG_EOD] if traded else [],
            overrides={"orb.min_width_atr": lo, "orb.max_width_atr": hi},
            start=D,
            session={"status": "traded", "or_width_atr": 0.5} if traded
            else {"status": "skipped", "skip_reason": ANY, "or_width_atr": 0.5},
        )
        for name, lo, hi, traded in [
            ("below_min_skipped", 0.6, None, False),
            ("above_max_skipped", None, 0.4, False),
            ("equal_to_min_passes", 0.5, None, True),
            ("equal_to_max_passes", None, 0.5, True),
            ("inside_bounds_passes", 0.25, 1.75, True),
        ]
    ],
    Scenario(
        "s2_zero_width_never_traded",
        day(("09:30", 100.0, 100.0, 100.0, 100.0, 1000),  # OR width 0
            ("09:31", 100.0, 100.0, 100.0, 100.0, 1000),
            ("09:32", 100.2, 100.5, 100.1, 100.4, 1000),  # would break out above 100
            ("09:33", 100.4, 100.6, 100.3, 100.5, 1000),
            ("09:34", 100.5, 100.6, 100.4, 100.5, 1000)),  # last bar
        [],
        session={"status": "skipped", "skip_reason": ANY},
    ),
    Scenario(
        "s2_no_or_bars_skipped",
        day(("09:33", 100.5, 101.0, 100.0, 100.5, 1000),  # nothing in the 09:30-09:32 OR window
            ("09:34", 100.6, 101.2, 100.5, 101.1, 1000),
            ("09:35", 101.1, 101.3, 101.0, 101.2, 1000)),
        [],
        session={"status": "skipped", "skip_reason": "no_or_bars"},
    ),
    Scenario(
        "s2_missing_or_bar_without_validation_uses_bars_present",
        day(("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # the only OR bar (09:31 missing): OR 101 / 100
            E_LONG,                                       # long 101.0
            *QUIET_TAIL),
        [LONG_EOD],
    ),
]

# ---- section 4: confluence (one enabled factor of weight 1, required 1, unless stated)
VWAP_UP_OR = [
    ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # typical 100.5
    ("09:31", 100.5, 100.8, 100.2, 100.7, 1000),  # typical 100.5667: VWAP 100.533 < close 100.7
]
VWAP_FLAT_OR = [
    ("09:30", 100.0, 101.0, 100.0, 100.5, 1000),  # typical 301.5 / 3 = 100.5
    ("09:31", 100.5, 100.5, 100.5, 100.5, 1000),  # typical 100.5: VWAP 100.5 == close 100.5 (not above)
]
PA_UP_OR = [
    ("09:30", 100.2, 100.8, 100.0, 100.6, 1000),
    ("09:31", 100.6, 101.0, 100.3, 100.9, 1000),  # higher high and higher low than 09:30; OR 101 / 100
]
PA_EQUAL_HIGH_OR = [
    ("09:30", 100.2, 101.0, 100.0, 100.6, 1000),
    ("09:31", 100.6, 101.0, 100.3, 100.9, 1000),  # equal high: not a higher high
]
CONFLUENCE_TAIL = [E_LONG, *QUIET_TAIL]  # long 101.0 at 09:32, eod 101.3 at 09:34
CONFLUENCE_LONG = T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000)
LONG_BLOCKED = [("09:32", "long", "confluence")]
SHORT_TAIL = [
    E_SHORT,                                   # short 100.0
    ("09:33", 99.9, 100.0, 99.7, 99.8, 1000),
    ("09:34", 99.8, 99.9, 99.7, 99.8, 1000),   # last bar: eod 99.8
]
ALTERNATING = [(101.0 + i % 2, 99.0 + i % 2, 100.0 + i % 2) for i in range(60)]  # ADX about 4: weak trend
RISING = [(41.0 + i, 39.0 + i, 40.0 + i) for i in range(60)]  # ADX 100: strong trend
ADX_ON = {"confluence.adx.enabled": True, "confluence.adx.period": 14, "confluence.adx.threshold": 18.0,
          "confluence.weak_trend_required": 2}
PRIOR_2 = warmup(D, 2, hlc=[(102.0, 98.0, 100.0)] * 2, volumes=[2000, 2000])  # VAH 101; OR volume 2000

SCENARIOS += [
    Scenario(
        "s4_vwap_close_above_passes",
        day(*VWAP_UP_OR, *CONFLUENCE_TAIL),
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000, extra={"score": 1.0, "factor_vwap": 1})],
        overrides=only_factor("vwap"),
    ),
    Scenario(
        "s9_16_vwap_equal_fails_evaluated_on_previous_bar",
        day(*VWAP_FLAT_OR, *CONFLUENCE_TAIL),  # 09:32 closes above VWAP; stop mode evaluates 09:31
        [],
        LONG_BLOCKED,
        overrides=only_factor("vwap"),
    ),
    Scenario(
        "s1_vwap_resets_each_session",
        [("2024-03-04", [("09:30", 110.0, 110.5, 109.5, 110.0, 1_000_000),  # heavy volume at 110
                         ("09:31", 110.0, 110.5, 109.5, 110.0, 1_000_000),
                         ("09:32", 110.0, 110.2, 109.8, 110.0, 1000)]),
         ("2024-03-05", [*VWAP_UP_OR, *CONFLUENCE_TAIL])],              # today's VWAP 100.533 < 100.7
        [CONFLUENCE_LONG],
        overrides=only_factor("vwap"),
        start=D,
    ),
    Scenario(
        "s9_16_close_mode_confluence_on_signal_bar",
        day(*VWAP_FLAT_OR,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # signal; VWAP through 09:32 = 100.667 < 101.2
            ("09:33", 101.25, 101.4, 101.2, 101.3, 1000),  # fill 101.25
            ("09:34", 101.3, 101.5, 101.2, 101.4, 1000)),  # last bar: eod 101.4
        [T("long", "09:33", 101.25, "09:34", 101.4, "eod", 800, extra={"factor_vwap": 1})],
        overrides=only_factor("vwap", **{"entry.mode": "close"}),
    ),
    Scenario(
        "s9_15_or_candle_confluence_through_last_or_bar_passes",
        day(*VWAP_UP_OR,                                   # 100.7 > 100.5: long; VWAP 100.533 < 100.7
            ("09:32", 100.75, 100.9, 100.6, 100.8, 1000),  # fill at the open 100.75, R 0.75 -> 1333
            ("09:33", 100.8, 101.0, 100.7, 100.9, 1000),
            ("09:34", 100.9, 101.0, 100.8, 100.95, 1000)),  # last bar: eod 100.95
        [T("long", "09:32", 100.75, "09:34", 100.95, "eod", 1333, extra={"factor_vwap": 1})],
        overrides=only_factor("vwap", **{"entry.mode": "or_candle"}),
    ),
    Scenario(
        "s9_15_or_candle_confluence_through_last_or_bar_fails",
        day(*VWAP_FLAT_OR,                                 # 100.5 > 100.0: long; VWAP 100.5 == close: flag 0
            ("09:32", 100.75, 101.5, 100.6, 101.4, 1000),  # would pass if evaluated here
            ("09:33", 101.4, 101.5, 101.3, 101.4, 1000),
            ("09:34", 101.4, 101.5, 101.3, 101.4, 1000)),  # last bar
        [],
        [(None, "long", "confluence")],
        overrides=only_factor("vwap", **{"entry.mode": "or_candle"}),
    ),
    Scenario(
        "s4_price_action_higher_high_higher_low_passes",
        day(*PA_UP_OR, *CONFLUENCE_TAIL),
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000, extra={"factor_price_action": 1})],
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 1}),
    ),
    Scenario(
        "s9_16_price_action_equal_high_fails",
        day(*PA_EQUAL_HIGH_OR, *CONFLUENCE_TAIL),
        [],
        LONG_BLOCKED,
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 1}),
    ),
    Scenario(
        "s9_13_price_action_too_few_bars_flag_0",
        day(*PA_UP_OR, *CONFLUENCE_TAIL),                  # pivot_len 3: e = 09:31 has one earlier bar
        [],
        LONG_BLOCKED,
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 3}),
    ),
    Scenario(
        "s4_profile_close_above_vah_passes",
        [*warmup(D, 1, hlc=[(100.4, 99.2, 100.0)]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # VAH 100.1 < 100.5
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000, extra={"factor_profile": 1})],
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s4_profile_close_below_vah_fails",
        [*warmup(D, 1, hlc=[(102.0, 98.0, 100.0)]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # VAH 101 > 100.5
        [],
        LONG_BLOCKED,
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s4_profile_short_below_val_passes",
        [*warmup(D, 1, hlc=[(101.6, 100.4, 101.0)]), *day(*OR_ROWS, *SHORT_TAIL)],  # VAL 100.7 > 100.5
        [T("short", "09:32", 100.0, "09:34", 99.8, "eod", 1000, extra={"factor_profile": 1})],
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s9_13_profile_without_prior_session_flag_0",
        day(*OR_ROWS, *CONFLUENCE_TAIL),
        [],
        LONG_BLOCKED,
        overrides=only_factor("profile"),
        session={"status": "no_signal"},
    ),
    Scenario(
        "s9_13_rel_volume_lookback_mean_ratio_equal_passes",
        [*warmup(D, 3, volumes=[100_000, 2000, 2000]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # 2000 / 2000
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000, extra={"factor_rel_volume": 1})],
        overrides=only_factor("rel_volume", **{"confluence.rel_volume.lookback_sessions": 2}),
        start=D,
    ),
    Scenario(
        "s4_rel_volume_below_ratio_fails",
        [*warmup(D, 2, volumes=[2001, 2001]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # 2000 / 2001 < 1
        [],
        LONG_BLOCKED,
        overrides=only_factor("rel_volume", **{"confluence.rel_volume.lookback_sessions": 2}),
        start=D,
    ),
    Scenario(
        "s9_13_rel_volume_too_little_history_flag_0",
        [*warmup(D, 1, volumes=[10]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # 1 of 2 sessions
        [],
        LONG_BLOCKED,
        overrides=only_factor("rel_volume", **{"confluence.rel_volume.lookback_sessions": 2}),
        start=D,
    ),
    Scenario(
        "s9_16_rel_volume_zero_prior_mean_flag_0",
        [*warmup(D, 2, volumes=[0, 0]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],
        [],
        LONG_BLOCKED,
        overrides=only_factor("rel_volume", **{"confluence.rel_volume.lookback_sessions": 2}),
        start=D,
    ),
    Scenario(
        "s4_adx_weak_trend_raises_required_score",
        [*warmup(D, 60, hlc=ALTERNATING), *day(*VWAP_UP_OR, *CONFLUENCE_TAIL)],  # vwap score 1 < 2
        [],
        LONG_BLOCKED,
        overrides=only_factor("vwap", **ADX_ON),
        start=D,
    ),
    Scenario(
        "s4_adx_strong_trend_keeps_required_score",
        [*warmup(D, 60, hlc=RISING), *day(*VWAP_UP_OR, *CONFLUENCE_TAIL)],  # vwap score 1 >= 1
        [CONFLUENCE_LONG],
        overrides=only_factor("vwap", **ADX_ON),
        start=D,
    ),
    Scenario(
        "s9_13_adx_unavailable_does_not_mark_weak",
        day(*VWAP_UP_OR, *CONFLUENCE_TAIL),
        [CONFLUENCE_LONG],
        overrides=only_factor("vwap", **ADX_ON),
        session={"status": "traded"},
    ),
    Scenario(
        "s4_weighted_score_and_factor_flags",
        # rel_volume (w 1) and vwap (w 2) pass; price_action (lower high) and profile (VAH 101) fail
        [*PRIOR_2, *day(*VWAP_UP_OR, *CONFLUENCE_TAIL)],
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000,
           extra={"score": 3.0, "factor_rel_volume": 1, "factor_vwap": 1, "factor_price_action": 0,
                  "factor_profile": 0})],
        overrides={"confluence.enabled": True, "confluence.required": 2.5,
                   "confluence.weak_trend_required": 2.5,
                   "confluence.rel_volume.lookback_sessions": 2, "confluence.vwap.weight": 2.0,
                   "confluence.price_action.weight": 0.5, "confluence.price_action.pivot_len": 1},
        start=D,
    ),
    Scenario(
        "s4_weighted_score_below_required_blocks",
        [*PRIOR_2, *day(*VWAP_UP_OR, *CONFLUENCE_TAIL)],  # score 3 < 3.5
        [],
        LONG_BLOCKED,
        overrides={"confluence.enabled": True, "confluence.required": 3.5,
                   "confluence.weak_trend_required": 3.5,
                   "confluence.rel_volume.lookback_sessions": 2, "confluence.vwap.weight": 2.0,
                   "confluence.price_action.pivot_len": 1},
        start=D,
    ),
]

SCENARIOS += [
    Scenario(
        "s9_12_unarmed_touch_is_no_opportunity",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),   # full stop at 100; short unarmed (99.95)
            ("09:34", 99.95, 100.0, 99.8, 99.9, 1000),     # short touched but unarmed: no lockout event
            ("09:35", 99.9, 100.0, 99.85, 99.95, 1000),    # again unarmed
            ("09:36", 99.95, 100.05, 99.9, 99.95, 1000)),  # last bar
        [FIRST_LOSS],
        [],
    ),
    Scenario(
        "s9_9_stop_after_partial_is_not_a_full_stop_loss",
        day(*OR_ROWS,
            E_LONG,                                        # 1: long 101.0
            ("09:33", 101.5, 102.2, 99.9, 101.1, 1000),    # 1: ohlc_path down bar: T1 102, then stop 100: 0 R
            ("09:34", 101.1, 101.2, 100.5, 100.6, 1000),   # unarmed touch (close 101.1 > 101); closes inside
            ("09:35", 100.6, 101.2, 100.5, 101.1, 1000),   # 2: long 101.0 (no lockout), 1000 shares
            ("09:36", 101.1, 101.3, 101.0, 101.2, 1000)),  # last bar: eod 101.2
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000, t1=True),
         T("long", "09:35", 101.0, "09:36", 101.2, "eod", 1000)],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s9_9_zero_net_r_leaves_loss_count_unchanged",
        day(*OR_ROWS,
            E_LONG,                                        # 1: long 101.0
            ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),  # 1: full stop -> count 1; equity 99,000
            ("09:34", 100.5, 101.2, 100.4, 101.1, 1000),   # 2: long 101.0, 990 shares
            ("09:35", 101.5, 102.2, 99.9, 101.1, 1000),    # 2: T1 102 (495), then stop 100 (495): 0 R
            ("09:36", 101.1, 101.2, 100.5, 100.6, 1000),   # unarmed touch; closes inside
            ("09:37", 100.6, 101.2, 100.5, 101.1, 1000),   # 3: long 101.0 (count 1 < 2), 990 shares
            ("09:38", 101.1, 101.15, 99.9, 100.5, 1000),   # 3: full stop -> count 2: locked out
            ("09:39", 100.5, 101.2, 100.4, 101.1, 1000),   # armed, touched: lockout_losses
            ("09:40", 101.1, 101.2, 101.0, 101.1, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000),
         T("long", "09:34", 101.0, "09:35", 100.0, "stop", 990, t1=True, extra={"r_multiple": 0.0}),
         T("long", "09:37", 101.0, "09:38", 100.0, "stop", 990)],
        [("09:39", "long", "lockout_losses")],
        overrides={"trade.same_bar": "ohlc_path", "governance.lockout_after_losses": 2,
                   "governance.max_signals_per_day": 5, "governance.max_daily_loss_r": None},
    ),
    Scenario(
        "s9_5_entry_bar_stop_counts_as_full_stop_loss",
        day(*OR_ROWS,
            ("09:32", 99.5, 101.8, 99.4, 101.0, 1000),     # long 101.75, stopped on the entry bar at 100.0
            ("09:33", 101.0, 101.8, 100.9, 101.0, 1000),   # long armed and touched: lockout_losses
            ("09:34", 101.0, 101.1, 100.9, 101.0, 1000)),  # last bar
        [T("long", "09:32", 101.75, "09:32", 100.0, "stop", 571)],
        [("09:33", "long", "lockout_losses")],
        overrides={"entry.buffer_fixed": 0.75},
    ),
    Scenario(
        "s5_same_bar_ohlc_path_short_up_bar_target_first",
        day(*OR_ROWS,
            E_SHORT,                                       # short 100.0: stop 101, T1 99
            ("09:33", 99.5, 101.1, 98.9, 99.8, 1000),      # up bar O->L->H->C: T1 99, then stop 101
            ("09:34", 99.8, 99.9, 99.7, 99.8, 1000)),      # last bar (short unarmed: 99.8 < 100)
        [T("short", "09:32", 100.0, "09:33", 101.0, "stop", 1000, t1=True, extra={"gross_pnl": 0.0},
           fills=(("entry", "09:32", 100.0, 1000), ("t1", "09:33", 99.0, 500),
                  ("stop", "09:33", 101.0, 500)))],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s9_16_profile_uses_regular_hours_of_previous_session",
        [("2024-03-04", [("09:30", 100.0, 100.4, 99.2, 100.0, 1000),    # regular hours: VAH 100.1
                         ("16:30", 100.0, 110.0, 90.0, 100.0, 1000)]),  # after hours: ignored (else VAH 105)
         *day(*OR_ROWS, *CONFLUENCE_TAIL)],
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 1000, extra={"factor_profile": 1})],
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s1_atr_from_regular_hours_bars_only",
        [*[(d, [*rows, ("17:00", 100.0, 110.0, 90.0, 100.0, 1000)]) for d, rows in ATR_WARMUP],
         *day(*OR_ROWS, E_LONG, *QUIET_TAIL)],
        [T("long", "09:32", 101.0, "09:34", 101.3, "eod", 666, extra={"stop_price": 99.5})],  # ATR 2.0
        overrides={"trade.stop_mode": "atr", "trade.atr_stop_mult": 0.75},
        start=D,
        session={"atr": 2.0},
    ),
]
SCENARIOS += [
    Scenario(
        "s9_1_atr_stop_measured_from_entry_fill_with_slippage",
        [*ATR_WARMUP, *day(
            *OR_ROWS,
            E_LONG,                                        # fill 101.01; stop 101.01 - 1.5 = 99.51: 666
            ("09:33", 101.0, 101.05, 99.6, 99.7, 1000),    # above 99.51
            ("09:34", 99.7, 99.8, 99.45, 99.6, 1000),      # crosses 99.51: market exit 99.50
            ("09:35", 99.6, 99.7, 99.55, 99.6, 1000))],    # last bar
        [T("long", "09:32", 101.01, "09:34", 99.5, "stop", 666,
           extra={"stop_price": 99.51, "r_per_share": 1.5, "t1_price": 102.51})],
        overrides={"trade.stop_mode": "atr", "trade.atr_stop_mult": 0.75, "costs.slippage_per_share": 0.01},
        start=D,
    ),
    Scenario(
        "s9_18_or_candle_entry_bar_is_first_bar_present_after_or",
        day(("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
            ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8: long
            ("09:33", 100.75, 100.9, 100.6, 100.8, 1000),  # 09:32 missing: fill at this open 100.75
            ("09:34", 100.8, 101.0, 100.7, 100.95, 1000)),  # last bar: eod 100.95
        [T("long", "09:33", 100.75, "09:34", 100.95, "eod", 1333)],
        overrides={"entry.mode": "or_candle", "trade.partials": False},
    ),
]
VWAP_DOWN_OR = [
    ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # typical 100.5
    ("09:31", 100.5, 100.8, 100.2, 100.3, 1000),  # typical 100.4333: VWAP 100.467 > close 100.3
]
PA_DOWN_EQUAL_LOW_OR = [
    ("09:30", 100.8, 101.0, 100.0, 100.4, 1000),
    ("09:31", 100.4, 100.7, 100.0, 100.1, 1000),  # lower high, equal low: not a lower low
]
PA_DOWN_OR = [
    ("09:30", 100.8, 101.0, 100.0, 100.4, 1000),
    ("09:31", 100.4, 100.7, 99.9, 100.1, 1000),  # lower high and lower low; OR 101 / 99.9
]
SHORT_BLOCKED = [("09:32", "short", "confluence")]
CLOSE_SHORT_TAIL = [
    ("09:34", 99.75, 99.8, 99.6, 99.7, 1000),  # fill at the open 99.75: R 1.25 -> 800
    ("09:35", 99.7, 99.8, 99.6, 99.65, 1000),  # last bar: eod 99.65
]

SCENARIOS += [
    Scenario(
        # The walk starts at O: a bar that opens beyond T1 has touched it before going down to the stop.
        "s5_same_bar_ohlc_path_open_beyond_t1_fills_t1_before_the_stop",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0: stop 100, T1 102, T2 102.5
            ("09:33", 102.3, 102.4, 99.9, 102.35, 1000),   # opens past T1; O->L->H->C: T1 at O, then stop
            ("09:34", 100.6, 100.7, 100.4, 100.5, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000, t1=True, extra={"gross_pnl": 0.0},
           fills=(("entry", "09:32", 101.0, 1000), ("t1", "09:33", 102.0, 500),  # T2 102.5 not reached
                  ("stop", "09:33", 100.0, 500)))],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s5_same_bar_pessimistic_open_beyond_t1_still_stops_first",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 102.3, 102.4, 99.9, 102.35, 1000),   # pessimistic: the stop comes first, T1 never fills
            ("09:34", 100.6, 100.7, 100.4, 100.5, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000)],
    ),
    Scenario(
        "s5_same_bar_ohlc_path_long_doji_walks_low_first",
        day(*OR_ROWS,
            E_LONG,                                        # long 101.0
            ("09:33", 101.5, 102.2, 99.9, 101.5, 1000),    # close == open: O->L->H->C, the stop 100 first
            ("09:34", 100.6, 100.7, 100.4, 100.5, 1000)),  # last bar
        [T("long", "09:32", 101.0, "09:33", 100.0, "stop", 1000)],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s5_same_bar_ohlc_path_short_doji_walks_low_first",
        day(*OR_ROWS,
            E_SHORT,                                       # short 100.0: stop 101, T1 99
            ("09:33", 99.5, 101.1, 98.9, 99.5, 1000),      # close == open: O->L->H->C: T1 99, then stop 101
            ("09:34", 99.5, 99.6, 99.4, 99.5, 1000)),      # last bar (short unarmed)
        [T("short", "09:32", 100.0, "09:33", 101.0, "stop", 1000, t1=True, extra={"gross_pnl": 0.0},
           fills=(("entry", "09:32", 100.0, 1000), ("t1", "09:33", 99.0, 500),
                  ("stop", "09:33", 101.0, 500)))],
        overrides={"trade.same_bar": "ohlc_path"},
    ),
    Scenario(
        "s9_11_short_touching_trigger_and_target_fills",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 100.0, 100.2, 1000),   # low == lower 100: short at 100.0
            ("09:33", 100.2, 100.3, 99.0, 99.1, 1000),     # low == T1 99: 500 at 99.0
            ("09:34", 99.1, 99.2, 99.05, 99.1, 1000)),     # last bar: eod 500 at 99.1
        [T("short", "09:32", 100.0, "09:34", 99.1, "eod", 1000, t1=True, extra={"gross_pnl": 950.0})],
    ),
    Scenario(
        "s3_buffer_fixed_moves_short_trigger",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 99.8, 99.9, 1000),     # lower 99.75 not reached; armed
            ("09:33", 99.9, 100.0, 99.7, 99.8, 1000),      # short at 99.75; stop 101, R 1.25 -> 800
            ("09:34", 99.8, 99.9, 99.65, 99.7, 1000)),     # last bar: eod 99.7
        [T("short", "09:33", 99.75, "09:34", 99.7, "eod", 800)],
        overrides={"entry.buffer_fixed": 0.25},
    ),
    Scenario(
        "s3_close_mode_short_fills_at_next_open",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 99.7, 99.8, 1000),     # close 99.8 < lower: signal
            ("09:33", 99.75, 99.8, 99.6, 99.7, 1000),      # fill at the open 99.75: R 1.25 -> 800
            ("09:34", 99.7, 99.8, 99.6, 99.65, 1000)),     # last bar: eod 99.65
        [T("short", "09:33", 99.75, "09:34", 99.65, "eod", 800)],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_17_close_mode_short_close_at_level_arms_without_signal",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 99.7, 100.0, 1000),    # close == lower: no signal (strict)
            ("09:33", 100.0, 100.1, 99.7, 99.8, 1000),     # close(t-1) == lower arms; 99.8 < 100: signal
            *CLOSE_SHORT_TAIL),
        [T("short", "09:34", 99.75, "09:35", 99.65, "eod", 800)],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_17_close_mode_long_close_at_level_arms_without_signal",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.0, 1000),   # close == upper: no signal (strict)
            ("09:33", 101.0, 101.3, 100.9, 101.2, 1000),   # close(t-1) == upper arms; close 101.2: signal
            ("09:34", 101.25, 101.4, 101.2, 101.3, 1000),  # fill at the open 101.25 -> 800
            ("09:35", 101.3, 101.5, 101.2, 101.4, 1000)),  # last bar: eod 101.4
        [T("long", "09:34", 101.25, "09:35", 101.4, "eod", 800)],
        overrides={"entry.mode": "close"},
    ),
    Scenario(
        "s9_14_close_mode_invalid_risk",
        day(*OR_ROWS,
            ("09:32", 100.6, 101.3, 100.5, 101.2, 1000),   # signal
            ("09:33", 101.25, 101.4, 101.2, 101.3, 1000),  # fill 101.25, R 1.25: risk 1.0 -> 0 shares
            ("09:34", 101.3, 101.4, 101.2, 101.3, 1000),   # long unarmed
            ("09:35", 101.3, 101.4, 101.2, 101.3, 1000)),  # last bar
        [],
        [(None, "long", "invalid_risk")],
        overrides={"entry.mode": "close", "risk.risk_per_trade": 0.00001},
    ),
    Scenario(
        "s9_15_or_candle_no_entry_when_first_bar_after_or_is_last",
        day(("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
            ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8: long
            ("09:32", 100.75, 100.9, 100.6, 100.8, 1000)),  # the session's last bar: no entry
        [],
        overrides={"entry.mode": "or_candle"},
    ),
    Scenario(
        "s9_1_zero_risk_per_share_is_invalid_risk",
        day(("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
            ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8: long
            ("09:32", 100.0, 100.3, 100.0, 100.2, 1000),  # market fill 100.0 == stop 100: R_ps 0
            ("09:33", 100.2, 100.3, 100.1, 100.2, 1000)),  # last bar
        [],
        [(None, "long", "invalid_risk")],
        overrides={"entry.mode": "or_candle"},
    ),
    Scenario(
        "s9_5_entry_bar_stop_with_slippage",
        day(*OR_ROWS,
            ("09:32", 99.5, 101.8, 99.4, 101.0, 1000),     # fill 101.76; stop 100: exit 100 - 0.01
            ("09:33", 101.0, 101.1, 100.9, 101.0, 1000),
            ("09:34", 101.0, 101.1, 100.9, 101.0, 1000)),  # last bar
        [T("long", "09:32", 101.76, "09:32", 99.99, "stop", 568, extra={"r_per_share": 1.76})],
        overrides={"entry.buffer_fixed": 0.75, "costs.slippage_per_share": 0.01},
    ),
    Scenario(
        "s9_16_price_action_short_lower_high_lower_low_passes",
        day(*PA_DOWN_OR, *SHORT_TAIL),                     # short 99.9 (OR low), stop 101: 909 shares
        [T("short", "09:32", 99.9, "09:34", 99.8, "eod", 909, extra={"factor_price_action": 1})],
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 1}),
    ),
    Scenario(
        "s9_16_price_action_short_equal_low_fails",
        day(*PA_DOWN_EQUAL_LOW_OR, *SHORT_TAIL),
        [],
        SHORT_BLOCKED,
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 1}),
    ),
    Scenario(
        "s9_16_price_action_short_equal_high_fails",
        day(("09:30", 100.8, 101.0, 100.0, 100.4, 1000),
            ("09:31", 100.4, 101.0, 99.9, 100.1, 1000),   # lower low but equal high: not a lower high
            ("09:32", 100.4, 100.5, 99.8, 99.85, 1000),   # touches lower 99.9: blocked; closes below it
            ("09:33", 99.85, 99.9, 99.7, 99.8, 1000),     # short unarmed
            ("09:34", 99.8, 99.9, 99.7, 99.8, 1000)),     # last bar
        [],
        SHORT_BLOCKED,
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 1}),
    ),
    Scenario(
        "s9_16_price_action_never_reaches_into_previous_session",
        [("2024-03-04", [("09:30", 99.0, 99.5, 98.5, 99.0, 1000),      # lower than anything today
                         ("09:31", 99.0, 99.5, 98.5, 99.0, 1000),
                         ("09:32", 99.0, 99.5, 98.5, 99.0, 1000)]),
         *day(*PA_UP_OR, *CONFLUENCE_TAIL)],  # pivot_len 3 from 09:31 needs a bar before today's open
        [],
        LONG_BLOCKED,
        overrides=only_factor("price_action", **{"confluence.price_action.pivot_len": 3}),
        start=D,
    ),
    Scenario(
        "s9_16_profile_close_equal_to_vah_fails",
        [*warmup(D, 1, hlc=[(101.0, 99.0, 100.0)]), *day(*OR_ROWS, *CONFLUENCE_TAIL)],  # VAH 100.5 == 100.5
        [],
        LONG_BLOCKED,
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s9_16_profile_close_equal_to_val_fails",
        [*warmup(D, 1, hlc=[(102.0, 100.0, 101.0)]), *day(*OR_ROWS, *SHORT_TAIL)],  # VAL 100.5 == 100.5
        [],
        SHORT_BLOCKED,
        overrides=only_factor("profile"),
        start=D,
    ),
    Scenario(
        "s4_vwap_short_close_below_passes",
        day(*VWAP_DOWN_OR, *SHORT_TAIL),
        [T("short", "09:32", 100.0, "09:34", 99.8, "eod", 1000, extra={"factor_vwap": 1})],
        overrides=only_factor("vwap"),
    ),
    Scenario(
        "s9_16_vwap_short_equal_fails",
        day(*VWAP_FLAT_OR, *SHORT_TAIL),
        [],
        SHORT_BLOCKED,
        overrides=only_factor("vwap"),
    ),
]
# fmt: on


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(sc: Scenario) -> None:
    check(sc)


def test_scenario_ids_unique() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------------------- other tests
@pytest.mark.parametrize(
    ("overrides", "skipped"),
    [
        ({}, False),  # or_opposite, no width bounds, no buffer, no confluence: trades from the first session
        ({"confluence.enabled": True, "confluence.required": 0}, False),  # factors never cause warm-up (9.13)
        ({"confluence.enabled": True, "confluence.required": 0, "confluence.adx.enabled": True}, False),
        ({"trade.stop_mode": "atr"}, True),
        ({"trade.stop_mode": "atr_capped"}, True),
        ({"entry.buffer_atr": 0.1}, True),
        ({"orb.min_width_atr": 0.25}, True),
        ({"orb.max_width_atr": 1.75}, True),
        ({"orb.adaptive": True, "orb.short_minutes": 1, "orb.long_minutes": 3}, True),
    ],
    ids=[
        "plain",
        "confluence",
        "confluence_adx",
        "atr",
        "atr_capped",
        "buffer_atr",
        "min_width",
        "max_width",
        "adaptive",
    ],
)
def test_s9_3_warmup_skip_only_when_needed(overrides, skipped) -> None:
    result = run(overrides, day(*OR_ROWS, E_LONG, *QUIET_TAIL))
    row = result.sessions.iloc[0]
    if skipped:
        assert (row["status"], row["skip_reason"]) == ("skipped", "warmup")
        assert result.trades.empty
    else:
        assert row["status"] == "traded"
        assert len(result.trades) == 1


def test_s9_2_wilder_atr_chains_through_gaps_in_the_data() -> None:
    """atr_period 3: TRs 2, 2, 4 (the 4 uses the previous close), first ATR = 8/3 usable from session 5."""
    days = sessions_from("2024-03-04", 10)
    picked = [days[i] for i in (0, 1, 2, 7, 8, 9)]  # sessions 3 -> 7 leave a gap of four sessions
    hlc = [
        (101.0, 99.0, 100.0),
        (102.0, 100.0, 101.0),
        (103.0, 101.5, 102.0),
        (101.0, 98.0, 99.0),
        (100.0, 99.0, 99.5),
    ]
    hlc.append((100.0, 99.0, 99.5))
    sessions = [(d.date(), [("09:30", c, h, lo, c, 1000)]) for d, (h, lo, c) in zip(picked, hlc, strict=True)]
    result = run({"trade.stop_mode": "atr", "orb.atr_period": 3}, sessions)
    rows = result.sessions.reset_index(drop=True)
    assert list(rows["status"][:4]) == ["skipped"] * 4
    assert list(rows["skip_reason"][:4]) == ["warmup"] * 4
    assert rows["atr"][4] == approx(8 / 3)
    # session 6: TR = max(1, |100 - 99|, |99 - 99|) = 1 -> (8/3 * 2 + 1) / 3 = 19/9
    assert rows["atr"][5] == approx(19 / 9)
    assert list(rows["status"][4:]) == ["no_signal", "no_signal"]


@pytest.mark.parametrize(
    ("last_range", "or_minutes", "or_high"),
    [(1.0, 2, 101.0), (2.0, 3, 101.5), (4.0, 4, 102.0)],
    ids=["short_ratio_0.76", "base_ratio_1.0", "long_ratio_1.34"],
)
def test_s2_adaptive_or_length(last_range, or_minutes, or_high) -> None:
    """21 prior sessions: 16 of range 2, then 5 of `last_range`. ATR(20) = mean of the 20 TRs;
    ATR(5) = 2 * 0.8**5 + r * (1 - 0.8**5). r=1: 1.32768 / 1.75 = 0.76 < 0.8 -> short;
    r=2: ratio 1 -> base; r=4: 3.34464 / 2.5 = 1.34 > 1.2 -> long."""
    ranges = [2.0] * 16 + [last_range] * 5
    prior = warmup(D, 21, hlc=[(100 + r / 2, 100 - r / 2, 100.0) for r in ranges])
    today = day(
        ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),
        ("09:31", 100.5, 100.8, 100.2, 100.5, 1000),  # the short OR (2 min) ends here: high 101
        ("09:32", 100.5, 101.5, 100.3, 100.6, 1000),  # the base OR (3 min) ends here: high 101.5
        ("09:33", 100.6, 102.0, 100.4, 100.7, 1000),  # the long OR (4 min) ends here: high 102
        ("09:34", 100.7, 100.8, 100.6, 100.7, 1000),
        ("09:35", 100.7, 100.8, 100.6, 100.7, 1000),
    )
    overrides = {"orb.adaptive": True, "orb.short_minutes": 2, "orb.base_minutes": 3, "orb.long_minutes": 4}
    result = run(overrides, prior + today, start=D)
    row = result.sessions.iloc[-1]
    assert int(row["or_minutes"]) == or_minutes
    assert row["or_high"] == approx(or_high)
    assert row["or_low"] == approx(100.0)


VALID_OR = [
    ("09:30", 100.0, 101.0, 100.0, 100.5, 1000),  # low == open is valid
    ("09:31", 100.5, 100.8, 100.2, 100.5, 1000),
]


@pytest.mark.parametrize(
    ("or_rows", "valid"),
    [
        (VALID_OR, True),
        (VALID_OR[:1], False),  # the 09:31 bar is missing
        ([VALID_OR[0], ("09:31", 100.5, float("nan"), 100.2, 100.5, 1000)], False),  # NaN high
        ([VALID_OR[0], ("09:31", 100.5, 100.8, 100.6, 100.5, 1000)], False),  # low 100.6 > close 100.5
        ([VALID_OR[0], ("09:31", 100.5, 100.4, 100.2, 100.5, 1000)], False),  # high 100.4 < open 100.5
        (
            [("09:30", 100.5, 101.0, 100.0, 100.5, 0), ("09:31", 100.5, 100.8, 100.2, 100.5, 0)],
            False,
        ),  # no volume
        ([*VALID_OR, ("09:31", 100.5, 100.8, 100.2, 100.5, 1000)], False),  # duplicate timestamp
    ],
    ids=["valid", "missing_bar", "nan", "low_above_close", "high_below_open", "zero_volume", "duplicate"],
)
def test_s2_validate_or_skips_bad_windows(or_rows, valid) -> None:
    prior = ("2024-03-04", [*VALID_OR, ("09:32", 100.5, 100.7, 100.3, 100.6, 1000)])  # a valid session first
    result = run({"orb.validate": True}, [prior, *day(*or_rows, E_LONG, *QUIET_TAIL)])
    assert result.sessions.iloc[0]["status"] == "no_signal"
    row = result.sessions.iloc[-1]
    if valid:
        assert row["status"] == "traded"
        assert len(result.trades) == 1
    else:
        assert row["status"] == "skipped"
        assert isinstance(row["skip_reason"], str) and row["skip_reason"] not in ("", "warmup")
        assert result.trades.empty


def test_result_columns_and_sessions_table() -> None:
    """Column contracts (run-format.md) and one row per session with status, trades and day_r."""
    zero_width = [("09:30", 100.0, 100.0, 100.0, 100.0, 1000), ("09:31", 100.0, 100.0, 100.0, 100.0, 1000)]
    sessions = [
        (
            "2024-03-05",
            [
                *OR_ROWS,
                E_LONG,
                ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),
                ("09:34", 100.2, 100.4, 100.1, 100.3, 1000),
            ],
        ),
        (
            "2024-03-06",
            [
                *OR_ROWS,
                ("09:32", 100.5, 100.7, 100.3, 100.6, 1000),
                ("09:33", 100.6, 100.7, 100.5, 100.6, 1000),
            ],
        ),
        (
            "2024-03-07",
            [
                *zero_width,
                ("09:32", 100.2, 100.5, 100.1, 100.4, 1000),
                ("09:33", 100.4, 100.5, 100.3, 100.4, 1000),
            ],
        ),
    ]
    result = run({}, sessions)
    assert list(result.trades.columns) == [*TRADE_COLUMNS, *(f"factor_{f}" for f in FACTOR_NAMES)]
    assert list(result.fills.columns) == list(FILL_COLUMNS)
    assert list(result.equity.columns) == list(EQUITY_COLUMNS)
    assert list(result.sessions.columns) == list(SESSION_COLUMNS)
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    rows = result.sessions
    assert [pd.Timestamp(d).date() for d in rows["session_date"]] == [
        pd.Timestamp(d).date() for d, _ in sessions
    ]
    assert list(rows["status"]) == ["traded", "no_signal", "skipped"]
    assert list(rows["trades"]) == [1, 0, 0]
    assert rows["day_r"].iloc[0] == approx(-1.0)
    assert rows["or_width"].iloc[0] == approx(1.0)
    trade = result.trades.iloc[0]
    assert trade["symbol"] == "TEST"
    assert pd.Timestamp(trade["session_date"]).date() == pd.Timestamp("2024-03-05").date()
    assert str(pd.Timestamp(trade["entry_time"]).tz) == "UTC"
    # equity at every fill and every session close, never marked to market
    assert result.equity["equity"].iloc[-1] == approx(CAPITAL - 1000.0)
    assert result.equity["cum_r"].iloc[-1] == approx(-1.0)
    assert result.equity["timestamp"].is_monotonic_increasing


def test_event_columns_name_symbol_and_session() -> None:
    result = run({}, LOSS_THEN_TOUCHES)
    ev = result.events
    assert set(ev["symbol"]) == {"TEST"}
    assert {pd.Timestamp(d).date() for d in ev["session_date"]} == {pd.Timestamp(D).date()}
    assert len(ev) == 2


def test_s5_mfe_mae_include_entry_bar() -> None:
    """Long 101.0, R 1: entry bar low 100.5 (MAE 0.5 R), later high 101.8 (MFE 0.8 R), eod 101.4."""
    rows = [
        *OR_ROWS,
        E_LONG,  # low 100.5
        ("09:33", 101.1, 101.8, 100.6, 101.5, 1000),  # high 101.8 (T1 102 not reached)
        ("09:34", 101.5, 101.6, 100.9, 101.4, 1000),  # last bar: eod 101.4
    ]
    trade = run({}, day(*rows)).trades.iloc[0]
    assert trade["exit_reason"] == "eod"
    assert trade["mfe_r"] == approx(0.8)
    assert abs(trade["mae_r"]) == approx(0.5)


def test_s3_start_excludes_warmup_sessions_from_results() -> None:
    sessions = [*warmup(D, 3), *day(*OR_ROWS, E_LONG, *QUIET_TAIL)]
    result = run({}, sessions, start=D)
    assert [pd.Timestamp(d).date() for d in result.sessions["session_date"]] == [pd.Timestamp(D).date()]
    assert len(result.trades) == 1
    assert all(pd.Timestamp(t) >= utc(D, "09:30") for t in result.equity["timestamp"])


def test_s9_4_short_mirror_of_same_bar_pessimistic() -> None:
    """Short 100.0 (stop 101, T1 99): a bar touching both the stop and T1 exits at the stop."""
    rows = [
        *OR_ROWS,
        E_SHORT,
        ("09:33", 99.9, 101.1, 98.9, 100.2, 1000),  # touches stop 101 and T1 99: pessimistic -> stop
        ("09:34", 100.2, 100.4, 100.1, 100.3, 1000),  # last bar
    ]
    trades = run({}, day(*rows)).trades
    assert len(trades) == 1
    t = trades.iloc[0]
    assert (t["side"], t["exit_reason"], bool(t["t1_filled"])) == ("short", "stop", False)
    assert t["exit_price"] == approx(101.0)
    assert t["r_multiple"] == approx(-1.0)


def test_s3_end_excludes_later_sessions() -> None:
    sessions = [(d, [*OR_ROWS, E_LONG, *QUIET_TAIL]) for d in ("2024-03-05", "2024-03-06")]
    result = EventLoopBacktest(config({}), symbol="TEST").run(
        bars(sessions), start=pd.Timestamp("2024-03-05").date(), end=pd.Timestamp("2024-03-05").date()
    )
    assert [pd.Timestamp(d).date() for d in result.sessions["session_date"]] == [pd.Timestamp(D).date()]
    assert [
        local.date()
        for local in result.trades["entry_time"].map(lambda t: pd.Timestamp(t).tz_convert("America/New_York"))
    ] == [pd.Timestamp(D).date()]


def test_s1_result_bars_are_the_regular_hours_bars() -> None:
    rows = [
        ("09:00", 100.5, 105.0, 95.0, 100.5, 5000),  # pre-market
        *OR_ROWS,
        E_LONG,
        ("15:59", 101.2, 101.5, 101.1, 101.4, 1000),
        ("16:00", 101.4, 110.0, 101.4, 109.0, 1000),  # after hours
    ]
    result = run({}, day(*rows))
    assert list(result.bars.index) == [utc(D, hhmm) for hhmm in ("09:30", "09:31", "09:32", "15:59")]


def test_s7_equity_at_each_session_close_is_capital_plus_realized_net() -> None:
    """Two sessions: -1007 net on the first (commission 0.0035), nothing on the second."""
    sessions = [
        (
            "2024-03-05",
            [
                *OR_ROWS,
                E_LONG,
                ("09:33", 101.0, 101.05, 99.9, 99.95, 1000),
                ("09:34", 100.2, 100.4, 100.1, 100.3, 1000),
            ],
        ),
        (
            "2024-03-06",
            [
                *OR_ROWS,
                ("09:32", 100.5, 100.7, 100.3, 100.6, 1000),
                ("09:33", 100.6, 100.7, 100.5, 100.6, 1000),
            ],
        ),
    ]
    result = run({"costs.commission_per_share": 0.0035}, sessions)
    eq = result.equity
    local_day = eq["timestamp"].map(lambda t: pd.Timestamp(t).tz_convert("America/New_York").date())
    last_per_day = eq.groupby(local_day)["equity"].last()
    assert list(last_per_day.index) == [pd.Timestamp(d).date() for d, _ in sessions]
    assert list(last_per_day) == [approx(CAPITAL - 1007.0), approx(CAPITAL - 1007.0)]
    fill_times = set(result.fills["time"].map(pd.Timestamp))
    assert fill_times <= set(eq["timestamp"].map(pd.Timestamp))


def test_s9_15_or_candle_entry_bar_must_be_before_cutoff() -> None:
    rows = [
        ("09:30", 100.2, 101.0, 100.0, 100.5, 1000),  # OR bar 1 opens 100.2
        ("09:31", 100.5, 100.9, 100.3, 100.8, 1000),  # OR bar 2 closes 100.8: long
        ("09:32", 100.75, 100.9, 100.6, 100.8, 1000),  # entry bar at the cutoff 09:32: no entry
        ("09:33", 100.8, 101.0, 100.7, 100.95, 1000),  # last bar
    ]
    result = run({"entry.mode": "or_candle", "entry.cutoff": "09:32"}, day(*rows))
    assert result.trades.empty
    assert set(result.events["reason"]) <= {"cutoff"}


# ---- what the views read instead of re-deriving: trigger levels and the breakeven move


# fmt: off
@pytest.mark.parametrize(
    ("overrides", "sessions", "long_trigger", "short_trigger"),
    [
        ({}, day(*OR_ROWS, E_LONG, *QUIET_TAIL), 101.0, 100.0),  # OR 101 / 100, no buffer
        ({"entry.buffer_fixed": 0.25}, day(*OR_ROWS, *QUIET_TAIL), 101.25, 99.75),  # OR +/- 0.25
        # ATR(14) = 2.0 on D: OR +/- 0.125 * 2.0
        ({"entry.buffer_atr": 0.125}, [*ATR_WARMUP, *day(*OR_ROWS, *QUIET_TAIL)], 101.25, 99.75),
        # zero-width OR at 100 (skipped after the levels exist): both levels at 100
        ({}, day(("09:30", 100.0, 100.0, 100.0, 100.0, 1000), ("09:31", 100.0, 100.0, 100.0, 100.0, 1000),
                 *QUIET_TAIL), 100.0, 100.0),
    ],
    ids=["plain", "buffer_fixed", "buffer_atr", "zero_width_skipped"],
)
# fmt: on
def test_s3_sessions_table_holds_the_trigger_levels(overrides, sessions, long_trigger, short_trigger) -> None:
    row = run(overrides, sessions).sessions.iloc[-1]
    assert row["long_trigger"] == approx(long_trigger)
    assert row["short_trigger"] == approx(short_trigger)


def test_s3_trigger_levels_are_nan_when_skipped_before_they_exist() -> None:
    """buffer_atr needs ATR(14); without prior sessions the session is skipped (warmup), no level exists."""
    row = run({"entry.buffer_atr": 0.125}, day(*OR_ROWS, E_LONG, *QUIET_TAIL)).sessions.iloc[0]
    assert (row["status"], row["skip_reason"]) == ("skipped", "warmup")
    assert pd.isna(row["long_trigger"]) and pd.isna(row["short_trigger"])


# fmt: off
@pytest.mark.parametrize(
    ("overrides", "rows", "breakeven_time"),
    [
        (  # T1 filled at 09:33: the breakeven stop applies from the 09:34 bar
            {},
            [*OR_ROWS,
             E_LONG,                                          # long 101.0
             ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),    # T1 102: 500 shares
             ("09:34", 102.0, 102.1, 100.9, 101.0, 1000),     # breakeven 101: 500 exit at 101.0
             ("09:35", 100.95, 100.98, 100.8, 100.9, 1000)],  # last bar, quiet
            "09:34",
        ),
        (  # short mirror
            {},
            [*OR_ROWS,
             E_SHORT,                                         # short 100.0
             ("09:33", 99.9, 99.95, 98.9, 99.0, 1000),        # T1 99: 500 shares
             ("09:34", 99.0, 100.1, 98.8, 100.0, 1000),       # breakeven 100: 500 exit at 100.0
             ("09:35", 100.1, 100.2, 100.05, 100.1, 1000)],   # last bar, quiet
            "09:34",
        ),
        (  # a T1 leg of 0 shares does not fill but reaching T1 still moves the stop (9.8)
            {"risk.risk_per_trade": 0.00001},
            [*OR_ROWS,
             E_LONG,                                          # long 101.0, 1 share
             ("09:33", 101.1, 102.1, 101.05, 102.0, 1000),    # reaches T1 102: no fill
             ("09:34", 102.0, 102.05, 100.9, 101.0, 1000),    # breakeven 101: exit at 101.0
             ("09:35", 100.95, 100.98, 100.8, 100.9, 1000)],  # last bar, quiet
            "09:34",
        ),
        (  # full stop before T1: the stop never moved
            {},
            [*OR_ROWS,
             E_LONG,                                          # long 101.0
             ("09:33", 101.0, 101.05, 99.95, 100.5, 1000),    # stop 100
             ("09:34", 100.5, 100.6, 100.4, 100.5, 1000)],    # last bar
            None,
        ),
        (  # T1 on the session's last bar: the rest exits at the close, no bar under the breakeven stop
            {},
            [*OR_ROWS,
             E_LONG,                                          # long 101.0
             ("09:33", 101.1, 101.5, 101.0, 101.4, 1000),     # inside
             ("09:34", 101.4, 102.1, 101.3, 101.8, 1000)],    # last bar: T1 102 for 500, eod 101.8
            None,
        ),
    ],
    ids=["long", "short", "zero_share_t1", "stopped_before_t1", "t1_on_last_bar"],
)
# fmt: on
def test_s9_6_trades_table_holds_the_breakeven_move(overrides, rows, breakeven_time) -> None:
    trades = run(overrides, day(*rows)).trades
    assert len(trades) == 1
    got = trades["breakeven_time"].iloc[0]
    if breakeven_time is None:
        assert pd.isna(got)
    else:
        assert pd.Timestamp(got) == ts(breakeven_time, D)
    assert str(trades["breakeven_time"].dtype) == "datetime64[ns, UTC]"
