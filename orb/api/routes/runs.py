"""Backtest endpoints: /health, /api/runs, /api/runs/{run_id}, trades, equity, metrics, sessions, config."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from orb.api.deps import MaxPoints, RunIdPath, RunIdQuery, RunsDir, SymbolQuery, upper
from orb.api.models import (
    ConfigResponse,
    EquitySeries,
    ExitReasonName,
    Health,
    IsoDate,
    Manifest,
    Metrics,
    MetricsResponse,
    RunDetail,
    RunInfo,
    SessionsResponse,
    Totals,
    TradesPage,
)
from orb.runs import read as results

health_router = APIRouter()
router = APIRouter()


@health_router.get(
    "/health", response_model=Health, tags=["health"], summary="Liveness and runs count (no key needed)"
)
def health(request: Request, root: RunsDir) -> Health:
    """Always open (no API key): how many run folders the runs folder shows, and its path unless an API
    key is set (then null: the path is not for anonymous callers). Reads no run, so no damaged run can
    break it."""
    shown = None if request.app.state.api_key else str(root)
    return Health(runs_dir=shown, runs=results.count_runs(root))


@router.get("/runs", response_model=list[RunInfo], summary="Every run, newest first")
def runs(root: RunsDir) -> list[RunInfo]:
    """Runs newest first with their totals; damaged runs are listed as `incomplete` with a `detail`."""
    return [
        RunInfo(
            run_id=s.run_id,
            created=None if s.created is None else s.created.isoformat(),
            symbols=list(s.symbols),
            start=s.start,
            end=s.end,
            status=s.status,
            detail=s.detail,
            totals=Totals(trades=s.trades, total_r=s.total_r, win_rate=s.win_rate),
            mode=s.mode,
        )
        for s in results.list_runs(root)
    ]


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    response_model_exclude_unset=True,
    summary="One run: manifest and aggregate metrics",
)
def run_detail(root: RunsDir, run_id: RunIdPath) -> RunDetail:
    """manifest.json (command, data sources and hashes, versions, file hashes, `mode`) plus aggregate
    metrics (null for a sweep)."""
    path = results.open_run(root, run_id)
    mode = results.run_mode(path)
    return RunDetail(
        run_id=path.name,
        status="complete",
        mode=mode,
        manifest=Manifest(**results.load_manifest(path)),
        metrics=None if mode == results.SWEEP else Metrics(**results.load_symbol_metrics(path)),
    )


@router.get("/trades", response_model=TradesPage, summary="A page of trades, filtered")
def trades(
    root: RunsDir,
    run_id: RunIdQuery = None,
    symbol: SymbolQuery = None,
    side: Annotated[Literal["long", "short"] | None, Query(description="Only this side.")] = None,
    exit_reason: Annotated[
        ExitReasonName | None, Query(description="Only this exit reason.", examples=["target"])
    ] = None,
    start: Annotated[IsoDate | None, Query(description="First session_date (inclusive), YYYY-MM-DD.")] = None,
    end: Annotated[IsoDate | None, Query(description="Last session_date (inclusive), YYYY-MM-DD.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="Page size.")] = 500,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Trades to skip.")] = 0,
) -> TradesPage:
    """Trades sorted by entry time then symbol; `total` counts every trade matching the filters."""
    path = results.open_run(root, run_id)
    page = results.trades_page(
        path,
        symbol,
        side=side,
        exit_reason=exit_reason,
        start=start,
        end=end,
        offset=offset,
        limit=limit,
        rounded=True,
    )
    return TradesPage(
        run_id=path.name,
        symbol=upper(symbol),
        total=page.total,
        offset=offset,
        limit=limit,
        trades=page.records,
    )


@router.get("/equity", response_model=EquitySeries, summary="Equity curve (combined when no symbol)")
def equity(
    root: RunsDir, run_id: RunIdQuery = None, symbol: SymbolQuery = None, max_points: MaxPoints = None
) -> EquitySeries:
    """Equity at every fill and session close, sorted by time."""
    path = results.open_run(root, run_id)
    page = results.equity_page(path, symbol, max_points, rounded=True)
    return EquitySeries(
        run_id=path.name,
        symbol=upper(symbol),
        total=page.total,
        returned=len(page.records),
        points=page.records,
    )


@router.get(
    "/metrics/core",
    response_model=MetricsResponse,
    response_model_exclude_unset=True,
    summary="Metrics (aggregate when no symbol)",
)
def metrics(root: RunsDir, run_id: RunIdQuery = None, symbol: SymbolQuery = None) -> MetricsResponse:
    """The metrics the run computed (metrics.json), never recomputed."""
    path = results.open_run(root, run_id)
    values = results.load_symbol_metrics(path, symbol)
    return MetricsResponse(run_id=path.name, symbol=upper(symbol), metrics=Metrics(**values))


@router.get(
    "/sessions", response_model=SessionsResponse, summary="Sessions table (all symbols when no symbol)"
)
def sessions(root: RunsDir, run_id: RunIdQuery = None, symbol: SymbolQuery = None) -> SessionsResponse:
    """One row per session and symbol: OR, ATR, status (traded, no_signal, skipped) and skip reason."""
    path = results.open_run(root, run_id)
    page = results.sessions_page(path, symbol, rounded=True)
    return SessionsResponse(run_id=path.name, symbol=upper(symbol), total=page.total, sessions=page.records)


@router.get("/config", response_model=ConfigResponse, summary="The resolved configuration of a run")
def config(root: RunsDir, run_id: RunIdQuery = None) -> ConfigResponse:
    """config.json (re-runnable with `--config`) and its SHA-256 from the manifest."""
    path = results.open_run(root, run_id)
    digest = results.load_manifest(path).get("config_sha256")
    return ConfigResponse(
        run_id=path.name,
        sha256=digest if isinstance(digest, str) else None,
        config=results.load_run_config(path),
    )
