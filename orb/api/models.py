"""Pydantic response models of the API (run-format.md as JSON); `Metrics` is built from the registry."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

from orb.metric_registry import AGGREGATE_METRICS, RUN_METRICS, Kind, Metric
from orb.runs.read import MONTECARLO_STATS, SWEEP_SORT_KEYS
from orb.schema import ExitReason

EXAMPLE_RUN = "backtest_20241002_153045"
EXAMPLE_TIME = "2024-10-02T13:45:00+00:00"
MODE_DESCRIPTION = (
    "What the run holds: `backtest` (trades, equity, metrics), `sweep` (one result per combination: "
    "/api/sweeps), `walk_forward` (folds and stitched out-of-sample result: /api/walkforward) or "
    "`portfolio` (one account over a daily universe: /api/universe, /api/benchmark)."
)
SweepSort = Literal[SWEEP_SORT_KEYS]  # type: ignore[valid-type]
MonteCarloStat = Literal[MONTECARLO_STATS]  # type: ignore[valid-type]
ExitReasonName = Literal[tuple(r.value for r in ExitReason)]  # type: ignore[valid-type]
ParamValue = Annotated[
    Any, WithJsonSchema({"description": "The value that ran (number, string, bool or null)."})
]

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]  # passes JSON ints through unchanged
IsoTime = Annotated[  # orb.runs.read.records() formats times; the schema still says date-time
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
    runs_dir: str | None = Field(
        description="Absolute path of the runs folder served; null when an API key is set."
    )
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


_BREAKDOWN_TYPES: dict[str, Any] = {"exit_reasons": dict[str, int], "symbols": int | list[str]}


def _metric_field(metric: Metric, aggregate: bool) -> tuple[Any, Any]:
    """(type, Field) of one registry metric: whole numbers int, others Number, breakdowns their shape."""
    if metric.kind is Kind.BREAKDOWN:
        kind: Any = _BREAKDOWN_TYPES[metric.key]
    else:
        kind = int if metric.integer else Number
    text = metric.label + (f" ({metric.unit})" if metric.unit not in metric.label else "")
    text += ". Aggregate only." if aggregate else ""
    return kind | None, Field(None, description=text)


Metrics = create_model(
    "Metrics",
    __config__=ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_extra={
            "examples": [{"total_trades": 58, "win_rate": 0.47, "total_r": 6.41, "sharpe": 1.2}]
        },
    ),
    __doc__="Metric keys of run-format.md; null where undefined (no trades, zero variance).",
    __module__=__name__,
    **{m.key: _metric_field(m, False) for m in RUN_METRICS},
    **{m.key: _metric_field(m, True) for m in AGGREGATE_METRICS},
)


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
    breakeven_time: IsoTime | None = Field(
        None, description="Start of the first bar under the breakeven stop; null when the stop never moved."
    )


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
    long_trigger: float | None = Field(None, description="The long entry level the engine used.")
    short_trigger: float | None = Field(None, description="The short entry level the engine used.")


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
