"""Parameter sweeps: the sweep file, its expansion, ranking, the task backends and `--sweep` end to end.

Backtests run for real on small synthetic ranges; the sweep's numbers are checked against direct
engine runs with the same overrides, and the ranking against the metric it ranks by.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.data import load_symbol
from orb.engine import EventLoopBacktest
from orb.errors import ConfigError
from orb.metrics import compute_metrics
from orb.research.sweep import (
    AGGREGATE,
    RANK_KEYS,
    check_rank_by,
    load_sweep,
    rank_order,
    results_table,
)
from orb.research.tasks import Task, run_tasks
from orb.schema import METRIC_KEYS
from tests.cli_helpers import one_error_line, run_cli, visible_runs

ROOT = Path(__file__).resolve().parent.parent
BASE = load_config()
START, END = date(2024, 1, 2), date(2024, 2, 9)
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-02-09"]
GRID = (
    "grid:\n  orb.base_minutes: [5, 15]\n  costs.slippage_per_share: [0.0, 0.05]\n  trade.t1_r: [1.0, 2.0]\n"
)


def sweep_file(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def bars() -> dict[str, pd.DataFrame]:
    return {
        sym: load_symbol(sym, config=BASE, start=START, end=END, source="synthetic").bars
        for sym in ("SPY", "QQQ")
    }


# ------------------------------------------------------------------------------------------ sweep file
def test_grid_expands_in_product_order_and_keeps_invalid_rows_with_their_error(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, GRID), BASE)
    expected = [
        {"orb.base_minutes": m, "costs.slippage_per_share": s, "trade.t1_r": t}
        for m in (5, 15)
        for s in (0.0, 0.05)
        for t in (1.0, 2.0)
    ]
    assert [c.params for c in sweep.combinations] == expected
    assert [c.index for c in sweep.combinations] == list(range(8))
    # t1_r 2.0 is not below the default t2_r 1.5: invalid, kept with the validation message
    assert [c.index for c in sweep.invalid] == [1, 3, 5, 7]
    assert all("t1_r < t2_r < runner_r" in c.error for c in sweep.invalid)
    for c in sweep.valid:
        assert c.config.orb.base_minutes == c.params["orb.base_minutes"]
        assert c.config.costs.slippage_per_share == c.params["costs.slippage_per_share"]
        assert c.config.trade.partials == BASE.trade.partials  # untouched keys keep the base value


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("grid: [1, 2]\n", "grid"),
        ("grid:\n  orb.bse_minutes: [5]\n", "unknown config key 'orb.bse_minutes'"),
        ("grid:\n  orb: [5]\n", "'orb' is a section"),
        ("grid:\n  data.seed: [1, 2]\n", "'data.seed' changes the data"),
        ("grid:\n  session.timezone: [UTC]\n", "changes the data"),
        ("grid:\n  orb.base_minutes: 5\n", "non-empty list"),
        ("grid:\n  orb.base_minutes: []\n", "non-empty list"),
        ("gird:\n  orb.base_minutes: [5]\n", "unknown section"),
        ("grid:\n  orb.base_minutes: [5\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("random:\n  samples: 3\n", "give a 'grid'"),
        ("grid:\n  orb.base_minutes: [5]\nrandom:\n  samples: 0\n", "random.samples"),
        (
            "grid:\n  orb.base_minutes: [5]\nrandom:\n  samples: 2\n  params:\n"
            "    costs.slippage_per_share: {min: 0.2, max: 0.1}\n",
            "min 0.2 is above max 0.1",
        ),
        (
            "grid:\n  orb.base_minutes: [5]\nrandom:\n  samples: 2\n  params:\n    orb.base_minutes: [15]\n",
            "both in grid and random.params",
        ),
    ],
)
def test_bad_sweep_files_name_the_file_and_the_problem(tmp_path, text, needle):
    path = sweep_file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_sweep(path, BASE)
    message = str(err.value)
    assert message.startswith(f"sweep file {path}")
    assert needle in message
    assert "\n" not in message


def test_missing_sweep_file(tmp_path):
    with pytest.raises(ConfigError, match="not found; pass an existing YAML file to --sweep"):
        load_sweep(tmp_path / "nope.yaml", BASE)


def test_random_samples_without_params_pick_distinct_grid_rows_reproducibly(tmp_path):
    text = "grid:\n  orb.base_minutes: [5, 10, 15, 30]\n  trade.target_r: [1.0, 2.0, 3.0]\n"
    grid = [c.params for c in load_sweep(sweep_file(tmp_path, text, "g.yaml"), BASE).combinations]

    def picks(seed: int) -> list[dict]:
        path = sweep_file(tmp_path, f"{text}random:\n  samples: 5\n  seed: {seed}\n", f"r{seed}.yaml")
        return [c.params for c in load_sweep(path, BASE).combinations]

    first = picks(1)
    assert len(first) == 5
    assert len({json.dumps(p, sort_keys=True) for p in first}) == 5
    assert [grid.index(p) for p in first] == sorted(grid.index(p) for p in first)  # grid order kept
    assert picks(1) == first
    assert any(picks(seed) != first for seed in range(2, 6))
    big = sweep_file(tmp_path, f"{text}random:\n  samples: 50\n", "big.yaml")
    assert [c.params for c in load_sweep(big, BASE).combinations] == grid  # more samples than rows: all


def test_random_params_are_drawn_within_bounds_and_shared_across_grid_rows(tmp_path):
    text = (
        "grid:\n  orb.base_minutes: [5, 15]\n"
        "random:\n  samples: 6\n  seed: 3\n  params:\n"
        "    costs.slippage_per_share: {min: 0.01, max: 0.05}\n"
        "    orb.atr_period: {min: 5, max: 7, integer: true}\n"
        "    entry.mode: [stop, close]\n"
    )
    combos = load_sweep(sweep_file(tmp_path, text), BASE).combinations
    assert len(combos) == 2 * 6
    draws = [{k: v for k, v in c.params.items() if k != "orb.base_minutes"} for c in combos]
    assert draws[:6] == draws[6:]  # each grid row meets the same draws (a paired comparison)
    assert [c.params["orb.base_minutes"] for c in combos] == [5] * 6 + [15] * 6
    for d in draws:
        assert 0.01 <= d["costs.slippage_per_share"] <= 0.05
        assert d["costs.slippage_per_share"] == round(d["costs.slippage_per_share"], 6)
        assert d["orb.atr_period"] in (5, 6, 7)
        assert d["entry.mode"] in ("stop", "close")
    assert len({d["costs.slippage_per_share"] for d in draws[:6]}) == 6


# ------------------------------------------------------------------------------------------ ranking
def test_rank_order_best_first_undefined_last_ties_by_combination_index():
    metrics = [{"total_r": 1.0}, {"total_r": None}, {"total_r": 3.0}, {"total_r": 3.0}, {"total_r": -2.0}]
    assert rank_order([10, 11, 12, 13, 14], metrics, "total_r") == [2, 3, 0, 4, 1]
    assert rank_order([10, 11, 13, 12, 14], metrics, "total_r") == [3, 2, 0, 4, 1]  # by index, not position


def test_counts_of_bad_things_rank_lowest_first():
    metrics = [{"max_consecutive_losses": 3}, {"max_consecutive_losses": 1}, {"max_consecutive_losses": 2}]
    assert rank_order([0, 1, 2], metrics, "max_consecutive_losses") == [1, 2, 0]
    drawdowns = [{"max_drawdown_r": -5.0}, {"max_drawdown_r": -1.0}]
    assert rank_order([0, 1], drawdowns, "max_drawdown_r") == [1, 0]  # -1 R is the shallower drawdown


def test_rank_by_accepts_scalar_metric_keys_only():
    assert set(RANK_KEYS) == set(METRIC_KEYS) - {"exit_reasons"}
    assert check_rank_by("sharpe") == "sharpe"
    for bad in ("exit_reasons", "total-r", ""):
        with pytest.raises(ConfigError, match="is not a metric key"):
            check_rank_by(bad)


# ------------------------------------------------------------------------------------------ tasks
def direct_metrics(cfg, sym_bars, sym):
    """One symbol's metrics straight from the engine, as a plain backtest computes them."""
    res = EventLoopBacktest(cfg, sym).run(sym_bars, start=START, end=END)
    return compute_metrics(
        res.trades,
        res.equity,
        res.sessions,
        initial_capital=cfg.risk.initial_capital,
        periods_per_year=cfg.metrics.periods_per_year,
        risk_free_rate=cfg.metrics.risk_free_rate,
        timezone=cfg.session.timezone,
    )


