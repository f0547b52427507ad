"""FastAPI app over the runs folder: read-only, typed, every file read through orb.results.

`create_app()` builds the app; `api_server.py` exposes it for `uvicorn api_server:app` and
`python api_server.py`. Errors map to JSON `detail`: malformed id or parameter 422, unknown run or
symbol, or an output the run's mode does not write, 404; damaged run or a file off the run format
409; missing or wrong API key 401. Research runs (docs/research.md) are read through /api/sweeps,
/api/walkforward and /api/montecarlo.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import ResponseValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from orb import __version__, results
from orb.results import (
    MONTECARLO_STATS,
    RUN_ID_PATTERN,
    SWEEP_SORT_KEYS,
    SYMBOL_PATTERN,
    InvalidRunId,
    InvalidSymbol,
    RunIncomplete,
    RunNotFound,
    SymbolNotFound,
)

EXAMPLE_RUN = "backtest_20241002_153045"
EXAMPLE_TIME = "2024-10-02T13:45:00+00:00"
MODE_DESCRIPTION = (
    "What the run holds: `backtest` (trades, equity, metrics), `sweep` (one result per combination: "
    "/api/sweeps) or `walk_forward` (folds and stitched out-of-sample result: /api/walkforward)."
)
SweepSort = Literal[SWEEP_SORT_KEYS]  # type: ignore[valid-type]
MonteCarloStat = Literal[MONTECARLO_STATS]  # type: ignore[valid-type]
ParamValue = Annotated[
    Any, WithJsonSchema({"description": "The value that ran (number, string, bool or null)."})
]

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]  # passes JSON ints through unchanged
IsoTime = Annotated[  # orb.results.records() formats times; the schema still says date-time
    str, WithJsonSchema({"type": "string", "format": "date-time", "examples": [EXAMPLE_TIME]})
]


def _iso_date(value: object) -> object:
    """Only YYYY-MM-DD strings are dates here (not "0", a Unix time, nor 20240102)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected a date YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

# ---------------------------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Model):
    detail: str = Field(
        description="What went wrong and what to do.", examples=["run x not found in /srv/runs"]
    )


class Health(_Model):
    status: Literal["ok"] = "ok"
    runs_dir: str = Field(description="Absolute path of the runs folder served.")
    runs: int = Field(description="Run folders visible (complete and incomplete).", ge=0)


class Totals(_Model):
    trades: int | None = Field(description="Aggregate total_trades (null when the run is incomplete).")
    total_r: float | None = Field(description="Aggregate total_r, in R.")
    win_rate: float | None = Field(description="Aggregate win_rate, 0-1.")


class RunInfo(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "run_id": EXAMPLE_RUN,
                    "created": EXAMPLE_TIME,
                    "symbols": ["SPY", "QQQ"],
                    "start": "2024-01-02",
                    "end": "2024-03-29",
                    "status": "complete",
                    "detail": None,
                    "totals": {"trades": 58, "total_r": 6.41, "win_rate": 0.47},
                    "mode": "backtest",
                }
            ]
        },
    )

    run_id: str = Field(description="Folder name; use it as `run_id` on the other endpoints.")
    created: IsoTime | None = Field(description="When the run was made (UTC).")
    symbols: list[str]
    start: str | None = Field(description="First session date tested (YYYY-MM-DD).")
    end: str | None = Field(description="Last session date tested (YYYY-MM-DD).")
    status: Literal["complete", "incomplete"]
    detail: str | None = Field(description="Why the run is incomplete (null when complete).")
    totals: Totals = Field(
        description="Aggregate result; the stitched out-of-sample result of a walk-forward; null for a sweep."
    )
    mode: str = Field(description=MODE_DESCRIPTION, examples=["backtest"])


class Manifest(_Model):
    """manifest.json as written by the runner (run-format.md); unknown keys pass through."""

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: int | str | None = None
    run_id: str | None = None
    created: str | None = Field(None, description="UTC ISO time the run was made.")
    command: str | list[str] | None = None
    symbols: list[str] = Field([], description="Symbols with results.")
    failed_symbols: dict[str, str] = Field({}, description="Symbols that failed, with the reason.")
    start: str | None = None
    end: str | None = None
    interval: str | None = None
    sources: dict[str, str | None] = {}
    data_sha256: dict[str, str | None] = {}
    config_sha256: str | None = None
    package_version: str | None = None
    git_commit: str | None = None
    python: str | None = None
    libraries: dict[str, str | None] = {}
    seed: int | None = None
    wall_time_seconds: float | None = None
    files: dict[str, str] = Field({}, description="SHA-256 of every other file of the run folder.")


