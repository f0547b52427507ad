"""HTTP routes over the run registry (fixed queries, no SQL over HTTP): leaderboard, compare, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel

from orb.api.routes.jobs import write_guard
from orb.runs import catalog as runs_catalog
from orb.runs.catalog import SCALAR_METRICS, CatalogError
from orb.runs.layout import MODES
from orb.runs.read import LATEST_ALIAS, RUN_ID_PATTERN

MAX_COMPARE = 20
_ID = RUN_ID_PATTERN.strip("^$")
RUN_IDS_PATTERN = f"^{_ID}(,{_ID}){{0,{MAX_COMPARE - 1}}}$"


class LeaderboardResponse(BaseModel):
    metric: str
    count: int
    rows: list[dict[str, Any]]
    skipped: dict[str, str]  # damaged run folders left out: {run_id: reason}


class CompareResponse(BaseModel):
    run_ids: list[str]
    runs: list[dict[str, Any]]  # each run's `runs` row (manifest fields and aggregate metrics)
    metrics: dict[str, dict[str, Any]]  # {metric: {run_id: value}}
    config_diff: dict[str, dict[str, Any]]  # {dotted key path: {run_id: value}}, changed keys only
    equity: dict[str, list[dict[str, Any]]]  # {run_id: combined equity points}


class Deleted(BaseModel):
    run_id: str
    deleted: bool


def catalog_router(runs_dir: Path, api_key: str | None) -> APIRouter:
    """Leaderboard, compare and run deletion over `runs_dir`."""
    router = APIRouter(prefix="/api", tags=["registry"])

    @router.get("/leaderboard", response_model=LeaderboardResponse, summary="Runs ranked by a metric")
    def leaderboard(
        metric: Annotated[Literal[SCALAR_METRICS], Query(description="an aggregate metric key")] = "total_r",
        mode: Annotated[Literal[MODES] | None, Query(description="backtest, sweep or walk_forward")] = None,
        symbol: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9.^=-]{1,15}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        ascending: bool = False,
    ) -> LeaderboardResponse:
        """Best first by the run's aggregate `metric` (`ascending=true`: smallest first)."""
        try:
            rows = runs_catalog.leaderboard(runs_dir, metric, mode, symbol, limit, ascending)
        except CatalogError as exc:
            raise HTTPException(422, [_loc("metric", str(exc))]) from None
        skipped = runs_catalog.catalog(runs_dir).skipped
        return LeaderboardResponse(metric=metric, count=len(rows), rows=rows, skipped=skipped)

    @router.get("/compare", response_model=CompareResponse, summary="Runs side by side")
    def compare(
        run_ids: Annotated[str, Query(pattern=RUN_IDS_PATTERN, description="comma-separated run ids (1-20)")],
        max_points: Annotated[int, Query(ge=2, le=100_000)] = 500,
    ) -> CompareResponse:
        """Aggregate metrics side by side, the config keys that differ, each run's combined equity."""
        ids = list(dict.fromkeys(run_ids.split(",")))
        return CompareResponse.model_validate(runs_catalog.compare(runs_dir, ids, max_points))

    @router.delete(
        "/runs/{run_id}",
        response_model=Deleted,
        dependencies=[Depends(write_guard(api_key))],
        responses={403: {"description": "A write on a non-loopback bind without ORB_API_KEY."}},
        summary="Delete a run folder",
    )
    def delete(run_id: Annotated[str, PathParam(pattern=RUN_ID_PATTERN)]) -> Deleted:
        """Hidden rename, then removal; `latest` is moved to the newest remaining run."""
        if run_id == LATEST_ALIAS:
            raise HTTPException(422, [_loc("run_id", "name the run to delete, not 'latest'", "path")])
        runs_catalog.delete_run(runs_dir, run_id)
        return Deleted(run_id=run_id, deleted=True)

    return router


def _loc(name: str, msg: str, where: str = "query") -> dict[str, Any]:
    return {"type": "value_error", "loc": [where, name], "msg": msg}
