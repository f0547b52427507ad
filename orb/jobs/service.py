"""Job functions shared by the HTTP routes and the dashboard (called in-process)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from orb.jobs.request import JobRejected, JobRequest, Limits, prepare
from orb.jobs.store import Job, JobStore, State


def submit(runs_dir: Path, request: JobRequest | dict[str, Any], limits: Limits | None = None) -> Job:
    """Validate and queue a job; JobRejected (403/422/429) when it cannot run."""
    req = request if isinstance(request, JobRequest) else JobRequest.model_validate(request)
    limits = limits or Limits.from_env()
    jobs = JobStore(runs_dir)
    if jobs.count(State.QUEUED) >= limits.queued:
        raise JobRejected(429, ("body",), f"{limits.queued} jobs are already queued (the limit); retry later")
    job_id = jobs.new_id()
    folder = jobs.job_folder(job_id)
    try:
        prepared = prepare(req, folder, jobs.runs_dir, limits)
        job = jobs.submit(
            job_id,
            str(req.mode),
            req.model_dump(mode="json", exclude_defaults=True),
            prepared.argv,
            list(prepared.symbols),
            limits.queued,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if job is None:
        shutil.rmtree(folder, ignore_errors=True)
        raise JobRejected(429, ("body",), f"{limits.queued} jobs are already queued (the limit); retry later")
    return job


def list_jobs(runs_dir: Path, state: State | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
    """Jobs newest first."""
    return JobStore(runs_dir).list(state, limit, offset)


def get_job(runs_dir: Path, job_id: str) -> Job | None:
    return JobStore(runs_dir).get(job_id)


def cancel(runs_dir: Path, job_id: str) -> Job | None:
    """Cancel a queued job now, or ask a running one to stop (its worker kills it within ~0.25 s)."""
    return JobStore(runs_dir).cancel(job_id)