def test_sweep_rows_equal_direct_backtests_and_rank_by_the_aggregate(tmp_path, bars):
    sweep = load_sweep(sweep_file(tmp_path, GRID), BASE)
    results = run_tasks([Task(i, c.config, START, END) for i, c in enumerate(sweep.valid)], bars)
    table = results_table(
        sweep, [(c, r.per_symbol, r.aggregate) for c, r in zip(sweep.valid, results, strict=True)], "total_r"
    )
    assert len(table) == len(sweep.valid) * 3
    agg = table[table["symbol"] == AGGREGATE]
    assert agg["rank"].tolist() == [1, 2, 3, 4]
    assert agg["total_r"].is_monotonic_decreasing
    for combo in sweep.valid:
        rows = table[table["combination"] == combo.index].set_index("symbol")
        assert rows.index.tolist() == [AGGREGATE, "SPY", "QQQ"]  # aggregate first, symbols as given
        for sym in ("SPY", "QQQ"):
            direct = direct_metrics(with_overrides(BASE, combo.params), bars[sym], sym)
            assert rows.loc[sym, "total_trades"] == direct["total_trades"]
            assert rows.loc[sym, "total_r"] == pytest.approx(direct["total_r"], abs=1e-12)
            assert rows.loc[sym, "max_drawdown_r"] == pytest.approx(direct["max_drawdown_r"], abs=1e-12)
        assert rows.loc[AGGREGATE, "total_r"] == pytest.approx(rows.loc[["SPY", "QQQ"], "total_r"].sum())
        assert rows.loc[AGGREGATE, "total_trades"] == rows.loc[["SPY", "QQQ"], "total_trades"].sum()
        assert rows["orb.base_minutes"].nunique() == 1
    # more slippage, same opening range: every trade pays more, so less total R (paired comparison)
    for minutes in (5, 15):
        by_cost = agg[agg["orb.base_minutes"] == minutes].set_index("costs.slippage_per_share")["total_r"]
        assert by_cost[0.05] < by_cost[0.0]


