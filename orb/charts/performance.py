"""Equity, trade statistics and factor attribution of a backtest's trades."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orb.charts.base import (
    ACCENT,
    COMBINED,
    EXIT_COLORS,
    EXIT_ORDER,
    HEATMAP_SCALE,
    INK,
    LONG_COLOR,
    MONTHS,
    NEG,
    NEUTRAL,
    POS,
    SERIES,
    SHORT_COLOR,
    TZ,
    WEEKDAYS,
    alpha,
    empty,
    finish,
    group_stats,
    r_text,
    to_local,
)
from orb.config import FACTOR_NAMES

# --------------------------------------------------------------------------------------------- equity


def equity_figure(
    curves: Mapping[str, pd.DataFrame], *, unit: str = "usd", title: str | None = None, tz: str = TZ
) -> go.Figure:
    """Equity (unit "usd") or cumulative R (unit "r") of each labelled curve, drawdown underneath.

    `curves` maps a label (symbol, "Combined", a run id) to an equity frame (run-format.md columns).
    Drawdown is drawn below zero whatever sign the file uses.
    """
    if unit not in ("usd", "r"):
        raise ValueError(f"unit must be 'usd' or 'r', got {unit!r}")
    value_col, dd_col = ("equity", "drawdown_pct") if unit == "usd" else ("cum_r", "drawdown_r")
    title = title or ("Equity ($) and drawdown (%)" if unit == "usd" else "Cumulative R and drawdown (R)")
    present = {label: c for label, c in curves.items() if c is not None and len(c)}
    if not present:
        return empty(title, "No equity points in this run")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    value_fmt, dd_fmt = ("$%{y:,.2f}", "%{y:.2f}%") if unit == "usd" else ("%{y:+.2f}R", "%{y:.2f}R")
    for i, (label, curve) in enumerate(present.items()):
        color = COMBINED if label.lower() == "combined" else SERIES[i % len(SERIES)]
        x = to_local(curve["timestamp"], tz)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=curve[value_col].astype(float),
                name=label,
                legendgroup=label,
                mode="lines",
                line={"color": color, "width": 2, "shape": "hv"},
                hovertemplate=f"{label}<br>%{{x|%Y-%m-%d %H:%M}}<br>{value_fmt}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=-curve[dd_col].astype(float).abs(),
                name=f"{label} drawdown",
                legendgroup=label,
                showlegend=False,
                mode="lines",
                fill="tozeroy",
                fillcolor=alpha(color, 0.12),
                line={"color": color, "width": 1, "shape": "hv"},
                hovertemplate=f"{label} drawdown<br>%{{x|%Y-%m-%d %H:%M}}<br>{dd_fmt}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    if unit == "r":
        fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1, "dash": "dot"}, row=1, col=1)
    fig.update_yaxes(title_text="Equity ($)" if unit == "usd" else "Cumulative R", row=1, col=1)
    fig.update_yaxes(title_text="Drawdown (%)" if unit == "usd" else "Drawdown (R)", row=2, col=1)
    # Hide nights and weekends so the curve is continuous across sessions (16:00 close points stay visible).
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}, {"bounds": [16.01, 9.5], "pattern": "hour"}])
    fig.update_layout(hovermode="closest")
    return finish(fig, title, 460)


# ---------------------------------------------------------------------------------------- trade stats


def r_distribution_figure(trades: pd.DataFrame, *, bin_size: float = 0.25) -> go.Figure:
    """Histogram of net R per trade, winners and losers coloured, with the average marked."""
    title = "R-multiple distribution"
    if trades.empty:
        return empty(title, "No trades")
    r = trades["r_multiple"].astype(float)
    start = math.floor(r.min() / bin_size) * bin_size
    bins = {"start": start, "end": r.max() + bin_size, "size": bin_size}
    fig = go.Figure()
    for name, part, color in (("Winners", r[r > 0], POS), ("Losers", r[r <= 0], NEG)):
        fig.add_trace(
            go.Histogram(
                x=part,
                name=name,
                xbins=bins,
                marker={"color": color, "line": {"color": "white", "width": 1}},
                hovertemplate=f"{name}<br>%{{x}}R<br>%{{y}} trades<extra></extra>",
            )
        )
    mean = float(r.mean())
    fig.add_vline(
        x=mean,
        line={"color": INK, "dash": "dash", "width": 1.5},
        annotation_text=f"avg {r_text(mean)}",
        annotation_position="top",
    )
    fig.update_layout(barmode="stack", bargap=0.02)
    fig.update_xaxes(title_text="Net R per trade")
    fig.update_yaxes(title_text="Trades")
    return finish(fig, title, 360)


def exit_reason_figure(trades: pd.DataFrame, metrics: Mapping[str, Any] | None = None) -> go.Figure:
    """Trades and total R by final exit reason; the counts are the metrics' `exit_reasons` when the
    trades' metrics (metrics.json) are given."""
    title = "Exit reasons"
    if trades.empty:
        return empty(title, "No trades")
    stats = group_stats(trades, trades["exit_reason"].astype(str))
    if metrics is not None:
        stats = stats.assign(trades=pd.Series(metrics["exit_reasons"]).reindex(stats.index))
    order = [r for r in EXIT_ORDER if r in stats.index] + sorted(set(stats.index) - set(EXIT_ORDER))
    stats = stats.loc[order]
    colors = [EXIT_COLORS.get(r, ACCENT) for r in stats.index]
    share = stats["trades"] / stats["trades"].sum()
    custom = np.column_stack([stats["trades"], stats["win_rate"], stats["avg_r"], stats["total_r"]])
    hover = (
        "%{y}<br>%{customdata[0]} trades<br>win rate %{customdata[1]:.0%}"
        "<br>avg %{customdata[2]:+.2f}R<br>total %{customdata[3]:+.2f}R<extra></extra>"
    )
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("Trades", "Total R"))
    fig.add_trace(
        go.Bar(
            y=list(stats.index),
            x=stats["trades"],
            orientation="h",
            name="Trades",
            marker_color=colors,
            text=[f"{n} ({s:.0%})" for n, s in zip(stats["trades"], share, strict=True)],
            textposition="auto",
            customdata=custom,
            hovertemplate=hover,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            y=list(stats.index),
            x=stats["total_r"],
            orientation="h",
            name="Total R",
            marker_color=colors,
            text=[r_text(v) for v in stats["total_r"]],
            textposition="outside",
            cliponaxis=False,
            customdata=custom,
            hovertemplate=hover,
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(autorange="reversed")
    low, high = min(0.0, stats["total_r"].min()), max(0.0, stats["total_r"].max())
    pad = 0.45 * ((high - low) or 1.0)  # room for the labels outside the bars
    fig.update_xaxes(range=[low - (pad if low < 0 else 0), high + (pad if high > 0 else 0)], row=1, col=2)
    fig.update_xaxes(range=[0, stats["trades"].max() * 1.3], row=1, col=1)
    fig.update_layout(showlegend=False)
    return finish(fig, title, 320)


def _signed_bars(stats: pd.DataFrame, labels: list[str], name: str) -> go.Bar:
    custom = np.column_stack([stats["trades"], stats["win_rate"], stats["avg_r"], stats["total_r"]])
    return go.Bar(
        x=labels,
        y=stats["total_r"],
        name=name,
        marker_color=[POS if v > 0 else NEG for v in stats["total_r"]],
        text=[f"{n}" for n in stats["trades"]],
        textposition="outside",
        customdata=custom,
        hovertemplate=(
            "%{x}<br>%{customdata[0]} trades<br>win rate %{customdata[1]:.0%}"
            "<br>avg %{customdata[2]:+.2f}R<br>total %{customdata[3]:+.2f}R<extra></extra>"
        ),
    )


def time_of_day_figure(trades: pd.DataFrame, *, tz: str = TZ) -> go.Figure:
    """Total R (bar labels: trade counts) by session weekday and by local entry hour."""
    title = "Performance by weekday and entry hour (total R; labels: trades)"
    if trades.empty:
        return empty(title, "No trades")
    weekday = pd.to_datetime(trades["session_date"]).dt.day_of_week
    by_day = group_stats(trades, weekday)
    hour = to_local(trades["entry_time"], tz).dt.hour
    by_hour = group_stats(trades, hour)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("By weekday", f"By entry hour ({tz})"))
    fig.add_trace(_signed_bars(by_day, [WEEKDAYS[d] for d in by_day.index], "Weekday"), row=1, col=1)
    fig.add_trace(_signed_bars(by_hour, [f"{h:02d}:00" for h in by_hour.index], "Entry hour"), row=1, col=2)
    fig.update_yaxes(title_text="Total R", row=1, col=1)
    fig.update_layout(showlegend=False)
    return finish(fig, title, 340)


def monthly_heatmap_figure(trades: pd.DataFrame) -> go.Figure:
    """Total R per calendar month (rows: years, columns: months), green up, red down."""
    title = "Monthly R"
    if trades.empty:
        return empty(title, "No trades")
    day = pd.to_datetime(trades["session_date"])
    frame = pd.DataFrame(
        {"year": day.dt.year, "month": day.dt.month, "r": trades["r_multiple"].astype(float).to_numpy()}
    )
    total = frame.pivot_table(index="year", columns="month", values="r", aggfunc="sum")
    count = frame.pivot_table(index="year", columns="month", values="r", aggfunc="size")
    months = list(range(1, 13))
    total = total.reindex(columns=months)
    count = count.reindex(columns=months).fillna(0).astype(int)
    z = total.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:+.1f}" for v in row] for row in z]
    bound = float(np.nanmax(np.abs(z))) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(MONTHS),
            y=[str(y) for y in total.index],
            text=text,
            texttemplate="%{text}",
            customdata=count.to_numpy(),
            colorscale=HEATMAP_SCALE,
            zmin=-bound,
            zmax=bound,
            zmid=0,
            xgap=3,
            ygap=3,
            colorbar={"title": {"text": "R"}},
            hovertemplate="%{x} %{y}<br>total %{z:+.2f}R<br>%{customdata} trades<extra></extra>",
            name="Monthly R",
        )
    )
    fig.update_yaxes(type="category", autorange="reversed")
    return finish(fig, title, max(220, 130 + 56 * len(total.index)))


