"""orb.charts on small hand-built frames: traces present, values where the run files put them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from orb import charts

UTC = "UTC"


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def _session_bars(day: str = "2024-01-03", utc_open: str = "14:30") -> pd.DataFrame:
    """390 one-minute bars of one session (bar contract); OR 100-101, breakout up at 09:50 local."""
    index = pd.date_range(_ts(f"{day} {utc_open}"), periods=390, freq="1min", name="timestamp")
    close = np.full(390, 100.5)
    close[20:] = np.linspace(101.2, 103.0, 370)  # from 09:50 local the price trends up
    frame = pd.DataFrame(
        {"open": close - 0.05, "high": close + 0.3, "low": close - 0.3, "close": close, "volume": 1000},
        index=index,
    )
    frame.loc[frame.index[:15], ["high", "low"]] = [101.0, 100.0]  # OR bars: high 101, low 100
    return frame.astype({"volume": "int64"})


def _local(hhmm: str, day: str = "2024-01-03") -> pd.Timestamp:
    """A naive New York wall-clock time, as the charts show it."""
    return pd.Timestamp(f"{day} {hhmm}")


def _trade(**overrides) -> dict:
    """A long trade of 2024-01-03: entry 09:50 local at 101.01, stop 100.00 (R/share 1.01)."""
    row = {
        "trade_id": 1,
        "symbol": "SPY",
        "session_date": pd.Timestamp("2024-01-03"),
        "side": "long",
        "entry_time": _ts("2024-01-03 14:50"),
        "entry_price": 101.01,
        "stop_price": 100.0,
        "r_per_share": 1.01,
        "shares": 100,
        "t1_price": 102.02,
        "t2_price": 102.525,
        "target_price": 104.04,
        "exit_time": _ts("2024-01-03 15:30"),
        "exit_price": 101.0,
        "exit_reason": "breakeven",
        "t1_filled": True,
        "t2_filled": False,
        "r_multiple": 0.49,
        "or_high": 101.0,
        "or_low": 100.0,
        "or_minutes": 15,
        "score": 3.0,
        "breakeven_time": _ts("2024-01-03 15:06"),  # the bar after the T1 fill
        "factor_rel_volume": 1,
        "factor_vwap": 1,
        "factor_price_action": 1,
        "factor_profile": 0,
    }
    row.update(overrides)
    return row


def _fills() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_id": [1, 1, 1],
            "symbol": ["SPY"] * 3,
            "time": [_ts("2024-01-03 14:50"), _ts("2024-01-03 15:05"), _ts("2024-01-03 15:30")],
            "kind": ["entry", "t1", "breakeven"],
            "price": [101.01, 102.02, 101.0],
            "shares": [100, 50, 50],
            "commission": [0.35, 0.175, 0.175],
        }
    )


def _names(fig) -> list[str]:
    return [t.name for t in fig.data]


def _trace(fig, name: str):
    matches = [t for t in fig.data if t.name == name]
    assert matches, f"no trace named {name!r} in {_names(fig)}"
    return matches[0]


# A small trade book with known aggregates: r values chosen so sums are exact in binary.
BOOK = pd.DataFrame(
    [
        _trade(trade_id=1, r_multiple=2.0, exit_reason="target", side="long", score=3.0, factor_profile=1),
        _trade(trade_id=2, r_multiple=-1.0, exit_reason="stop", side="short", score=2.0, factor_vwap=0,
               session_date=pd.Timestamp("2024-01-05"), entry_time=_ts("2024-01-05 16:10")),
        _trade(trade_id=3, r_multiple=0.5, exit_reason="eod", side="long", score=2.0, factor_price_action=0,
               session_date=pd.Timestamp("2024-02-06"), entry_time=_ts("2024-02-06 15:10")),
        _trade(trade_id=4, r_multiple=-1.0, exit_reason="stop", side="long", score=2.0, factor_rel_volume=0,
               session_date=pd.Timestamp("2024-07-09"), entry_time=_ts("2024-07-09 13:50")),
    ]
)  # fmt: skip


# ------------------------------------------------------------------------------------------- equity


def _equity(values, times) -> pd.DataFrame:
    equity = pd.Series(values, dtype=float)
    peak = equity.cummax()
    return pd.DataFrame(
        {
            "timestamp": [_ts(t) for t in times],
            "equity": equity,
            "cum_r": (equity - 100_000) / 1000,
            "drawdown_pct": (equity / peak - 1) * 100,
            "drawdown_r": (equity - peak) / 1000,
        }
    )


def test_equity_figure_has_a_curve_and_a_drawdown_per_label_in_local_time():
    spy = _equity([100_000, 101_000, 100_500], ["2024-01-03 14:50", "2024-01-03 21:00", "2024-01-04 15:00"])
    combined = _equity(
        [200_000, 201_500, 200_700], ["2024-01-03 14:50", "2024-01-03 21:00", "2024-01-04 15:00"]
    )
    fig = charts.equity_figure({"Combined": combined, "SPY": spy}, unit="usd")
    assert _names(fig) == ["Combined", "Combined drawdown", "SPY", "SPY drawdown"]
    curve = _trace(fig, "SPY")
    assert list(curve.y) == [100_000, 101_000, 100_500]
    # 14:50 UTC in January is 09:50 New York (EST, UTC-5); 21:00 UTC is 16:00.
    assert pd.Timestamp(curve.x[0]) == pd.Timestamp("2024-01-03 09:50")
    assert pd.Timestamp(curve.x[1]) == pd.Timestamp("2024-01-03 16:00")
    dd = _trace(fig, "SPY drawdown")
    assert dd.y[2] == pytest.approx(-(1 - 100_500 / 101_000) * 100)
    assert all(v <= 0 for v in dd.y)
    assert _trace(fig, "Combined").line.color == charts.COMBINED


def test_equity_figure_in_r_uses_cum_r_and_drawdown_r_drawn_below_zero_whatever_the_sign():
    spy = _equity([100_000, 102_000, 101_000], ["2024-07-01 14:00", "2024-07-01 20:00", "2024-07-02 14:00"])
    spy = spy.assign(drawdown_r=spy["drawdown_r"].abs())  # a writer storing drawdown as a magnitude
    fig = charts.equity_figure({"SPY": spy}, unit="r")
    assert list(_trace(fig, "SPY").y) == [0.0, 2.0, 1.0]
    assert list(_trace(fig, "SPY drawdown").y) == [0.0, 0.0, -1.0]
    # July is EDT (UTC-4): 14:00 UTC -> 10:00 local.
    assert pd.Timestamp(_trace(fig, "SPY").x[0]) == pd.Timestamp("2024-07-01 10:00")


def test_equity_figure_rejects_an_unknown_unit_and_says_so_when_empty():
    with pytest.raises(ValueError, match="unit"):
        charts.equity_figure({}, unit="eur")
    fig = charts.equity_figure({"SPY": _equity([], [])})
    assert not fig.data
    assert "No equity" in fig.layout.annotations[0].text


# -------------------------------------------------------------------------------------- trade stats


def test_r_distribution_splits_winners_and_losers_and_marks_the_average():
    fig = charts.r_distribution_figure(BOOK)
    assert sorted(_trace(fig, "Winners").x) == [0.5, 2.0]
    assert sorted(_trace(fig, "Losers").x) == [-1.0, -1.0]
    mean = (2.0 - 1.0 + 0.5 - 1.0) / 4
    assert fig.layout.shapes[0].x0 == pytest.approx(mean)
    assert "+0.12R" in fig.layout.annotations[0].text


def test_exit_reason_breakdown_counts_and_totals_per_reason():
    fig = charts.exit_reason_figure(BOOK)
    counts, totals = fig.data
    assert list(counts.y) == ["target", "eod", "stop"]  # fixed order, absent reasons left out
    assert list(counts.x) == [1, 1, 2]
    assert list(totals.x) == [2.0, 0.5, -2.0]
    assert counts.marker.color[2] == charts.NEG


def test_exit_reason_counts_come_from_the_metrics_when_given():
    """metrics.json holds the counts per reason: the figure shows them, the R totals come from the trades."""
    fig = charts.exit_reason_figure(BOOK, {"exit_reasons": {"target": 5, "eod": 1, "stop": 2}})
    counts, totals = fig.data
    assert list(counts.y) == ["target", "eod", "stop"]
    assert list(counts.x) == [5, 1, 2]
    assert list(totals.x) == [2.0, 0.5, -2.0]


def test_time_of_day_groups_by_weekday_and_local_entry_hour_across_dst():
    fig = charts.time_of_day_figure(BOOK)
    by_day, by_hour = fig.data
    # 2024-01-03 Wed, 2024-01-05 Fri, 2024-02-06 Tue, 2024-07-09 Tue.
    assert list(by_day.x) == ["Tue", "Wed", "Fri"]
    assert list(by_day.y) == [0.5 - 1.0, 2.0, -1.0]
    # Entries 14:50Z (Jan, EST) and 13:50Z (Jul, EDT) are both 09:50 local; 16:10Z and 15:10Z are 11:10/10:10.
    assert list(by_hour.x) == ["09:00", "10:00", "11:00"]
    assert list(by_hour.y) == [2.0 - 1.0, 0.5, -1.0]
    assert list(by_hour.text) == ["2", "1", "1"]


def test_monthly_heatmap_has_twelve_months_and_blank_months_without_trades():
    fig = charts.monthly_heatmap_figure(BOOK)
    heat = fig.data[0]
    assert list(heat.x) == list(charts.MONTHS)
    assert list(heat.y) == ["2024"]
    z = heat.z[0]
    assert z[0] == pytest.approx(1.0) and z[1] == pytest.approx(0.5) and z[6] == pytest.approx(-1.0)
    assert math.isnan(z[2])
    assert heat.zmid == 0


def test_long_short_compares_the_two_sides():
    fig = charts.long_short_figure(BOOK)
    trades, win_rate, total = fig.data
    assert list(trades.x) == ["Long", "Short"]
    assert list(trades.y) == [3, 1]
    assert list(win_rate.y) == pytest.approx([2 / 3, 0.0])
    assert list(total.y) == pytest.approx([1.5, -1.0])


def test_long_short_trades_and_win_rates_come_from_the_metrics_when_given():
    metrics = {"long_trades": 30, "short_trades": 10, "long_win_rate": 0.5, "short_win_rate": None}
    trades, win_rate, total = charts.long_short_figure(BOOK, metrics).data
    assert list(trades.y) == [30, 10]
    assert list(win_rate.y)[0] == 0.5 and math.isnan(list(win_rate.y)[1])
    assert list(total.y) == pytest.approx([1.5, -1.0])


def test_long_short_with_only_longs_shows_zero_shorts():
    fig = charts.long_short_figure(BOOK[BOOK["side"] == "long"])
    assert list(fig.data[0].y) == [3, 0]


# ------------------------------------------------------------------------------- factor attribution


def test_factor_attribution_splits_each_factor_present_vs_absent():
    table = charts.factor_attribution(BOOK).set_index(["factor", "present"])
    assert list(table.index.get_level_values(0).unique()) == ["rel_volume", "vwap", "price_action", "profile"]
    # vwap absent only on trade 2 (-1R); present on 1, 3, 4 (2.0, 0.5, -1.0).
    assert table.loc[("vwap", False), "trades"] == 1
    assert table.loc[("vwap", False), "avg_r"] == -1.0
    assert table.loc[("vwap", True), "win_rate"] == pytest.approx(2 / 3)
    assert table.loc[("vwap", True), "avg_r"] == pytest.approx(1.5 / 3)
    # profile present only on trade 1.
    assert table.loc[("profile", True), "total_r"] == 2.0


def test_score_attribution_and_figure_traces():
    scores = charts.score_attribution(BOOK)
    assert list(scores["score"]) == [2.0, 3.0]
    assert list(scores["trades"]) == [3, 1]
    assert scores["avg_r"].iloc[0] == pytest.approx((-1.0 + 0.5 - 1.0) / 3)
    fig = charts.factor_attribution_figure(BOOK)
    assert _names(fig) == ["Present", "Present", "Absent", "Absent", "By score", "By score"]
    present_avg = fig.data[0]
    assert list(present_avg.x) == ["rel_volume", "vwap", "price_action", "profile"]


def test_empty_trades_give_a_message_not_an_error():
    empty = BOOK.iloc[0:0]
    for build in (
        charts.r_distribution_figure,
        charts.exit_reason_figure,
        charts.time_of_day_figure,
        charts.monthly_heatmap_figure,
        charts.long_short_figure,
        charts.factor_attribution_figure,
    ):
        fig = build(empty)
        assert not fig.data
        assert fig.layout.annotations[0].text.startswith("No trades")


# ------------------------------------------------------------------------------------ session replay


def test_replay_draws_or_box_triggers_levels_and_markers_at_fill_prices_and_local_times():
    bars = _session_bars()
    trade = pd.DataFrame([_trade()])
    fig = charts.session_replay_figure(
        bars, trade, _fills(), long_trigger=101.0, short_trigger=100.0, symbol="SPY"
    )
    names = _names(fig)
    for name in (
        "Price", "Volume", "Opening range (15 min)", "Long trigger", "Short trigger", "Entry",
        "Initial stop", "Breakeven stop", "T1", "T2", "Target", "Exits",
    ):  # fmt: skip
        assert name in names
    candles = _trace(fig, "Price")
    assert len(candles.x) == 390 and pd.Timestamp(candles.x[0]) == pd.Timestamp("2024-01-03 09:30")

    entry = _trace(fig, "Entry")
    assert pd.Timestamp(entry.x[0]) == pd.Timestamp("2024-01-03 09:50") and entry.y[0] == 101.01
    assert entry.marker.symbol == "triangle-up"
    exits = _trace(fig, "Exits")
    assert [pd.Timestamp(x) for x in exits.x] == [
        pd.Timestamp("2024-01-03 10:05"),
        pd.Timestamp("2024-01-03 10:30"),
    ]
    assert list(exits.y) == [102.02, 101.0]

    # OR box spans the first 15 bars edge to edge, between OR low and high.
    box = _trace(fig, "Opening range (15 min)")
    assert pd.Timestamp(box.x[0]) == pd.Timestamp("2024-01-03 09:29:30")
    assert pd.Timestamp(box.x[1]) == pd.Timestamp("2024-01-03 09:44:30")
    assert min(box.y) == 100.0 and max(box.y) == 101.0
    assert set(_trace(fig, "Long trigger").y) == {101.0}
    assert set(_trace(fig, "Short trigger").y) == {100.0}

    # Initial stop until the bar after T1 (10:05 -> 10:06), then breakeven at the entry fill until the exit.
    stop = _trace(fig, "Initial stop")
    assert set(stop.y) == {100.0}
    assert pd.Timestamp(stop.x[1]) == pd.Timestamp("2024-01-03 10:06")
    be = _trace(fig, "Breakeven stop")
    assert set(be.y) == {101.01}
    assert [pd.Timestamp(x) for x in be.x] == [
        pd.Timestamp("2024-01-03 10:06"),
        pd.Timestamp("2024-01-03 10:30"),
    ]
    assert set(_trace(fig, "T1").y) == {102.02} and set(_trace(fig, "Target").y) == {104.04}

    # Exits annotated with the leg's R ((exit - entry) / R per share) and reason; the last with net trade R.
    texts = [a.text for a in fig.layout.annotations]
    assert "t1 +1.00R" in texts
    assert any(t.startswith("breakeven -0.01R") and "trade +0.49R net" in t for t in texts)


def test_replay_of_a_short_with_buffered_triggers_and_a_stop_exit():
    bars = _session_bars()
    short = _trade(
        side="short", entry_price=99.99, stop_price=101.0, r_per_share=1.01, t1_price=98.98, t2_price=98.475,
        target_price=96.96, exit_time=_ts("2024-01-03 15:00"), exit_reason="stop", r_multiple=-1.02,
        breakeven_time=None,
    )  # fmt: skip
    fills = pd.DataFrame(
        {
            "trade_id": [1, 1],
            "symbol": ["SPY", "SPY"],
            "time": [_ts("2024-01-03 14:50"), _ts("2024-01-03 15:00")],
            "kind": ["entry", "stop"],
            "price": [99.99, 101.01],
            "shares": [100, 100],
            "commission": [0.35, 0.35],
        }
    )
    fig = charts.session_replay_figure(
        bars, pd.DataFrame([short]), fills, long_trigger=101.05, short_trigger=99.95
    )
    assert _trace(fig, "Entry").marker.symbol == "triangle-down"
    assert set(_trace(fig, "Long trigger").y) == {101.05}
    assert set(_trace(fig, "Short trigger").y) == {99.95}
    assert "Breakeven stop" not in _names(fig)
    assert list(_trace(fig, "Exits").y) == [101.01]
    assert any("stop -1.01R" in a.text and "trade -1.02R net" in a.text for a in fig.layout.annotations)


def test_replay_moves_the_stop_to_breakeven_when_t1_is_reached_without_a_fill():
    """A T1 leg of 0 shares does not fill, but reaching its price still arms breakeven (strategy.md 9.8)."""
    bars = _session_bars()
    first_touch = bars.index[bars["high"] >= 102.02][0]
    assert _ts("2024-01-03 14:50") < first_touch < _ts("2024-01-03 18:00")
    trade = _trade(
        t1_filled=False,
        shares=1,
        exit_time=_ts("2024-01-03 18:00"),
        breakeven_time=first_touch + pd.Timedelta(minutes=1),  # as the engine writes it
    )
    fills = _fills()
    fills = fills[fills["kind"] != "t1"].assign(time=[_ts("2024-01-03 14:50"), _ts("2024-01-03 18:00")])
    fig = charts.session_replay_figure(bars, pd.DataFrame([trade]), fills, be_buffer=0.02)
    be = _trace(fig, "Breakeven stop")
    expected = charts.to_local(pd.Series([first_touch])).iloc[0] + pd.Timedelta(minutes=1)
    assert pd.Timestamp(be.x[0]) == expected
    assert list(be.y) == pytest.approx([101.03, 101.03])


def test_replay_without_trades_still_shows_the_session_and_or():
    fig = charts.session_replay_figure(
        _session_bars().reset_index(), pd.DataFrame([_trade()]).iloc[0:0], _fills().iloc[0:0],
        or_high=101.0, or_low=100.0, or_minutes=15, long_trigger=101.0, short_trigger=100.0,
    )  # fmt: skip
    assert {"Price", "Opening range (15 min)", "Long trigger"} <= set(_names(fig))
    assert "Entry" not in _names(fig)


def test_replay_of_two_trades_keeps_one_legend_entry_per_kind():
    bars = _session_bars()
    second = _trade(
        trade_id=2, entry_time=_ts("2024-01-03 17:00"), entry_price=102.3, stop_price=101.3,
        exit_time=_ts("2024-01-03 17:30"), exit_reason="stop", t1_price=103.3, breakeven_time=None,
    )  # fmt: skip
    fills = pd.concat(
        [
            _fills(),
            pd.DataFrame(
                {
                    "trade_id": [2, 2],
                    "symbol": ["SPY", "SPY"],
                    "time": [_ts("2024-01-03 17:00"), _ts("2024-01-03 17:30")],
                    "kind": ["entry", "stop"],
                    "price": [102.3, 101.29],
                    "shares": [99, 99],
                    "commission": [0.35, 0.35],
                }
            ),
        ]
    )
    fig = charts.session_replay_figure(bars, pd.DataFrame([_trade(), second]), fills)
    entries = [t for t in fig.data if t.name == "Entry"]
    assert len(entries) == 2
    assert [t.showlegend for t in entries] == [True, False]
    assert pd.Timestamp(entries[1].x[0]) == pd.Timestamp("2024-01-03 12:00")


# ------------------------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("total_trades", 12, "12"),
        ("win_rate", 0.4167, "41.7%"),
        ("total_r", 3.456, "+3.46R"),
        ("max_drawdown_r", -2.0, "-2.00R"),
        ("net_pnl", -1234.5, "-$1,234.50"),  # issue 9: the sign before the dollar sign
        ("max_drawdown_pct", 1.5, "1.50%"),
        ("sharpe", None, "—"),
        ("profit_factor", 1.5, "1.50"),
    ],
)
def test_format_metric(key, value, text):
    assert charts.format_metric(key, value) == text


def test_metrics_frame_has_a_row_per_label_and_spreads_exit_reasons():
    frame = charts.metrics_frame(
        {
            "SPY": {"total_trades": 3, "sharpe": None, "exit_reasons": {"stop": 2, "target": 1}},
            "QQQ": {"total_trades": 0, "sharpe": 1.2, "exit_reasons": {}},
        }
    )
    assert list(frame.index) == ["SPY", "QQQ"]
    assert frame.loc["SPY", "exit_stop"] == 2
    assert math.isnan(frame.loc["SPY", "sharpe"]) and frame.loc["QQQ", "sharpe"] == 1.2


# ------------------------------------------------------------------------------------------- research


def _sweep_rows() -> pd.DataFrame:
    """Aggregate sweep rows of a 2 x 2 x 2 grid (x: minutes, y: mode, z: slippage), rows in rank order."""
    grid = [(m, mode, s) for m in (15, 5) for mode in ("b_mode", "a_mode") for s in (0.0, 0.05)]
    rows = []
    for combination, (minutes, mode, slip) in enumerate(grid):
        total_r = minutes / 5 - 10 * slip + (1 if mode == "a_mode" else 0)
        rows.append(
            {"combination": combination, "symbol": "*", "orb.base_minutes": minutes, "trade.stop_mode": mode,
             "costs.slippage_per_share": slip, "total_r": total_r, "win_rate": 0.4 + minutes / 100}
        )  # fmt: skip
    return pd.DataFrame(rows).sort_values("total_r", ascending=False, ignore_index=True)


def test_sweep_grid_combines_the_other_parameters_per_cell():
    rows = _sweep_rows()
    mean, counts = charts.sweep_grid(rows, "orb.base_minutes", "trade.stop_mode", "total_r")
    # numbers sorted, strings in grid (combination) order although the rows come in rank order
    assert list(mean.columns) == [5, 15] and list(mean.index) == ["b_mode", "a_mode"]
    # cell (5, a_mode): slippage 0 and 0.05 -> 1 + 1 and 1 + 1 - 0.5: mean 1.75
    assert mean.loc["a_mode", 5] == pytest.approx(1.75)
    assert mean.loc["b_mode", 15] == pytest.approx((3 + 2.5) / 2)
    assert (counts.to_numpy() == 2).all()
    best, _ = charts.sweep_grid(rows, "orb.base_minutes", "trade.stop_mode", "total_r", agg="max")
    worst, _ = charts.sweep_grid(rows, "orb.base_minutes", "trade.stop_mode", "total_r", agg="min")
    assert best.loc["a_mode", 15] == pytest.approx(4.0) and worst.loc["a_mode", 15] == pytest.approx(3.5)
    one, ones = charts.sweep_grid(rows, "costs.slippage_per_share", None, "total_r")
    assert list(one.index) == [""] and list(ones.loc[""]) == [4, 4]
    with pytest.raises(ValueError, match="different parameters"):
        charts.sweep_grid(rows, "orb.base_minutes", "orb.base_minutes", "total_r")
    with pytest.raises(ValueError, match="agg"):
        charts.sweep_grid(rows, "orb.base_minutes", None, "total_r", agg="median")


def test_sweep_heatmap_figure_cells_labels_and_colour_scale():
    rows = _sweep_rows()
    fig = charts.sweep_heatmap_figure(rows, "orb.base_minutes", "costs.slippage_per_share", "total_r")
    (heat,) = fig.data
    assert heat.type == "heatmap" and list(heat.x) == ["5", "15"] and list(heat.y) == ["0", "0.05"]
    # mean over the two stop modes: minutes / 5 - 10 * slippage + 0.5
    np.testing.assert_allclose(np.asarray(heat.z), [[1.5, 3.5], [1.0, 3.0]])
    assert heat.text[0][0] == "+1.50R" and (np.asarray(heat.customdata) == 2).all()
    assert "mean over the other parameters" in fig.layout.title.text
    assert heat.zmid is None  # one-signed values: a white-green scale
    signed = rows.assign(total_r=rows["total_r"] - 2.5)
    assert charts.sweep_heatmap_figure(signed, "orb.base_minutes", None, "total_r").data[0].zmid == 0
    single = rows[rows["trade.stop_mode"] == "a_mode"]
    fig = charts.sweep_heatmap_figure(single, "orb.base_minutes", "costs.slippage_per_share", "win_rate")
    assert fig.layout.title.text == "Win rate by orb.base_minutes and costs.slippage_per_share"
    assert list(fig.data[0].text[0]) == ["45.0%", "55.0%"]
    empty = charts.sweep_heatmap_figure(rows.iloc[:0], "orb.base_minutes", None, "total_r")
    assert not empty.data and empty.layout.annotations[0].text == "No sweep rows"


def _folds() -> pd.DataFrame:
    return pd.DataFrame(
        {"fold": [1, 2, 3], "train_sessions": [40, 40, 40], "test_sessions": [20, 20, 0],
         "combination": [2, 2, 0], "is_total_r": [8.0, -4.0, 2.0], "oos_total_r": [5.0, 1.0, 0.0]}
    )  # fmt: skip


def test_walkforward_folds_figure_compares_r_per_session():
    fig = charts.walkforward_folds_figure(_folds())
    assert [t.name for t in fig.data] == ["In-sample", "Out-of-sample"]
    assert list(fig.data[0].x) == ["F1", "F2", "F3"]
    np.testing.assert_allclose(fig.data[0].y, [0.2, -0.1, 0.05])
    oos = np.asarray(fig.data[1].y, dtype=float)
    np.testing.assert_allclose(oos[:2], [0.25, 0.05])
    assert np.isnan(oos[2])  # a fold without test sessions has no R per session


def test_walkforward_equity_marks_where_each_test_window_starts():
    times = [
        _ts("2024-03-01 15:00"),
        _ts("2024-03-01 21:00"),
        _ts("2024-04-02 14:45"),
        _ts("2024-05-01 16:00"),
    ]
    equity = pd.DataFrame(
        {"timestamp": times, "equity": [1e5, 100_500.0, 100_200.0, 101_000.0], "cum_r": [0.0, 0.5, 0.2, 1.0],
         "drawdown_pct": [0.0, 0.0, -0.3, 0.0], "drawdown_r": [0.0, 0.0, -0.3, 0.0], "fold": [1, 1, 2, 3]}
    )  # fmt: skip
    fig = charts.walkforward_equity_figure(equity)
    np.testing.assert_allclose(fig.data[0].y, equity["cum_r"])
    lines = [s for s in fig.layout.shapes if s.yref == "paper"]
    assert [pd.Timestamp(s.x0) for s in lines] == [
        _local("10:45", "2024-04-02"),
        _local("12:00", "2024-05-01"),
    ]
    assert [a.text for a in fig.layout.annotations] == ["F2", "F3"]


def test_parameter_stability_frame():
    frame = charts.parameter_stability_frame(
        {"parameter_stability": {"orb.base_minutes": {"chosen": [15, 5, 15], "distinct": 2, "mode": 15,
                                                      "mode_share": 2 / 3, "changes": 2},
                                 "costs.slippage_per_share": {"chosen": [0.0, 0.0, 0.0], "distinct": 1,
                                                              "mode": 0.0, "mode_share": 1.0, "changes": 0}}}
    )  # fmt: skip
    assert list(frame["parameter"]) == ["orb.base_minutes", "costs.slippage_per_share"]
    assert list(frame["chosen per fold"]) == ["15 → 5 → 15", "0 → 0 → 0"]
    assert list(frame["most chosen"]) == ["15", "0"] and list(frame["changes"]) == [2, 0]


def _bands() -> pd.DataFrame:
    steps = np.arange(1, 6)
    return pd.DataFrame(
        {"step": steps, "p5": -1.0 * steps, "p25": -0.5 * steps, "p50": 0.1 * steps, "p75": 0.5 * steps,
         "p95": 1.0 * steps, "observed": [1.0, 0.0, -1.0, 0.0, 1.0]}
    )  # fmt: skip


def test_montecarlo_bands_figure_is_a_fan_of_two_bands_median_and_the_run():
    bands = _bands()
    fig = charts.montecarlo_bands_figure(bands, unit="session")
    assert [t.name for t in fig.data] == [
        "p5", "5th–95th percentile", "p25", "25th–75th percentile", "Median", "This run"
    ]  # fmt: skip
    # each band is its lower edge, then the upper edge filled down to it
    assert [t.fill for t in fig.data[:4]] == [None, "tonexty", None, "tonexty"]
    for t, column in zip(fig.data, ("p5", "p95", "p25", "p75", "p50", "observed"), strict=True):
        np.testing.assert_allclose(t.y, bands[column])
        np.testing.assert_allclose(t.x, bands["step"])
    assert fig.layout.xaxis.title.text == "Session number"
    empty = charts.montecarlo_bands_figure(bands.iloc[:0])
    assert not empty.data and empty.layout.annotations[0].text == "No trades to resample"


def test_montecarlo_drawdown_histogram_counts_paths_and_marks_the_run():
    drawdowns = np.array([-1.0, -1.2, -2.0, -2.1, -2.2, -3.0, -5.0, -5.5])
    fig = charts.montecarlo_drawdown_figure(drawdowns, observed=-2.05, exceed={2.0: 0.75, 50.0: 0.0}, bins=9)
    bars, marker = fig.data
    assert bars.name == "Paths" and sum(bars.y) == len(drawdowns)
    # 9 bins of 0.5R from -5.5 to -1.0, each [lo, hi) but the last [-1.5, -1.0] (numpy's rule)
    edges = np.linspace(-5.5, -1.0, 10)
    np.testing.assert_allclose(np.asarray(bars.x), (edges[:-1] + edges[1:]) / 2)
    assert list(bars.y) == [1, 1, 0, 0, 0, 1, 2, 1, 2]
    assert marker.name == "This run -2.05R" and list(marker.x) == [-2.05, -2.05]
    # the 50R threshold lies beyond every path: only the 2R line is drawn
    assert [s.x0 for s in fig.layout.shapes] == [-2.0]
    assert [a.text for a in fig.layout.annotations] == ["P(DD > 2R)<br>= 75.0%"]
    assert not charts.montecarlo_drawdown_figure(np.array([])).data


def test_montecarlo_table_rows_are_the_three_statistics():
    stats = ("total_r", "max_drawdown_r", "longest_losing_streak")
    summary = {
        "percentiles": {s: {f"p{q}": q + i for q in (5, 25, 50, 75, 95)} for i, s in enumerate(stats)},
        "mean": {"total_r": 1.5, "max_drawdown_r": -2.5, "longest_losing_streak": 3.5},
        "observed": {"total_r": 2.0, "max_drawdown_r": None, "longest_losing_streak": 4},
    }
    table = charts.montecarlo_table(summary)
    assert list(table.index) == ["Total R", "Max drawdown R", "Longest losing streak"]
    assert list(table.columns) == ["p5", "p25", "p50", "p75", "p95", "mean", "this run"]
    assert table.loc["Max drawdown R", "p50"] == 51 and table.loc["Longest losing streak", "p95"] == 97
    assert np.isnan(table.loc["Max drawdown R", "this run"]) and table.loc["Total R", "mean"] == 1.5


# ------------------------------------------------------------------------- replay: selection and styles


def _two_trades() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trade 1 of _trade() and a second long of the same session, 12:00-12:30 local, stopped out."""
    second = _trade(
        trade_id=2, entry_time=_ts("2024-01-03 17:00"), entry_price=102.3, stop_price=101.3,
        exit_time=_ts("2024-01-03 17:30"), exit_reason="stop", t1_price=103.3, breakeven_time=None,
        r_multiple=-1.01,
    )  # fmt: skip
    fills = pd.concat(
        [
            _fills(),
            pd.DataFrame(
                {
                    "trade_id": [2, 2],
                    "symbol": ["SPY", "SPY"],
                    "time": [_ts("2024-01-03 17:00"), _ts("2024-01-03 17:30")],
                    "kind": ["entry", "stop"],
                    "price": [102.3, 101.29],
                    "shares": [99, 99],
                    "commission": [0.35, 0.35],
                }
            ),
        ]
    )
    return pd.DataFrame([_trade(), second]), fills


