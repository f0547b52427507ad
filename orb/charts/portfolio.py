"""Figures and tables of a portfolio run (strategy.md 10): the account against its benchmark, positions
per session, one session's ranked universe, average R by relative-volume bucket and the best and worst
symbols by total R.

Inputs are the run-format.md frames of a portfolio run (universe, all_trades, combined_equity,
benchmark); every function returns a new object and reads no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orb.charts.base import ACCENT, COMBINED, NEG, NEUTRAL, POS, SHORT_COLOR, TZ, alpha, empty, finish
from orb.charts.tables import format_metric
from orb.metric_registry import METRICS, PORTFOLIO_METRIC_KEYS

# Portfolio keys of metrics.json `aggregate` (run-format.md "Portfolio runs"): display format; the
# labels are the metric registry's.
_FORMATS = {
    "daily_hit_ratio": lambda v: f"{v:.1%}",
    "worst_day_pct": lambda v: f"{v:+.2f}%",
    "avg_positions": lambda v: f"{v:.2f}",
    "max_positions_used": lambda v: f"{int(v):,}",
    "benchmark_return_pct": lambda v: f"{v:+.2f}%",
    "beta": lambda v: f"{v:.2f}",
    "alpha_pct": lambda v: f"{v:+.2f}%",
}
PORTFOLIO_METRICS = {key: (METRICS[key].label, _FORMATS[key]) for key in PORTFOLIO_METRIC_KEYS}
FUNNEL_ORDER = ("no_data", "warmup")  # then the other skip reasons by count, then the outcomes
OUTCOMES = ("not_selected", "no_signal", "traded")


def portfolio_metric(key: str, value: Any) -> str:
    """A metric of a portfolio run for display ('—' when undefined); other keys as orb.charts formats them."""
    if key not in PORTFOLIO_METRICS:
        return format_metric(key, value)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return PORTFOLIO_METRICS[key][1](value)


def portfolio_label(key: str) -> str:
    return PORTFOLIO_METRICS[key][0] if key in PORTFOLIO_METRICS else key


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


# ----------------------------------------------------------------------------------------- account


def daily_account(equity: pd.DataFrame, tz: str = TZ) -> pd.DataFrame:
    """The account at each session close: session_date, equity, drawdown_pct (the day's last row)."""
    local = pd.to_datetime(equity["timestamp"], utc=True).dt.tz_convert(tz)
    frame = equity.assign(session_date=local.dt.date)
    last = frame.groupby("session_date", sort=True).tail(1)
    return last[["session_date", "equity", "drawdown_pct"]].reset_index(drop=True)


def buy_and_hold(benchmark: pd.DataFrame, initial_capital: float) -> pd.DataFrame:
    """The benchmark held from the run's start: session_date, equity = capital x product of (1 + return)."""
    returns = benchmark["return"].astype(float).fillna(0.0)
    return pd.DataFrame(
        {
            "session_date": _dates(benchmark["session_date"]),
            "equity": initial_capital * np.cumprod(1.0 + returns.to_numpy()),
        }
    )


def account_figure(
    equity: pd.DataFrame,
    benchmark: pd.DataFrame | None,
    initial_capital: float,
    *,
    benchmark_symbol: str | None = None,
    tz: str = TZ,
) -> go.Figure:
    """Account equity at each session close with the benchmark's buy and hold beside it (same starting
    capital), the account's drawdown underneath."""
    title = "Account equity" + (
        f" and {benchmark_symbol or 'benchmark'} buy and hold" if benchmark is not None else ""
    )
    if equity is None or equity.empty:
        return empty(title, "No equity points in this run")
    daily = daily_account(equity, tz)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    fig.add_trace(
        go.Scatter(
            x=daily["session_date"],
            y=daily["equity"],
            name="Account",
            mode="lines",
            line={"color": COMBINED, "width": 2},
            hovertemplate="Account<br>%{x|%Y-%m-%d}<br>$%{y:,.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if benchmark is not None and len(benchmark):
        held = buy_and_hold(benchmark, initial_capital)
        name = f"{benchmark_symbol or 'Benchmark'} buy and hold"
        fig.add_trace(
            go.Scatter(
                x=held["session_date"],
                y=held["equity"],
                name=name,
                mode="lines",
                line={"color": SHORT_COLOR, "width": 2, "dash": "dot"},
                hovertemplate=f"{name}<br>%{{x|%Y-%m-%d}}<br>$%{{y:,.2f}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=daily["session_date"],
            y=-daily["drawdown_pct"].astype(float).abs(),
            name="Account drawdown",
            showlegend=False,
            mode="lines",
            fill="tozeroy",
            fillcolor=alpha(NEG, 0.12),
            line={"color": NEG, "width": 1},
            hovertemplate="drawdown<br>%{x|%Y-%m-%d}<br>%{y:.2f}%<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="Equity ($)", row=1, col=1)
    fig.update_yaxes(title_text="Drawdown (%)", row=2, col=1)
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    return finish(fig, title, 460)


# ---------------------------------------------------------------------------------------- universe


def positions_per_session(universe: pd.DataFrame) -> pd.DataFrame:
    """Per session: eligible symbols, selected ones (traded or no signal) and those that traded."""
    status = universe["status"].astype(str)
    frame = pd.DataFrame(
        {
            "session_date": _dates(universe["session_date"]),
            "eligible": universe["rank"].notna().to_numpy(),
            "selected": status.isin(["traded", "no_signal"]).to_numpy(),
            "traded": (status == "traded").to_numpy(),
        }
    )
    return frame.groupby("session_date", sort=True).sum().astype(np.int64).reset_index()


def positions_figure(positions: pd.DataFrame, max_positions: int | None = None) -> go.Figure:
    """Symbols that traded per session (bars) with the selected and eligible counts and the slot limit."""
    title = "Positions per session"
    if positions.empty:
        return empty(title, "No sessions in this run")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=positions["session_date"],
            y=positions["traded"],
            name="Traded",
            marker_color=ACCENT,
            hovertemplate="%{x|%Y-%m-%d}<br>%{y} traded<extra></extra>",
        )
    )
    for col, color, dash in (("selected", COMBINED, "solid"), ("eligible", NEUTRAL, "dot")):
        fig.add_trace(
            go.Scatter(
                x=positions["session_date"],
                y=positions[col],
                name=col.capitalize(),
                mode="lines",
                line={"color": color, "width": 1.5, "dash": dash, "shape": "hv"},
                hovertemplate=f"%{{x|%Y-%m-%d}}<br>%{{y}} {col}<extra></extra>",
            )
        )
    if max_positions is not None:
        fig.add_hline(
            y=max_positions,
            line={"color": NEG, "width": 1, "dash": "dash"},
            annotation_text=f"{max_positions} slots",
            annotation_position="top left",
        )
    fig.update_yaxes(title_text="Symbols", rangemode="tozero")
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    return finish(fig, title, 340)


def why(row: Mapping[str, Any], max_positions: int | None) -> str:
    """Why a universe row was or was not selected, in words."""
    status, rank = row["status"], row.get("rank")
    if status == "traded":
        return f"selected (rank {int(rank)}): {int(row['trades'])} trade(s), {row['day_r']:+.2f}R"
    if status == "no_signal":
        return f"selected (rank {int(rank)}): no entry signal"
    if status == "not_selected":
        limit = f" > {max_positions} slots" if max_positions is not None else ""
        return f"eligible, not selected: rank {int(rank)}{limit}"
    return f"not eligible: {row.get('reason')}"


def universe_day_table(day: pd.DataFrame, max_positions: int | None = None) -> pd.DataFrame:
    """One session's universe ranked: the eligible by rank, then the others by symbol, with `why`."""
    ranked = day.sort_values(["rank", "symbol"], na_position="last", kind="stable", ignore_index=True)
    reasons = [why(row, max_positions) for row in ranked.to_dict("records")]
    columns = ["rank", "symbol", "status", "why", "rel_volume", "open_price", "avg_volume", "atr",
               "or_high", "or_low", "trades", "day_r", "day_pnl"]  # fmt: skip
    table = ranked.assign(why=reasons)
    return table[[c for c in columns if c in table.columns]]


def funnel(universe: pd.DataFrame) -> pd.DataFrame:
    """Symbol-sessions per outcome: each skip reason (no_data and warmup first, then by count) and the
    eligible outcomes not_selected, no_signal, traded."""
    skipped = universe.loc[universe["status"] == "skipped", "reason"].astype(str).value_counts()
    first = [r for r in FUNNEL_ORDER if r in skipped.index]
    rest = [r for r in skipped.index if r not in FUNNEL_ORDER]
    status = universe["status"].astype(str).value_counts()
    rows = [(r, "not eligible", int(skipped[r])) for r in [*first, *rest]]
    rows += [(s, "eligible", int(status.get(s, 0))) for s in OUTCOMES]
    return pd.DataFrame(rows, columns=["outcome", "group", "symbol_sessions"])


def funnel_figure(frame: pd.DataFrame) -> go.Figure:
    """Horizontal bars of funnel(): how many symbol-sessions failed each rule or reached each outcome."""
    title = "Universe funnel (symbol-sessions)"
    if frame.empty or frame["symbol_sessions"].sum() == 0:
        return empty(title, "No universe rows")
    colors = [NEUTRAL if g == "not eligible" else (POS if o == "traded" else ACCENT)
              for o, g in zip(frame["outcome"], frame["group"], strict=True)]  # fmt: skip
    fig = go.Figure(
        go.Bar(
            x=frame["symbol_sessions"],
            y=frame["outcome"],
            orientation="h",
            marker_color=colors,
            text=frame["symbol_sessions"],
            textposition="outside",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="Symbol-sessions")
    return finish(fig, title, 120 + 28 * len(frame))


# ---------------------------------------------------------------------------------------- trades


def rel_volume_buckets(trades: pd.DataFrame, universe: pd.DataFrame, buckets: int = 10) -> pd.DataFrame:
    """Average R of the trades by relative-volume bucket (quantiles of the traded symbol-sessions'
    `rel_volume`; fewer buckets when there are fewer distinct values): bucket, rel_lo, rel_hi, trades,
    avg_r, total_r, win_rate. The view of Zarattini, Barbon & Aziz (2024), figure 4."""
    columns = ["bucket", "rel_lo", "rel_hi", "trades", "avg_r", "total_r", "win_rate"]
    if trades.empty:
        return pd.DataFrame(columns=columns)
    key = ["session_date", "symbol"]
    rel = universe[key + ["rel_volume"]].assign(session_date=_dates(universe["session_date"]))
    joined = trades[key + ["r_multiple"]].assign(session_date=_dates(trades["session_date"]))
    joined = joined.merge(rel, on=key, how="left", validate="many_to_one").dropna(subset=["rel_volume"])
    if joined.empty:
        return pd.DataFrame(columns=columns)
    day_rel = joined.drop_duplicates(key)["rel_volume"]
    edges = np.unique(np.quantile(day_rel, np.linspace(0, 1, max(1, buckets) + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0]])
    codes = np.clip(np.searchsorted(edges, joined["rel_volume"], side="right") - 1, 0, len(edges) - 2)
    r = joined["r_multiple"].astype(float)
    stats = (
        pd.DataFrame({"code": codes, "r": r.to_numpy(), "win": (r > 0).to_numpy()})
        .groupby("code", sort=True)
        .agg(trades=("r", "size"), avg_r=("r", "mean"), total_r=("r", "sum"), wins=("win", "sum"))
    )
    out = pd.DataFrame(
        {
            "rel_lo": edges[stats.index],
            "rel_hi": edges[stats.index + 1],
            "trades": stats["trades"].to_numpy(),
            "avg_r": stats["avg_r"].to_numpy(),
            "total_r": stats["total_r"].to_numpy(),
            "win_rate": (stats["wins"] / stats["trades"]).to_numpy(),
        }
    )
    out.insert(
        0, "bucket", [f"{lo:.2f}-{hi:.2f}x" for lo, hi in zip(out["rel_lo"], out["rel_hi"], strict=True)]
    )
    return out


def rel_volume_figure(buckets: pd.DataFrame) -> go.Figure:
    """Average R per relative-volume bucket (bars, labelled with the trade count)."""
    title = "Average R by relative volume (opening-range volume / its average)"
    if buckets.empty:
        return empty(title, "No trades with a relative volume")
    avg = buckets["avg_r"].astype(float)
    fig = go.Figure(
        go.Bar(
            x=buckets["bucket"],
            y=avg,
            marker_color=np.where(avg >= 0, POS, NEG),
            text=[f"{r:+.2f}R · {n}" for r, n in zip(avg, buckets["trades"], strict=True)],
            textposition="outside",
            customdata=np.stack([buckets["trades"], buckets["total_r"]], axis=1),
            hovertemplate="rel. volume %{x}<br>avg %{y:+.3f}R<br>%{customdata[0]} trades, "
            "total %{customdata[1]:+.2f}R<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1})
    fig.update_xaxes(title_text="Relative volume bucket (quantiles of the traded symbol-sessions)")
    fig.update_yaxes(title_text="Average R per trade")
    return finish(fig, title, 380)


def symbol_totals(trades: pd.DataFrame) -> pd.DataFrame:
    """Per symbol that traded: trades, total_r, avg_r, win_rate, net_pnl; by total R descending
    (ties: symbol)."""
    r = trades["r_multiple"].astype(float)
    frame = pd.DataFrame(
        {"symbol": trades["symbol"].astype(str).to_numpy(), "r": r.to_numpy(), "win": (r > 0).to_numpy(),
         "pnl": trades["net_pnl"].astype(float).to_numpy()}
    )  # fmt: skip
    stats = frame.groupby("symbol", sort=True).agg(
        trades=("r", "size"),
        total_r=("r", "sum"),
        avg_r=("r", "mean"),
        wins=("win", "sum"),
        net_pnl=("pnl", "sum"),
    )
    stats = stats.assign(win_rate=stats["wins"] / stats["trades"]).drop(columns="wins").reset_index()
    stats = stats.sort_values(
        ["total_r", "symbol"], ascending=[False, True], kind="stable", ignore_index=True
    )
    return stats[["symbol", "trades", "total_r", "avg_r", "win_rate", "net_pnl"]]


def best_and_worst(trades: pd.DataFrame, n: int = 25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `n` symbols with the highest total R (best first) and the `n` with the lowest (worst first)."""
    totals = symbol_totals(trades)
    worst = totals.iloc[::-1].head(n).reset_index(drop=True)
    return totals.head(n).reset_index(drop=True), worst


def symbols_figure(best: pd.DataFrame, worst: pd.DataFrame) -> go.Figure:
    """Total R of the best and the worst symbols, side by side."""
    n = max(len(best), len(worst))
    title = f"Best and worst {n} symbols by total R"
    if n == 0:
        return empty(title, "No trades in this run")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Best", "Worst"), horizontal_spacing=0.14)
    for col, frame in ((1, best), (2, worst)):
        total = frame["total_r"].astype(float)
        fig.add_trace(
            go.Bar(
                x=total,
                y=frame["symbol"],
                orientation="h",
                marker_color=np.where(total >= 0, POS, NEG),
                customdata=frame["trades"],
                hovertemplate="%{y}<br>%{x:+.2f}R over %{customdata} trade(s)<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=col)
        fig.update_xaxes(title_text="Total R", row=1, col=col)
    return finish(fig, title, 140 + 22 * n)


def replay_sessions(universe: pd.DataFrame, symbol: str, or_minutes: int) -> pd.DataFrame:
    """One symbol's universe rows as the sessions frame the session replay reads (OR and its minutes:
    portfolio runs use a fixed OR window, `orb.base_minutes`)."""
    rows = universe[universe["symbol"] == symbol]
    return rows.assign(or_minutes=int(or_minutes))
