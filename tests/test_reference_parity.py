"""The fast engine against the slow reference (tests/reference_engine.py), trade for trade.

Part 1 checks the reference itself on hand-written candle tables (numbers worked out in comments).
Part 2 runs both implementations on real SPY 2011 bars and on the eqker SPY/QQQ 2019 week and
compares trades, fills, governance events and the sessions table.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orb.config import FACTOR_NAMES, Config, load_config, with_overrides
from orb.engine import EventLoopBacktest
from orb.sessions import schedule
from tests.reference_engine import run_reference

REAL = Path("/work/shared/data/real")
SPY_2011 = REAL / "spy_1min_2011-01_2011-03_utc_barstart.parquet"
TZ = "America/New_York"
DAY = "2024-01-02"  # a regular XNYS session (09:30-16:00 ET = 14:30-21:00 UTC)


def local(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}").tz_localize(TZ).tz_convert("UTC")


def candles(rows: list[tuple], day: str = DAY) -> pd.DataFrame:
    """Bar contract from rows ("HH:MM" local bar start, open, high, low, close, volume)."""
    return pd.DataFrame(
        {
            "open": [float(r[1]) for r in rows],
            "high": [float(r[2]) for r in rows],
            "low": [float(r[3]) for r in rows],
            "close": [float(r[4]) for r in rows],
            "volume": pd.array([int(r[5]) for r in rows], dtype="int64"),
        },
        index=pd.DatetimeIndex([local(day, r[0]) for r in rows], name="timestamp"),
    )


def hand_config(**overrides) -> Config:
    """A 2-minute OR, OR-opposite stop, no width filter, no confluence: no daily value is needed,
    so the first session trades (9.3)."""
    base = {
        "orb.base_minutes": 2,
        "trade.stop_mode": "or_opposite",
        "orb.min_width_atr": None,
        "orb.max_width_atr": None,
        "confluence.enabled": False,
        "trade.partials": False,
    }
    return with_overrides(load_config(), base | overrides)


# ---------------------------------------------------------------------------------------------
# Part 1: the reference on hand-written candles
# ---------------------------------------------------------------------------------------------


def test_gap_through_entry_fills_at_open_and_exits_at_eod():
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),  # OR bar 1
        ("09:31", 100.0, 100.5, 99.5, 100.2, 1000),  # OR bar 2: OR = [99, 101]
        ("09:32", 101.5, 102.0, 101.4, 101.8, 1000),  # armed (100.2 <= 101), gaps over 101: fill 101.5 + 0.01
        ("09:33", 101.8, 102.5, 101.6, 102.2, 1000),  # target 101.51 + 2 * 2.51 = 106.53 not reached
        ("09:34", 102.2, 102.4, 101.9, 102.0, 1000),  # last bar present: eod at 102.0 - 0.01
    ]
    out = run_reference(candles(rows), hand_config(), "TEST")
    (t,) = out["trades"]
    assert t["side"] == "long"
    assert t["entry_time"] == local(DAY, "09:32")
    assert t["entry_price"] == pytest.approx(101.51)
    assert t["stop_price"] == 99.0
    assert t["r_per_share"] == pytest.approx(2.51)
    assert t["shares"] == 398  # floor(min(1000 / 2.51, 400000 / 101.51)) = floor(398.4)
    assert t["exit_reason"] == "eod"
    assert t["exit_time"] == local(DAY, "09:34")
    assert t["exit_price"] == pytest.approx(101.99)
    assert t["gross_pnl"] == pytest.approx(0.48 * 398)
    assert t["commission"] == pytest.approx(2 * 398 * 0.0035)
    assert t["r_multiple"] == pytest.approx((0.48 * 398 - 2 * 398 * 0.0035) / (2.51 * 398))
    assert [f["kind"] for f in out["fills"]] == ["entry", "eod"]
    assert out["sessions"][0]["status"] == "traded"


def test_entry_bar_stop_fills_at_stop_and_locks_out():
    # buffer 0.5: upper 101.5, lower 98.5; the or_opposite stop stays at OR_low 99, so the entry bar
    # can touch the stop without touching the short trigger.
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),
        ("09:31", 100.0, 100.5, 99.5, 100.2, 1000),  # OR = [99, 101]
        ("09:32", 100.5, 101.6, 98.9, 99.2, 1000),  # long at 101.5 + 0.01, low 98.9 <= 99: out at 99 - 0.01
        ("09:33", 99.2, 101.7, 99.1, 101.6, 1000),  # armed again and touched: blocked, 1 full-stop loss
        ("09:34", 101.6, 101.8, 101.2, 101.5, 1000),  # not armed (101.6 > 101.5), last bar
    ]
    out = run_reference(candles(rows), hand_config(**{"entry.buffer_fixed": 0.5}), "TEST")
    (t,) = out["trades"]
    assert (t["entry_time"], t["exit_time"]) == (local(DAY, "09:32"), local(DAY, "09:32"))
    assert t["entry_price"] == pytest.approx(101.51)
    assert t["exit_price"] == pytest.approx(98.99)  # 9.5: the stop price, never the bar's open
    assert t["exit_reason"] == "stop"
    assert t["gross_pnl"] == pytest.approx(-2.52 * 398)
    assert [(e["time"], e["side"], e["reason"]) for e in out["events"]] == [
        (local(DAY, "09:33"), "long", "lockout_losses")
    ]


def test_t1_then_breakeven_from_the_next_bar():
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),
        ("09:31", 100.0, 100.5, 99.5, 100.2, 1000),  # OR = [99, 101]
        ("09:32", 100.8, 101.3, 100.7, 101.2, 1000),  # long at 101, stop 99, R 2: 500 shares; T1 103, T2 104
        (
            "09:33",
            101.2,
            103.0,
            100.95,
            102.5,
            1000,
        ),  # T1 touched: 250 at 103; low < 101 but BE not active yet
        ("09:34", 102.5, 102.6, 100.9, 101.5, 1000),  # breakeven stop 101 touched: 250 at 101
        ("09:35", 101.5, 101.6, 101.4, 101.5, 1000),  # last bar, flat
    ]
    cfg = hand_config(
        **{"trade.partials": True, "costs.slippage_per_share": 0.0, "costs.commission_per_share": 0.0}
    )
    out = run_reference(candles(rows), cfg, "TEST")
    (t,) = out["trades"]
    assert t["shares"] == 500
    assert (t["t1_price"], t["t2_price"], t["target_price"]) == (103.0, 104.0, 107.0)
    assert t["t1_filled"] and not t["t2_filled"]
    assert t["exit_reason"] == "breakeven"
    assert t["exit_time"] == local(DAY, "09:34")
    assert t["gross_pnl"] == pytest.approx(250 * 2.0)
    assert t["r_multiple"] == pytest.approx(0.5)
    assert [(f["kind"], f["shares"], f["price"]) for f in out["fills"]] == [
        ("entry", 500, 101.0),
        ("t1", 250, 103.0),
        ("breakeven", 250, 101.0),
    ]


def test_short_gap_through_stop_exits_at_open():
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),
        ("09:31", 100.0, 100.5, 99.5, 99.8, 1000),  # OR = [99, 101]
        ("09:32", 99.5, 99.6, 98.8, 98.9, 1000),  # short at min(99, 99.5) - 0.01 = 98.99, stop 101
        ("09:33", 101.5, 101.8, 101.2, 101.6, 1000),  # opens above the stop: out at 101.5 + 0.01
        ("09:34", 101.6, 101.7, 101.5, 101.6, 1000),
    ]
    out = run_reference(candles(rows), hand_config(), "TEST")
    (t,) = out["trades"]
    assert t["side"] == "short"
    assert t["entry_price"] == pytest.approx(98.99)
    assert t["shares"] == 497  # floor(1000 / 2.01)
    assert t["exit_price"] == pytest.approx(101.51)
    assert t["exit_reason"] == "stop"
    assert t["gross_pnl"] == pytest.approx(-2.52 * 497)


@pytest.mark.parametrize(
    ("same_bar", "reason", "gross"), [("pessimistic", "stop", -1000.0), ("ohlc_path", "target", 2000.0)]
)
def test_stop_and_target_on_one_bar(same_bar, reason, gross):
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),
        ("09:31", 100.0, 100.5, 99.5, 100.2, 1000),  # OR = [99, 101]
        ("09:32", 100.8, 101.3, 100.7, 101.2, 1000),  # long at 101, stop 99, target 105, 500 shares
        ("09:33", 102.0, 105.5, 98.5, 101.0, 1000),  # both touched; close < open: path O->H->L->C
        ("09:34", 101.0, 101.1, 100.9, 101.0, 1000),
    ]
    cfg = hand_config(
        **{"trade.same_bar": same_bar, "costs.slippage_per_share": 0.0, "costs.commission_per_share": 0.0}
    )
    (t,) = run_reference(candles(rows), cfg, "TEST")["trades"]
    assert t["exit_reason"] == reason
    assert t["gross_pnl"] == pytest.approx(gross)


def test_ambiguous_bar_and_rearming():
    rows = [
        ("09:30", 100.0, 101.0, 99.0, 100.0, 1000),
        ("09:31", 100.0, 100.5, 99.5, 100.2, 1000),  # OR = [99, 101]
        ("09:32", 100.2, 101.2, 98.8, 100.0, 1000),  # both sides armed and touched: skipped
        ("09:33", 100.0, 101.5, 99.9, 101.4, 1000),  # long entry at 101.01
        ("09:34", 101.4, 101.6, 101.3, 101.5, 1000),  # eod
    ]
    out = run_reference(candles(rows), hand_config(), "TEST")
    assert [(e["side"], e["reason"]) for e in out["events"]] == [
        ("long", "ambiguous_bar"),
        ("short", "ambiguous_bar"),
    ]
    (t,) = out["trades"]
    assert t["entry_time"] == local(DAY, "09:33")
    assert t["entry_price"] == pytest.approx(101.01)


def test_wilder_atr_warmup_and_strict_width_bounds():
    # atr_period 2. Daily (H, L, C): S0 (101, 99, 100); S1 (103, 100, 102): TR 3;
    # S2 (102.5, 101.5, 102): TR 1; S3 (104, 101, 103): TR 3; S4 (105.875, 101.5, 103): TR 4.375.
    # ATR after S2 = mean(3, 1) = 2 (used by S3); after S3 = (2 + 3) / 2 = 2.5 (S4); after S4 = 3.4375 (S5).
    sessions = {
        "2024-01-02": [("09:30", 100, 101, 99.5, 100.5, 10), ("09:31", 100.5, 100.8, 99, 100, 10)],
        "2024-01-03": [("09:30", 100, 103, 100, 102.5, 10), ("09:31", 102.5, 102.8, 101, 102, 10)],
        "2024-01-04": [("09:30", 102, 102.5, 101.5, 102, 10), ("09:31", 102, 102.2, 101.8, 102, 10)],
        "2024-01-05": [
            ("09:30", 102, 104, 101.5, 103, 10),
            ("09:31", 103, 103.5, 101, 103, 10),
        ],  # width 3 / 2
        "2024-01-08": [
            ("09:30", 103, 105.875, 102, 105, 10),
            ("09:31", 105, 105.5, 101.5, 103, 10),
        ],  # 4.375 / 2.5
        "2024-01-09": [
            ("09:30", 103, 103.5, 103, 103.2, 10),
            ("09:31", 103.2, 103.4, 103.1, 103.3, 10),
        ],  # 0.5
    }
    frame = pd.concat([candles(rows, day) for day, rows in sessions.items()])
    cfg = hand_config(
        **{
            "orb.atr_period": 2,
            "orb.min_width_atr": 0.25,
            "orb.max_width_atr": 1.75,
            "trade.stop_mode": "atr",
        }
    )
    rows = run_reference(frame, cfg, "TEST")["sessions"]
    assert [r["skip_reason"] for r in rows] == ["warmup", "warmup", "warmup", None, None, "width_below_min"]
    assert [r["atr"] for r in rows[3:]] == [2.0, 2.5, 3.4375]
    assert rows[4]["or_width_atr"] == 1.75  # equal to the bound: passes (9.11)
    assert [r["status"] for r in rows[3:5]] == ["no_signal", "no_signal"]
    # the same data with start: earlier sessions are warm-up only and not reported
    later = run_reference(frame, cfg, "TEST", start=date(2024, 1, 8))["sessions"]
    assert [r["session_date"] for r in later] == [date(2024, 1, 8), date(2024, 1, 9)]
    assert later[0]["atr"] == 2.5


# ---------------------------------------------------------------------------------------------
# Part 2: parity with orb.engine on real data
# ---------------------------------------------------------------------------------------------

BAR_COLUMNS = ["open", "high", "low", "close", "volume"]
SMALL = {"orb.atr_period": 5, "confluence.rel_volume.lookback_sessions": 5}
SPY_CONFIGS = {
    "defaults": {},
    "partials_off_or_opposite_no_confluence": SMALL
    | {"trade.partials": False, "trade.stop_mode": "or_opposite", "confluence.enabled": False},
    "close_mode": SMALL | {"entry.mode": "close", "orb.min_width_atr": 0.1},
    "or_candle_5": SMALL | {"entry.mode": "or_candle", "orb.base_minutes": 5, "orb.min_width_atr": 0.05},
    "adaptive_atr_stop": SMALL | {"orb.adaptive": True, "trade.stop_mode": "atr", "orb.min_width_atr": 0.1},
    "ohlc_path_buffers_governance": SMALL
    | {
        "trade.same_bar": "ohlc_path",
        "entry.buffer_fixed": 0.02,
        "entry.buffer_atr": 0.05,
        "governance.max_signals_per_day": 3,
        "governance.lockout_after_losses": 0,
        "governance.max_daily_loss_r": None,
        "orb.min_width_atr": 0.1,
        "confluence.required": 1,
    },
    "validate_on": SMALL | {"orb.validate": True, "orb.min_width_atr": None},
    "partials_zero_t2_single_factor": SMALL
    | {"trade.t2_pct": 0.0, "trade.t1_pct": 0.3, "confluence.required": 1, "orb.min_width_atr": None},
    # 1-3 shares a trade: legs of 0 shares (9.8) and invalid_risk events (shares < 1)
    "tiny_size_zero_legs": SMALL
    | {"risk.risk_per_trade": 0.000004, "orb.min_width_atr": None, "governance.lockout_after_losses": 0},
    # 5.5: the bar stamped trade.flatten_time is the session's last bar
    "flatten_time": SMALL | {"trade.flatten_time": "13:30", "orb.min_width_atr": None},
    "cutoff_daily_loss": SMALL
    | {
        "entry.cutoff": "12:00",
        "governance.lockout_after_losses": 0,
        "governance.max_daily_loss_r": 1.0,
        "governance.max_signals_per_day": 4,
        "orb.min_width_atr": None,
    },
    # 9.18: or_candle uses the OR of orb.base_minutes, so adaptive needs no ATR(20) warm-up (9.3)
    "or_candle_adaptive_uses_base_minutes": SMALL
    | {"entry.mode": "or_candle", "orb.adaptive": True, "orb.base_minutes": 5, "orb.min_width_atr": None},
    # 9.12/9.14: the close-mode opportunity is the signal bar, for invalid_risk too
    "close_mode_invalid_risk": SMALL
    | {"entry.mode": "close", "risk.risk_per_trade": 0.000004, "orb.min_width_atr": None},
    # section 4: only enabled factors give flags; a disabled factor's column stays 0
    "disabled_factor": SMALL
    | {"confluence.vwap.enabled": False, "confluence.required": 1, "orb.min_width_atr": None},
    "adx_weights_be_buffer": SMALL
    | {
        "confluence.adx.enabled": True,
        "confluence.adx.period": 4,
        "confluence.adx.threshold": 30.0,
        "confluence.vwap.weight": 2.0,
        "confluence.rel_volume.min_ratio": 0.8,
        "trade.be_buffer": 0.03,
        "trade.stop_buffer": 0.05,
        "trade.same_bar": "ohlc_path",
        "orb.min_width_atr": None,
    },
}
FLOAT_FIELDS = (
    "entry_price",
    "stop_price",
    "r_per_share",
    "t1_price",
    "t2_price",
    "target_price",
    "exit_price",
    "gross_pnl",
    "commission",
    "net_pnl",
    "initial_risk",
    "r_multiple",
    "mfe_r",
    "mae_r",
)
EXACT_FIELDS = ("side", "entry_time", "exit_time", "exit_reason", "shares", "t1_filled", "t2_filled")


@pytest.fixture(scope="module")
def engine_cls():
    return EventLoopBacktest


@pytest.fixture(scope="module")
def spy_2011() -> pd.DataFrame:
    frame = pd.read_parquet(SPY_2011).set_index("timestamp")
    return frame[BAR_COLUMNS].astype({"volume": "int64"})


def load_eqker(symbol: str) -> pd.DataFrame:
    """eqker CSV (bar end, naive New York time, descending) -> bar contract (README recipe)."""
    raw = pd.read_csv(REAL / f"eqker_{symbol}_1min_2019-02.csv", parse_dates=["datetime"]).sort_values(
        "datetime"
    )
    index = (raw["datetime"].dt.tz_localize(TZ) - pd.Timedelta("1min")).dt.tz_convert("UTC")
    frame = raw[BAR_COLUMNS].set_axis(pd.DatetimeIndex(index, name="timestamp"))
    return frame.astype({c: "float64" for c in BAR_COLUMNS[:4]} | {"volume": "int64"})


def _day(value) -> date:
    return pd.Timestamp(value).date()


def _missing(value) -> bool:
    return (
        value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT
    )


def _same(field: str, ref, eng) -> bool:
    if field in FLOAT_FIELDS or field == "score":
        if _missing(ref) or _missing(eng):
            return _missing(ref) and _missing(eng)
        return math.isclose(float(ref), float(eng), rel_tol=1e-9, abs_tol=1e-9)
    if field.startswith("factor_"):
        return int(ref) == (0 if _missing(eng) else int(eng))  # a disabled factor may be left empty
    if field in ("entry_time", "exit_time"):
        return pd.Timestamp(ref) == pd.Timestamp(eng)
    if field == "shares":
        return int(ref) == int(eng)
    if field in ("t1_filled", "t2_filled"):
        return bool(ref) == bool(eng)
    if field == "session_date":
        return _day(ref) == _day(eng)
    return ref == eng


def _trade_line(t: dict) -> str:
    day = _day(t["session_date"])
    return f"{day} {t['side']:5} in {t['entry_time']} out {t['exit_time']} {t['exit_reason']}"


def _show(ref: dict, eng: dict, fields: list[str]) -> str:
    lines = [f"  {'field':16} {'reference':>34} {'engine':>34}"]
    for f in fields:
        mark = "" if _same(f, ref.get(f), eng.get(f)) else "   <-- differs"
        lines.append(f"  {f:16} {ref.get(f)!s:>34} {eng.get(f)!s:>34}{mark}")
    return "\n".join(lines)


def compare_trades(ref_trades: list[dict], engine_trades: pd.DataFrame, config: Config) -> None:
    fields = ["session_date", *EXACT_FIELDS, *FLOAT_FIELDS]
    if config.confluence.enabled:  # score and flags are only defined when the filter runs
        fields += ["score", *(f"factor_{n}" for n in FACTOR_NAMES)]
    eng_trades = engine_trades.to_dict("records")
    for k, (ref, eng) in enumerate(zip(ref_trades, eng_trades, strict=False)):
        bad = [f for f in fields if not _same(f, ref.get(f), eng.get(f))]
        if bad:
            pytest.fail(
                f"trade #{k} differs in {bad}\n{_show(ref, eng, fields)}\n"
                f"previous trades (both agree): {[_trade_line(t) for t in ref_trades[max(0, k - 2) : k]]}"
            )
    if len(ref_trades) != len(eng_trades):
        k = min(len(ref_trades), len(eng_trades))
        extra_ref = [_trade_line(t) for t in ref_trades[k : k + 3]]
        extra_eng = [_trade_line(t) for t in eng_trades[k : k + 3]]
        pytest.fail(
            f"trade count: reference {len(ref_trades)}, engine {len(eng_trades)}; first {k} agree.\n"
            f"next in reference: {extra_ref}\nnext in engine: {extra_eng}"
        )


def compare_fills(ref_fills: list[dict], engine_fills: pd.DataFrame) -> None:
    def per_trade(rows) -> list[list[tuple]]:
        groups: dict = {}
        for r in rows:
            groups.setdefault(r["trade_id"], []).append(
                (pd.Timestamp(r["time"]), r["kind"], round(float(r["price"]), 9), int(r["shares"]))
            )
        return list(groups.values())

    ref = per_trade(ref_fills)
    eng = per_trade(engine_fills.to_dict("records"))
    for k, (a, b) in enumerate(zip(ref, eng, strict=False)):
        assert a == b, f"fills of trade #{k} differ:\nreference {a}\nengine    {b}"
    assert len(ref) == len(eng), f"fills: reference has {len(ref)} trades, engine {len(eng)}"


def compare_events(ref_events: list[dict], engine_events: pd.DataFrame) -> None:
    ref = sorted((pd.Timestamp(e["time"]), e["side"], e["reason"]) for e in ref_events)
    eng = sorted((pd.Timestamp(e["time"]), e["side"], e["reason"]) for e in engine_events.to_dict("records"))
    only_ref = sorted(set(ref) - set(eng))
    only_eng = sorted(set(eng) - set(ref))
    assert ref == eng, (
        f"events differ: {len(ref)} in reference, {len(eng)} in engine\n"
        f"only in reference: {only_ref[:8]}\nonly in engine: {only_eng[:8]}"
    )


def compare_sessions(ref_sessions: list[dict], engine_sessions: pd.DataFrame) -> None:
    def norm(rows) -> dict:
        out = {}
        for r in rows:
            reason = None if _missing(r["skip_reason"]) or r["skip_reason"] == "" else r["skip_reason"]
            minutes = None if r["status"] == "skipped" else int(r["or_minutes"])
            out[_day(r["session_date"])] = (r["status"], reason, int(r["trades"]), minutes)
        return out

    ref = norm(ref_sessions)
    eng = norm(engine_sessions.to_dict("records"))
    assert sorted(ref) == sorted(eng), f"session dates differ: {sorted(set(ref) ^ set(eng))}"
    bad = {d: (ref[d], eng[d]) for d in ref if ref[d] != eng[d]}
    assert not bad, (
        "sessions (status, skip_reason, trades, or_minutes) differ, (reference, engine):\n"
        + "\n".join(f"  {d}: {v[0]} vs {v[1]}" for d, v in sorted(bad.items())[:10])
    )


def check_parity(
    engine_cls, bars: pd.DataFrame, config: Config, symbol: str, start: date | None = None
) -> dict:
    ref = run_reference(bars, config, symbol, start=start)
    result = engine_cls(config, symbol=symbol).run(bars, start=start)
    compare_sessions(ref["sessions"], result.sessions)
    compare_trades(ref["trades"], result.trades, config)
    compare_fills(ref["fills"], result.fills)
    compare_events(ref["events"], result.events)
    return ref


@pytest.mark.parametrize("overrides", list(SPY_CONFIGS.values()), ids=list(SPY_CONFIGS))
def test_parity_spy_2011(engine_cls, spy_2011, overrides):
    config = with_overrides(load_config(), overrides)
    ref = check_parity(engine_cls, spy_2011, config, "SPY")
    assert len(ref["trades"]) >= 5, "too few trades for a meaningful comparison"


def test_parity_spy_2011_with_start(engine_cls, spy_2011):
    """Sessions before `start` only feed the daily values."""
    config = with_overrides(load_config(), SMALL)
    ref = check_parity(engine_cls, spy_2011, config, "SPY", start=date(2011, 3, 1))
    assert min(r["session_date"] for r in ref["sessions"]) == date(2011, 3, 1)
    assert len(ref["trades"]) >= 5


EQKER_CONFIGS = {
    "atr2": {"orb.atr_period": 2, "confluence.rel_volume.lookback_sessions": 2, "orb.min_width_atr": None},
    "no_daily_values": {
        "trade.stop_mode": "or_opposite",
        "orb.min_width_atr": None,
        "orb.max_width_atr": None,
        "confluence.enabled": False,
        "governance.lockout_after_losses": 0,
        "governance.max_signals_per_day": 5,
        "governance.max_daily_loss_r": None,
        "orb.base_minutes": 5,
    },
    "close_mode_validate": {
        "entry.mode": "close",
        "orb.validate": True,
        "orb.atr_period": 2,
        "orb.min_width_atr": None,
        "confluence.required": 1,
    },
}


@pytest.mark.parametrize("symbol", ["SPY", "QQQ"])
@pytest.mark.parametrize("overrides", list(EQKER_CONFIGS.values()), ids=list(EQKER_CONFIGS))
def test_parity_eqker_2019(engine_cls, symbol, overrides):
    bars = load_eqker(symbol)
    config = with_overrides(load_config(), overrides)
    check_parity(engine_cls, bars, config, symbol)


def test_eqker_loader_keeps_the_missing_minutes():
    qqq = load_eqker("QQQ")
    day = qqq[qqq.index.tz_convert(TZ).date == date(2019, 2, 14)]
    assert len(day) == 388
    rows = run_reference(qqq, with_overrides(load_config(), EQKER_CONFIGS["no_daily_values"]), "QQQ")
    assert len(rows["sessions"]) == 5
    assert rows["trades"], "the no-daily-values config should trade this week"


# ---------------------------------------------------------------------------------------------
# Synthetic weeks: early closes, holidays, missing and invalid bars, 5-minute bars
# ---------------------------------------------------------------------------------------------

SYN_START, SYN_END = "2024-09-03", "2024-12-31"  # holds the 13:00 closes of 2024-11-29 and 2024-12-24


@lru_cache(maxsize=8)
def synthetic_bars(step: int = 1, seed: int = 7, empty_or: bool = True) -> pd.DataFrame:
    """Seeded random-walk bars over every XNYS session from SYN_START to SYN_END, with planted defects.

    Defects (local bar-start times): 11-04 lacks 09:33 (an OR hole); 11-05 has zero volume in the
    first 15 minutes; 11-06 has a 09:35 bar with high < close; 11-07 lacks its first 20 minutes
    (only with `empty_or`);
    11-08 lacks 15:59 (the last bar is 15:58); 12-24 (13:00 close) lacks 12:59; a few random
    minutes are missing elsewhere.
    """
    rng = np.random.default_rng(seed)
    sched = schedule(SYN_START, SYN_END)
    stamps, rows = [], []
    price = 100.0
    for day, (open_utc, close_utc) in zip(
        sched.index, sched[["open", "close"]].itertuples(index=False), strict=True
    ):
        price *= 1 + rng.normal(0, 0.004)  # overnight gap
        minutes = int((close_utc - open_utc).total_seconds() // 60)
        for k in range(0, minutes, step):
            ts = open_utc + pd.Timedelta(minutes=k)
            hhmm = ts.tz_convert(TZ).strftime("%H:%M")
            o = price
            sigma = 0.0006 * math.sqrt(step) * (2.5 if k < 30 else 1.0)  # busier opening half hour
            path = o * np.cumprod(1 + rng.normal(0, sigma, 4))
            c = float(path[-1])
            h = max(o, c, float(path.max())) + abs(rng.normal(0, 0.01))
            lo = min(o, c, float(path.min())) - abs(rng.normal(0, 0.01))
            v = int(rng.integers(1_000, 50_000)) * (3 if k < 30 else 1)
            price = c
            key = (day.strftime("%m-%d"), hhmm)
            if key in {("11-04", "09:33"), ("11-08", "15:59"), ("12-24", "12:59")}:
                continue
            if empty_or and key[0] == "11-07" and hhmm < "09:50":
                continue
            if step == 1 and k > 30 and rng.random() < 0.003:
                continue
            if key[0] == "11-05" and hhmm < "09:45":
                v = 0
            if key == ("11-06", "09:35"):
                h = c - 0.05
            stamps.append(ts)
            rows.append((o, h, lo, c, v))
    arr = np.array(rows, dtype="float64")
    return pd.DataFrame(
        {
            "open": arr[:, 0],
            "high": arr[:, 1],
            "low": arr[:, 2],
            "close": arr[:, 3],
            "volume": arr[:, 4].astype("int64"),
        },
        index=pd.DatetimeIndex(stamps, name="timestamp"),
    )


SYN_CONFIGS = {
    "small": SMALL,
    "validate": SMALL | {"orb.validate": True},
    "close_mode_late_cutoff": SMALL | {"entry.mode": "close", "entry.cutoff": "15:45"},
    "or_candle_validate": SMALL
    | {"entry.mode": "or_candle", "orb.base_minutes": 5, "orb.validate": True, "orb.min_width_atr": 0.05},
    "adaptive": SMALL | {"orb.adaptive": True, "orb.min_width_atr": 0.1, "orb.max_width_atr": 3.0},
}


@pytest.mark.parametrize("overrides", list(SYN_CONFIGS.values()), ids=list(SYN_CONFIGS))
def test_parity_synthetic(engine_cls, overrides):
    config = with_overrides(load_config(), overrides)
    ref = check_parity(engine_cls, synthetic_bars(empty_or=not config.orb.validate_or), config, "SYN")
    assert len(ref["trades"]) >= 5


def test_parity_synthetic_5m(engine_cls):
    config = with_overrides(load_config(), SMALL | {"data.interval": "5m", "orb.validate": True})
    ref = check_parity(engine_cls, synthetic_bars(step=5, empty_or=False), config, "SYN")
    assert len(ref["trades"]) >= 5


def test_parity_validate_empty_or_window(engine_cls):
    """Section 2: with validation on, an OR window without any bar lacks expected bars (`missing_bar`);
    `no_or_bars` is the reason without validation."""
    check_parity(engine_cls, synthetic_bars(), with_overrides(load_config(), SYN_CONFIGS["validate"]), "SYN")


def test_synthetic_defects_give_the_spec_skip_reasons():
    """The reference's own reading of section 2 on the planted defects."""
    bars = synthetic_bars()
    reasons = {
        r["session_date"]: r["skip_reason"]
        for r in run_reference(bars, with_overrides(load_config(), SYN_CONFIGS["validate"]), "SYN")[
            "sessions"
        ]
    }
    assert reasons[date(2024, 11, 4)] == "missing_bar"
    assert reasons[date(2024, 11, 5)] == "zero_volume"
    assert reasons[date(2024, 11, 6)] == "ohlc_violation"
    assert reasons[date(2024, 11, 7)] == "missing_bar"
    plain = {
        r["session_date"]: r["skip_reason"]
        for r in run_reference(bars, with_overrides(load_config(), SMALL), "SYN")["sessions"]
    }
    assert plain[date(2024, 11, 7)] == "no_or_bars"
    assert plain[date(2024, 11, 4)] != "missing_bar"  # without validation the OR uses the bars present


