"""Plotly figures and display tables of a run, shared by the Streamlit dashboard and the HTML report.

Every function takes DataFrames with run-format.md columns (times tz-aware UTC) and returns a new
object; nothing here reads files. Times are shown in exchange-local time (`tz`, America/New_York by
default) as naive wall-clock values, so plotly draws 09:30 as 09:30 whatever the viewer's timezone.
A trade is a winner when its `r_multiple` (net R) is above 0. One module per job: `base` (colours,
template), `performance` (equity and trade statistics), `overview` (benchmark, costs, daily
P&L calendar, MFE/MAE), `replay` (one session), `research` (sweep,
walk-forward, Monte Carlo) and `tables` (metric labels and formats from orb.metric_registry).
"""

from orb.charts.base import (
    ACCENT,
    COMBINED,
    INK,
    LONG_COLOR,
    MONTHS,
    NEG,
    NEUTRAL,
    POS,
    SERIES,
    SHORT_COLOR,
    TZ,
    to_local,
)
from orb.charts.overview import (
    MARKET_FILLS,
    SLIPPAGE_HELP,
    Costs,
    benchmark_figure,
    buy_and_hold,
    calendar_figure,
    daily_pnl,
    mfe_mae_figure,
    session_closes,
    trading_costs,
)
from orb.charts.performance import (
    equity_figure,
    exit_reason_figure,
    factor_attribution,
    factor_attribution_figure,
    factor_columns,
    long_short_figure,
    monthly_heatmap_figure,
    r_distribution_figure,
    score_attribution,
    time_of_day_figure,
)
from orb.charts.replay import session_replay_figure
from orb.charts.research import (
    HEATMAP_AGGREGATIONS,
    montecarlo_bands_figure,
    montecarlo_drawdown_figure,
    montecarlo_table,
    parameter_stability_frame,
    sweep_grid,
    sweep_heatmap_figure,
    walkforward_equity_figure,
    walkforward_folds_figure,
)
from orb.charts.tables import COUNT_KEYS, METRIC_LABELS, format_metric, metrics_frame

__all__ = [
    "ACCENT", "COMBINED", "COUNT_KEYS", "HEATMAP_AGGREGATIONS", "INK", "LONG_COLOR", "MARKET_FILLS",
    "METRIC_LABELS", "MONTHS", "NEG", "NEUTRAL", "POS", "SERIES", "SHORT_COLOR", "SLIPPAGE_HELP", "TZ",
    "benchmark_figure", "buy_and_hold", "calendar_figure", "Costs", "daily_pnl", "equity_figure",
    "exit_reason_figure", "factor_attribution", "factor_attribution_figure", "factor_columns",
    "format_metric", "long_short_figure", "metrics_frame", "mfe_mae_figure", "montecarlo_bands_figure",
    "montecarlo_drawdown_figure", "montecarlo_table", "monthly_heatmap_figure", "parameter_stability_frame",
    "r_distribution_figure", "score_attribution", "session_closes", "session_replay_figure", "sweep_grid",
    "sweep_heatmap_figure", "time_of_day_figure", "to_local", "trading_costs", "walkforward_equity_figure",
    "walkforward_folds_figure",
]  # fmt: skip
