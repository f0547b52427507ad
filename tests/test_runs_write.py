"""orb.runs.write: staging leaves nothing visible on failure, run ids never collide, the manifest
hashes every file, formats are strict and byte-stable."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orb.errors import OutputError
from orb.runs import layout
from orb.runs.write import (
    BarsSnapshots,
    base_run_id,
    ensure_writable,
    finish_manifest,
    publish,
    reserve_run_id,
    staging,
    start_run,
    sweep_crash_leftovers,
    write_bars_snapshot,
    write_csv,
    write_json,
    write_parquet,
)


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_staging_removes_everything_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), staging(tmp_path, "run_a") as tmp:
        (tmp / "metrics.json").write_text("{}")
        assert tmp.name.startswith(layout.TMP_PREFIX) and tmp.parent == tmp_path
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_staging_removes_everything_on_ctrl_c(tmp_path):
    with pytest.raises(KeyboardInterrupt), staging(tmp_path, "run_b") as tmp:
        (tmp / "all_trades.csv").write_text("x\n")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_staged_run_is_hidden_until_published(tmp_path):
    with staging(tmp_path, "run_c") as tmp:
        write_json({"a": 1}, tmp / "metrics.json")
        finish_manifest(tmp, {"run_id": "run_c"})
        assert _visible(tmp_path) == []
        run = publish(tmp, tmp_path, "run_c")
    assert run == tmp_path / "run_c"
    assert _visible(tmp_path) == ["latest", "run_c"]
    assert (tmp_path / "latest").read_text() == "run_c\n"
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json", "metrics.json"]


def test_run_ids_get_a_suffix_when_taken_by_a_run_or_a_run_being_written(tmp_path):
    (tmp_path / "backtest_20240102_093000").mkdir()
    assert reserve_run_id(tmp_path, "backtest_20240102_093000") == "backtest_20240102_093000_2"
    (tmp_path / layout.temp_name("backtest_20240102_093000_2", 99999)).mkdir()
    assert reserve_run_id(tmp_path, "backtest_20240102_093000") == "backtest_20240102_093000_3"
    assert reserve_run_id(tmp_path, "other") == "other"


def test_publish_into_a_taken_id_moves_to_the_next_suffix_and_fixes_the_manifest(tmp_path):
    with staging(tmp_path, "same") as tmp:
        finish_manifest(tmp, {"run_id": "same"})
        (tmp_path / "same").mkdir()  # another process published "same" meanwhile
        run = publish(tmp, tmp_path, "same")
    assert run.name == "same_2"
    assert json.loads((run / "manifest.json").read_text())["run_id"] == "same_2"
    assert (tmp_path / "latest").read_text() == "same_2\n"


def test_base_run_id_is_local_time_plus_tag():
    now = datetime(2024, 10, 2, 15, 30, 45)
    assert base_run_id(now, None) == "backtest_20241002_153045"
    assert base_run_id(now, "wide") == "backtest_20241002_153045_wide"


def test_manifest_hashes_every_file_but_itself_and_the_log(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}\n')
    (tmp_path / "b.parquet").write_bytes(b"\x00\x01binary")
    (tmp_path / "run.log").write_text("changes every run\n")
    finish_manifest(tmp_path, {"run_id": "r"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["schema_version"] == layout.SCHEMA_VERSION
    assert manifest["files"] == {
        "a.json": hashlib.sha256(b'{"x": 1}\n').hexdigest(),
        "b.parquet": hashlib.sha256(b"\x00\x01binary").hexdigest(),
    }
    assert layout.sha256_file(tmp_path / "b.parquet") == manifest["files"]["b.parquet"]


def test_crash_leftovers_of_dead_processes_are_swept_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / layout.temp_name("old", dead_pid)
    mine = tmp_path / layout.temp_name("mine", os.getpid())
    stale.mkdir()
    mine.mkdir()
    assert sweep_crash_leftovers(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()


def test_start_run_sweeps_and_reserves(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    (tmp_path / layout.temp_name("x", int(dead.stdout))).mkdir()
    (tmp_path / "backtest_20240102_093000").mkdir()
    run_id = start_run(tmp_path, None, now=datetime(2024, 1, 2, 9, 30))
    assert run_id == "backtest_20240102_093000_2"
    assert _visible(tmp_path) == ["backtest_20240102_093000"]


def test_an_unwritable_output_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="not writable.*--output-dir"):
        ensure_writable(blocker / "runs")


def test_json_is_strict_and_csv_times_carry_the_offset(tmp_path):
    with pytest.raises(ValueError):
        write_json({"sharpe": math.nan}, tmp_path / "bad.json")
    frame = pd.DataFrame({"entry_time": pd.to_datetime(["2024-01-02 14:35"], utc=True), "r_multiple": [1.5]})
    write_csv(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "entry_time,r_multiple\n2024-01-02T14:35:00+00:00,1.5\n"


def test_parquet_bytes_are_stable(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}, index=[7, 8, 9])
    write_parquet(frame, tmp_path / "one.parquet")
    write_parquet(frame.copy(), tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert list(pd.read_parquet(tmp_path / "one.parquet").columns) == ["a", "b"]  # no index column


def test_parquet_bytes_are_those_of_pandas_to_parquet(tmp_path):
    frame = pd.DataFrame(
        {
            "t": pd.to_datetime(["2024-01-02 14:35", None, "2024-01-03 15:00"], utc=True),
            "s": ["a", None, "c"],
            "day": [datetime(2024, 1, 2).date()] * 3,
            "f": [1.5, math.nan, -0.0],
            "n": [1, 2, 3],
            "b": [True, False, True],
        }
    )
    for attrs in ({}, {"orb_bars_sha256": "abc"}):
        frame.attrs = attrs
        write_parquet(frame, tmp_path / "w.parquet")
        frame.to_parquet(tmp_path / "p.parquet", index=False, engine="pyarrow", compression="snappy")
        assert (tmp_path / "w.parquet").read_bytes() == (tmp_path / "p.parquet").read_bytes()


def test_the_bars_snapshot_reads_back_equal_and_its_hash_is_that_of_the_file(tmp_path):
    index = pd.date_range("2024-01-02 14:30", periods=500, freq="min", tz="UTC", name="timestamp", unit="ns")
    bars = pd.DataFrame({c: 100 + np.arange(500) / 7 for c in ("open", "high", "low", "close")}, index=index)
    bars["volume"] = np.arange(500, dtype="int64") * 3
    digest = write_bars_snapshot(bars.reset_index(), tmp_path / "SPY_bars.parquet")
    assert digest == layout.sha256_file(tmp_path / "SPY_bars.parquet")
    back = pd.read_parquet(tmp_path / "SPY_bars.parquet")
    pd.testing.assert_frame_equal(back, bars.reset_index())


def _bars(n: int) -> pd.DataFrame:
    index = pd.date_range("2024-01-02 14:30", periods=n, freq="min", tz="UTC", name="timestamp", unit="ns")
    return pd.DataFrame({c: 100 + np.arange(n) / 7 for c in ("open", "high", "low", "close")}, index=index)


def test_snapshots_started_early_are_the_files_and_hashes_of_writing_them_at_the_end(tmp_path):
    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir(), late.mkdir()
    bars = {"SPY": _bars(300), "QQQ": _bars(200)}
    with BarsSnapshots(early) as snapshots:
        snapshots.start("SPY", bars["SPY"])
        snapshots.start("SPY", bars["QQQ"])  # a symbol's snapshot is written once: the first bars
        snapshots.start("QQQ", bars["QQQ"])
        hashes = snapshots.hashes()
    for sym, frame in bars.items():
        name = layout.symbol_file(sym, "bars")
        assert hashes[name] == write_bars_snapshot(frame.reset_index(), late / name)
        assert (early / name).read_bytes() == (late / name).read_bytes()


def test_a_failed_snapshot_write_is_raised_by_hashes_and_the_with_block_waits_for_the_thread(tmp_path):
    with BarsSnapshots(tmp_path / "missing") as snapshots:
        snapshots.start("SPY", _bars(10))
        with pytest.raises(FileNotFoundError):
            snapshots.hashes()
    with BarsSnapshots(tmp_path) as snapshots:
        snapshots.start("SPY", _bars(50_000))
    assert (tmp_path / "SPY_bars.parquet").stat().st_size > 0  # written before the block was left


def test_known_hashes_are_used_as_given(tmp_path):
    (tmp_path / "a.json").write_text("{}\n")
    (tmp_path / "big.parquet").write_bytes(b"data")
    finish_manifest(tmp_path, {"run_id": "r"}, {"big.parquet": "hashed-while-written"})
    files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert files == {"a.json": hashlib.sha256(b"{}\n").hexdigest(), "big.parquet": "hashed-while-written"}


def test_layout_names_and_canonical_hash():
    assert layout.symbol_file("SPY", "trades") == "SPY_trades.parquet"
    assert layout.symbol_file("QQQ", "metrics") == "QQQ_metrics.json"
    assert layout.canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert layout.sha256_json({"b": 1, "a": 2}) == layout.sha256_json({"a": 2, "b": 1})


def test_temp_files_of_dead_processes_are_swept_live_and_recent_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    probe = tmp_path / f".tmp-probe-{dead_pid}"
    latest = tmp_path / f".tmp-latest-{dead_pid}"
    reservation = tmp_path / ".tmp-backtest_20240102_093000.id"
    live_probe = tmp_path / f".tmp-probe-{os.getpid()}"
    live_reservation = tmp_path / ".tmp-backtest_20240102_093000_2.id"
    recent, old = tmp_path / ".tmp-unknown-owner", tmp_path / ".tmp-old-owner"
    for path, text in [(probe, ""), (latest, "x\n"), (reservation, f"{dead_pid}\n"), (live_probe, "")]:
        path.write_text(text)
    live_reservation.write_text(f"{os.getpid()}\n")
    recent.write_text("")
    old.write_text("")
    os.utime(old, (0, 0))
    assert sorted(sweep_crash_leftovers(tmp_path)) == sorted([probe, latest, reservation, old])
    assert live_probe.exists() and live_reservation.exists() and recent.exists()


RACER = """
import json, os, sys, time
from pathlib import Path
from orb.runs.write import finish_manifest, publish, reserve_run_id, staging
out, gate = Path(sys.argv[1]), Path(sys.argv[2])
(gate / str(os.getpid())).write_text(str(time.time()))
while len(list(gate.iterdir())) < 2:  # both processes have imported everything
    time.sleep(0.01)
