"""Portfolio runs in the read side, the API, the charts, the dashboard, the report and Monte Carlo.

The run folder is written by the real runner (`run_backtest.py --synthetic --symbols-file ...`, a small
universe over two months); every value the views show is compared with that folder's own files. A second
folder adds Monte Carlo output and the report through the writer, the steps a portfolio run with
`--monte-carlo N --report` takes.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from fastapi.testclient import TestClient
from run_fixtures import api_get, build_run, run_backtest
from streamlit.testing.v1 import AppTest

from orb.api.app import create_app
from orb.charts import portfolio as pcharts
from orb.report_portfolio import render_portfolio_report, write_portfolio_report
from orb.research.montecarlo import monte_carlo
from orb.research.runner import MonteCarloRequest, portfolio_bootstrap_hook
from orb.runs import read as results
from orb.runs.write import PortfolioArtifacts, finish_manifest, publish, staging, write_portfolio

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
UNIVERSE = ["ALFA", "BRAVO", "CHAR", "DELT", "ECHO", "FOXT", "GOLF", "HOTL"]
CONFIG = (
    "portfolio:\n  enabled: true\n  max_positions: 3\n  benchmark: SPY\n"
    "universe:\n  min_price: 5\n  min_rel_volume: 1.0\norb:\n  base_minutes: 5\n  min_width_atr: null\n"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real portfolio run folder (8 synthetic symbols, February-March 2024, 3 slots, SPY benchmark)."""
    base = tmp_path_factory.mktemp("pviews")
    (base / "universe.txt").write_text("\n".join(UNIVERSE) + "\n", encoding="utf-8")
    (base / "portfolio.yaml").write_text(CONFIG, encoding="utf-8")
    return run_backtest(
        base / "runs",
        "--symbols-file", str(base / "universe.txt"), "--start", "2024-02-01", "--end", "2024-03-28",
        "--config", str(base / "portfolio.yaml"), "--workers", "1",
    )  # fmt: skip


@pytest.fixture(scope="module")
def mc_run(run, tmp_path_factory) -> Path:
    """`run` rewritten with Monte Carlo output and portfolio_report.html, as the runner writes them."""
    out = tmp_path_factory.mktemp("pviews_mc") / "runs"
    out.mkdir()
    manifest = results.load_manifest(run)
    trades = results.load_trades(run)
    hook = portfolio_bootstrap_hook(MonteCarloRequest(paths=300, seed=11), seed=42)
    art = PortfolioArtifacts(
        universe=pd.read_parquet(run / "universe.parquet"),
        trades=pd.read_parquet(run / "all_trades.parquet"),
        fills=pd.read_parquet(run / "all_fills.parquet"),
        events=pd.read_parquet(run / "all_events.parquet"),
        bars=pd.read_parquet(run / "bars.parquet"),
        equity=pd.read_parquet(run / "combined_equity.parquet"),
        benchmark=pd.read_parquet(run / "benchmark.parquet"),
        metrics=results.load_metrics(run),
        config=results.load_run_config(run),
        montecarlo=hook(trades, results.session_dates(run)),
    )
    with staging(out, run.name) as tmp:
        write_portfolio(tmp, art)
        del manifest["files"]
        finish_manifest(tmp, manifest)
        write_portfolio_report(tmp)
        finish_manifest(tmp, manifest)
        return publish(tmp, out, run.name)


@pytest.fixture(scope="module")
def client(run) -> TestClient:
    return TestClient(create_app(run.parent))


def parquet(run: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run / name)


def days(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).dt.date


def traded_day(run: Path) -> tuple[date, str]:
    """The first session with a trade and its first traded symbol."""
    universe = parquet(run, "universe.parquet")
    row = universe[universe["status"] == "traded"].iloc[0]
    return pd.Timestamp(row["session_date"]).date(), str(row["symbol"])


# ----------------------------------------------------------------------------------------- read side


