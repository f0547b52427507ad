"""Synthetic bars: deterministic per session, calendar-true, valid OHLC, realistic shapes, fast."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orb.config import load_config
from orb.data import load_symbol, validate_symbol
from orb.data.bars import bars_sha256
from orb.data.synthetic import generate_bars, symbol_profile
from orb.errors import RequestError
from orb.sessions import schedule

NY = "America/New_York"
YEAR = (date(2024, 1, 2), date(2024, 12, 31))


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return generate_bars("SPY", *YEAR, 1, 42)


def daily(bars: pd.DataFrame) -> pd.DataFrame:
    days = bars.index.tz_convert(NY).date
    return bars.groupby(days).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        bars=("open", "size"),
    )


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_and_symbol_give_identical_bars(year):
    pd.testing.assert_frame_equal(generate_bars("SPY", *YEAR, 1, 42), year)


def test_seed_and_symbol_both_change_the_bars(year):
    assert bars_sha256(generate_bars("SPY", *YEAR, 1, 43)) != bars_sha256(year)
    qqq = generate_bars("QQQ", *YEAR, 1, 42)
    assert not np.allclose(
        qqq["close"].to_numpy() / qqq["close"].iloc[0], year["close"].to_numpy() / year["close"].iloc[0]
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 3, 1), date(2024, 3, 31)),
        (date(2024, 7, 3), date(2024, 7, 3)),
        (date(2024, 11, 1), date(2025, 1, 15)),
    ],
)
def test_a_sub_range_gives_bit_identical_bars_for_shared_sessions(year, start, end):
    part = generate_bars("SPY", start, end, 1, 42)
    shared = part[part.index <= year.index[-1]]
    pd.testing.assert_frame_equal(shared, year.loc[shared.index[0] : shared.index[-1]])


def test_bars_do_not_depend_on_pythons_hash_seed(year):
    code = (
        "from datetime import date; from orb.data.synthetic import generate_bars; "
        "from orb.data.bars import bars_sha256;"
        "print(bars_sha256(generate_bars('SPY', date(2024, 1, 2), date(2024, 12, 31), 1, 42)))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    assert out.stdout.strip() == bars_sha256(year)


# --- calendar and bar contract -----------------------------------------------------------------------


def test_bar_contract(year):
    assert year.index.name == "timestamp" and str(year.index.tz) == "UTC"
    assert year.index.is_monotonic_increasing and year.index.is_unique
    assert list(year.columns) == ["open", "high", "low", "close", "volume"]
    assert year.dtypes.tolist() == ["float64"] * 4 + ["int64"]
    assert (year["volume"] > 0).all()


def test_sessions_follow_the_xnys_calendar(year):
    sched = schedule(*YEAR)
    per_day = daily(year)
    assert [pd.Timestamp(d) for d in per_day.index] == list(sched.index)
    for holiday in (date(2024, 1, 15), date(2024, 3, 29), date(2024, 7, 4), date(2024, 12, 25)):
        assert holiday not in per_day.index
    early = {date(2024, 7, 3), date(2024, 11, 29), date(2024, 12, 24)}
    assert set(per_day.index[per_day["bars"] == 210]) == early
    assert (per_day.loc[[d for d in per_day.index if d not in early], "bars"] == 390).all()


def test_bars_are_regular_hours_bar_starts_across_dst(year):
    local = year.index.tz_convert(NY)
    minutes = local.hour * 60 + local.minute
    assert minutes.min() == 570 and minutes.max() == 959  # 09:30 .. 15:59 bar starts
    early = year[local.date == date(2024, 11, 29)]
    assert early.index[-1].tz_convert(NY).strftime("%H:%M") == "12:59"
    assert year.loc["2024-03-08"].index[0] == pd.Timestamp("2024-03-08 14:30", tz="UTC")
    assert year.loc["2024-03-11"].index[0] == pd.Timestamp("2024-03-11 13:30", tz="UTC")
    assert (year.index.second == 0).all()


def test_no_session_in_range_gives_empty_contract_frame():
    bars = generate_bars("SPY", date(2024, 1, 6), date(2024, 1, 7), 1, 42)  # a weekend
    assert bars.empty and bars.dtypes.tolist() == ["float64"] * 4 + ["int64"]


def test_invalid_interval_and_range_are_refused():
    with pytest.raises(ValueError, match="divide"):
        generate_bars("SPY", date(2024, 1, 2), date(2024, 1, 3), 7, 42)
    with pytest.raises(ValueError, match="cover"):
        generate_bars("SPY", date(2060, 1, 2), date(2060, 1, 3), 1, 42)


# --- prices -------------------------------------------------------------------------------------------


def test_ohlc_is_always_valid_and_in_cents(year):
    o, h, lo, c = (year[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    for values in (o, h, lo, c):
        assert np.allclose(values * 100, np.round(values * 100), atol=1e-6)


def test_bars_chain_inside_a_session_and_gap_between_sessions(year):
    same_session = year.index.tz_convert(NY).date[1:] == year.index.tz_convert(NY).date[:-1]
    assert (year["open"].to_numpy()[1:][same_session] == year["close"].to_numpy()[:-1][same_session]).all()
    per_day = daily(year)
    gaps = per_day["open"].to_numpy()[1:] / per_day["close"].to_numpy()[:-1] - 1
    assert (np.abs(gaps) < 0.05).all()
    assert (np.abs(gaps) > 0.001).mean() > 0.3  # overnight gaps are common, not zero


@pytest.mark.parametrize(("symbol", "level"), [("SPY", 470.0), ("QQQ", 400.0), ("IWM", 200.0)])
def test_known_symbols_trade_near_their_2024_level(symbol, level):
    bars = generate_bars(symbol, date(2024, 1, 2), date(2024, 1, 31), 1, 42)
    assert 0.9 * level < bars["open"].iloc[0] < 1.1 * level
    assert 0.75 * level < bars["close"].min() and bars["close"].max() < 1.25 * level


def test_other_symbols_get_a_stable_derived_level():
    profiles = {s: symbol_profile(s) for s in ("AAPL", "MSFT", "XYZ.B")}
    assert len({p.level for p in profiles.values()}) == 3
    assert all(20 <= p.level <= 640 for p in profiles.values())
    first = {
        s: generate_bars(s, date(2024, 1, 2), date(2024, 1, 2), 1, seed)["open"].iloc[0]
        for s in ("AAPL",)
        for seed in (1, 2)
    }
    assert all(0.8 * profiles["AAPL"].level < v < 1.2 * profiles["AAPL"].level for v in first.values())


# --- realistic shapes -----------------------------------------------------------------------------------


def _by_minute(year: pd.DataFrame, values: pd.Series) -> pd.Series:
    local = year.index.tz_convert(NY)
    full_days = daily(year)["bars"] == 390
    keep = np.isin(local.date, full_days.index[full_days])
    minute = (local.hour * 60 + local.minute - 570)[keep]
    return pd.Series(values.to_numpy()[keep]).groupby(minute).mean()


def test_intraday_volume_is_u_shaped(year):
    profile = _by_minute(year, year["volume"].astype(float))
    opening, midday, closing = profile[:30].mean(), profile[150:270].mean(), profile[360:].mean()
    assert opening > 2 * midday and closing > 1.5 * midday


def test_intraday_volatility_is_u_shaped(year):
    profile = _by_minute(year, (year["high"] - year["low"]) / year["close"])
    opening, midday, closing = profile[:30].mean(), profile[150:270].mean(), profile[360:].mean()
    assert opening > 1.5 * midday and closing > 1.2 * midday


def test_trend_days_and_range_days_both_occur(year):
    per_day = daily(year)
    body = (per_day["close"] - per_day["open"]).abs() / (per_day["high"] - per_day["low"])
    assert (body > 0.6).mean() > 0.1  # closes near an extreme: trend day
    assert (body < 0.25).mean() > 0.1  # round trip: range day


@pytest.mark.parametrize("minutes", [2, 5, 15, 30])
def test_coarser_intervals_aggregate_the_minute_bars(minutes):
    start, end = date(2024, 11, 27), date(2024, 12, 2)  # includes the 13:00 close of 2024-11-29
    minute = generate_bars("IWM", start, end, 1, 3)
    coarse = generate_bars("IWM", start, end, minutes, 3)
    grouped = minute.groupby(minute.index.floor(f"{minutes}min"))  # session opens are on the half hour
    expected = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    ).rename_axis("timestamp")
    pd.testing.assert_frame_equal(coarse, expected, check_freq=False)


# --- usable by the strategy, and fast -------------------------------------------------------------------


def test_default_orb_confluence_config_trades_on_synthetic_bars():
    from orb.engine import EventLoopBacktest

    config = load_config()
    loaded = load_symbol(
        "SPY", config=config, start=date(2024, 1, 2), end=date(2024, 3, 28), source="synthetic"
    )
    result = EventLoopBacktest(config, symbol="SPY").run(loaded.bars, start=date(2024, 1, 2))
    trades = result.trades
    assert len(trades) >= 20
    assert set(trades["side"]) == {"long", "short"}
    assert trades["r_multiple"].gt(0).any() and trades["r_multiple"].lt(0).any()


def test_load_symbol_adds_warm_up_sessions():
    config = load_config(overrides={"data.warmup_sessions": 5})
    loaded = load_symbol(
        "SPY", config=config, start=date(2024, 1, 8), end=date(2024, 1, 9), source="synthetic"
    )
    days = sorted(set(loaded.bars.index.tz_convert(NY).date))
    assert days[0] == date(2023, 12, 29) and days[-1] == date(2024, 1, 9) and len(days) == 7
    assert loaded.source == "synthetic" and loaded.warnings == ()


def test_a_second_call_with_the_calendar_and_daily_path_built_gives_the_same_year():
    first = generate_bars("MSFT", *YEAR, 1, 42)  # builds the calendar and the symbol's daily path
    bars = generate_bars("MSFT", *YEAR, 1, 42)
    assert len(bars) == 97_740  # speed: benchmarks/, not a timed test
    pd.testing.assert_frame_equal(bars, first)


# --- load_symbol argument checks (no data needed) -----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("spy", "SPY"), (" brk.b ", "BRK.B"), ("^gspc", "^GSPC"), ("ES=F", "ES=F"), ("BF-B", "BF-B")],
)
def test_valid_symbols_are_upper_cased(given, expected):
    assert validate_symbol(given) == expected


@pytest.mark.parametrize("bad", ["", "SP Y", "SPY;rm", "../etc", "SPY_1", "A" * 16])
def test_invalid_symbols_are_usage_errors_naming_the_symbol(bad):
    with pytest.raises(RequestError) as err:
        validate_symbol(bad)
    assert repr(bad) in str(err.value) and "\n" not in str(err.value)


def test_unknown_source_and_empty_ranges_are_usage_errors():
    config = load_config()
    with pytest.raises(RequestError, match="unknown data source 'csv'"):
        load_symbol("SPY", config=config, start=date(2024, 1, 2), end=date(2024, 1, 3), source="csv")
    with pytest.raises(RequestError, match="after"):
        load_symbol("SPY", config=config, start=date(2024, 1, 3), end=date(2024, 1, 2), source="synthetic")
    with pytest.raises(RequestError, match="no XNYS trading session between 2024-01-06 and 2024-01-07"):
        load_symbol("SPY", config=config, start=date(2024, 1, 6), end=date(2024, 1, 7), source="synthetic")
