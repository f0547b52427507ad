"""Helpers shared by the tests that drive `run_backtest.main` in-process."""

from __future__ import annotations

import os
from pathlib import Path

import run_backtest


def run_cli(tmp_path: Path, *args: str) -> tuple[int, Path]:
    """Run the CLI in `tmp_path` (its log file lands there); return (exit code, output dir)."""
    out = tmp_path / "runs"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = run_backtest.main([*args, "--output-dir", str(out)])
    finally:
        os.chdir(cwd)
    return code, out


def visible_runs(out: Path) -> list[Path]:
    """Published run folders (hidden temp folders excluded), sorted by name."""
    if not out.exists():
        return []
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def one_error_line(text: str) -> str:
    """The single `error:` line of a failed run's console output (and no traceback)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]
