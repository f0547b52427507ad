"""streamlit_app.py under Streamlit's AppTest, on run folders written by the real runner.

Folders: empty, one run, two runs, a zero-trade run, damaged runs (a file deleted, a file corrupted).
Assertions are on rendered elements: KPI cards and tables against the run's own metrics.json, chart
traces against the run's trades and fills. One test drives a real headless Chromium when installed.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from run_fixtures import run_backtest
from streamlit.testing.v1 import AppTest

from orb.runs import read as results

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
ZERO_TRADE_CONFIG = 'entry:\n  cutoff: "09:31"\ngovernance:\n  max_signals_per_day: 1\n'


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Runs folders: one run, two runs, zero trades, damaged (missing file), corrupt (unreadable file)."""
    base = tmp_path_factory.mktemp("dashboard")
    quarter = ("--start", "2024-01-02", "--end", "2024-03-29")
    one = run_backtest(base / "one", "--symbols", "SPY", "QQQ", *quarter)
    run_backtest(base / "two", "--symbols", "SPY", "QQQ", *quarter, "--run-name", "a")
    run_backtest(
        base / "two", "--symbols", "SPY", "--start", "2024-01-02", "--end", "2024-02-29", "--run-name", "b"
    )
    config = base / "zero.yaml"
    config.write_text(ZERO_TRADE_CONFIG, encoding="utf-8")
    run_backtest(
        base / "zero",
        "--symbols",
        "SPY",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-31",
        "--config",
        str(config),
    )
    damaged = base / "damaged"
    shutil.copytree(one, damaged / "backtest_damaged")
    (damaged / "backtest_damaged" / "SPY_trades.parquet").unlink()
    corrupt = base / "corrupt"
    shutil.copytree(one, corrupt / "backtest_corrupt")
    (corrupt / "backtest_corrupt" / "all_trades.parquet").write_bytes(b"not parquet")
    (base / "empty").mkdir()
    return {
        "one": base / "one",
        "two": base / "two",
        "zero": base / "zero",
        "damaged": damaged,
        "corrupt": corrupt,
        "empty": base / "empty",
    }


