"""The shared Rich console, loguru sinks and the run's panels, progress bars and tables."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from loguru import logger
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=False, highlight=False)
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level:<7} | {name}:{function}:{line} - {message}"
_LEVEL_STYLE = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red", "DEBUG": "dim"}


def _console_sink(message) -> None:
    record = message.record
    level = record["level"].name
    style = _LEVEL_STYLE.get(level, "")
    label = "" if level == "INFO" else f"{level.lower()}: "
    console.print(f"{label}{record['message']}", style=style, markup=False, highlight=False, soft_wrap=True)


def setup_logging(level: str, log_file: Path | None = Path("backtest_run.log")) -> None:
    """Console sink at `level` (through the Rich console, so logs print above progress bars) and a
    rotated DEBUG file; tracebacks go to the file only."""
    logger.remove()
    logger.add(_console_sink, level=level, format="{message}", backtrace=False, diagnose=False)
    if log_file is not None:
        try:
            logger.add(
                log_file,
                level="DEBUG",
                format=LOG_FORMAT,
                rotation="10 MB",
                retention=5,
                encoding="utf-8",
                diagnose=False,
            )
        except OSError as exc:
            logger.warning(f"cannot write {log_file} ({exc.strerror}); logging to the console only")


def add_run_log(path: Path) -> int:
    """A DEBUG sink into the run's `run.log`; returns its id for `logger.remove`."""
    return logger.add(path, level="DEBUG", format=LOG_FORMAT, encoding="utf-8", diagnose=False)


def error_line(message: str) -> None:
    """The one console line of a failure (the log file gets the detail)."""
    console.print(f"error: {message}", style="bold red", markup=False, highlight=False, soft_wrap=True)


PROGRESS_ENV = "ORB_PROGRESS_FILE"


class _Progress(Progress):
    """Rich progress that, when ORB_PROGRESS_FILE is set (a run started as a job), also writes the
    latest task's description, counts and `rate` field to that file as JSON (atomically, at most 5/s)."""

    _written = 0.0

    def update(self, task_id, **kwargs) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._snapshot(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._snapshot(task_id)

    def _snapshot(self, task_id) -> None:
        target = os.environ.get(PROGRESS_ENV)
        task = self._tasks.get(task_id)
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


def progress(quiet: bool = False) -> Progress:
    """Progress bars with counts, rate-friendly columns and ETA."""
    return _Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=quiet,
    )


def header(rows: dict[str, str]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for key, value in rows.items():
        grid.add_row(key, value)
    console.print(Panel(grid, title="[bold]orb: Opening Range Breakout backtest", border_style="cyan"))


def _fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def symbol_table(per_symbol: dict[str, dict]) -> None:
    table = Table(title="Per-symbol results", title_style="bold", header_style="bold magenta")
    for col in ("Symbol", "Trades", "Win Rate", "Total R", "Avg R", "Profit Factor", "Sharpe", "Max DD R"):
        table.add_column(col, justify="left" if col == "Symbol" else "right")
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
            _fmt(m["sharpe"]),
            _fmt(m["max_drawdown_r"]),
        )
    console.print(table)


def aggregate_table(agg: dict) -> None:
    table = Table(title="Aggregate", title_style="bold", header_style="bold magenta")
    for col in ("Total Symbols", "Total Trades", "Total R", "Average R per Trade", "Win Rate", "Sharpe"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(agg["symbols"])),
        str(agg["total_trades"]),
        f"{agg['total_r']:+.2f}",
        _fmt(agg["avg_r_per_trade"], "+.3f"),
        _fmt(None if agg["win_rate"] is None else agg["win_rate"] * 100, ".1f", "%"),
        _fmt(agg["sharpe"]),
    )
    console.print(table)


def skipped_table(counts: dict[str, dict[str, int]]) -> None:
    """Sessions skipped, by symbol and reason."""
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


def completion(run_dir: Path, failures: dict[str, str], wall: float) -> None:
    runs_dir = run_dir.parent
    flag = "" if runs_dir.resolve() == Path("runs").resolve() else f" -- --runs-dir {runs_dir}"
    api_flag = "" if not flag else f" --runs-dir {runs_dir}"
    lines = [
        f"[bold]Run folder:[/] {run_dir}",
        f"[bold]Wall time:[/]  {wall:.2f} s",
        "",
        f"[bold]Dashboard:[/]  streamlit run streamlit_app.py{flag}",
        f"[bold]API:[/]        python api_server.py{api_flag}",
        f"            curl http://127.0.0.1:8000/api/runs/{run_dir.name}",
    ]
    if failures:
        lines += ["", "[bold red]Failed symbols:[/]"] + [f"  {sym}: {msg}" for sym, msg in failures.items()]
    style = "yellow" if failures else "green"
    title = "Run saved with failures" if failures else "Run complete"
    console.print(Panel("\n".join(lines), title=f"[bold]{title}", border_style=style))
