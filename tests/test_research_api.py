"""The research endpoints (/api/sweeps, /api/walkforward, /api/montecarlo) and the mode-aware reader,
over run folders written by the real runner (tests/research_fixtures.py).

Expected values are read straight from the run's files with pandas/json, so every test checks that
the API returns exactly what the files hold; runs without an output answer 404, damaged ones 409.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from research_fixtures import research_runs
from run_fixtures import api_get as get

from orb.api import create_app
from orb.runs import read as results

MARKER = "TOPSECRET-research-51c2"
WINDOW = ("fold", "train_start", "train_end", "train_sessions", "test_start", "test_end", "test_sessions")


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return research_runs(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def client(runs):
    return TestClient(create_app(runs["runs"], api_key="", cors_origins=""))


def _value(v):
    if v is pd.NaT:  # a nullable time (breakeven_time) is JSON null
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def as_json(frame: pd.DataFrame) -> list[dict]:
    return [{k: _value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def sweep_rows(frame: pd.DataFrame, keys: list[str]) -> list[dict]:
    """sweep_results rows as the API nests them: params by swept key, metrics (exit_reasons parsed)."""
    rows = []
    for row in as_json(frame):
        metrics = {k: v for k, v in row.items() if k not in {"rank", "combination", "symbol", *keys}}
        metrics["exit_reasons"] = json.loads(metrics["exit_reasons"])
        rows.append(
            {
                "rank": row["rank"],
                "combination": row["combination"],
                "symbol": row["symbol"],
                "params": {k: row[k] for k in keys},
                "metrics": metrics,
            }
        )
    return rows


def identity(rows: list[dict]) -> list[tuple]:
    return [(r["combination"], r["symbol"]) for r in rows]


# ------------------------------------------------------------------------------------------ run list


def test_runs_list_shows_each_mode_and_its_totals(client, runs):
    listed = {r["run_id"]: r for r in get(client, "/api/runs")}
    sweep, wf, mc = (listed[runs[k].name] for k in ("sweep", "wf", "mc"))
    assert (sweep["mode"], wf["mode"], mc["mode"]) == ("sweep", "walk_forward", "backtest")
    assert all(r["status"] == "complete" for r in (sweep, wf, mc))
    # a sweep has one result per combination: no run totals
    assert sweep["totals"] == {"trades": None, "total_r": None, "win_rate": None}
    oos = read_json(runs["wf"] / "metrics.json")["aggregate"]
    assert wf["totals"] == {
        "trades": oos["total_trades"],
        "total_r": oos["total_r"],
        "win_rate": oos["win_rate"],
    }


def test_run_detail_has_the_mode_and_no_metrics_for_a_sweep(client, runs):
    body = get(client, f"/api/runs/{runs['sweep'].name}")
    assert body["mode"] == "sweep" and body["metrics"] is None
    assert body["manifest"] == read_json(runs["sweep"] / "manifest.json")
    wf = get(client, f"/api/runs/{runs['wf'].name}")
    assert wf["mode"] == "walk_forward"
    assert wf["metrics"] == read_json(runs["wf"] / "metrics.json")["aggregate"]
    assert get(client, f"/api/runs/{runs['mc'].name}")["mode"] == "backtest"


def test_backtest_endpoints_answer_404_for_research_runs(client, runs):
    for key in ("sweep", "wf"):
        run_id = runs[key].name
        for url in ("/api/trades", "/api/equity", "/api/sessions", "/api/trades?symbol=SPY"):
            detail = get(client, f"{url}{'&' if '?' in url else '?'}run_id={run_id}", 404)["detail"]
            assert run_id in detail and "backtest output" in detail
    detail = get(client, f"/api/metrics/core?run_id={runs['sweep'].name}", 404)["detail"]
    assert "metrics.json" in detail
    # the walk-forward's metrics are its stitched out-of-sample result
    body = get(client, f"/api/metrics/core?run_id={runs['wf'].name}")
    assert body["metrics"] == read_json(runs["wf"] / "metrics.json")["aggregate"]
    assert get(client, f"/api/config?run_id={runs['sweep'].name}")["config"] == read_json(
        runs["sweep"] / "config.json"
    )


# ---------------------------------------------------------------------------------------------- sweeps


def test_sweep_rows_equal_the_file_in_rank_order(client, runs):
    info = read_json(runs["sweep"] / "sweep.json")
    frame = pd.read_parquet(runs["sweep"] / "sweep_results.parquet")
    body = get(client, f"/api/sweeps/{runs['sweep'].name}?limit=5000")
    assert body["rows"] == sweep_rows(frame, info["keys"])
    assert body["total"] == len(frame) == info["evaluated"] * 3  # SPY, QQQ and the aggregate row
    assert body["keys"] == info["keys"] == ["orb.base_minutes", "costs.slippage_per_share", "trade.stop_mode",
                                           "trade.t1_r"]  # fmt: skip
    assert body["rank_by"] == "total_r" and body["sort_by"] == "rank" and body["order"] == "asc"
    assert (body["combinations"], body["evaluated"]) == (24, 12)
    assert body["invalid"] == info["invalid"] and len(body["invalid"]) == 12
    assert all(item["params"]["trade.t1_r"] == 2.0 for item in body["invalid"])
    assert body["best"] == info["best"]
    first = body["rows"][0]
    assert first["rank"] == 1 and first["symbol"] == "*"
    assert first["combination"] == info["best"]["combination"] and first["params"] == info["best"]["params"]


@pytest.mark.parametrize(("symbol", "stored"), [("*", "*"), ("qqq", "QQQ"), ("SPY", "SPY")])
def test_sweep_symbol_filter_keeps_that_symbols_rows(client, runs, symbol, stored):
    info = read_json(runs["sweep"] / "sweep.json")
    frame = pd.read_parquet(runs["sweep"] / "sweep_results.parquet")
    body = get(client, f"/api/sweeps/{runs['sweep'].name}", params={"symbol": symbol})
    expected = sweep_rows(frame[frame["symbol"] == stored], info["keys"])
    assert body["symbol"] == stored and body["total"] == len(expected) == info["evaluated"]
    assert body["rows"] == expected
    assert [r["rank"] for r in body["rows"]] == list(range(1, info["evaluated"] + 1))


@pytest.mark.parametrize(
    ("sort_by", "order"),
    [("win_rate", None), ("win_rate", "asc"), ("max_drawdown_r", None), ("rank", "desc")],
)
def test_sweep_sort_by_a_metric(client, runs, sort_by, order):
    info = read_json(runs["sweep"] / "sweep.json")
    frame = pd.read_parquet(runs["sweep"] / "sweep_results.parquet")
    params = {"sort_by": sort_by, "limit": 5000} | ({"order": order} if order else {})
    body = get(client, f"/api/sweeps/{runs['sweep'].name}", params=params)
    descending = order == "desc" if order else sort_by != "rank"
    assert body["order"] == ("desc" if descending else "asc")
    # ties keep the stored (rank) order, undefined values go last
    expected = frame.sort_values(sort_by, ascending=not descending, kind="stable", na_position="last")
    assert identity(body["rows"]) == identity(sweep_rows(expected, info["keys"]))
    values = [r["rank"] if sort_by == "rank" else r["metrics"][sort_by] for r in body["rows"]]
    assert values == sorted(values, reverse=descending)


def test_sweep_pages_concatenate_to_the_sorted_rows(client, runs):
    url = f"/api/sweeps/{runs['sweep'].name}?symbol=*&sort_by=sharpe"
    whole = get(client, url)["rows"]
    pages = [get(client, f"{url}&limit=5&offset={offset}") for offset in (0, 5, 10)]
    assert [p["total"] for p in pages] == [12, 12, 12]
    assert [len(p["rows"]) for p in pages] == [5, 5, 2]
    assert [row for p in pages for row in p["rows"]] == whole
    assert get(client, f"{url}&offset=99")["rows"] == []


@pytest.mark.parametrize(
    "query",
    [
        "sort_by=exit_reasons",
        "sort_by=orb.base_minutes",
        "sort_by=1",
        "order=up",
        "limit=0",
        "limit=5001",
        "offset=-1",
        "symbol=**",
        "symbol=../x",
        "symbol=",
    ],
)
def test_sweep_bad_parameters_are_422(client, runs, query):
    get(client, f"/api/sweeps/{runs['sweep'].name}?{query}", 422)


def test_sweep_unknown_symbol_is_404(client, runs):
    assert "IWM" in get(client, f"/api/sweeps/{runs['sweep'].name}?symbol=IWM", 404)["detail"]


# ----------------------------------------------------------------------------------------- walk-forward


def test_walkforward_folds_robustness_and_metrics_equal_the_files(client, runs):
    info = read_json(runs["wf"] / "walk_forward.json")
    folds = pd.read_parquet(runs["wf"] / "wf_folds.parquet")
    body = get(client, f"/api/walkforward/{runs['wf'].name}")
    assert body["robustness"] == info["robustness"]
    assert body["metrics"] == read_json(runs["wf"] / "metrics.json")["aggregate"]
    for key in ("keys", "rank_by", "train_sessions", "test_sessions", "anchored", "combinations", "invalid"):
        assert body[key] == info[key], key
    assert (body["train_sessions"], body["test_sessions"], body["anchored"]) == (40, 20, False)
    assert len(body["folds"]) == len(folds) == info["robustness"]["folds"] >= 3
    for got, row in zip(body["folds"], as_json(folds), strict=True):
        assert {k: got[k] for k in (*WINDOW, "combination")} == {k: row[k] for k in (*WINDOW, "combination")}
        assert got["params"] == {k: row[k] for k in info["keys"]}
        assert got["in_sample"] == {k[3:]: v for k, v in row.items() if k.startswith("is_")}
        assert got["out_of_sample"] == {k[4:]: v for k, v in row.items() if k.startswith("oos_")}
    # the robustness figures agree with the folds they summarise
    assert info["robustness"]["oos_total_r"] == pytest.approx(folds["oos_total_r"].sum())
    chosen = info["robustness"]["parameter_stability"]["orb.base_minutes"]["chosen"]
    assert chosen == [f["params"]["orb.base_minutes"] for f in body["folds"]]


def test_walkforward_equity_equals_the_file_and_downsamples(client, runs):
    full = as_json(pd.read_parquet(runs["wf"] / "wf_oos_equity.parquet"))
    body = get(client, f"/api/walkforward/{runs['wf'].name}")["equity"]
    assert body["points"] == full and body["total"] == body["returned"] == len(full) > 40
    small = get(client, f"/api/walkforward/{runs['wf'].name}?max_points=20")["equity"]
    points = small["points"]
    assert small["total"] == len(full) and small["returned"] == len(points) <= 20
    assert points[0] == full[0] and points[-1] == full[-1] and all(p in full for p in points)
    assert min(p["drawdown_pct"] for p in points) == min(p["drawdown_pct"] for p in full)
    assert {p["fold"] for p in full} == set(
        range(1, len(get(client, f"/api/walkforward/{runs['wf'].name}")["folds"]) + 1)
    )
    get(client, f"/api/walkforward/{runs['wf'].name}?max_points=1", 422)


# ------------------------------------------------------------------------------------------ Monte Carlo


@pytest.mark.parametrize("key", ["wf", "mc"])
def test_montecarlo_summary_and_bands_equal_the_files(client, runs, key):
    run = runs[key]
    summary = read_json(run / "montecarlo_summary.json")
    bands = as_json(pd.read_parquet(run / "montecarlo_bands.parquet"))
    body = get(client, f"/api/montecarlo/{run.name}")
    for field in ("n_paths", "seed", "resample", "n_trades", "n_units", "percentiles", "mean", "observed",
                  "drawdown_thresholds_r", "prob_max_drawdown_exceeds"):  # fmt: skip
        assert body[field] == summary[field], field
    assert body["bands"] == {"total": len(bands), "returned": len(bands), "points": bands}
    assert body["histogram"] is None


def test_montecarlo_of_a_walkforward_resamples_its_oos_trades(client, runs):
    body = get(client, f"/api/montecarlo/{runs['wf'].name}")
    trades = pd.read_parquet(runs["wf"] / "wf_oos_trades.parquet")
    assert body["n_trades"] == body["n_units"] == len(trades) and body["resample"] == "trades"
    assert body["n_paths"] == 300 and body["seed"] == 7
    assert body["observed"]["total_r"] == pytest.approx(trades["r_multiple"].sum())
    by_session = get(client, f"/api/montecarlo/{runs['mc'].name}")
    sessions = pd.read_parquet(runs["mc"] / "all_trades.parquet")["session_date"].nunique()
    assert by_session["resample"] == "sessions" and by_session["n_units"] == sessions
    assert set(by_session["prob_max_drawdown_exceeds"]) == {"3", "6"}


def test_montecarlo_band_thinning_keeps_the_ends(client, runs):
    full = as_json(pd.read_parquet(runs["wf"] / "montecarlo_bands.parquet"))
    body = get(client, f"/api/montecarlo/{runs['wf'].name}?max_points=7")["bands"]
    assert body["total"] == len(full) > 7 and body["returned"] == len(body["points"]) <= 7
    assert body["points"][0] == full[0] and body["points"][-1] == full[-1]
    steps = [p["step"] for p in body["points"]]
    assert steps == sorted(set(steps)) and all(p in full for p in body["points"])


def test_montecarlo_histograms_count_every_path(client, runs):
    paths = pd.read_parquet(runs["wf"] / "montecarlo_paths.parquet")
    summary = read_json(runs["wf"] / "montecarlo_summary.json")
    body = get(client, f"/api/montecarlo/{runs['wf'].name}?histogram=max_drawdown_r&bins=12")["histogram"]
    assert body["stat"] == "max_drawdown_r" and len(body["counts"]) == 12 == len(body["edges"]) - 1
    assert body["observed"] == summary["observed"]["max_drawdown_r"]
    values = paths["max_drawdown_r"].to_numpy()
    assert body["edges"][0] == values.min() and body["edges"][-1] == values.max()
    inside = [
        ((values >= lo) & (values < hi)).sum()
        for lo, hi in zip(body["edges"][:-1], body["edges"][1:], strict=True)
    ]
    inside[-1] += int((values == body["edges"][-1]).sum())  # the last bin includes its right edge
    assert body["counts"] == inside and sum(body["counts"]) == len(paths) == 300
    # whole-number streaks: one bin per value, centred on it
    streaks = get(client, f"/api/montecarlo/{runs['wf'].name}?histogram=longest_losing_streak")["histogram"]
    counts = paths["longest_losing_streak"].value_counts()
    low, high = int(paths["longest_losing_streak"].min()), int(paths["longest_losing_streak"].max())
    assert streaks["edges"] == [k - 0.5 for k in range(low, high + 2)]
    assert streaks["counts"] == [int(counts.get(k, 0)) for k in range(low, high + 1)]


@pytest.mark.parametrize("query", ["histogram=sharpe", "bins=0", "bins=501", "max_points=1", "histogram="])
def test_montecarlo_bad_parameters_are_422(client, runs, query):
    get(client, f"/api/montecarlo/{runs['wf'].name}?{query}", 422)


# ---------------------------------------------------------------------------------------- not found


@pytest.mark.parametrize(
    ("endpoint", "key", "words"),
    [
        ("sweeps", "wf", "not a sweep"),
        ("sweeps", "mc", "not a sweep"),
        ("walkforward", "sweep", "not a walk-forward"),
        ("walkforward", "mc", "not a walk-forward"),
        ("montecarlo", "sweep", "no Monte Carlo output"),
    ],
)
def test_a_run_without_that_output_is_404(client, runs, endpoint, key, words):
    detail = get(client, f"/api/{endpoint}/{runs[key].name}", 404)["detail"]
    assert runs[key].name in detail and words in detail


@pytest.mark.parametrize("endpoint", ["sweeps", "walkforward", "montecarlo"])
def test_unknown_run_is_404_and_latest_is_the_newest_run(client, runs, endpoint):
    assert "not found" in get(client, f"/api/{endpoint}/backtest_19990101_000000", 404)["detail"]
    latest = (runs["runs"] / "latest").read_text().strip()
    assert latest == runs["mc"].name  # the last run written
    status = 404 if endpoint != "montecarlo" else 200
    get(client, f"/api/{endpoint}/latest", status)


# ------------------------------------------------------------------------------------------- safety


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory, runs):
    """A runs folder with the sweep, a symlink to a sweep outside it, and a secret next to it."""
    base = tmp_path_factory.mktemp("research_sec")
    (base / "secret.txt").write_text(MARKER)
    root = base / "runs"
    root.mkdir()
    shutil.copytree(runs["sweep"], root / runs["sweep"].name)
    outside = base / "elsewhere" / "backtest_20990101_000000"
    shutil.copytree(runs["sweep"], outside)
    (outside / "sweep.json").write_text(json.dumps({"leak": MARKER}))
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "secret_link").symlink_to(base / "secret.txt")
    return root


@pytest.mark.parametrize("endpoint", ["sweeps", "walkforward", "montecarlo"])
@pytest.mark.parametrize(
    "run_id",
    ["..", "../secret.txt", "..%2F..%2Fsecret.txt", "%2e%2e", "escape", "secret_link", "a%00b", "x" * 300,
     ".hidden", "%20spaced", "escape%2F..%2F..%2Fsecret.txt"],
)  # fmt: skip
def test_traversal_run_ids_never_leave_the_runs_folder(hostile_root, endpoint, run_id):
    client = TestClient(create_app(hostile_root, api_key="", cors_origins=""))
    response = client.get(f"/api/{endpoint}/{run_id}")
    assert response.status_code in (404, 422), (run_id, response.status_code, response.text)
    assert MARKER not in response.text


def test_the_api_key_guards_the_research_endpoints(runs):
    client = TestClient(create_app(runs["runs"], api_key="s3cret", cors_origins=""))
    url = f"/api/sweeps/{runs['sweep'].name}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "s3cret"}).status_code == 200


# ------------------------------------------------------------------------------------- damaged runs


@pytest.fixture()
def own(tmp_path, runs):
    """A private copy of the three research runs."""
    root = tmp_path / "runs"
    for key in ("sweep", "wf", "mc"):
        shutil.copytree(runs[key], root / runs[key].name)
    return root


@pytest.mark.parametrize(
    ("key", "name", "endpoint"),
    [
        ("sweep", "sweep_results.parquet", "sweeps"),
        ("sweep", "sweep.json", "sweeps"),
        ("wf", "wf_folds.parquet", "walkforward"),
        ("wf", "montecarlo_bands.parquet", "montecarlo"),
        ("mc", "montecarlo_paths.parquet", "montecarlo"),
    ],
)
def test_a_listed_research_file_missing_is_409_and_the_run_incomplete(own, runs, key, name, endpoint):
    run_id = runs[key].name
    (own / run_id / name).unlink()
    client = TestClient(create_app(own, api_key="", cors_origins=""))
    query = "?histogram=total_r" if name == "montecarlo_paths.parquet" else ""
    assert name in get(client, f"/api/{endpoint}/{run_id}{query}", 409)["detail"]
    listed = {r["run_id"]: r for r in get(client, "/api/runs")}[run_id]
    assert listed["status"] == "incomplete" and name in listed["detail"]


def test_a_sweep_missing_its_results_is_incomplete_even_when_the_manifest_omits_them(own, runs):
    run = own / runs["sweep"].name
    manifest = read_json(run / "manifest.json")
    del manifest["files"]["sweep_results.parquet"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "sweep_results.parquet").unlink()
    summary = {s.run_id: s for s in results.list_runs(own)}[run.name]
    assert summary.status == "incomplete" and "sweep_results.parquet is missing" in summary.detail
    with pytest.raises(results.RunIncomplete, match="sweep_results.parquet"):
        results.open_run(own, run.name)


@pytest.mark.parametrize(
    ("key", "name", "content", "endpoint"),
    [
        ("sweep", "sweep.json", "[1, 2]", "sweeps"),
        (
            "sweep",
            "sweep.json",
            '{"keys": "orb.base_minutes", "rank_by": "total_r", "invalid": []}',
            "sweeps",
        ),
        ("sweep", "sweep_results.parquet", "not parquet", "sweeps"),
        ("wf", "walk_forward.json", '{"keys": [], "rank_by": "total_r"}', "walkforward"),
        ("wf", "montecarlo_summary.json", '{"n_paths": "many"}', "montecarlo"),
    ],
)
def test_an_unreadable_research_file_is_409(own, runs, key, name, content, endpoint):
    run_id = runs[key].name
    (own / run_id / name).write_text(content)
    client = TestClient(create_app(own, api_key="", cors_origins=""))
    assert name in get(client, f"/api/{endpoint}/{run_id}", 409)["detail"]


def test_an_unknown_mode_is_an_incomplete_run(own, runs):
    run = own / runs["mc"].name
    manifest = read_json(run / "manifest.json")
    (run / "manifest.json").write_text(json.dumps(manifest | {"mode": "optimise"}))
    summary = {s.run_id: s for s in results.list_runs(own)}[run.name]
    assert summary.status == "incomplete" and "mode 'optimise'" in summary.detail
    assert summary.mode == "optimise"


def test_a_manifest_without_mode_is_a_backtest(own, runs):
    run = own / runs["mc"].name
    manifest = read_json(run / "manifest.json")
    del manifest["mode"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert results.run_mode(run) == "backtest"
    summary = {s.run_id: s for s in results.list_runs(own)}[run.name]
    assert summary.status == "complete" and summary.mode == "backtest"


# ------------------------------------------------------------------------------------------- OpenAPI


def test_openapi_documents_the_research_endpoints(client):
    spec = client.get("/openapi.json").json()
    for path, model in (
        ("/api/sweeps/{run_id}", "SweepResponse"),
        ("/api/walkforward/{run_id}", "WalkForwardResponse"),
        ("/api/montecarlo/{run_id}", "MonteCarloResponse"),
    ):
        op = spec["paths"][path]["get"]
        assert op["description"] and op["summary"] and "research" in op["tags"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert {"404", "409", "422"} <= set(op["responses"])
        run_id = next(p for p in op["parameters"] if p["name"] == "run_id")
        assert run_id["in"] == "path" and run_id["schema"]["pattern"] == results.RUN_ID_PATTERN
    sweep_params = {p["name"]: p for p in spec["paths"]["/api/sweeps/{run_id}"]["get"]["parameters"]}
    assert "win_rate" in sweep_params["sort_by"]["schema"]["enum"]
    assert "exit_reasons" not in sweep_params["sort_by"]["schema"]["enum"]
    assert sweep_params["symbol"]["examples"]["aggregate"]["value"] == "*"
    schemas = spec["components"]["schemas"]
    assert schemas["MonteCarloResponse"]["examples"] and schemas["Robustness"]["examples"]
    assert "mode" in schemas["RunInfo"]["properties"] and "mode" in schemas["RunDetail"]["properties"]
