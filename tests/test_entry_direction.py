"""strategy.md 11: `entry.direction` and open-ended exits (`trade.target_r: null`), as candle tables.

The config and the candle conventions are those of test_engine_scenarios.py (2-minute OR high 101 /
low 100 on 1m bars, confluence off, or_opposite stops, no costs, 100,000 equity at 1% risk: a long at
101 or a short at 100 risks 1.00 per share and takes 1000 shares). Every row is New York local time.
"""

from __future__ import annotations

import math

import pytest
from test_engine_scenarios import E_LONG, E_SHORT, OR_ROWS, Scenario, T, check, day, run

from orb.config import load_config, with_overrides
from orb.errors import ConfigError

UP_OR = [
    ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # first OR bar opens 100.5; OR high 101, low 100
    ("09:31", 100.5, 100.8, 100.2, 100.7, 1000),  # last OR bar closes 100.7 > 100.5: an up candle (long only)
]
DOWN_OR = [
    ("09:30", 100.5, 101.0, 100.0, 100.5, 1000),  # first OR bar opens 100.5
    (
        "09:31",
        100.5,
        100.8,
        100.2,
        100.3,
        1000,
    ),  # last OR bar closes 100.3 < 100.5: a down candle (short only)
]
DOJI_OR = OR_ROWS  # first open 100.5, last OR close 100.5: a doji, no side allowed
TAIL = [
    ("09:33", 100.2, 100.4, 100.1, 100.3, 1000),  # inside both levels, touches neither
    ("09:34", 100.3, 100.4, 100.2, 100.3, 1000),  # the session's last bar
]
SHORT_THEN_LONG = [
    E_SHORT,  # 09:32: crosses lower 100 from above (short trigger touched, would fill at 100.0)
    ("09:33", 99.9, 100.2, 99.8, 100.1, 1000),  # back inside: long stays armed (close 100.1 <= 101)
    ("09:34", 100.6, 101.2, 100.5, 101.1, 1000),  # crosses upper 101: long trigger touched at 101.0
    ("09:35", 101.1, 101.3, 101.0, 101.2, 1000),  # the session's last bar: eod at 101.2
]
BOTH_SIDES = ("09:32", 100.5, 101.2, 99.8, 100.4, 1000)  # touches upper 101 and lower 100 on one bar
NO_TARGET = {"trade.partials": False, "trade.target_r": None}

