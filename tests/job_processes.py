"""Real processes for the job tests: the API server (uvicorn) and `python -m orb.worker`."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SMALL = {"symbols": ["SPY", "QQQ"], "start": "2024-01-02", "end": "2024-02-09", "source": "synthetic"}
# Long enough (2 symbols x 1 year, about a second of work) that the executor's 0.25 s progress polls
# land mid-run: SMALL can start and finish between two polls.
YEAR = {**SMALL, "start": "2023-01-03", "end": "2023-12-29"}
# Long enough (4 symbols x 5 years) that a cancel or a kill lands mid-run even on a quiet machine.
LONG = {"symbols": ["SPY", "QQQ", "IWM", "DIA"], "start": "2019-01-02", "end": "2023-12-29"}
FINAL = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, **extra}
    out.pop("ORB_API_KEY", None)
    return out


@contextmanager
def api_server(runs_dir: Path, workers: int, **extra: str):
    """`python api_server.py` on a free loopback port with `workers` job workers; yields its base URL."""
    port = free_port()
    command = [sys.executable, "api_server.py", "--runs-dir", str(runs_dir), "--port", str(port)]
    proc = subprocess.Popen(
        command, cwd=REPO, env=env(ORB_JOB_WORKERS=str(workers), **extra), stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"api_server.py exited early ({proc.returncode})"
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not answer /health within 30 s"
                time.sleep(0.1)
        yield base
    finally:
        stop(proc)


def start_worker(runs_dir: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "orb.worker", "--runs-dir", str(runs_dir), *args]
    return subprocess.Popen(
        command, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(check, timeout: float = 60.0, every: float = 0.1):
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def visible(runs_dir: Path) -> list[str]:
    """Published run folders (hidden ones excluded)."""
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def hidden_temp(runs_dir: Path) -> list[str]:
    return sorted(p.name for p in runs_dir.iterdir() if p.name.startswith(".tmp-"))


def file_hashes(run: Path) -> dict[str, str]:
    """SHA-256 of every file of a run folder except manifest.json and run.log (they name the run)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.iterdir())
        if p.is_file() and p.name not in ("manifest.json", "run.log")
    }
