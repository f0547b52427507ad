"""Walk-forward: fold layout, no look-ahead into the test window, the choice, stitching, robustness, CLI.

Backtests run for real on small synthetic ranges.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orb.config import load_config
from orb.data import load_symbol
from orb.errors import RequestError
from orb.research.sweep import load_sweep, rank_order
from orb.research.tasks import Task, evaluate, run_tasks
from orb.research.walkforward import folds_table, make_folds, robustness, stitch, walk_forward
from tests.cli_helpers import run_cli

START, END = date(2024, 1, 2), date(2024, 2, 29)
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-02-29"]
GRID = "grid:\n  orb.base_minutes: [5, 15, 30]\n"
SYMS = ("SPY", "QQQ")


def sessions_of(bars: dict[str, pd.DataFrame], tz: str = "America/New_York") -> list[date]:
    days = set()
    for b in bars.values():
        days |= {d.date() for d in b.index.tz_convert(tz).normalize().unique()}
    return sorted(d for d in days if START <= d <= END)


def load(cfg, symbols=("SPY",)) -> dict[str, pd.DataFrame]:
    return {s: load_symbol(s, config=cfg, start=START, end=END, source="synthetic").bars for s in symbols}


# ------------------------------------------------------------------------------------------ folds
SESSIONS = [date(2024, 1, 1) + timedelta(days=i) for i in range(400)]  # any sorted dates will do


@given(n=st.integers(2, 300), train=st.integers(1, 120), test=st.integers(1, 60), anchored=st.booleans())
def test_test_windows_tile_the_range_after_the_first_train_window(n, train, test, anchored):
    sessions = SESSIONS[:n]
    if n <= train:
        with pytest.raises(RequestError, match="walk-forward needs more than --wf-train"):
            make_folds(sessions, train, test, anchored)
        return
    folds = make_folds(sessions, train, test, anchored)
    covered = []
    for k, f in enumerate(folds):
        lo, hi = sessions.index(f.test_start), sessions.index(f.test_end)
        covered += sessions[lo : hi + 1]
        assert f.number == k + 1
        assert f.test_sessions == hi - lo + 1 == (test if k < len(folds) - 1 else f.test_sessions)
        assert 1 <= f.test_sessions <= test
        t_lo, t_hi = sessions.index(f.train_start), sessions.index(f.train_end)
        assert t_hi == lo - 1  # the train window ends right before its test window
        assert f.train_sessions == t_hi - t_lo + 1
        assert f.train_sessions == (train + k * test if anchored else train)
        assert t_lo == (0 if anchored else lo - train)
    assert covered == sessions[train:]  # no gap, no overlap, in order


def test_too_few_sessions_is_a_usage_error_with_the_fix():
    with pytest.raises(RequestError, match="range has 10; widen --start/--end or lower --wf-train"):
        make_folds(SESSIONS[:10], 10, 5)


# ------------------------------------------------------------------------------------------ no look-ahead
def test_a_window_result_ignores_every_bar_after_its_last_session():
    cfg = load_config()
    bars = load(cfg, ("SPY", "QQQ"))
    days = sessions_of(bars)
    train_end = days[19]
    cut = pd.Timestamp(train_end + timedelta(days=1), tz="America/New_York").tz_convert("UTC")

    def doctored(frame: pd.DataFrame) -> pd.DataFrame:
        later = frame.index >= cut
        scale = np.where(later, 1.5, 1.0)
        return frame.assign(
            **{c: frame[c] * scale for c in ("open", "high", "low", "close")},
            volume=np.where(later, frame["volume"] * 3, frame["volume"]),
        )

    task = Task(0, cfg, days[5], train_end)
    honest = evaluate(task, bars)
    assert honest.aggregate["total_trades"] > 0
    other = evaluate(task, {s: doctored(b) for s, b in bars.items()})
    assert (other.per_symbol, other.aggregate) == (honest.per_symbol, honest.aggregate)
    # the doctored bars do matter once the window reaches them
    longer = Task(0, cfg, days[5], days[-1])
    assert (
        evaluate(longer, {s: doctored(b) for s, b in bars.items()}).aggregate
        != evaluate(longer, bars).aggregate
    )


def test_the_fold_picks_the_train_best_even_when_the_test_window_prefers_another(tmp_path):
    """Search seeds for data where the best combination on the train window is not the best on the
    test window; the fold must still pick the train-best, and must only look at the test window after
    the choice (the first batch of tasks ends before it)."""
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    for seed in range(1, 40):
        cfg = load_config(overrides={"data.seed": seed})
        sweep = load_sweep(path, cfg)
        bars = load(cfg)
        days = sessions_of(bars)
        folds = make_folds(days, 28, len(days) - 28)
        (fold,) = folds
        batches: list[list[Task]] = []

        def recording(tasks, bars=bars, batches=batches):
            batches.append(list(tasks))
            return run_tasks(tasks, bars)

        wf = walk_forward(sweep, folds, "total_r", recording)
        candidates = sweep.valid
        on_test = run_tasks(
            [Task(i, c.config, fold.test_start, fold.test_end) for i, c in enumerate(candidates)], bars
        )
        test_best = candidates[
            rank_order([c.index for c in candidates], [r.aggregate for r in on_test], "total_r")[0]
        ]
        if test_best.index != wf.chosen[0].index:
            break
    else:
        pytest.fail("no seed gave a test window preferring another combination than the train window")
    # the choice is the best on the train window computed independently on bars cut at its end
    cut = pd.Timestamp(fold.test_start, tz="America/New_York").tz_convert("UTC")
    train_only = {s: b[b.index < cut] for s, b in bars.items()}
    on_train = [
        evaluate(Task(i, c.config, fold.train_start, fold.train_end), train_only)
        for i, c in enumerate(candidates)
    ]
    train_best = candidates[
        rank_order([c.index for c in candidates], [r.aggregate for r in on_train], "total_r")[0]
    ]
    assert wf.chosen[0].index == train_best.index != test_best.index
    assert wf.chosen_train[0].aggregate == on_train[candidates.index(train_best)].aggregate
    first, second = batches
    assert all(t.end < fold.test_start for t in first)
    assert [(t.config, t.start, t.end) for t in second] == [
        (train_best.config, fold.test_start, fold.test_end)
    ]
    assert wf.test[0].aggregate == on_test[candidates.index(train_best)].aggregate


# ------------------------------------------------------------------------------------------ stitching
@pytest.fixture(scope="module")
def wf_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("wf") / "grid.yaml"
    path.write_text("grid:\n  orb.base_minutes: [5, 15]\n  costs.slippage_per_share: [0.0, 0.03]\n")
    cfg = load_config()
    sweep = load_sweep(path, cfg)
    bars = load(cfg, ("SPY", "QQQ"))
    folds = make_folds(sessions_of(bars), 15, 10)
    wf = walk_forward(sweep, folds, "total_r", lambda tasks: run_tasks(tasks, bars, workers=2))
    return cfg, sweep, wf


def test_stitched_out_of_sample_trades_and_equity_add_up(wf_run):
    cfg, _, wf = wf_run
    oos = stitch(wf, cfg)
    assert len(wf.folds) == 3
    parts = [r.frames[s].trades for r in wf.test for s in ("SPY", "QQQ")]
    assert len(oos.trades) == sum(len(p) for p in parts) > 0
    assert oos.trades["trade_id"].is_unique
    assert oos.trades["r_multiple"].sum() == pytest.approx(sum(p["r_multiple"].sum() for p in parts))
    assert oos.trades["entry_time"].is_monotonic_increasing
    for f, fold in zip(oos.trades.groupby("fold"), wf.folds, strict=True):
        local = f[1]["entry_time"].dt.tz_convert("America/New_York").dt.date
        assert local.min() >= fold.test_start and local.max() <= fold.test_end
    eq = oos.equity
    assert eq["timestamp"].is_monotonic_increasing
    assert eq["fold"].is_monotonic_increasing and set(eq["fold"]) == {1, 2, 3}
    capital = cfg.risk.initial_capital * 2
    assert eq["equity"].iloc[-1] == pytest.approx(capital + oos.trades["net_pnl"].sum())
    assert eq["cum_r"].iloc[-1] == pytest.approx(oos.trades["r_multiple"].sum())
    assert (eq["drawdown_r"] <= 1e-12).all() and (eq["drawdown_pct"] <= 1e-12).all()
    agg = oos.metrics["aggregate"]
    assert agg["total_r"] == pytest.approx(sum(t.aggregate["total_r"] for t in wf.test))
    assert agg["total_trades"] == len(oos.trades)
    assert agg["sessions"] == sum(f.test_sessions for f in wf.folds)


def test_folds_table_and_robustness_figures(wf_run):
    _, sweep, wf = wf_run
    table = folds_table(wf, sweep)
    assert table["fold"].tolist() == [1, 2, 3]
    assert table["combination"].tolist() == [c.index for c in wf.chosen]
    assert table["orb.base_minutes"].tolist() == [c.params["orb.base_minutes"] for c in wf.chosen]
    assert table["oos_total_r"].tolist() == [t.aggregate["total_r"] for t in wf.test]
    # in-sample figures are the chosen combination's, which is the best of its fold's train results
    for row, train in zip(table.itertuples(), wf.train, strict=True):
        assert row.is_total_r == max(r.aggregate["total_r"] for r in train)
    fig = robustness(wf, sweep)
    is_per = table["is_total_r"].sum() / table["train_sessions"].sum()
    oos_per = table["oos_total_r"].sum() / table["test_sessions"].sum()
    assert fig["is_r_per_session"] == pytest.approx(is_per)
    assert fig["oos_r_per_session"] == pytest.approx(oos_per)
    assert fig["efficiency"] == (pytest.approx(oos_per / is_per) if is_per > 0 else None)
    assert fig["profitable_fold_share"] == pytest.approx((table["oos_total_r"] > 0).mean())
    chosen = table["orb.base_minutes"].tolist()
    stab = fig["parameter_stability"]["orb.base_minutes"]
    assert stab["chosen"] == chosen
    assert stab["distinct"] == len(set(chosen))
    assert stab["mode_share"] == pytest.approx(chosen.count(stab["mode"]) / 3)
    assert stab["changes"] == sum(a != b for a, b in zip(chosen, chosen[1:], strict=False))


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("anchored", [False, True])
def test_cli_walk_forward_writes_its_run_folder(tmp_path, anchored):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  orb.base_minutes: [5, 15]\n")
    flags = ["--walk-forward", "--wf-train", "15", "--wf-test", "10"] + (
        ["--wf-anchored"] if anchored else []
    )
    code, out = run_cli(tmp_path, "--symbols", "SPY", "QQQ", *SYNTH, "--sweep", str(path), *flags, "-q")
    assert code == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    files = {
        "wf_folds.parquet",
        "wf_folds.csv",
        "wf_train_results.parquet",
        "wf_oos_trades.parquet",
        "wf_oos_trades.csv",
        "wf_oos_equity.parquet",
        "walk_forward.json",
        "metrics.json",
        "config.json",
    }
    assert {p.name for p in run_dir.iterdir()} == files | {"manifest.json", "run.log"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["mode"], manifest["schema_version"]) == ("walk_forward", "1.1")
    assert set(manifest["files"]) == files
    folds = pd.read_parquet(run_dir / "wf_folds.parquet")
    n_sessions = len(pd.bdate_range(START, END)) - 2  # Jan 15 and Feb 19 are holidays
    assert folds["test_sessions"].sum() == n_sessions - 15
    assert folds["train_start"].nunique() == (1 if anchored else len(folds))
    train = pd.read_parquet(run_dir / "wf_train_results.parquet")
    assert len(train) == 2 * len(folds)
    info = json.loads((run_dir / "walk_forward.json").read_text())
    assert (info["train_sessions"], info["test_sessions"], info["anchored"]) == (15, 10, anchored)
    assert info["robustness"]["folds"] == len(folds)
    trades = pd.read_parquet(run_dir / "wf_oos_trades.parquet")
    oos = json.loads((run_dir / "metrics.json").read_text())
    assert oos["aggregate"]["total_r"] == pytest.approx(trades["r_multiple"].sum())
    assert (
        oos["aggregate"]["total_trades"]
        == len(trades)
        == sum(oos["per_symbol"][s]["total_trades"] for s in SYMS)
    )


# ------------------------------------------------------------------------------------------ --monte-carlo
@pytest.mark.parametrize("walk_forward", [False, True])
def test_cli_monte_carlo_files_join_the_run_folder(tmp_path, walk_forward):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  orb.base_minutes: [5, 15]\n")
    research = (
        ["--sweep", str(path), "--walk-forward", "--wf-train", "15", "--wf-test", "10"]
        if walk_forward
        else []
    )
    mc = ["--monte-carlo", "300", "--mc-by-session", "--mc-dd", "2", "4.5", "--seed", "7"]
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, *research, *mc, "-q")
    assert code == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    mc_files = {"montecarlo_summary.json", "montecarlo_bands.parquet", "montecarlo_paths.parquet"}
    assert mc_files <= set(json.loads((run_dir / "manifest.json").read_text())["files"])
    summary = json.loads((run_dir / "montecarlo_summary.json").read_text())
    assert (summary["n_paths"], summary["seed"], summary["resample"]) == (300, 7, "sessions")
    assert summary["drawdown_thresholds_r"] == [2.0, 4.5]
    trades = pd.read_parquet(run_dir / ("wf_oos_trades.parquet" if walk_forward else "all_trades.parquet"))
    assert summary["n_trades"] == len(trades)  # the bootstrap resampled this run's (OOS) trades
    assert summary["observed"]["total_r"] == pytest.approx(trades["r_multiple"].sum())
    assert len(pd.read_parquet(run_dir / "montecarlo_paths.parquet")) == 300
