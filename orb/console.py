"""The shared Rich console, loguru sinks and the run's panels, progress bars and tables (backtest and
research runs). Rich is imported when something is first drawn: a quiet run that prints only its run
folder never loads it."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from loguru import logger

from orb import metric_registry
from orb.reasons import skip_meaning
from orb.runs.layout import AGGREGATE

if TYPE_CHECKING:
    from rich.table import Table

TOP_ROWS = 10  # combinations shown after a sweep


class _Console:
    """The process's Rich console (stdout, no highlighting), created on first use."""

    @functools.cached_property
    def rich(self):
        from rich.console import Console

        return Console(stderr=False, highlight=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


console = _Console()
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level:<7} | {name}:{function}:{line} - {message}"
SMALL_SAMPLE_TRADES = 30  # a Sharpe ratio from fewer trades is marked as a small sample
_LEVEL_STYLE = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red", "DEBUG": "dim"}


def _console_sink(message) -> None:
    record = message.record
    level = record["level"].name
    style = _LEVEL_STYLE.get(level, "")
    label = "" if level == "INFO" else f"{level.lower()}: "
    console.print(f"{label}{record['message']}", style=style, markup=False, highlight=False, soft_wrap=True)


class _LogFile(RotatingFileHandler):
    """The DEBUG log file as a loguru sink: rotated at 10 MB, 5 old files kept. The first write error
    (disk full, read-only folder) prints one warning and turns the file off; the run goes on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8", delay=True)
        self.failed = False

    def write(self, message: str) -> None:
        if not self.failed:
            self.emit(logging.makeLogRecord({"msg": message.rstrip("\n")}))

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            self._give_up(exc)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self._give_up(sys.exc_info()[1])

    def _give_up(self, exc: BaseException | None) -> None:
        if self.failed:
            return
        self.failed = True
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        console.print(
            f"warning: cannot write {self.baseFilename} ({reason}); logging to the console only",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def stop(self) -> None:
        """Called by loguru when the sink is removed (also at exit)."""
        with contextlib.suppress(OSError):
            self.close()


def setup_logging(level: str, log_file: Path | None = Path("backtest_run.log")) -> None:
    """Console sink at `level` (through the Rich console, so logs print above progress bars) and a
    rotated DEBUG file; tracebacks go to the file only."""
    logger.remove()
    logger.add(_console_sink, level=level, format="{message}", backtrace=False, diagnose=False)
    if log_file is not None:
        file_sink = _LogFile(Path(log_file))
        file_sink.setFormatter(logging.Formatter("%(message)s"))
        logger.add(file_sink, level="DEBUG", format=LOG_FORMAT, diagnose=False)


def add_run_log(path: Path) -> int:
    """A DEBUG sink into the run's `run.log`; returns its id for `logger.remove`."""
    return logger.add(path, level="DEBUG", format=LOG_FORMAT, encoding="utf-8", diagnose=False)


def error_line(message: str) -> None:
    """The one console line of a failure (the log file gets the detail)."""
    console.print(f"error: {message}", style="bold red", markup=False, highlight=False, soft_wrap=True)


PROGRESS_ENV = "ORB_PROGRESS_FILE"


class _JobFile:
    """When ORB_PROGRESS_FILE is set (a run started as a job), the latest task's description, counts
    and `rate` field go to that file as JSON (atomically, at most 5/s, always at a task's end)."""

    _written = 0.0

    def _snapshot(self, task) -> None:
        target = os.environ.get(PROGRESS_ENV)
        now = time.monotonic()
        if not target or task is None or (now - self._written < 0.2 and task.completed < (task.total or 0)):
            return
        self._written = now
        state = {
            "description": task.description,
            "completed": task.completed,
            "total": task.total,
            "detail": str(task.fields.get("rate", "")),
        }
        tmp = f"{target}.{os.getpid()}"
        try:
            Path(tmp).write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            logger.debug(f"cannot write the job progress file {target}")


@functools.cache
def _rich_progress() -> type:
    """Rich's Progress with the job file."""
    from rich.progress import Progress

    class _Progress(_JobFile, Progress):
        def update(self, task_id, **kwargs) -> None:  # type: ignore[override]
            super().update(task_id, **kwargs)
            self._snapshot(self._tasks.get(task_id))

        def advance(self, task_id, advance: float = 1) -> None:
            super().advance(task_id, advance)
            self._snapshot(self._tasks.get(task_id))

    return _Progress


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0
    fields: dict = field(default_factory=dict)


