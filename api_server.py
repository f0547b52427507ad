"""REST API over the runs folder.

Start with `uvicorn api_server:app` or `python api_server.py [--host] [--port] [--runs-dir]`.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from orb.api import create_app
from orb.runs.read import resolve_runs_dir

app = create_app()


def main(argv: list[str] | None = None) -> int:
    """Serve the API with uvicorn (default 127.0.0.1:8000)."""
    parser = argparse.ArgumentParser(description="Serve the ORB backtest results API (read-only).")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--runs-dir", help="runs folder (default: env ORB_RUNS_DIR, else runs/)")
    parser.add_argument("--reload", action="store_true", help="restart when the code changes (development)")
    args = parser.parse_args(argv)
    runs_dir = resolve_runs_dir(args.runs_dir)
    if args.reload:
        os.environ["ORB_RUNS_DIR"] = str(runs_dir)
        uvicorn.run("api_server:app", host=args.host, port=args.port, reload=True)
    else:
        uvicorn.run(create_app(runs_dir), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
