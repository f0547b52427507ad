"""Colours, the plotly template and small functions shared by every chart module."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

TZ = "America/New_York"

# One colour scheme for every chart (Tailwind-like tones: readable on white, distinct for colour-blind users).
POS = "#16a34a"
NEG = "#dc2626"
NEUTRAL = "#94a3b8"
SLATE = "#475569"
INK = "#0f172a"
ACCENT = "#2563eb"
LONG_COLOR = "#2563eb"
SHORT_COLOR = "#f59e0b"
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
# The three profit targets: one colour, dash and label each (T1 teal, T2 violet, final target green).
TARGET_STYLES = {
    "t1_price": ("T1", "#0d9488", "dot"),
    "t2_price": ("T2", "#7c3aed", "dashdot"),
    "target_price": ("Target", POS, "longdash"),
}
FILL_COLORS = {
    "t1": "#0d9488",
    "t2": "#7c3aed",
    "target": POS,
    "stop": NEG,
    "breakeven": SLATE,
    "eod": ACCENT,
}
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


def alpha(color: str, alpha: float) -> str:
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


def finish(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title_text=title, height=height)
    return fig


def empty(title: str, message: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"color": NEUTRAL}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, title, height)


def r_text(value: float) -> str:
    return f"{value:+.2f}R"


def group_stats(trades: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Trades, wins, win rate, average and total R per value of `key` (rows sorted by key)."""
    r = trades["r_multiple"].astype(float)
    frame = pd.DataFrame({"key": key.to_numpy(), "r": r.to_numpy(), "win": (r > 0).to_numpy()})
    stats = frame.groupby("key", sort=True).agg(
        trades=("r", "size"), wins=("win", "sum"), avg_r=("r", "mean"), total_r=("r", "sum")
    )
    return stats.assign(win_rate=stats["wins"] / stats["trades"])
