"""Request dependencies and parameter types shared by the routers.

`RunsDir` is the runs folder the app serves (`app.state.runs_dir`, set by `create_app`); `require_api_key`
checks the X-API-Key header against `app.state.api_key` (the routers get it only when a key is set).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader

from orb.api.models import EXAMPLE_RUN, ErrorDetail
from orb.runs.read import RUN_ID_PATTERN, SYMBOL_PATTERN

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Required when ORB_API_KEY is set."
)


def _runs_dir(request: Request) -> Path:
    return request.app.state.runs_dir


RunsDir = Annotated[Path, Depends(_runs_dir)]


def require_api_key(request: Request, key: Annotated[str | None, Security(API_KEY_HEADER)]) -> None:
    """401 unless the X-API-Key header equals the app's key (compared in constant time)."""
    expected: str = request.app.state.api_key
    if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")


RunIdQuery = Annotated[
    str | None,
    Query(
        pattern=RUN_ID_PATTERN,
        max_length=128,
        description="Run id from GET /api/runs; omitted or `latest`: the newest complete run.",
        openapi_examples={
            "newest": {"summary": "the newest complete run", "value": "latest"},
            "one run": {"summary": "a run id", "value": EXAMPLE_RUN},
        },
    ),
]
SymbolQuery = Annotated[
    str | None,
    Query(
        pattern=SYMBOL_PATTERN,
        max_length=32,
        description="Symbol of the run (case-insensitive).",
        openapi_examples={"SPY": {"summary": "one symbol", "value": "SPY"}},
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "Unknown run or symbol."},
    409: {
        "model": ErrorDetail,
        "description": "The run folder is damaged (a file is missing or unreadable).",
    },
}


RunIdPath = Annotated[
    str,
    PathParam(
        pattern=RUN_ID_PATTERN,
        max_length=128,
        description="Run id; `latest`: the newest complete run.",
        examples=[EXAMPLE_RUN],
    ),
]
MaxPoints = Annotated[
    int | None,
    Query(
        ge=2,
        le=1_000_000,
        description="Downsample to at most this many points: the first and last points and, per "
        "bucket, the equity high, the deepest drawdown and the high before it (the maximum "
        "drawdown is kept exactly).",
    ),
]
SWEEP_SYMBOL_PATTERN = rf"^(\*|{SYMBOL_PATTERN[1:-1]})$"


def upper(symbol: str | None) -> str | None:
    return None if symbol is None else symbol.upper()
