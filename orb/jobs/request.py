"""A job request (pydantic, the HTTP body) and its translation into `run_backtest.py` arguments.

A job is the CLI: `prepare` validates the request with the same config models the CLI uses, writes the
merged config (and sweep file) into the job's hidden folder and returns the argv for `run_backtest.py`.
Problems raise `JobRejected` with the HTTP status (403 paths, 422 bad input, 429 limits) and a key path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from orb.config import DEFAULTS_PATH, Config, deep_merge, defaults_data
from orb.config_schema import Problem, validate
from orb.errors import OrbError

REPO = DEFAULTS_PATH.parent
CONFIGS_DIR = REPO / "configs"
DATA_ENV = "ORB_DATA_DIR"
VENDORS = ("alpaca", "massive", "databento")


class Mode(StrEnum):
    BACKTEST = "backtest"
    SWEEP = "sweep"
    WALK_FORWARD = "walk_forward"
    MONTE_CARLO = "monte_carlo"


class Source(StrEnum):
    SYNTHETIC = "synthetic"
    FILE = "file"
    YAHOO = "yahoo"
    ALPACA = "alpaca"
    MASSIVE = "massive"
    DATABENTO = "databento"


@dataclass(frozen=True)
class Limits:
    """Submission limits (env ORB_JOB_MAX_QUEUED, _MAX_SYMBOLS, _MAX_SESSIONS, _MAX_COMBINATIONS)."""

    queued: int = 100
    symbols: int = 50
    sessions: int = 2520
    combinations: int = 500

    @classmethod
    def from_env(cls) -> Limits:
        names = {
            "queued": "QUEUED",
            "symbols": "SYMBOLS",
            "sessions": "SESSIONS",
            "combinations": "COMBINATIONS",
        }
        values = {
            field: int(os.environ[f"ORB_JOB_MAX_{suffix}"])
            for field, suffix in names.items()
            if os.environ.get(f"ORB_JOB_MAX_{suffix}", "").isdigit()
        }
        return cls(**values)


class JobRejected(OrbError):
    """A job request that cannot run; `status` is the HTTP answer, `loc` the offending key path."""

    def __init__(self, status: int, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.status = status
        self.loc = loc


class JobRequest(BaseModel):
    """The body of POST /api/jobs (every field but `symbols`/`symbols_file` is optional)."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Mode.BACKTEST
    symbols: list[str] = Field(default_factory=list, description="symbols, e.g. ['SPY', 'QQQ']")
    symbols_file: str | None = Field(None, description="a text file of symbols under ORB_DATA_DIR")
    start: date | None = None
    end: date | None = None
    source: Source = Source.SYNTHETIC
    data_path: str | None = Field(None, description="source=file: a file or folder under ORB_DATA_DIR")
    preset: str | None = Field(None, description="a config name from configs/, e.g. zarattini_2023")
    overrides: dict[str, Any] = Field(default_factory=dict, description="nested config keys over the preset")
    sweep: str | dict[str, Any] | None = Field(
        None, description="sweep/walk_forward: a sweep file name from configs/ or an inline sweep mapping"
    )
    rank_by: str | None = None
    wf_train: int | None = Field(None, ge=1)
    wf_test: int | None = Field(None, ge=1)
    wf_anchored: bool = False
    mc_paths: int | None = Field(None, ge=1, le=100_000, description="Monte Carlo paths")
    mc_by_session: bool = False
    seed: int | None = None
    interval: str | None = None
    run_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Prepared:
    """What a worker needs: the CLI arguments (after `run_backtest.py`) and the job's folder."""

    argv: list[str]
    symbols: tuple[str, ...]


def _configs_file(name: str, loc: tuple[str, ...]) -> Path:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise JobRejected(422, loc, f"{name!r} is not a name from configs/ (letters, digits, '_', '-')")
    path = CONFIGS_DIR / f"{name.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        raise JobRejected(422, loc, f"no config {name!r} in configs/; known: {known}")
    return path


def data_path(text: str, loc: tuple[str, ...]) -> Path:
    """`text` (relative to ORB_DATA_DIR, or absolute) resolved with symlinks; 403 unless inside it."""
    root_text = os.environ.get(DATA_ENV)
    if not root_text:
        raise JobRejected(403, loc, f"file paths in jobs are refused: set {DATA_ENV} to the data root")
    root = Path(root_text).resolve()
    path = (root / text).resolve()
    if not path.is_relative_to(root):
        raise JobRejected(
            403, loc, f"{text!r} resolves outside {DATA_ENV} ({root}); paths must stay inside it"
        )
    if not path.exists():
        raise JobRejected(422, loc, f"{text!r} does not exist under {DATA_ENV} ({root})")
    return path


def _symbols(req: JobRequest, limits: Limits) -> tuple[str, ...]:
    from orb.data import validate_symbol

    raw: list[str] = list(req.symbols)
    if req.symbols_file:
        text = data_path(req.symbols_file, ("body", "symbols_file")).read_text(encoding="utf-8")
        raw += [w for line in text.splitlines() for w in line.split("#")[0].replace(",", " ").split()]
    if not raw:
        raise JobRejected(422, ("body", "symbols"), "give at least one symbol in symbols or symbols_file")
    out = []
    for i, sym in enumerate(raw):
        try:
            out.append(validate_symbol(sym))
        except OrbError as exc:
            raise JobRejected(422, ("body", "symbols", i), str(exc)) from None
    unique = tuple(dict.fromkeys(out))
    if len(unique) > limits.symbols:
        raise JobRejected(
            429, ("body", "symbols"), f"{len(unique)} symbols exceed the limit of {limits.symbols} per job"
        )
    return unique


