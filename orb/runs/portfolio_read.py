"""Read side of portfolio runs (run-format.md "Portfolio runs"): the universe, the benchmark and the
per-symbol views of the combined tables (all_trades, all_fills, all_events, bars), filtered by symbol.

orb.runs.read sends a portfolio run's trades, fills, events, bars and sessions here, so every front end
reads both modes through that one module. A file only portfolio runs write, asked of another run, is
OutputNotFound (404 in the API). Nothing here writes or recomputes what a file holds.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orb.runs.layout import ALL_EVENTS, ALL_FILLS, ALL_TRADES, BENCHMARK, PORTFOLIO_BARS, UNIVERSE
from orb.runs.store import (
    OutputNotFound,
    Page,
    PathLike,
    _manifest,
    _mode,
    _read_table,
    _symbol,
    as_date,
    date_scalar,
    one_local_day,
    records,
)
from orb.schema import RunMode


def is_portfolio(path: PathLike) -> bool:
    """Whether the run folder's manifest says `mode: portfolio`."""
    run = Path(path)
    return _mode(run, _manifest(run)) == RunMode.PORTFOLIO


def _portfolio_run(path: PathLike, name: str) -> Path:
    run = Path(path)
    mode = _mode(run, _manifest(run))
    if mode != RunMode.PORTFOLIO:
        raise OutputNotFound(
            f"run {run.name} is a {mode} run, not a portfolio run: it has no {name}; "
            "pass a portfolio run's id (GET /api/runs, mode portfolio)"
        )
    return run


def _filtered(table: pa.Table, symbol: str | None, session_date: date | None) -> pa.Table:
    conditions = []
    if symbol is not None:
        conditions.append(pc.field("symbol") == symbol)
    if session_date is not None:
        typ = table.schema.field("session_date").type
        conditions.append(pc.field("session_date") == date_scalar(session_date, typ))
    if not conditions:
        return table
    return table.filter(conditions[0] if len(conditions) == 1 else conditions[0] & conditions[1])


# ---------------------------------------------------------------------------------------------- universe


def _universe_table(path: PathLike, session_date: date | str | None, symbol: str | None) -> pa.Table:
    run = _portfolio_run(path, UNIVERSE)
    sym = None if symbol is None else _symbol(run, symbol)
    return _filtered(_read_table(run, UNIVERSE), sym, as_date(session_date, "date"))


def load_universe(path: PathLike, date: date | str | None = None, symbol: str | None = None) -> pd.DataFrame:
    """universe.parquet (one row per session and symbol), only `date`'s and/or `symbol`'s rows if given.

    Rows are as stored: by session, then symbol. OutputNotFound for a run that is not a portfolio run.
    """
    return _universe_table(path, date, symbol).to_pandas()


def universe_page(path: PathLike, date: date | str | None = None, symbol: str | None = None) -> Page:
    """Universe rows as JSON-safe records (filtered like load_universe), plus their number."""
    table = _universe_table(path, date, symbol)
    return Page(total=table.num_rows, records=records(table))


def session_dates(path: PathLike) -> list[date]:
    """Every session of a portfolio run (the universe grid's dates), ascending."""
    table = _read_table(_portfolio_run(path, UNIVERSE), UNIVERSE, ["session_date"])
    days = pd.to_datetime(pd.Series(pc.unique(table.column("session_date")).to_pylist())).dt.date
    return sorted(days)


def _benchmark_table(path: PathLike) -> pa.Table:
    run = _portfolio_run(path, BENCHMARK)
    files = _manifest(run).get("files")
    if not isinstance(files, dict) or BENCHMARK not in files:
        raise OutputNotFound(
            f"run {run.name} has no benchmark (portfolio.benchmark was not set); "
            "re-run with portfolio.benchmark: SPY"
        )
    return _read_table(run, BENCHMARK)


def load_benchmark(path: PathLike) -> pd.DataFrame:
    """benchmark.parquet: session_date, close, return (OutputNotFound when the run set no benchmark)."""
    return _benchmark_table(path).to_pandas()


def benchmark_page(path: PathLike) -> Page:
    """benchmark.parquet as JSON-safe records."""
    table = _benchmark_table(path)
    return Page(total=table.num_rows, records=records(table))


def has_benchmark(path: PathLike) -> bool:
    """Whether a portfolio run's manifest lists benchmark.parquet."""
    files = _manifest(Path(path)).get("files")
    return isinstance(files, dict) and BENCHMARK in files


# ---------------------------------------------------------------------------------------- combined tables


def _by_symbol(path: PathLike, name: str, symbol: str | None) -> pa.Table:
    run = _portfolio_run(path, name)
    sym = None if symbol is None else _symbol(run, symbol)
    table = _read_table(run, name)
    return table if sym is None else table.filter(pc.field("symbol") == sym)


def trades_table(path: PathLike, symbol: str | None, columns: list[str] | None = None) -> pa.Table:
    """all_trades.parquet of a portfolio run (`columns` read only), one symbol's rows if given."""
    run = _portfolio_run(path, ALL_TRADES)
    sym = None if symbol is None else _symbol(run, symbol)
    read = None if columns is None else list(dict.fromkeys([*columns, "symbol"]))
    table = _read_table(run, ALL_TRADES, read)
    return table if sym is None else table.filter(pc.field("symbol") == sym)


def load_portfolio_fills(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """all_fills.parquet (every symbol's fills, by time then symbol), one symbol's rows if given."""
    return _by_symbol(path, ALL_FILLS, symbol).to_pandas()


def load_portfolio_events(path: PathLike, symbol: str | None = None) -> pd.DataFrame:
    """all_events.parquet (blocked signals with a `symbol` column), one symbol's rows if given."""
    return _by_symbol(path, ALL_EVENTS, symbol).to_pandas()


def load_portfolio_bars(path: PathLike, symbol: str, session_date: date | str | None = None) -> pd.DataFrame:
    """One symbol's rows of bars.parquet (the selected symbol-sessions) as the bar contract (UTC
    `timestamp` index, no `symbol` column); only `session_date`'s bars if given."""
    run = Path(path)
    table = _by_symbol(run, PORTFOLIO_BARS, symbol)
    table = one_local_day(run, table, as_date(session_date, "session_date"))
    return table.drop_columns(["symbol"]).to_pandas().set_index("timestamp")


def universe_as_sessions(path: PathLike, symbol: str | None) -> pa.Table:
    """The sessions view of a portfolio run: its universe rows (all, or one symbol's), `symbol` first,
    with `skip_reason` repeating `reason` (the name a backtest's sessions table uses)."""
    table = _universe_table(path, None, symbol)
    table = table.select(["symbol", *(c for c in table.column_names if c != "symbol")])
    return table.append_column("skip_reason", table.column("reason"))
