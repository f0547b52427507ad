"""The dashboard's Runs and New backtest pages under AppTest, over run folders written by the real runner.

Runs page: the table against metrics.json, filters and sort, compare (metrics, overlaid equity, config
diff), delete after a confirmation, a damaged folder reported. New backtest page: the overrides box gives
the API's own 422 message as you type, Submit queues a job that a real `python -m orb.worker` runs, the
panel shows it succeeded and opens its run; Cancel stops a running job. One test takes screenshots of both
pages in a real headless Chromium when installed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from fastapi.testclient import TestClient
from job_processes import LONG, start_worker, stop, visible, wait_for
from run_fixtures import run_backtest
from streamlit.testing.v1 import AppTest

from orb import charts
from orb.api import create_app
from orb.jobs import service
from orb.jobs.store import State
from orb.runs import read as results

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
FIVE_MINUTES = "orb:\n  base_minutes: 5\n"


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> dict[str, Path]:
    """A runs folder with two real runs: `a` (SPY, QQQ; defaults) and `b` (SPY; 5-minute opening range)."""
    base = tmp_path_factory.mktemp("pages")
    runs = base / "runs"
    a = run_backtest(
        runs, "--symbols", "SPY", "QQQ", "--start", "2024-01-02", "--end", "2024-02-09", "--run-name", "a"
    )
    config = base / "five.yaml"
    config.write_text(FIVE_MINUTES, encoding="utf-8")
    b = run_backtest(
        runs, "--symbols", "SPY", "--start", "2024-01-02", "--end", "2024-01-31", "--run-name", "b",
        "--config", str(config),
    )  # fmt: skip
    return {"runs": runs, "a": a, "b": b}


@pytest.fixture
def own_runs(registry, tmp_path) -> Path:
    """A copy of the registry folder a test may change."""
    folder = tmp_path / "runs"
    shutil.copytree(registry["runs"], folder)
    return folder


def page(runs_dir: Path, monkeypatch, name: str) -> AppTest:
    monkeypatch.setenv("ORB_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.radio(key="page").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == name
    return at


def aggregate(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))["aggregate"]


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def values(array) -> np.ndarray:
    """A plotly array as numbers (plotly's JSON stores numeric arrays base64-encoded)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


# ------------------------------------------------------------------------------------------ Runs page


def test_runs_table_holds_every_run_with_its_metrics(registry, monkeypatch):
    at = page(registry["runs"], monkeypatch, "Runs")
    table = table_with(at, "run_id", "total_r").set_index("run_id")
    a, b = registry["a"].name, registry["b"].name
    assert list(table.index) == [b, a]  # newest first
    for run in (registry["a"], registry["b"]):
        agg, row = aggregate(run), table.loc[run.name]
        assert row["total_trades"] == agg["total_trades"]
        assert row["total_r"] == pytest.approx(agg["total_r"])
        assert row["sharpe"] == pytest.approx(agg["sharpe"])
        assert row["max_drawdown_r"] == pytest.approx(agg["max_drawdown_r"])
        manifest = results.load_manifest(run)
        assert (row["start"], row["end"]) == (manifest["start"], manifest["end"])
    assert table.loc[a, "symbols"] == "SPY, QQQ" and table.loc[b, "symbols"] == "SPY"
    assert (table.loc[a, "tag"], table.loc[b, "tag"], table.loc[a, "mode"]) == ("a", "b", "backtest")

    at.multiselect(key="runs_symbols").set_value(["QQQ"]).run()
    assert list(table_with(at, "run_id")["run_id"]) == [a]
    at.multiselect(key="runs_symbols").set_value([]).run()
    at.text_input(key="runs_tag").input("B").run()
    assert list(table_with(at, "run_id")["run_id"]) == [b]
    at.text_input(key="runs_tag").input("").run()
    at.selectbox(key="runs_sort").set_value("Total R").run()
    at.toggle(key="runs_descending").set_value(False).run()
    by_r = sorted((aggregate(r)["total_r"], r.name) for r in (registry["a"], registry["b"]))
    assert list(table_with(at, "run_id")["run_id"]) == [name for _, name in by_r]


def test_compare_starts_empty_then_shows_metrics_equity_and_config_diff(registry, monkeypatch):
    at = page(registry["runs"], monkeypatch, "Runs")
    assert at.multiselect(key="runs_compare").value == []  # nothing preselected
    assert not at.get("plotly_chart")
    a, b = registry["a"].name, registry["b"].name
    at.multiselect(key="runs_compare").set_value([a, b]).run()
    assert not at.exception

    metrics = table_with(at, "metric", a, b).set_index("metric")
    for key in ("total_trades", "total_r", "sharpe"):
        label = charts.METRIC_LABELS[key]
        assert metrics.loc[label, a] == charts.format_metric(key, aggregate(registry["a"])[key])
        assert metrics.loc[label, b] == charts.format_metric(key, aggregate(registry["b"])[key])

    (chart,) = at.get("plotly_chart")
    fig = pio.from_json(chart.proto.spec)
    curves = {t.name: t for t in fig.data if not t.name.endswith("drawdown")}
    assert set(curves) == {a, b}
    for run in (registry["a"], registry["b"]):
        final = results.load_equity(run)["cum_r"].iloc[-1]
        assert values(curves[run.name].y)[-1] == pytest.approx(final)

    diff = table_with(at, "key", a, b).set_index("key")
    assert json.loads(diff.loc["orb.base_minutes", b]) == 5
    assert (
        json.loads(diff.loc["orb.base_minutes", a])
        == results.load_run_config(registry["a"])["orb"]["base_minutes"]
    )
    assert "trade.t1_r" not in diff.index  # unchanged keys are left out


def test_delete_needs_a_confirmation(own_runs, monkeypatch):
    at = page(own_runs, monkeypatch, "Runs")
    newest, older = list(table_with(at, "run_id")["run_id"])
    assert button(at, "Delete…").disabled  # no run picked yet
    at.selectbox(key="runs_delete_pick").set_value(newest).run()
    button(at, "Delete…").click().run()
    assert (own_runs / newest).is_dir()
    assert any(newest in w.value for w in at.warning)
    button(at, "Keep it").click().run()
    assert (own_runs / newest).is_dir() and not at.warning

    button(at, "Delete…").click().run()
    button(at, f"Yes, delete {newest}").click().run()
    assert not at.exception
    assert not (own_runs / newest).exists()
    assert [s.value for s in at.success] == [f"Deleted run {newest}"]
    assert list(table_with(at, "run_id")["run_id"]) == [older]
    assert (own_runs / "latest").read_text(encoding="utf-8").strip() == older


def test_with_an_api_key_deleting_needs_it_typed_in_the_sidebar(own_runs, monkeypatch):
    monkeypatch.setenv("ORB_API_KEY", "s3cret")
    at = page(own_runs, monkeypatch, "Runs")
    newest = list(table_with(at, "run_id")["run_id"])[0]
    at.selectbox(key="runs_delete_pick").set_value(newest).run()
    assert button(at, "Delete…").disabled
    assert any("ORB_API_KEY is set" in i.value for i in at.info)
    at.sidebar.text_input(key="api_key").input("guess").run()
    assert button(at, "Delete…").disabled and any("not this server's" in i.value for i in at.info)
    at.sidebar.text_input(key="api_key").input("s3cret").run()
    assert not button(at, "Delete…").disabled and not at.info
    button(at, "Delete…").click().run()
    button(at, f"Yes, delete {newest}").click().run()
    assert not (own_runs / newest).exists()


def test_a_damaged_folder_is_reported_and_left_out(own_runs, monkeypatch):
    good = (own_runs / "latest").read_text(encoding="utf-8").strip()
    shutil.copytree(own_runs / good, own_runs / "backtest_damaged")
    (own_runs / "backtest_damaged" / "all_trades.parquet").write_bytes(b"not parquet")
    at = page(own_runs, monkeypatch, "Runs")
    assert "backtest_damaged" not in set(table_with(at, "run_id")["run_id"])
    assert len(table_with(at, "run_id")) == 2
    assert any("backtest_damaged" in w.value and "1 damaged" in w.value for w in at.warning)


# ---------------------------------------------------------------------------------- New backtest page


def test_overrides_box_gives_the_api_message_as_you_type(own_runs, monkeypatch):
    at = page(own_runs, monkeypatch, "New backtest")
    assert not at.error and not button(at, "Submit").disabled
    api = TestClient(create_app(own_runs, api_key="", cors_origins=""), base_url="http://127.0.0.1")
    body = {"symbols": ["SPY", "QQQ"], "start": "2024-01-02", "end": "2024-03-28", "source": "synthetic"}
    for text, overrides, fragment in (
        ("trade:\n  t1_r: 5.0\n", {"trade": {"t1_r": 5.0}}, "t1_r < t2_r"),
        ("orb:\n  base_minutez: 5\n", {"orb": {"base_minutez": 5}}, "orb.base_minutez: unknown config key"),
    ):
        at.text_area(key="job_overrides").input(text).run()
        answer = api.post("/api/jobs", json={**body, "overrides": overrides})
        assert answer.status_code == 422
        assert [e.value for e in at.error] == [answer.json()["detail"][0]["msg"]]
        assert fragment in at.error[0].value
        assert button(at, "Submit").disabled
    at.text_area(key="job_overrides").input("orb: [5\n").run()
    assert [e.value for e in at.error] == ["the overrides box is not valid YAML at line 2; fix the syntax"]
    at.text_area(key="job_overrides").input(FIVE_MINUTES).run()
    assert not at.error and not button(at, "Submit").disabled
    assert service.list_jobs(own_runs) == []  # checking writes no job


def test_other_fields_are_checked_like_the_api(own_runs, monkeypatch, tmp_path):
    monkeypatch.setenv("ORB_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    at = page(own_runs, monkeypatch, "New backtest")
    at.text_input(key="job_symbols").input("SPY, $$$").run()
    assert len(at.error) == 1 and at.error[0].value.startswith("symbols.1: ")
    at.text_input(key="job_symbols").input("SPY").run()
    at.selectbox(key="job_source").set_value("file").run()
    at.text_input(key="job_data_path").input("../outside.csv").run()
    assert len(at.error) == 1 and "resolves outside ORB_DATA_DIR" in at.error[0].value
    assert at.error[0].value.startswith("data_path: ")
    assert button(at, "Submit").disabled


def test_submit_then_a_worker_runs_it_and_the_panel_opens_the_run(own_runs, monkeypatch):
    before = visible(own_runs)
    at = page(own_runs, monkeypatch, "New backtest")
    at.text_input(key="job_symbols").input("SPY").run()
    at.date_input(key="job_start").set_value(pd.Timestamp("2024-01-02").date())
    at.date_input(key="job_end").set_value(pd.Timestamp("2024-01-19").date())
    at.text_area(key="job_overrides").input(FIVE_MINUTES).run()
    button(at, "Submit").click().run()
    assert not at.exception
    (job,) = service.list_jobs(own_runs)
    assert job.state == State.QUEUED and job.symbols == ["SPY"]
    assert job.request["overrides"] == {"orb": {"base_minutes": 5}} and job.request["end"] == "2024-01-19"
    assert [s.value for s in at.success] == [f"Queued job {job.id} (SPY)"]
    assert any("**queued** · " in m.value for m in at.markdown)

    worker = subprocess.run(
        [sys.executable, "-m", "orb.worker", "--runs-dir", str(own_runs), "--max-jobs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-2000:]
    done = service.get_job(own_runs, job.id)
    assert done.state == State.SUCCEEDED and done.run_id
    assert visible(own_runs) == sorted([*before, done.run_id])
    assert results.load_run_config(own_runs / done.run_id)["orb"]["base_minutes"] == 5

    button(at, "Refresh jobs").click().run()
    assert any("**succeeded** · " in m.value for m in at.markdown)
    button(at, f"Open run {done.run_id}").click().run()
    assert not at.exception
    assert at.radio(key="page").value == "Run detail"
    assert at.header[0].value == f"Run {done.run_id}"
    assert at.selectbox(key="run_picker").value == done.run_id


def test_a_queued_job_is_cancelled_from_the_panel(own_runs, monkeypatch):
    at = page(own_runs, monkeypatch, "New backtest")
    button(at, "Submit").click().run()
    (job,) = service.list_jobs(own_runs)
    button(at, "Cancel").click().run()
    assert not at.exception
    assert service.get_job(own_runs, job.id).state == State.CANCELLED
    assert any("**cancelled** · " in m.value for m in at.markdown)
    assert not [b for b in at.button if b.label == "Cancel"]


def test_with_an_api_key_submit_and_cancel_need_it(own_runs, monkeypatch):
    monkeypatch.setenv("ORB_API_KEY", "s3cret")
    at = page(own_runs, monkeypatch, "New backtest")
    assert button(at, "Submit").disabled and any("ORB_API_KEY is set" in i.value for i in at.info)
    at.sidebar.text_input(key="api_key").input("s3cret").run()
    assert not any("API key" in i.value or "ORB_API_KEY" in i.value for i in at.info)
    button(at, "Submit").click().run()
    (job,) = service.list_jobs(own_runs)
    at.sidebar.text_input(key="api_key").input("").run()  # the key is taken away again
    assert button(at, "Cancel").disabled and button(at, "Submit").disabled
    at.sidebar.text_input(key="api_key").input("s3cret").run()
    button(at, "Cancel").click().run()
    assert service.get_job(own_runs, job.id).state == State.CANCELLED


def test_without_an_api_key_there_is_no_key_field(own_runs, monkeypatch):
    monkeypatch.delenv("ORB_API_KEY", raising=False)
    at = page(own_runs, monkeypatch, "New backtest")
    assert not [t for t in at.sidebar.text_input if t.key == "api_key"]
    assert not button(at, "Submit").disabled


def test_a_running_job_shows_progress_and_cancel_stops_it(own_runs, monkeypatch):
    before = visible(own_runs)
    at = page(own_runs, monkeypatch, "New backtest")
    at.text_input(key="job_symbols").input(" ".join(LONG["symbols"])).run()
    at.date_input(key="job_start").set_value(pd.Timestamp(LONG["start"]).date())
    at.date_input(key="job_end").set_value(pd.Timestamp(LONG["end"]).date()).run()
    button(at, "Submit").click().run()
    (job,) = service.list_jobs(own_runs)
    worker = start_worker(own_runs, "--max-jobs", "1")
    try:

        def progressing():
            at.run()
            bars = [p.proto for p in at.get("progress")]
            return bars if bars and bars[0].value > 0 else None

        (bar,) = wait_for(progressing, timeout=120, every=0.3)
        running = service.get_job(own_runs, job.id)
        assert running.state == State.RUNNING
        assert bar.text.endswith(f"({bar.value}%)") and (running.stage or "") in bar.text
        button(at, "Cancel").click().run()
        assert service.get_job(own_runs, job.id).cancel_requested
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker)
    assert service.get_job(own_runs, job.id).state == State.CANCELLED
    at.run()
    assert any("**cancelled** · " in m.value for m in at.markdown)
    assert visible(own_runs) == before


# --------------------------------------------------------------------------------------- real browser


def test_real_browser_renders_the_runs_and_new_backtest_pages(own_runs, tmp_path):
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium)")
    image_module = pytest.importorskip("PIL.Image")
    service.submit(own_runs, {"symbols": ["SPY"], "start": "2024-01-02", "end": "2024-01-05"})
    out = tmp_path / "pages.png"
    command = [sys.executable, str(REPO / "scripts" / "screenshot_dashboard.py"), "--runs-dir", str(own_runs)]
    done = subprocess.run(
        [*command, "--page", "Runs", "--page", "New backtest", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    shots = [tmp_path / "pages_runs.png", tmp_path / "pages_new_backtest.png"]
    assert done.stdout.split()[-2:] == [str(p) for p in shots] and not out.exists()
    for path in shots:
        image = image_module.open(path).convert("RGB")
        assert image.size == (1440, 2000)
        # a drawn page (table, form, job card) has far more colours than a blank or skeleton page
        assert len(image.getcolors(maxcolors=1 << 20)) > 400
