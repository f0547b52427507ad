"""Yahoo source: limits checked up front, chunking, normalisation of yfinance's shapes, retries, errors.

Offline: fakes return the exact yfinance shapes built from real SPY bars; two contract tests replay
Yahoo's HTTP API with `responses` through the real yfinance code path.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import date, timedelta
from functools import partial
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
import responses

from orb.config import load_config
from orb.data import load_symbol
from orb.data.yahoo import (
    check_yahoo_request,
    chunks,
    download_yahoo,
    earliest_day,
    fetch_yahoo,
    normalize_yahoo,
)
from orb.errors import DataError, NoDataError, RequestError, SourceUnavailableError
from orb.sessions import recent_sessions, schedule
from tests.data_fixtures import (
    NY,
    CountingFetcher,
    chart_payload,
    real_history_fetcher,
    real_sessions,
    restamped_bars,
    yahoo_recording,
    yf_download_frame,
    yf_empty_frame,
    yf_history_frame,
)

TODAY = pd.Timestamp.now(tz=NY).date()


def recent_range(count: int) -> tuple[date, date]:
    """The `count` most recent complete sessions (ending before today)."""
    first, last = recent_sessions(TODAY - timedelta(days=1), count)
    return first.date(), last.date()


def config(**overrides):
    return load_config(overrides={"data.yahoo_backoff_seconds": 0.0, **overrides})


# --- limits -----------------------------------------------------------------------------------------


def test_one_minute_request_older_than_30_days_is_refused_with_the_alternatives():
    today = date(2024, 6, 28)
    with pytest.raises(RequestError) as err:
        check_yahoo_request("1m", today - timedelta(days=30), today, today)
    message = str(err.value)
    assert "\n" not in message
    assert "30 days" in message
    for alternative in ("--interval", "--data", "--synthetic"):
        assert alternative in message


def test_one_minute_window_edge_is_29_days_back():
    today = date(2024, 6, 28)
    check_yahoo_request("1m", today - timedelta(days=29), today, today)
    assert earliest_day("1m", today) == today - timedelta(days=29)


@pytest.mark.parametrize("interval", ["2m", "5m", "15m", "30m"])
def test_sub_hour_intervals_allow_60_days(interval):
    today = date(2024, 6, 28)
    check_yahoo_request(interval, today - timedelta(days=59), today, today)
    with pytest.raises(RequestError, match="60 days") as err:
        check_yahoo_request(interval, today - timedelta(days=60), today, today)
    assert "--data" in str(err.value) and "--synthetic" in str(err.value)


@pytest.mark.parametrize(
    ("interval", "start", "end", "words"),
    [
        ("1h", date(2024, 6, 20), date(2024, 6, 21), "not supported"),
        ("1m", date(2024, 6, 25), date(2024, 6, 20), "after"),
        ("1m", date(2024, 7, 1), date(2024, 7, 2), "future"),
    ],
)
def test_impossible_requests_are_usage_errors(interval, start, end, words):
    with pytest.raises(RequestError, match=words):
        check_yahoo_request(interval, start, end, date(2024, 6, 28))


def test_refused_request_downloads_nothing():
    fetcher = CountingFetcher(real_history_fetcher)
    old = TODAY - timedelta(days=45)
    with pytest.raises(RequestError, match="30 days"):
        load_symbol(
            "SPY", config=config(), start=old, end=old + timedelta(days=3), source="yahoo", fetcher=fetcher
        )
    assert fetcher.calls == []


def test_one_minute_chunks_stay_under_yahoos_8_day_limit_and_cover_the_range():
    first, last = date(2024, 6, 1), date(2024, 6, 28)
    windows = chunks(first, last, "1m")
    assert windows[0][0] == first and windows[-1][1] == last + timedelta(days=1)
    assert all(b == a for (_, b), (a, _) in zip(windows, windows[1:], strict=False))
    assert all((b - a).days <= 7 for a, b in windows)
    assert len(windows) == 4


def test_five_minute_chunks_are_at_most_60_days():
    windows = chunks(date(2024, 1, 1), date(2024, 3, 31), "5m")
    assert [(b - a).days for a, b in windows] == [60, 31]


# --- normalisation of yfinance's shapes ---------------------------------------------------------------


def _real_day() -> pd.DataFrame:
    """Real SPY 2011-01-03 (390 bars) indexed in New York time, as yfinance would stamp it."""
    day = real_sessions()[0]
    return day[["open", "high", "low", "close", "volume"]].set_axis(day.index.tz_convert(NY), axis=0)


def _assert_same_as_real(bars: pd.DataFrame) -> None:
    real = real_sessions()[0]
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.index.name == "timestamp" and str(bars.index.tz) == "UTC"
    assert bars.dtypes.tolist() == ["float64"] * 4 + ["int64"]
    assert bars.index[0] == pd.Timestamp("2011-01-03 14:30", tz="UTC")  # 09:30 ET bar start, winter
    np.testing.assert_array_equal(bars.index.as_unit("ns").asi8, real.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(
        bars[["open", "high", "low", "close"]].to_numpy(), real[["open", "high", "low", "close"]].to_numpy()
    )
    np.testing.assert_array_equal(bars["volume"].to_numpy(), real["volume"].to_numpy())


@pytest.mark.parametrize(
    "shape",
    [
        lambda day: yf_history_frame(day),
        lambda day: yf_history_frame(day, actions=True),
        lambda day: yf_download_frame(day, "SPY"),
        lambda day: yf_download_frame(day, "SPY").swaplevel(axis=1),  # group_by="ticker"
    ],
    ids=["history", "history-actions", "download", "download-group-by-ticker"],
)
def test_every_yfinance_shape_normalises_to_the_real_bars(shape):
    bars, warnings = normalize_yahoo(shape(_real_day()), "SPY", NY)
    _assert_same_as_real(bars)
    assert warnings == []


def test_empty_yfinance_frame_gives_no_bars():
    bars, warnings = normalize_yahoo(yf_empty_frame(), "SPY", NY)
    assert bars.empty and list(bars.columns) == ["open", "high", "low", "close", "volume"] and warnings == []


def test_nan_rows_are_dropped_and_counted():
    frame = yf_history_frame(_real_day())
    frame.iloc[[3, 7, 8], frame.columns.get_loc("Close")] = np.nan
    bars, warnings = normalize_yahoo(frame, "SPY", NY)
    assert len(bars) == 387
    assert warnings == ["SPY: 3 Yahoo rows without prices dropped"]
    assert frame.index[3].tz_convert("UTC") not in bars.index


def test_duplicates_and_disorder_are_fixed_with_warnings():
    frame = yf_history_frame(_real_day())
    shuffled = pd.concat([frame.iloc[200:], frame.iloc[:200], frame.iloc[[5]].assign(Close=1.0)])
    bars, warnings = normalize_yahoo(shuffled, "SPY", NY)
    assert len(bars) == 390 and bars.index.is_monotonic_increasing
    assert bars["close"].iloc[5] == 1.0  # the last duplicate wins
    assert "SPY: 1 duplicate timestamps dropped (kept the last)" in warnings
    assert any("not in time order" in w for w in warnings)


def test_naive_index_is_read_in_the_exchange_timezone():
    frame = yf_history_frame(_real_day())
    frame.index = frame.index.tz_localize(None)
    bars, _ = normalize_yahoo(frame, "SPY", NY)
    assert bars.index[0] == pd.Timestamp("2011-01-03 14:30", tz="UTC")


def test_download_frame_for_another_ticker_is_an_error():
    with pytest.raises(DataError, match="instead of SPY"):
        normalize_yahoo(yf_download_frame(_real_day(), "QQQ"), "SPY", NY)


def test_missing_price_column_is_an_error():
    with pytest.raises(DataError, match="without the columns high"):
        normalize_yahoo(yf_history_frame(_real_day()).drop(columns="High"), "SPY", NY)


# --- loading through the fetch layer -----------------------------------------------------------------


def test_load_fetches_in_chunks_clamps_warm_up_and_keeps_regular_hours():
    start, end = recent_range(5)
    fetcher = CountingFetcher(real_history_fetcher)
    loaded = load_symbol("SPY", config=config(), start=start, end=end, source="yahoo", fetcher=fetcher)
    assert loaded.source == "yahoo"
    first_allowed = earliest_day("1m", TODAY)
    assert all(a >= first_allowed and (b - a).days <= 7 for _, a, b, _ in fetcher.calls)
    assert fetcher.calls[0][1] >= first_allowed and fetcher.calls[-1][2] == end + timedelta(days=1)
    sessions = schedule(first_allowed, end)
    assert loaded.bars.index[0] == sessions["open"].iloc[0]  # warm-up clamped to Yahoo's 30 days
    assert loaded.bars.index[-1] == sessions["close"].iloc[-1] - pd.Timedelta(minutes=1)
    expected = restamped_bars(sessions.index[0].date(), end)
    assert len(loaded.bars) == len(expected)
    clamp = [w for w in loaded.warnings if "warm-up" in w]
    assert len(clamp) == 1 and "30 days" in clamp[0] and "of the 40 warm-up sessions" in clamp[0]


def test_pre_and_post_market_bars_and_missing_minutes():
    start, end = recent_range(2)

    def extended(symbol, a, b, interval):
        frame = real_history_fetcher(symbol, a, b, interval)
        if frame.empty:
            return frame
        post = frame.iloc[-5:].set_axis(frame.index[-5:] + pd.Timedelta(minutes=30), axis=0)  # 16:29..16:33
        pre = frame.iloc[:5].set_axis(frame.index[:5] - pd.Timedelta(minutes=60), axis=0)  # 08:30..08:34
        return pd.concat([pre, frame.drop(frame.index[[10, 11, 12]]), post]).sort_index()

    cfg = config(**{"data.warmup_sessions": 0})
    loaded = load_symbol(
        "SPY", config=cfg, start=start, end=end, source="yahoo", fetcher=CountingFetcher(extended)
    )
    local = loaded.bars.index.tz_convert(NY)
    minutes = local.hour * 60 + local.minute
    assert minutes.min() == 570 and minutes.max() == 959
    expected = restamped_bars(start, end)
    assert len(loaded.bars) == len(expected) - 3


def test_empty_answer_is_no_data_naming_symbol_and_range():
    start, end = recent_range(3)
    fetcher = CountingFetcher(lambda *args: yf_empty_frame())
    with pytest.raises(
        NoDataError, match=r"^no data for SPY between \d{4}-\d\d-\d\d and \d{4}-\d\d-\d\d \("
    ) as err:
        load_symbol("SPY", config=config(), start=start, end=end, source="yahoo", fetcher=fetcher)
    assert "\n" not in str(err.value)
    assert len(fetcher.calls) >= 1


def test_prices_missing_error_of_every_chunk_is_no_data_with_yahoos_reason():
    from yfinance.exceptions import YFPricesMissingError

    def missing(symbol, a, b, interval):
        raise YFPricesMissingError(symbol, "", yahoo_reason="Data doesn't exist for startDate")

    start, end = recent_range(2)
    with pytest.raises(NoDataError, match="Data doesn't exist for startDate"):
        load_symbol("SPY", config=config(), start=start, end=end, source="yahoo", fetcher=missing)


def test_a_chunk_without_prices_does_not_hide_the_others():
    from yfinance.exceptions import YFPricesMissingError

    start, end = recent_range(12)
    calls = CountingFetcher(real_history_fetcher)

    def first_chunk_missing(symbol, a, b, interval):
        if not calls.calls:
            calls.calls.append((symbol, a, b, interval))
            raise YFPricesMissingError(symbol, "(1m)")
        return calls(symbol, a, b, interval)

    loaded = load_symbol(
        "SPY", config=config(), start=start, end=end, source="yahoo", fetcher=first_chunk_missing
    )
    assert loaded.bars.index[-1].date() == end
    assert loaded.bars.index[0] >= pd.Timestamp(calls.calls[1][1], tz=NY)


def test_unknown_symbol_is_no_data_asking_to_check_it():
    from yfinance.exceptions import YFTzMissingError

    def unknown(symbol, a, b, interval):
        raise YFTzMissingError(symbol)

    start, end = recent_range(2)
    with pytest.raises(NoDataError, match="check the symbol"):
        load_symbol("ZZZZ", config=config(), start=start, end=end, source="yahoo", fetcher=unknown)


def test_transient_errors_are_retried_with_exponential_backoff():
    start, end = recent_range(3)
    failures = [ConnectionError("reset"), TimeoutError("slow")]

    def flaky(symbol, a, b, interval):
        if failures:
            raise failures.pop(0)
        return real_history_fetcher(symbol, a, b, interval)

    sleeps: list[float] = []
    bars, _ = download_yahoo(
        "SPY", start, end, "1m", fetcher=flaky, retries=3, backoff=0.5, timezone=NY, sleep=sleeps.append
    )
    assert sleeps == [0.5, 1.0]
    assert len(bars) == len(restamped_bars(start, end))


def test_rate_limit_exhausting_retries_is_source_unavailable():
    from yfinance.exceptions import YFRateLimitError

    fetcher = CountingFetcher(lambda *args: (_ for _ in ()).throw(YFRateLimitError()))
    sleeps: list[float] = []
    start, end = recent_range(2)
    with pytest.raises(SourceUnavailableError) as err:
        download_yahoo(
            "SPY", start, end, "1m", fetcher=fetcher, retries=3, backoff=2.0, timezone=NY, sleep=sleeps.append
        )
    assert len(fetcher.calls) == 4 and sleeps == [2.0, 4.0, 8.0]
    message = str(err.value)
    assert "\n" not in message and "Yahoo could not be reached" in message
    assert "--synthetic" in message and "--data" in message


def test_a_non_transient_failure_is_not_retried():
    fetcher = CountingFetcher(lambda *args: (_ for _ in ()).throw(KeyError("chart")))
    start, end = recent_range(2)
    with pytest.raises(DataError, match="could not be read"):
        download_yahoo(
            "SPY",
            start,
            end,
            "1m",
            fetcher=fetcher,
            retries=3,
            backoff=0.0,
            timezone=NY,
            sleep=lambda s: None,
        )
    assert len(fetcher.calls) == 1


# --- the real yfinance code path ----------------------------------------------------------------------


@pytest.fixture
def yahoo_replay(tmp_path):
    """`responses` replaying Yahoo for yfinance over a requests.Session; yields (mock, fetcher)."""
    import requests
    import yfinance as yf
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(tmp_path / "yf-tz"))
    previous = YfData()._session
    YfData.cache_get.cache_clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "https://fc.yahoo.com/", status=404)
        mock.add(
            responses.GET,
            re.compile(r"https://query[12]\.finance\.yahoo\.com/v1/test/getcrumb"),
            body="fakecrumb",
        )
        yield mock, partial(fetch_yahoo, session=requests.Session())
    YfData(session=previous)
    YfData.cache_get.cache_clear()


CHART = re.compile(r"https://query[12]\.finance\.yahoo\.com/v8/finance/chart/.*")


def _tz_answer(symbol: str) -> str:
    return json.dumps(
        chart_payload(
            symbol,
            restamped_bars(date(2011, 1, 3), date(2011, 1, 3)).iloc[:0],
            schedule(date(2011, 1, 3), date(2011, 1, 3)),
        )
    )


def test_contract_replayed_yahoo_chart_api_gives_the_real_bars(yahoo_replay):
    mock, fetcher = yahoo_replay
    start, end = recent_range(3)
    requests_seen = []

    def answer(request):
        query = parse_qs(urlparse(request.url).query)
        if query.get("range") == ["1d"]:
            return 200, {}, _tz_answer("SPY")
        a = pd.Timestamp(int(query["period1"][0]), unit="s", tz="UTC").tz_convert(NY).date()
        b = pd.Timestamp(int(query["period2"][0]), unit="s", tz="UTC").tz_convert(NY).date()
        requests_seen.append((a, b, query["interval"][0], query["includePrePost"][0]))
        last = b - timedelta(days=1)
        bars = restamped_bars(a, last).tz_convert("UTC") if a <= last else restamped_bars(a, a).iloc[:0]
        return 200, {}, json.dumps(chart_payload("SPY", bars, schedule(a, last)))

    mock.add_callback(responses.GET, CHART, callback=answer)
    cfg = config(**{"data.warmup_sessions": 0})
    loaded = load_symbol("SPY", config=cfg, start=start, end=end, source="yahoo", fetcher=fetcher)
    expected = restamped_bars(start, end)
    np.testing.assert_array_equal(
        loaded.bars.index.as_unit("ns").asi8, expected.index.tz_convert("UTC").as_unit("ns").asi8
    )
    np.testing.assert_allclose(loaded.bars["close"].to_numpy(), expected["close"].to_numpy())
    np.testing.assert_array_equal(loaded.bars["volume"].to_numpy(), expected["volume"].to_numpy())
    assert requests_seen and all(
        interval == "1m" and prepost == "False" for *_, interval, prepost in requests_seen
    )


def test_contract_recorded_empty_yahoo_answer_is_no_data(yahoo_replay):
    mock, fetcher = yahoo_replay
    recorded = json.loads(
        yahoo_recording(
            "node-yahoo-finance2_chart-AAPL-2025-02-01-to-2025-02-02-interval-1m_empty.json"
        ).read_text()
    )
    empty_body = json.dumps(recorded["response"]["bodyJson"])

    def answer(request):
        query = parse_qs(urlparse(request.url).query)
        return 200, {}, _tz_answer("AAPL") if query.get("range") == ["1d"] else empty_body

    mock.add_callback(responses.GET, CHART, callback=answer)
    start, end = recent_range(2)
    with pytest.raises(NoDataError, match=r"^no data for AAPL between") as err:
        load_symbol(
            "AAPL",
            config=config(**{"data.warmup_sessions": 0}),
            start=start,
            end=end,
            source="yahoo",
            fetcher=fetcher,
        )
    assert "\n" not in str(err.value)


def test_real_fetcher_without_network_fails_fast_with_one_line(tmp_path):
    """No network here: the real yfinance path must end in a one-line data error, quickly."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-tz"))
    start, end = recent_range(2)
    cfg = config(**{"data.yahoo_retries": 0, "data.warmup_sessions": 0})
    outcome: dict[str, BaseException] = {}

    def run():
        try:
            load_symbol("ORBOFFLINE", config=cfg, start=start, end=end, source="yahoo")
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "load_symbol hung without network"
    error = outcome.get("error")
    assert isinstance(error, (SourceUnavailableError, NoDataError)), repr(error)
    assert "\n" not in str(error) and "ORBOFFLINE" in str(error)
