"""Plotly figures and display tables of a run, shared by the Streamlit dashboard and the HTML report.

Every function takes DataFrames with run-format.md columns (times tz-aware UTC) and returns a new
object; nothing here reads files. Times are shown in exchange-local time (`tz`, America/New_York by
default) as naive wall-clock values, so plotly draws 09:30 as 09:30 whatever the viewer's timezone.
A trade is a winner when its `r_multiple` (net R) is above 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from orb.config import FACTOR_NAMES
from orb.runs.read import PERCENTILE_KEYS, histogram

TZ = "America/New_York"

# One colour scheme for every chart (Tailwind-like tones: readable on white, distinct for colour-blind users).
POS = "#16a34a"
NEG = "#dc2626"
NEUTRAL = "#94a3b8"
SLATE = "#475569"
INK = "#0f172a"
ACCENT = "#2563eb"
LONG = "#2563eb"
SHORT = "#f59e0b"
OR_FILL = "rgba(37, 99, 235, 0.10)"
SERIES = ("#2563eb", "#f59e0b", "#7c3aed", "#0d9488", "#db2777", "#65a30d", "#0ea5e9", "#ea580c")
COMBINED = INK
EXIT_COLORS = {"target": POS, "eod": ACCENT, "breakeven": NEUTRAL, "stop": NEG}
EXIT_ORDER = ("target", "eod", "breakeven", "stop")
FILL_SYMBOLS = {
    "t1": "circle",
    "t2": "circle",
    "target": "star",
    "stop": "x",
    "breakeven": "diamond",
    "eod": "square",
}
FILL_COLORS = {"t1": POS, "t2": POS, "target": POS, "stop": NEG, "breakeven": SLATE, "eod": ACCENT}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HEATMAP_SCALE = [[0.0, NEG], [0.5, "#f8fafc"], [1.0, POS]]

TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
TEMPLATE.layout.update(
    font={
        "family": "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        "size": 13,
        "color": INK,
    },
    title={
        "font": {"size": 16},
        "x": 0.01,
        "xanchor": "left",
        "y": 0.985,
        "yref": "container",
        "yanchor": "top",
    },
    colorway=list(SERIES),
    hoverlabel={"font": {"size": 12}},
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
    margin={"l": 60, "r": 20, "t": 84, "b": 40},
)
# Bar labels stay horizontal and are never cut off at the plot edge.
TEMPLATE.data.bar = [go.Bar(cliponaxis=False, textangle=0)]


def _alpha(color: str, alpha: float) -> str:
    """'#rrggbb' -> 'rgba(r, g, b, alpha)'."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def to_local(times: pd.Series | pd.Index, tz: str = TZ) -> pd.Series | pd.Index:
    """UTC (or naive UTC) timestamps -> naive exchange-local wall-clock timestamps."""
    values = pd.to_datetime(times)
    as_series = isinstance(values, pd.Series)
    dt = values.dt if as_series else values
    if dt.tz is None:
        values = dt.tz_localize("UTC")
        dt = values.dt if as_series else values
    local = dt.tz_convert(tz)
    return local.dt.tz_localize(None) if as_series else local.tz_localize(None)


def _finish(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title_text=title, height=height)
    return fig


def _empty(title: str, message: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"color": NEUTRAL}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _finish(fig, title, height)


def _r_text(value: float) -> str:
    return f"{value:+.2f}R"