def test_the_run_is_a_portfolio_run_with_trades_and_several_statuses(run):
    assert results.run_mode(run) == results.PORTFOLIO and results.is_portfolio(run)
    universe = parquet(run, "universe.parquet")
    assert {"traded", "skipped"} <= set(universe["status"])
    assert len(parquet(run, "all_trades.parquet")) >= 5


def test_load_universe_filters_by_date_and_symbol(run):
    universe = parquet(run, "universe.parquet")
    day, sym = traded_day(run)
    pd.testing.assert_frame_equal(results.load_universe(run), universe)
    one_day = results.load_universe(run, day.isoformat())
    assert len(one_day) == len(UNIVERSE) and set(days(one_day["session_date"])) == {day}
    assert results.load_universe(run, day, sym.lower())["symbol"].tolist() == [sym]
    ranked = pcharts.universe_day_table(one_day, 3)
    ranks = ranked["rank"].dropna().tolist()
    assert ranks == sorted(ranks) and ranked["rank"].isna().tolist() == sorted(ranked["rank"].isna())
    assert results.session_dates(run) == sorted(set(days(universe["session_date"])))


def test_per_symbol_reads_are_the_symbols_rows_of_the_combined_tables(run):
    day, sym = traded_day(run)
    readers = {"all_trades.parquet": results.load_trades, "all_fills.parquet": results.load_fills,
               "all_events.parquet": results.load_events}  # fmt: skip
    for name, reader in readers.items():
        combined = parquet(run, name)
        expected = combined[combined["symbol"] == sym].reset_index(drop=True)
        pd.testing.assert_frame_equal(reader(run, sym).reset_index(drop=True), expected)
    bars = parquet(run, "bars.parquet")
    local = pd.to_datetime(bars["timestamp"]).dt.tz_convert("America/New_York").dt.date
    expected = bars[(bars["symbol"] == sym) & (local == day)].drop(columns="symbol").set_index("timestamp")
    got = results.load_bars(run, sym, day)
    assert len(got) > 300
    pd.testing.assert_frame_equal(got, expected)
    sessions = results.load_sessions(run, sym)
    assert (sessions["symbol"] == sym).all() and len(sessions) == results.load_universe(run)[
        "session_date"
    ].nunique()
    assert sessions["skip_reason"].equals(sessions["reason"])


def test_a_portfolio_run_has_no_symbol_equity_and_a_backtest_no_universe(run, tmp_path):
    with pytest.raises(results.OutputNotFound, match="portfolio run: its only equity is the account's"):
        results.load_equity(run, "ECHO")
    pd.testing.assert_frame_equal(results.load_equity(run), parquet(run, "combined_equity.parquet"))
    backtest = build_run(tmp_path / "runs")
    for read in (results.load_universe, results.load_benchmark):
        with pytest.raises(results.OutputNotFound, match="not a portfolio run"):
            read(backtest)
    with pytest.raises(results.SymbolNotFound, match="ZZZ"):
        results.load_universe(run, symbol="ZZZ")


def test_benchmark_reads_and_a_run_without_one_says_so(run, tmp_path):
    pd.testing.assert_frame_equal(results.load_benchmark(run), parquet(run, "benchmark.parquet"))
    bare = tmp_path / run.name
    shutil.copytree(run, bare)
    manifest = json.loads((bare / "manifest.json").read_text())
    del manifest["files"]["benchmark.parquet"]
    (bare / "benchmark.parquet").unlink()
    (bare / "manifest.json").write_text(json.dumps(manifest))
    assert not results.has_benchmark(bare)
    with pytest.raises(results.OutputNotFound, match="portfolio.benchmark was not set"):
        results.load_benchmark(bare)


# ----------------------------------------------------------------------------------------- API


def test_api_universe_of_one_session_equals_the_file(run, client):
    day, _ = traded_day(run)
    body = api_get(client, f"/api/universe?run_id={run.name}&date={day}")
    universe = parquet(run, "universe.parquet")
    expected = universe[days(universe["session_date"]) == day]
    assert body["total"] == len(expected) == len(UNIVERSE) and body["date"] == day.isoformat()
    got = pd.DataFrame(body["rows"])
    assert got["symbol"].tolist() == expected["symbol"].tolist()
    assert got["status"].tolist() == expected["status"].tolist()
    assert [r["reason"] for r in body["rows"]] == [None if pd.isna(r) else r for r in expected["reason"]]
    assert [r["rank"] for r in body["rows"]] == [None if pd.isna(r) else int(r) for r in expected["rank"]]
    for key in ("open_price", "avg_volume", "atr", "rel_volume", "or_high", "or_low", "day_r", "day_pnl"):
        want = expected[key].to_numpy(dtype=float)
        assert np.allclose(got[key].to_numpy(dtype=float), want, equal_nan=True), key
    everything = api_get(client, "/api/universe")
    assert everything["total"] == len(universe)


def test_api_backtest_endpoints_answer_for_a_portfolio_run(run, client):
    day, sym = traded_day(run)
    trades = parquet(run, "all_trades.parquet")
    mine = trades[trades["symbol"] == sym]
    body = api_get(client, f"/api/trades?symbol={sym.lower()}&limit=5000")
    assert body["total"] == len(mine) and [t["trade_id"] for t in body["trades"]] == mine["trade_id"].tolist()
    # R is rounded to 4 decimals at the JSON edge (the Parquet file keeps full precision)
    assert [t["r_multiple"] for t in body["trades"]] == [round(r, 4) for r in mine["r_multiple"]]
    assert [t["alloc"] for t in body["trades"]] == pytest.approx(mine["alloc"].tolist())
    assert api_get(client, "/api/trades?limit=5000")["total"] == len(trades)
    equity = parquet(run, "combined_equity.parquet")
    points = api_get(client, "/api/equity")["points"]
    assert [p["equity"] for p in points] == pytest.approx(equity["equity"].tolist())
    assert "only equity is the account's" in api_get(client, f"/api/equity?symbol={sym}", 404)["detail"]
    sessions = api_get(client, f"/api/sessions?symbol={sym}")["sessions"]
    universe = parquet(run, "universe.parquet")
    rows = universe[universe["symbol"] == sym]
    assert [s["status"] for s in sessions] == rows["status"].tolist()
    assert [s.get("rank") for s in sessions] == [None if pd.isna(r) else int(r) for r in rows["rank"]]
    metrics = json.loads((run / "metrics.json").read_text())
    agg = api_get(client, "/api/metrics/core")["metrics"]
    for key in ("total_return_pct", "sharpe", "daily_hit_ratio", "avg_positions", "beta", "alpha_pct"):
        assert agg[key] == pytest.approx(metrics["aggregate"][key]), key
    never = sorted(set(UNIVERSE) - set(trades["symbol"]))[0]
    assert "never traded" in api_get(client, f"/api/metrics/core?symbol={never}", 404)["detail"]
    one = api_get(client, f"/api/metrics/core?symbol={sym}")["metrics"]
    assert one["total_trades"] == metrics["per_symbol"][sym]["total_trades"] == len(mine)
    detail = api_get(client, f"/api/runs/{run.name}")
    assert detail["mode"] == "portfolio" and detail["metrics"]["daily_hit_ratio"] == pytest.approx(
        metrics["aggregate"]["daily_hit_ratio"]
    )


def test_api_benchmark_and_errors(run, client, tmp_path):
    bench = parquet(run, "benchmark.parquet")
    body = api_get(client, "/api/benchmark")
    assert body["symbol"] == "SPY" and [p["close"] for p in body["points"]] == pytest.approx(
        bench["close"].tolist()
    )
    assert [p["return"] for p in body["points"]] == pytest.approx(bench["return"].tolist())
    api_get(client, "/api/universe?date=2024-13-01", 422)
    api_get(client, "/api/universe?date=20240201", 422)
    assert api_get(client, "/api/universe?date=2024-02-03")["total"] == 0  # a Saturday: no rows
    other = TestClient(create_app(tmp_path / "runs"))
    build_run(tmp_path / "runs")
    assert "not a portfolio run" in api_get(other, "/api/universe", 404)["detail"]
    assert "not a portfolio run" in api_get(other, "/api/benchmark", 404)["detail"]


# ----------------------------------------------------------------------------------------- charts


def hand_universe() -> pd.DataFrame:
    """Two sessions, four symbols, 2 slots. Day 1: A rank 1 traded (+2R), B rank 2 no signal, C rank 3
    not selected, D skipped (min_price). Day 2: C rank 1 traded (-1R), A skipped (warmup), B and D
    skipped (min_rel_volume)."""
    d1, d2 = date(2024, 3, 4), date(2024, 3, 5)
    rows = [
        (d1, "A", 3.0, "traded", None, 1, 1, 2.0),
        (d1, "B", 2.0, "no_signal", None, 2, 0, 0.0),
        (d1, "C", 1.5, "not_selected", None, 3, 0, 0.0),
        (d1, "D", 5.0, "skipped", "min_price", None, 0, 0.0),
        (d2, "A", np.nan, "skipped", "warmup", None, 0, 0.0),
        (d2, "B", 0.5, "skipped", "min_rel_volume", None, 0, 0.0),
        (d2, "C", 4.0, "traded", None, 1, 2, -1.0),
        (d2, "D", 0.2, "skipped", "min_rel_volume", None, 0, 0.0),
    ]
    frame = pd.DataFrame(rows, columns=["session_date", "symbol", "rel_volume", "status", "reason", "rank",
                                        "trades", "day_r"])  # fmt: skip
    return frame.assign(rank=frame["rank"].astype("Int64"), day_pnl=frame["day_r"] * 100)


def hand_trades() -> pd.DataFrame:
    """A: one +2R trade on day 1; C: two trades on day 2 (+0.5R, -1.5R)."""
    return pd.DataFrame(
        {
            "trade_id": ["A-1", "C-1", "C-2"],
            "symbol": ["A", "C", "C"],
            "session_date": [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 5)],
            "r_multiple": [2.0, 0.5, -1.5],
            "net_pnl": [200.0, 50.0, -150.0],
        }
    )


def test_positions_per_session_and_funnel_count_the_statuses():
    positions = pcharts.positions_per_session(hand_universe())
    assert positions.to_dict("list") == {
        "session_date": [date(2024, 3, 4), date(2024, 3, 5)],
        "eligible": [3, 1],
        "selected": [2, 1],
        "traded": [1, 1],
    }
    fig = pcharts.positions_figure(positions, 2)
    assert list(fig.data[0].y) == [1, 1] and fig.layout.shapes[0].y0 == 2
    funnel = pcharts.funnel(hand_universe())
    assert funnel.set_index("outcome")["symbol_sessions"].to_dict() == {
        "warmup": 1, "min_rel_volume": 2, "min_price": 1, "not_selected": 1, "no_signal": 1, "traded": 2,
    }  # fmt: skip
    assert list(pcharts.funnel_figure(funnel).data[0].x) == funnel["symbol_sessions"].tolist()


def test_the_day_table_ranks_and_says_why():
    day = hand_universe().iloc[:4]
    table = pcharts.universe_day_table(day, 2)
    assert table["symbol"].tolist() == ["A", "B", "C", "D"]
    assert table["why"].tolist() == [
        "selected (rank 1): 1 trade(s), +2.00R",
        "selected (rank 2): no entry signal",
        "eligible, not selected: rank 3 > 2 slots",
        "not eligible: min_price",
    ]
    shuffled = pcharts.universe_day_table(day.iloc[::-1], 2)
    assert shuffled["symbol"].tolist() == ["A", "B", "C", "D"]


def test_rel_volume_buckets_average_the_trades_of_each_bucket():
    buckets = pcharts.rel_volume_buckets(hand_trades(), hand_universe(), buckets=2)
    # traded symbol-sessions: A day 1 (rel 3.0), C day 2 (rel 4.0): edges 3.0, 3.5, 4.0
    assert buckets["rel_lo"].tolist() == [3.0, 3.5] and buckets["rel_hi"].tolist() == [3.5, 4.0]
    assert buckets["trades"].tolist() == [1, 2]
    assert buckets["avg_r"].tolist() == pytest.approx([2.0, -0.5])
    assert buckets["total_r"].tolist() == pytest.approx([2.0, -1.0])
    assert buckets["win_rate"].tolist() == pytest.approx([1.0, 0.5])
    fig = pcharts.rel_volume_figure(buckets)
    assert list(fig.data[0].y) == pytest.approx([2.0, -0.5])
    assert pcharts.rel_volume_buckets(hand_trades().iloc[:0], hand_universe()).empty


def test_best_and_worst_symbols_by_total_r():
    best, worst = pcharts.best_and_worst(hand_trades(), n=1)
    assert best.to_dict("records") == [
        {"symbol": "A", "trades": 1, "total_r": 2.0, "avg_r": 2.0, "win_rate": 1.0, "net_pnl": 200.0}
    ]
    assert worst["symbol"].tolist() == ["C"] and worst["total_r"].tolist() == [-1.0]
    best, worst = pcharts.best_and_worst(hand_trades(), n=25)
    assert best["symbol"].tolist() == ["A", "C"] and worst["symbol"].tolist() == ["C", "A"]
    fig = pcharts.symbols_figure(best, worst)
    assert list(fig.data[0].x) == [2.0, -1.0] and list(fig.data[1].x) == [-1.0, 2.0]


def test_account_figure_has_the_daily_account_and_the_buy_and_hold():
    ts = pd.to_datetime(["2024-03-04 15:00", "2024-03-04 21:00", "2024-03-05 21:00"], utc=True)
    equity = pd.DataFrame(
        {"timestamp": ts, "equity": [1000.0, 1010.0, 990.0], "drawdown_pct": [0.0, 0.0, -1.98]}
    )
    bench = pd.DataFrame({"session_date": [date(2024, 3, 4), date(2024, 3, 5)], "close": [10.0, 11.0],
                          "return": [0.1, 0.1]})  # fmt: skip
    daily = pcharts.daily_account(equity)
    assert daily["equity"].tolist() == [1010.0, 990.0]  # each session's last row
    held = pcharts.buy_and_hold(bench, 1000.0)
    assert held["equity"].tolist() == pytest.approx([1100.0, 1210.0])
    fig = pcharts.account_figure(equity, bench, 1000.0, benchmark_symbol="SPY")
    names = [t.name for t in fig.data]
    assert names == ["Account", "SPY buy and hold", "Account drawdown"]
    assert list(fig.data[1].y) == pytest.approx([1100.0, 1210.0])
    assert [t.name for t in pcharts.account_figure(equity, None, 1000.0).data] == [
        "Account",
        "Account drawdown",
    ]


# ----------------------------------------------------------------------------------------- dashboard


