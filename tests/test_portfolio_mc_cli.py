"""`run_backtest.py --monte-carlo N --report` on a portfolio run: the account's sessions are resampled and
portfolio_report.html is written, both listed in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from run_fixtures import run_backtest

from orb.runs import read as results

CONFIG = (
    "portfolio:\n  enabled: true\n  max_positions: 3\n  benchmark: SPY\n"
    "universe:\n  min_price: 5\n  min_rel_volume: 1.0\norb:\n  base_minutes: 5\n"
)


def test_portfolio_run_with_monte_carlo_and_report(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("ALFA\nBRAVO\nCHAR\nDELT\nECHO\nFOXT\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(CONFIG, encoding="utf-8")
    run = run_backtest(
        tmp_path / "runs",
        "--symbols-file", str(tmp_path / "u.txt"), "--start", "2024-02-01", "--end", "2024-03-28",
        "--config", str(tmp_path / "p.yaml"), "--workers", "1", "--monte-carlo", "200", "--mc-seed", "5",
        "--report",
    )  # fmt: skip
    files = json.loads((run / "manifest.json").read_text())["files"]
    assert {"montecarlo_summary.json", "montecarlo_bands.parquet", "portfolio_report.html"} <= set(files)
    summary = results.montecarlo_summary(run)
    sessions = pd.read_parquet(run / "universe.parquet")["session_date"].nunique()
    assert summary["resample"] == "sessions" and summary["n_units"] == sessions and summary["seed"] == 5
    trades = pd.read_parquet(run / "all_trades.parquet")
    assert abs(summary["observed"]["total_r"] - trades["r_multiple"].sum()) < 1e-9
    assert "plotly.js v" in (run / "portfolio_report.html").read_text(encoding="utf-8")
    results.check_run(run, verify=True)
