"""orb.pipeline on a real synthetic run: the run folder holds exactly what the engine and the metrics
produced; all_trades and the combined equity agree with the per-symbol frames; nothing loads, no run."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from orb import pipeline
from orb.config import load_config
from orb.data import load_symbol
from orb.engine import EventLoopBacktest
from orb.errors import DataError
from orb.metrics import aggregate_metrics, combine_equity, symbol_metrics
from orb.runs import layout

START, END = date(2024, 1, 2), date(2024, 2, 9)
SYMBOLS = ("SPY", "QQQ")


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    cfg = load_config(None)
    out = tmp_path_factory.mktemp("pipeline")
    request = pipeline.RunRequest(
        symbols=SYMBOLS, start=START, end=END, source="synthetic", output_dir=out, quiet=True
    )
    return cfg, pipeline.run(request, cfg)


@pytest.fixture(scope="module")
def engine_results(outcome):
    cfg, _ = outcome
    results = {}
    for sym in SYMBOLS:
        bars = load_symbol(sym, config=cfg, start=START, end=END, source="synthetic").bars
        results[sym] = EventLoopBacktest(cfg, sym).run(bars, start=START, end=END)
    return results


def test_the_run_folder_holds_every_file(outcome):
    _, res = outcome
    names = {p.name for p in res.run_dir.iterdir()}
    expected = {layout.symbol_file(s, k) for s in SYMBOLS for k in layout.SYMBOL_FILES if k != "report"}
    expected |= {layout.ALL_TRADES, layout.ALL_TRADES_CSV, layout.COMBINED_EQUITY, layout.METRICS}
    expected |= {layout.CONFIG, layout.MANIFEST, layout.RUN_LOG}
    assert names == expected
    assert res.failures == {} and res.montecarlo is None
    manifest = json.loads((res.run_dir / layout.MANIFEST).read_text())
    assert manifest["mode"] == "backtest" and manifest["symbols"] == list(SYMBOLS)


@pytest.mark.parametrize("kind", ["trades", "fills", "equity", "sessions", "events"])
def test_symbol_frames_equal_the_engines_result(outcome, engine_results, kind):
    _, res = outcome
    for sym in SYMBOLS:
        stored = pd.read_parquet(res.run_dir / layout.symbol_file(sym, kind))
        pd.testing.assert_frame_equal(stored, getattr(engine_results[sym], kind).reset_index(drop=True))


def test_bars_snapshot_equals_the_bars_the_engine_consumed(outcome, engine_results):
    _, res = outcome
    stored = pd.read_parquet(res.run_dir / layout.symbol_file("SPY", "bars")).set_index("timestamp")
    pd.testing.assert_frame_equal(stored, engine_results["SPY"].bars)


def test_all_trades_and_combined_equity_and_metrics(outcome, engine_results):
    cfg, res = outcome
    trades = pd.read_parquet(res.run_dir / layout.ALL_TRADES)
    assert len(trades) == sum(len(r.trades) for r in engine_results.values()) > 0
    assert trades.equals(trades.sort_values(["entry_time", "symbol"], kind="stable", ignore_index=True))
    combined = combine_equity({s: r.equity for s, r in engine_results.items()}, cfg.risk.initial_capital)
    pd.testing.assert_frame_equal(pd.read_parquet(res.run_dir / layout.COMBINED_EQUITY), combined)
    final = combined["equity"].iloc[-1]
    assert final == pytest.approx(cfg.risk.initial_capital * 2 + trades["net_pnl"].sum())
    metrics = json.loads((res.run_dir / layout.METRICS).read_text())
    expected = {
        "aggregate": aggregate_metrics(engine_results, cfg),
        "per_symbol": {s: symbol_metrics(r, cfg) for s, r in engine_results.items()},
    }
    assert metrics == json.loads(json.dumps(expected)) == json.loads(json.dumps(res.metrics))


def test_no_loadable_symbol_is_one_data_error_and_no_visible_run(tmp_path):
    cfg = load_config(None)
    request = pipeline.RunRequest(
        symbols=("SPY", "NOPE"),
        start=START,
        end=END,
        source="file",
        data_path=tmp_path / "none.csv",
        output_dir=tmp_path / "runs",
        quiet=True,
    )
    with pytest.raises(DataError, match="none.csv"):
        pipeline.run(request, cfg)
    assert [p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")] == []
