"""Parquet bar cache: reruns skip downloads, sub-ranges are served, bad files are ignored, atomic writes."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

from orb.config import load_config
from orb.data import load_symbol
from orb.data.cache import STALE_TEMP_SECONDS, cache_path, read_cached, write_cached
from orb.data.synthetic import generate_bars
from orb.data.yahoo import load_yahoo
from orb.sessions import recent_sessions, schedule, session_offset
from tests.data_fixtures import NY, CountingFetcher, real, real_history_fetcher, restamped_bars

TODAY = pd.Timestamp.now(tz=NY).date()


@pytest.fixture
def warnings_logged():
    """Messages loguru logs at WARNING or above during the test."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def recent(count: int) -> tuple[date, date]:
    first, last = recent_sessions(TODAY - timedelta(days=1), count)
    return first.date(), last.date()


def cfg(**overrides):
    return load_config(overrides={"data.yahoo_backoff_seconds": 0.0, "data.warmup_sessions": 2, **overrides})


def load_yahoo_cached(cache_dir: Path, fetcher, start: date, end: date, **overrides):
    return load_symbol(
        "SPY",
        config=cfg(**overrides),
        start=start,
        end=end,
        source="yahoo",
        cache_dir=cache_dir,
        fetcher=fetcher,
    )


def cached_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_rerun_of_a_cached_yahoo_request_downloads_nothing(tmp_path):
    start, end = recent(4)
    fetcher = CountingFetcher(real_history_fetcher)
    first = load_yahoo_cached(tmp_path, fetcher, start, end)
    downloads = len(fetcher.calls)
    assert first.source == "yahoo" and downloads >= 1
    warm = session_offset(start, 2).date()
    assert cached_files(tmp_path) == [tmp_path / "yahoo" / "1m" / f"SPY_{warm}_{end}.parquet"]

    again = load_yahoo_cached(tmp_path, fetcher, start, end)
    assert len(fetcher.calls) == downloads  # no new request
    assert again.source == "cache"
    pd.testing.assert_frame_equal(again.bars, first.bars)
    assert again.sha256 == first.sha256


def test_a_sub_range_is_served_from_the_cache(tmp_path):
    start, end = recent(6)
    fetcher = CountingFetcher(real_history_fetcher)
    full = load_yahoo_cached(tmp_path, fetcher, start, end)
    downloads = len(fetcher.calls)
    sessions = schedule(start, end)
    sub_start, sub_end = sessions.index[3].date(), sessions.index[4].date()
    part = load_yahoo_cached(tmp_path, fetcher, sub_start, sub_end)
    assert len(fetcher.calls) == downloads and part.source == "cache"
    window = schedule(session_offset(sub_start, 2), sub_end)
    expected = full.bars[
        (full.bars.index >= window["open"].iloc[0]) & (full.bars.index < window["close"].iloc[-1])
    ]
    pd.testing.assert_frame_equal(part.bars, expected)
    assert len(part.bars) == len(restamped_bars(window.index[0].date(), sub_end))


def test_a_wider_request_than_the_cache_downloads_again(tmp_path):
    start, end = recent(3)
    fetcher = CountingFetcher(real_history_fetcher)
    load_yahoo_cached(tmp_path, fetcher, start, end)
    downloads = len(fetcher.calls)
    wider = load_yahoo_cached(tmp_path, fetcher, start, end, **{"data.warmup_sessions": 4})
    assert wider.source == "yahoo" and len(fetcher.calls) > downloads


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path, bars: path.write_bytes(b"PAR1 definitely not parquet"),
        lambda path, bars: bars.rename(columns={"close": "Close"}).to_parquet(path),
        lambda path, bars: bars.astype({"volume": "float64"}).to_parquet(path),
        lambda path, bars: bars.set_axis(bars.index - pd.Timedelta(days=20), axis=0).to_parquet(path),
        lambda path, bars: bars.set_axis(bars.index.tz_localize(None), axis=0).to_parquet(path),
    ],
    ids=["unreadable", "wrong-columns", "wrong-dtype", "outside-its-range", "naive-index"],
)
def test_a_corrupt_or_foreign_cache_file_is_logged_ignored_and_refetched(tmp_path, warnings_logged, spoil):
    start, end = recent(3)
    fetcher = CountingFetcher(real_history_fetcher)
    good = load_yahoo_cached(tmp_path, fetcher, start, end)
    [path] = cached_files(tmp_path)
    spoil(path, good.bars)
    downloads = len(fetcher.calls)

    again = load_yahoo_cached(tmp_path, fetcher, start, end)
    assert again.source == "yahoo" and len(fetcher.calls) > downloads
    pd.testing.assert_frame_equal(again.bars, good.bars)
    assert any(str(path) in m and "ignoring it" in m for m in warnings_logged)
    third = load_yahoo_cached(tmp_path, fetcher, start, end)  # the re-fetch replaced the bad file
    assert third.source == "cache"


