"""What a trader looks at first: the benchmark's buy-and-hold, trading costs, daily P&L, MFE/MAE."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from orb.charts.base import (
    COMBINED,
    HEATMAP_SCALE,
    NEG,
    NEUTRAL,
    POS,
    SLATE,
    TZ,
    WEEKDAYS,
    empty,
    finish,
    r_text,
    to_local,
)
from orb.metric_registry import money

# Fills that are market-type orders and so pay slippage (strategy.md 3): entries, stop, breakeven and
# end-of-day exits. Target fills (t1, t2, target) are limit orders and pay none.
MARKET_FILLS = ("entry", "stop", "breakeven", "eod")
SLIPPAGE_HELP = (
    "Commission: the sum of the trades' `commission` column. Slippage: `costs.slippage_per_share` "
    "(from the run's config.json) x shares, summed over every market-type fill (entries, stop, "
    "breakeven and end-of-day exits; target fills are limit orders and pay none). Both are already in "
    "the net P&L and the net R."
)


@dataclass(frozen=True)
class Costs:
    """A run's trading costs in dollars."""

    commission: float
    slippage: float

    @property
    def total(self) -> float:
        return self.commission + self.slippage


def trading_costs(trades: pd.DataFrame, fills: pd.DataFrame, slippage_per_share: float) -> Costs:
    """Commission from the trades' `commission`; slippage = `slippage_per_share` x shares per market fill."""
    market = fills[fills["kind"].astype(str).isin(MARKET_FILLS)]
    return Costs(
        commission=float(trades["commission"].astype(float).sum()),
        slippage=float(slippage_per_share * market["shares"].astype(float).sum()),
    )


def session_closes(bars: pd.DataFrame, tz: str = TZ) -> pd.DataFrame:
    """One row per session of a bar series: `open_time` and `open` of its first bar, `timestamp` and
    `close` of its last bar (bar contract with a UTC `timestamp` index, or a `timestamp` column)."""
    bars = bars if "timestamp" in bars.columns else bars.reset_index(names="timestamp")
    bars = bars.sort_values("timestamp")
    day = to_local(bars["timestamp"], tz).dt.date
    groups = bars.groupby(day.to_numpy(), sort=True)
    frame = pd.DataFrame(
        {
            "open_time": groups["timestamp"].first(),
            "open": groups["open"].first().astype(float),
            "timestamp": groups["timestamp"].last(),
            "close": groups["close"].last().astype(float),
        }
    )
    return frame.rename_axis("session_date").reset_index()


def buy_and_hold(closes: pd.DataFrame, start_equity: float) -> pd.DataFrame:
    """Equity of `start_equity` put in the symbol at the first session's open and held: one point at that
    open, then one at every session close (`closes` from session_closes)."""
    if closes.empty:
        return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "equity": []})
    first_open = float(closes["open"].iloc[0])
    start = pd.DataFrame({"timestamp": [closes["open_time"].iloc[0]], "equity": [start_equity]})
    held = pd.DataFrame(
        {"timestamp": closes["timestamp"], "equity": start_equity * closes["close"] / first_open}
    )
    return pd.concat([start, held], ignore_index=True)


def benchmark_figure(
    combined: pd.DataFrame, benchmark: pd.DataFrame, symbol: str, *, tz: str = TZ
) -> go.Figure:
    """The combined equity ($) with the benchmark's buy-and-hold equity (from buy_and_hold) under it."""
    title = f"Combined equity vs {symbol} buy-and-hold ($)"
    if combined.empty or benchmark.empty:
        return empty(title, "No equity points in this run")
    fig = go.Figure()
    for name, frame, line in (
        (f"{symbol} buy and hold", benchmark, {"color": NEUTRAL, "width": 2, "dash": "dash"}),
        ("Combined", combined, {"color": COMBINED, "width": 2, "shape": "hv"}),
    ):
        start, end = float(frame["equity"].iloc[0]), float(frame["equity"].iloc[-1])
        change = f"{end / start - 1:+.2%}" if start else "—"
        fig.add_trace(
            go.Scatter(
                x=to_local(frame["timestamp"], tz),
                y=frame["equity"].astype(float),
                name=f"{name} ({change})",
                mode="lines",
                line=line,
                hovertemplate=f"{name}<br>%{{x|%Y-%m-%d %H:%M}}<br>$%{{y:,.2f}}<extra></extra>",
            )
        )
    fig.update_yaxes(title_text="Equity ($)", tickprefix="$", tickformat=",.0f")
    fig.update_layout(hovermode="x unified")
    return finish(fig, title, 360)