def test_synthetic_early_close_flattens_on_the_last_bar_present():
    """5.5: 2024-12-24 closes at 13:00 and lacks 12:59, so 12:58 is the session's last bar."""
    trades = run_reference(synthetic_bars(), with_overrides(load_config(), SYN_CONFIGS["small"]), "SYN")[
        "trades"
    ]
    eve = [t for t in trades if t["session_date"] == date(2024, 12, 24)]
    assert eve, "the planted early-close case must be exercised"
    assert eve[-1]["exit_reason"] == "eod"
    assert eve[-1]["exit_time"] == local("2024-12-24", "12:58")


# ---------------------------------------------------------------------------------------------
# Seeded random configurations: many rule combinations at once
# ---------------------------------------------------------------------------------------------


def random_overrides(seed: int) -> dict:
    """A valid random mix of the strategy keys (deterministic per seed)."""
    rng = np.random.default_rng(seed)

    def pick(*options):
        return options[int(rng.integers(len(options)))]

    t_r = pick((1.0, 1.5, 3.0), (0.5, 1.0, 1.5), (0.3, 0.6, 0.9))
    t1_pct = pick(0.0, 0.3, 0.5, 1 / 3)
    mode = pick("stop", "stop", "close", "or_candle")
    min_w, max_w = pick((None, None), (0.05, None), (0.25, 1.75), (None, 0.8))
    return {
        "orb.atr_period": pick(2, 3, 5, 14),
        "confluence.rel_volume.lookback_sessions": pick(1, 3, 5, 14),
        "entry.mode": mode,
        "orb.base_minutes": pick(5, 10, 15, 30),
        "orb.adaptive": bool(rng.random() < 0.2),
        "orb.min_width_atr": min_w,
        "orb.max_width_atr": max_w,
        "orb.validate": bool(rng.random() < 0.3),
        "trade.stop_mode": pick("or_opposite", "atr", "atr_capped"),
        "trade.stop_buffer": pick(0.0, 0.0, 0.05),
        "trade.atr_stop_mult": pick(0.3, 0.8, 1.5),
        "trade.partials": bool(rng.random() < 0.6),
        "trade.t1_pct": t1_pct,
        "trade.t2_pct": pick(0.0, 0.25, 0.5) if t1_pct <= 0.5 else 0.0,
        "trade.t1_r": t_r[0],
        "trade.t2_r": t_r[1],
        "trade.runner_r": t_r[2],
        "trade.target_r": pick(0.5, 1.0, 2.0),
        "trade.be_buffer": pick(0.0, 0.0, 0.02, -0.02),
        "trade.same_bar": pick("pessimistic", "ohlc_path"),
        "trade.flatten_time": pick(None, None, "13:30", "15:00"),
        "entry.buffer_fixed": pick(0.0, 0.0, 0.03),
        "entry.buffer_atr": pick(0.0, 0.0, 0.05),
        "entry.cutoff": pick("15:00", "12:30", "16:00", "11:00"),
        "confluence.enabled": bool(rng.random() < 0.7),
        "confluence.required": pick(1, 2, 3),
        "confluence.adx.enabled": bool(rng.random() < 0.3),
        "confluence.adx.period": pick(2, 3, 5),
        "confluence.adx.threshold": pick(18.0, 30.0),
        "confluence.price_action.pivot_len": pick(1, 3, 20),
        "confluence.vwap.enabled": bool(rng.random() < 0.8),
        "confluence.profile.weight": pick(1.0, 0.5, 2.0),
        "governance.max_signals_per_day": pick(1, 2, 5),
        "governance.lockout_after_losses": pick(0, 1, 2),
        "governance.max_daily_loss_r": pick(None, 3.0, 0.5),
        "risk.risk_per_trade": pick(0.01, 0.01, 0.000004, 0.05),
        "risk.max_leverage": pick(4.0, 0.5),
        "costs.slippage_per_share": pick(0.01, 0.0, 0.05),
    }


@pytest.mark.parametrize("seed", range(16))
def test_parity_random_configs(engine_cls, spy_2011, seed):
    config = with_overrides(load_config(), random_overrides(seed))
    bars = spy_2011 if seed % 2 else synthetic_bars(seed=seed)
    ref = check_parity(engine_cls, bars, config, "X")
    assert ref["trades"] or ref["events"], "nothing was compared"
