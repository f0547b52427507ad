"""`create_app`: the FastAPI app over a runs folder, its error mapping and its routers."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import ResponseValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from orb import __version__
from orb.api.deps import ERRORS, require_api_key
from orb.api.models import ErrorDetail
from orb.api.routes import portfolio, research, runs
from orb.runs import read as results
from orb.runs.read import InvalidRunId, InvalidSymbol, RunIncomplete, RunNotFound, SymbolNotFound

DESCRIPTION = (
    "Read-only access to the backtest run folders written by `run_backtest.py`. "
    "Every data endpoint takes `run_id` (omitted: the newest complete run). "
    "Times are ISO-8601 with offset (UTC); undefined numbers are null. Each run's `mode` (GET "
    "/api/runs) says which endpoints apply: a backtest has trades, equity and sessions; a sweep "
    "its ranked results (/api/sweeps); a walk-forward its folds (/api/walkforward) and metrics; "
    "Monte Carlo output (/api/montecarlo) may come with a backtest or a walk-forward; a portfolio run "
    "has its daily universe (/api/universe), its benchmark (/api/benchmark) and answers the backtest "
    "endpoints from its combined tables (its sessions are its universe rows)."
)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    detail = [{"type": "value_error", "loc": ["query", getattr(exc, "param", "")], "msg": str(exc)}]
    return JSONResponse(status_code=422, content={"detail": detail})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _incomplete(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _off_format(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, ValidationError | ResponseValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"a file of this run does not match run-format.md ({where}: {first.get('msg', exc)}); re-run it"
    return JSONResponse(status_code=409, content={"detail": detail})


HANDLERS = {
    InvalidRunId: _invalid,
    InvalidSymbol: _invalid,
    RunNotFound: _not_found,
    SymbolNotFound: _not_found,
    RunIncomplete: _incomplete,
    ValidationError: _off_format,
    ResponseValidationError: _off_format,
}


def create_app(
    runs_dir: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
    cors_origins: str | None = None,
) -> FastAPI:
    """The API over `runs_dir` (else ORB_RUNS_DIR, else ./runs); key and CORS origins default to the env
    variables ORB_API_KEY and ORB_CORS_ORIGINS (comma-separated)."""
    key = api_key if api_key is not None else os.environ.get("ORB_API_KEY") or None
    origins = cors_origins if cors_origins is not None else os.environ.get("ORB_CORS_ORIGINS", "")
    app = FastAPI(
        title="ORB backtest results API",
        version=__version__,
        description=DESCRIPTION + (" Every /api request needs the `X-API-Key` header." if key else ""),
    )
    app.state.runs_dir = results.resolve_runs_dir(runs_dir)
    app.state.api_key = key
    allowed = [o.strip() for o in origins.split(",") if o.strip()]
    if allowed:
        app.add_middleware(
            CORSMiddleware, allow_origins=allowed, allow_methods=["GET"], allow_headers=["X-API-Key"]
        )
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)

    responses = dict(ERRORS)
    if key:
        responses[401] = {"model": ErrorDetail, "description": "Missing or wrong X-API-Key header."}
    api = APIRouter(
        prefix="/api",
        dependencies=[Depends(require_api_key)] if key else [],
        responses=responses,
        tags=["runs"],
    )
    api.include_router(runs.router)
    api.include_router(research.router)
    api.include_router(portfolio.router)
    app.include_router(runs.health_router)
    app.include_router(api)
    return app
