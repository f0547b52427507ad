"""HTTP routes for jobs: POST/GET /api/jobs, GET/DELETE /api/jobs/{job_id}; the API's worker pool.

Write routes (POST, DELETE) need the API key when ORB_API_KEY is set (the app-wide guard) and are
refused with 403 on a non-loopback bind when no key is set.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel

from orb.jobs import service
from orb.jobs.pool import start_pool, stop_pool, worker_count
from orb.jobs.request import JobRejected, JobRequest
from orb.jobs.store import FINAL, Job, State

_REFUSED = {
    403: {"description": "A path outside ORB_DATA_DIR, or a write on a non-loopback bind without a key."}
}
_SUBMIT_ERRORS = {
    **_REFUSED,
    422: {"description": "Bad input; `loc` is the key path (e.g. body.overrides.orb.base_minutes)."},
    429: {"description": "A limit: queued jobs, symbols, sessions or sweep combinations per job."},
    503: {"description": "The job database in the runs folder cannot be opened."},
}
_UNKNOWN = {404: {"description": "No job with this id."}}
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="job id (32 hex digits)")]


class JobInfo(BaseModel):
    """A job's state, progress and result."""

    job_id: str
    state: State
    mode: str
    symbols: list[str]
    progress: float
    stage: str | None
    symbol: str | None
    run_id: str | None
    error: str | None
    cancel_requested: bool
    created: str
    started: str | None
    finished: str | None
    queue_seconds: float | None
    run_seconds: float | None
    worker: str | None
    attempts: int
    request: dict[str, Any]


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")


def job_info(job: Job) -> JobInfo:
    """The public view of a job record."""
    run_end = job.finished_at
    return JobInfo(
        job_id=job.id,
        state=job.state,
        mode=job.mode,
        symbols=job.symbols,
        progress=round(job.progress, 4),
        stage=job.stage,
        symbol=job.symbol,
        run_id=job.run_id,
        error=job.error,
        cancel_requested=job.cancel_requested,
        created=_iso(job.created_at) or "",
        started=_iso(job.started_at),
        finished=_iso(job.finished_at),
        queue_seconds=None if job.started_at is None else round(job.started_at - job.created_at, 3),
        run_seconds=None if job.started_at is None or run_end is None else round(run_end - job.started_at, 3),
        worker=job.worker,
        attempts=job.attempts,
        request=job.request,
    )


def write_guard(api_key: str | None):
    """A dependency refusing writes on a non-loopback bind when no API key is configured."""

    def guard(request: Request) -> None:
        if api_key:
            return
        host = (request.scope.get("server") or ("127.0.0.1", 0))[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise HTTPException(
                403, f"write routes are refused on a non-loopback bind ({host}) without ORB_API_KEY; set one"
            )

    return guard


def rejected(exc: JobRejected) -> JSONResponse:
    """JobRejected as JSON: 422 in FastAPI's list form (with the key path), else a plain detail."""
    if exc.status == 422:
        detail: Any = [{"type": "value_error", "loc": list(exc.loc), "msg": str(exc)}]
    else:
        detail = str(exc)
    return JSONResponse(status_code=exc.status, content={"detail": detail})


def _store_error(exc: Exception) -> HTTPException:
    return HTTPException(
        503, f"the job database in the runs folder is unavailable ({exc}); check permissions"
    )


def jobs_router(runs_dir: Path, api_key: str | None, workers: int | None = None) -> APIRouter:
    """The job routes over `runs_dir`; its lifespan runs `workers` local workers (ORB_JOB_WORKERS)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            pool = start_pool(runs_dir, worker_count() if workers is None else workers)
        except (OSError, sqlite3.Error) as exc:  # a read-only runs folder: the read API still serves
            logger.warning(f"no job workers: the job database in {runs_dir} cannot be opened ({exc})")
            pool = []
        try:
            yield
        finally:
            stop_pool(pool)

    router = APIRouter(prefix="/api/jobs", tags=["jobs"], lifespan=lifespan)
    writes = [Depends(write_guard(api_key))]

    @router.post(
        "",
        status_code=202,
        response_model=JobInfo,
        dependencies=writes,
        responses=_SUBMIT_ERRORS,
        summary="Queue a job",
    )
    def submit(body: JobRequest, response: Response) -> JobInfo | JSONResponse:
        """Validate the request like the CLI would and queue it; 403 path outside ORB_DATA_DIR, 422 bad
        input (the key path in `loc`), 429 a limit (queued jobs, symbols, sessions, sweep combinations)."""
        try:
            job = service.submit(runs_dir, body)
        except JobRejected as exc:
            return rejected(exc)
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(exc) from None
        response.headers["Location"] = f"/api/jobs/{job.id}"
        return job_info(job)

    @router.get("", response_model=list[JobInfo], summary="Jobs, newest first")
    def jobs(
        state: State | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[JobInfo]:
        try:
            return [job_info(j) for j in service.list_jobs(runs_dir, state, limit, offset)]
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(exc) from None

    @router.get("/{job_id}", response_model=JobInfo, responses=_UNKNOWN, summary="One job")
    def job(job_id: JobId) -> JobInfo:
        try:
            found = service.get_job(runs_dir, job_id)
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(exc) from None
        if found is None:
            raise HTTPException(404, f"no job {job_id}; list them with GET /api/jobs")
        return job_info(found)

    @router.delete(
        "/{job_id}",
        response_model=JobInfo,
        dependencies=writes,
        responses={
            **_REFUSED,
            **_UNKNOWN,
            202: {"description": "Cancel requested"},
            409: {"description": "Already over."},
        },
        summary="Cancel a job",
    )
    def cancel(job_id: JobId, response: Response) -> JobInfo:
        """A queued job is cancelled at once (200); a running one stops within a second or two (202)."""
        try:
            before = service.get_job(runs_dir, job_id)
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(exc) from None
        if before is None:
            raise HTTPException(404, f"no job {job_id}; list them with GET /api/jobs")
        if before.state in FINAL:
            raise HTTPException(409, f"job {job_id} already {before.state}; nothing to cancel")
        after = service.cancel(runs_dir, job_id) or before
        response.status_code = 200 if after.state in FINAL else 202
        return job_info(after)

    return router
