"""The "New backtest" page: a job form validated as you type, and the jobs panel (progress, cancel, open).

Jobs go through `orb.jobs.service` in-process, exactly as `POST /api/jobs` does: the form is checked
with `orb.jobs.request.prepare` (the same pydantic models and CLI parser) in a throw-away folder, and
Submit calls `service.submit`. Workers are the API server's pool or `python -m orb.worker`.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import ValidationError

from orb.dashboard import access
from orb.errors import OrbError
from orb.jobs import service
from orb.jobs.request import CONFIGS_DIR, DATA_ENV, JobRejected, JobRequest, Limits, Mode, Source, prepare
from orb.jobs.store import FINAL, Job, State, jobs_dir
from orb.safeyaml import parse_yaml

PAGE = "New backtest"
RUN_PAGE = "Run detail"  # the page radio's value that shows one run (streamlit_app.py)
POLL_SECONDS = 1.5
SHOWN_JOBS = 20
NO_PRESET = "(defaults)"
MODE_LABELS = {
    Mode.BACKTEST: "backtest",
    Mode.SWEEP: "sweep",
    Mode.WALK_FORWARD: "walk-forward",
    Mode.MONTE_CARLO: "Monte Carlo",
}
STATE_ICONS = {  # Material icons: emoji fonts are often missing on servers
    State.QUEUED: ":gray[:material/schedule:]",
    State.RUNNING: ":blue[:material/play_circle:]",
    State.SUCCEEDED: ":green[:material/check_circle:]",
    State.FAILED: ":red[:material/error:]",
    State.CANCELLED: ":gray[:material/cancel:]",
}


def config_names() -> tuple[list[str], list[str]]:
    """(presets, sweep files) in configs/: a file whose name starts with `sweep` is a sweep file."""
    stems = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
    return [s for s in stems if not s.startswith("sweep")], [s for s in stems if s.startswith("sweep")]


def parse_symbols(text: str) -> list[str]:
    """Symbols typed with spaces or commas between them."""
    return text.replace(",", " ").split()


def parse_overrides(text: str) -> dict[str, Any]:
    """The overrides box as a mapping (empty text: none); ConfigError naming the box when it is not one."""
    if not text.strip():
        return {}
    value = parse_yaml(text, "the overrides box")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JobRejected(
            422,
            ("body", "overrides"),
            "the overrides box must hold a YAML mapping, e.g. orb: {base_minutes: 5}",
        )
    return value


def where(loc: tuple) -> str:
    """A key path for a message: body.overrides.orb.base_minutes -> overrides.orb.base_minutes."""
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "the request"


def check(body: dict[str, Any], runs_dir: Path) -> tuple[JobRequest | None, JobRejected | None]:
    """The validated request, or the rejection `POST /api/jobs` would give (nothing is written to the
    runs folder: the config files of the check go to a temporary folder)."""
    try:
        req = JobRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, JobRejected(422, ("body", *first["loc"]), first["msg"].removeprefix("Value error, "))
    try:
        with tempfile.TemporaryDirectory(prefix="orb-job-check-") as folder:
            prepare(req, Path(folder), Path(runs_dir), Limits.from_env())
    except JobRejected as exc:
        return req, exc
    except OrbError as exc:
        return req, JobRejected(422, ("body",), str(exc))
    return req, None


def show(runs_dir: Path) -> None:
    """The page: the form, then the jobs panel."""
    st.header("New backtest")
    st.caption(
        "Jobs run in the API server's workers (`python api_server.py`) or in "
        f"`python -m orb.worker --runs-dir {runs_dir}`; each writes a run folder like the CLI does."
    )
    form, panel = st.columns([3, 2], gap="large")
    with form:
        show_form(runs_dir)
    with panel:
        jobs_panel(runs_dir)


def show_form(runs_dir: Path) -> None:
    presets, sweeps = config_names()
    mode = st.selectbox("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="job_mode")
    symbols = st.text_input("Symbols", "SPY QQQ", key="job_symbols", help="spaces or commas between them")
    first, last = st.columns(2)
    start = first.date_input("First session", date(2024, 1, 2), key="job_start")
    end = last.date_input("Last session", date(2024, 3, 28), key="job_end")
    source = st.selectbox("Data source", list(Source), format_func=str, key="job_source")
    body: dict[str, Any] = {
        "mode": str(mode),
        "symbols": parse_symbols(symbols),
        "start": start.isoformat() if isinstance(start, date) else None,
        "end": end.isoformat() if isinstance(end, date) else None,
        "source": str(source),
    }
    if source == Source.FILE:
        root = os.environ.get(DATA_ENV)
        st.caption(f"A file or folder under {DATA_ENV} ({root})" if root else f"{DATA_ENV} is not set")
        body["data_path"] = st.text_input("Data path", key="job_data_path") or None
    preset = st.selectbox("Preset (configs/)", [NO_PRESET, *presets], key="job_preset")
    if preset != NO_PRESET:
        body["preset"] = preset
    if mode in (Mode.SWEEP, Mode.WALK_FORWARD):
        body["sweep"] = st.selectbox("Sweep file (configs/)", sweeps, key="job_sweep")
    if mode == Mode.MONTE_CARLO:
        body["mc_paths"] = int(st.number_input("Monte Carlo paths", 1, 100_000, 1000, key="job_mc_paths"))
    text = st.text_area(
        "Config overrides (YAML)",
        key="job_overrides",
        placeholder="orb:\n  base_minutes: 5",
        help="Nested config keys over the preset, checked with the same models as the CLI",
    )
    try:
        body["overrides"] = parse_overrides(text)
        req, problem = check(body, runs_dir)
    except OrbError as exc:
        req, problem = None, JobRejected(422, ("body", "overrides"), str(exc))
    if problem is not None and tuple(problem.loc[:2]) == ("body", "overrides"):
        st.error(str(problem), icon=":material/error:")
    elif text.strip():
        st.caption(":green[Overrides are valid]")
    if problem is not None and tuple(problem.loc[:2]) != ("body", "overrides"):
        st.error(f"{where(problem.loc)}: {problem}", icon=":material/error:")
    refusal = access.write_refusal()
    if refusal is not None:
        st.info(refusal, icon=":material/lock:")
    ready = problem is None and refusal is None
    if st.button("Submit", type="primary", disabled=not ready, key="job_submit") and req and ready:
        submit(runs_dir, req)
    notice = st.session_state.pop("job_notice", None)
    if notice:
        st.success(notice)


def submit(runs_dir: Path, req: JobRequest) -> None:
    """Queue the job; the outcome is shown under the button."""
    try:
        job = service.submit(runs_dir, req)
    except JobRejected as exc:
        st.error(f"{where(exc.loc)}: {exc}")
        return
    except (OSError, sqlite3.Error) as exc:
        st.error(f"The job database in {runs_dir} cannot be opened ({exc}); check its permissions")
        return
    st.session_state["job_notice"] = f"Queued job {job.id} ({', '.join(job.symbols)})"
    st.rerun()


def jobs_panel(runs_dir: Path) -> None:
    """The jobs list; it polls every POLL_SECONDS while a job is queued or running."""
    jobs = read_jobs(runs_dir)
    active = jobs is not None and any(j.state not in FINAL for j in jobs)
    st.fragment(run_every=POLL_SECONDS if active else None)(_panel)(runs_dir, active)


def read_jobs(runs_dir: Path) -> list[Job] | None:
    """Newest jobs first; None while the runs folder has no job database (nothing is created)."""
    if not (jobs_dir(runs_dir) / "jobs.sqlite").is_file():
        return None
    return service.list_jobs(runs_dir, limit=SHOWN_JOBS)


def _panel(runs_dir: Path, was_active: bool) -> None:
    if st.session_state.pop("open_run_pending", False) and st.session_state.get("page") == RUN_PAGE:
        st.rerun()  # "Open run" was pressed: the whole app reruns to show the run page
    st.subheader("Jobs")
    st.button(
        "Refresh jobs",
        icon=":material/refresh:",
        key="jobs_refresh",
        help=f"The list updates by itself every {POLL_SECONDS:g} s while a job is queued or running",
    )
    try:
        jobs = read_jobs(runs_dir)
    except (OSError, sqlite3.Error) as exc:
        st.error(f"The job database in {runs_dir} cannot be read ({exc}); check its permissions")
        return
    if not jobs:
        st.info("No jobs yet: fill in the form and press Submit.")
        return
    if was_active and all(j.state in FINAL for j in jobs):
        st.rerun()  # the last job ended: stop polling and show its run in the picker
    for job in jobs:
        show_job(runs_dir, job)


def show_job(runs_dir: Path, job: Job) -> None:
    with st.container(border=True, key=f"job_{job.id}"):
        title = f"{STATE_ICONS[job.state]} **{job.state}** · {job.mode} · {', '.join(job.symbols)}"
        st.markdown(title)
        st.caption(f"job {job.id} · submitted {datetime.fromtimestamp(job.created_at):%Y-%m-%d %H:%M:%S}")
        if job.state == State.RUNNING:
            stage = " · ".join(p for p in (job.stage, job.symbol) if p) or "running"
            st.progress(min(max(job.progress, 0.0), 1.0), text=f"{stage} ({job.progress:.0%})")
            if job.cancel_requested:
                st.caption("Cancel requested; stopping")
        if job.state == State.FAILED and job.error:
            st.error(job.error)
        can_cancel = job.state in (State.QUEUED, State.RUNNING) and not job.cancel_requested
        if can_cancel:
            st.button(
                "Cancel",
                key=f"cancel_{job.id}",
                icon=":material/stop:",
                disabled=access.write_refusal() is not None,
                on_click=cancel,
                args=(runs_dir, job.id),
            )
        if job.state == State.SUCCEEDED and job.run_id:
            st.button(
                f"Open run {job.run_id}",
                key=f"open_{job.id}",
                icon=":material/open_in_new:",
                on_click=open_run,
                args=(job.run_id,),
            )


def cancel(runs_dir: Path, job_id: str) -> None:
    """Button callback: ask the job to stop (the key is checked again: a callback runs on its own)."""
    if access.write_refusal() is None:
        service.cancel(runs_dir, job_id)


def open_run(run_id: str) -> None:
    """Button callback: show `run_id` on the run page (set before the picker is drawn), then rerun the
    whole app (a button inside a fragment reruns only the fragment)."""
    st.session_state["page"] = RUN_PAGE
    st.session_state["run_picker"] = run_id
    st.session_state["open_run_pending"] = True
