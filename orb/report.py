"""`SYM_report.html`: one symbol of a run as a self-contained page that opens offline.

Everything is read from the run folder through `orb.runs.read`; plotly's JavaScript is embedded once
in the page head and every figure is a plain div (no CDN, no network). `session_replay` is also used by
the dashboard, so both draw a session from the same run files the same way.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from orb import __version__, charts
from orb.config import INTERVAL_MINUTES
from orb.metric_registry import money
from orb.runs import read as results

KPI_KEYS = (
    "total_trades",
    "win_rate",
    "total_r",
    "avg_r",
    "profit_factor",
    "sharpe",
    "max_drawdown_r",
    "net_pnl",
)
TRADE_LIST_COLUMNS = (
    ("trade_id", "Trade"),
    ("session_date", "Session"),
    ("side", "Side"),
    ("entry_time", "Entry"),
    ("entry_price", "Entry $"),
    ("stop_price", "Stop $"),
    ("shares", "Shares"),
    ("exit_time", "Exit"),
    ("exit_price", "Exit $"),
    ("exit_reason", "Reason"),
    ("score", "Score"),
    ("mfe_r", "MFE R"),
    ("mae_r", "MAE R"),
    ("net_pnl", "Net $"),
    ("r_multiple", "R"),
)
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def replay_settings(config: Mapping[str, Any]) -> dict[str, float | int]:
    """Breakeven offset and bar minutes of a run's resolved config (strategy.md 5)."""
    return {
        "be_buffer": float(config.get("trade", {}).get("be_buffer", 0.0)),
        "interval_minutes": INTERVAL_MINUTES.get(str(config.get("data", {}).get("interval", "1m")), 1),
    }


def timezone_of(config: Mapping[str, Any]) -> str:
    """The run's exchange timezone (config `session.timezone`)."""
    return str(config.get("session", {}).get("timezone", charts.TZ))


def session_replay(
    run_path: Path,
    symbol: str,
    session_date: date | str,
    *,
    trades: pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
    sessions: pd.DataFrame | None = None,
    selected: str | None = None,
) -> go.Figure:
    """The replay figure of one session of `symbol` in a run (frames may be passed in to avoid re-reading);
    `selected` is the trade_id to mark (the session's other trades are dimmed)."""
    day = pd.Timestamp(session_date).date()
    config = results.load_run_config(run_path)
    trades = results.load_trades(run_path, symbol) if trades is None else trades
    fills = results.load_fills(run_path, symbol) if fills is None else fills
    sessions = results.load_sessions(run_path, symbol) if sessions is None else sessions
    day_trades = trades[pd.to_datetime(trades["session_date"]).dt.date == day]
    day_fills = fills[fills["trade_id"].isin(day_trades["trade_id"])]
    row = sessions[pd.to_datetime(sessions["session_date"]).dt.date == day]
    or_args: dict[str, Any] = {}
    if len(row):
        first = row.iloc[0]
        if pd.notna(first.get("or_high")) and pd.notna(first.get("or_low")):
            or_args = {
                "or_high": float(first["or_high"]),
                "or_low": float(first["or_low"]),
                "or_minutes": int(first["or_minutes"]),
            }
        or_args |= {key: first.get(key) for key in ("long_trigger", "short_trigger")}
    bars = results.load_bars(run_path, symbol, day)
    return charts.session_replay_figure(
        bars,
        day_trades,
        day_fills,
        symbol=symbol,
        tz=timezone_of(config),
        selected=selected,
        **or_args,
        **replay_settings(config),
    )


# ------------------------------------------------------------------------------------------- HTML

CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --pos:#16a34a; --neg:#dc2626; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 34px 0 12px; }
.sub { color: var(--muted); margin: 0 0 22px; }
.kpis { display:grid; grid-template-columns: repeat(auto-fit, minmax(132px, 1fr)); gap: 12px; }
.kpi { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 22px; font-weight: 650; margin-top: 2px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:8px; margin-bottom:16px; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; background:#fff; font-size: 13px; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { position: sticky; top: 0; background: #f1f5f9; font-weight: 600; }
td.text, th.text { text-align: left; }
.metrics td:nth-child(odd) { color: var(--muted); text-align: left; }
.pos { color: var(--pos); font-weight: 600; } .neg { color: var(--neg); font-weight: 600; }
.scroll { max-height: 560px; overflow: auto; border:1px solid var(--line); border-radius:10px; }
.note { color: var(--muted); }
details { margin-top: 10px; }
pre { background:#fff; border:1px solid var(--line); padding:12px; overflow:auto; }
footer { color: var(--muted); margin-top: 40px; font-size: 12px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


class _Figures:
    """Numbers each figure's div so the page is the same bytes for the same run."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: go.Figure) -> str:
        self.count += 1
        div = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig-{self.count}", config=PLOT_CONFIG
        )
        return f'<div class="card">{div}</div>'


def _kpis(metrics: Mapping[str, Any]) -> str:
    cards = []
    for key in KPI_KEYS:
        value = metrics.get(key)
        tone = ""
        if key in ("total_r", "avg_r", "net_pnl") and isinstance(value, int | float):
            tone = " pos" if value > 0 else " neg" if value < 0 else ""
        cards.append(
            f'<div class="kpi"><div class="label">{_e(charts.METRIC_LABELS.get(key, key))}</div>'
            f'<div class="value{tone}">{_e(charts.format_metric(key, value))}</div></div>'
        )
    return f'<div class="kpis">{"".join(cards)}</div>'


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    items = [
        (charts.METRIC_LABELS.get(k, k), charts.format_metric(k, v))
        for k, v in metrics.items()
        if not isinstance(v, dict)
    ]
    reasons = metrics.get("exit_reasons") or {}
    items += [(f"Exits: {reason}", f"{n:,}") for reason, n in reasons.items()]
    per_row = 3
    rows = []
    for i in range(0, len(items), per_row):
        cells = "".join(
            f"<td>{_e(label)}</td><td>{_e(value)}</td>" for label, value in items[i : i + per_row]
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="metrics">{"".join(rows)}</table>'


def _cell(column: str, value: Any, tz: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return '<td class="text">—</td>'
    if column in ("entry_time", "exit_time"):
        local = pd.Timestamp(value).tz_convert(tz)
        return f"<td>{local:%H:%M}</td>"
    if column in ("trade_id", "side", "exit_reason", "session_date"):
        return f'<td class="text">{_e(value)}</td>'
    if column == "r_multiple":
        tone = "pos" if value > 0 else "neg"
        return f'<td class="{tone}">{value:+.2f}</td>'
    if column in ("mfe_r", "mae_r"):
        return f"<td>{value:+.2f}</td>"
    if column == "net_pnl":
        return f"<td>{money(value)}</td>"
    if column == "shares":
        return f"<td>{int(value):,}</td>"
    if column == "score":
        return f"<td>{value:g}</td>"
    return f"<td>{value:.2f}</td>"


def _trade_list(trades: pd.DataFrame, tz: str) -> str:
    if trades.empty:
        return '<p class="note">No trades in this run for this symbol.</p>'
    present = [(c, label) for c, label in TRADE_LIST_COLUMNS if c in trades.columns]
    head = "".join(
        f'<th class="text">{_e(label)}</th>' if c in ("trade_id", "session_date", "side", "exit_reason") else
        f"<th>{_e(label)}</th>"
        for c, label in present
    )  # fmt: skip
    body = []
    for row in trades.sort_values("entry_time").itertuples(index=False):
        values = row._asdict()
        body.append("<tr>" + "".join(_cell(c, values[c], tz) for c, _ in present) + "</tr>")
    return (
        f'<p class="note">Times are {_e(tz)} local. R is net of costs.</p>'
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _skipped(sessions: pd.DataFrame) -> str:
    skipped = sessions[sessions["status"] == "skipped"]
    if skipped.empty:
        return '<p class="note">No session was skipped.</p>'
    counts = skipped["skip_reason"].value_counts()
    summary = ", ".join(f"{_e(reason)}: {n}" for reason, n in counts.items())
    rows = "".join(
        f'<tr><td class="text">{_e(pd.Timestamp(r.session_date).date())}</td>'
        f'<td class="text">{_e(r.skip_reason)}</td>'
        f"<td>{'—' if pd.isna(r.or_width_atr) else f'{r.or_width_atr:.2f}'}</td></tr>"
        for r in skipped.itertuples(index=False)
    )
    return (
        f"<p>{len(skipped)} of {len(sessions)} sessions skipped ({summary}).</p><details><summary>Skipped "
        f'sessions</summary><div class="scroll"><table><thead><tr><th class="text">Session</th>'
        f'<th class="text">Reason</th><th>OR width / ATR</th></tr></thead><tbody>{rows}</tbody></table></div>'
        "</details>"
    )


def _replay_sessions(trades: pd.DataFrame) -> list[tuple[str, pd.Timestamp]]:
    """(caption, session date) of the best and the worst trade's sessions."""
    if trades.empty:
        return []
    best = trades.loc[trades["r_multiple"].idxmax()]
    worst = trades.loc[trades["r_multiple"].idxmin()]
    picks = [(f"Best trade {best['trade_id']} ({best['r_multiple']:+.2f}R)", best["session_date"])]
    if worst["trade_id"] != best["trade_id"]:
        picks.append(
            (f"Worst trade {worst['trade_id']} ({worst['r_multiple']:+.2f}R)", worst["session_date"])
        )
    return picks


def render_report(run_path: Path, symbol: str) -> str:
    """The report page of `symbol` in run folder `run_path`, as HTML text."""
    run = Path(run_path)
    sym = results.validate_symbol(symbol)
    manifest = results.load_manifest(run)
    config = results.load_run_config(run)
    metrics = results.load_symbol_metrics(run, sym)
    trades = results.load_trades(run, sym)
    fills = results.load_fills(run, sym)
    equity = results.load_equity(run, sym)
    sessions = results.load_sessions(run, sym)
    tz = timezone_of(config)
    run_id = manifest.get("run_id", run.name)
    figs = _Figures()

    parts = [
        f"<h1>{_e(sym)} · Opening Range Breakout backtest</h1>",
        f'<p class="sub">Run {_e(run_id)} · sessions {_e(manifest.get("start", "?"))} to '
        f"{_e(manifest.get('end', '?'))} · interval {_e(config.get('data', {}).get('interval', '?'))} · "
        f"data {_e((manifest.get('sources') or {}).get(sym, '?'))} · times in {_e(tz)}</p>",
        _kpis(metrics),
        "<h2>Equity and drawdown</h2>",
        figs.html(charts.equity_figure({sym: equity}, unit="usd", tz=tz)),
        figs.html(charts.equity_figure({sym: equity}, unit="r", tz=tz)),
        "<h2>Metrics</h2>",
        _metrics_table(metrics),
    ]
    if trades.empty:
        parts.append(
            '<p class="note">This symbol produced no trades: there is nothing to chart per trade.</p>'
        )
    else:
        parts += [
            "<h2>Trade statistics</h2>",
            '<div class="grid2">',
            figs.html(charts.r_distribution_figure(trades)),
            figs.html(charts.exit_reason_figure(trades, metrics)),
            "</div>",
            figs.html(charts.time_of_day_figure(trades, tz=tz)),
            figs.html(charts.monthly_heatmap_figure(trades)),
            figs.html(charts.long_short_figure(trades, metrics)),
            figs.html(charts.factor_attribution_figure(trades)),
            "<h2>Session replays</h2>",
        ]
        for caption, day in _replay_sessions(trades):
            parts.append(f"<h3>{_e(caption)}</h3>")
            parts.append(
                figs.html(session_replay(run, sym, day, trades=trades, fills=fills, sessions=sessions))
            )
    parts += ["<h2>Sessions skipped</h2>", _skipped(sessions)]
    return document(f"{sym} ORB report · {run_id}", parts, trades, tz, config, manifest)


def document(
    title: str, parts: list[str], trades: pd.DataFrame, tz: str, config: dict, manifest: dict
) -> str:
    """The self-contained HTML page: `parts`, then the trade list, the configuration and a footer."""
    parts = [
        *parts,
        f"<h2>Trades ({len(trades)})</h2>",
        _trade_list(trades, tz),
        "<h2>Configuration</h2>",
        f"<details><summary>Resolved configuration (config.json)</summary><pre>"
        f"{_e(json.dumps(config, indent=2))}</pre></details>",
        f"<footer>orb {_e(__version__)} · {_e(manifest.get('command', ''))}</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(run_path: Path, symbol: str) -> Path:
    """Write `SYM_report.html` into run folder `run_path` and return its path."""
    sym = results.validate_symbol(symbol)
    out = Path(run_path) / f"{sym}_report.html"
    out.write_text(render_report(Path(run_path), sym), encoding="utf-8")
    return out
