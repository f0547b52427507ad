"""Shared parts of the benchmarks: fresh-process timing, A/B alternation, medians, machine load."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARS_START, BARS_END = "2019-01-02", "2024-05-24"  # 528,390 one-minute regular-hours bars (SPY, seed 42)

# The simple ORB that tests/test_parity_backtesting_py.py runs through both engines: OR 15, stop entries at
# the OR, stop at the opposite side, one 2 R target, one trade per session, no costs, no filters.
SIMPLE_YAML = """data: {file_timezone: UTC}
orb: {min_width_atr: null, max_width_atr: null}
entry: {mode: stop, cutoff: "15:00"}
confluence: {enabled: false}
trade: {stop_mode: or_opposite, stop_buffer: 0.0, partials: false, target_r: 2.0}
governance: {max_signals_per_day: 1}
costs: {slippage_per_share: 0.0, commission_per_share: 0.0}
"""
DEFAULT_YAML = "data: {file_timezone: UTC}\n"


def load() -> str:
    """The 1-, 5- and 15-minute load averages and the core count, for the line next to each figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def timed(cmd: Sequence[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one fresh process; its output is discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} exited {code}\n{err}")
    return wall, usage.ru_maxrss / 1024


def alternate(
    cases: Mapping[str, Sequence[str]], cwd: Path, repeat: int
) -> dict[str, list[tuple[float, float]]]:
    """Run every case once per round, in turn (A B C A B C ...), `repeat` rounds; every result per case."""
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, cmd in cases.items():
            out[name].append(timed(cmd, cwd))
            print(f"    {name}: {out[name][-1][0]:.2f} s ({load()})", flush=True)
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def synthetic_parquet(path: Path) -> int:
    """Write the benchmark bars (UTC `timestamp` column) to `path`; return the bar count."""
    from orb.data.synthetic import generate_bars

    bars = generate_bars("SPY", BARS_START, BARS_END, 1, 42)
    bars.reset_index().to_parquet(path, index=False)
    return len(bars)
