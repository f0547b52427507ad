"""Sweep heatmap, walk-forward folds and equity, Monte Carlo bands and drawdown histogram."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from orb.charts.base import (
    ACCENT,
    HEATMAP_SCALE,
    INK,
    NEG,
    NEUTRAL,
    POS,
    SLATE,
    TZ,
    alpha,
    empty,
    finish,
    to_local,
)
from orb.charts.performance import equity_figure
from orb.metric_registry import format_value
from orb.metric_registry import label as label_of
from orb.runs.read import PERCENTILE_KEYS, histogram

# ------------------------------------------------------------------------------------------- research

HEATMAP_AGGREGATIONS = ("mean", "max", "min")
BAND_FILL_OUTER = alpha(ACCENT, 0.12)
BAND_FILL_INNER = alpha(ACCENT, 0.28)


def _axis_values(values: pd.Series) -> list:
    """Distinct parameter values in display order: sorted when all numeric, else in order of appearance."""
    distinct = list(pd.unique(values))
    numeric = all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        for v in distinct
    )
    return sorted(distinct) if numeric else distinct


def _param_label(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def sweep_grid(
    rows: pd.DataFrame, x: str, y: str | None, metric: str, *, agg: str = "mean"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The heatmap cells of a sweep: `metric` per (y, x) pair of parameter values and the rows in each.

    `rows` are sweep_results rows of one symbol (or the aggregate rows); combinations sharing an x and
    y value (other parameters differ) are combined with `agg` (mean, max or min; undefined values
    skipped). Numeric axes are sorted, others follow the grid (`combination`) order. Returns (values,
    counts), index: y values (one "" row when `y` is None), columns: x values.
    """
    if agg not in HEATMAP_AGGREGATIONS:
        raise ValueError(f"agg must be one of {', '.join(HEATMAP_AGGREGATIONS)}, got {agg!r}")
    if y == x:
        raise ValueError(f"x and y must be different parameters, both are {x!r}")
    ys = rows[y] if y is not None else pd.Series("", index=rows.index)
    frame = pd.DataFrame(
        {"x": rows[x].to_numpy(), "y": ys.to_numpy(), "v": rows[metric].to_numpy(dtype=float)}
    )
    grouped = frame.groupby(["y", "x"], sort=False, dropna=False)["v"]
    values = grouped.agg(agg).unstack("x")
    counts = grouped.size().unstack("x")
    in_grid_order = (
        frame.iloc[np.argsort(rows["combination"].to_numpy(), kind="stable")]
        if "combination" in rows
        else frame
    )
    x_order, y_order = _axis_values(in_grid_order["x"]), _axis_values(in_grid_order["y"])
    values = values.reindex(index=y_order, columns=x_order)
    counts = counts.reindex(index=y_order, columns=x_order).fillna(0).astype(int)
    return values, counts


def sweep_heatmap_figure(
    rows: pd.DataFrame,
    x: str,
    y: str | None,
    metric: str,
    *,
    agg: str = "mean",
    title: str | None = None,
) -> go.Figure:
    """Heatmap of `metric` over two swept parameters (see sweep_grid); greener is higher.

    Signed metrics use a red-white-green scale centred on 0, one-signed ones a white-green scale.
    """
    label = label_of(metric)
    title = title or (f"{label} by {x} and {y}" if y is not None else f"{label} by {x}")
    if rows.empty:
        return empty(title, "No sweep rows")
    values, counts = sweep_grid(rows, x, y, metric, agg=agg)
    z = values.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else format_value(metric, float(v)) for v in row] for row in z]
    finite = z[np.isfinite(z)]
    scale: dict[str, Any] = {"colorscale": [[0.0, "#f8fafc"], [1.0, POS]]}
    if len(finite) and finite.min() < 0 < finite.max():
        bound = float(np.abs(finite).max())
        scale = {"colorscale": HEATMAP_SCALE, "zmin": -bound, "zmax": bound, "zmid": 0}
    several = int(counts.to_numpy().max(initial=0)) > 1
    hover = (
        f"{x} %{{x}}"
        + (f"<br>{y} %{{y}}" if y is not None else "")
        + f"<br>{label} %{{text}}"
        + (f"<br>{agg} of %{{customdata}} combinations" if several else "")
        + "<extra></extra>"
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[_param_label(v) for v in values.columns],
            y=[_param_label(v) for v in values.index],
            text=text,
            texttemplate="%{text}",
            customdata=counts.to_numpy(),
            xgap=3,
            ygap=3,
            colorbar={"title": {"text": label}},
            hovertemplate=hover,
            name=label,
            **scale,
        )
    )
    fig.update_xaxes(type="category", title_text=x)
    fig.update_yaxes(type="category", title_text=y or "", visible=y is not None)
    if several:
        title += f" ({agg} over the other parameters)"
    return finish(fig, title, max(300, 160 + 48 * len(values.index)))


