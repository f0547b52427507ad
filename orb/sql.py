"""`python -m orb.sql "SELECT ..."`: query every run folder with DuckDB (orb.runs.catalog).

Prints a Rich table; `--csv` prints a header line and one line per row (nothing else on stdout),
`--json` a JSON array of row objects; `--schema` lists the views and their columns. Run folders that
are damaged are named on stderr. Exit codes: 0 success, 1 a bad query, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from orb.runs.catalog import VIEWS, CatalogError, catalog
from orb.runs.read import resolve_runs_dir


def _cell(value: object) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return json.dumps([v.item() if isinstance(v, np.generic) else v for v in value], default=str)
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _table(frame: pd.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, header_style="bold magenta")
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orb.sql", description="SQL over every run folder.")
    parser.add_argument("query", nargs="?", help="one SELECT over the views " + ", ".join(VIEWS))
    parser.add_argument("--runs-dir", help="runs folder (default: env ORB_RUNS_DIR, else runs/)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="CSV: a header line and one line per row")
    out.add_argument("--json", action="store_true", help="a JSON array of row objects")
    out.add_argument("--schema", action="store_true", help="list the views and their columns")
    args = parser.parse_args(argv)
    if not args.schema and not args.query:
        parser.error("give a SELECT statement, or --schema")
    stdout, stderr = Console(highlight=False), Console(stderr=True, highlight=False)
    cat = catalog(resolve_runs_dir(args.runs_dir))
    try:
        if args.schema:
            for view, columns in cat.schema().items():
                stdout.print(_table(pd.DataFrame(columns, columns=["column", "type"]), title=view))
            return 0
        frame = cat.query(args.query)
    except CatalogError as exc:
        stderr.print(f"error: {exc}", style="bold red", markup=False, soft_wrap=True)
        return 1
    finally:
        for run_id, reason in cat.skipped.items():
            stderr.print(
                f"skipped damaged run {run_id}: {reason}", style="yellow", markup=False, soft_wrap=True
            )
    if args.csv:
        lists = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list | np.ndarray)).any()]
        plain = frame.assign(**{c: frame[c].map(_cell) for c in lists})
        sys.stdout.write(plain.to_csv(index=False, lineterminator="\n"))
    elif args.json:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", date_unit="s") + "\n")
    else:
        stdout.print(_table(frame))
        stdout.print(f"{len(frame)} row(s)", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
