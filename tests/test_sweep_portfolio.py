"""`--sweep` on a portfolio config (strategy.md 10): each combination is one account over the daily
universe, and its aggregate row holds exactly the metrics a plain portfolio run with that combination's
settings writes to metrics.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from orb.research.sweep import AGGREGATE, COUNT_KEYS, PORTFOLIO_KEYS, RANK_KEYS
from tests.cli_helpers import one_error_line, run_cli, visible_runs

REAL_SPY = Path(__file__).resolve().parent / "data" / "eqker_SPY_1min_2019-02.csv"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMD"]
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-03-28"]
CONFIG = (
    "portfolio: {enabled: true, max_positions: 2, benchmark: SPY}\n"
    "universe: {lookback_sessions: 5}\n"
    "orb: {atr_period: 5}\n"
    "confluence: {enabled: false}\n"
)
GRID = "grid:\n  portfolio.max_positions: [1, 3]\n  universe.min_rel_volume: [null, 1.5, 1000]\n"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    """(the portfolio sweep's run folder, the folder the test files are in)."""
    folder = tmp_path_factory.mktemp("portfolio_sweep")
    config, grid = _write(folder, "p.yaml", CONFIG), _write(folder, "grid.yaml", GRID)
    code, out = run_cli(folder, "--symbols", *SYMBOLS, *SYNTH, "--config", str(config), "--sweep", str(grid))
    assert code == 0
    (run,) = visible_runs(out)
    return run, folder


def _aggregates(run: Path) -> pd.DataFrame:
    table = pd.read_parquet(run / "sweep_results.parquet")
    return table[table["symbol"] == AGGREGATE].set_index("combination")


@pytest.mark.parametrize("combination", [0, 1, 3, 4])
def test_a_combination_is_the_plain_portfolio_run_with_its_settings(swept, combination):
    run, folder = swept
    row = _aggregates(run).loc[combination]
    params = {"portfolio.max_positions": row["portfolio.max_positions"]}
    rel = row["universe.min_rel_volume"]
    sets = [f"{k}={json.dumps(v.item() if hasattr(v, 'item') else v)}" for k, v in params.items()]
    sets.append(f"universe.min_rel_volume={'null' if pd.isna(rel) else json.dumps(float(rel))}")
    plain = folder / f"plain{combination}"
    plain.mkdir()
    code, out = run_cli(
        plain, "--symbols", *SYMBOLS, *SYNTH, "--config", str(folder / "p.yaml"),
        *[a for s in sets for a in ("--set", s)],
    )  # fmt: skip
    assert code == 0
    (single,) = visible_runs(out)
    metrics = json.loads((single / "metrics.json").read_text(encoding="utf-8"))["aggregate"]
    assert metrics["total_trades"] > 0
    for key in (*RANK_KEYS, *PORTFOLIO_KEYS):
        want = metrics.get(key)
        got = row[key]
        assert (pd.isna(got) and want is None) or got == want, key


def test_an_empty_universe_is_a_row_without_trades_and_a_warning(swept):
    run, _ = swept
    table = _aggregates(run)
    empty = table[table["universe.min_rel_volume"] == 1000]
    assert len(empty) == 2 and (empty["total_trades"] == 0).all() and empty["total_r"].isna().all()
    assert list(table.sort_values("rank").index[-2:]) == sorted(empty.index)  # ranked last
    log = (run / "run.log").read_text(encoding="utf-8")
    assert log.count("the universe is empty on every session") == 2


def test_the_table_keeps_per_symbol_rows_and_the_account_metrics(swept):
    run, _ = swept
    table = pd.read_parquet(run / "sweep_results.parquet")
    traded = table[(table["combination"] == 1) & (table["symbol"] != AGGREGATE)]
    assert set(traded["symbol"]) <= set(SYMBOLS) and len(traded) >= 2
    assert traded["sharpe"].isna().all()  # a symbol's share of one account has no equity of its own
    assert str(table["max_drawdown_duration_days"].dtype) == "Int64"
    assert table[table["symbol"] == AGGREGATE]["max_positions_used"].notna().any()
    assert all(str(table[k].dtype) == "int64" for k in COUNT_KEYS if k != "max_drawdown_duration_days")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["symbols"] == SYMBOLS  # as a portfolio run's: the benchmark is loaded, not a member


@pytest.mark.parametrize("key", ["portfolio.enabled", "portfolio.benchmark"])
def test_the_mode_and_the_benchmark_cannot_vary(tmp_path, capsys, key):
    config = _write(tmp_path, "p.yaml", CONFIG)
    values = "[true, false]" if key == "portfolio.enabled" else "[SPY, QQQ]"
    grid = _write(tmp_path, "grid.yaml", f"grid:\n  {key}: {values}\n")
    code, out = run_cli(
        tmp_path, "--symbols", *SYMBOLS, *SYNTH, "--config", str(config), "--sweep", str(grid)
    )
    assert code == 1 and visible_runs(out) == []
    assert f"'{key}' changes the data or the run's mode" in one_error_line(capsys.readouterr().out)


def test_walk_forward_is_refused_for_a_portfolio(tmp_path, capsys):
    config, grid = _write(tmp_path, "p.yaml", CONFIG), _write(tmp_path, "grid.yaml", GRID)
    code, out = run_cli(
        tmp_path,
        "--symbols",
        *SYMBOLS,
        *SYNTH,
        "--config",
        str(config),
        "--sweep",
        str(grid),
        "--walk-forward",
    )
    assert code == 1 and visible_runs(out) == []
    assert "--walk-forward is not available for portfolio runs" in one_error_line(capsys.readouterr().out)


def test_sessions_with_bad_bars_are_skipped_in_a_portfolio_sweep_as_in_the_run(tmp_path):
    from datetime import date

    from orb.config import load_config
    from orb.data import load_symbol

    folder = tmp_path / "data"
    folder.mkdir()
    base = load_config()
    for sym in SYMBOLS + ["SPY"]:
        bars = load_symbol(
            sym, config=base, start=date(2024, 1, 2), end=date(2024, 3, 28), source="synthetic"
        ).bars
        if sym in ("AAPL", "MSFT"):
            days = bars.index.tz_convert("America/New_York").normalize()
            firsts = ~days.duplicated()
            opening = bars.index[firsts][::3]  # every third session: its first bar's low above its high
            bars = bars.copy()
            bars.loc[opening, "low"] = bars.loc[opening, "high"] + 1.0
        bars.reset_index().to_parquet(folder / f"{sym}.parquet", index=False)
    config = _write(tmp_path, "p.yaml", CONFIG)
    grid = _write(tmp_path, "grid.yaml", "grid:\n  portfolio.max_positions: [2, 3]\n")
    window = ["--data", str(folder), "--start", "2024-01-02", "--end", "2024-03-28", "--config", str(config)]
    (tmp_path / "plain").mkdir()
    code, out = run_cli(tmp_path / "plain", "--symbols", *SYMBOLS, *window)
    assert code == 0
    (plain,) = visible_runs(out)
    universe = pd.read_parquet(plain / "universe.parquet")
    assert (universe["reason"] == "bad_bars").sum() > 10
    code, out = run_cli(tmp_path, "--symbols", *SYMBOLS, *window, "--sweep", str(grid))
    assert code == 0
    (run,) = visible_runs(out)
    row = _aggregates(run).set_index("portfolio.max_positions").loc[2]
    metrics = json.loads((plain / "metrics.json").read_text(encoding="utf-8"))["aggregate"]
    for key in (*RANK_KEYS, *PORTFOLIO_KEYS):
        assert (pd.isna(row[key]) and metrics.get(key) is None) or row[key] == metrics.get(key), key


def test_a_portfolio_sweep_ranks_by_a_portfolio_metric(tmp_path):
    config, grid = _write(tmp_path, "p.yaml", CONFIG), _write(tmp_path, "grid.yaml", GRID)
    code, out = run_cli(
        tmp_path, "--symbols", *SYMBOLS, *SYNTH, "--config", str(config), "--sweep", str(grid),
        "--rank-by", "daily_hit_ratio",
    )  # fmt: skip
    assert code == 0
    (run,) = visible_runs(out)
    table = _aggregates(run).sort_values("rank")
    ratios = table["daily_hit_ratio"].tolist()
    known = [r for r in ratios if not pd.isna(r)]
    assert len(known) == 4 and known == sorted(known, reverse=True)
    assert all(pd.isna(r) for r in ratios[len(known) :])  # the empty universes, last
    info = json.loads((run / "sweep.json").read_text(encoding="utf-8"))
    assert info["rank_by"] == "daily_hit_ratio" and info["best"]["combination"] == int(table.index[0])


def test_a_portfolio_metric_cannot_rank_a_single_symbol_sweep(tmp_path, capsys):
    grid = _write(tmp_path, "grid.yaml", "grid:\n  orb.base_minutes: [5, 15]\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--sweep", str(grid), "--rank-by", "alpha_pct")
    assert code == 1 and visible_runs(out) == []
    assert "'alpha_pct' is a portfolio metric" in one_error_line(capsys.readouterr().out)


def test_the_api_serves_a_portfolio_sweep_with_its_portfolio_metrics(swept):
    from fastapi.testclient import TestClient

    from orb.api import create_app

    run, _ = swept
    api = TestClient(create_app(run.parent, api_key="", cors_origins=""))
    answer = api.get(f"/api/sweeps/{run.name}", params={"symbol": "*"})
    assert answer.status_code == 200
    rows = answer.json()["rows"]
    table = _aggregates(run)
    for row in rows:
        want = table.loc[row["combination"], "daily_hit_ratio"]
        got = row["metrics"]["daily_hit_ratio"]
        assert (got is None and pd.isna(want)) or got == want
    aapl = api.get(f"/api/sweeps/{run.name}", params={"symbol": "AAPL"}).json()["rows"]
    assert aapl and all(r["metrics"]["max_drawdown_duration_days"] is None for r in aapl)


def test_a_benchmark_without_bars_stops_the_sweep_with_one_line_and_no_folder(tmp_path, capsys):
    config = _write(tmp_path, "p.yaml", CONFIG.replace("benchmark: SPY", "benchmark: QQQ"))
    grid = _write(tmp_path, "grid.yaml", GRID)
    folder = tmp_path / "data"
    folder.mkdir()
    for sym in SYMBOLS[:2]:
        shutil.copy(REAL_SPY, folder / f"{sym}.csv")
    code, out = run_cli(
        tmp_path,
        "--symbols",
        *SYMBOLS[:2],
        "--data",
        str(folder),
        "--config",
        str(config),
        "--sweep",
        str(grid),
    )
    assert code == 1 and visible_runs(out) == []
    assert not out.exists() or not any(
        p.name.startswith(".tmp-") for p in out.iterdir()
    )  # nothing half-written
    assert "benchmark QQQ has no bars" in one_error_line(capsys.readouterr().out)