def test_results_do_not_depend_on_the_worker_count(tmp_path, bars):
    sweep = load_sweep(sweep_file(tmp_path, GRID), BASE)
    tasks = [Task(i, c.config, START, END) for i, c in enumerate(sweep.valid)]
    one, two = run_tasks(tasks, bars, workers=1), run_tasks(tasks, bars, workers=2)
    assert [r.index for r in two] == [0, 1, 2, 3]
    assert [(r.per_symbol, r.aggregate) for r in one] == [(r.per_symbol, r.aggregate) for r in two]


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def cli_sweep(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("sweep")
    path = sweep_file(tmp, GRID)
    code, out = run_cli(tmp, "--symbols", "SPY", "QQQ", *SYNTH, "--sweep", str(path), "--workers", "2", "-q")
    assert code == 0
    (run_dir,) = visible_runs(out)
    return run_dir, path


def test_cli_sweep_writes_a_complete_run_folder(cli_sweep):
    run_dir, _ = cli_sweep
    names = {p.name for p in run_dir.iterdir()}
    assert names == {
        "sweep_results.parquet",
        "sweep_results.csv",
        "sweep.json",
        "config.json",
        "manifest.json",
        "run.log",
    }
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["mode"], manifest["schema_version"]) == ("sweep", "1.1")
    assert set(manifest["files"]) == names - {"manifest.json", "run.log"}
    assert (manifest["start"], manifest["end"], manifest["symbols"]) == (
        "2024-01-02",
        "2024-02-09",
        ["SPY", "QQQ"],
    )
    table = pd.read_parquet(run_dir / "sweep_results.parquet")
    csv = pd.read_csv(run_dir / "sweep_results.csv")
    assert len(table) == len(csv) == 4 * 3
    assert list(table.columns[:6]) == [
        "rank",
        "combination",
        "symbol",
        "orb.base_minutes",
        "costs.slippage_per_share",
        "trade.t1_r",
    ]
    assert set(RANK_KEYS) | {"exit_reasons"} <= set(table.columns)
    agg = table[table["symbol"] == AGGREGATE]
    assert agg["total_r"].is_monotonic_decreasing and agg["rank"].tolist() == [1, 2, 3, 4]
    info = json.loads((run_dir / "sweep.json").read_text())
    assert (info["combinations"], info["evaluated"], info["rank_by"]) == (8, 4, "total_r")
    assert [i["combination"] for i in info["invalid"]] == [1, 3, 5, 7]
    assert info["best"]["combination"] == int(agg["combination"].iloc[0])
    assert "sweep combination 1 skipped" in (run_dir / "run.log").read_text()


def test_cli_sweep_file_is_identical_with_one_and_two_workers(cli_sweep, tmp_path):
    run_dir, path = cli_sweep
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "QQQ", *SYNTH, "--sweep", str(path), "--workers", "1", "-q"
    )
    assert code == 0
    (other,) = visible_runs(out)
    hashes = [json.loads((d / "manifest.json").read_text())["files"] for d in (run_dir, other)]
    for name in ("sweep_results.parquet", "sweep_results.csv", "sweep.json"):
        assert hashes[0][name] == hashes[1][name], name


