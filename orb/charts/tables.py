"""Metric labels, number formats and the per-symbol metrics table, all from orb.metric_registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from orb.metric_registry import METRICS, format_value

METRIC_LABELS = {key: m.label for key, m in METRICS.items() if key != "exit_reasons"}
COUNT_KEYS = frozenset(key for key, m in METRICS.items() if m.integer)


def format_metric(key: str, value: Any) -> str:
    """A metric value for display: '—' for undefined, % for rates, $ for money, R for R values."""
    return format_value(key, value)


def metrics_frame(per_symbol: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per label (symbol or run), one column per scalar metric (raw values, exit_reasons spread)."""
    rows = {}
    for label, metrics in per_symbol.items():
        row = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
        for reason, n in (metrics.get("exit_reasons") or {}).items():
            row[f"exit_{reason}"] = n
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.astype({c: float for c in frame.columns if frame[c].isna().any()})
