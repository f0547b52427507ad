"""Alpaca through alpaca-py against a local fake: paging, Retry-After, auth, unknown symbol, cache, CLI."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from orb.config import load_config
from orb.data import load_symbol, make_vendor
from orb.data.vendor import _BUCKETS
from orb.errors import DataError, NoDataError, SourceUnavailableError
from orb.sessions import schedule
from tests.cli_helpers import one_error_line, run_cli, visible_runs
from tests.vendor_fake import NY, AlpacaFake, FakeServer, market_bars

FAST = {"data.alpaca.requests_per_minute": 60000.0, "data.warmup_sessions": 2}


@pytest.fixture
def alpaca(monkeypatch):
    fake = AlpacaFake()
    server = FakeServer(fake)
    monkeypatch.setenv("APCA_API_KEY_ID", "KEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "SECRET")
    monkeypatch.setenv("ORB_ALPACA_URL", server.url)
    _BUCKETS.clear()
    yield fake, server
    server.close()


def load(
    symbol="SPY", start=date(2024, 3, 4), end=date(2024, 3, 8), cache_dir=None, sleeps=None, **overrides
):
    cfg = load_config(overrides={**FAST, **overrides})
    vendor = make_vendor("alpaca", cfg, sleep=(sleeps.append if sleeps is not None else None))
    item = load_symbol(
        symbol, config=cfg, start=start, end=end, source="alpaca", cache_dir=cache_dir, vendor=vendor
    )
    return item, vendor


def rth(symbol, first, last):
    bars = market_bars(symbol, first, last, extended=False)
    return bars


def test_bars_follow_the_contract_and_equal_the_served_regular_hours(alpaca):
    fake, server = alpaca
    item, _ = load()
    first = schedule(date(2024, 2, 29), date(2024, 3, 8)).index[0].date()  # 2 warm-up sessions
    expected = rth("SPY", first, date(2024, 3, 8))
    pd.testing.assert_frame_equal(item.bars, expected, check_freq=False)
    assert item.source == "alpaca" and item.adjustment == "split"
    (method, path, query), *_ = server.seen
    assert (method, path) == ("GET", "/v2/stocks/bars")
    assert query["feed"] == "sip" and query["adjustment"] == "split" and query["timeframe"] == "1Min"


def test_pages_are_followed_with_next_page_token(alpaca):
    fake, server = alpaca
    fake.page_size = 1000  # 5 sessions x 960 all-hours bars -> 5 pages
    item, vendor = load(start=date(2024, 3, 4), end=date(2024, 3, 8), **{"data.warmup_sessions": 0})
    tokens = [q.get("page_token") for _, _, q in server.seen]
    assert tokens == [None, "1000", "2000", "3000", "4000"]
    assert vendor.requests == 5 and len(item.bars) == 5 * 390


def test_429_waits_as_long_as_retry_after_then_succeeds(alpaca):
    fake, server = alpaca
    fake.fail_next(429, {"message": "too many requests"}, {"Retry-After": "7"}, times=2)
    sleeps: list[float] = []
    item, vendor = load(sleeps=sleeps)
    assert sleeps == [7.0, 7.0]  # the server's Retry-After, not alpaca-py's fixed 3 s
    assert vendor.requests == 3 and len(item.bars) == 7 * 390


def test_429_without_end_is_one_line_naming_the_limit(alpaca):
    fake, _ = alpaca
    fake.fail_next(429, {"message": "too many requests"}, times=10)
    with pytest.raises(SourceUnavailableError) as err:
        load(sleeps=[], **{"data.alpaca.retries": 2})
    message = str(err.value)
    assert message.startswith("alpaca kept rate-limiting SPY") and "requests_per_minute" in message
    assert "\n" not in message


def test_server_errors_are_retried_with_backoff(alpaca):
    fake, _ = alpaca
    fake.fail_next(503, {"message": "unavailable"}, times=2)
    sleeps: list[float] = []
    item, _ = load(sleeps=sleeps, **{"data.alpaca.backoff_seconds": 0.5})
    assert sleeps == [0.5, 1.0] and not item.bars.empty


@pytest.mark.parametrize("status", [401, 403])
def test_bad_key_is_one_line_naming_the_key_variables(alpaca, status):
    fake, server = alpaca
    fake.fail_next(status, {"code": 40110000, "message": "request is not authorized"})
    with pytest.raises(DataError) as err:
        load()
    assert "APCA_API_KEY_ID" in str(err.value) and "SPY" in str(err.value)
    assert len(server.seen) == 1  # not retried


def test_missing_key_says_which_variables_to_set(alpaca, monkeypatch):
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(DataError, match="set APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        load()


def test_unknown_symbol_and_range_before_history_are_no_data(alpaca):
    with pytest.raises(NoDataError, match=r"no data for ZZZZ .* from alpaca .*unknown to alpaca"):
        load("ZZZZ")
    with pytest.raises(NoDataError, match="before its history"):
        load("SPY", start=date(2012, 1, 3), end=date(2012, 1, 6))


def test_connection_refused_is_retried_once_then_one_line(monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    monkeypatch.setenv("APCA_API_KEY_ID", "KEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "SECRET")
    monkeypatch.setenv("ORB_ALPACA_URL", f"http://127.0.0.1:{port}")
    sleeps: list[float] = []
    with pytest.raises(SourceUnavailableError, match="alpaca could not be reached for SPY") as err:
        load(sleeps=sleeps)
    assert len(sleeps) == 1  # one retry, no long backoff
    assert "ORB_ALPACA_URL" in str(err.value)


def test_cache_fetches_only_the_sessions_it_lacks(alpaca, tmp_path):
    fake, server = alpaca
    first, _ = load(start=date(2024, 3, 4), end=date(2024, 3, 8), cache_dir=tmp_path)
    n_first = len(server.seen)
    again, _ = load(start=date(2024, 3, 4), end=date(2024, 3, 8), cache_dir=tmp_path)
    assert len(server.seen) == n_first and again.source == "cache"
    pd.testing.assert_frame_equal(again.bars, first.bars)
    longer, _ = load(start=date(2024, 3, 4), end=date(2024, 3, 15), cache_dir=tmp_path)
    new = server.seen[n_first:]
    assert len(new) == 1
    asked = pd.Timestamp(new[0][2]["start"]).tz_convert(NY).date()
    assert asked == date(2024, 3, 11)  # only the sessions after the cached 2024-03-08
    assert len(longer.bars) == (len(schedule(date(2024, 2, 29), date(2024, 3, 15)))) * 390
    [cached] = sorted(tmp_path.rglob("*.parquet"))
    assert cached.name == "SPY_2024-02-29_2024-03-15.parquet"  # one file, merged
    extended = pd.read_parquet(cached)
    local = extended.index.tz_convert(NY)
    assert (local.hour < 9).any() and (local.hour >= 16).any()  # the cache keeps extended hours


def test_a_damaged_cache_file_is_discarded_and_fetched_again(alpaca, tmp_path):
    fake, server = alpaca
    load(cache_dir=tmp_path)
    [cached] = sorted(tmp_path.rglob("*.parquet"))
    bars = pd.read_parquet(cached)
    bars.assign(high=bars["low"], low=bars["high"]).to_parquet(cached)  # valid Parquet, wrong values
    n = len(server.seen)
    item, _ = load(cache_dir=tmp_path)
    assert len(server.seen) > n and item.source == "alpaca"
    assert not item.bad_sessions  # the refetched bars are clean
    pd.testing.assert_frame_equal(pd.read_parquet(cached), bars)


def test_bad_vendor_bars_skip_their_session_or_stop_the_run(alpaca):
    fake, _ = alpaca
    fake.factor = 1.0
    original = fake.bars

    def spoiled(symbol, start, end):
        out = original(symbol, start, end)
        stamp = pd.Timestamp("2024-03-06 15:00", tz="UTC")
        return out.assign(high=out["high"].where(out.index != stamp, float("inf")))

    fake.bars = spoiled
    item, _ = load()
    assert item.bad_sessions == frozenset({date(2024, 3, 6)})
    assert any("non-finite" in w and "2024-03-06 15:00 UTC" in w and "bad_bars" in w for w in item.warnings)
    with pytest.raises(DataError, match=r"SPY: 1 bars have non-finite prices .* data.bad_bars: skip"):
        load(**{"data.bad_bars": "error"})


def test_iex_feed_with_a_volume_rule_is_a_warning(alpaca):
    _, server = alpaca
    cfg = load_config(overrides={**FAST, "data.alpaca.feed": "iex"})
    vendor = make_vendor("alpaca", cfg)
    assert any("iex" in w and "rel_volume" in w for w in vendor.warnings)


def test_cli_the_issues_command_on_two_months_with_an_unknown_symbol(alpaca, tmp_path, capsys):
    """The issue's command, shortened to a few weeks so the test stays quick; one symbol fails alone."""
    fake, server = alpaca
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("data:\n  alpaca:\n    requests_per_minute: 60000\n")
    code, out = run_cli(
        tmp_path,
        "--source", "alpaca", "--symbols", "SPY", "QQQ", "ZZZZ",
        "--start", "2024-01-02", "--end", "2024-02-29", "--config", str(cfg),
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1, text  # ZZZZ failed, the others were saved
    (run_dir,) = visible_runs(out)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["symbols"] == ["SPY", "QQQ"] and list(manifest["failed_symbols"]) == ["ZZZZ"]
    assert manifest["sources"] == {"SPY": "alpaca", "QQQ": "alpaca"}
    assert text.count("no data for ZZZZ") >= 1


def test_cli_missing_key_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    code, out = run_cli(
        tmp_path, "--source", "alpaca", "--symbols", "SPY", "--start", "2024-01-02", "--end", "2024-01-05"
    )
    assert code == 1
    assert "APCA_API_KEY_ID" in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []
