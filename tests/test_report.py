"""orb.report on run folders written by the real runner: self-contained, complete, matching the run files."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_fixtures import run_backtest

from orb.report import write_report
from orb.runs import read as results

REPO = Path(__file__).resolve().parent.parent
ZERO_TRADE_CONFIG = 'entry:\n  cutoff: "09:31"\n'


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A copy of a real SPY+QQQ quarter run, with both reports written into it."""
    base = tmp_path_factory.mktemp("report")
    original = run_backtest(
        base / "runs", "--symbols", "SPY", "QQQ", "--start", "2024-01-02", "--end", "2024-03-29"
    )
    copy = base / "copy" / original.name
    shutil.copytree(original, copy)
    for sym in ("SPY", "QQQ"):
        write_report(copy, sym)
    return copy


class Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> list[list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def plotted(page: str) -> list[dict]:
    """The figures of a page: the data and layout passed to each Plotly.newPlot call."""
    decoder = json.JSONDecoder()
    figures = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"fig-\d+",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        figures.append({"data": data, "layout": layout})
    return figures


def values(array) -> np.ndarray:
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.+-]", "", text))


def test_report_is_self_contained_with_plotly_embedded_once(run):
    page = (run / "SPY_report.html").read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1  # the bundle's banner: embedded exactly once
    assert not re.search(r"<script[^>]+src=", page)  # no external script (no CDN)
    assert not re.search(r"<link[^>]+href=", page)  # no external stylesheet
    assert len(plotted(page)) >= 9  # 2 equity, 6 trade charts, best and worst session replays


def test_report_kpis_and_metrics_table_match_metrics_json(run):
    metrics = json.loads((run / "SPY_metrics.json").read_text(encoding="utf-8"))
    page = (run / "SPY_report.html").read_text(encoding="utf-8")
    cells = {}
    for row in tables(page)[0]:  # the metrics table: label, value pairs
        cells.update(zip(row[0::2], row[1::2], strict=True))
    assert int(cells["Trades"]) == metrics["total_trades"]
    assert number(cells["Win rate"]) == pytest.approx(metrics["win_rate"] * 100, abs=0.05)
    assert number(cells["Total R"]) == pytest.approx(metrics["total_r"], abs=0.005)
    assert number(cells["Net P&L $"]) == pytest.approx(metrics["net_pnl"], abs=0.005)
    assert number(cells["Max drawdown %"]) == pytest.approx(metrics["max_drawdown_pct"], abs=0.005)
    assert number(cells["Sharpe"]) == pytest.approx(metrics["sharpe"], abs=0.005)
    for reason, count in metrics["exit_reasons"].items():
        assert int(cells[f"Exits: {reason}"]) == count


def test_report_lists_every_trade_with_its_net_r(run):
    trades = results.load_trades(run, "QQQ")
    page = (run / "QQQ_report.html").read_text(encoding="utf-8")
    trade_table = next(t for t in tables(page) if t and t[0][:2] == ["Trade", "Session"])
    rows = {row[0]: row for row in trade_table[1:]}
    assert set(rows) == set(trades["trade_id"])
    r_col = trade_table[0].index("R")
    for trade in trades.itertuples():
        assert float(rows[trade.trade_id][r_col]) == pytest.approx(trade.r_multiple, abs=0.005)


def test_report_charts_come_from_the_run_files(run):
    page = (run / "SPY_report.html").read_text(encoding="utf-8")
    figures = plotted(page)
    metrics = json.loads((run / "SPY_metrics.json").read_text(encoding="utf-8"))
    r_curve = next(f for f in figures if f["layout"]["title"]["text"].startswith("Cumulative R"))
    spy = next(t for t in r_curve["data"] if t["name"] == "SPY")
    assert values(spy["y"])[-1] == pytest.approx(metrics["total_r"])

    # The first replay is the best trade's session: its entry marker sits at that trade's entry fill.
    trades = results.load_trades(run, "SPY")
    fills = results.load_fills(run, "SPY")
    best = trades.loc[trades["r_multiple"].idxmax()]
    entry_fill = fills[(fills["trade_id"] == best["trade_id"]) & (fills["kind"] == "entry")].iloc[0]
    replay = next(f for f in figures if "session replay" in f["layout"]["title"]["text"])
    entries = [t for t in replay["data"] if t["name"] == "Entry"]
    assert any(values(t["y"])[0] == entry_fill["price"] for t in entries)
    local = entry_fill["time"].tz_convert("America/New_York").tz_localize(None)
    assert any(pd.Timestamp(t["x"][0]) == local for t in entries)


def test_report_is_the_same_bytes_when_rewritten(run):
    before = (run / "SPY_report.html").read_bytes()
    write_report(run, "SPY")
    assert (run / "SPY_report.html").read_bytes() == before


def test_report_size_is_reasonable(run):
    size = (run / "SPY_report.html").stat().st_size
    assert size < 6_000_000  # plotly.js is ~4.8 MB of it; a quarter's data adds little


def test_report_of_an_unknown_symbol_names_it(run):
    with pytest.raises(results.SymbolNotFound, match="IWM"):
        write_report(run, "IWM")


def test_zero_trade_report_says_so(tmp_path):
    config = tmp_path / "zero.yaml"
    config.write_text(ZERO_TRADE_CONFIG, encoding="utf-8")
    run = run_backtest(
        tmp_path / "runs",
        "--symbols",
        "SPY",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-31",
        "--config",
        str(config),
    )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    page = write_report(copy, "SPY").read_text(encoding="utf-8")
    assert "produced no trades" in page and "No trades in this run" in page
    assert not any("session replay" in f["layout"]["title"]["text"] for f in plotted(page))


def test_runner_report_flag_writes_hashed_reports(tmp_path):
    """`--report`: the runner calls write_report on its staging folder before hashing the manifest."""
    run = run_backtest(
        tmp_path / "runs",
        "--symbols",
        "SPY",
        "QQQ",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-31",
        "--report",
    )
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    for sym in ("SPY", "QQQ"):
        assert (run / f"{sym}_report.html").is_file()
        assert f"{sym}_report.html" in manifest["files"]
