"""The research task function and the backends that run it: in-process, a local process pool or Dask.

`evaluate(task, bars, bad)` is the one task function. The bars of every symbol, with the sessions the
data layer marked `bad_bars`, are sent to each worker once (pool initializer, or Dask
`scatter(broadcast=True)`); tasks carry only a config and a window (and a portfolio's symbols).
Results come back in task order whatever the backend and worker count.
"""

from __future__ import annotations

import gc
import signal
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import pandas as pd
from loguru import logger

from orb.config import Config
from orb.data.checks import BAD_BARS_REASON
from orb.engine import EventLoopBacktest
from orb.errors import EmptyUniverseError, OrbError
from orb.metrics import aggregate_inputs, aggregate_metrics, metrics_of, symbol_metrics
from orb.prepare import PreparedMemo
from orb.workers import dask_client, die_with_parent

Bars = Mapping[str, pd.DataFrame]
Bad = Mapping[str, frozenset[date]]  # symbol -> sessions holding bad bars (the data layer's `bad_bars`)


@dataclass(frozen=True)
class Task:
    """Backtest every symbol with `config` on the sessions start..end (earlier bars warm up only)."""

    index: int
    config: Config
    start: date
    end: date
    keep_frames: bool = False  # also return trades, equity and sessions (walk-forward test windows)
    symbols: tuple[str, ...] = ()  # a portfolio task's universe (the bars may hold its benchmark too)


@dataclass(frozen=True)
class Frames:
    trades: pd.DataFrame
    equity: pd.DataFrame
    sessions: pd.DataFrame


@dataclass(frozen=True)
class TaskResult:
    index: int
    per_symbol: dict[str, dict]  # symbol -> metric keys
    aggregate: dict  # metric keys + symbols, avg_r_per_trade
    frames: dict[str, Frames] | None
    note: str | None = None  # what the run log should say about this task (an empty universe)


def evaluate(task: Task, bars: Bars, bad: Bad | None = None) -> TaskResult:
    """Run `task` on `bars` (symbol -> bar contract), the sessions in `bad` skipped with reason
    `bad_bars` as a backtest skips them. Bars after the window's last session are cut off before the
    engine sees them, so nothing after `end` can influence the result.

    The preparation (sessions, opening ranges, daily values, flags) is shared with the other tasks of
    this process whose config prepares the same way (`prepare_key`); without `keep_frames` no frame is
    built, the metrics read the loop's rows."""
    cfg = task.config
    bad = bad or {}
    if cfg.portfolio.enabled:
        return _evaluate_portfolio(task, bars, bad)
    skips = {sym: dict.fromkeys(bad.get(sym, ()), BAD_BARS_REASON) for sym in bars}
    prepared = {sym: _PREPARED.get(cfg, sym, b, task.start, task.end, skips[sym]) for sym, b in bars.items()}
    if task.keep_frames:
        results = {sym: EventLoopBacktest(cfg, sym).run_prepared(p, lean=True) for sym, p in prepared.items()}
        frames = {sym: Frames(res.trades, res.equity, res.sessions) for sym, res in results.items()}
        per_symbol = {sym: symbol_metrics(res, cfg) for sym, res in results.items()}
        return TaskResult(task.index, per_symbol, aggregate_metrics(results, cfg), frames)
    inputs = {sym: EventLoopBacktest(cfg, sym).measure(p) for sym, p in prepared.items()}
    kw = {
        "periods_per_year": cfg.metrics.periods_per_year,
        "risk_free_rate": cfg.metrics.risk_free_rate,
        "timezone": cfg.session.timezone,
    }
    capital = cfg.risk.initial_capital
    per_symbol = {sym: metrics_of(x, initial_capital=capital, **kw) for sym, x in inputs.items()}
    combined = aggregate_inputs(inputs, capital)
    aggregate = metrics_of(combined, initial_capital=capital * len(inputs), symbols=list(inputs), **kw)
    return TaskResult(task.index, per_symbol, aggregate, None)


def _evaluate_portfolio(task: Task, bars: Bars, bad: Bad) -> TaskResult:
    """One account over the daily universe of `task.symbols` (orb.portfolio, strategy.md 10), in this
    process: aggregate = the account's metrics, per symbol = its trade statistics. A combination whose
    universe is empty on every session has no trades: its counts are 0 and every other metric null."""
    from orb.portfolio.runner import backtest
    from orb.portfolio.stages import FrameSource
    from orb.research.sweep import COUNT_KEYS

    source = FrameSource(bars, task.start, task.end, bad)
    logger.disable("orb.portfolio")  # its per-run lines and the bars' warnings: said once by the sweep
    try:
        res = backtest(task.config, list(task.symbols or bars), source, workers=1, quiet=True)
    except EmptyUniverseError as exc:
        return TaskResult(task.index, {}, dict.fromkeys(COUNT_KEYS, 0), None, str(exc))
    finally:
        logger.enable("orb.portfolio")
    return TaskResult(task.index, res.metrics["per_symbol"], res.metrics["aggregate"], None)


