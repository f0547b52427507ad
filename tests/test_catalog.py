"""The run registry: DuckDB views equal the run files; damaged folders are skipped and reported;
`python -m orb.sql`; leaderboard, compare and run deletion over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from run_fixtures import REPO, run_backtest

from orb.api import create_app
from orb.runs.catalog import Catalog, CatalogError, config_diff

DATES = ["--start", "2024-01-02", "--end", "2024-02-09"]
GRID = "grid:\n  costs.slippage_per_share: [0.0, 0.05]\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two backtests (different OR lengths, one tagged) and one sweep, written by the real CLI."""
    out = tmp_path_factory.mktemp("catalog") / "runs"
    base = tmp_path_factory.getbasetemp() / "cfg5.yaml"
    base.write_text("orb:\n  base_minutes: 5\n", encoding="utf-8")
    sweep = tmp_path_factory.getbasetemp() / "grid.yaml"
    sweep.write_text(GRID, encoding="utf-8")
    first = run_backtest(out, "--symbols", "SPY", "QQQ", *DATES)
    second = run_backtest(out, "--symbols", "SPY", *DATES, "--config", str(base), "--run-name", "or5")
    third = run_backtest(out, "--symbols", "SPY", *DATES, "--sweep", str(sweep), "--workers", "1")
    return out, first.name, second.name, third.name


def test_views_equal_the_run_files(runs):
    out, first, second, sweep = runs
    cat = Catalog(out)
    rows = cat.query("SELECT * FROM runs ORDER BY run_id").set_index("run_id")
    assert set(rows.index) == {first, second, sweep}
    assert rows.loc[first, "mode"] == "backtest" and rows.loc[sweep, "mode"] == "sweep"
    assert rows.loc[second, "tag"] == "or5" and pd.isna(rows.loc[first, "tag"])
    assert list(rows.loc[first, "symbols"]) == ["SPY", "QQQ"]
    for run_id in (first, second):
        manifest = json.loads((out / run_id / "manifest.json").read_text())
        aggregate = json.loads((out / run_id / "metrics.json").read_text())["aggregate"]
        assert rows.loc[run_id, "config_sha256"] == manifest["config_sha256"]
        assert rows.loc[run_id, "total_trades"] == aggregate["total_trades"]
        assert rows.loc[run_id, "total_r"] == pytest.approx(aggregate["total_r"], rel=1e-12)
        assert rows.loc[run_id, "sharpe"] == pytest.approx(aggregate["sharpe"], rel=1e-12)
        assert json.loads(rows.loc[run_id, "config"]) == json.loads(
            (out / run_id / "config.json").read_text()
        )

    trades = cat.query("SELECT * FROM trades WHERE run_id = ?", [first]).drop(columns="run_id")
    expected = pd.read_parquet(out / first / "all_trades.parquet")
    pd.testing.assert_frame_equal(trades[expected.columns], expected, check_dtype=False)

    for symbol in ("SPY", "QQQ"):
        sessions = cat.query("SELECT * FROM sessions WHERE run_id = ? AND symbol = ?", [first, symbol])
        file = pd.read_parquet(out / first / f"{symbol}_sessions.parquet")
        pd.testing.assert_frame_equal(
            sessions.drop(columns=["run_id", "symbol"])[file.columns], file, check_dtype=False
        )
        equity = cat.query(
            "SELECT * FROM equity WHERE run_id = ? AND symbol = ? ORDER BY timestamp", [first, symbol]
        )
        assert (
            equity["equity"].tolist()
            == pd.read_parquet(out / first / f"{symbol}_equity.parquet")["equity"].tolist()
        )
    combined = cat.query(
        "SELECT equity FROM equity WHERE run_id = ? AND symbol = '*' ORDER BY timestamp", [first]
    )
    assert (
        combined["equity"].tolist()
        == pd.read_parquet(out / first / "combined_equity.parquet")["equity"].tolist()
    )

    sweep_rows = cat.query("SELECT * FROM sweep_results WHERE run_id = ? ORDER BY rank, symbol", [sweep])
    file = pd.read_parquet(out / sweep / "sweep_results.parquet").sort_values(
        ["rank", "symbol"], ignore_index=True
    )
    assert sweep_rows["total_r"].tolist() == pytest.approx(file["total_r"].tolist(), rel=1e-12)
    assert sweep_rows["costs.slippage_per_share"].tolist() == file["costs.slippage_per_share"].tolist()
    assert cat.query("SELECT count(*) AS n FROM folds")["n"][0] == 0
    assert cat.skipped == {}


