"""Golden regression: fixed configs on the real SPY 2011 bars must reproduce the stored trades and metrics.

Any difference fails and the message lists the trades added, removed or changed (with the differing
fields, old -> new). Trades are matched by (entry_time, side): one position is open at a time, so that
pair identifies a trade even when an added or removed trade shifts the trade ids. Trade values are
compared exactly (stored as Python float repr); metric floats to 12 significant digits, because numpy
reductions (std, mean) may round the last bit differently on another CPU.

When a change of results is intended: `python scripts/regenerate_golden.py [CASE ...]`, review
`git diff tests/golden`, and commit it with the change (docs/validation.md).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.data import load_symbol
from tests.golden.cases import (
    CASES,
    CONFIG_FILE,
    FIRST,
    GOLDEN,
    KEY,
    LAST,
    METRICS_FILE,
    REGENERATE,
    REPO,
    TRADES_FILE,
    read_trades_csv,
    run_case,
    spy_bars,
    trades_csv,
    trades_rows,
)

MAX_LINES = 30


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return spy_bars()


def diff_trades(
    old_columns: list[str], old: list[dict[str, str]], new_columns: list[str], new: list[dict[str, str]]
) -> list[str]:
    """Lines describing how the new trade rows differ from the stored ones (empty when equal)."""
    lines = []
    if old_columns != new_columns:
        gone = [c for c in old_columns if c not in new_columns]
        added = [c for c in new_columns if c not in old_columns]
        lines.append(f"columns changed: removed {gone or '-'}, added {added or '-'}, order or names differ")
    old_by_key = {tuple(row[k] for k in KEY): row for row in old}
    new_by_key = {tuple(row[k] for k in KEY): row for row in new}
    shared = [c for c in new_columns if c in old_columns]
    for key, row in old_by_key.items():
        if key not in new_by_key:
            lines.append(f"removed {row['trade_id']} {key[1]} entry {key[0]} (exit {row['exit_reason']})")
    for key, row in new_by_key.items():
        if key not in old_by_key:
            lines.append(
                f"added   {row['trade_id']} {key[1]} entry {key[0]} (exit {row['exit_reason']}, "
                f"r_multiple {row['r_multiple']})"
            )
            continue
        before = old_by_key[key]
        changed = [f"{c} {before[c]} -> {row[c]}" for c in shared if before[c] != row[c]]
        if changed:
            lines.append(f"changed {row['trade_id']} {key[1]} entry {key[0]}: " + "; ".join(changed))
    return lines


def diff_values(old, new, path: str = "") -> list[str]:
    """Lines for differing JSON values (floats to 12 significant digits), recursing into objects."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                lines.append(f"{where}: removed (was {old[key]!r})")
            elif key not in old:
                lines.append(f"{where}: added ({new[key]!r})")
            else:
                lines += diff_values(old[key], new[key], where)
        return lines
    both_float = all(isinstance(v, float) and not isinstance(v, bool) for v in (old, new))
    if both_float and math.isclose(old, new, rel_tol=1e-12, abs_tol=1e-12):
        return []
    return [] if old == new and type(old) is type(new) else [f"{path}: {old!r} -> {new!r}"]


@pytest.mark.parametrize("name", list(CASES))
def test_golden_case(bars, name):
    folder = GOLDEN / name
    if not (folder / TRADES_FILE).exists():
        pytest.fail(f"no golden files in {folder.relative_to(REPO)}; create them with `{REGENERATE} {name}`")
    trades, metrics, config = run_case(name, bars)
    old_columns, old_rows = read_trades_csv(folder / TRADES_FILE)
    problems = [
        f"config {line}" for line in diff_values(json.loads((folder / CONFIG_FILE).read_text()), config)
    ]
    problems += diff_trades(old_columns, old_rows, list(trades.columns), trades_rows(trades))
    problems += [
        f"metric {line}" for line in diff_values(json.loads((folder / METRICS_FILE).read_text()), metrics)
    ]
    if not problems and (folder / TRADES_FILE).read_text(encoding="utf-8") != trades_csv(trades):
        problems.append("trades.csv text differs (row order or trade ids) though every trade matches")
    shown = problems[:MAX_LINES] + (
        [f"... {len(problems) - MAX_LINES} more"] if len(problems) > MAX_LINES else []
    )
    assert not problems, (
        f"golden case {name!r} ({len(old_rows)} stored trades, {len(trades)} now) differs:\n  "
        + "\n  ".join(shown)
        + f"\nIf the change is intended, run `{REGENERATE} {name}`, review `git diff tests/golden/{name}` "
        "and commit it (docs/validation.md)."
    )


