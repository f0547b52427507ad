"""orb.runs.read: listing, validation, path safety, filtered loading, caching and downsampling.

Run folders come from tests/run_fixtures.py (hand-built per run-format.md, so damaged and edge cases
can be made at will); expected values are read straight from the files with pandas/json.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from run_fixtures import build_run, rehash

from orb.runs import read as results
from orb.runs.read import InvalidRunId, InvalidSymbol, RunIncomplete, RunNotFound, SymbolNotFound


@pytest.fixture()
def runs(tmp_path):
    """A runs folder with two complete runs (the second newer) and runs/latest naming the newer."""
    root = tmp_path / "runs"
    build_run(root, "backtest_20240301_120000", created=datetime(2024, 3, 1, 12, tzinfo=UTC))
    build_run(root, "backtest_20240302_090000", created=datetime(2024, 3, 2, 9, tzinfo=UTC), seed=8)
    results.clear_cache()
    return root


@pytest.fixture()
def run(runs):
    return runs / "backtest_20240302_090000"


def test_resolve_runs_dir_prefers_cli_then_env_then_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ORB_RUNS_DIR", str(tmp_path / "env"))
    assert results.resolve_runs_dir(str(tmp_path / "cli")) == tmp_path / "cli"
    assert results.resolve_runs_dir() == tmp_path / "env"
    monkeypatch.delenv("ORB_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert results.resolve_runs_dir() == tmp_path / "runs"


def test_list_runs_newest_first_with_totals(runs):
    listed = results.list_runs(runs)
    assert [s.run_id for s in listed] == ["backtest_20240302_090000", "backtest_20240301_120000"]
    for summary in listed:
        aggregate = json.loads((runs / summary.run_id / "metrics.json").read_text())["aggregate"]
        manifest = json.loads((runs / summary.run_id / "manifest.json").read_text())
        assert summary.status == "complete" and summary.detail is None
        assert (summary.trades, summary.total_r, summary.win_rate) == (
            aggregate["total_trades"],
            aggregate["total_r"],
            aggregate["win_rate"],
        )
        assert list(summary.symbols) == manifest["symbols"]
        assert (summary.start, summary.end) == (manifest["start"], manifest["end"])
        assert summary.created == datetime.fromisoformat(manifest["created"])


def test_hidden_temp_folders_files_and_foreign_names_are_not_listed(runs):
    (runs / ".tmp-backtest_20240303_000000-123").mkdir()
    (runs / "_scratch").mkdir()
    (runs / "notes.txt").write_text("x")
    assert {s.run_id for s in results.list_runs(runs)} == {
        "backtest_20240301_120000",
        "backtest_20240302_090000",
    }


def test_missing_runs_folder_lists_nothing(tmp_path):
    assert results.list_runs(tmp_path / "absent") == []
    assert results.latest_run_id(tmp_path / "absent") is None
    with pytest.raises(RunNotFound, match="no complete run"):
        results.run_dir(tmp_path / "absent", None)


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda run: (run / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda run: (run / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
        (lambda run: (run / "manifest.json").write_text("[1, 2]"), "not a JSON object"),
        (lambda run: (run / "SPY_trades.parquet").unlink(), "SPY_trades.parquet is missing"),
        (lambda run: (run / "metrics.json").write_text('{"aggregate": 1}'), "metrics.json lacks"),
    ],
)
def test_damaged_run_is_listed_incomplete_with_a_reason(runs, run, damage, detail):
    damage(run)
    summary = {s.run_id: s for s in results.list_runs(runs)}[run.name]
    assert summary.status == "incomplete"
    assert detail in summary.detail
    with pytest.raises(RunIncomplete, match=detail.split()[0]):
        results.open_run(runs, run.name)
    # the damaged newest run is skipped for "latest"
    assert results.latest_run_id(runs) == "backtest_20240301_120000"


def test_a_file_removed_after_a_successful_check_is_noticed(runs, run):
    assert results.open_run(runs, run.name) == run.resolve()
    (run / "SPY_fills.parquet").unlink()
    with pytest.raises(RunIncomplete, match="SPY_fills.parquet is missing"):
        results.open_run(runs, run.name)


def test_latest_file_wins_over_creation_time(runs):
    (runs / "latest").write_text("backtest_20240301_120000\n")
    assert results.latest_run_id(runs) == "backtest_20240301_120000"
    assert results.run_dir(runs, None).name == "backtest_20240301_120000"
    assert results.run_dir(runs, "latest").name == "backtest_20240301_120000"


@pytest.mark.parametrize("pointer", ["../../etc", "backtest_19990101_000000", "", "x" * 5000])
def test_bad_latest_file_falls_back_to_newest_complete(runs, pointer):
    (runs / "latest").write_text(pointer)
    assert results.latest_run_id(runs) == "backtest_20240302_090000"


@pytest.mark.parametrize(
    "run_id",
    [
        "../x",
        "..",
        ".",
        "/etc",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "",
        ".tmp-x",
        "x\x00y",
        "a" * 129,
        "x" * 10_000,
        7,
        "ok\n",
    ],
)
def test_malformed_run_ids_are_refused(runs, run_id):
    with pytest.raises(InvalidRunId):
        results.run_dir(runs, run_id)


def test_unknown_run_and_plain_files_are_not_found(runs):
    with pytest.raises(RunNotFound):
        results.run_dir(runs, "backtest_19990101_000000")
    (runs / "stray.txt").write_text("x")
    with pytest.raises(RunNotFound):
        results.run_dir(runs, "stray.txt")


def test_symlinked_run_outside_the_runs_folder_is_invisible(tmp_path, runs):
    outside = build_run(tmp_path / "elsewhere", "backtest_20990101_000000", update_latest=False)
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    assert "escape" not in {s.run_id for s in results.list_runs(runs)}
    with pytest.raises(RunNotFound):
        results.run_dir(runs, "escape")


def test_symlinked_run_inside_the_runs_folder_is_an_alias(runs, run):
    (runs / "alias").symlink_to(run, target_is_directory=True)
    assert results.run_dir(runs, "alias") == run.resolve()


def test_member_file_symlinked_outside_is_refused(tmp_path, run):
    secret = tmp_path / "secret.parquet"
    pd.DataFrame({"password": ["hunter2"]}).to_parquet(secret)
    (run / "SPY_trades.parquet").unlink()
    (run / "SPY_trades.parquet").symlink_to(secret)
    with pytest.raises(RunIncomplete, match="outside the run folder"):
        results.load_trades(run, "SPY")
    with pytest.raises(RunIncomplete, match="outside the run folder"):
        results.check_run(run)


def test_hostile_manifest_file_names_are_refused(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"]["../../../etc/passwd"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunIncomplete, match="outside the run folder"):
        results.check_run(run, verify=True)


def test_verify_detects_a_changed_file_that_plain_checks_accept(run):
    path = run / "all_trades.csv"
    data = bytearray(path.read_bytes())
    data[-2] = ord("0") if data[-2] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    assert results.check_run(run)["run_id"] == run.name
    with pytest.raises(RunIncomplete, match="all_trades.csv does not match"):
        results.check_run(run, verify=True)


def test_load_json_files_equal_the_files(run):
    assert results.load_manifest(run) == json.loads((run / "manifest.json").read_text())
    assert results.load_metrics(run) == json.loads((run / "metrics.json").read_text())
    assert results.load_run_config(run) == json.loads((run / "config.json").read_text())
    assert results.symbols(run) == ["SPY", "QQQ"]
    assert results.load_symbol_metrics(run, "qqq") == json.loads((run / "QQQ_metrics.json").read_text())


def test_returned_json_is_a_copy_the_cache_keeps_its_own(run):
    results.load_manifest(run)["symbols"].append("HACK")
    results.load_metrics(run)["aggregate"]["total_r"] = 1e9
    results.load_symbol_metrics(run)["total_r"] = 1e9
    results.check_run(run)["run_id"] = "other"
    assert results.symbols(run) == ["SPY", "QQQ"]
    assert results.load_metrics(run) == json.loads((run / "metrics.json").read_text())
    assert results.check_run(run)["run_id"] == run.name


def test_nan_tokens_in_json_read_as_null(run):
    (run / "config.json").write_text('{"a": NaN, "b": [Infinity, -Infinity], "c": 1.5}')
    rehash(run)
    assert results.load_run_config(run) == {"a": None, "b": [None, None], "c": 1.5}


def test_load_trades_matches_the_parquet_files(run):
    every = pd.read_parquet(run / "all_trades.parquet")
    pd.testing.assert_frame_equal(results.load_trades(run), every)
    spy = pd.read_parquet(run / "SPY_trades.parquet")
    pd.testing.assert_frame_equal(results.load_trades(run, "spy"), spy)


@pytest.mark.parametrize("as_timestamp", [False, True])
def test_trade_filters_match_pandas_filters(tmp_path, as_timestamp):
    run = build_run(tmp_path, "r1", session_date_as_timestamp=as_timestamp)
    every = pd.read_parquet(run / "all_trades.parquet")
    day = pd.to_datetime(every["session_date"]).dt.date
    expected = every[
        (every["side"] == "long")
        & (every["exit_reason"] == "stop")
        & (day >= date(2024, 1, 10))
        & (day <= date(2024, 1, 25))
    ].reset_index(drop=True)
    got = results.load_trades(run, side="long", exit_reason="stop", start="2024-01-10", end=date(2024, 1, 25))
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)


def test_columns_limit_what_is_returned(run):
    got = results.load_trades(run, "SPY", side="short", columns=["trade_id", "r_multiple"])
    spy = pd.read_parquet(run / "SPY_trades.parquet")
    expected = spy.loc[spy["side"] == "short", ["trade_id", "r_multiple"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(ValueError, match="no column"):
        results.load_trades(run, columns=["trade_id", "nope"])


def test_unknown_and_malformed_symbols(run):
    with pytest.raises(SymbolNotFound, match="IWM is not in run"):
        results.load_trades(run, "IWM")
    for bad in ("../SPY", "SPY/../../x", "SP\x00Y", "S" * 40, ""):
        with pytest.raises(InvalidSymbol):
            results.load_equity(run, bad)


def test_a_failed_symbol_names_its_failure(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["failed_symbols"] = {"IWM": "no bars for IWM between 2024-01-02 and 2024-01-31"}
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SymbolNotFound, match="symbol IWM failed in run .*: no bars for IWM"):
        results.load_equity(run, "iwm")


def test_trades_page_slices_the_filtered_rows(run):
    every = pd.read_parquet(run / "all_trades.parquet")
    longs = every[every["side"] == "long"].reset_index(drop=True)
    page = results.trades_page(run, side="long", offset=3, limit=4)
    assert page.total == len(longs)
    assert [r["trade_id"] for r in page.records] == longs["trade_id"].iloc[3:7].tolist()
    assert [r["symbol"] for r in page.records] == longs["symbol"].iloc[3:7].tolist()
    assert results.trades_page(run, offset=10_000, limit=5).records == []


def test_records_are_strict_json_with_offset_times(run):
    page = results.trades_page(run)
    every = pd.read_parquet(run / "all_trades.parquet")
    assert every["t2_price"].isna().any() and every["score"].isna().any()
    for record, (_, row) in zip(page.records, every.iterrows(), strict=True):
        assert (
            record["t2_price"] is None if pd.isna(row["t2_price"]) else record["t2_price"] == row["t2_price"]
        )
        assert record["entry_time"] == row["entry_time"].strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert datetime.fromisoformat(record["exit_time"]) == row["exit_time"]
        assert record["session_date"] == row["session_date"].isoformat()
    json.dumps(page.records, allow_nan=False)


def test_records_convert_naive_sub_second_and_other_zone_times():
    table = pa.table(
        {
            "session_date": pa.array([datetime(2024, 1, 2)], pa.timestamp("ns")),
            "time": pa.array([datetime(2024, 1, 2, 14, 30, 5, 250000)], pa.timestamp("us")),
            "timestamp": pa.array(
                [datetime(2024, 1, 2, 14, 30, tzinfo=UTC)], pa.timestamp("ns", "America/New_York")
            ),
            "x": pa.array([float("inf")]),
        }
    )
    assert results.records(table) == [
        {
            "session_date": "2024-01-02",
            "time": "2024-01-02T14:30:05.250000+00:00",
            "timestamp": "2024-01-02T14:30:00+00:00",
            "x": None,
        }
    ]


def test_equity_and_other_tables_equal_the_files(run):
    pd.testing.assert_frame_equal(results.load_equity(run), pd.read_parquet(run / "combined_equity.parquet"))
    pd.testing.assert_frame_equal(
        results.load_equity(run, "QQQ"), pd.read_parquet(run / "QQQ_equity.parquet")
    )
    pd.testing.assert_frame_equal(results.load_fills(run, "SPY"), pd.read_parquet(run / "SPY_fills.parquet"))
    pd.testing.assert_frame_equal(
        results.load_events(run, "SPY"), pd.read_parquet(run / "SPY_events.parquet")
    )
    sessions = results.load_sessions(run, "QQQ")
    assert (sessions["symbol"] == "QQQ").all()
    pd.testing.assert_frame_equal(
        sessions.drop(columns="symbol"), pd.read_parquet(run / "QQQ_sessions.parquet")
    )
    both = results.load_sessions(run)
    assert both["symbol"].value_counts().to_dict() == {"SPY": len(sessions), "QQQ": len(sessions)}


def test_bars_of_one_session_are_its_regular_hours(run):
    bars = results.load_bars(run, "SPY", "2024-01-03")
    assert bars.index.name == "timestamp" and str(bars.index.tz) == "UTC"
    local = bars.index.tz_convert("America/New_York")
    assert set(local.date) == {date(2024, 1, 3)}
    assert local[0].strftime("%H:%M") == "09:30" and len(bars) == 390
    stored = pd.read_parquet(run / "SPY_bars.parquet")
    pd.testing.assert_frame_equal(results.load_bars(run, "SPY"), stored)


def test_cache_reuses_unchanged_files_and_rereads_changed_ones(run):
    first = results._read_table(run, "SPY_equity.parquet")
    assert results._read_table(run, "SPY_equity.parquet") is first
    frame = pd.read_parquet(run / "SPY_equity.parquet")
    changed = frame.assign(equity=frame["equity"] + 1.0)
    changed.to_parquet(run / "SPY_equity.tmp", index=False)
    os.replace(run / "SPY_equity.tmp", run / "SPY_equity.parquet")
    rehash(run)
    pd.testing.assert_frame_equal(results.load_equity(run, "SPY"), changed)


def test_new_runs_appear_without_any_reset(runs):
    assert len(results.list_runs(runs)) == 2
    build_run(runs, "backtest_20240305_100000", created=datetime(2024, 3, 5, 10, tzinfo=UTC))
    assert results.list_runs(runs)[0].run_id == "backtest_20240305_100000"
    assert results.latest_run_id(runs) == "backtest_20240305_100000"


def _max_drawdown(values: np.ndarray) -> float:
    return float(np.min(values / np.maximum.accumulate(values) - 1))


@settings(max_examples=examples(200), deadline=None)
@given(
    steps=st.lists(st.floats(-500, 500, allow_nan=False), min_size=1, max_size=400),
    max_points=st.integers(2, 60),
)
def test_downsampling_keeps_ends_and_the_maximum_drawdown(steps, max_points):
    equity = 100_000 + np.cumsum(np.asarray(steps))
    keep = results.downsample_positions(equity, None, max_points)
    assert len(keep) <= max(max_points, 0) or len(equity) <= max_points
    assert len(keep) <= max_points or (keep == np.arange(len(equity))).all()
    assert (np.diff(keep) > 0).all()
    assert keep[0] == 0 and keep[-1] == len(equity) - 1
    if max_points >= 5 or len(equity) <= max_points:
        assert _max_drawdown(equity[keep]) == pytest.approx(_max_drawdown(equity), abs=0, rel=0)


def test_downsample_equity_frame_uses_stored_drawdown(run):
    frame = results.load_equity(run)
    small = results.downsample_equity(frame, 8)
    assert len(small) <= 8
    assert small["drawdown_pct"].min() == frame["drawdown_pct"].min()
    assert small["timestamp"].iloc[0] == frame["timestamp"].iloc[0]
    assert small["timestamp"].iloc[-1] == frame["timestamp"].iloc[-1]
