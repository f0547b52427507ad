"""Databento: DBN files written with databento's own tooling, and the Historical API over local HTTPS
(cost printed before the download, --max-cost guard, 429 with Retry-After, auth, unknown symbol)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from orb.config import load_config
from orb.data import load_symbol, make_vendor
from orb.data.vendor import _BUCKETS
from orb.errors import DataError, NoDataError
from tests.cli_helpers import run_cli, visible_runs
from tests.vendor_fake import DatabentoFake, FakeServer, dbn_bytes, market_bars, self_signed_cert

FAST = {"data.databento.requests_per_minute": 60000.0, "data.warmup_sessions": 0}


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def databento(monkeypatch, cert):
    fake = DatabentoFake(key="db-TEST")
    server = FakeServer(fake, cert=cert)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert[0]))
    monkeypatch.setenv("DATABENTO_API_KEY", "db-TEST")
    monkeypatch.setenv("ORB_DATABENTO_URL", server.url)
    _BUCKETS.clear()
    yield fake, server
    server.close()


def load(
    symbol="SPY", start=date(2024, 3, 4), end=date(2024, 3, 8), sleeps=None, cache_dir=None, **overrides
):
    cfg = load_config(overrides={**FAST, **overrides})
    vendor = make_vendor("databento", cfg, sleep=(sleeps.append if sleeps is not None else None))
    return load_symbol(
        symbol, config=cfg, start=start, end=end, source="databento", vendor=vendor, cache_dir=cache_dir
    )


def write_dbn(path, symbol="SPY", first=date(2024, 3, 4), last=date(2024, 3, 8)):
    bars = market_bars(symbol, first, last)
    start = pd.Timestamp(first, tz="America/New_York").tz_convert("UTC")
    end = pd.Timestamp(last, tz="America/New_York").tz_convert("UTC") + pd.Timedelta(days=1)
    path.write_bytes(dbn_bytes(symbol, bars, start, end))
    return bars


def test_a_dbn_file_loads_as_bar_start_regular_hours(tmp_path):
    path = tmp_path / "spy.dbn.zst"
    write_dbn(path)
    cfg = load_config(overrides={"data.warmup_sessions": 0})
    item = load_symbol("SPY", config=cfg, start=None, end=None, source="file", data_path=path)
    expected = market_bars("SPY", date(2024, 3, 4), date(2024, 3, 8), extended=False)
    pd.testing.assert_frame_equal(item.bars, expected, check_freq=False)


def test_a_dbn_file_of_another_symbol_is_an_error(tmp_path):
    path = tmp_path / "qqq.dbn.zst"
    write_dbn(path, "QQQ")
    cfg = load_config(overrides={"data.warmup_sessions": 0})
    with pytest.raises(DataError, match="holds only QQQ"):
        load_symbol("SPY", config=cfg, start=None, end=None, source="file", data_path=path)


def test_a_damaged_dbn_file_is_one_line(tmp_path):
    path = tmp_path / "bad.dbn.zst"
    path.write_bytes(b"not zstd at all")
    cfg = load_config()
    with pytest.raises(DataError, match=r"bad\.dbn\.zst is not a readable DBN file"):
        load_symbol("SPY", config=cfg, start=None, end=None, source="file", data_path=path)


def test_historical_api_prints_the_cost_before_downloading(databento):
    from loguru import logger

    fake, server = databento
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        item = load()
    finally:
        logger.remove(sink)
    paths = [p for _, p, _ in server.seen]
    assert paths == ["/v0/metadata.get_cost", "/v0/timeseries.get_range"]
    assert any("costs $0.05" in line for line in lines)
    expected = market_bars("SPY", date(2024, 3, 4), date(2024, 3, 8), extended=False)
    pd.testing.assert_frame_equal(item.bars, expected, check_freq=False)
    assert item.adjustment == "raw"  # Databento prices are not split-adjusted
    assert server.seen[1][2]["schema"] == "ohlcv-1m" and server.seen[1][2]["dataset"] == "XNAS.ITCH"


def test_max_cost_refuses_the_download(databento):
    _, server = databento
    with pytest.raises(DataError, match=r"estimated at \$0\.05, over --max-cost \$0\.01"):
        load(**{"data.databento.max_cost": 0.01})
    assert [p for _, p, _ in server.seen] == ["/v0/metadata.get_cost"]  # nothing billable fetched


def test_429_is_retried_after_retry_after(databento):
    fake, server = databento
    fake.fail_next(429, {"detail": "Too many requests"}, {"Retry-After": "3"})
    sleeps: list[float] = []
    item = load(sleeps=sleeps)
    assert sleeps == [3.0] and not item.bars.empty


def test_bad_key_and_unknown_symbol_are_one_line(databento, monkeypatch):
    with pytest.raises(NoDataError, match=r"databento has no ohlcv-1m bars for ZZZZ on XNAS\.ITCH"):
        load("ZZZZ")
    monkeypatch.setenv("DATABENTO_API_KEY", "db-WRONG")
    with pytest.raises(
        DataError, match=r"databento refused the request for SPY \(HTTP 401.*DATABENTO_API_KEY"
    ):
        load()


def test_cli_max_cost_flag(databento, tmp_path, capsys):
    code, out = run_cli(
        tmp_path, "--source", "databento", "--symbols", "SPY", "--start", "2024-03-04", "--end", "2024-03-08",
        "--max-cost", "0", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 1 and visible_runs(out) == []
    assert "over --max-cost $0.00" in capsys.readouterr().out
