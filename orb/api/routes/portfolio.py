"""Portfolio endpoints (run-format.md "Portfolio runs"): /api/universe and /api/benchmark.

The backtest endpoints (/api/trades, /api/equity, /api/sessions, /api/metrics/core) also answer for a
portfolio run: orb.runs.read filters its combined tables by symbol, and its sessions are its universe rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from orb.api.deps import RunIdQuery, RunsDir, SymbolQuery, upper
from orb.api.models import IsoDate
from orb.runs import read as results

router = APIRouter(tags=["portfolio"])


class UniverseRow(BaseModel):
    """One (session, symbol) row of universe.parquet (strategy.md 10)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    session_date: dt.date
    symbol: str
    open_price: float | None = Field(None, description="Open of the session's first regular-hours bar.")
    avg_volume: float | None = Field(None, description="Mean daily volume of the prior lookback sessions.")
    atr: float | None = None
    rel_volume: float | None = Field(None, description="OR volume / its mean over the lookback sessions.")
    or_high: float | None = None
    or_low: float | None = None
    status: str = Field(description="traded, no_signal, not_selected or skipped", examples=["traded"])
    reason: str | None = Field(None, description="Why a skipped row was not eligible (null otherwise).")
    rank: int | None = Field(None, description="Rank by rel_volume among the eligible (else null).")
    trades: int | None = None
    day_r: float | None = None
    day_pnl: float | None = None


class UniverseResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    date: dt.date | None = Field(description="Null: every session.")
    symbol: str | None = Field(description="Null: every symbol.")
    total: int = Field(ge=0)
    rows: list[UniverseRow] = Field(description="By session, then symbol (as stored).")


class BenchmarkPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    session_date: dt.date
    close: float | None
    return_: float | None = Field(alias="return", description="close / previous close - 1 (10.9.9).")


class BenchmarkResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    symbol: str | None = Field(description="portfolio.benchmark of the run.")
    points: list[BenchmarkPoint]


@router.get(
    "/universe",
    response_model=UniverseResponse,
    summary="The daily universe of a portfolio run: who was selected and why the others were not",
)
def universe(
    root: RunsDir,
    run_id: RunIdQuery = None,
    date: Annotated[IsoDate | None, Query(description="Only this session (YYYY-MM-DD).")] = None,
    symbol: SymbolQuery = None,
) -> UniverseResponse:
    """universe.parquet rows (404 for a run that is not a portfolio run)."""
    path = results.open_run(root, run_id)
    page = results.universe_page(path, date, symbol)
    return UniverseResponse(
        run_id=path.name, date=date, symbol=upper(symbol), total=page.total, rows=page.records
    )


@router.get(
    "/benchmark",
    response_model=BenchmarkResponse,
    summary="The benchmark's daily closes and returns of a portfolio run",
)
def benchmark(root: RunsDir, run_id: RunIdQuery = None) -> BenchmarkResponse:
    """benchmark.parquet (404 when the run is not a portfolio run or set no portfolio.benchmark)."""
    path = results.open_run(root, run_id)
    page = results.benchmark_page(path)
    symbol = results.load_manifest(path).get("benchmark")
    return BenchmarkResponse(
        run_id=path.name, symbol=symbol if isinstance(symbol, str) else None, points=page.records
    )
