"""`create_app`: the FastAPI app over a runs folder, its error mapping and its routers."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import ResponseValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orb import __version__
from orb.api.deps import ERRORS, require_api_key
from orb.api.models import ErrorDetail
from orb.api.routes import portfolio, research, runs
from orb.api.routes.catalog import catalog_router
from orb.api.routes.jobs import jobs_router
from orb.runs import read as results
from orb.runs.read import InvalidRunId, InvalidSymbol, RunIncomplete, RunNotFound, SymbolNotFound

DESCRIPTION = (
    "The backtest run folders written by `run_backtest.py`, and jobs that write new ones (/api/jobs, "
    "same code path as the CLI; write routes need the API key when one is set). "
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


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's answer, except that a 405 lists every documented method of the path: one path can be
    served by routes of several routers (GET /api/runs/{run_id} and DELETE /api/runs/{run_id})."""
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    path = request.url.path
    methods = {
        method.upper()
        for template, ops in request.app.openapi().get("paths", {}).items()
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path)
        for method in ops
    }
    allow = ", ".join(sorted(methods)) or (exc.headers or {}).get("Allow", "")
    return JSONResponse(status_code=405, content={"detail": exc.detail}, headers={"Allow": allow})


STATIC = Path(__file__).resolve().parent / "static"  # Swagger UI 4.15.5 (Apache-2.0, see its README)


def _docs(request: Request) -> HTMLResponse:
    """Swagger UI from the app's own /static files (works offline; nothing loads from a CDN)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - docs",
        swagger_js_url=f"{root}/static/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/static/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


HANDLERS = {
    StarletteHTTPException: _http_error,
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
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # a redirect would echo the request's Host header
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/docs", _docs, methods=["GET"], include_in_schema=False)
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
    guards = [Depends(require_api_key)] if key else []
    api = APIRouter(prefix="/api", dependencies=guards, responses=responses, tags=["runs"])
    api.include_router(runs.router)
    api.include_router(research.router)
    api.include_router(portfolio.router)
    app.include_router(runs.health_router)
    app.include_router(api)
    root = app.state.runs_dir
    app.include_router(jobs_router(root, key), dependencies=guards, responses=responses)  # write routes
    app.include_router(catalog_router(root, key), dependencies=guards, responses=responses)
    return app
