"""The engine on real SPY minute bars (Jan and Mar 2011: a holiday and the DST switch of 2011-03-13).

The opening range of every session is recomputed here independently, from exchange-local clock times,
and every trade must lie inside its own session's regular hours.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.data import load_symbol
from orb.engine import EventLoopBacktest

REAL = Path(__file__).resolve().parent / "data"  # copies of ../shared/data/real (see its README)
PARQUET = REAL / "spy_1min_2011-01_2011-03_utc_barstart.parquet"
SHORT_WARMUP = {"orb.atr_period": 5, "confluence.rel_volume.lookback_sessions": 5}


@pytest.fixture(scope="module")
def spy_bars() -> pd.DataFrame:
    cfg = with_overrides(load_config(), {"data.file_timezone": "UTC"})
    loaded = load_symbol(
        "SPY",
        config=cfg,
        start=pd.Timestamp("2011-01-03").date(),
        end=pd.Timestamp("2011-03-31").date(),
        source="file",
        data_path=PARQUET,
    )
    return loaded.bars


def _expected_or(minutes: int) -> pd.DataFrame:
    """Max high / min low of the bars from 09:30 to 09:30 + N (exclusive), local time, from the raw file."""
    raw = pd.read_parquet(PARQUET).set_index("timestamp")
    local = raw.tz_convert("America/New_York")
    clock = local.index.hour * 60 + local.index.minute
    window = local[(clock >= 570) & (clock < 570 + minutes)]
    return window.groupby(window.index.date).agg(or_high=("high", "max"), or_low=("low", "min"))


@pytest.mark.parametrize("minutes", [5, 15, 30])
def test_or_equals_max_min_of_first_n_regular_hours_bars(spy_bars, minutes):
    cfg = with_overrides(load_config(), {**SHORT_WARMUP, "orb.base_minutes": minutes})
    sessions = EventLoopBacktest(cfg, "SPY").run(spy_bars).sessions
    expected = _expected_or(minutes)
    assert len(sessions) == 43 == len(expected)  # 43 sessions: 2011-01-17 (MLK day) is not one
    got = sessions.set_index("session_date")[["or_high", "or_low"]]
    pd.testing.assert_frame_equal(got, expected, check_names=False, check_index_type=False)
    assert (sessions["or_minutes"] == minutes).all()


def test_dst_week_opens_at_0930_local(spy_bars):
    """Before 2011-03-13 the open is 14:30 UTC, after it 13:30 UTC; entries never precede the final OR."""
    cfg = with_overrides(
        load_config(), {**SHORT_WARMUP, "confluence.enabled": False, "orb.min_width_atr": None}
    )
    trades = EventLoopBacktest(cfg, "SPY").run(spy_bars).trades
    local_entry = trades["entry_time"].dt.tz_convert("America/New_York")
    assert (local_entry.dt.hour * 60 + local_entry.dt.minute >= 570 + 15).all()
    utc_hours = set(
        trades.loc[trades["session_date"] > pd.Timestamp("2011-03-13").date(), "entry_time"].dt.hour
    )
    assert utc_hours and min(utc_hours) == 13  # 09:45 EDT is 13:45 UTC


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"entry.mode": "close", "trade.partials": False},
        {"entry.mode": "or_candle", "orb.base_minutes": 5, "confluence.enabled": False},
        {"orb.adaptive": True, "trade.stop_mode": "atr"},
    ],
    ids=["default", "close", "or_candle", "adaptive"],
)
def test_every_trade_lies_inside_its_session(spy_bars, overrides):
    cfg = with_overrides(load_config(), {**SHORT_WARMUP, **overrides})
    result = EventLoopBacktest(cfg, "SPY").run(spy_bars)
    trades = result.trades
    assert len(trades) > 0
    for col in ("entry_time", "exit_time"):
        local = trades[col].dt.tz_convert("America/New_York")
        assert (local.dt.date == trades["session_date"]).all()
        minutes = local.dt.hour * 60 + local.dt.minute
        assert ((minutes >= 570) & (minutes < 960)).all()
    assert (trades["exit_time"] >= trades["entry_time"]).all()
    fills = result.fills.merge(trades[["trade_id", "session_date"]], on="trade_id")
    assert (fills["time"].dt.tz_convert("America/New_York").dt.date == fills["session_date"]).all()