def values(array) -> np.ndarray:
    """A plotly array as numbers (plotly's JSON stores numeric arrays base64-encoded)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def figures(at: AppTest) -> list:
    return [pio.from_json(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_dashboard_portfolio_tabs(run, monkeypatch):
    monkeypatch.setenv("ORB_RUNS_DIR", str(run.parent))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.tabs] == ["Account", "Day view", "Trades", "Analysis", "Config"]
    aggregate = json.loads((run / "metrics.json").read_text())["aggregate"]
    cards = {m.label: m.value for m in at.metric}
    assert cards["Account return"] == f"{aggregate['total_return_pct']:.2f}%"
    assert cards["Daily hit ratio"] == f"{aggregate['daily_hit_ratio']:.1%}"
    assert cards["Beta"] == f"{aggregate['beta']:.2f}"
    figs = figures(at)
    account = next(f for f in figs if f.layout.title.text.startswith("Account equity"))
    bench = parquet(run, "benchmark.parquet")
    held = next(t for t in account.data if t.name == "SPY buy and hold")
    assert values(held.y)[-1] == pytest.approx(100_000 * float(np.prod(1 + bench["return"])))
    # the day view: the first traded session, its ranked universe and the first selected symbol's replay
    day, _ = traded_day(run)
    table = next(d.value for d in at.dataframe if "why" in d.value.columns)
    universe = parquet(run, "universe.parquet")
    today = universe[days(universe["session_date"]) == day]
    assert sorted(table["symbol"]) == sorted(today["symbol"]) and len(table) == len(UNIVERSE)
    first = today.sort_values(["rank", "symbol"], na_position="last").iloc[0]
    assert table["symbol"].iloc[0] == first["symbol"]
    replay = next(f for f in figs if f.layout.title.text and "session replay" in f.layout.title.text)
    candles = next(t for t in replay.data if t.type == "candlestick")
    assert len(candles.x) == len(results.load_bars(run, str(first["symbol"]), day))
    rv = next(f for f in figs if f.layout.title.text.startswith("Average R by relative volume"))
    assert sum(int(n.split("· ")[1]) for n in rv.data[0].text) == len(parquet(run, "all_trades.parquet"))


def test_dashboard_shows_monte_carlo_of_a_portfolio_run(mc_run, monkeypatch):
    monkeypatch.setenv("ORB_RUNS_DIR", str(mc_run.parent))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Monte Carlo" in [t.label for t in at.tabs]
    sessions = len(results.session_dates(mc_run))
    assert any(f"each path draws {sessions} sessions" in c.value for c in at.caption)


# ----------------------------------------------------------------------------------------- report


def test_the_report_opens_offline_and_matches_the_run(mc_run):
    page = (mc_run / "portfolio_report.html").read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    assert len(re.findall(r'Plotly\.newPlot\(\s*"fig-\d+"', page)) >= 9
    aggregate = json.loads((mc_run / "metrics.json").read_text())["aggregate"]
    assert f"{aggregate['daily_hit_ratio']:.1%}" in page and f"{aggregate['beta']:.2f}" in page
    trades = parquet(mc_run, "all_trades.parquet")
    assert f"Trades ({len(trades)})" in page
    assert all(tid in page for tid in trades["trade_id"])
    assert "portfolio_report.html" in json.loads((mc_run / "manifest.json").read_text())["files"]
    assert render_portfolio_report(mc_run) == page  # the same bytes when rewritten


# ----------------------------------------------------------------------------------------- Monte Carlo


def test_monte_carlo_resamples_every_session_of_the_account(run):
    trades = results.load_trades(run)
    sessions = results.session_dates(run)
    result = monte_carlo(trades, 500, 3, by_session=True, sessions=sessions)
    assert result.n_units == len(sessions) > trades["session_date"].nunique()
    assert result.n_trades == len(trades)
    assert result.observed["total_r"] == pytest.approx(trades["r_multiple"].sum())
    assert result.bands["observed"].iloc[-1] == pytest.approx(trades["r_multiple"].sum())
    traded = monte_carlo(trades, 500, 3, by_session=True)
    assert traded.n_units == trades["session_date"].nunique()
    with pytest.raises(ValueError, match="not among the sessions"):
        monte_carlo(trades, 10, 3, by_session=True, sessions=sessions[:1])
    with pytest.raises(ValueError, match="by_session bootstrap only"):
        monte_carlo(trades, 10, 3, sessions=sessions)


def test_monte_carlo_of_a_portfolio_run_reads_back_through_the_api(mc_run):
    summary = results.montecarlo_summary(mc_run)
    assert summary["resample"] == "sessions" and summary["n_units"] == len(results.session_dates(mc_run))
    assert summary["n_paths"] == 300 and summary["seed"] == 11
    client = TestClient(create_app(mc_run.parent))
    body = api_get(client, f"/api/montecarlo/{mc_run.name}")
    assert body["resample"] == "sessions" and body["n_units"] == summary["n_units"]
    assert body["bands"]["total"] == summary["n_units"]
    assert body["observed"]["total_r"] == pytest.approx(
        parquet(mc_run, "all_trades.parquet")["r_multiple"].sum()
    )
    results.check_run(mc_run, verify=True)