def long_short_figure(trades: pd.DataFrame, metrics: Mapping[str, Any] | None = None) -> go.Figure:
    """Long vs short: trades, win rate and total R side by side; trades and win rates are the metrics'
    `long_trades`, `long_win_rate`, ... when the trades' metrics (metrics.json) are given."""
    title = "Long vs short"
    if trades.empty:
        return empty(title, "No trades")
    stats = group_stats(trades, trades["side"].astype(str)).reindex(["long", "short"])
    stats = stats.fillna({"trades": 0, "wins": 0, "total_r": 0.0})
    if metrics is not None:
        sides = ["long", "short"]
        stats = stats.assign(
            trades=[metrics[f"{side}_trades"] for side in sides],
            win_rate=[
                math.nan if metrics[f"{side}_win_rate"] is None else metrics[f"{side}_win_rate"]
                for side in sides
            ],
        )
    labels = ["Long", "Short"]
    colors = [LONG_COLOR, SHORT_COLOR]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Trades", "Win rate", "Total R"))
    panels = (
        ("Trades", stats["trades"], [f"{int(n)}" for n in stats["trades"]]),
        ("Win rate", stats["win_rate"], ["" if pd.isna(v) else f"{v:.0%}" for v in stats["win_rate"]]),
        ("Total R", stats["total_r"], [r_text(v) for v in stats["total_r"]]),
    )
    custom = np.column_stack([stats["trades"], stats["win_rate"], stats["avg_r"], stats["total_r"]])
    for col, (name, values, text) in enumerate(panels, start=1):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=name,
                marker_color=colors,
                text=text,
                textposition="auto",
                textangle=0,
                customdata=custom,
                hovertemplate=(
                    "%{x}<br>%{customdata[0]} trades<br>win rate %{customdata[1]:.0%}"
                    "<br>avg %{customdata[2]:+.2f}R<br>total %{customdata[3]:+.2f}R<extra></extra>"
                ),
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(showlegend=False)
    return finish(fig, title, 320)