def test_cache_file_name_without_dates_is_ignored(tmp_path, warnings_logged):
    folder = tmp_path / "yahoo" / "1m"
    folder.mkdir(parents=True)
    (folder / "SPY_old_copy.parquet").write_bytes(b"x")
    assert read_cached(tmp_path, "yahoo", "1m", "SPY", date(2024, 1, 2), date(2024, 1, 3), "XNYS") is None
    assert any("SPY_old_copy.parquet" in m for m in warnings_logged)


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    bars = generate_bars("SPY", date(2024, 1, 2), date(2024, 1, 5), 1, 42)
    path = write_cached(tmp_path, "synthetic-seed42", "1m", "SPY", bars, date(2024, 1, 2), date(2024, 1, 5))
    assert path == cache_path(tmp_path, "synthetic-seed42", "1m", "SPY", date(2024, 1, 2), date(2024, 1, 5))
    assert cached_files(tmp_path) == [path]
    pd.testing.assert_frame_equal(pd.read_parquet(path), bars)


def test_a_killed_writers_temp_file_is_swept_by_the_next_write_once_stale(tmp_path):
    """A writer killed between its temp file and os.replace leaves `.SYM_....tmp`: the next write of the
    folder removes such a file once it is an hour old, and leaves a younger one (a writer at work) alone."""
    folder = tmp_path / "synthetic-seed42" / "1m"
    folder.mkdir(parents=True)
    stale, fresh, other = (
        folder / n for n in (".SPY_2024.abc.tmp", ".SPY_2024.def.tmp", ".QQQ_2024.ghi.tmp")
    )
    for tmp in (stale, fresh, other):
        tmp.write_bytes(b"half")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    bars = generate_bars("SPY", date(2024, 1, 2), date(2024, 1, 5), 1, 42)
    path = write_cached(tmp_path, "synthetic-seed42", "1m", "SPY", bars, date(2024, 1, 2), date(2024, 1, 5))
    assert sorted(cached_files(tmp_path)) == sorted([path, fresh, other])  # only SPY's stale temp went


def test_a_failed_write_leaves_no_temp_file_and_does_not_fail_the_load(
    tmp_path, monkeypatch, warnings_logged
):
    def broken(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    loaded = load_symbol(
        "SPY",
        config=cfg(),
        start=date(2024, 1, 2),
        end=date(2024, 1, 5),
        source="synthetic",
        cache_dir=tmp_path,
    )
    assert loaded.source == "synthetic" and not loaded.bars.empty
    assert cached_files(tmp_path) == []
    assert any("could not write cache file" in m and "disk full" in m for m in warnings_logged)


def test_synthetic_bars_are_cached_per_seed(tmp_path):
    kwargs = dict(start=date(2024, 1, 2), end=date(2024, 1, 31), source="synthetic", cache_dir=tmp_path)
    first = load_symbol("QQQ", config=cfg(), **kwargs)
    again = load_symbol("QQQ", config=cfg(), **kwargs)
    other_seed = load_symbol("QQQ", config=cfg(**{"data.seed": 7}), **kwargs)
    assert (first.source, again.source, other_seed.source) == ("synthetic", "cache", "synthetic")
    pd.testing.assert_frame_equal(again.bars, first.bars)
    assert other_seed.sha256 != first.sha256
    names = [p.relative_to(tmp_path).as_posix() for p in cached_files(tmp_path)]
    assert names == [
        "synthetic-seed42/1m/QQQ_2023-12-28_2024-01-31.parquet",
        "synthetic-seed7/1m/QQQ_2023-12-28_2024-01-31.parquet",
    ]


def test_files_are_not_cached(tmp_path):
    cache = tmp_path / "cache"
    loaded = load_symbol(
        "SPY",
        config=cfg(**{"data.file_bar_label": "end"}),
        start=date(2019, 2, 12),
        end=date(2019, 2, 15),
        source="file",
        data_path=real("eqker_SPY_1min_2019-02.csv"),
        cache_dir=cache,
    )
    assert loaded.source.startswith("file:") and not cache.exists()


def test_todays_session_is_not_cached(tmp_path):
    today = date(2024, 6, 28)  # a Friday session that may still be trading
    fetcher = CountingFetcher(real_history_fetcher)

    def run():
        return load_yahoo(
            "SPY",
            config=cfg(),
            start=date(2024, 6, 26),
            first=date(2024, 6, 24),
            last=today,
            cache_dir=tmp_path,
            fetcher=fetcher,
            today=today,
        )

    bars, source, _ = run()
    assert source == "yahoo" and bars.index[-1].tz_convert(NY).date() == today
    [path] = cached_files(tmp_path)
    assert path.name == "SPY_2024-06-24_2024-06-27.parquet"
    assert pd.read_parquet(path).index[-1] < pd.Timestamp("2024-06-28", tz=NY)
    _, source, _ = run()
    assert source == "yahoo"  # today's bars are fetched again