def test_cli_rank_by_orders_by_that_metric(tmp_path):
    path = sweep_file(tmp_path, "grid:\n  orb.base_minutes: [5, 15, 30]\n")
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", *SYNTH, "--sweep", str(path), "--rank-by", "max_drawdown_r", "-q"
    )
    assert code == 0
    table = pd.read_parquet(visible_runs(out)[0] / "sweep_results.parquet")
    agg = table[table["symbol"] == AGGREGATE]
    assert agg["max_drawdown_r"].is_monotonic_decreasing  # -1 R before -3 R: the shallowest first


def test_cli_bad_sweep_file_is_one_line_exit_1_and_no_run(tmp_path, capsys):
    path = sweep_file(tmp_path, "grid:\n  orb.base_minutes: [5]\n  trade.nope: [1]\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--sweep", str(path))
    assert code == 1
    line = one_error_line(capsys.readouterr().out)
    assert f"sweep file {path}" in line and "'trade.nope'" in line
    assert visible_runs(out) == []


def test_cli_all_combinations_invalid_is_an_error(tmp_path, capsys):
    path = sweep_file(tmp_path, "grid:\n  trade.t1_r: [2.0, 3.0]\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--sweep", str(path))
    assert code == 1
    assert "all 2 combinations are invalid" in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--walk-forward"], "--walk-forward needs --sweep"),
        (["--workers", "2"], "--workers needs --sweep"),
        (["--dask-scheduler", "tcp://127.0.0.1:1"], "--dask-scheduler needs --sweep"),
        (["--sweep", "x.yaml", "--rank-by", "nope"], "is not a metric key"),
        (["--sweep", "x.yaml", "--workers", "0"], "whole number >= 1"),
        (["--sweep", "x.yaml", "--report"], "--report applies to single backtests"),
        (["--sweep", "x.yaml", "--monte-carlo", "100"], "not to a plain --sweep"),
        (["--mc-by-session"], "--mc-by-session needs --monte-carlo N"),
        (["--monte-carlo", "100", "--mc-dd", "-1"], "drawdown in R >= 0"),
    ],
)
def test_cli_research_flag_misuse_exits_2(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, "--symbols", "SPY", *SYNTH, *args)
    assert exit_.value.code == 2
    text = capsys.readouterr()
    assert needle in one_error_line(text.out + text.err)
    assert visible_runs(tmp_path / "runs") == []


def test_ctrl_c_during_a_sweep_stops_the_workers_and_leaves_no_run(tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "runs"
    path = sweep_file(
        tmp_path, "grid:\n  costs.slippage_per_share: [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]\n"
    )
    cmd = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "QQQ", "--synthetic"]
    cmd += ["--start", "2019-01-02", "--end", "2023-12-29", "--sweep", str(path), "--workers", "2"]
    proc = subprocess.Popen(
        [*cmd, "--output-dir", str(out)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    workers: list = []
    while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = psutil.Process(proc.pid).children()
        time.sleep(0.05)
    assert len(workers) == 2, "the pool never started"
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output
    assert visible_runs(out) == [] and not list(out.glob(".tmp-*"))
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


def test_a_session_with_bad_bars_is_skipped_in_a_sweep_as_in_the_backtest(tmp_path, capsys):
    """data.bad_bars: skip marks the session at load time; a sweep's tasks get those marks too."""
    bars = load_symbol("SPY", config=BASE, start=START, end=END, source="synthetic").bars
    day = bars.index[bars.index.tz_convert("America/New_York").date == date(2024, 1, 18)]
    broken = bars.copy()
    broken.loc[day[100], "low"] = broken.loc[day[100], "high"] + 1.0  # low above high: an OHLC violation
    data = tmp_path / "SPY.parquet"
    broken.reset_index().to_parquet(data, index=False)
    window = ["--data", str(data), "--start", "2024-01-02", "--end", "2024-02-09"]
    (tmp_path / "plain").mkdir()
    code, out = run_cli(tmp_path / "plain", "--symbols", "SPY", *window)
    assert code == 0
    (plain,) = visible_runs(out)
    sessions = pd.read_parquet(plain / "SPY_sessions.parquet")
    assert "bad_bars" in set(sessions["skip_reason"])
    grid = sweep_file(tmp_path, "grid:\n  costs.slippage_per_share: [0.01, 0.02]\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", *window, "--sweep", str(grid))
    assert code == 0
    (run,) = visible_runs(out)
    table = pd.read_parquet(run / "sweep_results.parquet")
    row = table[(table["symbol"] == AGGREGATE) & (table["costs.slippage_per_share"] == 0.01)].iloc[0]
    metrics = json.loads((plain / "metrics.json").read_text())["aggregate"]
    for key in RANK_KEYS:
        assert (pd.isna(row[key]) and metrics[key] is None) or row[key] == metrics[key], key
