"""The engine's shortcuts give what the plain computation gives: session assignment of sorted stamps,
local minutes from per-session UTC offsets, and MFE/MAE of all trades at once."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd

from orb.config import load_config
from orb.data.synthetic import generate_bars
from orb.engine import EventLoopBacktest
from orb.loop_scan import local_minutes
from orb.prepare import Prepared
from orb.sessions import assign_sessions, schedule

TZ = "America/New_York"


def _plain_minutes(ts_ns: np.ndarray) -> list[int]:
    local = pd.DatetimeIndex(ts_ns, tz="UTC").tz_convert(TZ)
    return (local.hour * 60 + local.minute).to_numpy().tolist()


def test_sorted_stamps_get_the_sessions_of_the_binary_search():
    sched = schedule(date(2024, 3, 4), date(2024, 3, 15), "XNYS")
    stamps = pd.date_range(
        "2024-03-04 13:00", "2024-03-16", freq="5min", tz="UTC"
    )  # opens and closes included
    stamps = stamps.append(stamps[::5]).sort_values()  # duplicates, and stamps outside every session
    sorted_pos = assign_sessions(stamps, sched)
    order = np.random.default_rng(3).permutation(len(stamps))
    unsorted_pos = np.empty_like(sorted_pos)
    unsorted_pos[order] = assign_sessions(stamps[order], sched)  # the searchsorted path
    assert np.array_equal(sorted_pos, unsorted_pos)
    assert (sorted_pos == -1).any() and len(np.unique(sorted_pos[sorted_pos >= 0])) == len(sched)


def test_sorted_stamps_match_the_binary_search_at_every_edge():
    """Stamps before the first open, after the last close, exactly at opens and closes, and in gaps;
    a schedule whose sessions overlap takes the binary search's answer (the later session)."""
    sched = schedule(date(2024, 7, 1), date(2024, 7, 12), "XNYS")  # 3 July closes early, 4 July none
    opens, closes = (pd.DatetimeIndex(sched[c]).as_unit("ns").asi8 for c in ("open", "close"))
    edges = np.concatenate((opens, closes, opens - 1, closes - 1, opens + 1, closes + 1))
    rng = np.random.default_rng(11)
    day = 86_400 * 10**9
    noise = rng.integers(opens[0] - 2 * day, closes[-1] + 2 * day, 400)
    overlapping = sched.assign(close=sched["close"] + pd.Timedelta(days=1))
    for table in (sched, overlapping, sched.iloc[:1]):
        for stamps in (np.sort(np.concatenate((edges, noise))), np.sort(noise)[:5], noise[:0]):
            index = pd.DatetimeIndex(stamps.view("M8[ns]")).tz_localize("UTC")
            order = rng.permutation(len(index))
            plain = np.empty(len(index), dtype=np.int64)
            plain[order] = assign_sessions(index[order], table) if len(index) > 1 else []
            if len(index) > 1:
                assert np.array_equal(assign_sessions(index, table), plain)


def test_local_minutes_match_tz_convert_across_dst_changes():
    bars = generate_bars("SPY", date(2024, 3, 1), date(2024, 3, 20), 1, 7)
    bars = pd.concat([bars, generate_bars("SPY", date(2024, 10, 28), date(2024, 11, 8), 1, 7)])
    p = EventLoopBacktest(load_config(), "SPY").prepare(bars)
    idx = np.arange(0, len(p.ts_ns), 13)
    assert local_minutes(p, idx, TZ) == _plain_minutes(p.ts_ns[idx])


def test_local_minutes_of_a_session_spanning_an_offset_change_are_converted():
    # Session 0 holds New York's 2024-03-10 02:00 jump (07:00 UTC); session 1 does not.
    first = pd.date_range("2024-03-10 05:00", "2024-03-10 09:00", freq="1min", tz="UTC")
    second = pd.date_range("2024-03-11 13:30", "2024-03-11 19:59", freq="1min", tz="UTC")
    ts = first.append(second).as_unit("ns").asi8
    ses = np.repeat([0, 1], [len(first), len(second)])
    p = Prepared(None, (), np.zeros(0), ts, ses, SimpleNamespace(starts=np.array([0, len(first)])), 0)
    idx = np.arange(len(ts))
    assert local_minutes(p, idx, TZ) == _plain_minutes(ts)
    assert local_minutes(p, idx[len(first) :], TZ) == _plain_minutes(ts[len(first) :])


def test_excursions_are_the_extremes_of_the_bars_while_open():
    cfg = load_config()
    p = EventLoopBacktest(cfg, "SPY").prepare(generate_bars("SPY", date(2023, 1, 2), date(2023, 6, 30), 1, 5))
    trades = EventLoopBacktest(cfg, "SPY").run_prepared(p).trades
    assert len(trades) > 20
    pos = pd.Index(p.ts_ns)
    _, h, lo, _, _ = p.arrays
    for t in trades.itertuples():
        a, b = pos.get_loc(t.entry_time.value), pos.get_loc(t.exit_time.value)
        hi, lw = h[a : b + 1].max(), lo[a : b + 1].min()
        fav, adv = (
            (hi - t.entry_price, lw - t.entry_price)
            if t.side == "long"
            else (t.entry_price - lw, t.entry_price - hi)
        )
        assert t.mfe_r == max(fav, 0.0) / t.r_per_share
        assert t.mae_r == min(adv, 0.0) / t.r_per_share
