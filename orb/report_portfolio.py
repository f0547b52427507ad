"""`portfolio_report.html`: a portfolio run (strategy.md 10) as one self-contained page that opens offline.

The account against its benchmark, positions per session, the universe funnel, average R by
relative-volume bucket, the best and worst symbols, the trade statistics, the replays of the best and the
worst trade, and every trade. Read through orb.runs.read; the page parts and the replay are orb.report's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orb import charts
from orb.charts import portfolio as pcharts
from orb.report import _e, _Figures, _metrics_table, document, session_replay, timezone_of
from orb.runs import read as results
from orb.runs.layout import PORTFOLIO_REPORT

KPI_KEYS = (
    "total_return_pct", "sharpe", "max_drawdown_pct", "daily_hit_ratio", "total_trades", "win_rate",
    "avg_positions", "total_r",
)  # fmt: skip
TOP_SYMBOLS = 25


def _kpis(metrics: dict, benchmark: bool) -> str:
    keys = KPI_KEYS + (("benchmark_return_pct", "beta", "alpha_pct") if benchmark else ())
    cards = []
    for key in keys:
        label = (
            pcharts.portfolio_label(key) if key in pcharts.PORTFOLIO_METRICS else charts.METRIC_LABELS[key]
        )
        cards.append(
            f'<div class="kpi"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(pcharts.portfolio_metric(key, metrics.get(key)))}</div></div>'
        )
    return f'<div class="kpis">{"".join(cards)}</div>'


def _portfolio_table(metrics: dict) -> str:
    """The portfolio metrics of metrics.json, three to a row."""
    cells = [
        f"<td>{_e(label)}</td><td>{_e(pcharts.portfolio_metric(key, metrics.get(key)))}</td>"
        for key, (label, _) in pcharts.PORTFOLIO_METRICS.items()
        if key in metrics
    ]
    rows = "".join(f"<tr>{''.join(cells[i : i + 3])}</tr>" for i in range(0, len(cells), 3))
    return f'<table class="metrics">{rows}</table>'


def _symbol_table(frame: pd.DataFrame) -> str:
    rows = "".join(
        f'<tr><td class="text">{_e(r.symbol)}</td><td>{r.trades:,}</td><td>{r.total_r:+.2f}</td>'
        f"<td>{r.avg_r:+.3f}</td><td>{r.win_rate:.1%}</td><td>{r.net_pnl:,.2f}</td></tr>"
        for r in frame.itertuples(index=False)
    )
    return (
        '<table><thead><tr><th class="text">Symbol</th><th>Trades</th><th>Total R</th><th>Avg R</th>'
        f"<th>Win rate</th><th>Net $</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _replay_trades(trades: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(caption, trade) of the best and the worst trade by R (one when they are the same)."""
    best = trades.loc[trades["r_multiple"].idxmax()]
    worst = trades.loc[trades["r_multiple"].idxmin()]
    picks = [(f"Best trade {best['trade_id']} ({best['r_multiple']:+.2f}R)", best)]
    if worst["trade_id"] != best["trade_id"]:
        picks.append((f"Worst trade {worst['trade_id']} ({worst['r_multiple']:+.2f}R)", worst))
    return picks


def render_portfolio_report(run_path: Path) -> str:
    """The report page of the portfolio run in folder `run_path`, as HTML text."""
    run = Path(run_path)
    manifest = results.load_manifest(run)
    config = results.load_run_config(run)
    aggregate = results.load_symbol_metrics(run)
    universe = results.load_universe(run)
    trades = results.load_trades(run)
    equity = results.load_equity(run)
    benchmark = results.load_benchmark(run) if results.has_benchmark(run) else None
    tz = timezone_of(config)
    run_id = manifest.get("run_id", run.name)
    capital = float(config.get("risk", {}).get("initial_capital", 100_000.0))
    max_positions = config.get("portfolio", {}).get("max_positions")
    or_minutes = int(config.get("orb", {}).get("base_minutes", 5))
    figs = _Figures()
    symbols = results.symbols(run)

    parts = [
        "<h1>Portfolio · Opening Range Breakout on the daily universe</h1>",
        f'<p class="sub">Run {_e(run_id)} · {len(symbols)} symbols · top {_e(max_positions)} by relative '
        f"volume from one account · sessions {_e(manifest.get('start', '?'))} to "
        f"{_e(manifest.get('end', '?'))} · interval {_e(config.get('data', {}).get('interval', '?'))} · "
        f"times in {_e(tz)}</p>",
        _kpis(aggregate, benchmark is not None),
        "<h2>Account</h2>",
        figs.html(
            pcharts.account_figure(
                equity, benchmark, capital, benchmark_symbol=manifest.get("benchmark"), tz=tz
            )
        ),
        figs.html(pcharts.positions_figure(pcharts.positions_per_session(universe), max_positions)),
        figs.html(pcharts.funnel_figure(pcharts.funnel(universe))),
        "<h2>Metrics</h2>",
        _metrics_table(
            {k: v for k, v in aggregate.items() if k != "symbols" and k not in pcharts.PORTFOLIO_METRICS}
        ),
        _portfolio_table(aggregate),
    ]
    if trades.empty:
        parts.append('<p class="note">This run produced no trades: there is nothing to chart per trade.</p>')
    else:
        best, worst = pcharts.best_and_worst(trades, TOP_SYMBOLS)
        parts += [
            "<h2>Relative volume</h2>",
            figs.html(pcharts.rel_volume_figure(pcharts.rel_volume_buckets(trades, universe))),
            "<h2>Symbols</h2>",
            figs.html(pcharts.symbols_figure(best, worst)),
            '<div class="grid2"><div><h3>Best by total R</h3>',
            _symbol_table(best),
            "</div><div><h3>Worst by total R</h3>",
            _symbol_table(worst),
            "</div></div>",
            "<h2>Trade statistics</h2>",
            '<div class="grid2">',
            figs.html(charts.r_distribution_figure(trades)),
            figs.html(charts.exit_reason_figure(trades, aggregate)),
            "</div>",
            figs.html(charts.time_of_day_figure(trades, tz=tz)),
            figs.html(charts.monthly_heatmap_figure(trades)),
            "<h2>Session replays</h2>",
        ]
        fills = results.load_portfolio_fills(run)
        for caption, trade in _replay_trades(trades):
            sym = str(trade["symbol"])
            parts.append(f"<h3>{_e(caption)}</h3>")
            fig = session_replay(
                run,
                sym,
                trade["session_date"],
                trades=trades[trades["symbol"] == sym],
                fills=fills[fills["symbol"] == sym],
                sessions=pcharts.replay_sessions(universe, sym, or_minutes),
            )
            parts.append(figs.html(fig))
    return document(f"Portfolio ORB report · {run_id}", parts, trades, tz, config, manifest)


def write_portfolio_report(run_path: Path) -> Path:
    """Write `portfolio_report.html` into the portfolio run folder `run_path` and return its path."""
    out = Path(run_path) / PORTFOLIO_REPORT
    out.write_text(render_portfolio_report(Path(run_path)), encoding="utf-8")
    return out
