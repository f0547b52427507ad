"""The portfolio stages' scratch folder: stage 1 keeps a symbol's eligible sessions there, stage 2 reads
them instead of loading the symbol again, and either way stage 2 hands the account the same values."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import date

import numpy as np
import pandas as pd
import pytest

from orb.config import load_config, with_overrides
from orb.portfolio import backtest
from orb.portfolio.stages import Source, stage1, stage2
from orb.portfolio.universe import build_grid, eligible

PRESET = "configs/zarattini_2024_stocks_in_play.yaml"
SOURCE = Source("synthetic", date(2023, 3, 1), date(2023, 4, 28))
SYMBOLS = ["U0001", "U0002", "U0003"]


def config(**extra):
    loose = {"universe.min_price": None, "universe.min_avg_volume": None, "universe.min_atr": None}
    return with_overrides(load_config(PRESET), {**loose, "portfolio.benchmark": None, **extra})


def assert_same(a, b) -> None:
    """Two Prepared hold the same bars and per-session values."""
    pd.testing.assert_frame_equal(a.bars, b.bars)
    for name in ("vwap", "ts_ns", "ses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for x, y in zip(a.arrays, b.arrays, strict=True):
        np.testing.assert_array_equal(x, y)
    for field in dataclasses.fields(a.sessions):
        x, y = getattr(a.sessions, field.name), getattr(b.sessions, field.name)
        if isinstance(x, list):
            assert x == y, field.name
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field.name)
    assert a.first_reported == b.first_reported


def test_stage2_from_the_scratch_file_equals_a_reload(tmp_path):
    cfg = config()
    first = stage1("U0001", SOURCE, cfg, tmp_path)
    assert first.kept == tmp_path / "U0001.pickle" and first.kept.is_file()
    days = list(first.daily["session_date"][eligible(cfg, first.daily)])
    assert len(days) >= 3  # the loose bounds leave several sessions to pick from
    picked = days[::2]
    assert_same(stage2("U0001", picked, SOURCE, cfg, first.kept), stage2("U0001", picked, SOURCE, cfg))


def test_stage1_writes_nothing_where_the_scratch_folder_is_not_visible(tmp_path):
    elsewhere = tmp_path / "on-another-machine"
    result = stage1("U0002", SOURCE, config(), elsewhere)
    assert result.kept is None and not elsewhere.exists()
    assert result.error is None and len(result.daily)


def test_the_scratch_file_holds_every_session_the_universe_can_select(tmp_path):
    cfg = config(**{"portfolio.max_positions": 1})
    results = [stage1(sym, SOURCE, cfg, tmp_path) for sym in SYMBOLS]
    days = sorted({d for r in results for d in r.daily["session_date"]})
    grid = build_grid(cfg, days, SYMBOLS, {r.symbol: r.daily for r in results})
    for r in results:
        kept = pd.read_pickle(r.kept).sessions.dates.date  # noqa: S301 - the test's own file
        mine = grid[grid["symbol"] == r.symbol]
        can_select = mine.loc[mine["status"].isin(["selected", "not_selected"]), "session_date"]
        assert list(kept) == list(can_select), r.symbol
    assert (grid["status"] == "not_selected").any()  # one slot: eligible rows that lose the ranking


@pytest.mark.parametrize("workers", [1, 2])
def test_a_backtest_leaves_no_scratch_folder(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    res = backtest(config(), SYMBOLS, SOURCE, workers=workers)
    assert len(res.trades) and list(tmp_path.iterdir()) == []
