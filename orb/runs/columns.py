"""Columns of the run folder's Parquet tables (run-format.md) and the check of a file's schema against them.

Only columns a reader needs are required; every other run-format.md column, when present, must have its
type family (text, number, bool, timestamp, date). Unknown columns pass (factor_<name>, newer writers).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from orb.runs.layout import ALL_TRADES, COMBINED_EQUITY, SYMBOL_FILES, WF_OOS_EQUITY, WF_OOS_TRADES


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_day(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


_TYPES: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {
    "text": ("text", _is_text),
    "number": ("a number", _is_number),
    "bool": ("true/false", pa.types.is_boolean),
    "time": ("a timestamp", pa.types.is_timestamp),
    "day": ("a date", _is_day),
}
_TRADE_COLUMNS = {
    "trade_id": "text", "symbol": "text", "session_date": "day", "side": "text", "entry_time": "time",
    "exit_time": "time", "exit_reason": "text", "t1_filled": "bool", "t2_filled": "bool",
    "breakeven_time": "time", "shares": "number", "or_minutes": "number",
    **dict.fromkeys((
        "entry_price", "stop_price", "r_per_share", "t1_price", "t2_price", "target_price", "exit_price",
        "gross_pnl", "commission", "net_pnl", "initial_risk", "r_multiple", "gross_r", "mfe_r", "mae_r",
        "holding_minutes", "or_high", "or_low", "score",
    ), "number"),
}  # fmt: skip
_EQUITY_COLUMNS = {
    "timestamp": "time",
    **dict.fromkeys(("equity", "cum_r", "drawdown_pct", "drawdown_r"), "number"),
}
# kind -> (columns a reader needs, type of every run-format.md column that is present)
TABLE_COLUMNS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "trades": (("trade_id", "symbol", "session_date", "side", "entry_time", "exit_reason"), _TRADE_COLUMNS),
    "equity": (("timestamp", "equity"), _EQUITY_COLUMNS),
    "sessions": (
        ("session_date", "status"),
        {
            "session_date": "day", "status": "text", "skip_reason": "text", "trades": "number",
            **dict.fromkeys(("or_minutes", "or_high", "or_low", "or_width", "atr", "or_width_atr"), "number"),
            "day_r": "number",
        },
    ),
    "fills": (
        ("trade_id", "time", "kind", "price"),
        {"trade_id": "text", "time": "time", "kind": "text", "price": "number", "shares": "number",
         "commission": "number"},
    ),
    "bars": (("timestamp", "open", "high", "low", "close"), {
        "timestamp": "time", **dict.fromkeys(("open", "high", "low", "close", "volume"), "number")}),
}  # fmt: skip
_TABLE_KINDS = {
    ALL_TRADES: "trades",
    WF_OOS_TRADES: "trades",
    COMBINED_EQUITY: "equity",
    WF_OOS_EQUITY: "equity",
}


def table_kind(name: str) -> str | None:
    """The TABLE_COLUMNS kind of a run file name (`SPY_trades.parquet` -> "trades"), else None."""
    if name in _TABLE_KINDS:
        return _TABLE_KINDS[name]
    stem, _, ext = name.rpartition(".")
    kind = stem.rpartition("_")[2]
    return kind if kind in TABLE_COLUMNS and SYMBOL_FILES.get(kind) == ext else None


def schema_problem(name: str, schema: pa.Schema) -> str | None:
    """What breaks run-format.md in the schema of run file `name` (a needed column missing, a column of
    another type), or None."""
    kind = table_kind(name)
    if kind is None:
        return
    needed, types = TABLE_COLUMNS[kind]
    problem = None
    missing = [c for c in needed if c not in schema.names]
    if missing:
        problem = f"no column {', '.join(missing)}"
    else:
        for field in schema:
            want = types.get(field.name)
            if want is not None and not pa.types.is_null(field.type) and not _TYPES[want][1](field.type):
                problem = f"column {field.name} is {field.type}, not {_TYPES[want][0]}"
                break
    return problem