def _group_stats(trades: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Trades, wins, win rate, average and total R per value of `key` (rows sorted by key)."""
    r = trades["r_multiple"].astype(float)
    frame = pd.DataFrame({"key": key.to_numpy(), "r": r.to_numpy(), "win": (r > 0).to_numpy()})
    stats = frame.groupby("key", sort=True).agg(
        trades=("r", "size"), wins=("win", "sum"), avg_r=("r", "mean"), total_r=("r", "sum")
    )
    return stats.assign(win_rate=stats["wins"] / stats["trades"])


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
        return _empty(title, "No equity points in this run")
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
                fillcolor=_alpha(color, 0.12),
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
    return _finish(fig, title, 460)


# ---------------------------------------------------------------------------------------- trade stats


def r_distribution_figure(trades: pd.DataFrame, *, bin_size: float = 0.25) -> go.Figure:
    """Histogram of net R per trade, winners and losers coloured, with the average marked."""
    title = "R-multiple distribution"
    if trades.empty:
        return _empty(title, "No trades")
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
        annotation_text=f"avg {_r_text(mean)}",
        annotation_position="top",
    )
    fig.update_layout(barmode="stack", bargap=0.02)
    fig.update_xaxes(title_text="Net R per trade")
    fig.update_yaxes(title_text="Trades")
    return _finish(fig, title, 360)


def exit_reason_figure(trades: pd.DataFrame) -> go.Figure:
    """Trades and total R by final exit reason."""
    title = "Exit reasons"
    if trades.empty:
        return _empty(title, "No trades")
    stats = _group_stats(trades, trades["exit_reason"].astype(str))
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
            text=[_r_text(v) for v in stats["total_r"]],
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
    return _finish(fig, title, 320)


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
        return _empty(title, "No trades")
    weekday = pd.to_datetime(trades["session_date"]).dt.day_of_week
    by_day = _group_stats(trades, weekday)
    hour = to_local(trades["entry_time"], tz).dt.hour
    by_hour = _group_stats(trades, hour)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("By weekday", f"By entry hour ({tz})"))
    fig.add_trace(_signed_bars(by_day, [WEEKDAYS[d] for d in by_day.index], "Weekday"), row=1, col=1)
    fig.add_trace(_signed_bars(by_hour, [f"{h:02d}:00" for h in by_hour.index], "Entry hour"), row=1, col=2)
    fig.update_yaxes(title_text="Total R", row=1, col=1)
    fig.update_layout(showlegend=False)
    return _finish(fig, title, 340)


def monthly_heatmap_figure(trades: pd.DataFrame) -> go.Figure:
    """Total R per calendar month (rows: years, columns: months), green up, red down."""
    title = "Monthly R"
    if trades.empty:
        return _empty(title, "No trades")
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
    return _finish(fig, title, max(220, 130 + 56 * len(total.index)))


def long_short_figure(trades: pd.DataFrame) -> go.Figure:
    """Long vs short: trades, win rate and total R side by side."""
    title = "Long vs short"
    if trades.empty:
        return _empty(title, "No trades")
    stats = _group_stats(trades, trades["side"].astype(str)).reindex(["long", "short"])
    stats = stats.fillna({"trades": 0, "wins": 0, "total_r": 0.0})
    labels = ["Long", "Short"]
    colors = [LONG, SHORT]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Trades", "Win rate", "Total R"))
    panels = (
        ("Trades", stats["trades"], [f"{int(n)}" for n in stats["trades"]]),
        ("Win rate", stats["win_rate"], ["" if pd.isna(v) else f"{v:.0%}" for v in stats["win_rate"]]),
        ("Total R", stats["total_r"], [_r_text(v) for v in stats["total_r"]]),
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
    return _finish(fig, title, 320)


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
    stats = _group_stats(trades, trades["score"].astype(float))
    return stats.reset_index(names="score")[["score", "trades", "win_rate", "avg_r", "total_r"]]


def factor_attribution_figure(trades: pd.DataFrame) -> go.Figure:
    """Average R and win rate with each confluence factor present vs absent, and by score."""
    title = "Factor attribution"
    table = factor_attribution(trades)
    if trades.empty or table.empty:
        return _empty(title, "No trades with confluence factors")
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
    return _finish(fig, title, 540)


# -------------------------------------------------------------------------------------- session replay


def _bars_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars with a `timestamp` column (accepts the bar contract's index or a column)."""
    return bars if "timestamp" in bars.columns else bars.reset_index(names="timestamp")


def _t1_touch(bars: pd.DataFrame, trade: Mapping[str, Any], direction: int) -> pd.Timestamp | None:
    """Start of the first bar after the entry bar that reached T1 (for a T1 leg of 0 shares)."""
    after = bars[(bars["timestamp"] > trade["entry_time"]) & (bars["timestamp"] <= trade["exit_time"])]
    reached = after["high"] >= trade["t1_price"] if direction > 0 else after["low"] <= trade["t1_price"]
    hits = after.loc[reached, "timestamp"]
    return hits.iloc[0] if len(hits) else None


def _level(
    fig: go.Figure, x0, x1, y: float, name: str, color: str, dash: str, hover: str, shown: set
) -> None:
    fig.add_trace(
        go.Scatter(
            x=[x0, x1],
            y=[y, y],
            mode="lines",
            name=name,
            legendgroup=name,
            showlegend=name not in shown,
            line={"color": color, "width": 1.6, "dash": dash},
            hovertemplate=f"{hover}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    shown.add(name)


def session_replay_figure(
    bars: pd.DataFrame,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    or_high: float | None = None,
    or_low: float | None = None,
    or_minutes: int | None = None,
    trigger_buffer: float = 0.0,
    be_buffer: float = 0.0,
    interval_minutes: int = 1,
    symbol: str = "",
    tz: str = TZ,
) -> go.Figure:
    """Candlestick of one session with the OR box, trigger levels and every trade of that session.

    `bars` are the session's regular-hours bars (bar contract or a `timestamp` column), `trades` the
    session's trades, `fills` their fills. The OR defaults to the first trade's. Trigger levels are
    OR high + `trigger_buffer` and OR low - `trigger_buffer`; the breakeven stop is the entry fill
    +/- `be_buffer` from the bar after T1. Each exit is annotated with its leg's R
    ((exit - entry) * direction / R per share, before costs) and reason; the last with the trade's net R.
    """
    bars = _bars_frame(bars)
    if bars.empty:
        return _empty(f"{symbol} session replay".strip(), "No bars for this session", 520)
    bars = bars.sort_values("timestamp")
    step = pd.Timedelta(minutes=interval_minutes)
    local = to_local(bars["timestamp"], tz)
    session_day = local.iloc[0].date()
    first_trade = trades.iloc[0] if len(trades) else None
    if first_trade is not None:
        or_high = or_high if or_high is not None else float(first_trade["or_high"])
        or_low = or_low if or_low is not None else float(first_trade["or_low"])
        or_minutes = or_minutes if or_minutes is not None else int(first_trade["or_minutes"])

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.8, 0.2], vertical_spacing=0.03)
    fig.add_trace(
        go.Candlestick(
            x=local,
            open=bars["open"],
            high=bars["high"],
            low=bars["low"],
            close=bars["close"],
            name="Price",
            increasing={"line": {"color": POS, "width": 1}, "fillcolor": POS},
            decreasing={"line": {"color": NEG, "width": 1}, "fillcolor": NEG},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    up = (bars["close"] >= bars["open"]).to_numpy()
    fig.add_trace(
        go.Bar(
            x=local,
            y=bars["volume"],
            name="Volume",
            marker_color=np.where(up, "rgba(22,163,74,0.45)", "rgba(220,38,38,0.45)"),
            showlegend=False,
            hovertemplate="%{x|%H:%M}<br>volume %{y:,}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    shown: set[str] = set()
    first_x, last_x = local.iloc[0], local.iloc[-1] + step / 2
    if or_high is not None and or_low is not None and or_minutes:
        half = step / 2
        x0, x1 = first_x - half, first_x + pd.Timedelta(minutes=or_minutes) - half
        fig.add_trace(
            go.Scatter(
                x=[x0, x1, x1, x0, x0],
                y=[or_low, or_low, or_high, or_high, or_low],
                mode="lines",
                fill="toself",
                fillcolor=OR_FILL,
                line={"color": ACCENT, "width": 1},
                name=f"Opening range ({or_minutes} min)",
                hovertemplate=f"OR high {or_high:.2f}<br>OR low {or_low:.2f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        upper, lower = or_high + trigger_buffer, or_low - trigger_buffer
        _level(fig, x1, last_x, upper, "Long trigger", LONG, "dash", f"long trigger {upper:.2f}", shown)
        _level(fig, x1, last_x, lower, "Short trigger", SHORT, "dash", f"short trigger {lower:.2f}", shown)

    for _, trade in trades.sort_values("entry_time").iterrows():
        _draw_trade(fig, trade, bars, fills, be_buffer=be_buffer, step=step, tz=tz, shown=shown)

    title = f"{symbol} {session_day:%a %Y-%m-%d} · session replay ({tz})".strip()
    fig.update_xaxes(tickformat="%H:%M", rangeslider_visible=False)
    fig.update_yaxes(title_text="Price", row=1, col=1)
    fig.update_yaxes(title_text="Vol", row=2, col=1)
    fig.update_layout(
        hovermode="closest",
        legend={"yanchor": "top", "y": -0.06, "xanchor": "left", "x": 0},
        margin={"b": 70},
    )
    return _finish(fig, title, 640)


def _draw_trade(
    fig: go.Figure,
    trade: pd.Series,
    bars: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    be_buffer: float,
    step: pd.Timedelta,
    tz: str,
    shown: set,
) -> None:
    """Entry marker, stop (and breakeven move), target lines and annotated exits of one trade."""
    direction = 1 if trade["side"] == "long" else -1
    entry, r_ps = float(trade["entry_price"]), float(trade["r_per_share"])
    legs = fills[fills["trade_id"] == trade["trade_id"]].sort_values("time", kind="stable")
    entry_t = to_local(pd.Series([trade["entry_time"]]), tz).iloc[0]
    exit_t = to_local(pd.Series([trade["exit_time"]]), tz).iloc[0]
    tag = f"#{trade['trade_id']} {trade['side']}"

    entry_legs = legs[legs["kind"] == "entry"]
    entry_x = to_local(entry_legs["time"], tz) if len(entry_legs) else pd.Series([entry_t])
    entry_y = entry_legs["price"] if len(entry_legs) else pd.Series([entry])
    score = trade.get("score")
    score_text = "" if score is None or pd.isna(score) else f"<br>score {score:g}"
    fig.add_trace(
        go.Scatter(
            x=entry_x,
            y=entry_y,
            mode="markers",
            name="Entry",
            legendgroup="Entry",
            showlegend="Entry" not in shown,
            marker={
                "symbol": "triangle-up" if direction > 0 else "triangle-down",
                "size": 15,
                "color": LONG if direction > 0 else SHORT,
                "line": {"color": INK, "width": 1},
            },
            hovertemplate=(
                f"{tag} entry<br>%{{x|%H:%M}} @ %{{y:.2f}}<br>{int(trade['shares'])} shares, "
                f"R/share {r_ps:.2f}{score_text}<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )
    shown.add("Entry")

    stop = float(trade["stop_price"])
    be_from = None
    t1 = trade.get("t1_price")
    if t1 is not None and not pd.isna(t1):
        t1_fill = legs.loc[legs["kind"] == "t1", "time"]
        touched = t1_fill.iloc[0] if len(t1_fill) else _t1_touch(bars, trade, direction)
        if touched is not None and pd.Timestamp(touched) < pd.Timestamp(trade["exit_time"]):
            be_from = to_local(pd.Series([touched]), tz).iloc[0] + step
    stop_end = min(be_from, exit_t) if be_from is not None else exit_t
    _level(
        fig, entry_t, stop_end, stop, "Initial stop", NEG, "solid", f"{tag} initial stop {stop:.2f}", shown
    )
    if be_from is not None and be_from <= exit_t:
        be = entry + direction * be_buffer
        _level(fig, be_from, exit_t, be, "Breakeven stop", SLATE, "solid", f"{tag} breakeven {be:.2f}", shown)
        fig.add_annotation(
            x=be_from,
            y=be,
            text="BE",
            showarrow=False,
            yshift=9,
            font={"size": 10, "color": SLATE},
            row=1,
            col=1,
        )
    for col, label in (("t1_price", "T1"), ("t2_price", "T2"), ("target_price", "Target")):
        level = trade.get(col)
        if level is None or pd.isna(level):
            continue
        r_level = (float(level) - entry) * direction / r_ps
        _level(
            fig,
            entry_t,
            exit_t,
            float(level),
            label,
            POS,
            "dot",
            f"{tag} {label} {level:.2f} ({r_level:+.1f}R)",
            shown,
        )

    exits = legs[legs["kind"] != "entry"]
    if exits.empty:
        return
    exit_x = to_local(exits["time"], tz)
    leg_r = (exits["price"].astype(float) - entry) * direction / r_ps
    kinds = exits["kind"].astype(str).tolist()
    fig.add_trace(
        go.Scatter(
            x=exit_x,
            y=exits["price"],
            mode="markers",
            name="Exits",
            legendgroup="Exits",
            showlegend="Exits" not in shown,
            marker={
                "symbol": [FILL_SYMBOLS.get(k, "circle") for k in kinds],
                "size": 12,
                "color": [FILL_COLORS.get(k, INK) for k in kinds],
                "line": {"color": INK, "width": 1},
            },
            customdata=np.column_stack([kinds, exits["shares"].astype(int), leg_r]),
            hovertemplate=(
                f"{tag} %{{customdata[0]}}<br>%{{x|%H:%M}} @ %{{y:.2f}}<br>%{{customdata[1]}} shares"
                "<br>leg %{customdata[2]:+.2f}R<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )
    shown.add("Exits")
    net_r = float(trade["r_multiple"])
    for i, (x, y, kind, r) in enumerate(zip(exit_x, exits["price"], kinds, leg_r, strict=True)):
        text = f"{kind} {_r_text(r)}"
        if i == len(kinds) - 1:
            text += f"<br><b>trade {_r_text(net_r)} net</b>"
        fig.add_annotation(
            x=x,
            y=y,
            text=text,
            showarrow=True,
            arrowhead=0,
            ax=40,
            ay=(-34 if direction * (y - entry) >= 0 else 34) * direction,
            bgcolor="rgba(255,255,255,0.85)",
            bordercolor=FILL_COLORS.get(kind, INK),
            font={"size": 11},
            row=1,
            col=1,
        )


# ------------------------------------------------------------------------------------------- tables

METRIC_LABELS = {
    "total_trades": "Trades",
    "win_rate": "Win rate",
    "total_r": "Total R",
    "avg_r": "Avg R",
    "median_r": "Median R",
    "profit_factor": "Profit factor",
    "expectancy_r": "Expectancy R",
    "sqn": "SQN",
    "avg_winner_r": "Avg winner R",
    "avg_loser_r": "Avg loser R",
    "largest_winner_r": "Largest winner R",
    "largest_loser_r": "Largest loser R",
    "winning_trades": "Winners",
    "losing_trades": "Losers",
    "max_consecutive_wins": "Max consecutive wins",
    "max_consecutive_losses": "Max consecutive losses",
    "max_drawdown_r": "Max drawdown R",
    "max_drawdown_pct": "Max drawdown %",
    "max_drawdown_duration_days": "Max drawdown days",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "net_pnl": "Net P&L $",
    "total_return_pct": "Total return %",
    "cagr_pct": "CAGR %",
    "final_equity": "Final equity $",
    "exposure_pct": "Exposure %",
    "avg_holding_minutes": "Avg holding min",
    "long_trades": "Long trades",
    "short_trades": "Short trades",
    "long_win_rate": "Long win rate",
    "short_win_rate": "Short win rate",
    "sessions": "Sessions",
    "sessions_traded": "Sessions traded",
    "sessions_skipped": "Sessions skipped",
    "symbols": "Symbols",
    "avg_r_per_trade": "Avg R per trade",
}
COUNT_KEYS = {
    "total_trades", "winning_trades", "losing_trades", "max_consecutive_wins", "max_consecutive_losses",
    "long_trades", "short_trades", "sessions", "sessions_traded", "sessions_skipped",
    "max_drawdown_duration_days",
}  # fmt: skip
_RATE_KEYS = {"win_rate", "long_win_rate", "short_win_rate"}
_MONEY_KEYS = {"net_pnl", "final_equity"}


def format_metric(key: str, value: Any) -> str:
    """A metric value for display: '—' for undefined, % for rates, $ for money, R for R values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if key in COUNT_KEYS:
        return f"{int(value):,}"
    if key in _RATE_KEYS:
        return f"{value:.1%}"
    if key in _MONEY_KEYS:
        return f"${value:,.2f}"
    if key.endswith("_pct"):
        return f"{value:.2f}%"
    if key.endswith("_r") or key == "avg_r_per_trade":
        return f"{value:+.2f}R"
    return f"{value:,.2f}"


def metrics_frame(per_symbol: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per label (symbol or run), one column per scalar metric (raw values, exit_reasons spread)."""
    rows = {}
    for label, metrics in per_symbol.items():
        row = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
        for reason, n in (metrics.get("exit_reasons") or {}).items():
            row[f"exit_{reason}"] = n
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.astype({c: float for c in frame.columns if frame[c].isna().any()})


# ------------------------------------------------------------------------------------------- research

HEATMAP_AGGREGATIONS = ("mean", "max", "min")
BAND_FILL_OUTER = _alpha(ACCENT, 0.12)
BAND_FILL_INNER = _alpha(ACCENT, 0.28)


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
    label = METRIC_LABELS.get(metric, metric)
    title = title or (f"{label} by {x} and {y}" if y is not None else f"{label} by {x}")
    if rows.empty:
        return _empty(title, "No sweep rows")
    values, counts = sweep_grid(rows, x, y, metric, agg=agg)
    z = values.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else format_metric(metric, float(v)) for v in row] for row in z]
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
    return _finish(fig, title, max(300, 160 + 48 * len(values.index)))


def walkforward_folds_figure(folds: pd.DataFrame) -> go.Figure:
    """In-sample vs out-of-sample R per session of every fold (the ratio behind walk-forward efficiency)."""
    title = "R per session by fold: in-sample (train) vs out-of-sample (test)"
    if folds.empty:
        return _empty(title, "No folds")
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
    return _finish(fig, title, 340)


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
        return _empty(title, "No trades to resample")
    x = bands["step"]
    fig = go.Figure()
    edge = {"width": 0.5, "color": _alpha(ACCENT, 0.4)}
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
    return _finish(fig, title, 420)


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
        return _empty(title, "No paths")
    edges = np.asarray(counted.edges)
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counted.counts,
            width=np.diff(edges),
            name="Paths",
            marker={"color": _alpha(NEG, 0.55), "line": {"color": "white", "width": 1}},
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
    return _finish(fig, title, 380)


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
