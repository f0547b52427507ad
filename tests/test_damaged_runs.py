"""One damaged run never affects another (issue 9): hostile JSON, off-format Parquet, files that no longer
match their SHA-256. The damaged run is listed as damaged naming the file, the endpoints reading that
file answer 409, the healthy run and /health keep answering; the dashboard shows no traceback."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from run_fixtures import api_get as get
from run_fixtures import build_run, rehash, runner_run
from streamlit.testing.v1 import AppTest

from orb.api import create_app
from orb.runs import read as results
from orb.runs import store

HEALTHY, DAMAGED = "backtest_20240301_120000", "backtest_20240302_090000"
APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture()
def runs(tmp_path) -> Path:
    """A healthy run and a newer one (the one each test damages)."""
    root = tmp_path / "runs"
    build_run(root, HEALTHY)
    build_run(root, DAMAGED, created=datetime(2024, 3, 2, 9, 0, tzinfo=UTC), seed=11)
    results.clear_cache()
    return root


def _deep(run: Path, name: str) -> None:
    (run / name).write_text("[" * 100_000)


def _nan_strings(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["aggregate"].update(total_r="NaN", sharpe="Infinity")
    metrics["per_symbol"]["SPY"]["win_rate"] = "NaN"
    (run / "metrics.json").write_text(json.dumps(metrics))
    rehash(run)  # written so by a writer: the values, not the hash, are what is wrong


def _parquet(name: str, change):
    def damage(run: Path) -> None:
        frame = pd.read_parquet(run / name)
        change(frame).to_parquet(run / name, index=False)
        rehash(run)

    return damage


def _truncated_rows(run: Path) -> None:
    """A valid Parquet file with the first half of its rows: only the SHA-256 tells."""
    frame = pd.read_parquet(run / "SPY_trades.parquet")
    frame.iloc[: len(frame) // 2].to_parquet(run / "SPY_trades.parquet", index=False)


def _truncated_bytes(run: Path) -> None:
    path = run / "all_trades.csv"
    path.write_bytes(path.read_bytes()[:100])


CASES = {
    # name: (damage, file named in the detail, words of the reason, an endpoint that reads that file)
    "deep metrics": (
        lambda r: _deep(r, "metrics.json"),
        "metrics.json",
        "nested deeper",
        "/api/metrics/core",
    ),
    "deep manifest": (lambda r: _deep(r, "manifest.json"), "manifest.json", "nested deeper", "/api/trades"),
    "deep config": (lambda r: _deep(r, "config.json"), "config.json", "nested deeper", "/api/config"),
    "NaN strings": (_nan_strings, "metrics.json", "total_r is 'NaN'", "/api/metrics/core"),
    "missing column": (
        _parquet("all_trades.parquet", lambda f: f.drop(columns=["session_date"])),
        "all_trades.parquet",
        "no column session_date",
        "/api/trades",
    ),
    "wrong type": (
        _parquet("all_trades.parquet", lambda f: f.assign(side=1)),
        "all_trades.parquet",
        "column side is int64, not text",
        "/api/trades?side=long",
    ),
    "wrong time type": (
        _parquet("combined_equity.parquet", lambda f: f.assign(timestamp="noon")),
        "combined_equity.parquet",
        "column timestamp is",
        "/api/equity",
    ),
    "rows cut": (_truncated_rows, "SPY_trades.parquet", "SHA-256", "/api/trades?symbol=SPY"),
    "bytes cut": (_truncated_bytes, "all_trades.csv", "SHA-256", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_damaged_run_never_affects_another(runs, case):
    damage, name, reason, endpoint = CASES[case]
    damage(runs / DAMAGED)
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    assert get(api, "/health")["runs"] == 2
    listed = {r["run_id"]: r for r in get(api, "/api/runs")}
    assert listed[HEALTHY]["status"] == "complete"
    assert listed[DAMAGED]["status"] == "incomplete"
    assert name in listed[DAMAGED]["detail"]
    if endpoint is None:
        assert reason in listed[DAMAGED]["detail"]
    else:
        sep = "&" if "?" in endpoint else "?"
        detail = get(api, f"{endpoint}{sep}run_id={DAMAGED}", status=409)["detail"]
        assert name in detail and reason in detail
    for url in ("/api/runs/{id}", "/api/trades?run_id={id}", "/api/metrics/core?run_id={id}&symbol=SPY"):
        get(api, url.format(id=HEALTHY))


def test_nan_strings_of_one_symbol_answer_409_for_that_symbol_only(runs):
    _nan_strings(runs / DAMAGED)
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    detail = get(api, f"/api/metrics/core?run_id={DAMAGED}&symbol=SPY", status=409)["detail"]
    assert "metrics.json SPY win_rate is 'NaN'" in detail
    assert get(api, f"/api/metrics/core?run_id={DAMAGED}&symbol=QQQ")["symbol"] == "QQQ"


def test_a_huge_json_file_is_refused_without_parsing_it(runs, monkeypatch):
    run = runs / DAMAGED
    with (run / "metrics.json").open("w") as fh:  # 24 MB of valid JSON
        fh.write('{"aggregate": {}, "per_symbol": {}, "pad": [')
        fh.write(",".join(["1.25"] * 6_000_000))
        fh.write("]}")
    sizes = []
    loads = store.json.loads
    monkeypatch.setattr(store.json, "loads", lambda text, **kw: sizes.append(len(text)) or loads(text, **kw))
    [summary] = [s for s in results.list_runs(runs) if s.run_id == DAMAGED]
    assert summary.status == "incomplete" and "over 16 MB" in summary.detail
    assert max(sizes, default=0) < store.MAX_JSON_BYTES  # the other files were parsed, this one never
    assert "metrics.json" in summary.detail


def test_a_changed_file_is_hashed_once_per_version(runs, monkeypatch):
    calls = []
    original = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda path: calls.append(path.name) or original(path))
    results.list_runs(runs)
    first = len(calls)
    assert first > 0 and calls.count("all_trades.parquet") == 2  # once per run
    results.list_runs(runs)
    get(TestClient(create_app(runs, api_key="", cors_origins="")), f"/api/trades?run_id={HEALTHY}")
    assert len(calls) == first  # unchanged files: no second hash
    _truncated_rows(runs / DAMAGED)
    assert {s.run_id: s.status for s in results.list_runs(runs)}[DAMAGED] == "incomplete"
    assert calls[first:] == ["SPY_trades.parquet"]  # only the new version is hashed


# ------------------------------------------------------------------------------------------- API polish


def test_enum_parameters_are_422(runs):
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    for query in ("exit_reason=foo", "side=sideways", "exit_reason=STOP"):
        get(api, f"/api/trades?{query}", status=422)
    assert get(api, "/api/trades?exit_reason=stop&limit=1")["total"] >= 0


def test_a_trailing_slash_is_not_redirected_with_the_host_header(runs):
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    for url in (f"/api/runs/{HEALTHY}/", "/api/runs/", "/health/"):
        response = api.get(url, headers={"host": "evil.example"}, follow_redirects=False)
        assert response.status_code == 404
        assert "evil.example" not in response.headers.get("location", "") + response.text


def test_health_hides_the_runs_path_when_an_api_key_is_set(runs):
    open_api = TestClient(create_app(runs, api_key="", cors_origins=""))
    assert get(open_api, "/health")["runs_dir"] == str(runs.resolve())
    keyed = TestClient(create_app(runs, api_key="k3y", cors_origins=""))
    body = keyed.get("/health").text
    assert json.loads(body) == {"status": "ok", "runs_dir": None, "runs": 2}
    assert str(runs.resolve()) not in body


def test_docs_use_only_assets_the_app_serves(runs):
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    page = api.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith("/") or ref.startswith("data:") for ref in refs), refs
    assert "http" not in page.text.replace("http-equiv", "")
    for ref in refs:
        if ref.startswith("/"):
            asset = api.get(ref)
            assert asset.status_code == 200 and len(asset.content) > 10_000, ref
    assert api.get("/openapi.json").status_code == 200


# ------------------------------------------------------------------------------------------- dashboard


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A run of the real runner (the dashboard draws what the engine writes)."""
    return runner_run(tmp_path_factory.mktemp("real") / "runs", ("SPY",), "2024-01-02", "2024-01-31")