def test_damaged_folders_are_skipped_and_reported(runs, tmp_path):
    out, first, second, _ = runs
    copy = tmp_path / "runs"
    shutil.copytree(out, copy)
    (copy / first / "all_trades.parquet").write_bytes(b"PAR1 truncated")
    (copy / second / "manifest.json").write_text("{ not json", encoding="utf-8")
    cat = Catalog(copy)
    ids = set(cat.query("SELECT run_id FROM runs")["run_id"])
    assert first not in ids and second not in ids and len(ids) == 1
    assert set(cat.skipped) == {first, second}
    assert all(reason for reason in cat.skipped.values())
    assert cat.query("SELECT count(*) AS n FROM trades")["n"][0] == 0  # the sweep has no trades

    # the CLI names them on stderr and still answers
    done = subprocess.run(
        [sys.executable, "-m", "orb.sql", "--runs-dir", str(copy), "--csv", "SELECT run_id, mode FROM runs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "run_id,mode" and len(done.stdout.splitlines()) == 2
    assert first in done.stderr and second in done.stderr and "skipped damaged run" in done.stderr


def test_cached_until_a_folder_changes_and_read_only(runs, tmp_path):
    out, first, *_ = runs
    copy = tmp_path / "runs"
    shutil.copytree(out, copy)
    cat = Catalog(copy)
    con = cat.connection()
    assert cat.connection() is con  # nothing changed: no rebuild
    shutil.copytree(copy / first, copy / "backtest_copy")
    assert cat.connection() is not con
    assert "backtest_copy" in set(cat.query("SELECT run_id FROM runs")["run_id"])
    for sql in ("COPY runs TO 'x.csv'", "CREATE TABLE t AS SELECT 1", "SELECT 1; SELECT 2"):
        with pytest.raises(CatalogError, match="read-only"):
            cat.query(sql)
    with pytest.raises(CatalogError, match="query failed"):
        cat.query("SELECT * FROM read_csv('/etc/hostname')")
    assert not (copy / "x.csv").exists()


def test_sql_cli_formats(runs):
    out, first, second, sweep = runs
    base = [sys.executable, "-m", "orb.sql", "--runs-dir", str(out)]

    def run(*args):
        return subprocess.run([*base, *args], cwd=REPO, capture_output=True, text=True, timeout=120)

    csv = run("--csv", "SELECT run_id, total_trades FROM runs WHERE mode = 'backtest' ORDER BY run_id")
    assert csv.stdout.splitlines()[0] == "run_id,total_trades"
    assert [ln.split(",")[0] for ln in csv.stdout.splitlines()[1:]] == sorted([first, second])
    as_json = json.loads(run("--json", "SELECT run_id FROM runs ORDER BY run_id").stdout)
    assert [r["run_id"] for r in as_json] == sorted([first, second, sweep])
    schema = run("--schema")
    assert schema.returncode == 0
    for view in ("runs", "trades", "sessions", "equity", "sweep_results", "folds"):
        assert view in schema.stdout
    table = run("SELECT count(*) AS n FROM runs")
    assert "1 row(s)" in table.stdout and "3" in table.stdout
    bad = run("SELECT nope FROM runs")
    assert (
        bad.returncode == 1 and bad.stderr.startswith("error: query failed") and "Traceback" not in bad.stderr
    )


def test_config_diff_names_changed_key_paths():
    diff = config_diff(
        {"a": {"orb": {"base_minutes": 5, "adaptive": False}}, "b": {"orb": {"base_minutes": 15}}}
    )
    assert diff == {"orb.adaptive": {"a": False, "b": None}, "orb.base_minutes": {"a": 5, "b": 15}}


def test_leaderboard_compare_and_delete_over_http(runs, tmp_path):
    out, first, second, sweep = runs
    copy = tmp_path / "runs"
    shutil.copytree(out, copy)
    client = TestClient(create_app(copy, api_key=""), base_url="http://127.0.0.1")
    board = client.get("/api/leaderboard", params={"metric": "total_r", "mode": "backtest"}).json()
    values = [r["total_r"] for r in board["rows"]]
    assert {r["run_id"] for r in board["rows"]} == {first, second} and values == sorted(values, reverse=True)
    qqq = client.get("/api/leaderboard", params={"symbol": "QQQ"}).json()
    assert [r["run_id"] for r in qqq["rows"]] == [first]
    assert client.get("/api/leaderboard", params={"metric": "nope"}).status_code == 422

    compared = client.get("/api/compare", params={"run_ids": f"{first},{second}"}).json()
    assert compared["config_diff"]["orb.base_minutes"] == {first: 15, second: 5}
    assert set(compared["equity"]) == {first, second} and compared["equity"][first]
    assert (
        compared["metrics"]["total_trades"][first]
        == json.loads((copy / first / "metrics.json").read_text())["aggregate"]["total_trades"]
    )
    assert client.get("/api/compare", params={"run_ids": "nope_run"}).status_code == 404

    assert (copy / "latest").read_text().strip() == sweep
    assert client.delete(f"/api/runs/{sweep}").json() == {"run_id": sweep, "deleted": True}
    assert not (copy / sweep).exists() and not list(copy.glob(".tmp-*"))
    assert (copy / "latest").read_text().strip() == second  # the newest remaining run
    assert client.delete(f"/api/runs/{sweep}").status_code == 404
    assert client.delete("/api/runs/latest").status_code == 422
    remote = TestClient(create_app(copy, api_key=""), base_url="http://10.1.2.3")
    refused = remote.delete(f"/api/runs/{first}")
    assert refused.status_code == 403 and "non-loopback" in refused.json()["detail"]
    assert (copy / first).is_dir()