# ---------------------------------------------------------------------------------- factor attribution


def factor_columns(trades: pd.DataFrame) -> list[str]:
    """The `factor_<name>` columns present, in FACTOR_NAMES order, then any others."""
    known = [f"factor_{n}" for n in FACTOR_NAMES if f"factor_{n}" in trades.columns]
    extra = sorted(c for c in trades.columns if c.startswith("factor_") and c not in known)
    return known + extra


def factor_attribution(trades: pd.DataFrame) -> pd.DataFrame:
    """Per factor and state (present/absent): trades, win_rate, avg_r, total_r."""
    rows = []
    for col in factor_columns(trades):
        flag = trades[col].fillna(0).astype(float) > 0
        for present in (True, False):
            part = trades.loc[flag == present, "r_multiple"].astype(float)
            rows.append(
                {
                    "factor": col.removeprefix("factor_"),
                    "present": present,
                    "trades": len(part),
                    "win_rate": float((part > 0).mean()) if len(part) else np.nan,
                    "avg_r": float(part.mean()) if len(part) else np.nan,
                    "total_r": float(part.sum()),
                }
            )
    return pd.DataFrame(rows, columns=["factor", "present", "trades", "win_rate", "avg_r", "total_r"])


def score_attribution(trades: pd.DataFrame) -> pd.DataFrame:
    """Per confluence score: trades, win_rate, avg_r, total_r (sorted by score)."""
    if trades.empty or "score" not in trades.columns:
        return pd.DataFrame(columns=["score", "trades", "win_rate", "avg_r", "total_r"])
    stats = group_stats(trades, trades["score"].astype(float))
    return stats.reset_index(names="score")[["score", "trades", "win_rate", "avg_r", "total_r"]]