def test_every_case_trades_and_covers_its_rules(bars):
    # The cases are only useful if they exercise what they are named after.
    seen = {}
    for name in CASES:
        _, rows = read_trades_csv(GOLDEN / name / TRADES_FILE)
        seen[name] = rows
        assert len(rows) >= 10, name
    reasons = {row["exit_reason"] for rows in seen.values() for row in rows}
    assert reasons == {"stop", "breakeven", "target", "eod"}
    assert {row["or_minutes"] for row in seen["adaptive_atr_flatten"]} - {"15"}  # adaptive moved N
    assert {row["or_minutes"] for row in seen["zarattini_2023"]} == {"5"}
    flatten = {
        pd.Timestamp(r["exit_time"]).tz_convert("America/New_York").strftime("%H:%M")
        for r in seen["adaptive_atr_flatten"]
        if r["exit_reason"] == "eod"
    }
    assert flatten == {"15:30"}


def test_diff_names_added_removed_and_changed_trades():
    columns, rows = read_trades_csv(GOLDEN / "defaults" / TRADES_FILE)
    new = [dict(row) for row in rows[1:]]  # the first trade removed
    new[0] = {**new[0], "exit_price": "1.5", "exit_reason": "eod"}  # the second changed
    new.append({**rows[0], "entry_time": "2011-03-31T19:00:00+00:00", "trade_id": "SPY-00099"})  # one added
    lines = diff_trades(columns, rows, columns, new)
    assert len(lines) == 3
    assert lines[0].startswith(
        f"removed {rows[0]['trade_id']} {rows[0]['side']} entry {rows[0]['entry_time']}"
    )
    assert lines[1].startswith(f"changed {rows[1]['trade_id']}")
    assert f"exit_price {rows[1]['exit_price']} -> 1.5" in lines[1] and "exit_reason" in lines[1]
    assert lines[2].startswith("added   SPY-00099")
    assert diff_trades(columns, rows, columns, [dict(r) for r in rows]) == []
    assert "columns changed" in diff_trades(columns, rows, [*columns, "extra"], rows)[0]


def test_metric_diff_tolerates_only_last_bits():
    assert diff_values({"a": 1.0, "b": {"x": 2}}, {"a": 1.0 + 1e-15, "b": {"x": 2}}) == []
    assert diff_values({"a": 1.0}, {"a": 1.0 + 1e-9}) == [f"a: 1.0 -> {1.0 + 1e-9!r}"]
    assert diff_values({"a": None}, {"a": 0.0}) == ["a: None -> 0.0"]
    assert diff_values({"n": 3}, {"n": 3.0}) == ["n: 3 -> 3.0"]
    assert diff_values({"r": {"stop": 1}}, {"r": {}}) == ["r.stop: removed (was 1)"]


def test_raw_ninjatrader_csvs_give_the_same_bars_as_the_parquet(bars):
    # The parquet is the two raw CSVs with bar-end UTC stamps shifted to bar start (tests/data/README.md);
    # the file data layer, told the CSVs are bar-end UTC, must produce the identical regular-hours bars.
    config = with_overrides(load_config(), {"data.file_timezone": "UTC", "data.file_bar_label": "end"})
    months = [
        ("pyalgotrade_nt-spy-minute-2011-01.csv", FIRST, pd.Timestamp("2011-01-31").date()),
        ("pyalgotrade_nt-spy-minute-2011-03.csv", pd.Timestamp("2011-03-01").date(), LAST),
    ]
    parts = [
        load_symbol(
            "SPY", config=config, start=a, end=b, source="file", data_path=REPO / "tests" / "data" / f
        ).bars
        for f, a, b in months
    ]
    from_csv = pd.concat(parts)
    assert len(from_csv) == 43 * 390
    pd.testing.assert_frame_equal(from_csv, bars, check_index_type=False)