def test_replay_marks_the_selected_trade_and_dims_the_other_one():
    trades, fills = _two_trades()
    fig = charts.session_replay_figure(_session_bars(), trades, fills, selected=2)
    entries = {values[0]: (i, t) for i, t in enumerate(fig.data) if t.name == "Entry" for values in [t.y]}
    (i_first, first), (i_second, second) = entries[101.01], entries[102.3]
    assert first.opacity == pytest.approx(0.3) and second.opacity == 1.0
    assert i_second > i_first  # the selected trade is drawn last, over the other one
    assert second.showlegend and not first.showlegend  # the legend shows the full-strength styles
    dimmed_exits = [t.opacity for t in fig.data if t.name == "Exits"]
    assert sorted(dimmed_exits) == [pytest.approx(0.3), 1.0]
    (band,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert pd.Timestamp(band.x0) == _local("12:00") and pd.Timestamp(band.x1) == _local("12:30")
    assert any(a.text == "selected: #2 long -1.01R" for a in fig.layout.annotations)

    plain = charts.session_replay_figure(_session_bars(), trades, fills)
    assert {t.opacity for t in plain.data if t.name == "Entry"} == {1.0}
    assert not [s for s in plain.layout.shapes if s.type == "rect"]


def test_replay_t1_t2_and_target_have_their_own_colour_dash_and_label():
    fig = charts.session_replay_figure(_session_bars(), pd.DataFrame([_trade()]), _fills())
    styles = {
        name: (_trace(fig, name).line.color, _trace(fig, name).line.dash) for name in ("T1", "T2", "Target")
    }
    assert len({color for color, _ in styles.values()}) == 3
    assert len({dash for _, dash in styles.values()}) == 3
    texts = [a.text for a in fig.layout.annotations]
    assert {"T1 102.02 (+1.0R)", "T2 102.53 (+1.5R)", "Target 104.04 (+3.0R)"} <= set(texts)
    # The T1 and T2 exit markers take the colour of their level.
    exits = _trace(fig, "Exits")
    assert exits.marker.color[0] == styles["T1"][0]


def test_replay_initial_stop_on_the_opposite_trigger_stays_visible():
    """A long's initial stop at the OR low is the short trigger line: it is drawn after it, wider, solid,
    and its label says it sits on the trigger."""
    fig = charts.session_replay_figure(
        _session_bars(), pd.DataFrame([_trade()]), _fills(), long_trigger=101.0, short_trigger=100.0
    )
    names = _names(fig)
    trigger, stop = _trace(fig, "Short trigger"), _trace(fig, "Initial stop")
    assert set(trigger.y) == set(stop.y) == {100.0}
    assert names.index("Initial stop") > names.index("Short trigger")
    assert stop.line.width > trigger.line.width and stop.line.dash != trigger.line.dash
    assert "stop 100.00 = short trigger" in [a.text for a in fig.layout.annotations]

    apart = charts.session_replay_figure(
        _session_bars(), pd.DataFrame([_trade()]), _fills(), long_trigger=101.05, short_trigger=99.95
    )
    assert "stop 100.00" in [a.text for a in apart.layout.annotations]


# ----------------------------------------------------------------- overview: costs, benchmark, calendar


def test_trading_costs_commission_from_trades_and_slippage_on_market_fills_only():
    trades = pd.DataFrame([_trade(commission=0.7)])
    costs = charts.trading_costs(trades, _fills(), slippage_per_share=0.01)
    assert costs.commission == pytest.approx(0.7)
    # entry 100 shares and the breakeven exit 50 are market-type; the T1 fill (50, a limit) pays none.
    assert costs.slippage == pytest.approx(0.01 * 150)
    assert costs.total == pytest.approx(0.7 + 1.5)
    assert "slippage_per_share" in charts.SLIPPAGE_HELP and "x shares" in charts.SLIPPAGE_HELP


def test_buy_and_hold_from_the_first_open_to_each_session_close():
    bars = pd.concat([_session_bars("2024-01-03"), _session_bars("2024-01-04")])
    closes = charts.session_closes(bars)
    assert list(closes["session_date"].astype(str)) == ["2024-01-03", "2024-01-04"]
    assert closes["open"].iloc[0] == pytest.approx(100.45) and closes["close"].iloc[0] == pytest.approx(103.0)
    held = charts.buy_and_hold(closes, 200_000.0)
    assert held["timestamp"].iloc[0] == _ts("2024-01-03 14:30")
    assert held["timestamp"].iloc[1] == _ts("2024-01-03 20:59")
    assert list(held["equity"]) == pytest.approx(
        [200_000.0, 200_000 * 103.0 / 100.45, 200_000 * 103.0 / 100.45]
    )
    combined = _equity([200_000, 201_000], ["2024-01-03 15:00", "2024-01-04 21:00"])
    fig = charts.benchmark_figure(combined, held, "SPY")
    assert [t.name for t in fig.data] == ["SPY buy and hold (+2.54%)", "Combined (+0.50%)"]
    assert fig.data[0].y[-1] == pytest.approx(200_000 * 103.0 / 100.45)
    assert "No equity" in charts.benchmark_figure(combined.iloc[0:0], held, "SPY").layout.annotations[0].text


def test_daily_pnl_and_its_calendar():
    sessions = pd.DataFrame(
        {
            "symbol": ["SPY", "QQQ", "SPY", "QQQ", "SPY", "QQQ"],
            "session_date": pd.to_datetime(["2024-01-05", "2024-01-05", "2024-01-08", "2024-01-08",
                                            "2024-01-09", "2024-01-09"]),
            "day_r": [1.0, -0.5, 0.0, 0.0, -1.0, -1.0],
        }
    )  # fmt: skip
    combined = _equity(
        [200_100, 200_500, 198_500],
        ["2024-01-05 15:00", "2024-01-05 21:00", "2024-01-09 21:00"],  # no row on Mon 01-08
    )
    daily = charts.daily_pnl(sessions, combined, 200_000.0)
    assert list(daily["day_r"]) == [0.5, 0.0, -2.0]
    assert list(daily["pnl"]) == [500.0, 0.0, -2000.0]
    fig = charts.calendar_figure(daily)
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (5, 2)  # Mon-Fri x the weeks of Jan 1 and Jan 8
    assert z[4, 0] == 500.0 and z[0, 1] == 0.0 and z[1, 1] == -2000.0
    assert np.isnan(z[0, 0])
    assert heat.customdata[1][1] == "Tue 2024-01-09<br>-$2,000.00<br>-2.00R"
    assert "No sessions" in charts.calendar_figure(daily.iloc[0:0]).layout.annotations[0].text


def test_mfe_mae_scatter_by_outcome():
    book = BOOK.assign(mfe_r=[2.5, 0.3, 1.2, 0.1], mae_r=[-0.2, -1.0, -0.6, -1.0], symbol="SPY")
    book.loc[3, "r_multiple"] = 0.0
    fig = charts.mfe_mae_figure(book)
    assert [t.name for t in fig.data] == ["Winners (2)", "Losers (1)", "Flat (1)"]
    winners = fig.data[0]
    assert list(winners.x) == [-0.2, -0.6] and list(winners.y) == [2.5, 1.2]
    assert fig.data[0].marker.color != fig.data[1].marker.color
    assert "No trades" in charts.mfe_mae_figure(book.iloc[0:0]).layout.annotations[0].text


@pytest.mark.parametrize(
    ("value", "text"), [(-5888.45, "-$5,888.45"), (1234.5, "$1,234.50"), (0.0, "$0.00"), (-0.004, "-$0.00")]
)
def test_money_puts_the_sign_before_the_dollar_sign(value, text):
    from orb.metric_registry import money

    assert money(value) == text


def test_plural_counts():
    from orb.metric_registry import plural

    assert [plural(1, "trade"), plural(2, "trade"), plural(0, "run"), plural(1200, "session")] == [
        "1 trade", "2 trades", "0 runs", "1,200 sessions",
    ]  # fmt: skip
