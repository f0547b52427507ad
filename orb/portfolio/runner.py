"""A portfolio run end to end (strategy.md 10): stage 1 per symbol, the universe, stage 2, the run folder.

Stage 1 loads each symbol on its own (in parallel), returns only its daily values and leaves its
eligible sessions in the run's scratch folder; the universe grid then decides the selected
symbol-sessions; stage 2 takes only those sessions' bars (from the scratch folder, or by re-loading the
symbol), and the account trades them session by session.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from loguru import logger

from orb import console
from orb.config import Config
from orb.data import LoadedBars
from orb.engine import EventLoopBacktest
from orb.errors import DataError, EmptyUniverseError
from orb.pipeline import RunRequest, build_manifest, no_data_error
from orb.portfolio.account import simulate
from orb.portfolio.measures import account_metrics, benchmark_series, symbol_statistics
from orb.portfolio.stages import FrameSource, Source, default_workers, open_mapper, stage1, stage2
from orb.portfolio.universe import build_grid, funnel
from orb.runs.write import (
    MonteCarloArtifact,
    PortfolioArtifacts,
    finish_manifest,
    publish,
    staging,
    start_run,
    write_portfolio,
)
from orb.sessions import schedule


@dataclass(frozen=True)
class PortfolioResult:
    """Everything a portfolio backtest computed (the run folder's tables, metrics and the funnel)."""

    universe: pd.DataFrame
    trades: pd.DataFrame
    fills: pd.DataFrame
    events: pd.DataFrame
    bars: pd.DataFrame
    equity: pd.DataFrame
    benchmark: pd.DataFrame | None
    metrics: dict
    failures: dict[str, str]
    funnel: dict[str, int]
    stage_seconds: dict[str, float]
    loaded: dict[str, LoadedBars]  # each symbol's first and last bar, source and data hash


@dataclass(frozen=True)
class PortfolioOutcome:
    run_dir: Path
    metrics: dict
    failures: dict[str, str]
    funnel: dict[str, int]
    stage_seconds: dict[str, float]
    wall_seconds: float
    montecarlo: dict | None = None  # montecarlo_summary.json, with --monte-carlo


Analysis = Callable[[pd.DataFrame, list], MonteCarloArtifact]  # (all_trades, sessions) -> Monte Carlo


def run(
    request: RunRequest,
    cfg: Config,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    analyse: Analysis | None = None,
) -> PortfolioOutcome:
    """Execute a portfolio run and write its folder; raise OrbError (one line) when nothing can be saved.

    `analyse` (the CLI's --monte-carlo) gets all_trades and the run's sessions; its result is written
    into the run. With `request.report` the folder gets portfolio_report.html."""
    started = time.perf_counter()
    run_id = start_run(request.output_dir, request.run_name)
    source = Source(request.source, request.start, request.end, request.data_path, request.cache_dir)
    with staging(request.output_dir, run_id) as tmp:
        sink = console.add_run_log(tmp / "run.log")
        try:
            logger.debug(f"command: {request.command}")
            logger.debug(f"config sha256 {cfg.sha256()}: {cfg.canonical_json()}")
            res = backtest(
                cfg,
                request.symbols,
                source,
                workers=workers or default_workers(),
                scheduler=scheduler,
                quiet=request.quiet,
            )
            manifest = build_manifest(
                request,
                cfg,
                run_id,
                res.loaded,
                res.failures,
                time.perf_counter() - started,
                mode="portfolio",
            )
            manifest |= {
                "benchmark": cfg.portfolio.benchmark,
                "sessions": int(res.universe["session_date"].nunique()),
                "stage_seconds": {k: round(v, 3) for k, v in res.stage_seconds.items()},
            }
            sessions = sorted(set(res.universe["session_date"]))
            montecarlo = None if analyse is None else analyse(res.trades, sessions)
            art = PortfolioArtifacts(
                res.universe, res.trades, res.fills, res.events, res.bars, res.equity, res.benchmark,
                res.metrics, cfg.to_dict(), montecarlo,
            )  # fmt: skip
            t0 = time.perf_counter()
            write_portfolio(tmp, art)
            manifest["stage_seconds"]["write"] = round(time.perf_counter() - t0, 3)
            finish_manifest(tmp, manifest)
            if request.report:  # the report reads the staged run through orb.runs.read: after a manifest
                from orb.report_portfolio import write_portfolio_report

                logger.info(f"portfolio: report {write_portfolio_report(tmp).name}")
                finish_manifest(tmp, manifest)
        finally:
            logger.remove(sink)
        run_dir = publish(tmp, request.output_dir, run_id)
    return PortfolioOutcome(
        run_dir, res.metrics, res.failures, res.funnel, res.stage_seconds, time.perf_counter() - started,
        None if montecarlo is None else montecarlo.summary(),
    )  # fmt: skip


def _stage(name: str, quiet: bool, fn: Callable, args: list[tuple], mapper) -> list:
    with console.progress(quiet) as bar:
        task = bar.add_task(name, total=max(len(args), 1), rate="")
        out = mapper(fn, args, lambda done: bar.update(task, completed=done))
        bar.update(task, completed=max(len(args), 1))
    return out


def backtest(
    cfg: Config,
    symbols: Sequence[str],
    source: Source | FrameSource,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    quiet: bool = True,
) -> PortfolioResult:
    """The portfolio backtest of `symbols` (strategy.md 10): stage 1, the universe, stage 2.

    Stage 1 keeps each symbol's eligible sessions in a scratch folder (deleted at the end) that stage 2
    reads in this process; a symbol whose stage 1 ran where the folder is not visible is re-loaded."""
    seconds: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="orb-portfolio-", ignore_cleanup_errors=True) as tmp,
        open_mapper(workers, scheduler) as mapper,  # closed first: no task writes into a deleted folder
    ):
        scratch = Path(tmp)
        t0 = time.perf_counter()
        args = [(sym, source, cfg, scratch) for sym in symbols]
        daily_results = _stage("Stage 1: daily values", quiet, stage1, args, mapper)
        seconds["stage1_daily_values"] = time.perf_counter() - t0
        failures = {r.symbol: r.error for r in daily_results if r.error is not None}
        ok = [r for r in daily_results if r.error is None]
        for r in ok:
            for warning in r.warnings:
                logger.warning(warning)
        if not ok:
            raise no_data_error(failures)
        t0 = time.perf_counter()
        benchmark = _benchmark(cfg, source)
        seconds["benchmark"] = time.perf_counter() - t0
        run_days = sorted(
            {d for r in ok for d in r.daily["session_date"]}
            | set(() if benchmark is None else benchmark["session_date"])
        )
        t0 = time.perf_counter()
        names = [r.symbol for r in ok]
        grid = build_grid(cfg, run_days, names, {r.symbol: r.daily for r in ok})
        chosen = grid[grid["status"] == "selected"]
        if chosen.empty:
            raise EmptyUniverseError(_empty_universe_message(grid))
        by_symbol = chosen.groupby("symbol", sort=True)["session_date"].apply(list)
        seconds["universe"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        kept = {r.symbol: r.kept for r in ok if r.kept is not None and r.kept.is_file()}
        args = [(sym, days, source, cfg, kept.get(sym)) for sym, days in by_symbol.items()]
        here = {a[0]: stage2(*a) for a in args if a[0] in kept}
        again = [a for a in args if a[0] not in kept]
        loaded = _stage("Stage 2: selected sessions", quiet, stage2, again, mapper) if again else []
        subsets = here | dict(zip((a[0] for a in again), loaded, strict=True))
        seconds["stage2_load_selected"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sched = schedule(run_days[0], run_days[-1], cfg.session.calendar)
    closes = pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8[sched.index.isin(pd.to_datetime(run_days))]
    selected = chosen.groupby("session_date", sort=True)["symbol"].apply(list).to_dict()
    account = simulate(cfg, run_days, closes, selected, subsets)
    seconds["stage2_simulate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = _tables(cfg, grid, account, benchmark, names)
    seconds["tables"] = time.perf_counter() - t0
    logger.info(
        f"portfolio: {len(names)} symbols x {len(run_days)} sessions, "
        f"{int((res['universe']['status'] == 'traded').sum())} symbol-sessions traded, "
        f"{len(res['trades'])} trades; " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
    )
    return PortfolioResult(
        **res,
        benchmark=benchmark,
        failures=failures,
        funnel=funnel(res["universe"]),
        stage_seconds=seconds,
        loaded={r.symbol: r.meta for r in ok},
    )


def _benchmark(cfg: Config, source: Source | FrameSource) -> pd.DataFrame | None:
    """The benchmark series (10.9.9), or None without `portfolio.benchmark`; DataError without bars."""
    symbol = cfg.portfolio.benchmark
    if symbol is None:
        return None
    where = f"between {source.start} and {source.end}" if source.start else "in the data"
    problem = f"benchmark {symbol} has no bars {where}; set portfolio.benchmark to a symbol with data"
    try:
        item = source.load(symbol, cfg)
    except DataError as exc:
        raise DataError(f"{problem} ({exc})") from None
    prepared = EventLoopBacktest(cfg, symbol).prepare(item.bars, source.start, source.end)
    days = [d.date() for d in prepared.sessions.dates[prepared.first_reported :]]
    series = benchmark_series(prepared, days)
    if series.empty:
        raise DataError(problem)
    return series


def _empty_universe_message(grid: pd.DataFrame) -> str:
    reasons = grid["reason"].value_counts()
    top = ", ".join(f"{reason} {count}" for reason, count in reasons.items())
    return (
        f"the universe is empty on every session ({len(grid)} symbol-sessions: {top}); "
        "loosen the universe.* bounds, add symbols or widen the dates"
    )


def _tables(cfg, grid, account, benchmark, symbols) -> dict:
    results = account.results
    trades = pd.concat([r.trades for r in results.values()], ignore_index=True)
    fills = pd.concat([r.fills for r in results.values()], ignore_index=True)
    events = pd.concat([r.events for r in results.values()], ignore_index=True)
    bars = pd.concat(
        [r.bars.reset_index().assign(symbol=sym) for sym, r in results.items()], ignore_index=True
    )
    bars = bars[["timestamp", "symbol", *[c for c in bars.columns if c not in ("timestamp", "symbol")]]]

    # universe: status and day values of the selected rows (10.6)
    key = ["session_date", "symbol"]
    per_day = trades.groupby(key, sort=False).agg(
        trades=("trade_id", "size"), day_r=("r_multiple", "sum"), day_pnl=("net_pnl", "sum")
    )
    idx = pd.MultiIndex.from_frame(grid[key])
    got = per_day.reindex(idx)
    picked = (grid["status"] == "selected").to_numpy()
    n = got["trades"].fillna(0).to_numpy(dtype=np.int64)
    universe = grid.assign(
        status=np.where(picked, np.where(n > 0, "traded", "no_signal"), grid["status"]),
        trades=n,
        day_r=got["day_r"].fillna(0.0).to_numpy(),
        day_pnl=got["day_pnl"].fillna(0.0).to_numpy(),
    )

    alloc = dict(zip(account.sessions["session_date"], account.sessions["alloc"], strict=True))
    rank = dict(zip(zip(grid["session_date"], grid["symbol"], strict=True), grid["rank"], strict=True))
    trades = trades.assign(
        alloc=trades["session_date"].map(alloc).astype(float),
        rank=pd.array(
            [rank[k] for k in zip(trades["session_date"], trades["symbol"], strict=True)], dtype="Int64"
        ),
    ).sort_values(["entry_time", "symbol"], kind="stable", ignore_index=True)
    fills = fills.sort_values(["time", "symbol"], kind="stable", ignore_index=True)
    events = events.sort_values(["time", "symbol"], kind="stable", ignore_index=True)

    aggregate = account_metrics(cfg, trades, account.equity, universe, account.sessions, symbols, benchmark)
    chosen = universe[universe["status"].isin(["traded", "no_signal"])]
    rows = {sym: frame for sym, frame in chosen.groupby("symbol", sort=True)}
    per_symbol = {
        sym: symbol_statistics(cfg, r.trades, rows[sym]) for sym, r in results.items() if len(r.trades)
    }
    return {
        "universe": universe,
        "trades": trades,
        "fills": fills,
        "events": events,
        "bars": bars,
        "equity": account.equity,
        "metrics": {"aggregate": aggregate, "per_symbol": per_symbol},
    }
