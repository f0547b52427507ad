"""Research runs (`--sweep`, `--walk-forward`): load bars once, run the tasks, write one run folder.

The folder goes through the same staging/publish/manifest steps as a backtest (orb.writer); the
manifest adds `"mode": "sweep"` or `"walk_forward"`. Files and columns: docs/research.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger
from rich import box
from rich.table import Table

from orb import console
from orb.config import Config
from orb.errors import ConfigError, DataError
from orb.pipeline import RunRequest, build_manifest, load_all, no_data_error
from orb.research.montecarlo import SUMMARY_FILE, monte_carlo, write_monte_carlo
from orb.research.sweep import AGGREGATE, Combination, Sweep, check_rank_by, load_sweep, results_table
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
from orb.writer import (
    base_run_id,
    ensure_writable,
    finish_manifest,
    publish,
    reserve_run_id,
    staging,
    sweep_stale,
    write_csv,
    write_json,
    write_parquet,
)

TOP_ROWS = 10
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


def monte_carlo_files(trades: pd.DataFrame, folder: Path, mc: MonteCarloRequest, data_seed: int) -> list[str]:
    """Bootstrap `trades` (orb.research.montecarlo) with `mc.seed` (else `data_seed`) and write its files
    into the staged run `folder`."""
    seed = data_seed if mc.seed is None else mc.seed
    result = monte_carlo(trades, mc.paths, seed, by_session=mc.by_session, dd_thresholds=mc.dd_thresholds)
    names = write_monte_carlo(result, folder)
    units = "sessions" if mc.by_session else "trades"
    logger.info(
        f"Monte Carlo: {mc.paths:,} paths over {result.n_units:,} {units} (seed {seed}); "
        f"median total R {result.percentiles['total_r']['p50']:+.2f}"
    )
    return names


@dataclass(frozen=True)
class ResearchOutcome:
    run_dir: Path
    mode: str  # sweep | walk_forward
    table: pd.DataFrame  # sweep_results or wf_folds
    summary: dict[str, Any] = field(default_factory=dict)  # walk-forward robustness figures
    failures: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0


def check_sweep(cfg: Config, research: ResearchRequest) -> Sweep:
    """The checked sweep with at least one valid combination (ConfigError otherwise)."""
    check_rank_by(research.rank_by)
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
    mode = "walk_forward" if research.walk_forward else "sweep"
    ensure_writable(request.output_dir)
    for stale in sweep_stale(request.output_dir):
        logger.debug(f"removed the temp folder of a crashed run: {stale}")
    run_id = reserve_run_id(request.output_dir, base_run_id(datetime.now(), request.run_name))
    with staging(request.output_dir, run_id) as tmp:
        sink = console.add_run_log(tmp / "run.log")
        try:
            logger.debug(f"command: {request.command}")
            logger.debug(f"config sha256 {cfg.sha256()}: {cfg.canonical_json()}")
            _log_invalid(sweep)
            loaded, failures = load_all(request, cfg)
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
            with open_backend(bars, workers=workers, scheduler=research.scheduler) as backend:
                if research.walk_forward:
                    run = _with_progress(backend, request.quiet, "Walk-forward")
                    table, summary = _walk_forward(tmp, sweep, folds, run, cfg, research)
                else:
                    run = _with_progress(backend, request.quiet, "Sweep")
                    table, summary = _sweep(tmp, sweep, run, request, research), {}
            write_json(cfg.to_dict(), tmp / "config.json")
            wall = time.perf_counter() - started
            manifest = build_manifest(request, cfg, run_id, loaded, failures, wall, mode)
            finish_manifest(tmp, manifest)
        finally:
            logger.remove(sink)
        run_dir = publish(tmp, request.output_dir, run_id)
    return ResearchOutcome(run_dir, mode, table, summary, failures, time.perf_counter() - started)


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


def _sweep(tmp: Path, sweep: Sweep, run, request: RunRequest, research: ResearchRequest) -> pd.DataFrame:
    valid = sweep.valid
    results = run([Task(i, c.config, request.start, request.end) for i, c in enumerate(valid)])
    outcomes = [(c, r.per_symbol, r.aggregate) for c, r in zip(valid, results, strict=True)]
    table = results_table(sweep, outcomes, research.rank_by)
    write_parquet(table, tmp / "sweep_results.parquet")
    write_csv(table, tmp / "sweep_results.csv")
    best = table.iloc[0]
    write_json(
        {
            "sweep_file": str(sweep.path),
            "spec": sweep.spec,
            "keys": list(sweep.keys),
            "rank_by": research.rank_by,
            "combinations": len(sweep.combinations),
            "evaluated": len(valid),
            "invalid": _invalid_json(sweep),
            "best": {"combination": int(best["combination"]), "params": _params(valid, best)},
        },
        tmp / "sweep.json",
    )
    return table


def _params(valid: list[Combination], row: pd.Series) -> dict[str, Any]:
    return next(c.params for c in valid if c.index == int(row["combination"]))


def _walk_forward(
    tmp: Path,
    sweep: Sweep,
    folds: list[Fold],
    run,
    cfg: Config,
    research: ResearchRequest,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    wf = walk_forward(sweep, folds, research.rank_by, run)
    table = folds_table(wf, sweep)
    oos = stitch(wf, cfg)
    summary = robustness(wf, sweep)
    write_parquet(table, tmp / "wf_folds.parquet")
    write_csv(table, tmp / "wf_folds.csv")
    write_parquet(train_table(wf, sweep, research.rank_by), tmp / "wf_train_results.parquet")
    write_parquet(oos.trades, tmp / "wf_oos_trades.parquet")
    write_csv(oos.trades, tmp / "wf_oos_trades.csv")
    write_parquet(oos.equity, tmp / "wf_oos_equity.parquet")
    if research.monte_carlo is not None:
        monte_carlo_files(oos.trades, tmp, research.monte_carlo, cfg.data.seed)
    write_json(
        {
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
        },
        tmp / "walk_forward.json",
    )
    write_json(oos.metrics, tmp / "metrics.json")  # the walk-forward's result: its stitched OOS run
    return table, summary


# ---------------------------------------------------------------------------------------------- console
def _fmt(value: Any, spec: str = "+.2f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:{spec}}"
    return str(value)


def _labels(keys: tuple[str, ...]) -> list[str]:
    """Short column labels: the last part of each dotted key, unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)]