_PREPARED = PreparedMemo()


Progress = Callable[[int], None]  # called with the number of tasks finished so far
Runner = Callable[[Sequence[Task], Progress | None], list[TaskResult]]


@contextmanager
def open_backend(
    bars: Bars, *, bad: Bad | None = None, workers: int = 1, scheduler: str | None = None
) -> Iterator[Runner]:
    """A function running tasks on `bars` (and their `bad` sessions), returning results in task order:
    on the Dask `scheduler` when given, else on `workers` local processes (1: in this process). The
    workers and their copy of the bars are set up here, once, before any progress display starts."""
    data = (dict(bars), dict(bad or {}))
    if scheduler is not None:
        with _dask(data, scheduler) as run:
            yield _ordered(run)
    elif workers <= 1:
        yield _ordered(
            lambda tasks, tick: [_ticked(evaluate(t, *data), tick, i) for i, t in enumerate(tasks, 1)]
        )
    else:
        with _pool(data, workers) as run:
            yield _ordered(run)


def run_tasks(
    tasks: Sequence[Task], bars: Bars, *, workers: int = 1, scheduler: str | None = None
) -> list[TaskResult]:
    """`tasks` on a backend opened for this call only."""
    with open_backend(bars, workers=workers, scheduler=scheduler) as run:
        return run(tasks, None)


def _ordered(run: Callable[[Sequence[Task], Progress], list[TaskResult]]) -> Runner:
    def ordered(tasks: Sequence[Task], progress: Progress | None = None) -> list[TaskResult]:
        results = run(tasks, progress or (lambda done: None)) if tasks else []
        return sorted(results, key=lambda r: r.index)

    return ordered


def _ticked(result: TaskResult, tick: Progress, done: int) -> TaskResult:
    tick(done)
    return result


_WORKER_DATA: tuple[Bars, Bad] = ({}, {})


def _init_worker(data: tuple[Bars, Bad]) -> None:
    """Pool initializer: keep the bars for every task of this worker; Ctrl-C is the parent's job, and
    the worker ends when its parent dies (even by kill -9). What the worker inherited (modules, bars)
    lives as long as it does, so it is frozen out of the garbage collector's full passes (each walked
    all of it, ~75 ms, and touched every inherited page)."""
    global _WORKER_DATA
    _WORKER_DATA = data
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def _evaluate_in_worker(task: Task) -> TaskResult:
    return evaluate(task, *_WORKER_DATA)


def _ready() -> bool:
    return bool(_WORKER_DATA[0])


@contextmanager
def _pool(
    data: tuple[Bars, Bad], workers: int
) -> Iterator[Callable[[Sequence[Task], Progress], list[TaskResult]]]:
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(data,))
    try:
        for future in [pool.submit(_ready) for _ in range(workers)]:  # start the workers now
            future.result()

        def run(tasks: Sequence[Task], tick: Progress) -> list[TaskResult]:
            futures = [pool.submit(_evaluate_in_worker, task) for task in tasks]
            try:
                return [_ticked(f.result(), tick, i) for i, f in enumerate(as_completed(futures), 1)]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

        yield run
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _dask(
    data: tuple[Bars, Bad], address: str
) -> Iterator[Callable[[Sequence[Task], Progress], list[TaskResult]]]:
    with dask_client(address) as client:
        from distributed import as_completed as dask_completed

        shared, bad = client.scatter(list(data), broadcast=True, hash=False)

        def run(tasks: Sequence[Task], tick: Progress) -> list[TaskResult]:
            batch = f"orb-{uuid.uuid4().hex[:12]}"
            futures = [
                client.submit(evaluate, t, shared, bad, key=f"{batch}-{t.index}", pure=False) for t in tasks
            ]
            results = []
            for future in dask_completed(futures, loop=client.loop):
                try:
                    results.append(future.result())
                except Exception as exc:  # noqa: BLE001 - a remote failure becomes one line
                    client.cancel(futures)
                    first = (str(exc).splitlines() or [""])[0]
                    raise OrbError(
                        f"a Dask task failed: {type(exc).__name__}: {first} (the scheduler and the workers "
                        f"need this project importable: start them with PYTHONPATH=<project folder>)"
                    ) from exc
                tick(len(results))
            return results

        yield run
