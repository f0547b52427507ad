"""API speed: requests/s and p50/p99 latency over HTTP against a real `python api_server.py` process.

    python benchmarks/bench_api.py [--requests 500] [--runs-dir DIR] [--scale-trades 100000]

Without --runs-dir, the runner writes a 3 symbols x 1 year synthetic run (SPY QQQ IWM, 2024) into a
temp folder. --scale-trades also serves a copy of that run whose all_trades.parquet is the real trades
tiled to N rows (new trade ids, re-hashed manifest): a stand-in for a very large run. One client,
sequential keep-alive requests after a warm-up; the server is one uvicorn worker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def make_run(runs_dir: Path) -> Path:
    command = [sys.executable, str(REPO / "run_backtest.py"), "--symbols", "SPY", "QQQ", "IWM", "--synthetic"]
    command += ["--start", "2024-01-02", "--end", "2024-12-31", "--output-dir", str(runs_dir), "--quiet"]
    subprocess.run(command, cwd=runs_dir.parent, check=True, capture_output=True)
    return runs_dir / (runs_dir / "latest").read_text().strip()


def scaled_copy(run: Path, runs_dir: Path, rows: int) -> Path:
    """A copy of `run` whose all_trades.parquet holds `rows` trades (the real ones tiled)."""
    target = runs_dir / f"{run.name}_x{rows}"
    shutil.copytree(run, target)
    trades = pd.read_parquet(run / "all_trades.parquet")
    tiled = pd.concat([trades] * (rows // len(trades) + 1), ignore_index=True).iloc[:rows]
    tiled = tiled.assign(trade_id=[f"{s}-{i:07d}" for i, s in enumerate(tiled["symbol"])])
    tiled.to_parquet(target / "all_trades.parquet", index=False, compression="zstd")
    manifest = json.loads((target / "manifest.json").read_text())
    digest = hashlib.sha256((target / "all_trades.parquet").read_bytes()).hexdigest()
    manifest.update(run_id=target.name, files={**manifest["files"], "all_trades.parquet": digest})
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(runs_dir: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "api_server.py", "--port", str(port), "--runs-dir", str(runs_dir)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the API server did not start")


def measure(client: httpx.Client, url: str, requests: int) -> dict[str, float]:
    for _ in range(max(10, requests // 20)):
        client.get(url).raise_for_status()
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(url)
        latencies.append(time.perf_counter() - t0)
        response.raise_for_status()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="timed requests per endpoint")
    parser.add_argument("--runs-dir", type=Path, help="serve this runs folder (its newest run)")
    parser.add_argument("--scale-trades", type=int, default=0, help="also test a run tiled to N trades")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp) / "runs"
        run = (
            make_run(runs_dir)
            if args.runs_dir is None
            else runs_dir / (runs_dir / "latest").read_text().strip()
        )
        runs = [run]
        if args.scale_trades:
            runs.append(scaled_copy(run, runs_dir, args.scale_trades))
        port = free_port()
        process = serve(runs_dir, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                for one in runs:
                    total = client.get("/api/trades", params={"run_id": one.name, "limit": 1}).json()["total"]
                    longs = client.get("/api/trades", params={"run_id": one.name, "side": "long"}).json()[
                        "total"
                    ]
                    print(f"\n{one.name}: {total} trades, {args.requests} requests per endpoint")
                    print(f"  {'endpoint':<44} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'bytes':>8}")
                    for path in (
                        "/api/trades?limit=500",
                        f"/api/trades?side=long&limit=500&offset={max(longs - 500, 0)}",
                        "/api/metrics/core",
                        "/api/equity?max_points=500",
                        "/api/runs",
                    ):
                        url = (
                            path
                            if path == "/api/runs"
                            else f"{path}{'&' if '?' in path else '?'}run_id={one.name}"
                        )
                        r = measure(client, url, args.requests)
                        print(
                            f"  {path:<44} {r['rps']:>7.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['bytes']:>8}"
                        )
        finally:
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
