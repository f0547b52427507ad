"""Hypothesis properties of EventLoopBacktest over random-walk sessions and random configs (strategy.md 1-8).

Sessions are short (the session's last bar is the last bar present before the close, strategy.md 5.5);
prices sit on a 0.05 grid so levels are touched exactly as often as crossed. Some sessions lose bars,
some get a bar stamped close - 1 min and bars after the close (which the engine must ignore).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from candles import TZ, sessions_from
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from orb.config import hhmm_minutes, load_config, with_overrides
from orb.engine import EventLoopBacktest
from orb.sessions import schedule

GRID = 0.05
SETTINGS = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIRST_DAYS = (
    "2024-03-04",
    "2024-11-25",
    "2024-07-01",
)  # the last two hold the 13:00 closes of 11-29 and 07-03


def make_bars(seed: int, first_day: str, n_sessions: int, n_bars: int) -> pd.DataFrame:
    """Random-walk 1m bars (always valid OHLC) for `n_sessions` XNYS sessions from `first_day`."""
    rng = np.random.default_rng(seed)
    days = sessions_from(first_day, n_sessions)
    sched = schedule(days[0], days[-1])
    stamps, rows = [], []
    close = 100.0
    for day in days:
        start = pd.Timestamp(f"{day.date()} 09:30").tz_localize(TZ).tz_convert("UTC")
        session_close = sched.loc[day, "close"]
        offsets = list(range(n_bars))
        if rng.random() < 0.3:  # a missing bar or two
            for _ in range(rng.integers(1, 3)):
                offsets.remove(offsets[rng.integers(0, len(offsets))])
        minutes = [start + pd.Timedelta(minutes=m) for m in offsets]
        if rng.random() < 0.4:  # the bar stamped close - 1 min, then two after-hours bars
            minutes += [
                session_close - pd.Timedelta(minutes=1),
                session_close,
                session_close + pd.Timedelta(minutes=1),
            ]
        close += GRID * int(rng.integers(-10, 11)) if rng.random() < 0.5 else 0.0  # overnight gap
        for ts in minutes:
            o = close + GRID * int(rng.integers(-1, 2)) * (rng.random() < 0.2)
            c = o + GRID * int(rng.integers(-4, 5))
            h = max(o, c) + GRID * int(rng.integers(0, 4))
            lo = min(o, c) - GRID * int(rng.integers(0, 4))
            vol = 0 if rng.random() < 0.03 else int(rng.integers(100, 5000))
            stamps.append(ts)
            rows.append((round(o, 2), round(h, 2), round(lo, 2), round(c, 2), vol))
            close = round(c, 2)
    arr = np.array([r[:4] for r in rows], dtype="float64")
    return pd.DataFrame(
        {
            "open": arr[:, 0],
            "high": arr[:, 1],
            "low": arr[:, 2],
            "close": arr[:, 3],
            "volume": np.array([r[4] for r in rows], dtype="int64"),
        },
        index=pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns"),
    )


@st.composite
def markets(draw) -> pd.DataFrame:
    return make_bars(
        draw(st.integers(0, 2**32 - 1)),
        draw(st.sampled_from(FIRST_DAYS)),
        draw(st.integers(3, 6)),
        draw(st.integers(10, 40)),
    )


OVERRIDES = st.fixed_dictionaries(
    {
        "orb.base_minutes": st.sampled_from([1, 2, 3, 5]),
        "orb.atr_period": st.just(2),
        "orb.min_width_atr": st.sampled_from([None, 0.1]),
        "orb.max_width_atr": st.sampled_from([None, 5.0]),
        "orb.validate": st.booleans(),
        "entry.mode": st.sampled_from(["stop", "close", "or_candle"]),
        "entry.buffer_fixed": st.sampled_from([0.0, 0.05]),
        "entry.buffer_atr": st.sampled_from([0.0, 0.05]),
        "entry.cutoff": st.sampled_from(["09:50", "15:00"]),
        "confluence.enabled": st.booleans(),
        "confluence.required": st.sampled_from([0, 1, 2]),
        "confluence.weak_trend_required": st.just(3),
        "confluence.rel_volume.lookback_sessions": st.just(2),
        "confluence.price_action.pivot_len": st.integers(1, 3),
        "confluence.adx.enabled": st.booleans(),
        "confluence.adx.period": st.just(2),
        "trade.stop_mode": st.sampled_from(["or_opposite", "atr", "atr_capped"]),
        "trade.stop_buffer": st.sampled_from([0.0, 0.05]),
        "trade.atr_stop_mult": st.sampled_from([0.3, 0.8]),
        "trade.partials": st.booleans(),
        "trade.t2_pct": st.sampled_from([0.0, 0.25]),
        "trade.same_bar": st.sampled_from(["pessimistic", "ohlc_path"]),
        "trade.be_buffer": st.sampled_from([0.0, 0.02]),
        "governance.max_signals_per_day": st.integers(1, 3),
        "governance.lockout_after_losses": st.integers(0, 2),
        "governance.max_daily_loss_r": st.sampled_from([None, 1.0, 3.0]),
        "risk.risk_per_trade": st.sampled_from([0.01, 0.00002]),
        "risk.max_leverage": st.sampled_from([1.0, 4.0]),
        "costs.slippage_per_share": st.sampled_from([0.0, 0.01]),
        "costs.commission_per_share": st.sampled_from([0.0, 0.0035]),
    }
)


def run(overrides, bars):
    cfg = with_overrides(load_config(), overrides)
    return cfg, EventLoopBacktest(cfg, symbol="PROP").run(bars)


def local_date(ts) -> object:
    return pd.Timestamp(ts).tz_convert(TZ).date()


def last_regular_bar(bars: pd.DataFrame) -> dict:
    """Session date -> timestamp of its last bar inside regular hours (strategy.md 5.5)."""
    days = sorted({local_date(t) for t in bars.index})
    sched = schedule(days[0], days[-1])
    out = {}
    for day, open_, close in zip(sched.index, sched["open"], sched["close"], strict=True):
        inside = bars.index[(bars.index >= open_) & (bars.index < close)]
        if len(inside):
            out[day.date()] = inside.max()
    return out


@SETTINGS
@given(bars=markets(), overrides=OVERRIDES)
def test_entries_wait_for_the_or_and_positions_never_leave_their_session(bars, overrides) -> None:
    cfg, result = run(overrides, bars)
    trades = result.trades.sort_values("entry_time", kind="stable")
    last_bar = last_regular_bar(bars)
    cutoff = hhmm_minutes(cfg.entry.cutoff)
    previous_exit = None
    for t in trades.itertuples(index=False):
        entry, exit_ = pd.Timestamp(t.entry_time), pd.Timestamp(t.exit_time)
        day = local_date(entry)
        session_open = pd.Timestamp(f"{day} 09:30").tz_localize(TZ)
        assert int(t.or_minutes) == cfg.orb.base_minutes
        assert entry >= session_open + pd.Timedelta(minutes=cfg.orb.base_minutes), (
            "entry before the OR is final"
        )
        local_entry = entry.tz_convert(TZ)
        if cfg.entry.mode.value != "close":  # close mode fills on the bar after the (pre-cutoff) signal bar
            assert local_entry.hour * 60 + local_entry.minute < cutoff, "entry at or after the cutoff"
        assert local_date(exit_) == day, "position held past its session"
        assert entry <= exit_ <= last_bar[day], "exit after the session's last bar"
        assert entry < last_bar[day], "entry on the session's last bar"
        if previous_exit is not None:
            assert entry > previous_exit, "a new entry before the bar after the previous exit"
        previous_exit = exit_
        assert t.shares >= 1
        assert 0 <= t.holding_minutes <= (exit_ - entry).total_seconds() / 60 + cfg.data.interval_minutes
        assert t.exit_reason in {"stop", "breakeven", "target", "eod"}
    per_session = trades.groupby(trades["entry_time"].map(local_date)).size()
    assert (per_session <= cfg.governance.max_signals_per_day).all()


@SETTINGS
@given(bars=markets(), overrides=OVERRIDES)
def test_equity_change_equals_fills_pnl(bars, overrides) -> None:
    cfg, result = run(overrides, bars)
    trades, fills = result.trades, result.fills
    capital = cfg.risk.initial_capital
    final = result.equity["equity"].iloc[-1] if len(result.equity) else capital
    assert final - capital == pytest.approx(trades["net_pnl"].sum(), abs=1e-6)
    if len(trades):
        assert result.equity["cum_r"].iloc[-1] == pytest.approx(trades["r_multiple"].sum(), abs=1e-9)
    assert set(fills["trade_id"]) == set(trades["trade_id"])
    for t in trades.itertuples(index=False):
        legs = fills[fills["trade_id"] == t.trade_id]
        entry = legs[legs["kind"] == "entry"]
        exits = legs[legs["kind"] != "entry"]
        assert len(entry) == 1
        assert entry["price"].iloc[0] == pytest.approx(t.entry_price, abs=1e-12)
        assert int(entry["shares"].iloc[0]) == t.shares
        assert int(exits["shares"].sum()) == t.shares, "exit legs must close the whole position"
        assert (exits["shares"] > 0).all(), "a 0-share leg must not fill (strategy.md 9.8)"
        direction = 1 if t.side == "long" else -1
        gross = float(((exits["price"] - t.entry_price) * exits["shares"] * direction).sum())
        assert gross == pytest.approx(t.gross_pnl, abs=1e-6)
        assert legs["commission"].sum() == pytest.approx(t.commission, abs=1e-9)
        assert legs["commission"].to_numpy() == pytest.approx(
            legs["shares"].to_numpy() * cfg.costs.commission_per_share, abs=1e-9
        )
        assert t.net_pnl == pytest.approx(t.gross_pnl - t.commission, abs=1e-6)
        assert t.initial_risk == pytest.approx(t.r_per_share * t.shares, rel=1e-12)
        assert t.r_multiple == pytest.approx(t.net_pnl / t.initial_risk, rel=1e-9)
        times = legs["time"].map(pd.Timestamp)
        assert times.min() == pd.Timestamp(t.entry_time) and times.max() == pd.Timestamp(t.exit_time)


@SETTINGS
@given(bars=markets(), overrides=OVERRIDES, data=st.data())
def test_truncating_the_data_keeps_earlier_decisions(bars, overrides, data) -> None:
    k = data.draw(st.integers(2, len(bars) - 1), label="last kept bar")
    cut, before_cut = bars.index[k], bars.index[k - 1]
    _, full = run(overrides, bars)
    _, part = run(overrides, bars.iloc[: k + 1])

    def done_before(trades: pd.DataFrame) -> pd.DataFrame:
        kept = trades[trades["exit_time"].map(pd.Timestamp) < cut]
        return kept.drop(columns="trade_id").reset_index(drop=True)

    def events_before(events: pd.DataFrame) -> pd.DataFrame:
        return events[events["time"].map(pd.Timestamp) < before_cut].reset_index(drop=True)

    pd.testing.assert_frame_equal(
        done_before(part.trades), done_before(full.trades), check_exact=True, check_dtype=False
    )
    pd.testing.assert_frame_equal(
        events_before(part.events), events_before(full.events), check_exact=True, check_dtype=False
    )


@settings(max_examples=examples(25), deadline=None)
@given(bars=markets(), overrides=OVERRIDES)
def test_same_input_same_output(bars, overrides) -> None:
    _, first = run(overrides, bars)
    _, second = run(overrides, bars.copy())
    for name in ("trades", "fills", "equity", "sessions", "events", "bars"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_exact=True)