class _QuietProgress(_JobFile):
    """A quiet run's progress: the same calls as Rich's Progress (add_task, update, advance, tasks),
    counts kept for the job file, nothing drawn, Rich not loaded."""

    def __init__(self) -> None:
        self.tasks: list[_Task] = []

    def __enter__(self) -> _QuietProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = 100, **fields: Any) -> int:
        self.tasks.append(_Task(description, total, fields=fields))
        return len(self.tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if advance is not None:
            task.completed += advance
        if completed is not None:
            task.completed = completed
        if description is not None:
            task.description = description
        task.fields.update(fields)
        self._snapshot(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)


def progress(quiet: bool = False):
    """Progress bars with counts, rate-friendly columns and ETA (`quiet`: none drawn)."""
    if quiet:
        return _QuietProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return _rich_progress()(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console.rich,
        transient=False,
    )


def header(rows: dict[str, str]) -> None:
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for key, value in rows.items():
        grid.add_row(key, value)
    console.print(Panel(grid, title="[bold]orb: Opening Range Breakout backtest", border_style="cyan"))


def plural(count: int, noun: str) -> str:
    """`1 trade`, `2 trades`, `0 trades`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _sharpe(value, trades: int) -> str:
    """The Sharpe cell: marked `*` when it rests on fewer than SMALL_SAMPLE_TRADES trades."""
    text = _fmt(value)
    return f"{text}*" if value is not None and trades < SMALL_SAMPLE_TRADES else text


def _small_sample_note(table: Table, trade_counts: list[int]) -> None:
    if any(n < SMALL_SAMPLE_TRADES for n in trade_counts):
        table.caption = f"* Sharpe from fewer than {SMALL_SAMPLE_TRADES} trades: a small sample, not reliable"


def symbol_table(per_symbol: dict[str, dict]) -> None:
    from rich.table import Table

    table = Table(title="Per-symbol results", title_style="bold", header_style="bold magenta")
    table.add_column("Symbol", justify="left")
    for key in ("total_trades", "win_rate", "total_r", "avg_r", "profit_factor", "sharpe", "max_drawdown_r"):
        table.add_column(metric_registry.header(key), justify="right")
    for sym, m in per_symbol.items():
        total_r = m["total_r"]
        colour = "green" if total_r > 0 else "red" if total_r < 0 else ""
        table.add_row(
            sym,
            str(m["total_trades"]),
            _fmt(None if m["win_rate"] is None else m["win_rate"] * 100, ".1f", "%"),
            f"[{colour}]{total_r:+.2f}[/]" if colour else f"{total_r:+.2f}",
            _fmt(m["avg_r"], "+.3f"),
            _fmt(m["profit_factor"]),
            _sharpe(m["sharpe"], m["total_trades"]),
            _fmt(m["max_drawdown_r"]),
        )
    _small_sample_note(table, [m["total_trades"] for m in per_symbol.values() if m["sharpe"] is not None])
    console.print(table)


def aggregate_table(agg: dict) -> None:
    from rich.table import Table

    table = Table(title="Aggregate", title_style="bold", header_style="bold magenta")
    # the aggregate table's headers are named by interfaces.md (the registry's labels serve per-symbol)
    for header in ("Total Symbols", "Total Trades", "Total R", "Average R per Trade", "Win Rate", "Sharpe"):
        table.add_column(header, justify="right")
    table.add_row(
        str(len(agg["symbols"])),
        str(agg["total_trades"]),
        f"{agg['total_r']:+.2f}",
        _fmt(agg["avg_r_per_trade"], "+.3f"),
        _fmt(None if agg["win_rate"] is None else agg["win_rate"] * 100, ".1f", "%"),
        _sharpe(agg["sharpe"], agg["total_trades"]),
    )
    _small_sample_note(table, [agg["total_trades"]] if agg["sharpe"] is not None else [])
    console.print(table)


def skipped_table(counts: dict[str, dict[str, int]]) -> None:
    """Sessions skipped, by symbol and reason."""
    from rich.table import Table

    if not any(counts.values()):
        console.print("No session was skipped.", style="dim")
        return
    reasons = sorted({r for per in counts.values() for r in per})
    table = Table(title="Sessions skipped", title_style="bold", header_style="bold magenta")
    table.add_column("Symbol")
    for reason in reasons:
        table.add_column(reason, justify="right")
    for sym, per in counts.items():
        table.add_row(sym, *(str(per.get(r, 0)) for r in reasons))
    console.print(table)
    for reason in reasons:
        console.print(f"  {reason}: {skip_meaning(reason)}", style="dim", markup=False, highlight=False)


def run_path(run_dir: Path) -> None:
    """The run folder as the last line of a quiet run, exactly as it is (no markup, emoji or wrapping)."""
    sys.stdout.write(f"{run_dir}\n")
    sys.stdout.flush()


def completion(run_dir: Path, failures: dict[str, str], wall: float) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    runs_dir = run_dir.parent
    default = runs_dir.resolve() == Path("runs").resolve()
    folder, parent = escape(str(run_dir)), escape(str(runs_dir))  # a path may hold [...]
    flag = "" if default else f" -- --runs-dir {parent}"
    api_flag = "" if not flag else f" --runs-dir {parent}"
    lines = [
        f"[bold]Run folder:[/] {folder}",
        f"[bold]Wall time:[/]  {wall:.2f} s",
        "",
        f"[bold]Dashboard:[/]  streamlit run streamlit_app.py{flag}",
        f"[bold]API:[/]        python api_server.py{api_flag}",
        f"            curl http://127.0.0.1:8000/api/runs/{escape(run_dir.name)}",
    ]
    if failures:
        lines += ["", "[bold red]Failed symbols:[/]"] + [
            f"  {sym}: {escape(msg)}" for sym, msg in failures.items()
        ]
    style = "yellow" if failures else "green"
    title = "Run saved with failures" if failures else "Run complete"
    console.print(Panel("\n".join(lines), title=f"[bold]{title}", border_style=style))


# ---------------------------------------------------------------------------------------------- research
def _cell(value: Any, spec: str = "+.2f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:{spec}}"
    return str(value)


def _labels(keys: tuple[str, ...]) -> list[str]:
    """Short column labels: the last part of each dotted key, unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)]