def daily_pnl(
    sessions: pd.DataFrame, combined: pd.DataFrame, start_equity: float, tz: str = TZ
) -> pd.DataFrame:
    """One row per session date of the run: `day_r` (the sessions tables' day_r summed over symbols) and
    `pnl` (the change of the combined equity's last value that day from the day before; `start_equity`
    before the first day)."""
    day_r = (
        sessions.assign(session_date=pd.to_datetime(sessions["session_date"]).dt.date)
        .groupby("session_date", sort=True)["day_r"]
        .sum()
    )
    if combined.empty:
        close = pd.Series(start_equity, index=day_r.index, dtype=float)
    else:
        days = to_local(combined["timestamp"], tz).dt.date.to_numpy()
        close = combined["equity"].astype(float).groupby(days, sort=True).last()
        close = close.reindex(day_r.index.union(close.index)).ffill().fillna(start_equity)
    pnl = close.diff().fillna(close.iloc[0] - start_equity) if len(close) else close
    frame = pd.DataFrame({"day_r": day_r.astype(float), "pnl": pnl}).fillna({"day_r": 0.0})
    return frame.rename_axis("session_date").reset_index()


def calendar_figure(daily: pd.DataFrame) -> go.Figure:
    """A calendar of daily P&L (from daily_pnl): one column per week, one row per weekday, green up, red
    down; the hover gives the day's $ and R."""
    title = "Daily P&L calendar ($)"
    if daily.empty:
        return empty(title, "No sessions in this run")
    day = pd.to_datetime(daily["session_date"])
    frame = daily.assign(
        weekday=day.dt.day_of_week, week=(day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.date
    )
    frame = frame[frame["weekday"] < len(WEEKDAYS)]
    weeks = sorted(frame["week"].unique())
    z = np.full((len(WEEKDAYS), len(weeks)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    column = {w: i for i, w in enumerate(weeks)}
    for row in frame.itertuples(index=False):
        i, j = row.weekday, column[row.week]
        z[i, j] = row.pnl
        text[i, j] = f"{row.session_date:%a %Y-%m-%d}<br>{money(row.pnl)}<br>{r_text(row.day_r)}"
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[pd.Timestamp(w) for w in weeks],
            y=list(WEEKDAYS),
            customdata=text,
            colorscale=HEATMAP_SCALE,
            zmin=-(bound or 1.0),
            zmax=bound or 1.0,
            zmid=0,
            xgap=2,
            ygap=2,
            colorbar={"title": {"text": "$"}, "tickprefix": "$"},
            hovertemplate="%{customdata}<extra></extra>",
            name="Daily P&L",
        )
    )
    fig.update_xaxes(title_text="week of", tickformat="%b %d\n%Y")
    fig.update_yaxes(autorange="reversed")
    return finish(fig, title, 300)


def mfe_mae_figure(trades: pd.DataFrame) -> go.Figure:
    """Each trade's maximum adverse (x) and favourable (y) excursion in R, coloured by outcome (net R)."""
    title = "MFE vs MAE per trade (R)"
    if trades.empty:
        return empty(title, "No trades")
    r = trades["r_multiple"].astype(float)
    fig = go.Figure()
    for name, keep, color in (("Winners", r > 0, POS), ("Losers", r < 0, NEG), ("Flat", r == 0, SLATE)):
        part = trades[keep]
        if part.empty:
            continue
        custom = np.column_stack(
            [
                part["trade_id"].astype(str),
                part["symbol"].astype(str) if "symbol" in part.columns else np.full(len(part), ""),
                pd.to_datetime(part["session_date"]).dt.strftime("%Y-%m-%d"),
                part["r_multiple"].astype(float),
            ]
        )
        fig.add_trace(
            go.Scatter(
                x=part["mae_r"].astype(float),
                y=part["mfe_r"].astype(float),
                mode="markers",
                name=f"{name} ({len(part)})",
                marker={"color": color, "size": 8, "opacity": 0.75, "line": {"color": "white", "width": 0.5}},
                customdata=custom,
                hovertemplate=(
                    "#%{customdata[0]} %{customdata[1]} %{customdata[2]}<br>MAE %{x:+.2f}R<br>"
                    "MFE %{y:+.2f}R<br>net %{customdata[3]:+.2f}R<extra></extra>"
                ),
            )
        )
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1})
    fig.add_vline(x=0, line={"color": NEUTRAL, "width": 1})
    fig.update_xaxes(title_text="MAE (R)", zeroline=False)
    fig.update_yaxes(title_text="MFE (R)", zeroline=False)
    return finish(fig, title, 380)
