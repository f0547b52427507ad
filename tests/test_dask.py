"""Sweeps and walk-forward on a real Dask cluster (distributed.LocalCluster on loopback TCP).

The same task function runs on the cluster; results must equal the local run's, in the same order.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import date
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import run_backtest  # noqa: E402
from orb import workers  # noqa: E402
from orb.config import load_config  # noqa: E402
from orb.data import load_symbol  # noqa: E402
from orb.errors import OrbError  # noqa: E402
from orb.research.sweep import load_sweep  # noqa: E402
from orb.research.tasks import Task, run_tasks  # noqa: E402

START, END = date(2024, 1, 2), date(2024, 2, 9)
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-02-09"]
GRID = "grid:\n  orb.base_minutes: [5, 15]\n  costs.slippage_per_share: [0.0, 0.05]\n"


def cluster(processes: bool):
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def thread_cluster():
    with cluster(processes=False) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def process_cluster():
    with cluster(processes=True) as c:
        yield c.scheduler_address


def run_cli(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "runs"
    tmp_path.mkdir(exist_ok=True)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert run_backtest.main([*args, "--output-dir", str(out), "-q"]) == 0
    finally:
        os.chdir(cwd)
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def file_hashes(run_dir: Path) -> dict[str, str]:
    return json.loads((run_dir / "manifest.json").read_text())["files"]


def test_tasks_on_the_cluster_equal_local_results_in_task_order(tmp_path, thread_cluster):
    cfg = load_config()
    bars = {
        s: load_symbol(s, config=cfg, start=START, end=END, source="synthetic").bars for s in ("SPY", "QQQ")
    }
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    sweep = load_sweep(path, cfg)
    work = [Task(i, c.config, START, END) for i, c in enumerate(sweep.valid)]
    remote = run_tasks(work, bars, scheduler=thread_cluster)
    local = run_tasks(work, bars)
    assert [r.index for r in remote] == [0, 1, 2, 3]
    assert [(r.per_symbol, r.aggregate) for r in remote] == [(r.per_symbol, r.aggregate) for r in local]
    assert len({r.aggregate["total_r"] for r in remote}) > 1  # the combinations really differ


def test_cli_sweep_on_worker_processes_writes_the_local_file(tmp_path, process_cluster):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    args = ["--symbols", "SPY", "QQQ", *SYNTH, "--sweep", str(path)]
    on_dask = run_cli(tmp_path / "dask", *args, "--dask-scheduler", process_cluster)
    local = run_cli(tmp_path / "local", *args, "--workers", "1")
    assert json.loads((on_dask / "manifest.json").read_text())["mode"] == "sweep"
    for name in ("sweep_results.parquet", "sweep_results.csv", "sweep.json"):
        assert file_hashes(on_dask)[name] == file_hashes(local)[name], name


def test_cli_walk_forward_on_the_cluster_equals_local(tmp_path, thread_cluster):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  orb.base_minutes: [5, 15]\n")
    args = [
        "--symbols",
        "SPY",
        *SYNTH,
        "--sweep",
        str(path),
        "--walk-forward",
        "--wf-train",
        "12",
        "--wf-test",
        "8",
    ]
    on_dask = run_cli(tmp_path / "dask", *args, "--dask-scheduler", thread_cluster)
    local = run_cli(tmp_path / "local", *args, "--workers", "2")
    for name in (
        "wf_folds.parquet",
        "wf_train_results.parquet",
        "wf_oos_trades.parquet",
        "wf_oos_equity.parquet",
    ):
        assert file_hashes(on_dask)[name] == file_hashes(local)[name], name


def test_unreachable_scheduler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(workers, "DASK_CONNECT_TIMEOUT", "1s")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(
        OrbError, match=f"cannot reach the Dask scheduler at {address}.*start one with `dask scheduler`"
    ):
        run_tasks([Task(0, load_config(), START, END)], {}, scheduler=address)
