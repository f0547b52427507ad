"""The API over run folders written by the real runner (`run_backtest.py --synthetic`).

Expected values are read straight from the run's files with pandas/json and converted to JSON
independently of orb.results, so every test checks that the API returns exactly what the files hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from run_fixtures import api_get as get
from run_fixtures import build_run, rehash, runner_run

from orb.api import create_app

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
TIME_KEYS = {"entry_time", "exit_time", "timestamp", "time", "created"}


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """One run folder of the real runner: SPY and QQQ, Jan-Mar 2024, synthetic bars."""
    return runner_run(tmp_path_factory.getbasetemp() / "real" / "runs")


@pytest.fixture(scope="module")
def client(real_run):
    return TestClient(create_app(real_run.parent, api_key="", cors_origins=""))


@pytest.fixture()
def own_runs(tmp_path, real_run):
    """A private copy of the real run (for tests that add, damage or remove runs)."""
    root = tmp_path / "runs"
    shutil.copytree(real_run, root / real_run.name)
    (root / "latest").write_text(real_run.name + "\n")
    return root


def _value(v):
    if v is pd.NaT:  # a nullable time (breakeven_time) is JSON null
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


# The API rounds floats at the JSON edge (issue 9): money and R to 4 decimals, prices and the rest to 6.
FOUR_DECIMALS = {
    "gross_pnl", "commission", "net_pnl", "initial_risk", "equity", "day_pnl", "alloc",
    "r_multiple", "gross_r", "mfe_r", "mae_r", "cum_r", "drawdown_r", "day_r",
}  # fmt: skip


def _rounded(column, v):
    return round(v, 4 if column in FOUR_DECIMALS else 6) if isinstance(v, float) else v


def as_json(frame: pd.DataFrame) -> list[dict]:
    return [{k: _rounded(k, _value(v)) for k, v in row.items()} for row in frame.to_dict("records")]


def test_floats_are_rounded_at_the_json_edge_parquet_keeps_them(client, real_run):
    stored = pd.read_parquet(real_run / "all_trades.parquet")
    noisy = [v for v in stored["entry_price"] if len(repr(v)) > 12]
    assert noisy, "the fixture run should hold prices with binary noise (e.g. 196.18000000000004)"
    trades = get(client, "/api/trades?limit=5000")["trades"]
    assert all(len(repr(t["entry_price"]).split(".")[-1]) <= 6 for t in trades)
    assert all(len(repr(t["net_pnl"]).split(".")[-1]) <= 4 for t in trades)
    assert [t["entry_price"] for t in trades] == [round(v, 6) for v in stored["entry_price"]]


def test_health(client, real_run):
    assert get(client, "/health") == {"status": "ok", "runs_dir": str(real_run.parent.resolve()), "runs": 1}


def test_runs_list_holds_manifest_and_aggregate_totals(client, real_run):
    manifest = json.loads((real_run / "manifest.json").read_text())
    aggregate = json.loads((real_run / "metrics.json").read_text())["aggregate"]
    assert get(client, "/api/runs") == [
        {
            "run_id": real_run.name,
            "created": manifest["created"],
            "symbols": manifest["symbols"],
            "start": manifest["start"],
            "end": manifest["end"],
            "status": "complete",
            "detail": None,
            "totals": {
                "trades": aggregate["total_trades"],
                "total_r": aggregate["total_r"],
                "win_rate": aggregate["win_rate"],
            },
            "mode": manifest["mode"],
        }
    ]


def test_run_detail_is_the_manifest_plus_aggregate_metrics(client, real_run):
    body = get(client, f"/api/runs/{real_run.name}")
    assert body["run_id"] == real_run.name and body["status"] == "complete"
    assert body["manifest"] == json.loads((real_run / "manifest.json").read_text())
    assert body["metrics"] == json.loads((real_run / "metrics.json").read_text())["aggregate"]
    assert get(client, "/api/runs/latest") == body


def test_trade_pages_concatenate_to_all_trades(client, real_run):
    expected = as_json(pd.read_parquet(real_run / "all_trades.parquet"))
    assert len(expected) > 100
    got, offset = [], 0
    while True:
        page = get(client, f"/api/trades?limit=37&offset={offset}")
        assert page["total"] == len(expected) and page["limit"] == 37 and page["offset"] == offset
        got += page["trades"]
        if len(page["trades"]) < 37:
            break
        offset += 37
    assert got == expected
    default = get(client, "/api/trades")
    assert default["limit"] == 500 and default["run_id"] == real_run.name and default["symbol"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"symbol": "SPY"},
        {"symbol": "qqq", "side": "long"},
        {"side": "short", "exit_reason": "stop"},
        {"exit_reason": "eod", "start": "2024-02-01", "end": "2024-02-29"},
        {"symbol": "SPY", "start": "2024-03-15"},
        {"end": "2024-01-10"},
    ],
)
def test_trade_filters_match_the_files(client, real_run, query):
    symbol = query.get("symbol")
    frame = pd.read_parquet(
        real_run / (f"{symbol.upper()}_trades.parquet" if symbol else "all_trades.parquet")
    )
    keep = pd.Series(True, index=frame.index)
    for column in ("side", "exit_reason"):
        if column in query:
            keep &= frame[column] == query[column]
    if "start" in query:
        keep &= frame["session_date"] >= date.fromisoformat(query["start"])
    if "end" in query:
        keep &= frame["session_date"] <= date.fromisoformat(query["end"])
    expected = as_json(frame[keep])
    assert expected, "the filter should select some trades of the fixture run"
    body = get(client, "/api/trades", params={**query, "limit": 5000})
    assert body["total"] == len(expected)
    assert body["trades"] == expected
    assert body["symbol"] == (symbol.upper() if symbol else None)


@pytest.mark.parametrize("symbol", [None, "SPY", "QQQ"])
def test_equity_equals_the_files(client, real_run, symbol):
    name = f"{symbol}_equity.parquet" if symbol else "combined_equity.parquet"
    expected = as_json(pd.read_parquet(real_run / name))
    body = get(client, "/api/equity", params={"symbol": symbol} if symbol else {})
    assert body["points"] == expected
    assert body["total"] == body["returned"] == len(expected)


def test_equity_downsampling_keeps_ends_and_max_drawdown(client, real_run):
    full = as_json(pd.read_parquet(real_run / "combined_equity.parquet"))
    body = get(client, "/api/equity?max_points=50")
    points = body["points"]
    assert body["total"] == len(full) > 50 and body["returned"] == len(points) <= 50
    assert points[0] == full[0] and points[-1] == full[-1]
    assert all(p in full for p in points)
    assert [p["timestamp"] for p in points] == sorted(p["timestamp"] for p in points)
    assert min(p["drawdown_pct"] for p in points) == min(p["drawdown_pct"] for p in full)


def test_metrics_equal_metrics_json(client, real_run):
    metrics = json.loads((real_run / "metrics.json").read_text())
    body = get(client, "/api/metrics/core")
    assert body == {"run_id": real_run.name, "symbol": None, "metrics": metrics["aggregate"]}
    for symbol in ("SPY", "QQQ"):
        one = get(client, f"/api/metrics/core?symbol={symbol.lower()}&run_id={real_run.name}")
        assert one["symbol"] == symbol
        assert one["metrics"] == metrics["per_symbol"][symbol]
        assert one["metrics"] == json.loads((real_run / f"{symbol}_metrics.json").read_text())


def test_sessions_equal_the_files(client, real_run):
    spy = pd.read_parquet(real_run / "SPY_sessions.parquet")
    qqq = pd.read_parquet(real_run / "QQQ_sessions.parquet")
    body = get(client, "/api/sessions?symbol=SPY")
    assert body["total"] == len(spy)
    assert body["sessions"] == as_json(spy.assign(symbol="SPY")[["symbol", *spy.columns]])
    both = get(client, "/api/sessions")
    assert both["symbol"] is None
    assert both["sessions"] == as_json(
        pd.concat([spy.assign(symbol="SPY"), qqq.assign(symbol="QQQ")])[["symbol", *spy.columns]]
    )


def test_config_and_its_sha256(client, real_run):
    config = json.loads((real_run / "config.json").read_text())
    manifest = json.loads((real_run / "manifest.json").read_text())
    body = get(client, "/api/config")
    assert body["config"] == config
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert body["sha256"] == hashlib.sha256(canonical).hexdigest() == manifest["config_sha256"]


def test_omitted_run_id_means_the_newest_run(client, real_run):
    for url in ("/api/trades?limit=3", "/api/equity", "/api/metrics/core", "/api/sessions", "/api/config"):
        assert get(client, url) == get(client, url + ("&" if "?" in url else "?") + f"run_id={real_run.name}")


def _walk_times(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_times(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_times(v, key)
    elif key in TIME_KEYS and value is not None:
        yield value


@pytest.mark.parametrize(
    "url",
    ["/api/runs", "/api/trades?limit=5000", "/api/equity", "/api/equity?symbol=SPY", "/api/runs/latest"],
)
def test_times_are_iso_with_offset(client, url):
    times = list(_walk_times(get(client, url)))
    assert times
    assert all(ISO_WITH_OFFSET.match(t) for t in times), [t for t in times if not ISO_WITH_OFFSET.match(t)][
        :3
    ]


@pytest.mark.parametrize(
    "url",
    [
        "/api/trades?limit=0",
        "/api/trades?limit=5001",
        "/api/trades?limit=abc",
        "/api/trades?offset=-1",
        "/api/trades?offset=1.5",
        "/api/trades?side=up",
        "/api/trades?start=2024-13-01",
        "/api/trades?exit_reason=DROP%20TABLE",
        "/api/equity?max_points=1",
        "/api/equity?max_points=x",
    ],
)
def test_bad_parameters_are_422(client, url):
    assert "detail" in get(client, url, status=422)


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs/backtest_19990101_000000",
        "/api/trades?run_id=backtest_19990101_000000",
        "/api/trades?symbol=IWM",
        "/api/equity?symbol=IWM",
        "/api/metrics/core?symbol=IWM",
        "/api/sessions?symbol=IWM",
        "/api/config?run_id=nope",
    ],
)
def test_unknown_run_or_symbol_is_404(client, url):
    detail = get(client, url, status=404)["detail"]
    assert isinstance(detail, str) and ("not found" in detail or "not in run" in detail)


def test_new_runs_appear_without_restart_and_temp_folders_stay_hidden(own_runs, real_run):
    api = TestClient(create_app(own_runs, api_key="", cors_origins=""))
    assert [r["run_id"] for r in get(api, "/api/runs")] == [real_run.name]
    (own_runs / ".tmp-backtest_20991231_000000-4242").mkdir()
    shutil.copy(real_run / "manifest.json", own_runs / ".tmp-backtest_20991231_000000-4242")
    newer = "backtest_29990101_000000"
    shutil.copytree(real_run, own_runs / newer)
    manifest = json.loads((own_runs / newer / "manifest.json").read_text())
    manifest.update(run_id=newer, created="2999-01-01T00:00:00+00:00")
    (own_runs / newer / "manifest.json").write_text(json.dumps(manifest))
    (own_runs / "latest").write_text(newer + "\n")
    assert [r["run_id"] for r in get(api, "/api/runs")] == [newer, real_run.name]
    assert get(api, "/api/metrics/core")["run_id"] == newer
    assert get(api, "/health")["runs"] == 2


def test_missing_or_empty_runs_folder(tmp_path):
    api = TestClient(create_app(tmp_path / "absent", api_key="", cors_origins=""))
    assert get(api, "/health") == {"status": "ok", "runs_dir": str(tmp_path / "absent"), "runs": 0}
    assert get(api, "/api/runs") == []
    assert "no complete run" in get(api, "/api/trades", status=404)["detail"]


def test_damaged_run_is_listed_incomplete_and_answers_409(own_runs, real_run):
    (own_runs / real_run.name / "QQQ_equity.parquet").unlink()
    api = TestClient(create_app(own_runs, api_key="", cors_origins=""))
    [listed] = get(api, "/api/runs")
    assert listed["status"] == "incomplete" and "QQQ_equity.parquet is missing" in listed["detail"]
    for url in ("/api/runs/{id}", "/api/trades?run_id={id}", "/api/equity?run_id={id}&symbol=SPY"):
        detail = get(api, url.format(id=real_run.name), status=409)["detail"]
        assert "QQQ_equity.parquet is missing" in detail
    # with no complete run left, "the newest run" does not exist
    assert "no complete run" in get(api, "/api/metrics/core", status=404)["detail"]


def test_unreadable_parquet_answers_409_not_500(own_runs, real_run):
    (own_runs / real_run.name / "SPY_trades.parquet").write_bytes(b"PAR1 garbage")
    api = TestClient(create_app(own_runs, api_key="", cors_origins=""))
    assert "SPY_trades.parquet is unreadable" in get(api, "/api/trades?symbol=SPY", status=409)["detail"]
    assert get(api, "/api/trades?limit=1")["total"] > 0  # the rest of the run still answers


def test_files_off_the_run_format_answer_409_not_500(own_runs, real_run):
    run = own_runs / real_run.name
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["per_symbol"]["SPY"]["total_trades"] = "many"
    (run / "metrics.json").write_text(json.dumps(metrics))
    trades = pd.read_parquet(run / "QQQ_trades.parquet")
    trades.assign(session_date="not a date").to_parquet(run / "QQQ_trades.parquet", index=False)
    rehash(run)
    api = TestClient(create_app(own_runs, api_key="", cors_origins=""))
    detail = get(api, "/api/metrics/core?symbol=SPY", status=409)["detail"]
    assert "does not match run-format.md" in detail and "total_trades" in detail
    detail = get(api, "/api/trades?symbol=QQQ", status=409)["detail"]
    assert "does not match run-format.md" in detail and "session_date" in detail
    assert get(api, "/api/metrics/core?symbol=QQQ")["metrics"] == metrics["per_symbol"]["QQQ"]


def test_nan_in_files_becomes_null(tmp_path):
    run = build_run(tmp_path / "runs")
    api = TestClient(create_app(tmp_path / "runs", api_key="", cors_origins=""))
    trades = get(api, "/api/trades?limit=5000")["trades"]
    stored = pd.read_parquet(run / "all_trades.parquet")
    assert stored["t2_price"].isna().sum() == sum(t["t2_price"] is None for t in trades) > 0
    sessions = get(api, "/api/sessions")["sessions"]
    assert any(s["atr"] is None for s in sessions)


def test_api_key_guards_api_but_not_health(real_run):
    api = TestClient(create_app(real_run.parent, api_key="s3cret-key", cors_origins=""))
    assert get(api, "/health")["status"] == "ok"
    assert get(api, "/api/runs", status=401)["detail"] == "missing or wrong X-API-Key header"
    get(api, "/api/trades", status=401, headers={"X-API-Key": "s3cret-kez"})
    get(api, "/api/metrics/core", status=401, headers={"X-API-Key": ""})
    assert get(api, "/api/runs", headers={"X-API-Key": "s3cret-key"})[0]["run_id"] == real_run.name
    schema = get(api, "/openapi.json")
    assert "401" in schema["paths"]["/api/trades"]["get"]["responses"]
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_api_key_from_environment(real_run, monkeypatch):
    monkeypatch.setenv("ORB_API_KEY", "from-env")
    api = TestClient(create_app(real_run.parent))
    get(api, "/api/runs", status=401)
    get(api, "/api/runs", headers={"X-API-Key": "from-env"})


def test_cors_only_when_origins_are_set(real_run, monkeypatch):
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}
    closed = TestClient(create_app(real_run.parent, api_key="", cors_origins=""))
    assert (
        "access-control-allow-origin" not in closed.get("/api/runs", headers={"Origin": "http://x"}).headers
    )
    assert "access-control-allow-origin" not in closed.options("/api/runs", headers=preflight).headers
    monkeypatch.setenv("ORB_CORS_ORIGINS", "http://localhost:3000, https://example.org")
    opened = TestClient(create_app(real_run.parent, api_key=""))
    response = opened.options("/api/runs", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = opened.get("/api/runs", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_openapi_documents_every_endpoint(client):
    schema = get(client, "/openapi.json")
    for path in (
        "/health",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/trades",
        "/api/equity",
        "/api/metrics/core",
        "/api/sessions",
        "/api/config",
    ):
        operation = schema["paths"][path]["get"]
        assert operation["summary"], path
        assert "$ref" in json.dumps(operation["responses"]["200"]), path
    trades = schema["paths"]["/api/trades"]["get"]
    params = {p["name"]: p for p in trades["parameters"]}
    assert set(params) == {"run_id", "symbol", "side", "exit_reason", "start", "end", "limit", "offset"}
    assert params["limit"]["schema"]["maximum"] == 5000 and params["run_id"]["examples"]
    assert {"404", "409", "422"} <= set(trades["responses"])
    assert schema["components"]["schemas"]["RunInfo"]["examples"]
    assert client.get("/docs").status_code == 200
