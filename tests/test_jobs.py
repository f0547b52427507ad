"""Jobs end to end: a real uvicorn server on a free loopback port, real worker processes, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml
from job_processes import (
    FINAL,
    LONG,
    REPO,
    SMALL,
    YEAR,
    api_server,
    file_hashes,
    hidden_temp,
    start_worker,
    stop,
    visible,
    wait_for,
)

from orb.jobs import executor, service
from orb.jobs.request import JobRejected, Limits
from orb.jobs.store import JobStore, State


def _job(base: str, job_id: str) -> dict:
    response = httpx.get(f"{base}/api/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _post(base: str, body: dict) -> httpx.Response:
    return httpx.post(f"{base}/api/jobs", json=body, timeout=30)


def test_submit_progress_succeeded_and_equal_to_the_cli(tmp_path):
    runs = tmp_path / "runs"
    body = {**YEAR, "mode": "backtest", "overrides": {"orb": {"base_minutes": 5}}}
    with api_server(runs, workers=1) as base:
        posted = _post(base, body)
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["job_id"]
        assert posted.headers["location"] == f"/api/jobs/{job_id}"
        assert posted.json()["state"] == "queued"
        seen = []

        def done():
            job = _job(base, job_id)
            seen.append(job["progress"])
            return job if job["state"] in FINAL else None

        job = wait_for(done, timeout=120, every=0.05)
        listed = httpx.get(f"{base}/api/jobs", params={"state": "succeeded"}, timeout=10).json()
    assert job["state"] == "succeeded", job
    assert job["error"] is None and job["progress"] == 1.0
    assert seen == sorted(seen), "progress must never go back"
    assert any(0 < p < 1 for p in seen), f"no intermediate progress seen: {seen}"
    assert job["run_seconds"] > 0 and job["queue_seconds"] >= 0
    assert [j["job_id"] for j in listed] == [job_id]
    run = runs / job["run_id"]
    assert visible(runs) == [job["run_id"]]
    assert json.loads((run / "config.json").read_text())["orb"]["base_minutes"] == 5

    # the same request on the command line gives the same files
    config = tmp_path / "overrides.yaml"
    config.write_text(yaml.safe_dump(body["overrides"]), encoding="utf-8")
    cli_out = tmp_path / "cli"
    command = [sys.executable, str(REPO / "run_backtest.py"), "--symbols", "SPY", "QQQ", "--synthetic"]
    command += ["--start", YEAR["start"], "--end", YEAR["end"], "--config", str(config)]
    done_cli = subprocess.run(
        [*command, "--output-dir", str(cli_out), "-q"], cwd=tmp_path, capture_output=True, timeout=300
    )
    assert done_cli.returncode == 0, done_cli.stdout + done_cli.stderr
    (cli_run,) = visible(cli_out)
    assert file_hashes(run) == file_hashes(cli_out / cli_run)
    assert json.loads((run / "manifest.json").read_text())["files"] == file_hashes(run)


def test_bad_input_422_paths_403_and_full_queue_429_then_restart_runs_the_queue(tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data"
    data.mkdir()
    (tmp_path / "outside.csv").write_text("timestamp,open\n", encoding="utf-8")
    (data / "link.csv").symlink_to(tmp_path / "outside.csv")
    extra = {"ORB_DATA_DIR": str(data), "ORB_JOB_MAX_QUEUED": "2"}
    with api_server(runs, workers=0, **extra) as base:
        bad = _post(base, {**SMALL, "overrides": {"trade": {"t1_r": 5.0}}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "overrides", "trade"]
        assert "t1_r < t2_r" in bad.json()["detail"][0]["msg"]
        unknown = _post(base, {**SMALL, "overrides": {"orb": {"base_minutez": 5}}})
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "overrides", "orb", "base_minutez"]
        typo = _post(base, {**SMALL, "mdoe": "sweep"})
        assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["body", "mdoe"]
        for path in ("../outside.csv", "link.csv", str(tmp_path / "outside.csv")):
            refused = _post(base, {**SMALL, "source": "file", "data_path": path})
            assert refused.status_code == 403, refused.text
            assert "outside ORB_DATA_DIR" in refused.json()["detail"]
        too_many = _post(base, {**SMALL, "symbols": [f"S{i}" for i in range(51)]})
        assert too_many.status_code == 429 and "51 symbols" in too_many.json()["detail"]
        queued = [_post(base, SMALL) for _ in range(2)]
        assert [r.status_code for r in queued] == [202, 202]
        full = _post(base, SMALL)
        assert full.status_code == 429 and "2 jobs are already queued" in full.json()["detail"]
        time.sleep(0.5)
        assert all(_job(base, r.json()["job_id"])["state"] == "queued" for r in queued)
    assert visible(runs) == []
    with api_server(runs, workers=1, **extra) as base:
        jobs = [
            wait_for(lambda r=r: (j := _job(base, r.json()["job_id"]))["state"] in FINAL and j, timeout=120)
            for r in queued
        ]
    assert [j["state"] for j in jobs] == ["succeeded", "succeeded"]
    assert visible(runs) == sorted(j["run_id"] for j in jobs)


def test_cancel_mid_run_leaves_no_run_folder(tmp_path):
    runs = tmp_path / "runs"
    with api_server(runs, workers=1) as base:
        job_id = _post(base, LONG).json()["job_id"]
        wait_for(lambda: _job(base, job_id)["stage"] in ("loading", "backtest") and hidden_temp(runs), 120)
        asked = time.monotonic()
        cancel = httpx.delete(f"{base}/api/jobs/{job_id}", timeout=10)
        assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True
        job = wait_for(lambda: (j := _job(base, job_id))["state"] in FINAL and j, timeout=10, every=0.05)
        took = time.monotonic() - asked
        again = httpx.delete(f"{base}/api/jobs/{job_id}", timeout=10)
    assert job["state"] == "cancelled" and job["run_id"] is None
    assert took < 2.0, f"cancel took {took:.2f} s"
    assert again.status_code == 409
    assert visible(runs) == [] and hidden_temp(runs) == []


class CancelOncePublished(JobStore):
    """The real store, whose heartbeat asks to cancel once the CLI's log names its published run folder
    (the window between publishing and the process's exit)."""

    def heartbeat(self, job_id, worker, progress, stage, symbol):
        super().heartbeat(job_id, worker, progress, stage, symbol)
        log = self.job_folder(job_id) / "output.log"
        lines = log.read_text(encoding="utf-8").split() if log.is_file() else []
        return any(os.path.isdir(line) for line in lines)


def test_a_cancel_after_the_run_folder_is_published_records_the_run(tmp_path):
    runs = tmp_path / "runs"
    store = CancelOncePublished(runs)
    service.submit(runs, SMALL)
    job = store.claim("w1", os.getpid())
    state = executor.execute(store, job, "w1", die_with_parent=False)
    done = store.get(job.id)
    assert state == State.SUCCEEDED == done.state and done.run_id
    assert visible(runs) == [done.run_id] and hidden_temp(runs) == []


def test_a_killed_worker_fails_its_job_and_the_next_job_runs(tmp_path):
    runs = tmp_path / "runs"
    long_job = service.submit(runs, LONG)
    worker = start_worker(runs)
    try:
        wait_for(lambda: service.get_job(runs, long_job.id).stage in ("loading", "backtest"), timeout=120)
        recorded_pid = service.get_job(runs, long_job.id).pid
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        failed = wait_for(lambda: (j := service.get_job(runs, long_job.id)).state in FINAL and j, timeout=10)
    finally:
        stop(worker)
    assert failed.state == State.FAILED
    assert "died while running the job" in failed.error
    assert recorded_pid == worker.pid
    nxt = service.submit(runs, SMALL)
    second = start_worker(runs)
    try:
        done = wait_for(lambda: (j := service.get_job(runs, nxt.id)).state in FINAL and j, timeout=120)
    finally:
        stop(second)
    assert done.state == State.SUCCEEDED
    assert visible(runs) == [done.run_id]  # the killed job's CLI died with its worker: no folder


RACER = """
import json, sys, time
from pathlib import Path
from orb.jobs.store import JobStore, State, worker_name
store, name, taken = JobStore(sys.argv[1]), worker_name(), []
gate = Path(sys.argv[2])
(gate / f"ready-{name}").touch()
while not (gate / "go").exists():  # both racers start claiming together, imports done
    time.sleep(0.001)
while (job := store.claim(name)) is not None:
    taken.append(job.id)
    time.sleep(0.005)  # a job takes a moment: the other racer claims meanwhile
    store.finish(job.id, name, State.SUCCEEDED, run_id="none")
print(json.dumps(taken))
"""


def test_two_workers_racing_for_50_jobs_take_each_once(tmp_path):
    runs, gate = tmp_path / "runs", tmp_path / "gate"
    gate.mkdir()
    store = JobStore(runs)
    ids = [store.new_id() for _ in range(50)]
    for job_id in ids:
        store.submit(job_id, "backtest", {}, ["--version"], [], max_queued=100)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(runs), str(gate)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 120
    while len(list(gate.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()
    taken = [json.loads(p.communicate(timeout=120)[0]) for p in racers]
    assert sorted(taken[0] + taken[1]) == sorted(ids)
    assert all(taken), "both workers should have won some jobs"
    assert {j.attempts for j in store.list(limit=100)} == {1}


def test_limits_in_process(tmp_path):
    """The dashboard's path (orb.jobs.service) answers the same refusals as the API."""
    runs = tmp_path / "runs"
    with pytest.raises(JobRejected) as sessions:
        service.submit(runs, {**SMALL, "start": "2020-01-02", "end": "2024-12-31"}, Limits(sessions=100))
    assert sessions.value.status == 429 and "sessions exceed the limit of 100" in str(sessions.value)
    sweep = {**SMALL, "mode": "sweep", "sweep": {"grid": {"orb.base_minutes": [5, 15, 30]}}}
    with pytest.raises(JobRejected) as combos:
        service.submit(runs, sweep, Limits(combinations=2))
    assert combos.value.status == 429 and "3 combinations" in str(combos.value)
    with pytest.raises(JobRejected) as preset:
        service.submit(runs, {**SMALL, "preset": "no_such_preset"})
    assert preset.value.status == 422 and preset.value.loc == ("body", "preset")
    job = service.submit(runs, {**SMALL, "preset": "zarattini_2023", "mode": "monte_carlo", "mc_paths": 50})
    assert "--monte-carlo" in job.argv and "--config" in job.argv
    assert service.cancel(runs, job.id).state == State.CANCELLED
    assert list((runs / ".orb" / "jobs").iterdir()) == [runs / ".orb" / "jobs" / job.id]


def test_jobs_on_a_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    from orb.jobs.pool import dispatch

    runs = tmp_path / "runs"
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:
        stop_event = threading.Event()
        thread = threading.Thread(target=dispatch, args=(runs, cluster.scheduler_address, stop_event))
        thread.start()
        try:
            small = service.submit(runs, SMALL)
            long_job = service.submit(runs, LONG)
            wait_for(lambda: service.get_job(runs, long_job.id).stage in ("loading", "backtest"), 120)
            service.cancel(runs, long_job.id)
            cancelled = wait_for(
                lambda: (j := service.get_job(runs, long_job.id)).state in FINAL and j, timeout=10
            )
            done = wait_for(lambda: (j := service.get_job(runs, small.id)).state in FINAL and j, timeout=120)
        finally:
            stop_event.set()
            thread.join(timeout=30)
    assert done.state == State.SUCCEEDED and done.worker.startswith("dask:")
    assert cancelled.state == State.CANCELLED
    assert visible(runs) == [done.run_id] and hidden_temp(runs) == []


def test_sweep_and_walk_forward_jobs_write_research_runs(tmp_path):
    runs = tmp_path / "runs"
    grid = {"grid": {"orb.base_minutes": [5, 15]}}
    sweep = service.submit(runs, {**SMALL, "symbols": ["SPY"], "mode": "sweep", "sweep": grid})
    wf = service.submit(
        runs,
        {**SMALL, "symbols": ["SPY"], "mode": "walk_forward", "sweep": grid, "wf_train": 10, "wf_test": 5},
    )
    worker = start_worker(runs, "--max-jobs", "2")
    try:
        assert worker.wait(timeout=300) == 0
    finally:
        stop(worker)
    done = {job.id: job for job in service.list_jobs(runs)}
    assert done[sweep.id].state == State.SUCCEEDED and done[wf.id].state == State.SUCCEEDED, done
    modes = {
        job_id: json.loads((runs / job.run_id / "manifest.json").read_text())["mode"]
        for job_id, job in done.items()
    }
    assert modes == {sweep.id: "sweep", wf.id: "walk_forward"}
    assert (runs / done[wf.id].run_id / "wf_folds.parquet").is_file()
