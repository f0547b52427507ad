"""Column contracts of the DataFrames passed between stages and the value sets of their string columns
(run-format.md is the file contract).

Bars (every data source returns this, the engine consumes it):
    index   `timestamp`: DatetimeIndex, tz-aware UTC, bar START, sorted, unique
    columns open, high, low, close (float64), volume (int64)
"""

from enum import StrEnum

from orb.metric_registry import RUN_METRIC_KEYS

BAR_COLUMNS = ("open", "high", "low", "close", "volume")

TRADE_COLUMNS = (
    "trade_id",
    "symbol",
    "session_date",
    "side",
    "entry_time",
    "entry_price",
    "stop_price",
    "r_per_share",
    "shares",
    "t1_price",
    "t2_price",
    "target_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "t1_filled",
    "t2_filled",
    "gross_pnl",
    "commission",
    "net_pnl",
    "initial_risk",
    "r_multiple",
    "gross_r",
    "mfe_r",
    "mae_r",
    "holding_minutes",
    "or_high",
    "or_low",
    "or_minutes",
    "score",
    "breakeven_time",
)  # followed by factor_<name> for each factor in orb.config.FACTOR_NAMES
FILL_COLUMNS = ("trade_id", "symbol", "time", "kind", "price", "shares", "commission")
EQUITY_COLUMNS = ("timestamp", "equity", "cum_r", "drawdown_pct", "drawdown_r")
SESSION_COLUMNS = (
    "session_date",
    "or_minutes",
    "or_high",
    "or_low",
    "or_width",
    "atr",
    "or_width_atr",
    "status",
    "skip_reason",
    "trades",
    "day_r",
    "long_trigger",
    "short_trigger",
)
EVENT_COLUMNS = ("time", "symbol", "session_date", "side", "reason", "detail")

METRIC_KEYS = RUN_METRIC_KEYS  # metrics.json order (orb.metric_registry)
AGGREGATE_EXTRA_KEYS = ("symbols", "avg_r_per_trade")


class RunMode(StrEnum):
    """manifest.json `mode`: what a run folder holds (a manifest without `mode` is a backtest)."""

    BACKTEST = "backtest"
    SWEEP = "sweep"
    WALK_FORWARD = "walk_forward"
    PORTFOLIO = "portfolio"


class ExitReason(StrEnum):
    """trades `exit_reason`: the reason of a trade's last leg (strategy.md 5)."""

    STOP = "stop"
    BREAKEVEN = "breakeven"
    TARGET = "target"
    EOD = "eod"


class FillKind(StrEnum):
    """fills `kind`."""

    ENTRY = "entry"
    T1 = "t1"
    T2 = "t2"
    TARGET = "target"
    STOP = "stop"
    BREAKEVEN = "breakeven"
    EOD = "eod"


class SessionStatus(StrEnum):
    """sessions `status`."""

    TRADED = "traded"
    NO_SIGNAL = "no_signal"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    """sessions `skip_reason` of a skipped session (strategy.md 1, 2), in the order they are checked."""

    WARMUP = "warmup"
    MISSING_BAR = "missing_bar"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"
    NAN_VALUE = "nan_value"
    OHLC_VIOLATION = "ohlc_violation"
    ZERO_VOLUME = "zero_volume"
    NO_OR_BARS = "no_or_bars"
    ZERO_WIDTH = "zero_width"
    WIDTH_BELOW_MIN = "width_below_min"
    WIDTH_ABOVE_MAX = "width_above_max"
