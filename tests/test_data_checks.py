"""One bar check on every path: files, cache, vendors; bad_bars skip|error; the cache round trip
(Hypothesis); request pacing; offline Yahoo fails fast and its progress bar counts only tried symbols."""

from __future__ import annotations

import json
import socket
from datetime import date

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from orb.config import load_config
from orb.data import load_symbol
from orb.data.bars import make_bars
from orb.data.cache import read_cached, write_cached
from orb.data.checks import check_bars
from orb.data.synthetic import generate_bars
from orb.data.vendor import TokenBucket
from orb.data.yahoo import download_yahoo
from orb.errors import SourceUnavailableError
from orb.sessions import schedule
from tests.cli_helpers import one_error_line, run_cli, visible_runs
from tests.data_fixtures import real

NY = "America/New_York"


def bars_of(rows: list[tuple[str, float, float, float, float, int]]) -> pd.DataFrame:
    """Bars from (UTC stamp, open, high, low, close, volume) rows."""
    index = pd.DatetimeIndex([pd.Timestamp(r[0], tz="UTC") for r in rows])
    return make_bars(index, *(np.array([r[i] for r in rows]) for i in range(1, 6)))


def test_each_kind_of_bad_bar_is_counted_with_its_first_stamp():
    bars = bars_of(
        [
            ("2024-03-04 14:30", 10, 11, 9, 10.5, 100),  # fine
            ("2024-03-04 14:31", 0, 11, 9, 10.5, 100),  # zero open
            ("2024-03-04 14:32", 10, np.inf, 9, 10.5, 100),  # inf high
            ("2024-03-04 14:33", 10, 10.2, 10.4, 10.1, 100),  # low above open: OHLC violation
            ("2024-03-05 14:30", 10, 11, 9, 10.5, -5),  # negative volume
            ("2024-03-05 14:31", 20, 21, 19, 20.5, 100),  # +95 % from the previous close: jump
            ("2024-03-06 14:30", 20.5, 21, 20, 20.6, 100),  # first bar of a session: a gap is no jump
        ]
    )
    result = check_bars(bars, NY)
    kinds = {p.kind.split(" (")[0]: (p.count, p.first[0]) for p in result.problems}
    assert kinds == {
        "have non-finite prices": (1, pd.Timestamp("2024-03-04 14:32", tz="UTC")),
        "have zero or negative prices": (1, pd.Timestamp("2024-03-04 14:31", tz="UTC")),
        "violate low <= min(open, close) <= max(open, close) <= high": (
            1,
            pd.Timestamp("2024-03-04 14:33", tz="UTC"),
        ),
        "have negative volume": (1, pd.Timestamp("2024-03-05 14:30", tz="UTC")),
        "jump more than 50% from the previous bar's close": (1, pd.Timestamp("2024-03-05 14:31", tz="UTC")),
    }
    assert result.bad_sessions == {date(2024, 3, 4), date(2024, 3, 5)}


def test_real_and_synthetic_bars_pass():
    frame = pd.read_parquet(real("spy_1min_2011-01_2011-03_utc_barstart.parquet")).set_index("timestamp")
    assert check_bars(frame[["open", "high", "low", "close", "volume"]], NY).ok
    assert check_bars(generate_bars("SPY", date(2024, 1, 2), date(2024, 3, 28), 1, 42, "XNYS"), NY).ok


def _spy_csv(tmp_path, mutate) -> str:
    bars = pd.read_parquet(real("spy_1min_2011-01_2011-03_utc_barstart.parquet"))
    bars = bars[bars["timestamp"] < "2011-01-11"].reset_index(drop=True)
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    mutate(bars).to_csv(folder / "SPY.csv", index=False)
    return str(folder)


SPOILERS = {
    "zero price": lambda b: b.assign(low=b["low"].where(b.index != 3000, 0.0)),
    "prices divided by 1e6": lambda b: b.assign(
        **{
            c: b[c].where(~b.index.isin(range(3000, 3010)), b[c] / 1e6)
            for c in ("open", "high", "low", "close")
        }
    ),
    "negative volume": lambda b: b.assign(volume=b["volume"].where(b.index != 3000, -100)),
    "inf high": lambda b: b.assign(high=b["high"].where(b.index != 3000, np.inf)),
}


@pytest.mark.parametrize("kind", list(SPOILERS))
def test_a_bad_file_skips_the_session_with_a_reason_or_stops(tmp_path, capsys, kind):
    """Issue: such files were accepted silently (one trade lost 649,630 on 100,000 capital)."""
    folder = _spy_csv(tmp_path, SPOILERS[kind])
    short = tmp_path / "short.yaml"
    short.write_text("orb:\n  atr_period: 2\nconfluence:\n  rel_volume:\n    lookback_sessions: 2\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--data", folder, "--config", str(short))
    text = capsys.readouterr().out
    assert code == 0, text
    assert "bad_bars" in text and "warning: SPY:" in text
    sessions = pd.read_parquet(visible_runs(out)[0] / "SPY_sessions.parquet")
    skipped = sessions.loc[sessions["skip_reason"] == "bad_bars", "session_date"]
    assert len(skipped) == 1
    strict = tmp_path / "strict.yaml"
    strict.write_text(short.read_text() + "data:\n  bad_bars: error\n")
    code, _ = run_cli(tmp_path, "--symbols", "SPY", "--data", folder, "--config", str(strict))
    line = one_error_line(capsys.readouterr().out)
    assert code == 1 and line.startswith("error: SPY: ") and "first at 2011-01-" in line
    assert "data.bad_bars: skip" in line


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b.assign(**{c: b[c] * 2 for c in ("open", "high", "low", "close")}),  # prices x2
        lambda b: b.assign(high=b["low"], low=b["high"]),  # high/low swapped
        lambda b: b.assign(**{c: 0.0 for c in ("open", "high", "low", "close")}),  # all zeros
    ],
    ids=["prices x2", "high low swapped", "all zeros"],
)
def test_a_wrong_cache_file_is_discarded_and_refetched(tmp_path, spoil):
    """Issue: a valid Parquet cache file with wrong values was used silently."""
    cfg = load_config(overrides={"data.warmup_sessions": 0})
    kwargs = dict(
        config=cfg, start=date(2024, 1, 2), end=date(2024, 1, 12), source="synthetic", cache_dir=tmp_path
    )
    first = load_symbol("SPY", **kwargs)
    [path] = list(tmp_path.rglob("*.parquet"))
    spoil(pd.read_parquet(path)).to_parquet(path)
    again = load_symbol("SPY", **kwargs)
    assert again.source == "synthetic"  # regenerated, not served from the spoiled file
    pd.testing.assert_frame_equal(again.bars, first.bars)
    assert load_symbol("SPY", **kwargs).source == "cache"  # the rewritten file is trusted again