start = max(float(p.read_text()) for p in gate.iterdir()) + 0.5
done = []
def until(moment):
    while time.time() < moment:
        pass
for i in range(50):
    until(start + i * 0.1)  # both processes reserve in the same instant ...
    run_id = reserve_run_id(out, "backtest_20240102_093000")
    with staging(out, run_id) as tmp:
        finish_manifest(tmp, {"run_id": run_id})
        until(start + i * 0.1 + 0.05)  # ... and publish in the same instant
        done.append([run_id, publish(tmp, out, run_id).name])
print(json.dumps(done))
"""


def test_two_processes_reserving_the_same_id_never_collide(tmp_path):
    gate = tmp_path.parent / f"{tmp_path.name}-gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(gate)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-800:] for _, err in outputs]
    pairs = [pair for out, _ in outputs for pair in json.loads(out)]
    assert [name for name, _ in pairs] == [name for _, name in pairs]  # each run got the id it reserved
    published = [name for _, name in pairs]
    assert len(published) == len(set(published)) == 100
    runs = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert sorted(p.name for p in runs) == sorted(published)
    for run in runs:
        assert json.loads((run / "manifest.json").read_text())["run_id"] == run.name
    assert not list(tmp_path.glob(".tmp-*"))  # reservations released, nothing staged left
