"""Console tables of a portfolio run: the account summary and the eligibility funnel."""

from __future__ import annotations

from rich.table import Table

from orb.console import console


def _fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def summary_table(agg: dict, benchmark: str | None) -> None:
    """Account return, Sharpe, max drawdown, daily hit ratio, trade win rate, positions (and beta/alpha)."""
    table = Table(title="Portfolio (one account)", title_style="bold", header_style="bold magenta")
    cols = {
        "Account Return": _fmt(agg["total_return_pct"], "+.2f", "%"),
        "Sharpe": _fmt(agg["sharpe"]),
        "Max Drawdown": _fmt(agg["max_drawdown_pct"], ".2f", "%"),
        "Daily Hit Ratio": _fmt(
            None if agg["daily_hit_ratio"] is None else agg["daily_hit_ratio"] * 100, ".1f", "%"
        ),
        "Trades": str(agg["total_trades"]),
        "Trade Win Rate": _fmt(None if agg["win_rate"] is None else agg["win_rate"] * 100, ".1f", "%"),
        "Average Positions": _fmt(agg["avg_positions"]),
        "Worst Day": _fmt(agg["worst_day_pct"], "+.2f", "%"),
    }
    if benchmark is not None:
        cols |= {
            f"{benchmark} Buy and Hold": _fmt(agg.get("benchmark_return_pct"), "+.2f", "%"),
            "Beta": _fmt(agg.get("beta"), ".2f"),
            "Alpha": _fmt(agg.get("alpha_pct"), "+.2f", " %/yr"),
        }
    table.add_column("Account")
    table.add_column("Value", justify="right")
    for name, value in cols.items():
        table.add_row(name, value)
    console.print(table)


def funnel_table(counts: dict[str, int]) -> None:
    """How many symbol-sessions failed each rule (in the rules' order) and how many were selected."""
    table = Table(title="Universe funnel (symbol-sessions)", title_style="bold", header_style="bold magenta")
    table.add_column("Outcome")
    table.add_column("Count", justify="right")
    for key, value in counts.items():
        label = key.replace("_", " ") if key in ("symbol_sessions", "not_selected") else key
        table.add_row(label, str(value), style="bold" if key in ("symbol_sessions", "selected") else "")
    console.print(table)
