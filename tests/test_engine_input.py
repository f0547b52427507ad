"""The engine on raw input that breaks the bar contract (strategy.md 2: OR data validation)."""

from __future__ import annotations

import pandas as pd

from orb.config import load_config, with_overrides
from orb.data.synthetic import generate_bars
from orb.engine import EventLoopBacktest


def test_out_of_order_and_duplicate_stamps_skip_only_their_sessions():
    bars = generate_bars("SPY", "2024-01-02", "2024-03-05", 1, 42)
    cfg = with_overrides(load_config(), {"orb.validate": True})
    clean = EventLoopBacktest(cfg, "SPY").run(bars).sessions.set_index("session_date")["skip_reason"]

    i = bars.index.get_indexer([pd.Timestamp("2024-02-01 14:31", tz="UTC")])[0]
    raw = pd.concat([bars.iloc[:i], bars.iloc[[i + 1, i]], bars.iloc[i + 2 :]])  # two OR bars swapped
    j = raw.index.get_indexer([pd.Timestamp("2024-02-05 14:35", tz="UTC")])[0]
    raw = pd.concat([raw.iloc[: j + 1], raw.iloc[[j]], raw.iloc[j + 1 :]])  # one OR bar twice
    got = EventLoopBacktest(cfg, "SPY").run(raw).sessions.set_index("session_date")["skip_reason"]

    changed = got.compare(clean)
    assert [str(d) for d in changed.index] == ["2024-02-01", "2024-02-05"]
    assert (changed["self"] == "duplicate_timestamp").all()


def test_without_validation_bad_stamps_are_repaired_not_skipped():
    bars = generate_bars("SPY", "2024-01-02", "2024-02-05", 1, 42)
    cfg = load_config()
    raw = pd.concat([bars.iloc[::-1], bars.iloc[:5]])  # reversed, plus five duplicates
    expected = EventLoopBacktest(cfg, "SPY").run(bars)
    got = EventLoopBacktest(cfg, "SPY").run(raw)
    pd.testing.assert_frame_equal(got.trades, expected.trades)
    pd.testing.assert_frame_equal(got.sessions, expected.sessions)
