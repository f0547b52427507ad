"""streamlit_app.py under Streamlit's AppTest on research runs written by the real runner.

A sweep (heatmap and ranked table), a walk-forward (folds, robustness, stitched equity) with Monte
Carlo output, and a backtest with Monte Carlo by session (tests/research_fixtures.py). Rendered
tables, cards and chart traces are compared with the run's own files.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from research_fixtures import research_runs
from streamlit.testing.v1 import AppTest

from orb.runs import read as results

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return research_runs(tmp_path_factory.getbasetemp())


def app(runs_dir: Path, monkeypatch, run_id: str | None = None) -> AppTest:
    monkeypatch.setenv("ORB_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(APP, default_timeout=120).run()
    if run_id is not None:
        at.selectbox(key="run_picker").set_value(run_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.+-]", "", text))


def values(array) -> np.ndarray:
    """A plotly array as numbers (plotly's JSON stores numeric arrays base64-encoded)."""
    if isinstance(array, dict) and "bdata" in array:
        data = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        shape = [int(n) for n in str(array.get("shape", len(data))).split(",")]
        return data.reshape(shape)
    return np.asarray(array, dtype=float)


def figure(at: AppTest, title_start: str):
    found = [pio.from_json(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in found if (f.layout.title.text or "").startswith(title_start))


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first rendered table having these columns (display-only tables carry no key in AppTest)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def cards(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def tab_labels(at: AppTest) -> list[str]:
    return [t.label for t in at.tabs]


def aggregate_rows(run: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run / "sweep_results.parquet")
    return frame[frame["symbol"] == "*"]


# ------------------------------------------------------------------------------------------- picker


def test_picker_shows_research_runs_with_their_mode(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch)
    summaries = {s.run_id: s for s in results.list_runs(runs["runs"])}
    labels = {label.split(" · ")[0]: label for label in at.selectbox(key="run_picker").options}
    assert labels[runs["sweep"].name] == f"{runs['sweep'].name} · sweep · SPY, QQQ · 2024-01-02 → 2024-06-28"
    wf = summaries[runs["wf"].name]
    oos = read_json(runs["wf"] / "metrics.json")["aggregate"]
    assert wf.trades == oos["total_trades"]
    assert labels[runs["wf"].name] == (
        f"{runs['wf'].name} · walk-forward · SPY · 2024-01-02 → 2024-06-28 · "
        f"{oos['total_trades']} OOS trades · {oos['total_r']:+.1f}R"
    )
    assert " · sweep · " not in labels[runs["mc"].name] and labels[runs["mc"].name].endswith("R")
    assert at.selectbox(key="run_picker").value == runs["mc"].name  # the latest run


# -------------------------------------------------------------------------------------------- sweep


def test_sweep_run_has_only_the_sweep_and_config_tabs(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    assert tab_labels(at) == ["Sweep", "Config"]
    assert not at.error
    assert at.header[0].value == f"Run {runs['sweep'].name}"
    shown = [json.loads(j.proto.body) for j in at.json]
    assert read_json(runs["sweep"] / "config.json") in shown
    assert read_json(runs["sweep"] / "manifest.json") in shown


def test_sweep_cards_equal_sweep_json_and_the_ranked_rows(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    info = read_json(runs["sweep"] / "sweep.json")
    shown = cards(at)
    assert int(shown["Combinations"]) == info["combinations"] == 24
    assert int(shown["Evaluated"]) == info["evaluated"] == 12
    assert int(shown["Invalid"]) == len(info["invalid"]) == 12
    ranked = aggregate_rows(runs["sweep"]).sort_values("rank")["total_r"]
    assert number(shown["Best Total R"]) == pytest.approx(ranked.iloc[0], abs=0.005)
    assert number(shown["Worst Total R"]) == pytest.approx(ranked.iloc[-1], abs=0.005)
    assert ranked.iloc[0] == ranked.max()


def test_sweep_heatmap_defaults_to_the_ranking_metric_over_the_first_two_keys(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    fig = figure(at, "Total R by orb.base_minutes and costs.slippage_per_share")
    (heat,) = fig.data
    assert heat.type == "heatmap"
    # aggregate rows; the two other keys vary inside each cell: their mean (t1_r 2.0 is invalid, so
    # each cell holds the two stop modes)
    rows = aggregate_rows(runs["sweep"])
    expected = rows.pivot_table(
        index="costs.slippage_per_share", columns="orb.base_minutes", values="total_r", aggfunc="mean"
    )
    assert list(heat.x) == ["5", "15", "30"] and list(heat.y) == ["0", "0.05"]
    np.testing.assert_allclose(values(heat.z), expected.loc[[0.0, 0.05], [5, 15, 30]].to_numpy())
    assert (values(heat.customdata) == 2).all()
    assert "mean over the other parameters" in fig.layout.title.text


def test_sweep_heatmap_follows_the_select_boxes(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    run_id = runs["sweep"].name
    at.selectbox(key=f"sweep_scope_{run_id}").set_value("SPY")
    at.selectbox(key=f"sweep_metric_{run_id}").set_value("win_rate")
    at.selectbox(key=f"sweep_x_{run_id}").set_value("trade.stop_mode").run()
    at.selectbox(key=f"sweep_y_{run_id}").set_value("orb.base_minutes")
    at.selectbox(key=f"sweep_agg_{run_id}").set_value("max").run()
    assert not at.exception
    (heat,) = figure(at, "Win rate by trade.stop_mode and orb.base_minutes").data
    frame = pd.read_parquet(runs["sweep"] / "sweep_results.parquet")
    spy = frame[frame["symbol"] == "SPY"]
    expected = spy.pivot_table(
        index="orb.base_minutes", columns="trade.stop_mode", values="win_rate", aggfunc="max"
    )
    assert list(heat.x) == ["or_opposite", "atr_capped"]  # string values: grid order
    assert list(heat.y) == ["5", "15", "30"]
    np.testing.assert_allclose(
        values(heat.z), expected.loc[[5, 15, 30], ["or_opposite", "atr_capped"]].to_numpy()
    )


def test_sweep_table_is_ranked_and_sorts_by_a_chosen_metric(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    run_id = runs["sweep"].name
    rows = aggregate_rows(runs["sweep"])
    table = table_with(at, "rank", "combination", "symbol")
    assert list(table["rank"]) == list(range(1, 13)) and set(table["symbol"]) == {"*"}
    np.testing.assert_allclose(table["total_r"], rows.sort_values("rank")["total_r"])
    assert {"orb.base_minutes", "costs.slippage_per_share", "trade.stop_mode", "trade.t1_r"} <= set(
        table.columns
    )

    at.selectbox(key=f"sweep_sort_{run_id}").set_value("win_rate").run()
    by_win = table_with(at, "rank", "combination", "symbol")
    expected = rows.sort_values("win_rate", ascending=False, kind="stable")
    assert list(by_win["combination"]) == list(expected["combination"])
    assert list(by_win["win_rate"]) == sorted(by_win["win_rate"], reverse=True)

    at.toggle(key=f"sweep_reverse_{run_id}").set_value(True).run()
    reverse = table_with(at, "rank", "combination", "symbol")
    assert list(reverse["win_rate"]) == sorted(reverse["win_rate"])

    at.selectbox(key=f"sweep_scope_{run_id}").set_value("QQQ").run()
    assert set(table_with(at, "rank", "combination", "symbol")["symbol"]) == {"QQQ"}


def test_sweep_lists_its_invalid_combinations(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["sweep"].name)
    info = read_json(runs["sweep"] / "sweep.json")
    invalid = next(f.value for f in at.dataframe if "error" in f.value.columns)
    assert list(invalid["combination"]) == [item["combination"] for item in info["invalid"]]
    assert invalid["error"].str.contains("t1_r < t2_r").all()


# ------------------------------------------------------------------------------------- walk-forward


def test_walkforward_run_tabs_and_robustness_cards(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["wf"].name)
    assert tab_labels(at) == ["Walk-forward", "Monte Carlo", "Config"]
    assert not at.error
    robustness = read_json(runs["wf"] / "walk_forward.json")["robustness"]
    shown = cards(at)
    efficiency = robustness["efficiency"]
    assert shown["Walk-forward efficiency"] == ("—" if efficiency is None else f"{efficiency:,.2f}")
    share, folds = robustness["profitable_fold_share"], robustness["folds"]
    profitable = sum(1 for r in pd.read_parquet(runs["wf"] / "wf_folds.parquet")["oos_total_r"] if r > 0)
    assert shown[f"Profitable OOS folds ({profitable}/{folds})"] == f"{share:.0%}"
    assert number(shown["OOS total R"]) == pytest.approx(robustness["oos_total_r"], abs=0.005)
    assert number(shown["IS total R"]) == pytest.approx(robustness["is_total_r"], abs=0.005)
    assert int(shown["Combination changes"]) == robustness["combination_changes"]
    # the stitched out-of-sample metrics (metrics.json) are the walk-forward's KPI cards
    oos = read_json(runs["wf"] / "metrics.json")["aggregate"]
    assert int(shown["Trades"]) == oos["total_trades"]
    assert number(shown["Total R"]) == pytest.approx(oos["total_r"], abs=0.005)


def test_walkforward_folds_table_holds_windows_choices_and_is_vs_oos(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["wf"].name)
    folds = pd.read_parquet(runs["wf"] / "wf_folds.parquet")
    table = table_with(at, "fold", "is_total_r", "oos_total_r")
    assert list(table["fold"]) == list(folds["fold"])
    for column in ("train_start", "train_end", "test_start", "test_end"):
        assert list(pd.to_datetime(table[column]).dt.date) == list(folds[column]), column
    for column in ("combination", "orb.base_minutes", "costs.slippage_per_share", "train_sessions"):
        assert list(table[column]) == list(folds[column]), column
    for column in ("is_total_r", "oos_total_r", "is_win_rate", "oos_win_rate", "oos_total_trades"):
        np.testing.assert_allclose(table[column].astype(float), folds[column].astype(float), err_msg=column)
    bars = figure(at, "R per session by fold")
    np.testing.assert_allclose(
        values(trace(bars, "Out-of-sample").y), folds["oos_total_r"] / folds["test_sessions"]
    )
    np.testing.assert_allclose(
        values(trace(bars, "In-sample").y), folds["is_total_r"] / folds["train_sessions"]
    )


def test_walkforward_stability_and_stitched_equity(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["wf"].name)
    robustness = read_json(runs["wf"] / "walk_forward.json")["robustness"]
    stability = table_with(at, "parameter", "chosen per fold").set_index("parameter")
    chosen = robustness["parameter_stability"]["orb.base_minutes"]
    assert stability.loc["orb.base_minutes", "chosen per fold"] == " → ".join(
        str(v) for v in chosen["chosen"]
    )
    assert stability.loc["orb.base_minutes", "distinct"] == chosen["distinct"]
    assert stability.loc["orb.base_minutes", "share"] == pytest.approx(chosen["mode_share"])

    equity = pd.read_parquet(runs["wf"] / "wf_oos_equity.parquet")
    fig = figure(at, "Stitched out-of-sample equity")
    curve = values(trace(fig, "Out-of-sample").y)
    np.testing.assert_allclose(curve, equity["cum_r"])
    assert curve[-1] == pytest.approx(read_json(runs["wf"] / "metrics.json")["aggregate"]["total_r"])
    fold_marks = [a.text for a in fig.layout.annotations if a.text.startswith("F")]
    assert fold_marks == [f"F{k}" for k in range(2, robustness["folds"] + 1)]

    at.segmented_control(key=f"wf_unit_{runs['wf'].name}").set_value("$").run()
    dollars = values(trace(figure(at, "Stitched out-of-sample equity"), "Out-of-sample").y)
    np.testing.assert_allclose(dollars, equity["equity"])


# ------------------------------------------------------------------------------------------ Monte Carlo


def test_walkforward_monte_carlo_bands_histogram_and_exceedance(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch, runs["wf"].name)
    summary = read_json(runs["wf"] / "montecarlo_summary.json")
    bands = pd.read_parquet(runs["wf"] / "montecarlo_bands.parquet")
    fan = figure(at, "Monte Carlo: cumulative R")
    for name, column in (("Median", "p50"), ("This run", "observed"), ("5th–95th percentile", "p95"),
                         ("p5", "p5"), ("25th–75th percentile", "p75"), ("p25", "p25")):  # fmt: skip
        np.testing.assert_allclose(values(trace(fan, name).y), bands[column], err_msg=name)
    assert fan.layout.xaxis.title.text == "Trade number"

    paths = pd.read_parquet(runs["wf"] / "montecarlo_paths.parquet")
    hist = figure(at, "Monte Carlo: max drawdown")
    assert values(trace(hist, "Paths").y).sum() == len(paths) == summary["n_paths"]
    observed = summary["observed"]["max_drawdown_r"]
    marker = next(t for t in hist.data if t.name.startswith("This run"))
    assert list(values(marker.x)) == [observed, observed]

    shown = cards(at)
    for threshold, share in summary["prob_max_drawdown_exceeds"].items():
        assert shown[f"P(DD > {threshold}R)"] == f"{share:.1%}"
        assert share == pytest.approx((-paths["max_drawdown_r"] > float(threshold)).mean())
    assert number(shown["Median total R"]) == pytest.approx(
        summary["percentiles"]["total_r"]["p50"], abs=0.005
    )
    table = table_with(at, "p5", "p50", "this run")
    assert table.loc["Max drawdown R", "p5"] == pytest.approx(summary["percentiles"]["max_drawdown_r"]["p5"])
    assert table.loc["Longest losing streak", "this run"] == summary["observed"]["longest_losing_streak"]


def test_backtest_with_monte_carlo_keeps_its_tabs_and_adds_monte_carlo(runs, monkeypatch):
    at = app(runs["runs"], monkeypatch)  # the latest run: the backtest
    assert at.selectbox(key="run_picker").value == runs["mc"].name
    labels = tab_labels(at)
    backtest_tabs = ["Overview", "Trades", "Session replay", "Analysis", "Sessions"]
    assert labels == [*backtest_tabs, "Monte Carlo", "Compare", "Config"]
    shown = cards(at)
    aggregate = read_json(runs["mc"] / "metrics.json")["aggregate"]
    assert int(shown["Trades"]) == aggregate["total_trades"]
    summary = read_json(runs["mc"] / "montecarlo_summary.json")
    assert set(summary["prob_max_drawdown_exceeds"]) == {"3", "6"}
    for threshold, share in summary["prob_max_drawdown_exceeds"].items():
        assert shown[f"P(DD > {threshold}R)"] == f"{share:.1%}"
    fan = figure(at, "Monte Carlo: cumulative R")
    assert fan.layout.xaxis.title.text == "Session number"  # --mc-by-session
    bands = pd.read_parquet(runs["mc"] / "montecarlo_bands.parquet")
    assert len(values(trace(fan, "Median").y)) == len(bands) == summary["n_units"]
    # research runs cannot be compared with a backtest: it is the only backtest here
    assert any("nothing to compare" in i.value for i in at.info)


# ------------------------------------------------------------------------------------------- damaged


def test_a_damaged_sweep_names_its_missing_file(runs, monkeypatch, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs["sweep"], root / runs["sweep"].name)
    (root / runs["sweep"].name / "sweep_results.parquet").unlink()
    at = app(root, monkeypatch)
    assert at.selectbox(key="run_picker").options == [f"⚠ {runs['sweep'].name} · damaged"]
    assert len(at.error) == 1 and "sweep_results.parquet" in at.error[0].value
    assert not at.metric