# fmt: off
SCENARIOS = [
    Scenario(
        "s11_1_both_trades_the_short_breakout",  # control for the next one: the short exists
        day(*OR_ROWS, E_SHORT, *TAIL),   # short 100.0 at 09:32; 09:34 last bar: eod at 100.3
        [T("short", "09:32", 100.0, "09:34", 100.3, "eod", 1000)],
    ),
    Scenario(
        "s11_1_long_only_ignores_the_short_breakout_without_event",
        day(*OR_ROWS, E_SHORT, *TAIL),   # the short side is never armed: no trade and no event
        [],
        overrides={"entry.direction": "long"},
        session={"status": "no_signal", "trades": 0},
    ),
    Scenario(
        "s11_1_long_only_takes_the_later_long",
        day(*OR_ROWS, *SHORT_THEN_LONG),  # 09:32 short ignored; 09:34 long 101.0, eod 09:35 at 101.2
        [T("long", "09:34", 101.0, "09:35", 101.2, "eod", 1000)],
        overrides={"entry.direction": "long"},
    ),
    Scenario(
        "s11_1_short_only_ignores_the_later_long",
        day(*OR_ROWS, *SHORT_THEN_LONG),  # 09:32 short 100.0 (stop 101); 09:34 high 101.2 stops it at 101.0
        [T("short", "09:32", 100.0, "09:34", 101.0, "stop", 1000)],
        overrides={"entry.direction": "short"},
    ),
    Scenario(
        "s11_1_both_sides_touched_is_ambiguous_under_both",  # control for the next one
        day(*OR_ROWS, BOTH_SIDES, *TAIL),
        [],
        [("09:32", "long", "ambiguous_bar"), ("09:32", "short", "ambiguous_bar")],
    ),
    Scenario(
        "s11_1_ambiguous_bar_counts_allowed_sides_only",
        day(*OR_ROWS,
            BOTH_SIDES,                  # long only: just the long is armed and touched -> long 101.0;
            *TAIL),                      # entry bar low 99.8 <= stop 100: stop at 100.0 on the entry bar
        [T("long", "09:32", 101.0, "09:32", 100.0, "stop", 1000)],
        overrides={"entry.direction": "long"},
    ),
    Scenario(
        "s11_1_or_candle_direction_up_allows_only_long",
        day(*UP_OR, *SHORT_THEN_LONG),   # up candle: 09:32 short ignored; 09:34 long 101.0, eod at 101.2
        [T("long", "09:34", 101.0, "09:35", 101.2, "eod", 1000)],
        overrides={"entry.direction": "or_candle"},
    ),
    Scenario(
        "s11_1_or_candle_direction_down_allows_only_short",
        day(*DOWN_OR, *SHORT_THEN_LONG),  # down candle: short 100.0 at 09:32, stopped 09:34 at 101.0
        [T("short", "09:32", 100.0, "09:34", 101.0, "stop", 1000)],
        overrides={"entry.direction": "or_candle"},
    ),
    Scenario(
        "s11_1_or_candle_direction_doji_allows_no_side",
        day(*DOJI_OR, *SHORT_THEN_LONG),  # doji: both breakouts ignored, no event
        [],
        overrides={"entry.direction": "or_candle"},
        session={"status": "no_signal", "trades": 0},
    ),
    Scenario(
        "s11_1_or_candle_direction_uses_the_bars_present_in_the_window",
        day(("09:31", 100.2, 101.0, 100.0, 100.7, 1000),  # the only OR bar present: open 100.2 < close 100.7
            *SHORT_THEN_LONG),                           # up candle: the long at 09:34 only
        [T("long", "09:34", 101.0, "09:35", 101.2, "eod", 1000)],
        overrides={"entry.direction": "or_candle"},
    ),
    Scenario(
        "s11_1_close_mode_long_only_ignores_the_short_signal",
        day(*OR_ROWS,
            ("09:32", 100.4, 100.5, 99.7, 99.8, 1000),   # close 99.8 < lower 100: a short signal, not allowed
            ("09:33", 99.8, 100.4, 99.7, 100.3, 1000),   # back inside
            ("09:34", 100.4, 101.3, 100.3, 101.2, 1000),  # close 101.2 > upper 101: long signal
            ("09:35", 101.3, 101.5, 101.2, 101.4, 1000),  # long at the open 101.3: R 1.3, 769 shares
            ("09:36", 101.4, 101.6, 101.3, 101.5, 1000)),  # last bar: eod at 101.5
        [T("long", "09:35", 101.3, "09:36", 101.5, "eod", 769)],
        overrides={"entry.mode": "close", "entry.direction": "long"},
    ),
    Scenario(
        "s11_1_disallowed_side_past_the_cutoff_records_no_event",
        day(*OR_ROWS, E_SHORT, *TAIL),   # the short touch would be a `cutoff` event; long only: nothing
        [],
        overrides={"entry.direction": "long", "entry.cutoff": "09:32"},
    ),
    Scenario(
        "s11_1_allowed_side_past_the_cutoff_still_records_its_event",  # control for the previous one
        day(*OR_ROWS, E_SHORT, *TAIL),
        [],
        [("09:32", "short", "cutoff")],
        overrides={"entry.direction": "short", "entry.cutoff": "09:32"},
    ),
    # ---- 11.2: no target
    Scenario(
        "s11_2_no_target_long_runs_to_the_close",
        day(*OR_ROWS,
            E_LONG,                                       # long 101.0, stop 100
            ("09:33", 101.1, 103.5, 101.0, 103.4, 1000),  # 2.5 R: a 2 R target would have filled here
            ("09:34", 103.4, 105.2, 103.3, 105.0, 1000)),  # last bar: eod at 105.0 (4 R)
        [T("long", "09:32", 101.0, "09:34", 105.0, "eod", 1000, extra={"r_multiple": 4.0},
           fills=(("entry", "09:32", 101.0, 1000), ("eod", "09:34", 105.0, 1000)))],
        overrides=NO_TARGET,
    ),
    Scenario(
        "s11_2_no_target_short_exits_by_its_stop",
        day(*OR_ROWS,
            E_SHORT,                                      # short 100.0, stop 101
            ("09:33", 99.8, 99.9, 97.0, 97.5, 1000),      # 3 R in favour: no target to take
            ("09:34", 97.6, 101.1, 97.5, 100.9, 1000),    # high 101.1 >= stop 101: stop at 101.0
            ("09:35", 100.9, 101.0, 100.8, 100.9, 1000)),  # last bar
        [T("short", "09:32", 100.0, "09:34", 101.0, "stop", 1000, extra={"r_multiple": -1.0})],
        overrides=NO_TARGET,
    ),
]
# fmt: on


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(sc: Scenario) -> None:
    check(sc)


def test_no_target_leaves_target_price_null_and_the_legs_empty() -> None:
    result = run(NO_TARGET, day(*OR_ROWS, E_LONG, *TAIL))
    row = result.trades.iloc[0]
    assert math.isnan(row["target_price"]) and math.isnan(row["t1_price"]) and math.isnan(row["t2_price"])
    assert list(result.fills["kind"]) == ["entry", "eod"]  # TAIL never reaches the stop 100
    assert row["exit_reason"] == "eod" and row["exit_price"] == 100.3


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"trade.target_r": None}, "trade.target_r"),  # partials default true
        ({"entry.mode": "or_candle", "entry.direction": "long"}, "entry.direction"),
        ({"entry.mode": "or_candle", "entry.direction": "or_candle"}, "entry.direction"),
        ({"entry.direction": "up"}, "entry.direction"),
    ],
)
def test_config_errors_name_the_key(overrides, key) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        with_overrides(load_config(), overrides)


def test_direction_defaults_to_both_and_or_candle_mode_accepts_both() -> None:
    cfg = with_overrides(
        load_config(), {"entry.mode": "or_candle", "trade.partials": False, "trade.target_r": None}
    )
    assert cfg.entry.direction == "both" and cfg.trade.target_r is None
