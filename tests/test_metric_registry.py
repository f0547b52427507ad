"""The metric registry: every key a run writes has one entry, and the tables built from it agree."""

from __future__ import annotations

import json
import math

import pytest
from run_fixtures import runner_run

from orb import charts, metric_registry
from orb.api.models import Metrics
from orb.metric_registry import METRICS, Better, Kind
from orb.research import sweep
from orb.schema import AGGREGATE_EXTRA_KEYS, METRIC_KEYS


@pytest.fixture(scope="module")
def written_metrics(tmp_path_factory) -> dict:
    """metrics.json of a real runner run."""
    run = runner_run(tmp_path_factory.mktemp("registry") / "runs")
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


def test_every_key_the_runner_writes_is_in_the_registry(written_metrics):
    aggregate = written_metrics["aggregate"]
    assert list(aggregate) == [*METRIC_KEYS, *AGGREGATE_EXTRA_KEYS]
    assert set(aggregate) <= set(METRICS)
    for per_symbol in written_metrics["per_symbol"].values():
        assert set(per_symbol) <= set(METRICS)


def test_the_registry_kinds_match_the_written_values(written_metrics):
    """Whole-number kinds hold ints, shares stay within 0-1, breakdowns are objects or lists."""
    for key, value in written_metrics["aggregate"].items():
        metric = METRICS[key]
        if value is None:
            continue
        if metric.integer:
            assert isinstance(value, int), key
        elif metric.kind is Kind.SHARE:
            assert 0.0 <= value <= 1.0, key
        elif metric.kind is Kind.BREAKDOWN:
            assert isinstance(value, dict | list), key
        else:
            assert isinstance(value, int | float) and math.isfinite(value), key


def test_schema_metric_keys_are_the_registry_run_metrics_in_order():
    assert tuple(m.key for m in metric_registry.RUN_METRICS) == METRIC_KEYS
    assert METRIC_KEYS[0] == "total_trades" and METRIC_KEYS[-1] == "exit_reasons"


def test_sweep_tables_come_from_the_registry():
    assert set(sweep.RANK_KEYS) == set(METRIC_KEYS) - {"exit_reasons"}
    assert {"losing_trades", "max_consecutive_losses", "max_drawdown_duration_days"} == sweep.LOWER_IS_BETTER
    assert set(sweep.COUNT_KEYS) == {k for k in METRIC_KEYS if METRICS[k].kind in (Kind.COUNT, Kind.DAYS)}
    # a lower-is-better key ranks the smaller value first, any other the larger one
    assert sweep.rank_value({"losing_trades": 2}, "losing_trades") < sweep.rank_value(
        {"losing_trades": 5}, "losing_trades"
    )
    assert sweep.rank_value({"total_r": 5.0}, "total_r") < sweep.rank_value({"total_r": 2.0}, "total_r")


def test_chart_labels_and_counts_come_from_the_registry():
    for key in (*METRIC_KEYS, *AGGREGATE_EXTRA_KEYS):
        if key != "exit_reasons":
            assert charts.METRIC_LABELS[key] == METRICS[key].label
    assert "exit_reasons" not in charts.METRIC_LABELS
    assert {"total_trades", "max_drawdown_duration_days", "sessions_skipped"} <= charts.COUNT_KEYS
    assert "total_r" not in charts.COUNT_KEYS


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("sessions", 1234, "1,234"),  # count
        ("max_drawdown_duration_days", 30, "30"),  # days
        ("long_win_rate", 0.5, "50.0%"),  # share
        ("cagr_pct", 12.345, "12.35%"),  # pct
        ("final_equity", 1234.5, "$1,234.50"),  # money
        ("expectancy_r", 0.25, "+0.25R"),  # r
        ("sqn", 1.5, "1.50"),  # ratio
        ("avg_holding_minutes", 61.25, "61.25"),  # minutes
        ("oos_r_per_session", -0.1, "-0.10R"),  # research key
        ("profitable_fold_share", 0.6, "60.0%"),
        ("symbols", ["SPY", "QQQ"], "SPY, QQQ"),
        ("sharpe", None, "—"),
        ("sharpe", float("nan"), "—"),
        ("unknown_pct", 1.0, "1.00%"),  # unknown keys: kind from the suffix
        ("unknown_r", 1.0, "+1.00R"),
    ],
)
def test_format_by_kind(key, value, text):
    assert metric_registry.format_value(key, value) == text


def test_better_directions():
    assert METRICS["max_drawdown_r"].better is Better.HIGHER  # drawdowns are <= 0: higher is shallower
    assert METRICS["losing_trades"].better is Better.LOWER
    assert METRICS["sessions"].better is Better.NONE


def test_api_metrics_model_has_a_typed_field_per_registry_key():
    fields = Metrics.model_fields
    assert set(fields) == {m.key for m in (*metric_registry.RUN_METRICS, *metric_registry.AGGREGATE_METRICS)}
    model = Metrics(total_trades=3, total_r=1.5, exit_reasons={"stop": 3}, symbols=["SPY"], extra_key=1)
    assert model.total_trades == 3 and model.total_r == 1.5 and model.model_extra == {"extra_key": 1}
    with pytest.raises(ValueError):
        Metrics(total_trades="three")
    schema = Metrics.model_json_schema()
    assert {"type": "integer"} in schema["properties"]["total_trades"]["anyOf"]
    assert schema["properties"]["win_rate"]["description"] == "Win rate (0-1)"


def test_console_headers_come_from_the_registry():
    assert metric_registry.header("win_rate") == "Win Rate"
    assert metric_registry.header("total_r") == "Total R"
    assert metric_registry.header("max_drawdown_r") == "Max DD R"