def _config(req: JobRequest) -> tuple[dict[str, Any], Config]:
    """The preset deep-merged with the overrides, validated over defaults.yaml (422 names the key)."""
    user: dict[str, Any] = {}
    if req.preset:
        loaded = yaml.safe_load(_configs_file(req.preset, ("body", "preset")).read_text(encoding="utf-8"))
        user = loaded or {}
    user = deep_merge(user, req.overrides)
    cfg = validate(deep_merge(defaults_data(), user))
    if isinstance(cfg, Problem):
        loc = tuple(str(p) for p in cfg.loc)
        where = ".".join(loc) or "(top level)"
        what = "unknown config key" if cfg.type == "extra_forbidden" else cfg.msg
        raise JobRejected(422, ("body", "overrides", *loc), f"{where}: {what.removeprefix('Value error, ')}")
    return user, cfg


def _sessions(req: JobRequest, cfg: Config, limits: Limits) -> None:
    from orb.sessions import schedule

    if req.end is not None and req.start is not None and req.end < req.start:
        raise JobRejected(422, ("body", "end"), f"end {req.end} is before start {req.start}; swap them")
    if req.start is None or req.end is None:
        return  # the CLI's own defaults (at most 60 sessions), or the file's range
    count = len(schedule(req.start, req.end, cfg.session.calendar))
    if count > limits.sessions:
        raise JobRejected(
            429, ("body", "end"), f"{count} sessions exceed the limit of {limits.sessions} per job"
        )


def _sweep_file(req: JobRequest, cfg: Config, folder: Path, limits: Limits) -> Path:
    from orb.research.sweep import load_sweep

    loc = ("body", "sweep")
    if req.sweep is None:
        raise JobRejected(422, loc, f"mode {req.mode} needs a sweep (a configs/ name or a mapping)")
    if isinstance(req.sweep, str):
        path = _configs_file(req.sweep, loc)
    else:
        path = folder / "sweep.yaml"
        path.write_text(yaml.safe_dump(req.sweep, sort_keys=False), encoding="utf-8")
    try:
        count = len(load_sweep(path, cfg).combinations)
    except OrbError as exc:
        raise JobRejected(422, loc, str(exc).replace(str(path), "sweep")) from None
    if count > limits.combinations:
        raise JobRejected(
            429, loc, f"the sweep has {count} combinations, more than the limit of {limits.combinations}"
        )
    return path


def prepare(req: JobRequest, folder: Path, output_dir: Path, limits: Limits) -> Prepared:
    """Validate `req`, write its config files into `folder`, return the `run_backtest.py` argv."""
    symbols = _symbols(req, limits)
    user, cfg = _config(req)
    if req.interval is not None or req.seed is not None:
        extra = {"data": {k: v for k, v in (("interval", req.interval), ("seed", req.seed)) if v is not None}}
        problem = validate(deep_merge(cfg.to_dict(), extra))
        if isinstance(problem, Problem):
            key = "interval" if req.interval is not None else "seed"
            raise JobRejected(422, ("body", key), f"{key}: {problem.msg.removeprefix('Value error, ')}")
    _sessions(req, cfg, limits)
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["--symbols", *symbols, "--output-dir", str(output_dir), "--quiet"]
    if req.start is not None:
        argv += ["--start", req.start.isoformat()]
    if req.end is not None:
        argv += ["--end", req.end.isoformat()]
    if user:
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump(user, sort_keys=False), encoding="utf-8")
        argv += ["--config", str(config)]
    argv += _source_args(req)
    if req.interval is not None:
        argv += ["--interval", req.interval]
    if req.seed is not None:
        argv += ["--seed", str(req.seed)]
    if req.run_name:
        argv += ["--run-name", req.run_name]
    if req.mode in (Mode.SWEEP, Mode.WALK_FORWARD):
        argv += ["--sweep", str(_sweep_file(req, cfg, folder, limits)), "--workers", "1"]
        if req.rank_by:
            argv += ["--rank-by", req.rank_by]
    if req.mode == Mode.WALK_FORWARD:
        argv.append("--walk-forward")
        argv += ["--wf-train", str(req.wf_train)] if req.wf_train else []
        argv += ["--wf-test", str(req.wf_test)] if req.wf_test else []
        argv += ["--wf-anchored"] if req.wf_anchored else []
    if req.mode == Mode.MONTE_CARLO or (req.mode == Mode.WALK_FORWARD and req.mc_paths):
        argv += ["--monte-carlo", str(req.mc_paths or 1000)]
        argv += ["--mc-by-session"] if req.mc_by_session else []
    _check_cli(argv)
    return Prepared(argv, symbols)


def _source_args(req: JobRequest) -> list[str]:
    if req.source == Source.SYNTHETIC:
        return ["--synthetic"]
    if req.source == Source.FILE:
        if not req.data_path:
            raise JobRejected(422, ("body", "data_path"), "source 'file' needs data_path under ORB_DATA_DIR")
        return ["--data", str(data_path(req.data_path, ("body", "data_path")))]
    if req.source == Source.YAHOO:
        return []
    return ["--source", str(req.source)]


def _check_cli(argv: list[str]) -> None:
    """Parse the argv with the CLI's own parser, so a job never fails on arguments after queueing."""
    import contextlib
    import io
    import sys

    if str(REPO) not in sys.path:  # run_backtest.py sits at the repository root
        sys.path.insert(0, str(REPO))
    from run_backtest import _check_research, build_parser

    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _check_research(parser, parser.parse_args(argv))
    except SystemExit:
        message = err.getvalue().strip().removeprefix("error: ").removesuffix(" (see --help)")
        raise JobRejected(422, ("body",), f"run_backtest.py refuses this job: {message}") from None
