"""The per-symbol work of a portfolio run and the backends that spread it (in process, a local process
pool, or a Dask cluster). A task loads one symbol's bars itself and returns only small results, so no
process ever holds the bars of every symbol.

Stage 1 also writes the prepared sessions a symbol could be selected on (those eligible on its own
values) to the run's scratch folder when that folder is visible to it (this machine); stage 2 then reads
them there instead of loading and preparing the symbol again, and re-loads only when the file is not
there (a worker on another machine).
"""

from __future__ import annotations

import os
import pickle
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data import LoadedBars, load_symbol
from orb.data.bars import bars_sha256
from orb.engine import EventLoopBacktest, Prepared
from orb.errors import DataError, NoDataError, OrbError
from orb.portfolio.universe import daily_values, eligible
from orb.workers import dask_client, die_with_parent


@dataclass(frozen=True)
class Source:
    """Where and for which sessions a task loads its symbol (the run request's data fields)."""

    source: str
    start: date | None
    end: date | None
    data_path: Path | None = None
    cache_dir: Path | None = None

    def load(self, symbol: str, cfg: Config) -> LoadedBars:
        """One symbol's bars; the data layer's per-symbol INFO lines are left out (hundreds of symbols)."""
        logger.disable("orb.data")
        try:
            return self._load(symbol, cfg)
        finally:
            logger.enable("orb.data")

    def _load(self, symbol: str, cfg: Config) -> LoadedBars:
        return load_symbol(
            symbol,
            config=cfg,
            start=self.start,
            end=self.end,
            source=self.source,
            data_path=self.data_path,
            cache_dir=self.cache_dir,
        )


@dataclass(frozen=True)
class FrameSource:
    """Bars already in memory (symbol -> bar contract): for library use and tests."""

    frames: Mapping[str, pd.DataFrame]
    start: date | None
    end: date | None
    bad: Mapping[str, frozenset[date]] = field(default_factory=dict)  # LoadedBars.bad_sessions

    def load(self, symbol: str, cfg: Config) -> LoadedBars:
        bars = self.frames.get(symbol)
        if bars is None or bars.empty:
            raise NoDataError(f"no data for {symbol} (no bars were given for it)")
        return LoadedBars(symbol, bars, "frame", bars_sha256(bars), (), frozenset(self.bad.get(symbol, ())))


@dataclass(frozen=True)
class DailyResult:
    """Stage 1 of one symbol: its daily values, or the one-line reason it could not be loaded."""

    symbol: str
    daily: pd.DataFrame | None
    meta: LoadedBars | None  # bars cut to the first and last bar (for the manifest)
    warnings: tuple[str, ...]
    error: str | None
    bars: int
    seconds: float
    kept: Path | None = None  # the scratch file of its eligible sessions (None: stage 2 re-loads)


def stage1(
    symbol: str, source: Source | FrameSource, cfg: Config, scratch: Path | None = None
) -> DailyResult:
    """Load one symbol and compute its daily values with the engine's own preparation; keep its
    eligible sessions in `scratch` when that folder exists here."""
    started = time.perf_counter()
    try:
        item = source.load(symbol, cfg)
    except DataError as exc:
        return DailyResult(symbol, None, None, (), str(exc), 0, time.perf_counter() - started)
    prepared = EventLoopBacktest(cfg, symbol).prepare(
        item.bars, source.start, source.end, dict.fromkeys(item.bad_sessions, "bad_bars")
    )
    meta = LoadedBars(item.symbol, item.bars.iloc[[0, -1]], item.source, item.sha256, ())
    daily = daily_values(cfg, prepared)
    kept = None
    if scratch is not None and scratch.is_dir():
        kept = scratch / f"{symbol}.pickle"
        positions = np.flatnonzero(eligible(cfg, daily)) + prepared.first_reported
        with kept.open("wb") as fh:
            pickle.dump(prepared.only(positions), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return DailyResult(
        symbol, daily, meta, item.warnings, None, len(item.bars), time.perf_counter() - started, kept
    )


def stage2(
    symbol: str,
    days: Sequence[date],
    source: Source | FrameSource,
    cfg: Config,
    kept: Path | None = None,
) -> Prepared:
    """One symbol's sessions `days` (its selected sessions), prepared: from stage 1's file `kept` when it
    exists here, else re-loaded and prepared again."""
    if kept is not None and kept.is_file():
        with kept.open("rb") as fh:
            prepared = pickle.load(fh)  # noqa: S301 - written by stage 1 of this run, in its own folder
    else:
        item = source.load(symbol, cfg)
        prepared = EventLoopBacktest(cfg, symbol).prepare(
            item.bars, source.start, source.end, dict.fromkeys(item.bad_sessions, "bad_bars")
        )
    wanted = pd.DatetimeIndex(pd.to_datetime(sorted(days)))
    positions = prepared.sessions.dates.get_indexer(wanted)
    if (positions < 0).any():  # the data changed between the stages
        raise DataError(f"{symbol}: bars changed while the run was in progress; run it again")
    return prepared.only(np.asarray(positions, dtype=np.int64))


Mapper = Callable[[Callable, Sequence[tuple], Callable[[int], None]], list]


@contextmanager
def open_mapper(workers: int, scheduler: str | None) -> Iterator[Mapper]:
    """`map(fn, arg_tuples, tick)` returning results in argument order: on the Dask `scheduler` when
    given, else on `workers` local processes (1: in this process)."""
    if scheduler is not None:
        with _dask(scheduler) as mapper:
            yield mapper
    elif workers <= 1:
        yield lambda fn, args, tick: [_ticked(fn(*a), tick, i) for i, a in enumerate(args, 1)]
    else:
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
        try:

            def run(fn, args, tick):
                futures = [pool.submit(fn, *a) for a in args]
                return [_ticked(f.result(), tick, i) for i, f in enumerate(futures, 1)]

            yield run
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    return os.cpu_count() or 1


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's job
    die_with_parent()  # a killed parent leaves no worker behind


def _ticked(result, tick: Callable[[int], None], done: int):
    tick(done)
    return result


@contextmanager
def _dask(address: str) -> Iterator[Mapper]:
    """A mapper over the Dask cluster at `address` (orb.workers.dask_client)."""
    with dask_client(address) as client:

        def run(fn, args, tick):
            batch = f"orb-portfolio-{uuid.uuid4().hex[:12]}"
            futures = [client.submit(fn, *a, key=f"{batch}-{i}", pure=False) for i, a in enumerate(args)]
            out = []
            for i, future in enumerate(futures, 1):
                try:
                    out.append(future.result())
                except OrbError:
                    client.cancel(futures)
                    raise
                except Exception as exc:  # noqa: BLE001 - a remote failure becomes one line
                    client.cancel(futures)
                    first = (str(exc).splitlines() or [""])[0]
                    raise OrbError(
                        f"a Dask task failed: {type(exc).__name__}: {first} (the scheduler and the workers "
                        f"need this project importable: start them with PYTHONPATH=<project folder>)"
                    ) from exc
                tick(i)
            return out

        yield run