METRIC_LABELS = {
    "total_trades": ("Trades", "d"),
    "total_r": ("Total R", "+.2f"),
    "win_rate": ("Win %", ".1%"),
    "profit_factor": ("PF", ".2f"),
    "max_drawdown_r": ("Max DD R", ".2f"),
    "sharpe": ("Sharpe", ".2f"),
}


def _param_text(row: pd.Series, keys: tuple[str, ...]) -> str:
    return " ".join(f"{label}={_fmt(row[k], 'g')}" for k, label in zip(keys, _labels(keys), strict=True))


def _table(title: str) -> Table:
    return Table(
        title=title, title_style="bold", header_style="bold magenta", box=box.SIMPLE_HEAD, pad_edge=False
    )


def print_sweep(table: pd.DataFrame, keys: tuple[str, ...], rank_by: str) -> None:
    """The best combinations (aggregate rows) as a Rich table; parameters wrap, numbers never do."""
    agg = table[table["symbol"] == AGGREGATE].head(TOP_ROWS)
    metrics = dict(METRIC_LABELS)
    metrics.setdefault(rank_by, (rank_by, ".3g"))
    out = _table(f"Top {len(agg)} combinations by {rank_by} (all symbols)")
    out.add_column("Rank", justify="right", no_wrap=True)
    out.add_column("#", justify="right", no_wrap=True)
    out.add_column("Parameters", ratio=1, min_width=12, overflow="fold")
    for label, _ in metrics.values():
        out.add_column(label, justify="right", no_wrap=True, min_width=len(label))
    for _, row in agg.iterrows():
        out.add_row(
            str(row["rank"]),
            str(row["combination"]),
            _param_text(row, keys),
            *(_fmt(row[m], spec) for m, (_, spec) in metrics.items()),
        )
    console.console.print(out)


