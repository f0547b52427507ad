"""Massive through the `massive` client against a local fake: next_url paging, 429, auth, pacing, gaps."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from orb.config import load_config
from orb.data import load_symbol, make_vendor
from orb.data.vendor import _BUCKETS
from orb.errors import DataError, NoDataError, SourceUnavailableError
from orb.sessions import schedule
from tests.vendor_fake import FakeServer, MassiveFake, market_bars

FAST = {"data.massive.requests_per_minute": 60000.0, "data.warmup_sessions": 0}


@pytest.fixture
def massive(monkeypatch):
    fake = MassiveFake(key="TEST")
    server = FakeServer(fake)
    monkeypatch.setenv("MASSIVE_API_KEY", "TEST")
    monkeypatch.setenv("ORB_MASSIVE_URL", server.url)
    _BUCKETS.clear()
    yield fake, server
    server.close()


def load(symbol="SPY", start=date(2024, 3, 4), end=date(2024, 3, 8), cache_dir=None, **overrides):
    cfg = load_config(overrides={**FAST, **overrides})
    vendor = make_vendor("massive", cfg)
    item = load_symbol(
        symbol, config=cfg, start=start, end=end, source="massive", cache_dir=cache_dir, vendor=vendor
    )
    return item, vendor


def test_bars_equal_the_served_regular_hours_and_are_split_adjusted(massive):
    _, server = massive
    item, _ = load()
    expected = market_bars("SPY", date(2024, 3, 4), date(2024, 3, 8), extended=False)
    pd.testing.assert_frame_equal(item.bars, expected, check_freq=False)
    (_, path, query), *_ = server.seen
    assert path.startswith("/v2/aggs/ticker/SPY/range/1/minute/")
    assert query["adjusted"] == "true" and query["limit"] == "50000" and query["sort"] == "asc"
    assert item.adjustment == "split"


def test_raw_adjustment_asks_for_unadjusted_bars(massive):
    _, server = massive
    item, _ = load(**{"data.adjustment": "raw"})
    assert server.seen[0][2]["adjusted"] == "false" and item.adjustment == "raw"


def test_next_url_pages_are_followed_on_the_local_server(massive):
    fake, server = massive
    fake.page_size = 2000  # 5 sessions x 960 all-hours bars -> 3 pages
    item, _ = load()
    cursors = [q.get("cursor") for _, _, q in server.seen]
    assert cursors == [None, "2000", "4000"]  # next_url names api.massive.com, the client stays local
    assert len(item.bars) == 5 * 390


def test_minutes_without_trades_stay_absent(massive):
    fake, _ = massive
    original = fake.bars

    def gappy(symbol, start, end):
        out = original(symbol, start, end)
        return out.drop(pd.Timestamp("2024-03-05 15:00", tz="UTC"), errors="ignore")

    fake.bars = gappy
    item, _ = load()
    assert len(item.bars) == 5 * 390 - 1
    assert pd.Timestamp("2024-03-05 15:00", tz="UTC") not in item.bars.index


def test_a_429_is_waited_out_by_the_client(massive):
    fake, server = massive
    fake.fail_next(429, {"status": "ERROR", "error": "rate limit"}, {"Retry-After": "0"}, times=2)
    item, _ = load()
    assert len(server.seen) == 3 and len(item.bars) == 5 * 390


def test_429_beyond_the_retries_is_one_line_naming_the_plan_limit(massive):
    fake, _ = massive
    fake.fail_next(429, {"status": "ERROR", "error": "rate limit"}, {"Retry-After": "0"}, times=10)
    with pytest.raises(SourceUnavailableError, match=r"massive kept rate-limiting SPY .*free: 5"):
        load(**{"data.massive.retries": 1})


def test_bad_key_is_one_line_and_not_retried(massive, monkeypatch):
    _, server = massive
    monkeypatch.setenv("MASSIVE_API_KEY", "WRONG")
    with pytest.raises(DataError, match=r"massive refused the request for SPY \(ERROR: Unknown API Key\)"):
        load()
    assert len(server.seen) == 1


def test_polygon_key_is_accepted_and_missing_key_is_named(massive, monkeypatch):
    monkeypatch.delenv("MASSIVE_API_KEY")
    monkeypatch.setenv("POLYGON_API_KEY", "TEST")
    assert not load()[0].bars.empty
    monkeypatch.delenv("POLYGON_API_KEY")
    with pytest.raises(DataError, match="set MASSIVE_API_KEY"):
        load()


def test_unknown_symbol_is_no_data(massive):
    with pytest.raises(NoDataError, match="unknown to massive"):
        load("ZZZZ")


def test_the_free_plan_rate_is_respected_up_front(massive):
    """5 calls a minute: a long range (several 40-session windows) is paced, never answered 429."""
    from orb.data.vendor import TokenBucket

    now = [0.0]
    bucket = TokenBucket(5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(12):
        bucket.acquire()
    assert now[0] == pytest.approx((12 - bucket.capacity) * 12.0)  # 12 s per request beyond the burst
    _BUCKETS[("massive", 5.0)] = bucket
    _, server = massive
    sessions = len(schedule(date(2023, 1, 3), date(2023, 12, 29)))
    start = now[0]
    item, vendor = load(
        start=date(2023, 1, 3), end=date(2023, 12, 29), **{"data.massive.requests_per_minute": 5.0}
    )
    windows = -(-sessions // 40)
    assert vendor.calls == windows == len(server.seen)
    assert now[0] - start == pytest.approx(windows * 12.0)  # every call waited for its token
    assert len(item.bars) > 0
