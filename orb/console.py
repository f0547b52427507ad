"""The shared Rich console, loguru sinks and the run's panels, progress bars and tables."""

from __future__ import annotations

import contextlib
import logging
import sys
from logging.handlers import RotatingFileHandler
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

from orb.reasons import skip_meaning

console = Console(stderr=False, highlight=False)
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


def progress(quiet: bool = False) -> Progress:
    """Progress bars with counts, rate-friendly columns and ETA."""
    return Progress(
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
            _sharpe(m["sharpe"], m["total_trades"]),
            _fmt(m["max_drawdown_r"]),
        )
    _small_sample_note(table, [m["total_trades"] for m in per_symbol.values() if m["sharpe"] is not None])
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
        _sharpe(agg["sharpe"], agg["total_trades"]),
    )
    _small_sample_note(table, [agg["total_trades"]] if agg["sharpe"] is not None else [])
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
    for reason in reasons:
        console.print(f"  {reason}: {skip_meaning(reason)}", style="dim", markup=False, highlight=False)


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
