"""configs/zarattini_2023.yaml: the rules of Zarattini & Aziz (2023, SSRN 4416622) on real SPY bars.

The paper's baseline, recomputed here from the raw Parquet file with pandas, session by session: the
direction of the first 5-minute candle, a market entry at the 09:35 open, the stop at the candle's other
extreme, a 10 R target, else the exit at the close; 1 % risk with a 4x leverage cap on $25,000, and
$0.0005 per share commission on both fills. The engine with the preset must produce the same trades.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from orb.config import EntryMode, StopMode, load_config
from orb.engine import EventLoopBacktest
from tests.golden.cases import REPO, SPY_PARQUET, spy_bars

PRESET = REPO / "configs" / "zarattini_2023.yaml"


def test_preset_loads_with_the_papers_values():
    cfg = load_config(PRESET)
    assert cfg.entry.mode is EntryMode.OR_CANDLE and cfg.orb.base_minutes == 5 and not cfg.orb.adaptive
    assert cfg.trade.stop_mode is StopMode.OR_OPPOSITE and cfg.trade.stop_buffer == 0
    assert cfg.trade.partials is False and cfg.trade.target_r == 10 and cfg.trade.flatten_time is None
    assert (cfg.risk.initial_capital, cfg.risk.risk_per_trade, cfg.risk.max_leverage) == (25_000, 0.01, 4)
    assert (cfg.costs.commission_per_share, cfg.costs.slippage_per_share) == (0.0005, 0)
    assert cfg.confluence.enabled is False
    assert cfg.orb.min_width_atr is None and cfg.orb.max_width_atr is None
    assert cfg.governance.max_signals_per_day == 1


def _paper_trades() -> pd.DataFrame:
    """The paper's rules on the raw file's regular-hours bars, equity chained through the sessions."""
    raw = pd.read_parquet(SPY_PARQUET).set_index("timestamp")
    local = raw.index.tz_convert("America/New_York")
    minute = local.hour * 60 + local.minute
    rth = raw[(minute >= 570) & (minute < 960)]
    rth_local = rth.index.tz_convert("America/New_York")
    equity = 25_000.0
    rows = []
    for day, bars in rth.groupby(rth_local.date):
        candle, rest = bars.iloc[:5], bars.iloc[5:]  # 09:30-09:34, then 09:35 onwards (390 bars a day)
        body = candle["close"].iloc[-1] - candle["open"].iloc[0]
        if body == 0:
            continue  # a doji: no trade
        side = 1 if body > 0 else -1
        entry = rest["open"].iloc[0]
        stop = candle["low"].min() if side == 1 else candle["high"].max()
        risk = (entry - stop) * side
        if risk <= 0:
            continue  # the 09:35 open is already beyond the stop
        shares = math.floor(min(equity * 0.01 / risk, 4 * equity / entry))
        target = entry + side * 10 * risk
        exit_i, exit_price, reason = None, None, None
        for i in range(len(rest)):
            o, h, lo, c = rest.iloc[i][["open", "high", "low", "close"]]
            adverse, favourable = (lo, h) if side == 1 else (h, lo)
            if i > 0 and (o - stop) * side <= 0:
                exit_i, exit_price, reason = i, o, "stop"  # opened through the stop
            elif (adverse - stop) * side <= 0:
                exit_i, exit_price, reason = i, stop, "stop"  # stop first when both are touched
            elif i > 0 and (favourable - target) * side >= 0:
                exit_i, exit_price, reason = i, target, "target"  # no target on the entry bar
            elif i == len(rest) - 1:
                exit_i, exit_price, reason = i, c, "eod"
            if reason:
                break
        net = (exit_price - entry) * side * shares - 2 * 0.0005 * shares
        equity += net
        rows.append(
            {
                "session_date": day,
                "side": "long" if side == 1 else "short",
                "entry_time": rest.index[0],
                "entry_price": entry,
                "stop_price": stop,
                "shares": shares,
                "exit_time": rest.index[exit_i],
                "exit_price": exit_price,
                "exit_reason": reason,
                "net_pnl": net,
                "r_multiple": net / (risk * shares),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def engine_trades() -> pd.DataFrame:
    return EventLoopBacktest(load_config(PRESET), "SPY").run(spy_bars()).trades


def test_preset_trades_follow_the_papers_rules(engine_trades):
    expected = _paper_trades()
    assert len(expected) >= 40  # almost every one of the 43 sessions trades
    assert len(engine_trades) == len(expected)
    got = engine_trades[expected.columns].reset_index(drop=True)
    exact = ["session_date", "side", "entry_time", "shares", "exit_time", "exit_reason"]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_dtype=False, check_index_type=False)
    for col in ("entry_price", "stop_price", "exit_price", "net_pnl", "r_multiple"):
        assert got[col].to_numpy() == pytest.approx(expected[col].to_numpy(), rel=1e-12, abs=1e-9), col
    local_entry = engine_trades["entry_time"].dt.tz_convert("America/New_York").dt.strftime("%H:%M")
    assert set(local_entry) == {"09:35"}
    assert set(expected["exit_reason"]) == {"stop", "target", "eod"}  # every exit rule is exercised
    commission = engine_trades["commission"].to_numpy()
    assert commission == pytest.approx(2 * 0.0005 * engine_trades["shares"].to_numpy(), rel=1e-12)