SESSIONS = schedule(date(2024, 3, 1), date(2024, 3, 29))


@st.composite
def bar_frames(draw):
    """Valid bar-contract frames: sorted unique regular-hours stamps, consistent OHLC, volume >= 0."""
    days = draw(st.lists(st.integers(0, len(SESSIONS) - 1), min_size=1, max_size=3, unique=True))
    stamps = []
    for day in sorted(days):
        minutes = draw(st.lists(st.integers(0, 389), min_size=1, max_size=20, unique=True))
        stamps += [SESSIONS["open"].iloc[day] + pd.Timedelta(minutes=m) for m in sorted(minutes)]
    n = len(stamps)
    small = st.floats(-0.05, 0.05, allow_nan=False)
    start = draw(st.floats(1.0, 5000.0, allow_nan=False, allow_infinity=False))
    closes = start * np.cumprod(1 + np.array(draw(st.lists(small, min_size=n, max_size=n))))
    opens = np.concatenate(([start], closes[:-1])) * (
        1 + np.array(draw(st.lists(small, min_size=n, max_size=n)))
    )
    wick = st.floats(0, 0.01, allow_nan=False)
    highs = np.maximum(opens, closes) * (1 + np.array(draw(st.lists(wick, min_size=n, max_size=n))))
    lows = np.minimum(opens, closes) * (1 - np.array(draw(st.lists(wick, min_size=n, max_size=n))))
    volume = np.array(draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n)))
    return make_bars(pd.DatetimeIndex(stamps), opens, highs, lows, closes, volume)


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bars=bar_frames())
def test_any_valid_bar_frame_round_trips_through_the_cache_identically(tmp_path_factory, bars):
    root = tmp_path_factory.mktemp("cache")
    first, last = SESSIONS.index[0].date(), SESSIONS.index[-1].date()
    assert write_cached(root, "prop", "1m", "SPY", bars, first, last) is not None
    hit = read_cached(root, "prop", "1m", "SPY", first, last, "XNYS")
    assert hit is not None
    pd.testing.assert_frame_equal(hit[0], bars, check_exact=True, check_freq=False)
    assert hit[0].index.dtype == bars.index.dtype


def test_token_bucket_holds_the_rate_after_its_burst():
    now = [0.0]
    bucket = TokenBucket(200, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(400):
        bucket.acquire()
    assert now[0] == pytest.approx((400 - bucket.capacity) * 60 / 200)  # 0.3 s per request


def test_offline_yahoo_dns_failure_fails_fast():
    """Issue: a DNS failure was retried for 14 s before the one-line error."""
    calls = []

    def offline(symbol, a, b, interval):
        calls.append(symbol)
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise requests.exceptions.ConnectionError("Failed to resolve 'query2.finance.yahoo.com'") from exc

    sleeps: list[float] = []
    start, end = date(2024, 3, 4), date(2024, 3, 8)
    with pytest.raises(SourceUnavailableError, match="after 2 attempt"):
        download_yahoo(
            "SPY", start, end, "1m", fetcher=offline, retries=3, backoff=2.0, timezone=NY, sleep=sleeps.append
        )
    assert len(calls) == 2 and sum(sleeps) <= 0.5


def test_progress_never_counts_a_symbol_that_was_not_tried(tmp_path, capsys):
    """Issue: offline, the bar showed '100% 2/2 QQQ' for a symbol never tried."""
    cfg = tmp_path / "noretry.yaml"
    cfg.write_text("data:\n  yahoo_retries: 0\n")
    code, _ = run_cli(tmp_path, "--symbols", "SPY", "QQQ", "--config", str(cfg))
    text = capsys.readouterr().out
    assert code == 1
    assert "1/2" in text and "2/2" not in text and "stopped, source unreachable" in text


def test_the_bad_bars_policy_is_validated():
    with pytest.raises(Exception, match=r"data.bad_bars.*'skip' or 'error'"):
        load_config(overrides={"data.bad_bars": "ignore"})


def test_run_config_records_the_data_settings(tmp_path):
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "--synthetic", "--start", "2024-01-02", "--end", "2024-01-05", "-q"
    )
    assert code == 0
    data = json.loads((visible_runs(out)[0] / "config.json").read_text())["data"]
    assert (data["adjustment"], data["bad_bars"], data["file_timezone"]) == ("split", "skip", "auto")
