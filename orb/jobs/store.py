"""Job records in SQLite (stdlib sqlite3, WAL) at `<runs>/.orb/jobs.sqlite`; they survive restarts.

States: queued -> running -> succeeded | failed | cancelled (a queued job may also be cancelled).
`claim` is one statement inside an IMMEDIATE transaction, so two workers never take the same job.
A running job whose heartbeat is older than `stale_seconds`, or whose worker process on this host is
gone, is marked failed with the reason (`reap`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

HIDDEN = ".orb"
_READY: set[Path] = set()  # databases this process has already created or checked
STALE_SECONDS = float(os.environ.get("ORB_JOB_STALE_SECONDS", "15"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    mode TEXT NOT NULL,
    request TEXT NOT NULL,
    argv TEXT NOT NULL,
    symbols TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT,
    symbol TEXT,
    run_id TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (State.SUCCEEDED, State.FAILED, State.CANCELLED)


@dataclass(frozen=True)
class Job:
    """One row of `jobs`."""

    id: str
    state: State
    mode: str
    request: dict[str, Any]
    argv: list[str]
    symbols: list[str]
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker: str | None
    host: str | None
    pid: int | None
    progress: float
    stage: str | None
    symbol: str | None
    run_id: str | None
    error: str | None
    cancel_requested: bool
    attempts: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data.pop("seq")
        for key in ("request", "argv", "symbols"):
            data[key] = json.loads(data[key])
        return cls(
            **{**data, "state": State(data["state"]), "cancel_requested": bool(data["cancel_requested"])}
        )


def jobs_dir(runs_dir: Path) -> Path:
    """The hidden area of a runs folder holding the job database and each job's folder."""
    return Path(runs_dir) / HIDDEN


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """The job table of one runs folder."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.root = jobs_dir(self.runs_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "jobs.sqlite"
        if self.path not in _READY or not self.path.exists():
            self._create()
            _READY.add(self.path)

    def _create(self) -> None:
        """Switch the database to WAL and create the table (once per process; retried while another
        process does the same, as SQLite answers "locked" to a concurrent journal-mode change)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with self._connect() as db:
                    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def job_folder(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def count(self, state: State) -> int:
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]

    def submit(
        self, job_id: str, mode: str, request: dict, argv: list[str], symbols: list[str], max_queued: int
    ) -> Job | None:
        """Insert a queued job; None when `max_queued` jobs are already waiting (checked atomically)."""
        with self._write() as db:
            waiting = db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if waiting >= max_queued:
                return None
            db.execute(
                "INSERT INTO jobs (id, state, mode, request, argv, symbols, created_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, mode, json.dumps(request), json.dumps(argv), json.dumps(symbols), time.time()),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        self.reap()
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(self, state: State | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs newest first, optionally of one state."""
        self.reap()
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def claim(self, worker: str, pid: int | None = None) -> Job | None:
        """Take the oldest queued job (one transaction); None when the queue is empty."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "UPDATE jobs SET state = 'running', worker = ?, host = ?, pid = ?, started_at = ?, "
                "heartbeat_at = ?, attempts = attempts + 1, stage = 'starting', error = NULL "
                "WHERE seq = (SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1) "
                "RETURNING id",
                (worker, socket.gethostname(), pid if pid is not None else os.getpid(), now, now),
            ).fetchone()
        return self.get(row["id"]) if row else None

    def adopt(self, job_id: str, claimed_by: str, worker: str) -> Job | None:
        """Hand a running job claimed by a dispatcher to the process that runs it (Dask)."""
        with self._write() as db:
            row = db.execute(
                "UPDATE jobs SET worker = ?, host = ?, pid = ?, heartbeat_at = ? "
                "WHERE id = ? AND worker = ? AND state = 'running' RETURNING id",
                (worker, socket.gethostname(), os.getpid(), time.time(), job_id, claimed_by),
            ).fetchone()
        return self.get(job_id) if row else None

    def heartbeat(
        self, job_id: str, worker: str, progress: float, stage: str | None, symbol: str | None
    ) -> bool:
        """Record liveness and progress; True when a cancel was requested (or the job was taken away)."""
        with self._write() as db:
            row = db.execute(
                "UPDATE jobs SET heartbeat_at = ?, progress = max(progress, ?), stage = ?, symbol = ? "
                "WHERE id = ? AND worker = ? AND state = 'running' RETURNING cancel_requested",
                (time.time(), progress, stage, symbol, job_id, worker),
            ).fetchone()
        return row is None or bool(row["cancel_requested"])

    def finish(
        self, job_id: str, worker: str, state: State, run_id: str | None = None, error: str | None = None
    ) -> None:
        """Move a running job of `worker` to a final state (or back to queued)."""
        done = state in FINAL
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, run_id = ?, error = ?, finished_at = ?, "
                "progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END, "
                "stage = CASE WHEN ? THEN ? ELSE 'queued' END "
                "WHERE id = ? AND worker = ? AND state = 'running'",
                (
                    state,
                    run_id,
                    error,
                    time.time() if done else None,
                    state,
                    done,
                    str(state),
                    job_id,
                    worker,
                ),
            )

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask the worker of a running job to stop. None if unknown."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, stage = 'cancelled' "
                "WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get(job_id)

    def reap(self, stale_seconds: float = STALE_SECONDS) -> list[str]:
        """Fail running jobs whose worker died; return their ids."""
        now = time.time()
        host = socket.gethostname()
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, worker, host, pid, heartbeat_at FROM jobs WHERE state = 'running'"
            ).fetchall()
        dead = {}
        for row in rows:
            silent = now - (row["heartbeat_at"] or 0)
            if row["host"] == host and row["pid"] and not _alive(row["pid"]):
                dead[row["id"]] = (row["worker"], f"worker {row['worker']} died while running the job")
            elif silent > stale_seconds:
                dead[row["id"]] = (
                    row["worker"],
                    f"worker {row['worker']} sent no heartbeat for {silent:.0f} s (presumed dead)",
                )
        for job_id, (worker, reason) in dead.items():
            self.finish(job_id, worker, State.FAILED, error=reason)
        return list(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead too
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
