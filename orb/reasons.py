"""One-line meanings of the session skip reasons (the `skip_reason` column; strategy.md 1, 2, 10.9.2),
shared by the console and the dashboard."""

from __future__ import annotations

SKIP_REASONS: dict[str, str] = {
    "warmup": "too few earlier sessions for a value the config needs (ATR, adaptive OR, volume history)",
    "no_or_bars": "no bar inside the opening-range window",
    "missing_bar": "the opening range lacks an expected bar (--validate-or)",
    "duplicate_timestamp": "the opening range has a duplicate or out-of-order timestamp (--validate-or)",
    "nan_value": "a bar of the opening range has a missing value (--validate-or)",
    "ohlc_violation": "a bar of the opening range breaks low <= open, close <= high (--validate-or)",
    "zero_volume": "the opening range traded zero volume (--validate-or)",
    "zero_width": "the opening range high equals its low",
    "width_below_min": "the opening range is narrower than orb.min_width_atr x ATR",
    "width_above_max": "the opening range is wider than orb.max_width_atr x ATR",
    "no_data": "the symbol has no regular-hours bar in this session",
    "min_price": "the open price is not above universe.min_price",
    "min_avg_volume": "the average volume is below universe.min_avg_volume",
    "min_atr": "the ATR is not above universe.min_atr",
    "min_rel_volume": "the relative volume is below universe.min_rel_volume",
}


def skip_meaning(reason: str) -> str:
    """The meaning of `reason`, or a pointer to the docs for a reason this table does not know."""
    return SKIP_REASONS.get(reason, "see docs (strategy.md sections 1-2)")