class Metrics(_Model):
    """Metric keys of run-format.md; null where undefined (no trades, zero variance)."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_extra={
            "examples": [{"total_trades": 58, "win_rate": 0.47, "total_r": 6.41, "sharpe": 1.2}]
        },
    )

    total_trades: int | None = None
    winning_trades: int | None = None
    losing_trades: int | None = None
    win_rate: Number | None = Field(None, description="0-1")
    total_r: Number | None = None
    avg_r: Number | None = None
    median_r: Number | None = None
    profit_factor: Number | None = None
    expectancy_r: Number | None = None
    sqn: Number | None = None
    avg_winner_r: Number | None = None
    avg_loser_r: Number | None = None
    largest_winner_r: Number | None = None
    largest_loser_r: Number | None = None
    max_consecutive_wins: int | None = None
    max_consecutive_losses: int | None = None
    max_drawdown_r: Number | None = None
    max_drawdown_pct: Number | None = None
    max_drawdown_duration_days: Number | None = None
    sharpe: Number | None = None
    sortino: Number | None = None
    calmar: Number | None = None
    net_pnl: Number | None = None
    total_return_pct: Number | None = None
    cagr_pct: Number | None = None
    final_equity: Number | None = None
    exposure_pct: Number | None = None
    avg_holding_minutes: Number | None = None
    long_trades: int | None = None
    short_trades: int | None = None
    long_win_rate: Number | None = None
    short_win_rate: Number | None = None
    sessions: int | None = None
    sessions_traded: int | None = None
    sessions_skipped: int | None = None
    exit_reasons: dict[str, int] | None = Field(None, description="Trades per exit reason.")
    symbols: int | list[str] | None = Field(None, description="Aggregate only.")
    avg_r_per_trade: Number | None = Field(None, description="Aggregate only.")


class RunDetail(_Model):
    run_id: str
    status: Literal["complete"] = "complete"
    mode: str = Field(description=MODE_DESCRIPTION, examples=["backtest"])
    manifest: Manifest
    metrics: Metrics | None = Field(
        description="Aggregate metrics of the run (metrics.json `aggregate`); null for a sweep, which has "
        "one result per combination (GET /api/sweeps/{run_id})."
    )


class Trade(_Model):
    """One trade (run-format.md trade columns); times UTC with offset; factor_<name> columns pass through."""

    model_config = ConfigDict(frozen=True, extra="allow")

    trade_id: str = Field(examples=["SPY-00001"])
    symbol: str
    session_date: date
    side: str = Field(description="long or short", examples=["long"])
    entry_time: IsoTime
    entry_price: float | None
    stop_price: float | None = Field(description="Initial stop.")
    r_per_share: float | None
    shares: int | None
    t1_price: float | None
    t2_price: float | None
    target_price: float | None
    exit_time: IsoTime | None
    exit_price: float | None = Field(description="Price of the last leg.")
    exit_reason: str | None = Field(examples=["target"])
    t1_filled: bool | None
    t2_filled: bool | None
    gross_pnl: float | None
    commission: float | None
    net_pnl: float | None
    initial_risk: float | None
    r_multiple: float | None = Field(description="net_pnl / initial_risk")
    gross_r: float | None
    mfe_r: float | None
    mae_r: float | None
    holding_minutes: float | None
    or_high: float | None
    or_low: float | None
    or_minutes: int | None
    score: float | None


class TradesPage(_Model):
    run_id: str
    symbol: str | None = Field(description="Null: every symbol (all_trades.parquet).")
    total: int = Field(description="Trades matching the filters (before paging).", ge=0)
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    trades: list[Trade] = Field(description="Sorted as stored: by entry time, then symbol.")


class EquityPoint(_Model):
    model_config = ConfigDict(frozen=True, extra="allow")

    timestamp: IsoTime
    equity: float | None
    cum_r: float | None = None
    drawdown_pct: float | None = None
    drawdown_r: float | None = None


class EquitySeries(_Model):
    run_id: str
    symbol: str | None = Field(description="Null: combined equity of all symbols.")
    total: int = Field(description="Points stored in the file.", ge=0)
    returned: int = Field(description="Points in this response (fewer than total when downsampled).", ge=0)
    points: list[EquityPoint]


class MetricsResponse(_Model):
    run_id: str
    symbol: str | None = Field(description="Null: aggregate metrics of the run.")
    metrics: Metrics


class SessionRow(_Model):
    model_config = ConfigDict(frozen=True, extra="allow")

    symbol: str | None = None
    session_date: date
    or_minutes: int | None = None
    or_high: float | None = None
    or_low: float | None = None
    or_width: float | None = None
    atr: float | None = None
    or_width_atr: float | None = None
    status: str = Field(description="traded, no_signal or skipped")
    skip_reason: str | None = None
    trades: int | None = None
    day_r: float | None = None


class SessionsResponse(_Model):
    run_id: str
    symbol: str | None = Field(description="Null: every symbol, each row naming its symbol.")
    total: int = Field(ge=0)
    sessions: list[SessionRow]


class ConfigResponse(_Model):
    run_id: str
    sha256: str | None = Field(
        description="SHA-256 of the canonical JSON of `config` (manifest config_sha256)."
    )
    config: dict[str, Any] = Field(description="The fully resolved configuration (config.json).")


# ------------------------------------------------------------------------------------- research models


class InvalidCombination(_Model):
    combination: int = Field(description="Its number in grid order (from 0).")
    params: dict[str, ParamValue] = Field(description="Swept key -> value.")
    error: str = Field(description="Why the configuration validation refused it.")


class Combination(_Model):
    combination: int
    params: dict[str, ParamValue] = Field(description="Swept key -> value.")


class SweepRow(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "rank": 1,
                    "combination": 4,
                    "symbol": "*",
                    "params": {"orb.base_minutes": 15, "costs.slippage_per_share": 0.0},
                    "metrics": {"total_trades": 232, "win_rate": 0.56, "total_r": 21.7, "sharpe": 1.9},
                }
            ]
        },
    )

    rank: int = Field(description="Rank of the combination by `rank_by` on its aggregate row (1 = best).")
    combination: int
    symbol: str = Field(description="The symbol, or `*` for the combination's aggregate over all symbols.")
    params: dict[str, ParamValue] = Field(description="Swept key -> the value that ran.")
    metrics: Metrics = Field(description="Metric keys of run-format.md (exit_reasons as an object).")


class SweepResponse(_Model):
    run_id: str
    sweep_file: str | None = Field(description="The sweep file as given on the command line.")
    keys: list[str] = Field(description="Swept config keys, in grid order.", examples=[["orb.base_minutes"]])
    rank_by: str = Field(description="Metric that ranks the combinations.", examples=["total_r"])
    combinations: int = Field(description="Combinations of the sweep, invalid ones included.", ge=0)
    evaluated: int = Field(description="Valid combinations that ran.", ge=0)
    invalid: list[InvalidCombination]
    best: Combination | None = Field(description="The combination ranked 1.")
    symbol: str | None = Field(description="The `symbol` filter (`*`: aggregate rows; null: every row).")
    sort_by: str
    order: Literal["asc", "desc"]
    total: int = Field(description="Rows matching the filter (before paging).", ge=0)
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    rows: list[SweepRow]


class ParameterStability(_Model):
    chosen: list[ParamValue] = Field(description="The chosen value per fold.")
    distinct: int = Field(description="Number of different values chosen.", ge=0)
    mode: ParamValue = Field(description="Most chosen value (ties: the first chosen).")
    mode_share: Number | None = Field(description="Share of folds that chose `mode`, 0-1.")
    changes: int = Field(description="Folds whose value differs from the previous fold's.", ge=0)


class Robustness(_Model):
    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "folds": 5,
                    "is_total_r": 42.6,
                    "oos_total_r": 11.6,
                    "is_r_per_session": 0.213,
                    "oos_r_per_session": 0.138,
                    "efficiency": 0.65,
                    "profitable_fold_share": 0.6,
                    "combination_changes": 2,
                    "parameter_stability": {
                        "orb.base_minutes": {
                            "chosen": [15, 15, 5, 5, 15],
                            "distinct": 2,
                            "mode": 15,
                            "mode_share": 0.6,
                            "changes": 2,
                        }
                    },
                }
            ]
        },
    )

    folds: int = Field(ge=0)
    is_total_r: Number | None = Field(description="Sum over folds of the in-sample total R.")
    oos_total_r: Number | None = Field(description="Sum over folds of the out-of-sample total R.")
    is_r_per_session: Number | None = Field(description="is_total_r / summed train sessions.")
    oos_r_per_session: Number | None = Field(description="oos_total_r / summed test sessions.")
    efficiency: Number | None = Field(
        description="Walk-forward efficiency: oos_r_per_session / is_r_per_session; null when "
        "is_r_per_session <= 0."
    )
    profitable_fold_share: Number | None = Field(description="Share of folds with oos_total_r > 0.")
    combination_changes: int = Field(description="Folds whose choice differs from the previous fold's.")
    parameter_stability: dict[str, ParameterStability] = Field(description="Per swept key.")


class Fold(_Model):
    fold: int = Field(description="From 1.", ge=1)
    train_start: date
    train_end: date
    train_sessions: int = Field(ge=0)
    test_start: date
    test_end: date
    test_sessions: int = Field(ge=0)
    combination: int = Field(description="The combination chosen on the train window.")
    params: dict[str, ParamValue] = Field(description="Its swept values.")
    in_sample: Metrics = Field(description="Its aggregate metrics on the train window (`is_*` columns).")
    out_of_sample: Metrics = Field(description="Its aggregate metrics on the test window (`oos_*` columns).")


class FoldEquityPoint(EquityPoint):
    fold: int = Field(description="The fold whose test window made this point.")


class FoldEquity(_Model):
    total: int = Field(description="Points stored in wf_oos_equity.parquet.", ge=0)
    returned: int = Field(description="Points in this response (fewer than total when downsampled).", ge=0)
    points: list[FoldEquityPoint]


class WalkForwardResponse(_Model):
    run_id: str
    sweep_file: str | None
    keys: list[str] = Field(description="Swept config keys, in grid order.")
    rank_by: str = Field(description="Metric that chose each fold's combination.")
    train_sessions: int = Field(description="Sessions per train window.", ge=1)
    test_sessions: int = Field(description="Sessions per test window.", ge=1)
    anchored: bool = Field(description="Train windows all start at the first session.")
    combinations: int = Field(ge=0)
    evaluated: int = Field(ge=0)
    invalid: list[InvalidCombination]
    robustness: Robustness
    metrics: Metrics = Field(
        description="Aggregate metrics of the stitched out-of-sample run (metrics.json)."
    )
    folds: list[Fold]
    equity: FoldEquity = Field(description="The stitched out-of-sample combined equity.")


class Percentiles(_Model):
    p5: Number | None
    p25: Number | None
    p50: Number | None
    p75: Number | None
    p95: Number | None


class PathStats(_Model):
    total_r: Number | None = Field(description="Sum of the path's R.")
    max_drawdown_r: Number | None = Field(description="Deepest fall of cum R from its running high (<= 0).")
    longest_losing_streak: Number | None = Field(description="Most consecutive trades with R < 0.")


class BandPoint(_Model):
    step: int = Field(description="Trade (or session) number from 1.", ge=1)
    p5: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None
    observed: float | None = Field(description="The run's own cum R after this step.")


class Bands(_Model):
    total: int = Field(description="Steps stored in montecarlo_bands.parquet.", ge=0)
    returned: int = Field(description="Steps in this response (evenly thinned to max_points).", ge=0)
    points: list[BandPoint]


class HistogramBins(_Model):
    stat: str = Field(description="The per-path statistic counted.", examples=["max_drawdown_r"])
    edges: list[float] = Field(
        description="Bin edges (one more than counts); bin i is [edges[i], edges[i+1])."
    )
    counts: list[int] = Field(description="Paths per bin.")
    observed: Number | None = Field(description="The run's own value of the statistic.")


class MonteCarloResponse(_Model):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "run_id": EXAMPLE_RUN,
                    "n_paths": 10000,
                    "seed": 7,
                    "resample": "trades",
                    "n_trades": 71,
                    "n_units": 71,
                    "percentiles": {
                        "total_r": {"p5": -2.5, "p25": 5.6, "p50": 11.3, "p75": 17.1, "p95": 24.9},
                    },
                    "mean": {"total_r": 11.5, "max_drawdown_r": -5.8, "longest_losing_streak": 4.2},
                    "observed": {"total_r": 11.6, "max_drawdown_r": -7.7, "longest_losing_streak": 5},
                    "drawdown_thresholds_r": [5.0, 10.0, 20.0],
                    "prob_max_drawdown_exceeds": {"5": 0.575, "10": 0.065, "20": 0.0},
                    "bands": {"total": 71, "returned": 1, "points": []},
                    "histogram": None,
                }
            ]
        },
    )

    run_id: str
    n_paths: int = Field(description="Bootstrap paths.", ge=0)
    seed: int | None
    resample: str = Field(description="`trades` or `sessions` (whole sessions drawn).", examples=["trades"])
    n_trades: int = Field(description="Trades of the run resampled.", ge=0)
    n_units: int = Field(description="Draws per path (trades, or sessions).", ge=0)
    percentiles: dict[str, Percentiles] = Field(
        description="total_r, max_drawdown_r, longest_losing_streak -> percentiles across paths."
    )
    mean: PathStats = Field(description="Means across paths.")
    observed: PathStats = Field(description="The run's own sequence.")
    drawdown_thresholds_r: list[Number]
    prob_max_drawdown_exceeds: dict[str, Number] = Field(
        description="Threshold in R (as text) -> share of paths whose drawdown is deeper than it."
    )
    bands: Bands = Field(description="Percentiles of cum R across paths after each step.")
    histogram: HistogramBins | None = Field(description="Bins of `histogram` (null when not asked).")


# ---------------------------------------------------------------------------------------------- parameters

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


def _upper(symbol: str | None) -> str | None:
    return None if symbol is None else symbol.upper()


def _params(record: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {key: record.get(key) for key in keys}


def _sweep_row(record: dict[str, Any], keys: list[str]) -> SweepRow:
    fixed = {"rank", "combination", "symbol", *keys}
    return SweepRow.model_validate(
        {
            "rank": record.get("rank"),
            "combination": record.get("combination"),
            "symbol": record.get("symbol"),
            "params": _params(record, keys),
            "metrics": {k: v for k, v in record.items() if k not in fixed},
        }
    )


def _fold(record: dict[str, Any], keys: list[str]) -> Fold:
    window = ("fold", "train_start", "train_end", "train_sessions", "test_start", "test_end", "test_sessions")
    return Fold.model_validate(
        {
            **{k: record.get(k) for k in (*window, "combination")},
            "params": _params(record, keys),
            "in_sample": {k[3:]: v for k, v in record.items() if k.startswith("is_")},
            "out_of_sample": {k[4:]: v for k, v in record.items() if k.startswith("oos_")},
        }
    )


# ---------------------------------------------------------------------------------------------- app


def _api_key_guard(expected: str):
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when ORB_API_KEY is set.")

    def guard(key: str | None = Security(header)) -> None:  # noqa: B008 (a local, not an Annotated name)
        if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

    return guard


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": str(exc)})


def create_app(
    runs_dir: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
    cors_origins: str | None = None,
) -> FastAPI:
    """The API over `runs_dir` (else ORB_RUNS_DIR, else ./runs); key and CORS origins default to the env
    variables ORB_API_KEY and ORB_CORS_ORIGINS (comma-separated)."""
    root = results.resolve_runs_dir(runs_dir)
    key = api_key if api_key is not None else os.environ.get("ORB_API_KEY") or None
    origins = cors_origins if cors_origins is not None else os.environ.get("ORB_CORS_ORIGINS", "")

    app = FastAPI(
        title="ORB backtest results API",
        version=__version__,
        description=(
            "Read-only access to the backtest run folders written by `run_backtest.py`. "
            "Every data endpoint takes `run_id` (omitted: the newest complete run). "
            "Times are ISO-8601 with offset (UTC); undefined numbers are null. Each run's `mode` (GET "
            "/api/runs) says which endpoints apply: a backtest has trades, equity and sessions; a sweep "
            "its ranked results (/api/sweeps); a walk-forward its folds (/api/walkforward) and metrics; "
            "Monte Carlo output (/api/montecarlo) may come with a backtest or a walk-forward."
            + (" Every /api request needs the `X-API-Key` header." if key else "")
        ),
    )
    allowed = [o.strip() for o in origins.split(",") if o.strip()]
    if allowed:
        app.add_middleware(
            CORSMiddleware, allow_origins=allowed, allow_methods=["GET"], allow_headers=["X-API-Key"]
        )

    @app.exception_handler(InvalidRunId)
    @app.exception_handler(InvalidSymbol)
    async def _invalid(request: Request, exc: InvalidRunId | InvalidSymbol) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", exc.param], "msg": str(exc)}]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(RunNotFound)
    @app.exception_handler(SymbolNotFound)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(404, exc)

    @app.exception_handler(RunIncomplete)
    async def _incomplete(request: Request, exc: Exception) -> JSONResponse:
        return _error(409, exc)

    @app.exception_handler(ValidationError)
    @app.exception_handler(ResponseValidationError)
    async def _off_format(request: Request, exc: ValidationError | ResponseValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = (
            f"a file of this run does not match run-format.md ({where}: {first.get('msg', exc)}); re-run it"
        )
        return JSONResponse(status_code=409, content={"detail": detail})

    @app.get(
        "/health", response_model=Health, tags=["health"], summary="Liveness and runs count (no key needed)"
    )
    def health() -> Health:
        """Always open (no API key): the runs folder served and how many run folders it shows."""
        return Health(runs_dir=str(root), runs=len(results.list_runs(root)))

    guards = [Depends(_api_key_guard(key))] if key else []
    responses = dict(ERRORS)
    if key:
        responses[401] = {"model": ErrorDetail, "description": "Missing or wrong X-API-Key header."}
    api = APIRouter(prefix="/api", dependencies=guards, responses=responses, tags=["runs"])

    def open_run(run_id: str | None) -> Path:
        return results.open_run(root, run_id)

    @api.get("/runs", response_model=list[RunInfo], summary="Every run, newest first")
    def runs() -> list[RunInfo]:
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

    @api.get(
        "/runs/{run_id}",
        response_model=RunDetail,
        response_model_exclude_unset=True,
        summary="One run: manifest and aggregate metrics",
    )
    def run_detail(run_id: RunIdPath) -> RunDetail:
        """manifest.json (command, data sources and hashes, versions, file hashes, `mode`) plus aggregate
        metrics (null for a sweep)."""
        path = open_run(run_id)
        mode = results.run_mode(path)
        return RunDetail(
            run_id=path.name,
            status="complete",
            mode=mode,
            manifest=Manifest(**results.load_manifest(path)),
            metrics=None if mode == results.SWEEP else Metrics(**results.load_symbol_metrics(path)),
        )

    @api.get("/trades", response_model=TradesPage, summary="A page of trades, filtered")
    def trades(
        run_id: RunIdQuery = None,
        symbol: SymbolQuery = None,
        side: Annotated[Literal["long", "short"] | None, Query(description="Only this side.")] = None,
        exit_reason: Annotated[
            str | None,
            Query(pattern=r"^[a-z_]{1,32}$", description="Only this exit reason.", examples=["target"]),
        ] = None,
        start: Annotated[
            IsoDate | None, Query(description="First session_date (inclusive), YYYY-MM-DD.")
        ] = None,
        end: Annotated[
            IsoDate | None, Query(description="Last session_date (inclusive), YYYY-MM-DD.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000, description="Page size.")] = 500,
        offset: Annotated[int, Query(ge=0, le=2**31, description="Trades to skip.")] = 0,
    ) -> TradesPage:
        """Trades sorted by entry time then symbol; `total` counts every trade matching the filters."""
        path = open_run(run_id)
        page = results.trades_page(
            path, symbol, side=side, exit_reason=exit_reason, start=start, end=end, offset=offset, limit=limit
        )
        return TradesPage(
            run_id=path.name,
            symbol=_upper(symbol),
            total=page.total,
            offset=offset,
            limit=limit,
            trades=page.records,
        )

    @api.get("/equity", response_model=EquitySeries, summary="Equity curve (combined when no symbol)")
    def equity(
        run_id: RunIdQuery = None, symbol: SymbolQuery = None, max_points: MaxPoints = None
    ) -> EquitySeries:
        """Equity at every fill and session close, sorted by time."""
        path = open_run(run_id)
        page = results.equity_page(path, symbol, max_points)
        return EquitySeries(
            run_id=path.name,
            symbol=_upper(symbol),
            total=page.total,
            returned=len(page.records),
            points=page.records,
        )

    @api.get(
        "/metrics/core",
        response_model=MetricsResponse,
        response_model_exclude_unset=True,
        summary="Metrics (aggregate when no symbol)",
    )
    def metrics(run_id: RunIdQuery = None, symbol: SymbolQuery = None) -> MetricsResponse:
        """The metrics the run computed (metrics.json), never recomputed."""
        path = open_run(run_id)
        values = results.load_symbol_metrics(path, symbol)
        return MetricsResponse(run_id=path.name, symbol=_upper(symbol), metrics=Metrics(**values))

    @api.get(
        "/sessions", response_model=SessionsResponse, summary="Sessions table (all symbols when no symbol)"
    )
    def sessions(run_id: RunIdQuery = None, symbol: SymbolQuery = None) -> SessionsResponse:
        """One row per session and symbol: OR, ATR, status (traded, no_signal, skipped) and skip reason."""
        path = open_run(run_id)
        page = results.sessions_page(path, symbol)
        return SessionsResponse(
            run_id=path.name, symbol=_upper(symbol), total=page.total, sessions=page.records
        )

    @api.get("/config", response_model=ConfigResponse, summary="The resolved configuration of a run")
    def config(run_id: RunIdQuery = None) -> ConfigResponse:
        """config.json (re-runnable with `--config`) and its SHA-256 from the manifest."""
        path = open_run(run_id)
        digest = results.load_manifest(path).get("config_sha256")
        return ConfigResponse(
            run_id=path.name,
            sha256=digest if isinstance(digest, str) else None,
            config=results.load_config(path),
        )

    @api.get(
        "/sweeps/{run_id}",
        response_model=SweepResponse,
        response_model_exclude_unset=True,
        tags=["research"],
        summary="Ranked results of a sweep run",
    )
    def sweep(
        run_id: RunIdPath,
        symbol: Annotated[
            str | None,
            Query(
                pattern=SWEEP_SYMBOL_PATTERN,
                max_length=32,
                description="Only this symbol's rows (case-insensitive), or `*` for the aggregate rows "
                "(one per combination, over all symbols); omitted: every row.",
                openapi_examples={
                    "aggregate": {"summary": "aggregate rows", "value": "*"},
                    "SPY": {"summary": "one symbol", "value": "SPY"},
                },
            ),
        ] = None,
        sort_by: Annotated[
            SweepSort,
            Query(description="Sort by this column: `rank` (stored order) or a metric key."),
        ] = "rank",
        order: Annotated[
            Literal["asc", "desc"] | None,
            Query(description="Sort direction; default `asc` for rank and combination, `desc` for a metric."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000, description="Page size.")] = 500,
        offset: Annotated[int, Query(ge=0, le=2**31, description="Rows to skip.")] = 0,
    ) -> SweepResponse:
        """sweep_results (one row per combination and symbol plus an aggregate row `*` per combination),
        ranked by `rank_by`; undefined metric values sort last. 404 when the run is not a sweep."""
        path = open_run(run_id)
        info = results.sweep_info(path)
        wanted = None if symbol is None else symbol.upper()
        descending = None if order is None else order == "desc"
        page = results.sweep_page(
            path, wanted, sort_by=sort_by, descending=descending, offset=offset, limit=limit
        )
        keys = info["keys"]
        if order is None:
            order = "asc" if sort_by in ("rank", "combination") else "desc"
        return SweepResponse.model_validate(
            {
                "run_id": path.name,
                "sweep_file": info.get("sweep_file"),
                "keys": keys,
                "rank_by": info["rank_by"],
                "combinations": info.get("combinations"),
                "evaluated": info.get("evaluated"),
                "invalid": info["invalid"],
                "best": info.get("best"),
                "symbol": wanted,
                "sort_by": sort_by,
                "order": order,
                "total": page.total,
                "offset": offset,
                "limit": limit,
                "rows": [_sweep_row(r, keys) for r in page.records],
            }
        )

    @api.get(
        "/walkforward/{run_id}",
        response_model=WalkForwardResponse,
        response_model_exclude_unset=True,
        tags=["research"],
        summary="Folds, robustness and stitched out-of-sample equity of a walk-forward run",
    )
    def walkforward(run_id: RunIdPath, max_points: MaxPoints = None) -> WalkForwardResponse:
        """Every fold (windows, the combination chosen on the train window, its in-sample and
        out-of-sample metrics), the robustness figures of walk_forward.json, the stitched out-of-sample
        metrics and equity. 404 when the run is not a walk-forward."""
        path = open_run(run_id)
        info = results.walkforward_info(path)
        keys = info["keys"]
        folds = results.walkforward_folds_page(path)
        equity = results.walkforward_equity_page(path, max_points)
        return WalkForwardResponse.model_validate(
            {
                **{
                    k: info.get(k)
                    for k in (
                        "sweep_file",
                        "keys",
                        "rank_by",
                        "train_sessions",
                        "test_sessions",
                        "anchored",
                        "combinations",
                        "evaluated",
                        "invalid",
                        "robustness",
                    )
                },
                "run_id": path.name,
                "metrics": results.load_symbol_metrics(path),
                "folds": [_fold(r, keys) for r in folds.records],
                "equity": {"total": equity.total, "returned": len(equity.records), "points": equity.records},
            }
        )

    @api.get(
        "/montecarlo/{run_id}",
        response_model=MonteCarloResponse,
        response_model_exclude_unset=True,
        tags=["research"],
        summary="Monte Carlo summary, percentile bands and path histogram of a run",
    )
    def montecarlo(
        run_id: RunIdPath,
        max_points: Annotated[
            int | None,
            Query(ge=2, le=1_000_000, description="At most this many band steps (evenly spaced, ends kept)."),
        ] = None,
        histogram: Annotated[
            MonteCarloStat | None,
            Query(description="Also return the histogram of this per-path statistic."),
        ] = None,
        bins: Annotated[
            int,
            Query(
                ge=1,
                le=500,
                description="Histogram bins (whole-number statistics: one bin per value "
                "when they span at most this many).",
            ),
        ] = 30,
    ) -> MonteCarloResponse:
        """montecarlo_summary.json (percentiles of total R, max drawdown R and longest losing streak,
        means, the observed values, drawdown-exceedance probabilities) with the percentile bands of
        cum R. 404 when the run has no Monte Carlo output (`run_backtest.py --monte-carlo N`)."""
        path = open_run(run_id)
        summary = results.montecarlo_summary(path)
        bands = results.montecarlo_bands_page(path, max_points)
        bins_out = None
        if histogram is not None:
            counted = results.montecarlo_histogram(path, histogram, bins)
            observed = summary["observed"].get(histogram)
            bins_out = {
                "stat": histogram,
                "edges": counted.edges,
                "counts": counted.counts,
                "observed": observed,
            }
        fields = (
            "n_paths",
            "seed",
            "resample",
            "n_trades",
            "n_units",
            "percentiles",
            "mean",
            "observed",
            "drawdown_thresholds_r",
            "prob_max_drawdown_exceeds",
        )
        return MonteCarloResponse.model_validate(
            {
                **{k: summary.get(k) for k in fields},
                "run_id": path.name,
                "bands": {"total": bands.total, "returned": len(bands.records), "points": bands.records},
                "histogram": bins_out,
            }
        )

    app.include_router(api)
    from orb.catalog_routes import catalog_router
    from orb.jobs.routes import jobs_router

    app.include_router(jobs_router(root, key), dependencies=guards, responses=responses)
    app.include_router(catalog_router(root, key), dependencies=guards, responses=responses)
    return app
