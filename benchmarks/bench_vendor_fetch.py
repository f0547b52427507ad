"""Requests and wall time of a 5-year, 1-symbol Alpaca fetch against the local fake (paging and rate
limit measured), and the cache's incremental behaviour.

The fake serves every session of 2021-01-04 .. 2025-12-31 with regular and extended hours (960 one-
minute bars a session, like Alpaca's SIP bars) in 10,000-bar pages. The fetch runs through the real
alpaca-py client and orb's pacing adapter at `--rate` requests per minute (default 6000, so the run is
quick); the free plan's 200 per minute is modelled from the request count (the token bucket spaces
requests exactly 60/rate seconds apart once its small burst is used, see test_data_checks.py).
Then the cache: the same range again (0 requests), and a range one month longer (only the new month).

    python benchmarks/bench_vendor_fetch.py [--rate 6000] [--years 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orb.config import load_config  # noqa: E402
from orb.data import load_symbol, make_vendor  # noqa: E402
from orb.data.vendor import _BUCKETS, TokenBucket  # noqa: E402
from tests.vendor_fake import AlpacaFake, FakeServer  # noqa: E402


def fetch(cache: Path, start: date, end: date, rate: float):
    cfg = load_config(overrides={"data.alpaca.requests_per_minute": rate, "data.warmup_sessions": 0})
    vendor = make_vendor("alpaca", cfg)
    started = time.perf_counter()
    item = load_symbol(
        "SPY", config=cfg, start=start, end=end, source="alpaca", cache_dir=cache, vendor=vendor
    )
    return item, vendor.requests, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=6000.0, help="requests per minute for the measured run")
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    server = FakeServer(AlpacaFake())
    os.environ.update(APCA_API_KEY_ID="KEY", APCA_API_SECRET_KEY="SECRET", ORB_ALPACA_URL=server.url)
    start, end = date(2026 - args.years, 1, 4), date(2025, 12, 31)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        _BUCKETS.clear()
        item, requests, wall = fetch(cache, start, end, args.rate)
        bars, sessions = len(item.bars), item.bars.index.tz_convert("America/New_York").normalize().nunique()
        burst = TokenBucket(200).capacity
        free = max(requests - burst, 0) * 60 / 200
        print(f"{args.years}-year fetch {start} .. {end}: {sessions} sessions, {bars:,} regular-hours bars")
        print(f"  requests: {requests} (one per 10,000-bar page of a month's all-hours bars)")
        print(f"  wall time at {args.rate:g}/min: {wall:.1f} s")
        print(f"  at the free plan's 200/min: at least {free:.0f} s of pacing (burst {burst:.0f})")
        size = sum(p.stat().st_size for p in cache.rglob("*.parquet"))
        print(f"  cache: {size / 2**20:.1f} MiB in {len(list(cache.rglob('*.parquet')))} file(s)")
        _, again, wall = fetch(cache, start, end, args.rate)
        print(f"same range again: {again} requests, {wall:.1f} s (served from the cache)")
        longer_start = date(2026 - args.years - 1, 12, 1)
        _, more, wall = fetch(cache, longer_start, end, args.rate)
        print(f"one month longer ({longer_start} ..): {more} request(s), {wall:.1f} s (only the new month)")
    server.close()


if __name__ == "__main__":
    main()