def print_walk_forward(table: pd.DataFrame, keys: tuple[str, ...], summary: dict[str, Any]) -> None:
    """The folds and the robustness figures."""
    out = _table("Walk-forward folds (chosen on train, traded on test)")
    out.add_column("Fold", justify="right", no_wrap=True)
    out.add_column("Test window", no_wrap=True)
    out.add_column("Chosen parameters", ratio=1, min_width=12, overflow="fold")
    for col in ("IS R", "OOS R", "OOS trades"):
        out.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for _, row in table.iterrows():
        out.add_row(
            str(row["fold"]),
            f"{row['test_start']}..{row['test_end']}",
            _param_text(row, keys),
            _fmt(row["is_total_r"]),
            _fmt(row["oos_total_r"]),
            str(row["oos_total_trades"]),
        )
    console.console.print(out)
    eff = summary["efficiency"]
    console.console.print(
        f"OOS total R {summary['oos_total_r']:+.2f} over {summary['folds']} folds; "
        f"walk-forward efficiency {'-' if eff is None else f'{eff:.2f}'}; "
        f"profitable OOS folds {summary['profitable_fold_share']:.0%}; "
        f"combination changed {summary['combination_changes']} times",
        markup=False,
        highlight=False,
    )


def print_monte_carlo(run_dir: Path) -> None:
    """Percentiles and drawdown probabilities from the run's montecarlo_summary.json."""
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    out = _table(
        f"Monte Carlo: {summary['n_paths']:,} resamplings of {summary['n_units']:,} {summary['resample']}"
    )
    out.add_column("Statistic")
    for col in ("observed", "p5", "p25", "p50", "p75", "p95"):
        out.add_column(col, justify="right", no_wrap=True)
    for stat, label in (
        ("total_r", "Total R"),
        ("max_drawdown_r", "Max drawdown R"),
        ("longest_losing_streak", "Longest losing streak"),
    ):
        spec = ".0f" if stat == "longest_losing_streak" else "+.2f"
        row = summary["percentiles"][stat]
        out.add_row(
            label,
            _fmt(float(summary["observed"][stat]), spec),
            *(_fmt(row[f"p{q}"], spec) for q in (5, 25, 50, 75, 95)),
        )
    console.console.print(out)
    probs = ", ".join(
        f"{t:g} R: {summary['prob_max_drawdown_exceeds'][key]:.1%}"
        for t, key in zip(summary["drawdown_thresholds_r"], summary["prob_max_drawdown_exceeds"], strict=True)
    )
    console.console.print(f"P(max drawdown deeper than) {probs}", markup=False, highlight=False)


def cli(request: RunRequest, cfg: Config, research: ResearchRequest) -> int:
    """`run_backtest.py --sweep ...`: run, print the tables, return the exit code."""
    outcome = run_research(request, cfg, research)
    sweep_keys = tuple(c for c in outcome.table.columns if "." in c)
    if not request.quiet:
        if outcome.mode == "sweep":
            print_sweep(outcome.table, sweep_keys, research.rank_by)
        else:
            print_walk_forward(outcome.table, sweep_keys, outcome.summary)
            if research.monte_carlo is not None:
                print_monte_carlo(outcome.run_dir)
        console.completion(outcome.run_dir, outcome.failures, outcome.wall_seconds)
    else:
        for message in outcome.failures.values():
            console.error_line(message)
        console.console.print(str(outcome.run_dir))
    return 1 if outcome.failures else 0