def factor_attribution_figure(trades: pd.DataFrame) -> go.Figure:
    """Average R and win rate with each confluence factor present vs absent, and by score."""
    title = "Factor attribution"
    table = factor_attribution(trades)
    if trades.empty or table.empty:
        return empty(title, "No trades with confluence factors")
    by_score = score_attribution(trades)
    fig = make_subplots(
        rows=2,
        cols=2,
        column_widths=[0.62, 0.38],
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=("Avg R: factor present vs absent", "Avg R by score", "Win rate", "Win rate by score"),
    )
    hover = (
        "%{x} %{fullData.name}<br>%{customdata[0]} trades<br>win rate %{customdata[1]:.0%}"
        "<br>avg %{customdata[2]:+.2f}R<extra></extra>"
    )
    for present, name, color in ((True, "Present", POS), (False, "Absent", NEUTRAL)):
        part = table[table["present"] == present]
        custom = np.column_stack([part["trades"], part["win_rate"], part["avg_r"]])
        for row, col_name, fmt in ((1, "avg_r", "{:+.2f}"), (2, "win_rate", "{:.0%}")):
            fig.add_trace(
                go.Bar(
                    x=part["factor"],
                    y=part[col_name],
                    name=name,
                    legendgroup=name,
                    showlegend=row == 1,
                    marker_color=color,
                    text=["" if pd.isna(v) else fmt.format(v) for v in part[col_name]],
                    textposition="auto",
                    customdata=custom,
                    hovertemplate=hover,
                ),
                row=row,
                col=1,
            )
    labels = [f"{s:g}" for s in by_score["score"]]
    custom = np.column_stack([by_score["trades"], by_score["win_rate"], by_score["avg_r"]])
    score_hover = (
        "score %{x}<br>%{customdata[0]} trades<br>win rate %{customdata[1]:.0%}"
        "<br>avg %{customdata[2]:+.2f}R<extra></extra>"
    )
    for row, col_name, fmt in ((1, "avg_r", "{:+.2f}"), (2, "win_rate", "{:.0%}")):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=by_score[col_name],
                name="By score",
                showlegend=False,
                marker_color=ACCENT,
                text=[
                    f"{fmt.format(v)}<br>n={n}"
                    for v, n in zip(by_score[col_name], by_score["trades"], strict=True)
                ],
                textposition="auto",
                customdata=custom,
                hovertemplate=score_hover,
            ),
            row=row,
            col=2,
        )
    fig.update_xaxes(type="category")
    fig.update_xaxes(title_text="Confluence score", row=2, col=2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=2)
    fig.update_layout(barmode="group", legend={"y": 1.08})
    return finish(fig, title, 540)