def walkforward_folds_figure(folds: pd.DataFrame) -> go.Figure:
    """In-sample vs out-of-sample R per session of every fold (the ratio behind walk-forward efficiency)."""
    title = "R per session by fold: in-sample (train) vs out-of-sample (test)"
    if folds.empty:
        return empty(title, "No folds")
    labels = [f"F{int(f)}" for f in folds["fold"]]
    fig = go.Figure()
    for name, prefix, sessions, color in (
        ("In-sample", "is", "train_sessions", NEUTRAL),
        ("Out-of-sample", "oos", "test_sessions", ACCENT),
    ):
        total = folds[f"{prefix}_total_r"].astype(float)
        count = folds[sessions].astype(float)
        per_session = (total / count.where(count > 0)).to_numpy()
        fig.add_trace(
            go.Bar(
                x=labels,
                y=per_session,
                name=name,
                marker_color=color,
                customdata=np.column_stack([total, folds[sessions], folds["combination"]]),
                hovertemplate=(
                    f"%{{x}} {name}<br>%{{y:+.3f}}R per session<br>total %{{customdata[0]:+.2f}}R over "
                    "%{customdata[1]} sessions<br>combination %{customdata[2]}<extra></extra>"
                ),
            )
        )
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1})
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="R per session")
    return finish(fig, title, 340)


def walkforward_equity_figure(equity: pd.DataFrame, *, unit: str = "r", tz: str = TZ) -> go.Figure:
    """The stitched out-of-sample equity with a dotted line where each fold's test window starts."""
    fig = equity_figure(
        {"Out-of-sample": equity}, unit=unit, tz=tz, title="Stitched out-of-sample equity and drawdown"
    )
    if equity.empty or "fold" not in equity.columns:
        return fig
    starts = equity.groupby("fold", sort=True)["timestamp"].min()
    for fold, start in starts.iloc[1:].items():
        x = to_local(pd.Series([start]), tz).iloc[0]
        fig.add_shape(
            type="line",
            x0=x,
            x1=x,
            y0=0,
            y1=1,
            xref="x",
            yref="paper",
            line={"color": NEUTRAL, "width": 1, "dash": "dot"},
        )
        fig.add_annotation(
            x=x,
            y=1,
            xref="x",
            yref="paper",
            text=f"F{fold}",
            showarrow=False,
            yanchor="bottom",
            font={"size": 10, "color": SLATE},
        )
    return fig


def parameter_stability_frame(robustness: Mapping[str, Any]) -> pd.DataFrame:
    """One row per swept key: the value chosen per fold, distinct values, the most chosen and its share."""
    rows = []
    for key, stats in (robustness.get("parameter_stability") or {}).items():
        chosen = stats.get("chosen") or []
        rows.append(
            {
                "parameter": key,
                "chosen per fold": " → ".join(_param_label(v) for v in chosen),
                "distinct": stats.get("distinct"),
                "most chosen": _param_label(stats.get("mode")),
                "share": stats.get("mode_share"),
                "changes": stats.get("changes"),
            }
        )
    return pd.DataFrame(
        rows, columns=["parameter", "chosen per fold", "distinct", "most chosen", "share", "changes"]
    )


