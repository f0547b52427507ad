"""Golden regression cases: fixed configs run on the real SPY 2011 bars of tests/data/.

Shared by tests/test_golden.py (compare) and scripts/regenerate_golden.py (write). Each case folder
`tests/golden/<name>/` holds `trades.csv` (every trade column, floats as Python repr, so a file equality
is a value equality), `metrics.json` (the run-format.md metric keys) and `config.json` (the resolved
config that ran).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from pathlib import Path

import pandas as pd

from orb.config import Config, load_config, with_overrides
from orb.data import load_symbol
from orb.engine import EventLoopBacktest
from orb.metrics import compute_metrics

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
SPY_PARQUET = REPO / "tests" / "data" / "spy_1min_2011-01_2011-03_utc_barstart.parquet"
FIRST, LAST = date(2011, 1, 3), date(2011, 3, 31)
REGENERATE = "python scripts/regenerate_golden.py"
TRADES_FILE, METRICS_FILE, CONFIG_FILE = "trades.csv", "metrics.json", "config.json"
KEY = ("entry_time", "side")  # one position at a time: a trade is identified by its entry bar and side

# The data holds no session before 2011-01-03, so short look-backs let more sessions trade.
SHORT_WARMUP = {"orb.atr_period": 5, "confluence.rel_volume.lookback_sessions": 5}

# name -> (config file relative to the repo or None for defaults.yaml, dotted overrides)
CASES: dict[str, tuple[str | None, dict]] = {
    "defaults": (None, SHORT_WARMUP),
    "close_mode": (None, {**SHORT_WARMUP, "entry.mode": "close"}),
    "zarattini_2023": ("configs/zarattini_2023.yaml", {}),
    "single_target_or_opposite": (
        None,
        {**SHORT_WARMUP, "trade.partials": False, "trade.stop_mode": "or_opposite"},
    ),
    "adaptive_atr_flatten": (
        None,
        {
            **SHORT_WARMUP,
            "orb.adaptive": True,
            "entry.buffer_atr": 0.05,
            "trade.stop_mode": "atr",
            "trade.same_bar": "ohlc_path",
            "trade.flatten_time": "15:30",
            "confluence.adx.enabled": True,
            "confluence.adx.period": 5,
            "governance.max_signals_per_day": 3,
        },
    ),
}


def case_config(name: str) -> Config:
    path, overrides = CASES[name]
    return with_overrides(load_config(REPO / path if path else None), overrides)


def spy_bars() -> pd.DataFrame:
    """The real SPY bars (regular hours, bar contract) through the file data layer."""
    config = with_overrides(load_config(), {"data.file_timezone": "UTC"})
    loaded = load_symbol("SPY", config=config, start=FIRST, end=LAST, source="file", data_path=SPY_PARQUET)
    return loaded.bars


def run_case(name: str, bars: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
    """(trades, metrics, resolved config dict) of one case."""
    config = case_config(name)
    result = EventLoopBacktest(config, "SPY").run(bars)
    metrics = compute_metrics(
        result.trades,
        result.equity,
        result.sessions,
        initial_capital=config.risk.initial_capital,
        periods_per_year=config.metrics.periods_per_year,
        risk_free_rate=config.metrics.risk_free_rate,
        timezone=config.session.timezone,
    )
    return result.trades, metrics, config.to_dict()


def _cell(value) -> str:
    """Exact text of a value: floats as repr (round-trips), times ISO-8601 UTC, dates ISO."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def trades_rows(trades: pd.DataFrame) -> list[dict[str, str]]:
    """Trades as rows of exact strings, in the engine's order."""
    columns = list(trades.columns)
    return [
        {col: _cell(v) for col, v in zip(columns, row, strict=True)}
        for row in trades.astype(object).itertuples(index=False, name=None)
    ]


def trades_csv(trades: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(trades.columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(trades_rows(trades))
    return out.getvalue()


def read_trades_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_case(name: str, bars: pd.DataFrame) -> tuple[int, float]:
    """Run one case and write its three files; return (trades, total R)."""
    trades, metrics, config = run_case(name, bars)
    folder = GOLDEN / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRADES_FILE).write_text(trades_csv(trades), encoding="utf-8")
    (folder / METRICS_FILE).write_text(to_json(metrics), encoding="utf-8")
    (folder / CONFIG_FILE).write_text(to_json(config), encoding="utf-8")
    return len(trades), float(metrics["total_r"])