def _copies(root: Path, real_run: Path, *run_ids: str) -> Path:
    """Copies of the real run named `run_ids`, created a day apart (the last one newest)."""
    for day, run_id in enumerate(run_ids, start=1):
        shutil.copytree(real_run, root / run_id)
        manifest = json.loads((root / run_id / "manifest.json").read_text())
        created = datetime(2024, 3, day, 9, 0, tzinfo=UTC).isoformat()
        (root / run_id / "manifest.json").write_text(
            json.dumps(manifest | {"run_id": run_id, "created": created})
        )
    (root / "latest").write_text(run_ids[-1] + "\n")
    results.clear_cache()
    return root


@pytest.mark.parametrize("case", ["deep metrics", "deep manifest", "NaN strings", "missing column"])
def test_the_dashboard_shows_no_traceback_for_a_damaged_run(tmp_path, real_run, monkeypatch, case):
    runs = _copies(tmp_path / "runs", real_run, HEALTHY, DAMAGED)
    CASES[case][0](runs / DAMAGED)
    monkeypatch.setenv("ORB_RUNS_DIR", str(runs))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="run_picker").set_value(DAMAGED).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(DAMAGED in e.value and "damaged" in e.value for e in at.error)


def test_compare_preselects_no_run_and_offers_no_damaged_one(tmp_path, real_run, monkeypatch):
    runs = _copies(tmp_path / "runs", real_run, HEALTHY, DAMAGED, "backtest_20240303_090000")
    _deep(runs / DAMAGED, "metrics.json")
    monkeypatch.setenv("ORB_RUNS_DIR", str(runs))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    compare = at.selectbox(key="compare_run")
    assert compare.value is None and list(compare.options) == [HEALTHY]


@pytest.mark.parametrize("symbol", [".", "..", ".HIDDEN", "=", "SPY_X", "S" * 16])
def test_the_api_follows_the_one_symbol_rule(runs, symbol):
    api = TestClient(create_app(runs, api_key="", cors_origins=""))
    get(api, "/api/trades", status=422, params={"symbol": symbol})
    with pytest.raises(results.InvalidSymbol):
        results.load_trades(runs / HEALTHY, symbol)
