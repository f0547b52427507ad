"""Research run folders written by the real runner, shared by the research API and dashboard tests.

One runs folder per pytest session (`research_runs(base)` runs the CLI only the first time): a sweep
(SPY and QQQ, four swept keys, invalid combinations), a walk-forward with Monte Carlo of its
out-of-sample trades, and a backtest with Monte Carlo by session. Small synthetic ranges keep it to
a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# 3 x 2 x 2 x 2 = 24 combinations; trade.t1_r 2.0 breaks t1_r < t2_r (1.5), so 12 are invalid.
SWEEP_YAML = """\
grid:
  orb.base_minutes: [5, 15, 30]
  costs.slippage_per_share: [0.0, 0.05]
  trade.stop_mode: [or_opposite, atr_capped]
  trade.t1_r: [1.0, 2.0]
"""
WF_YAML = """\
grid:
  orb.base_minutes: [5, 15, 30]
  costs.slippage_per_share: [0.0, 0.05]
"""
HALF_YEAR = ("--start", "2024-01-02", "--end", "2024-06-28")


def _run(runs_dir: Path, *args: str) -> None:
    command = [sys.executable, str(REPO / "run_backtest.py"), "--synthetic", "--output-dir", str(runs_dir)]
    done = subprocess.run([*command, "-q", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"run_backtest.py failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")


def _named(runs_dir: Path, tag: str) -> Path:
    (found,) = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.endswith(f"_{tag}")]
    return found


def research_runs(base: Path) -> dict[str, Path]:
    """{"runs": the runs folder, "sweep", "wf", "mc": the run folders} (created once under `base`)."""
    runs_dir = base / "research" / "runs"
    if not (runs_dir / "latest").is_file():
        runs_dir.mkdir(parents=True, exist_ok=True)
        sweep_file, wf_file = base / "research" / "sweep.yaml", base / "research" / "wf.yaml"
        sweep_file.write_text(SWEEP_YAML, encoding="utf-8")
        wf_file.write_text(WF_YAML, encoding="utf-8")
        common = ("--workers", "1")
        _run(runs_dir, "--symbols", "SPY", "QQQ", *HALF_YEAR, "--sweep", str(sweep_file), *common,
             "--run-name", "sweep")  # fmt: skip
        _run(runs_dir, "--symbols", "SPY", *HALF_YEAR, "--sweep", str(wf_file), "--walk-forward",
             "--wf-train", "40", "--wf-test", "20", "--monte-carlo", "300", "--seed", "7", *common,
             "--run-name", "wf")  # fmt: skip
        _run(runs_dir, "--symbols", "SPY", "--start", "2024-01-02", "--end", "2024-03-28",
             "--monte-carlo", "250", "--mc-by-session", "--mc-dd", "3", "6", "--run-name", "mc")  # fmt: skip
    return {
        "runs": runs_dir,
        "sweep": _named(runs_dir, "sweep"),
        "wf": _named(runs_dir, "wf"),
        "mc": _named(runs_dir, "mc"),
    }
