"""Shared preparation (sweeps): a `Prepared` reused across configs gives exactly the frames of a fresh run.

`PreparedMemo` hands one `Prepared` to every config with the same `prepare_key`, and a loop keeps what
it derives for an entry rule on that `Prepared`; both must be invisible in the results.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.data.synthetic import generate_bars
from orb.engine import EventLoopBacktest
from orb.metrics import aggregate_inputs, aggregate_metrics, metrics_of, symbol_metrics
from orb.prepare import PreparedMemo, prepare_key

START, END = date(2023, 3, 1), date(2023, 6, 30)
BASE = load_config()

# Configs that differ only in keys the preparation does not read: one Prepared serves them all.
SAME_PREPARATION = [
    {},
    {"costs.slippage_per_share": 0.03, "trade.atr_stop_mult": 0.5},
    {"confluence.enabled": False, "trade.partials": False, "trade.target_r": 1.5},
    {"entry.mode": "close", "confluence.required": 1},
    {"entry.direction": "or_candle", "confluence.enabled": False, "governance.max_signals_per_day": 4},
    {"entry.direction": "short", "trade.same_bar": "ohlc_path", "entry.cutoff": "12:00"},
    {"risk.risk_per_trade": 0.02, "governance.lockout_after_losses": 0},
]
# Keys the preparation reads: each must change the key.
PREPARATION_KEYS = [
    {"orb.base_minutes": 5},
    {"orb.adaptive": True},
    {"orb.min_width_atr": None},
    {"orb.atr_period": 10},
    {"entry.mode": "or_candle"},
    {"entry.buffer_atr": 0.05},
    {"trade.stop_mode": "or_opposite"},
    {"trade.flatten_time": "15:30"},
    {"confluence.adx.enabled": True},
    {"confluence.rel_volume.lookback_sessions": 5},
    {"session.timezone": "America/Chicago"},
]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_bars("SPY", date(2023, 1, 3), date(2023, 7, 14), 1, 42)


def _frames(result) -> dict[str, pd.DataFrame]:
    return {name: getattr(result, name) for name in ("trades", "equity", "sessions")}


def test_one_preparation_for_configs_that_prepare_alike(bars) -> None:
    configs = [with_overrides(BASE, o) for o in SAME_PREPARATION]
    assert len({prepare_key(c) for c in configs}) == 1
    memo = PreparedMemo()
    shared = [memo.get(c, "SPY", bars, START, END) for c in configs]
    assert all(p is shared[0] for p in shared)
    for _ in range(2):  # the second pass reuses what the first derived on the shared Prepared
        for cfg in configs:
            engine = EventLoopBacktest(cfg, "SPY")
            fresh = engine.run(bars, START, END)
            reused = engine.run_prepared(memo.get(cfg, "SPY", bars, START, END), lean=True)
            assert len(fresh.trades) > 0
            for name, frame in _frames(fresh).items():
                pd.testing.assert_frame_equal(frame, _frames(reused)[name], check_exact=True)


@pytest.mark.parametrize("override", PREPARATION_KEYS, ids=lambda o: next(iter(o)))
def test_a_key_the_preparation_reads_changes_the_key(override) -> None:
    assert prepare_key(with_overrides(BASE, override)) != prepare_key(BASE)


def test_the_memo_keeps_windows_and_bars_apart(bars) -> None:
    memo = PreparedMemo(size=2)
    a = memo.get(BASE, "SPY", bars, START, END)
    b = memo.get(BASE, "SPY", bars, START, date(2023, 5, 31))
    assert a is not b and b.sessions.dates[-1] == pd.Timestamp("2023-05-31")
    assert memo.get(BASE, "QQQ", bars, START, END) is not a
    assert memo.get(BASE, "SPY", bars.copy(), START, END) is not a  # another bars object


def test_measure_gives_the_metrics_of_the_full_frames(bars) -> None:
    """`measure` (sweeps: no frames, no fills or events, a session ends at its first governance block)
    gives exactly the metrics of the frames of a full run, per symbol and aggregated, whichever config
    ran on the shared `Prepared` before it."""
    configs = [with_overrides(BASE, o) for o in [*SAME_PREPARATION, {"entry.mode": "or_candle"}]]
    configs += [with_overrides(BASE, {"orb.base_minutes": 5, "governance.max_daily_loss_r": 1.0})]
    other = bars.iloc[3000:]  # a second symbol with fewer sessions
    memo = PreparedMemo()
    kw = {"periods_per_year": 252, "risk_free_rate": 0.0, "timezone": BASE.session.timezone}
    for cfg in configs:
        full = {
            sym: EventLoopBacktest(cfg, sym).run(b, START, END) for sym, b in (("SPY", bars), ("QQQ", other))
        }
        inputs = {
            sym: EventLoopBacktest(cfg, sym).measure(memo.get(cfg, sym, b, START, END))
            for sym, b in (("SPY", bars), ("QQQ", other))
        }
        assert len(full["SPY"].trades) > 0
        capital = cfg.risk.initial_capital
        for sym, res in full.items():
            assert json.dumps(metrics_of(inputs[sym], initial_capital=capital, **kw)) == json.dumps(
                symbol_metrics(res, cfg)
            )
        combined = aggregate_inputs(inputs, capital)
        ours = metrics_of(combined, initial_capital=2 * capital, symbols=list(inputs), **kw)
        assert json.dumps(ours) == json.dumps(aggregate_metrics(full, cfg))
