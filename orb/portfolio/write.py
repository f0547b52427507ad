"""The files of a portfolio run folder (run-format.md "Portfolio runs"), through orb.writer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orb.writer import finish_manifest, write_csv, write_json, write_parquet


@dataclass(frozen=True)
class PortfolioFiles:
    """Everything a portfolio run writes besides run.log."""

    universe: pd.DataFrame
    trades: pd.DataFrame
    fills: pd.DataFrame
    events: pd.DataFrame
    bars: pd.DataFrame
    equity: pd.DataFrame
    benchmark: pd.DataFrame | None
    metrics: dict
    config: dict
    manifest: dict


def write_files(tmp: Path, files: PortfolioFiles) -> None:
    """Write every file into the staging folder `tmp`, the manifest (with the file hashes) last."""
    write_parquet(files.universe, tmp / "universe.parquet")
    write_parquet(files.trades, tmp / "all_trades.parquet")
    write_csv(files.trades, tmp / "all_trades.csv")
    write_parquet(files.fills, tmp / "all_fills.parquet")
    write_parquet(files.events, tmp / "all_events.parquet")
    write_parquet(files.bars, tmp / "bars.parquet")
    write_parquet(files.equity, tmp / "combined_equity.parquet")
    if files.benchmark is not None:
        write_parquet(files.benchmark, tmp / "benchmark.parquet")
    write_json(files.metrics, tmp / "metrics.json")
    write_json(files.config, tmp / "config.json")
    finish_manifest(tmp, {**files.manifest, "mode": "portfolio"})
