"""Real server processes: `python api_server.py` and `uvicorn api_server:app` on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from run_fixtures import REPO, runner_run

import api_server


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    return runner_run(tmp_path_factory.getbasetemp() / "real" / "runs")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early ({process.returncode}): {process.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not answer /health within 30 s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()  # the pipe is ours to close (an open one is a ResourceWarning)


def _raw_get(port: int, target: str) -> tuple[int, str]:
    """A request line sent byte for byte, so the server (not a client library) sees any `..`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("ORB_API_KEY", "ORB_CORS_ORIGINS", "ORB_RUNS_DIR")
    }
    return {**env, **extra}


def test_python_api_server_serves_the_runs_folder(real_run, tmp_path):
    (tmp_path / "secret.txt").write_text("TOPSECRET-uvicorn")
    port = _free_port()
    command = [sys.executable, "api_server.py", "--host", "127.0.0.1", "--port", str(port)]
    process = _serve([*command, "--runs-dir", str(real_run.parent)], port, _env())
    try:
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/health").json()
        assert health == {"status": "ok", "runs_dir": str(real_run.parent.resolve()), "runs": 1}
        runs = httpx.get(f"{base}/api/runs").json()
        assert [r["run_id"] for r in runs] == [real_run.name]
        trades = httpx.get(f"{base}/api/trades", params={"run_id": real_run.name, "limit": 2}).json()
        aggregate = json.loads((real_run / "metrics.json").read_text())["aggregate"]
        assert trades["total"] == aggregate["total_trades"] and len(trades["trades"]) == 2
        assert httpx.get(f"{base}/api/metrics/core").json()["metrics"] == aggregate
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "ORB backtest results API"
        for target in (
            "/api/runs/../../secret.txt",
            "/api/runs/..%2F..%2Fsecret.txt",
            "/api/config?run_id=..%2F..%2Fsecret.txt",
            "/api/trades?run_id=%00",
        ):
            status, body = _raw_get(port, target)
            assert status in (404, 422), (target, status, body)
            assert "TOPSECRET" not in body
    finally:
        _stop(process)
    assert process.returncode is not None


def test_uvicorn_command_with_env_runs_dir_and_key(real_run):
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "api_server:app", "--host", "127.0.0.1", "--port", str(port)]
    process = _serve(command, port, _env(ORB_RUNS_DIR=str(real_run.parent), ORB_API_KEY="k-123"))
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/runs").status_code == 401
        ok = httpx.get(f"{base}/api/runs", headers={"X-API-Key": "k-123"})
        assert ok.status_code == 200 and ok.json()[0]["run_id"] == real_run.name
    finally:
        _stop(process)


def test_main_defaults_to_loopback_8000(monkeypatch, real_run):
    calls = []
    monkeypatch.setattr(api_server.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert api_server.main(["--runs-dir", str(real_run.parent)]) == 0
    app, kwargs = calls[0]
    assert kwargs == {"host": "127.0.0.1", "port": 8000}
    health = TestClient(app).get("/health").json()
    assert health["runs_dir"] == str(real_run.parent.resolve()) and health["runs"] == 1