def montecarlo_bands_figure(
    bands: pd.DataFrame, *, unit: str = "trade", title: str | None = None
) -> go.Figure:
    """Fan chart of cum R across bootstrap paths: 5-95 and 25-75 percentile bands, median, the run itself.

    `unit` names a step on the x axis ("trade", or "session" for session resampling).
    """
    title = title or "Monte Carlo: cumulative R percentiles across paths"
    if bands.empty:
        return empty(title, "No trades to resample")
    x = bands["step"]
    fig = go.Figure()
    edge = {"width": 0.5, "color": alpha(ACCENT, 0.4)}
    for low, high, fill, name in (
        ("p5", "p95", BAND_FILL_OUTER, "5th–95th percentile"),
        ("p25", "p75", BAND_FILL_INNER, "25th–75th percentile"),
    ):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=bands[low],
                mode="lines",
                line=edge,
                name=low,
                legendgroup=name,
                showlegend=False,
                hovertemplate=f"{low} %{{y:+.2f}}R<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=bands[high],
                mode="lines",
                line=edge,
                fill="tonexty",
                fillcolor=fill,
                name=name,
                legendgroup=name,
                hovertemplate=f"{high} %{{y:+.2f}}R<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=bands["p50"],
            mode="lines",
            name="Median",
            line={"color": ACCENT, "width": 2},
            hovertemplate="median %{y:+.2f}R<extra></extra>",
        )
    )
    if "observed" in bands.columns:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=bands["observed"],
                mode="lines",
                name="This run",
                line={"color": INK, "width": 2},
                hovertemplate="this run %{y:+.2f}R<extra></extra>",
            )
        )
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1, "dash": "dot"})
    fig.update_xaxes(title_text=f"{unit.capitalize()} number")
    fig.update_yaxes(title_text="Cumulative R")
    fig.update_layout(hovermode="x unified")
    return finish(fig, title, 420)


def montecarlo_drawdown_figure(
    max_drawdown_r: pd.Series | np.ndarray,
    *,
    observed: float | None = None,
    exceed: Mapping[float, float] | None = None,
    bins: int = 40,
) -> go.Figure:
    """Histogram of the paths' max drawdown (R), the run's own drawdown marked, and a dashed line at each
    drawdown threshold -T with the share of paths deeper than T (`exceed`: T -> share)."""
    values = np.asarray(max_drawdown_r, dtype=float)
    title = f"Monte Carlo: max drawdown of {len(values):,} paths (R)"
    counted = histogram(values, bins)
    if not counted.counts:
        return empty(title, "No paths")
    edges = np.asarray(counted.edges)
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counted.counts,
            width=np.diff(edges),
            name="Paths",
            marker={"color": alpha(NEG, 0.55), "line": {"color": "white", "width": 1}},
            customdata=np.column_stack([edges[:-1], edges[1:]]),
            hovertemplate="%{customdata[0]:.2f}R to %{customdata[1]:.2f}R<br>%{y} paths<extra></extra>",
        )
    )
    top = max(counted.counts)
    if observed is not None and math.isfinite(observed):
        fig.add_trace(
            go.Scatter(
                x=[observed, observed],
                y=[0, top * 1.1],
                mode="lines",
                name=f"This run {observed:+.2f}R",
                line={"color": INK, "width": 2.5},
                hovertemplate=f"this run {observed:+.2f}R<extra></extra>",
            )
        )
    for threshold, share in (exceed or {}).items():
        x = -float(threshold)
        if not edges[0] <= x <= edges[-1]:  # beyond every path's drawdown: the line would squash the bars
            continue
        fig.add_shape(
            type="line", x0=x, x1=x, y0=0, y1=top * 1.1, line={"color": SLATE, "width": 1, "dash": "dash"}
        )
        fig.add_annotation(
            x=x,
            y=top * 1.1,
            text=f"P(DD > {float(threshold):g}R)<br>= {share:.1%}",
            showarrow=False,
            xanchor="right",
            yanchor="top",
            font={"size": 11, "color": SLATE},
        )
    fig.update_yaxes(range=[0, top * 1.15])
    fig.update_layout(bargap=0)
    fig.update_xaxes(title_text="Max drawdown (R)")
    fig.update_yaxes(title_text="Paths")
    return finish(fig, title, 380)


def montecarlo_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Percentiles, mean and the run's own value of each per-path statistic of a Monte Carlo summary."""
    labels = {
        "total_r": "Total R",
        "max_drawdown_r": "Max drawdown R",
        "longest_losing_streak": "Longest losing streak",
    }
    rows = []
    for stat, label in labels.items():
        row: dict[str, Any] = {"statistic": label}
        row |= {k: (summary.get("percentiles", {}).get(stat) or {}).get(k) for k in PERCENTILE_KEYS}
        row |= {"mean": summary.get("mean", {}).get(stat), "this run": summary.get("observed", {}).get(stat)}
        rows.append(row)
    return pd.DataFrame(rows).set_index("statistic").astype(float)