def app(runs_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ORB_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics_json(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


def number(text: str) -> float:
    """'$18,594' / '+17.65R' / '57.9%' / '-3.77%' -> float (percent signs are kept as percent numbers)."""
    return float(re.sub(r"[^0-9.+-]", "", text))


def figures(at: AppTest) -> list:
    return [pio.from_json(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(array) -> np.ndarray:
    """A plotly array as numbers (plotly's JSON stores numeric arrays base64-encoded)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first rendered table having these columns (display-only tables carry no key in AppTest)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


# ----------------------------------------------------------------------------------------- no runs


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_empty_or_missing_runs_folder_says_how_to_make_a_run(runs, monkeypatch, folder):
    runs_dir = runs["empty"] if folder == "empty" else runs["empty"] / "nowhere"
    at = app(runs_dir, monkeypatch)
    assert len(at.warning) == 1
    message = at.warning[0].value
    assert str(runs_dir) in message and "run_backtest.py" in message
    assert not at.metric


def test_runs_dir_argument_wins_over_the_environment(runs, monkeypatch):
    import streamlit_app

    monkeypatch.setenv("ORB_RUNS_DIR", str(runs["empty"]))
    assert streamlit_app.runs_dir_from_args(["--runs-dir", str(runs["one"])]) == runs["one"].resolve()
    assert streamlit_app.runs_dir_from_args([]) == runs["empty"].resolve()


# ----------------------------------------------------------------------------------------- one run


def test_kpi_cards_equal_the_aggregate_metrics(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run = runs["one"] / (runs["one"] / "latest").read_text().strip()
    aggregate = metrics_json(run)["aggregate"]
    cards = {m.label: m.value for m in at.metric}
    assert int(cards["Trades"]) == aggregate["total_trades"] > 0
    assert number(cards["Win rate"]) == pytest.approx(aggregate["win_rate"] * 100, abs=0.05)
    assert number(cards["Total R"]) == pytest.approx(aggregate["total_r"], abs=0.005)
    assert number(cards["Avg R per trade"]) == pytest.approx(aggregate["avg_r_per_trade"], abs=0.005)
    assert number(cards["Profit factor"]) == pytest.approx(aggregate["profit_factor"], abs=0.005)
    assert number(cards["Sharpe"]) == pytest.approx(aggregate["sharpe"], abs=0.005)
    assert number(cards["Max drawdown R"]) == pytest.approx(aggregate["max_drawdown_r"], abs=0.005)
    assert number(cards["Max drawdown %"]) == pytest.approx(aggregate["max_drawdown_pct"], abs=0.005)
    assert number(cards["Net P&L"]) == pytest.approx(aggregate["net_pnl"], abs=0.5)
    assert number(cards["Final equity"]) == pytest.approx(aggregate["final_equity"], abs=0.5)
    assert at.selectbox(key="run_picker").value == run.name
    assert at.header[0].value == f"Run {run.name}"


def test_per_symbol_table_holds_the_metrics_json_values(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run = runs["one"] / (runs["one"] / "latest").read_text().strip()
    per_symbol = metrics_json(run)["per_symbol"]
    table = at.dataframe[0].value
    assert list(table.index) == ["SPY", "QQQ"]
    for sym, metrics in per_symbol.items():
        for key in ("total_trades", "win_rate", "total_r", "avg_r", "sharpe", "max_drawdown_r", "net_pnl"):
            assert table.loc[sym, key] == pytest.approx(metrics[key]), (sym, key)


def test_equity_chart_has_combined_and_symbol_curves_ending_at_the_final_values(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run = runs["one"] / (runs["one"] / "latest").read_text().strip()
    metrics = metrics_json(run)
    equity = figures(at)[0]
    assert [t.name for t in equity.data if not t.name.endswith("drawdown")] == ["Combined", "SPY", "QQQ"]
    # The default unit is R: each curve ends at the symbol's total R from metrics.json.
    for name in ("SPY", "QQQ"):
        assert values(trace(equity, name).y)[-1] == pytest.approx(metrics["per_symbol"][name]["total_r"])
    assert values(trace(equity, "Combined").y)[-1] == pytest.approx(metrics["aggregate"]["total_r"])
    assert values(trace(equity, "Combined drawdown").y).min() == pytest.approx(
        metrics["aggregate"]["max_drawdown_r"]
    )


def test_equity_in_dollars_ends_at_final_equity(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run = runs["one"] / (runs["one"] / "latest").read_text().strip()
    at.segmented_control(key="equity_unit").set_value("$").run()
    equity = figures(at)[0]
    final = metrics_json(run)["per_symbol"]["SPY"]["final_equity"]
    assert values(trace(equity, "SPY").y)[-1] == pytest.approx(final)


def test_trades_table_filters_and_csv_download(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    aggregate = metrics_json(runs["one"] / run_id)["aggregate"]
    table = at.dataframe(key=f"trades_table_{run_id}")
    assert len(table.value) == aggregate["total_trades"]
    assert at.get("download_button"), "no CSV download button"

    at.multiselect(key=f"f_side_{run_id}").set_value(["long"]).run()
    assert len(at.dataframe(key=f"trades_table_{run_id}").value) == aggregate["long_trades"]

    at.multiselect(key=f"f_side_{run_id}").set_value(["long", "short"])
    at.multiselect(key=f"f_symbol_{run_id}").set_value(["QQQ"]).run()
    shown = at.dataframe(key=f"trades_table_{run_id}").value
    assert set(shown["symbol"]) == {"QQQ"}
    assert len(shown) == metrics_json(runs["one"] / run_id)["per_symbol"]["QQQ"]["total_trades"]

    slider = at.slider(key=f"f_r_{run_id}")
    slider.set_value((0.0, slider.max)).run()
    shown = at.dataframe(key=f"trades_table_{run_id}").value
    assert (shown["r_multiple"] >= 0).all() and len(shown) > 0


def test_selecting_a_trade_opens_its_session_replay_at_the_fill_prices(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    run = runs["one"] / run_id
    table = at.dataframe(key=f"trades_table_{run_id}").value
    row = 5
    trade_id = table.iloc[row]["trade_id"]
    at.session_state[f"trades_table_{run_id}"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert f"Replay of trade {trade_id}" in [h.value for h in at.subheader]
    symbol = table.iloc[row]["symbol"]
    fills = results.load_fills(run, symbol)
    legs = fills[fills["trade_id"] == trade_id]
    entry = legs[legs["kind"] == "entry"].iloc[0]
    replays = [f for f in figures(at) if "Price" in [t.name for t in f.data]]
    replay = next(
        f for f in replays if any(values(t.y)[0] == entry["price"] for t in f.data if t.name == "Entry")
    )
    entry_trace = next(t for t in replay.data if t.name == "Entry" and values(t.y)[0] == entry["price"])
    local_entry = entry["time"].tz_convert("America/New_York").tz_localize(None)
    assert pd.Timestamp(entry_trace.x[0]) == local_entry
    exits = legs[legs["kind"] != "entry"]
    exit_prices = np.concatenate([values(t.y) for t in replay.data if t.name == "Exits"])
    assert set(exits["price"]) <= set(exit_prices)


def test_replay_tab_draws_every_bar_of_the_chosen_session(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    session = at.selectbox(key=f"replay_session_{run_id}_SPY")
    assert session.options[3].startswith(
        "2024-01-05 ·"
    )  # the fourth session of 2024, labelled with its result
    day = pd.Timestamp("2024-01-05").date()
    session.set_value(day).run()
    bars = results.load_bars(runs["one"] / run_id, "SPY", day)
    assert len(bars) == 390
    candles = [t for f in figures(at) for t in f.data if t.name == "Price"]
    assert any(len(t.x) == len(bars) and values(t.open)[0] == bars["open"].iloc[0] for t in candles)


def test_sessions_tab_lists_skips_with_reasons(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    sessions = results.load_sessions(runs["one"] / run_id)
    skipped = sessions[sessions["status"] == "skipped"]
    reasons = table_with(at, "symbol", "skip_reason", "sessions")
    assert reasons["sessions"].sum() == len(skipped) > 0
    assert set(reasons["skip_reason"]) == set(skipped["skip_reason"])
    events = pd.concat([results.load_events(runs["one"] / run_id, sym) for sym in ("SPY", "QQQ")])
    expected = events.groupby(["symbol", "reason"]).size()
    blocked = table_with(at, *expected.index.get_level_values("reason").unique())
    for (sym, reason), count in expected.items():
        assert blocked.loc[sym, reason] == count
    assert f"Blocked signals ({len(events)})" in [h.value for h in at.subheader]


def test_config_and_manifest_are_shown(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    shown = [json.loads(j.proto.body) for j in at.json]
    assert results.load_run_config(runs["one"] / run_id) in shown
    assert any(body.get("run_id") == run_id for body in shown)


# ---------------------------------------------------------------------------------------- two runs


def test_two_runs_picker_switch_and_compare(runs, monkeypatch):
    at = app(runs["two"], monkeypatch)
    summaries = results.list_runs(runs["two"])
    newest, older = summaries[0].run_id, summaries[1].run_id
    picker = at.selectbox(key="run_picker")
    assert [label.split(" · ")[0] for label in picker.options] == [newest, older]  # newest first
    agg = metrics_json(runs["two"] / newest)["aggregate"]
    label = (
        f"{newest} · SPY · 2024-01-02 → 2024-02-29 · {agg['total_trades']} trades · {agg['total_r']:+.1f}R"
    )
    assert picker.options[0] == label
    assert picker.value == (runs["two"] / "latest").read_text().strip() == newest
    assert int(next(m.value for m in at.metric if m.label == "Trades")) == summaries[0].trades

    assert at.selectbox(key="compare_run").value is None  # nothing compared until a run is chosen
    at.selectbox(key="compare_run").set_value(older).run()
    compare = table_with(at, "metric", "difference (B - A)").set_index("metric")
    assert list(compare.columns) == [newest, older, "difference (B - A)"]
    a = metrics_json(runs["two"] / newest)["aggregate"]["total_trades"]
    b = metrics_json(runs["two"] / older)["aggregate"]["total_trades"]
    assert int(compare.loc["Trades", "difference (B - A)"].replace(",", "")) == b - a
    overlay = next(f for f in figures(at) if f.layout.title.text == "Combined equity, A vs B")
    assert [t.name for t in overlay.data if not t.name.endswith("drawdown")] == [f"A {newest}", f"B {older}"]

    at.selectbox(key="run_picker").set_value(older).run()
    assert not at.exception
    assert int(next(m.value for m in at.metric if m.label == "Trades")) == b
    assert at.header[0].value == f"Run {older}"


def test_a_new_run_appears_on_the_next_refresh(runs, monkeypatch, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(runs["one"], folder)
    at = app(folder, monkeypatch)
    first = at.selectbox(key="run_picker").value
    shutil.copytree(folder / first, folder / "backtest_29991231_235959")
    (folder / "latest").write_text("backtest_29991231_235959\n", encoding="utf-8")
    at.button[0].click().run()
    picker = at.selectbox(key="run_picker")
    ids = [label.split(" · ")[0] for label in picker.options]
    assert set(ids) == {"backtest_29991231_235959", first}
    assert picker.value == first  # the run being looked at stays selected


# ------------------------------------------------------------------------------- edge and damaged runs


def test_zero_trade_run_shows_zero_and_a_message(runs, monkeypatch):
    at = app(runs["zero"], monkeypatch)
    cards = {m.label: m.value for m in at.metric}
    assert cards["Trades"] == "0"
    assert cards["Win rate"] == "—"  # null in metrics.json: undefined without trades
    assert number(cards["Final equity"]) == pytest.approx(100_000)
    messages = [i.value for i in at.info]
    assert any("no trades" in m.lower() for m in messages)
    assert not at.error


def test_damaged_run_gives_a_clear_error_naming_the_missing_file(runs, monkeypatch):
    at = app(runs["damaged"], monkeypatch)
    picker = at.selectbox(key="run_picker")
    assert picker.value == "backtest_damaged"
    assert picker.options == ["⚠ backtest_damaged · damaged"]
    assert len(at.error) == 1
    assert "backtest_damaged" in at.error[0].value and "SPY_trades.parquet" in at.error[0].value
    assert not at.metric


def test_damaged_run_next_to_a_good_one(runs, monkeypatch, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(runs["one"], folder)
    shutil.copytree(runs["damaged"] / "backtest_damaged", folder / "backtest_damaged")
    at = app(folder, monkeypatch)
    good = (folder / "latest").read_text().strip()
    assert at.selectbox(key="run_picker").value == good and at.metric
    at.selectbox(key="run_picker").set_value("backtest_damaged").run()
    assert not at.exception
    assert "SPY_trades.parquet" in at.error[0].value


def test_unreadable_file_gives_a_clear_error(runs, monkeypatch):
    at = app(runs["corrupt"], monkeypatch)
    assert len(at.error) == 1
    assert "all_trades.parquet" in at.error[0].value and "unreadable" in at.error[0].value


# --------------------------------------------------------------------------------------- real browser


def test_real_browser_renders_the_dashboard(runs, tmp_path):
    """Headless Chromium loads `streamlit run` over loopback; the screenshot shows drawn charts."""
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium)")
    image_module = pytest.importorskip("PIL.Image")
    out = tmp_path / "dashboard.png"
    command = [
        sys.executable,
        str(REPO / "scripts" / "screenshot_dashboard.py"),
        "--runs-dir",
        str(runs["one"]),
    ]
    done = subprocess.run(
        [*command, "--out", str(out), "--tab", "Session replay"], capture_output=True, text=True, timeout=480
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for path in (out, tmp_path / "dashboard_session_replay.png"):
        image = image_module.open(path).convert("RGB")
        assert image.size == (1440, 2000)
        # A rendered page has many colours (charts, candles); a blank or skeleton page has a handful.
        assert len(image.getcolors(maxcolors=1 << 20)) > 500


def test_a_selection_left_behind_by_a_narrower_filter_is_ignored(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    last = len(at.dataframe(key=f"trades_table_{run_id}").value) - 1
    at.session_state[f"trades_table_{run_id}"] = {"selection": {"rows": [last], "columns": [], "cells": []}}
    at.multiselect(key=f"f_side_{run_id}").set_value(["short"]).run()
    assert not at.exception
    assert not [h.value for h in at.subheader if h.value.startswith("Replay of trade")]


# ------------------------------------------------------------------ session replay: selection and buttons

MARKET_FILLS = ("entry", "stop", "breakeven", "eod")  # strategy.md 3: the fills that pay slippage


def marking(at: AppTest, trade_id: str) -> list:
    """The replay figures whose shaded band marks `trade_id` as the selected trade."""
    return [
        f
        for f in figures(at)
        if any(a.text.startswith(f"selected: #{trade_id} ") for a in f.layout.annotations)
    ]


def replay_order(run: Path) -> pd.DataFrame:
    """The run's trades by session, entry time and symbol: the order of the previous/next buttons."""
    trades = results.load_trades(run)
    trades = trades.assign(day=pd.to_datetime(trades["session_date"]).dt.date)
    return trades.sort_values(["day", "entry_time", "symbol", "trade_id"]).reset_index(drop=True)


def replay_at(at: AppTest, run_id: str) -> tuple[str, object, str | None]:
    """Symbol, session and selected trade the Session replay tab shows."""
    symbol = at.selectbox(key=f"replay_symbol_{run_id}").value
    day = at.selectbox(key=f"replay_session_{run_id}_{symbol}").value
    return symbol, day, at.session_state[f"replay_trade_{run_id}"]


def test_replay_tab_follows_the_trade_selected_in_the_trades_tab(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    table = at.dataframe(key=f"trades_table_{run_id}").value
    row = 40
    trade = table.iloc[row]
    at.session_state[f"trades_table_{run_id}"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert replay_at(at, run_id) == (trade["symbol"], trade["session_date"], trade["trade_id"])
    assert len(marking(at, trade["trade_id"])) == 2  # the Trades tab's replay and the Session replay tab's

    # With the row still selected, the replay's own buttons move on (the table does not pull it back).
    order = replay_order(runs["one"] / run_id)
    order = order[order["symbol"] == trade["symbol"]].reset_index(drop=True)  # next: of the same symbol
    following = order.iloc[int(order.index[order["trade_id"] == trade["trade_id"]][0]) + 1]
    at.button(key=f"replay_next_{run_id}").click().run()
    assert replay_at(at, run_id) == (following["symbol"], following["day"], following["trade_id"])
    assert len(marking(at, following["trade_id"])) == 1
    assert len(marking(at, trade["trade_id"])) == 1  # the Trades tab still replays the selected row


def test_best_worst_previous_and_next_trade_buttons(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    order = replay_order(runs["one"] / run_id)
    first = order.iloc[0]
    assert replay_at(at, run_id)[:2] == ("SPY", order[order["symbol"] == "SPY"]["day"].iloc[0])
    assert at.button(key=f"replay_previous_{run_id}").disabled == (at.session_state[f"replay_trade_{run_id}"]
                                                                   == first["trade_id"])  # fmt: skip
    for name, pick in (("best", order["r_multiple"].idxmax()), ("worst", order["r_multiple"].idxmin())):
        at.button(key=f"replay_{name}_{run_id}").click().run()
        trade = order.loc[pick]
        assert replay_at(at, run_id) == (trade["symbol"], trade["day"], trade["trade_id"]), name
        assert marking(at, trade["trade_id"])
        caption = f"Trade {pick + 1:,} of {len(order):,}: #{trade['trade_id']} {trade['side']}"
        assert any(c.value.startswith(caption) for c in at.caption), name
    # Previous and next stay on the symbol on screen (the worst trade's).
    same = order[order["symbol"] == order.loc[order["r_multiple"].idxmin(), "symbol"]].reset_index(drop=True)
    worst = same["r_multiple"].idxmin()
    assert 0 < worst < len(same) - 1
    at.button(key=f"replay_previous_{run_id}").click().run()
    assert replay_at(at, run_id)[2] == same.loc[worst - 1, "trade_id"]
    at.button(key=f"replay_next_{run_id}").click().run()
    at.button(key=f"replay_next_{run_id}").click().run()
    assert replay_at(at, run_id)[2] == same.loc[worst + 1, "trade_id"]


def test_a_session_with_two_trades_marks_the_selected_one_and_dims_the_other(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    run = runs["one"] / run_id
    order = replay_order(run)
    counts = order.groupby(["symbol", "day"]).size()
    symbol, day = counts[counts == 2].index[0]
    pair = order[(order["symbol"] == symbol) & (order["day"] == day)]
    fills = results.load_fills(run, symbol)
    entry_time = {  # local wall-clock time of each entry fill, as the chart draws it
        tid: fills[(fills["trade_id"] == tid) & (fills["kind"] == "entry")]["time"]
        .iloc[0]
        .tz_convert("America/New_York")
        .tz_localize(None)
        for tid in pair["trade_id"]
    }
    at.selectbox(key=f"replay_symbol_{run_id}").set_value(symbol).run()
    at.selectbox(key=f"replay_session_{run_id}_{symbol}").set_value(day).run()
    for selected, other in (tuple(pair["trade_id"]), tuple(pair["trade_id"])[::-1]):
        assert replay_at(at, run_id)[2] == selected
        (replay,) = marking(at, selected)
        opacity = {pd.Timestamp(t.x[0]): t.opacity for t in replay.data if t.name == "Entry"}
        assert opacity == {entry_time[selected]: 1.0, entry_time[other]: pytest.approx(0.3)}
        assert any("1 other trade this session, dimmed" in c.value for c in at.caption)
        at.button(key=f"replay_next_{run_id}").click().run()  # the session's second trade


def test_replay_levels_have_distinct_styles_and_the_stop_is_drawn_over_the_triggers(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run_id = at.selectbox(key="run_picker").value
    (replay,) = marking(at, at.session_state[f"replay_trade_{run_id}"])
    names = [t.name for t in replay.data]
    targets = [t for t in replay.data if t.name in ("T1", "T2", "Target")]
    assert len({(t.name, t.line.color, t.line.dash) for t in targets}) == len({t.name for t in targets}) >= 2
    assert len({t.line.color for t in targets}) == len({t.name for t in targets})
    last_trigger = max(i for i, n in enumerate(names) if n.endswith("trigger"))
    assert names.index("Initial stop") > last_trigger


# ------------------------------------------------------------------------- overview: what traders want


def heat_z(trace) -> np.ndarray:
    z = trace.z
    if isinstance(z, dict):
        shape = tuple(int(n) for n in str(z["shape"]).split(","))
        return values(z).astype(float).reshape(shape)
    return np.asarray(z, dtype=float)


def test_overview_costs_benchmark_calendar_and_mfe_mae(runs, monkeypatch):
    at = app(runs["one"], monkeypatch)
    run = runs["one"] / at.selectbox(key="run_picker").value
    aggregate = metrics_json(run)["aggregate"]
    trades = results.load_trades(run)
    fills = pd.concat([results.load_fills(run, sym) for sym in ("SPY", "QQQ")])
    per_share = results.load_run_config(run)["costs"]["slippage_per_share"]
    commission = trades["commission"].sum()
    slippage = per_share * fills[fills["kind"].isin(MARKET_FILLS)]["shares"].sum()
    assert 0 < slippage < per_share * fills["shares"].sum()  # target fills pay none
    cards = {m.label: m for m in at.metric}
    assert number(cards["Commission"].value) == pytest.approx(commission, abs=0.005)
    assert number(cards["Slippage"].value) == pytest.approx(slippage, abs=0.005)
    assert number(cards["Total costs"].value) == pytest.approx(commission + slippage, abs=0.01)
    assert "slippage_per_share" in cards["Slippage"].proto.help

    by_title = {f.layout.title.text: f for f in figures(at)}
    bench = by_title["Combined equity vs SPY buy-and-hold ($)"]
    bars = results.load_bars(run, "SPY")
    held, combined = bench.data
    assert held.name.startswith("SPY buy and hold") and combined.name.startswith("Combined")
    assert values(held.y)[0] == pytest.approx(200_000)
    assert values(held.y)[-1] == pytest.approx(200_000 * bars["close"].iloc[-1] / bars["open"].iloc[0])
    assert values(combined.y)[-1] == pytest.approx(aggregate["final_equity"])

    calendar = heat_z(by_title["Daily P&L calendar ($)"].data[0])
    sessions = results.load_sessions(run)
    assert np.isfinite(calendar).sum() == sessions["session_date"].nunique()
    assert np.nansum(calendar) == pytest.approx(aggregate["net_pnl"], abs=0.01)

    scatter = by_title["MFE vs MAE per trade (R)"]
    assert sum(len(values(t.x)) for t in scatter.data) == aggregate["total_trades"]
    winners = next(t for t in scatter.data if t.name.startswith("Winners"))
    assert winners.name == f"Winners ({aggregate['winning_trades']})"
    wins = trades[trades["r_multiple"] > 0]
    assert sorted(values(winners.y)) == pytest.approx(sorted(wins["mfe_r"]))


def test_no_benchmark_curve_without_its_bars(tmp_path, monkeypatch):
    run_backtest(tmp_path / "qqq", "--symbols", "QQQ", "--start", "2024-01-02", "--end", "2024-01-31")
    at = app(tmp_path / "qqq", monkeypatch)
    assert not [f for f in figures(at) if "buy-and-hold" in (f.layout.title.text or "")]
    assert any("No SPY bars in this run" in c.value for c in at.caption)


def test_money_has_the_sign_first_and_cents_everywhere_and_counts_are_plural_aware(runs, monkeypatch):
    from orb.dashboard.common import kpi_value

    assert kpi_value("net_pnl", -5888.45) == "-$5,888.45"
    at = app(runs["one"], monkeypatch)
    cards = {m.label: m.value for m in at.metric}
    for label in ("Net P&L", "Final equity", "Total costs", "Commission", "Slippage", "Costs per trade"):
        assert re.fullmatch(r"-?\$\d{1,3}(,\d{3})*\.\d\d", cards[label]), (label, cards[label])
    captions = [c.value for c in at.caption]
    assert "1 run, newest first" in captions
    run_id = at.selectbox(key="run_picker").value
    options = at.selectbox(key=f"replay_session_{run_id}_SPY").options
    assert any(" · 1 trade · " in o for o in options) and any(" · 2 trades · " in o for o in options)
    assert not any("(s)" in o for o in options)


def test_real_browser_replay_shows_the_selected_trade_shaded(runs, tmp_path):
    """`--tab replay --trade ID` on a session with two trades: the selected trade's band (ACCENT at 8 %
    over white) covers a large area of the replay PNG and none of the overview PNG."""
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium)")
    image_module = pytest.importorskip("PIL.Image")
    run = runs["one"] / (runs["one"] / "latest").read_text().strip()
    order = replay_order(run)
    counts = order.groupby(["symbol", "day"]).size()
    symbol, day = counts[counts == 2].index[0]
    chosen = order[(order["symbol"] == symbol) & (order["day"] == day)]["trade_id"].iloc[1]
    out = tmp_path / "dash.png"
    command = [
        sys.executable,
        str(REPO / "scripts" / "screenshot_dashboard.py"),
        "--runs-dir",
        str(runs["one"]),
    ]
    command += ["--out", str(out), "--tab", "replay", "--trade", chosen]
    done = subprocess.run(command, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    band = np.array([238, 243, 253])  # rgba(37, 99, 235, 0.08) on white

    def shaded(path: Path) -> int:
        pixels = np.asarray(image_module.open(path).convert("RGB")).astype(int)
        return int((np.abs(pixels - band).max(axis=2) <= 3).sum())

    assert shaded(tmp_path / "dash_session_replay.png") > 5_000
    assert shaded(out) < 500
