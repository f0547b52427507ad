"""The session replay: one session's candles with the OR box, trigger levels and its trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orb.charts.base import (
    ACCENT,
    FILL_COLORS,
    FILL_SYMBOLS,
    INK,
    LONG_COLOR,
    NEG,
    OR_FILL,
    POS,
    SHORT_COLOR,
    SLATE,
    TARGET_STYLES,
    TZ,
    alpha,
    empty,
    finish,
    r_text,
    to_local,
)


def _bars_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars with a `timestamp` column (accepts the bar contract's index or a column)."""
    return bars if "timestamp" in bars.columns else bars.reset_index(names="timestamp")


LEVEL_NAMES = ("Initial stop", "Breakeven stop", *(label for label, _, _ in TARGET_STYLES.values()))
DIMMED = 0.3  # opacity of the trades of the session that are not the selected one
TRIGGER_WIDTH = 1.2
STOP_WIDTH = 2.6  # wider than a trigger line, drawn after it: an initial stop on a trigger stays visible


def _level(
    fig: go.Figure,
    x0,
    x1,
    y: float,
    name: str,
    color: str,
    dash: str,
    hover: str,
    shown: set,
    *,
    width: float = 1.6,
    opacity: float = 1.0,
) -> None:
    fig.add_trace(
        go.Scatter(
            x=[x0, x1],
            y=[y, y],
            mode="lines",
            name=name,
            legendgroup=name,
            showlegend=name not in shown,
            opacity=opacity,
            line={"color": color, "width": width, "dash": dash},
            hovertemplate=f"{hover}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    shown.add(name)


def _label(fig: go.Figure, x, y: float, text: str, color: str, *, anchor: str, opacity: float = 1.0) -> None:
    """A small text label on a level line (left or right end, just above it)."""
    fig.add_annotation(
        x=x,
        y=y,
        text=text,
        showarrow=False,
        xanchor=anchor,
        yshift=8,
        opacity=opacity,
        font={"size": 10, "color": color},
        bgcolor="rgba(255,255,255,0.7)",
        row=1,
        col=1,
    )


def session_replay_figure(
    bars: pd.DataFrame,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    or_high: float | None = None,
    or_low: float | None = None,
    or_minutes: int | None = None,
    long_trigger: float | None = None,
    short_trigger: float | None = None,
    be_buffer: float = 0.0,
    interval_minutes: int = 1,
    symbol: str = "",
    tz: str = TZ,
    selected=None,
) -> go.Figure:
    """Candlestick of one session with the OR box, trigger levels and every trade of that session.

    `bars` are the session's regular-hours bars (bar contract or a `timestamp` column), `trades` the
    session's trades, `fills` their fills. The OR defaults to the first trade's. The trigger levels are
    the sessions table's `long_trigger`/`short_trigger` (not drawn when None); the breakeven stop is the
    entry fill +/- `be_buffer` from the trade's `breakeven_time`. Each exit is annotated with its leg's R
    ((exit - entry) * direction / R per share, before costs) and reason; the last with the trade's net R.
    `selected` (a trade_id of the session) is drawn last, full strength, in a shaded band from its entry
    to its exit; the session's other trades are dimmed. T1, T2 and the target have their own colour, dash
    and label; the initial stop is wider than the trigger lines and drawn over them, and its label says
    when it sits on a trigger.
    """
    bars = _bars_frame(bars)
    if bars.empty:
        return empty(f"{symbol} session replay".strip(), "No bars for this session", 520)
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
    has_or = or_high is not None and or_low is not None and bool(or_minutes)
    if has_or:
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
    triggers = {}
    for level, name, color in (
        (long_trigger, "Long trigger", LONG_COLOR),
        (short_trigger, "Short trigger", SHORT_COLOR),
    ):
        if has_or and level is not None and not pd.isna(level):
            x1 = first_x + pd.Timedelta(minutes=or_minutes) - step / 2
            hover = f"{name.lower()} {level:.2f}"
            _level(
                fig, x1, last_x, level, name, color, "dash", hover, shown, width=TRIGGER_WIDTH, opacity=0.8
            )
            triggers[name.lower()] = float(level)

    ordered = trades.sort_values("entry_time")
    chosen = ordered["trade_id"] == selected
    if chosen.any():
        pick = ordered[chosen].iloc[0]
        start, end = (to_local(pd.Series([pick[c]]), tz).iloc[0] for c in ("entry_time", "exit_time"))
        mark = f"selected: #{pick['trade_id']} {pick['side']} {r_text(float(pick['r_multiple']))}"
        fig.add_vrect(
            x0=start,
            x1=end,
            fillcolor=alpha(ACCENT, 0.08),
            line_width=0,
            layer="below",
            annotation_text=mark,
            # on the side away from the stop label (a long's stop is below the entry, a short's above)
            annotation_position="top left" if pick["side"] == "long" else "bottom left",
            annotation_font={"size": 11, "color": ACCENT},
            row=1,
            col=1,
        )
    for _, trade in pd.concat([ordered[~chosen], ordered[chosen]]).iterrows():
        dim = bool(chosen.any()) and trade["trade_id"] != selected
        # the legend shows the selected trade's full-strength styles; a dimmed trade stays out of it
        legend = {name for name in (*LEVEL_NAMES, "Entry", "Exits")} if dim else shown
        _draw_trade(fig, trade, fills, be_buffer=be_buffer, tz=tz, shown=legend, triggers=triggers, dim=dim)

    title = f"{symbol} {session_day:%a %Y-%m-%d} · session replay ({tz})".strip()
    fig.update_xaxes(tickformat="%H:%M", rangeslider_visible=False)
    fig.update_yaxes(title_text="Price", row=1, col=1)
    fig.update_yaxes(title_text="Vol", row=2, col=1)
    fig.update_layout(
        hovermode="closest",
        legend={"yanchor": "top", "y": -0.06, "xanchor": "left", "x": 0},
        margin={"b": 70},
    )
    return finish(fig, title, 640)


def _draw_trade(
    fig: go.Figure,
    trade: pd.Series,
    fills: pd.DataFrame,
    *,
    be_buffer: float,
    tz: str,
    shown: set,
    triggers: dict[str, float],
    dim: bool,
) -> None:
    """Entry marker, stop (and breakeven move), target lines and annotated exits of one trade; a dimmed
    trade (not the selected one) is drawn faint and without level labels."""
    opacity = DIMMED if dim else 1.0
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
            opacity=opacity,
            marker={
                "symbol": "triangle-up" if direction > 0 else "triangle-down",
                "size": 15,
                "color": LONG_COLOR if direction > 0 else SHORT_COLOR,
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
    moved = trade.get("breakeven_time")
    be_from = None if moved is None or pd.isna(moved) else to_local(pd.Series([moved]), tz).iloc[0]
    stop_end = min(be_from, exit_t) if be_from is not None else exit_t
    on = [name for name, level in triggers.items() if abs(level - stop) < 1e-9]
    stop_text = f"stop {stop:.2f}" + "".join(f" = {name}" for name in on)
    hover = f"{tag} initial {stop_text}"
    _level(
        fig,
        entry_t,
        stop_end,
        stop,
        "Initial stop",
        NEG,
        "solid",
        hover,
        shown,
        width=STOP_WIDTH,
        opacity=opacity,
    )
    if not dim:
        _label(fig, entry_t, stop, stop_text, NEG, anchor="left")
    if be_from is not None and be_from <= exit_t:
        be = entry + direction * be_buffer
        hover = f"{tag} breakeven {be:.2f}"
        _level(fig, be_from, exit_t, be, "Breakeven stop", SLATE, "solid", hover, shown, opacity=opacity)
        _label(fig, be_from, be, "BE", SLATE, anchor="left", opacity=opacity)
    for col, (label, color, dash) in TARGET_STYLES.items():
        level = trade.get(col)
        if level is None or pd.isna(level):
            continue
        r_level = (float(level) - entry) * direction / r_ps
        text = f"{label} {level:.2f} ({r_level:+.1f}R)"
        _level(
            fig,
            entry_t,
            exit_t,
            float(level),
            label,
            color,
            dash,
            f"{tag} {text}",
            shown,
            width=2,
            opacity=opacity,
        )
        if not dim:
            _label(fig, exit_t, float(level), text, color, anchor="right")

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
            opacity=opacity,
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
        text = f"{kind} {r_text(r)}"
        if i == len(kinds) - 1:
            text += f"<br><b>trade {r_text(net_r)} net</b>"
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
            opacity=opacity,
            font={"size": 11},
            row=1,
            col=1,
        )
