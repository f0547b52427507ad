"""Research endpoints: /api/sweeps, /api/walkforward and /api/montecarlo (docs/research.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from orb.api.deps import SWEEP_SYMBOL_PATTERN, MaxPoints, RunIdPath, RunsDir
from orb.api.models import (
    Fold,
    MonteCarloResponse,
    MonteCarloStat,
    SweepResponse,
    SweepRow,
    SweepSort,
    WalkForwardResponse,
)
from orb.runs import read as results

router = APIRouter()


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


@router.get(
    "/sweeps/{run_id}",
    response_model=SweepResponse,
    response_model_exclude_unset=True,
    tags=["research"],
    summary="Ranked results of a sweep run",
)
def sweep(
    root: RunsDir,
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
    path = results.open_run(root, run_id)
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


@router.get(
    "/walkforward/{run_id}",
    response_model=WalkForwardResponse,
    response_model_exclude_unset=True,
    tags=["research"],
    summary="Folds, robustness and stitched out-of-sample equity of a walk-forward run",
)
def walkforward(root: RunsDir, run_id: RunIdPath, max_points: MaxPoints = None) -> WalkForwardResponse:
    """Every fold (windows, the combination chosen on the train window, its in-sample and
    out-of-sample metrics), the robustness figures of walk_forward.json, the stitched out-of-sample
    metrics and equity. 404 when the run is not a walk-forward."""
    path = results.open_run(root, run_id)
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


@router.get(
    "/montecarlo/{run_id}",
    response_model=MonteCarloResponse,
    response_model_exclude_unset=True,
    tags=["research"],
    summary="Monte Carlo summary, percentile bands and path histogram of a run",
)
def montecarlo(
    root: RunsDir,
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
    path = results.open_run(root, run_id)
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
