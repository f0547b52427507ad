"""The write side of the run folder (run-format.md): atomic, hashed, byte-identical on reruns.

A run is written into a hidden `.tmp-<id>-<pid>` folder under the output directory and renamed into
place only when complete; `latest` is updated last. Stale temp folders of dead processes are swept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd

from orb.errors import OutputError

SCHEMA_VERSION = "1.1"
TMP_PREFIX = ".tmp-"
TIME_COLUMNS = ("entry_time", "exit_time", "time", "timestamp")


def ensure_writable(output_dir: Path) -> None:
    """Fail before any work when the output directory cannot hold a run (probe with a real file)."""
    probe = output_dir / f"{TMP_PREFIX}probe-{os.getpid()}"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(
            f"output directory {output_dir} is not writable ({reason}); choose another with --output-dir"
        ) from None


def base_run_id(now: datetime, run_name: str | None) -> str:
    """`backtest_YYYYMMDD_HHMMSS` in local time, with the optional tag appended."""
    run_id = now.strftime("backtest_%Y%m%d_%H%M%S")
    return f"{run_id}_{run_name}" if run_name else run_id


def sweep_stale(output_dir: Path) -> list[Path]:
    """Remove temp folders left by crashed runs (their process is gone); return what was removed."""
    removed = []
    for path in output_dir.glob(f"{TMP_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def staging(output_dir: Path, run_id: str) -> Iterator[Path]:
    """A hidden temp folder for a run; removed if the block raises (Ctrl-C included)."""
    tmp = output_dir / f"{TMP_PREFIX}{run_id}-{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot create {tmp} ({exc.strerror}); check --output-dir") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def reserve_run_id(output_dir: Path, base: str) -> str:
    """The first of `base`, `base_2`, ... not taken by a run or by a run being written."""
    for n in range(1, 1000):
        run_id = base if n == 1 else f"{base}_{n}"
        if not (output_dir / run_id).exists() and not any(output_dir.glob(f"{TMP_PREFIX}{run_id}-*")):
            return run_id
    raise OutputError(f"too many runs named {base} in {output_dir}; use --run-name")


def publish(tmp: Path, output_dir: Path, run_id: str) -> Path:
    """Rename the finished temp folder to `run_id` (or the next free suffix if another run took it in
    the meantime, fixing the manifest's run_id); then update `latest`."""
    target = output_dir / run_id
    if target.exists():
        run_id = reserve_run_id(output_dir, run_id)
        target = output_dir / run_id
        manifest_path = tmp / "manifest.json"
        write_json({**json.loads(manifest_path.read_text()), "run_id": run_id}, manifest_path)
    try:
        os.rename(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot move the run into {target} ({exc.strerror}); check --output-dir") from None
    _atomic_text(output_dir / "latest", run_id + "\n")
    return target


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet without the pandas index; the same frame gives the same bytes."""
    frame.to_parquet(path, index=False, engine="pyarrow", compression="snappy")


def write_json(data: object, path: Path) -> None:
    """Strict JSON (NaN or Infinity raise), two-space indent, trailing newline."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with times as ISO-8601 with offset (UTC)."""
    out = frame.assign(
        **{
            col: frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            for col in TIME_COLUMNS
            if col in frame and isinstance(frame[col].dtype, pd.DatetimeTZDtype)
        }
    )
    out.to_csv(path, index=False, lineterminator="\n")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def finish_manifest(tmp: Path, manifest: dict) -> None:
    """Hash every file of the folder into the manifest (the manifest and run.log excluded) and write it."""
    files = {
        p.name: sha256_file(p)
        for p in sorted(tmp.iterdir())
        if p.is_file() and p.name not in ("manifest.json", "run.log")
    }
    write_json({**manifest, "schema_version": SCHEMA_VERSION, "files": files}, tmp / "manifest.json")