METRIC_LABELS = {  # research tables: header and format spec from the metric registry
    key: (metric_registry.header(key), metric_registry.METRICS[key].spec)
    for key in ("total_trades", "total_r", "win_rate", "profit_factor", "max_drawdown_r", "sharpe")
}


def _param_text(row: pd.Series, keys: tuple[str, ...]) -> str:
    return " ".join(f"{label}={_cell(row[k], 'g')}" for k, label in zip(keys, _labels(keys), strict=True))


def _research_table(title: str) -> Table:
    from rich import box
    from rich.table import Table

    return Table(
        title=title, title_style="bold", header_style="bold magenta", box=box.SIMPLE_HEAD, pad_edge=False
    )


def print_sweep(table: pd.DataFrame, keys: tuple[str, ...], rank_by: str) -> None:
    """The best combinations (aggregate rows) as a Rich table; parameters wrap, numbers never do."""
    agg = table[table["symbol"] == AGGREGATE].head(TOP_ROWS)
    metrics = dict(METRIC_LABELS)
    metrics.setdefault(rank_by, (rank_by, ".3g"))
    out = _research_table(f"Top {len(agg)} combinations by {rank_by} (all symbols)")
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
            *(_cell(row[m], spec) for m, (_, spec) in metrics.items()),
        )
    console.print(out)


def print_walk_forward(table: pd.DataFrame, keys: tuple[str, ...], summary: dict[str, Any]) -> None:
    """The folds and the robustness figures."""
    out = _research_table("Walk-forward folds (chosen on train, traded on test)")
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
            _cell(row["is_total_r"]),
            _cell(row["oos_total_r"]),
            str(row["oos_total_trades"]),
        )
    console.print(out)
    eff = summary["efficiency"]
    console.print(
        f"OOS total R {summary['oos_total_r']:+.2f} over {summary['folds']} folds; "
        f"walk-forward efficiency {'-' if eff is None else f'{eff:.2f}'}; "
        f"profitable OOS folds {summary['profitable_fold_share']:.0%}; "
        f"combination changed {summary['combination_changes']} times",
        markup=False,
        highlight=False,
    )


def print_monte_carlo(summary: dict[str, Any]) -> None:
    """Percentiles and drawdown probabilities of a run's montecarlo_summary.json."""
    out = _research_table(
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
            _cell(float(summary["observed"][stat]), spec),
            *(_cell(row[f"p{q}"], spec) for q in (5, 25, 50, 75, 95)),
        )
    console.print(out)
    probs = ", ".join(
        f"{t:g} R: {summary['prob_max_drawdown_exceeds'][key]:.1%}"
        for t, key in zip(summary["drawdown_thresholds_r"], summary["prob_max_drawdown_exceeds"], strict=True)
    )
    console.print(f"P(max drawdown deeper than) {probs}", markup=False, highlight=False)
