"""Research runs (`--sweep`, `--walk-forward`): load bars once, run the tasks, write one run folder.

The folder goes through the same staging/publish/manifest steps as a backtest (orb.runs.write); the
manifest adds `"mode": "sweep"` or `"walk_forward"`. Files and columns: docs/research.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger

from orb import console
from orb.config import Config
from orb.errors import ConfigError, DataError
from orb.pipeline import RunRequest, build_manifest, load_all, no_data_error
from orb.research.montecarlo import MonteCarloResult, monte_carlo
from orb.research.sweep import Combination, Sweep, check_rank_by, load_sweep, results_table
from orb.research.tasks import Runner, Task, TaskResult, open_backend
from orb.research.walkforward import (
    Fold,
    folds_table,
    make_folds,
    robustness,
    stitch,
    train_table,
    walk_forward,
)
from orb.runs.layout import RUN_LOG
from orb.runs.write import (
    SweepArtifacts,
    WalkForwardArtifacts,
    finish_manifest,
    publish,
    staging,
    start_run,
    write_sweep,
    write_walk_forward,
)
from orb.schema import RunMode

MAX_INVALID_LOGGED = 5


@dataclass(frozen=True)
class ResearchRequest:
    """The research flags, after validation."""

    sweep_path: Path
    rank_by: str = "total_r"
    workers: int = 1
    scheduler: str | None = None
    walk_forward: bool = False
    wf_train: int = 40
    wf_test: int = 10
    wf_anchored: bool = False
    monte_carlo: MonteCarloRequest | None = None  # walk-forward: bootstrap the stitched OOS trades


@dataclass(frozen=True)
class MonteCarloRequest:
    """`--monte-carlo N` with `--mc-by-session`, `--mc-dd R ...` and `--mc-seed N` (None: data.seed, which
    `--seed` sets)."""

    paths: int
    by_session: bool = False
    dd_thresholds: tuple[float, ...] = (5.0, 10.0, 20.0)
    seed: int | None = None


def bootstrap(
    trades: pd.DataFrame, mc: MonteCarloRequest, data_seed: int, sessions: Sequence[date] | None = None
) -> MonteCarloResult:
    """Bootstrap `trades` (orb.research.montecarlo) as `mc` asks, with `mc.seed` (else `data_seed`),
    logging the median result; `sessions` (a portfolio run's) are the units, by session."""
    seed = data_seed if mc.seed is None else mc.seed
    by_session = mc.by_session or sessions is not None
    result = monte_carlo(
        trades, mc.paths, seed, by_session=by_session, dd_thresholds=mc.dd_thresholds, sessions=sessions
    )
    units = "sessions" if by_session else "trades"
    logger.info(
        f"Monte Carlo: {mc.paths:,} paths over {result.n_units:,} {units} (seed {seed}); "
        f"median total R {result.percentiles['total_r']['p50']:+.2f}"
    )
    return result


def bootstrap_hook(mc: MonteCarloRequest, seed: int) -> Callable[[pd.DataFrame], MonteCarloResult]:
    """The `analyse` argument of orb.pipeline.run for `--monte-carlo`."""
    return lambda trades: bootstrap(trades, mc, seed)


def portfolio_bootstrap_hook(
    mc: MonteCarloRequest, seed: int
) -> Callable[[pd.DataFrame, Sequence[date]], MonteCarloResult]:
    """The `analyse` argument of orb.portfolio.run for `--monte-carlo`: the account's sessions are
    resampled (every session of the run, flat ones included), whatever `--mc-by-session` says."""
    return lambda trades, sessions: bootstrap(trades, mc, seed, sessions)


@dataclass(frozen=True)
class ResearchOutcome:
    run_dir: Path
    mode: str  # sweep | walk_forward
    table: pd.DataFrame  # sweep_results or wf_folds
    summary: dict[str, Any] = field(default_factory=dict)  # walk-forward robustness figures
    failures: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    montecarlo: dict[str, Any] | None = None  # montecarlo_summary.json, when the run has one


def check_sweep(cfg: Config, research: ResearchRequest) -> Sweep:
    """The checked sweep with at least one valid combination (ConfigError otherwise)."""
    check_rank_by(research.rank_by, portfolio=cfg.portfolio.enabled)
    sweep = load_sweep(research.sweep_path, cfg)
    if not sweep.valid:
        raise ConfigError(
            f"sweep file {sweep.path}: all {len(sweep.combinations)} combinations are invalid, "
            f"e.g. {sweep.invalid[0].error}"
        )
    return sweep


def data_sessions(bars: dict[str, pd.DataFrame], request: RunRequest, timezone: str) -> list[date]:
    """Session dates with bars of any symbol in start..end (a missing date: the data's first/last)."""
    days = sorted(
        {
            d.date()
            for b in bars.values()
            for d in pd.DatetimeIndex(b.index).tz_convert(timezone).normalize().unique()
        }
    )
    first, last = request.start or days[0], request.end or days[-1]
    return [d for d in days if first <= d <= last]


def run_research(request: RunRequest, cfg: Config, research: ResearchRequest) -> ResearchOutcome:
    """A sweep or walk-forward run end to end; raise OrbError when nothing could be saved."""
    started = time.perf_counter()
    sweep = check_sweep(cfg, research)
    mode = RunMode.WALK_FORWARD if research.walk_forward else RunMode.SWEEP
    run_id = start_run(request.output_dir, request.run_name)
    with staging(request.output_dir, run_id) as tmp:
        sink = console.add_run_log(tmp / RUN_LOG)
        try:
            logger.debug(f"command: {request.command}")
            logger.debug(f"config sha256 {cfg.sha256()}: {cfg.canonical_json()}")
            _log_invalid(sweep)
            loaded, failures = load_all(_with_benchmark(request, cfg), cfg)
            if not loaded:
                raise no_data_error(failures)
            bars = {sym: item.bars for sym, item in loaded.items()}
            sessions = data_sessions(bars, request, cfg.session.timezone)
            if not sessions:
                raise DataError(f"no session with bars between {request.start} and {request.end}")
            request = replace(request, start=sessions[0], end=sessions[-1])
            folds = (
                make_folds(sessions, research.wf_train, research.wf_test, research.wf_anchored)
                if research.walk_forward
                else []
            )
            where = f"Dask {research.scheduler}" if research.scheduler else f"{research.workers} worker(s)"
            logger.info(f"{mode}: {console.plural(len(sweep.valid), 'combination')} on {where}")
            workers = min(research.workers, len(sweep.valid) * max(len(folds), 1))
            bad = {sym: item.bad_sessions for sym, item in loaded.items() if item.bad_sessions}
            with open_backend(bars, bad=bad, workers=workers, scheduler=research.scheduler) as backend:
                if research.walk_forward:
                    run = _with_progress(backend, request.quiet, "Walk-forward")
                    wf = _walk_forward(sweep, folds, run, cfg, research)
                    write_walk_forward(tmp, wf)
                    table, summary, mc = wf.folds, wf.info["robustness"], wf.montecarlo
                else:
                    run = _with_progress(backend, request.quiet, "Sweep")
                    art = _sweep(sweep, run, request, research, cfg)
                    write_sweep(tmp, art)
                    table, summary, mc = art.table, {}, None
            wall = time.perf_counter() - started
            members = {s: item for s, item in loaded.items() if s in request.symbols}  # not the benchmark
            manifest = build_manifest(request, cfg, run_id, members, failures, wall, mode)
            finish_manifest(tmp, manifest)
        finally:
            logger.remove(sink)
        run_dir = publish(tmp, request.output_dir, run_id)
    wall = time.perf_counter() - started
    mc_summary = mc.summary() if mc is not None else None
    return ResearchOutcome(run_dir, mode, table, summary, failures, wall, mc_summary)


def _with_benchmark(request: RunRequest, cfg: Config) -> RunRequest:
    """The request whose bars a sweep loads: a portfolio's benchmark too (10.8), loaded once."""
    extra = cfg.portfolio.benchmark if cfg.portfolio.enabled else None
    if extra is None or extra in request.symbols:
        return request
    return replace(request, symbols=[*request.symbols, extra])


def _log_invalid(sweep: Sweep) -> None:
    bad = sweep.invalid
    for combo in bad[:MAX_INVALID_LOGGED]:
        logger.warning(f"sweep combination {combo.index} skipped: {combo.error}")
    if len(bad) > MAX_INVALID_LOGGED:
        logger.warning(f"... and {len(bad) - MAX_INVALID_LOGGED} more invalid combinations (see sweep.json)")


def _invalid_json(sweep: Sweep) -> list[dict[str, Any]]:
    return [
        {"combination": c.index, "params": json.loads(json.dumps(c.params, default=str)), "error": c.error}
        for c in sweep.invalid
    ]


def _with_progress(backend: Runner, quiet: bool, label: str) -> Callable[[list[Task]], list[TaskResult]]:
    """`backend` with a progress bar over each list of tasks (walk-forward: train, then test windows)."""

    def run(tasks: list[Task]) -> list[TaskResult]:
        started = time.perf_counter()
        with console.progress(quiet) as bar:
            name = f"{label} {'test' if tasks[0].keep_frames else 'train'}" if label != "Sweep" else label
            task_id = bar.add_task(name, total=len(tasks), rate="")

            def tick(done: int) -> None:
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar.update(task_id, completed=done, rate=f"{rate:,.1f} tasks/s")

            results = backend(tasks, tick)
        took = time.perf_counter() - started
        logger.debug(f"{name}: {len(tasks)} tasks in {took:.2f} s ({len(tasks) / max(took, 1e-9):.1f}/s)")
        return results

    return run


def _sweep(sweep: Sweep, run, request: RunRequest, research: ResearchRequest, cfg: Config) -> SweepArtifacts:
    valid = sweep.valid
    universe = tuple(request.symbols)  # a portfolio's; the loaded bars may also hold its benchmark
    results = run(
        [Task(i, c.config, request.start, request.end, symbols=universe) for i, c in enumerate(valid)]
    )
    for r in results:
        if r.note:
            logger.warning(f"sweep combination {valid[r.index].index}: {r.note}")
    outcomes = [(c, r.per_symbol, r.aggregate) for c, r in zip(valid, results, strict=True)]
    table = results_table(sweep, outcomes, research.rank_by, portfolio=cfg.portfolio.enabled)
    best = table.iloc[0]
    info = {
        "sweep_file": str(sweep.path),
        "spec": sweep.spec,
        "keys": list(sweep.keys),
        "rank_by": research.rank_by,
        "combinations": len(sweep.combinations),
        "evaluated": len(valid),
        "invalid": _invalid_json(sweep),
        "best": {"combination": int(best["combination"]), "params": _params(valid, best)},
    }
    return SweepArtifacts(table=table, info=info, config=cfg.to_dict())


def _params(valid: list[Combination], row: pd.Series) -> dict[str, Any]:
    return next(c.params for c in valid if c.index == int(row["combination"]))


def _walk_forward(
    sweep: Sweep,
    folds: list[Fold],
    run,
    cfg: Config,
    research: ResearchRequest,
) -> WalkForwardArtifacts:
    wf = walk_forward(sweep, folds, research.rank_by, run)
    oos = stitch(wf, cfg)
    summary = robustness(wf, sweep)
    mc = research.monte_carlo
    info = {
        "sweep_file": str(sweep.path),
        "spec": sweep.spec,
        "keys": list(sweep.keys),
        "rank_by": research.rank_by,
        "train_sessions": research.wf_train,
        "test_sessions": research.wf_test,
        "anchored": research.wf_anchored,
        "combinations": len(sweep.combinations),
        "evaluated": len(sweep.valid),
        "invalid": _invalid_json(sweep),
        "robustness": summary,
    }
    return WalkForwardArtifacts(
        folds=folds_table(wf, sweep),
        train_results=train_table(wf, sweep, research.rank_by),
        oos_trades=oos.trades,
        oos_equity=oos.equity,
        metrics=oos.metrics,
        info=info,
        config=cfg.to_dict(),
        montecarlo=bootstrap(oos.trades, mc, cfg.data.seed) if mc is not None else None,
    )


def cli(request: RunRequest, cfg: Config, research: ResearchRequest) -> int:
    """`run_backtest.py --sweep ...`: run, print the tables, return the exit code."""
    outcome = run_research(request, cfg, research)
    sweep_keys = tuple(c for c in outcome.table.columns if "." in c)
    if not request.quiet:
        if outcome.mode == RunMode.SWEEP:
            console.print_sweep(outcome.table, sweep_keys, research.rank_by)
        else:
            console.print_walk_forward(outcome.table, sweep_keys, outcome.summary)
            if outcome.montecarlo is not None:
                console.print_monte_carlo(outcome.montecarlo)
        console.completion(outcome.run_dir, outcome.failures, outcome.wall_seconds)
    else:
        for message in outcome.failures.values():
            console.error_line(message)
        console.console.print(str(outcome.run_dir))
    return 1 if outcome.failures else 0
