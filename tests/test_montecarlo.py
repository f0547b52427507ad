"""Monte Carlo bootstrap (orb.research.montecarlo): hand-computed paths, degenerate inputs, seed, sessions."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from orb.research.montecarlo import _sorted_percentiles, monte_carlo
from orb.runs.layout import MONTECARLO_BANDS as BANDS_FILE
from orb.runs.layout import MONTECARLO_PATHS as PATHS_FILE
from orb.runs.layout import MONTECARLO_SUMMARY as SUMMARY_FILE
from orb.runs.write import write_monte_carlo

QS = ("p5", "p25", "p50", "p75", "p95")


def _trades(r, sessions=None, times=None) -> pd.DataFrame:
    """A trades table with r_multiple, entry_time (one hour apart unless given) and session_date."""
    n = len(r)
    entry = (
        pd.DatetimeIndex(times)
        if times is not None
        else pd.date_range("2024-01-02 15:00", periods=n, freq="h")
    )
    days = (
        sessions
        if sessions is not None
        else list((pd.Timestamp("2024-01-02") + pd.to_timedelta(range(n), "D")).date)
    )
    return pd.DataFrame(
        {
            "r_multiple": np.asarray(r, dtype=float),
            "entry_time": entry.tz_localize("UTC"),
            "session_date": days,
        }
    )


def _random_trades(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return _trades(np.round(rng.normal(0.1, 1.2, n), 3))


def test_same_seed_same_paths_and_another_seed_differs():
    trades = _random_trades(200)
    a = monte_carlo(trades, 500, seed=11)
    b = monte_carlo(trades, 500, seed=11)
    c = monte_carlo(trades, 500, seed=12)
    for stat in ("total_r", "max_drawdown_r", "longest_losing_streak"):
        np.testing.assert_array_equal(getattr(a, stat), getattr(b, stat))
    pd.testing.assert_frame_equal(a.bands, b.bands)
    assert a.summary() == b.summary()
    assert not np.array_equal(a.total_r, c.total_r)


def test_constant_losses_give_the_exact_degenerate_distribution():
    # Every resampling of ten -1R trades is the same path: total -10, drawdown -10, streak 10.
    result = monte_carlo(_trades([-1.0] * 10), 300, seed=1, dd_thresholds=(5.0, 9.99, 10.0))
    assert (result.total_r == -10.0).all()
    assert (result.max_drawdown_r == -10.0).all()
    assert (result.longest_losing_streak == 10).all()
    assert result.percentiles["total_r"] == dict.fromkeys(QS, -10.0)
    assert result.percentiles["max_drawdown_r"] == dict.fromkeys(QS, -10.0)
    assert result.percentiles["longest_losing_streak"] == dict.fromkeys(QS, 10.0)
    # "Exceeds" is strict: a drawdown of exactly 10 R does not exceed 10 R.
    assert result.prob_drawdown_exceeds == {5.0: 1.0, 9.99: 1.0, 10.0: 0.0}
    expected_cum = -np.arange(1.0, 11.0)
    for q in (*QS, "observed"):
        np.testing.assert_array_equal(result.bands[q].to_numpy(), expected_cum)
    assert result.bands["step"].tolist() == list(range(1, 11))


def test_constant_winners_have_no_drawdown_and_no_streak():
    result = monte_carlo(_trades([0.5] * 8), 100, seed=3)
    assert (result.total_r == 4.0).all()
    assert (result.max_drawdown_r == 0.0).all()
    assert (result.longest_losing_streak == 0).all()
    assert result.prob_drawdown_exceeds == {5.0: 0.0, 10.0: 0.0, 20.0: 0.0}


def test_percentiles_are_ordered_and_last_band_is_total_r():
    result = monte_carlo(_random_trades(300), 2000, seed=5)
    for stat, pct in result.percentiles.items():
        values = [pct[q] for q in QS]
        assert values == sorted(values), stat
    bands = result.bands[list(QS)].to_numpy()
    assert (np.diff(bands, axis=1) >= 0).all()
    # The cum R after the last trade is the path's total: its band is the total_r distribution.
    assert bands[-1].tolist() == [result.percentiles["total_r"][q] for q in QS]
    assert result.percentiles["total_r"]["p5"] < result.percentiles["total_r"]["p95"]


def test_bootstrap_mean_total_is_the_observed_total():
    # Each draw has mean mean(R), so E[total] = n * mean(R) = the observed total; 4 standard errors.
    trades = _random_trades(250)
    result = monte_carlo(trades, 4000, seed=9)
    r = trades["r_multiple"].to_numpy()
    standard_error = r.std() * np.sqrt(len(r)) / np.sqrt(result.n_paths)
    assert abs(result.total_r.mean() - r.sum()) < 4 * standard_error
    assert result.observed["total_r"] == pytest.approx(r.sum())


def test_longest_losing_streak_and_drawdown_by_hand():
    # Losses at 2,3 (run 2), a 0 R trade breaks the run, then losses at 5,6,7 (run 3), a winner, a loss.
    r = [1.0, -1.0, -1.0, 0.0, -1.0, -1.0, -1.0, 2.0, -0.5]
    result = monte_carlo(_trades(r), 10, seed=0)
    assert result.observed["longest_losing_streak"] == 3
    # cum R: 1, 0, -1, -1, -2, -3, -4, -2, -2.5; peak 1, so the deepest point is -4 - 1 = -5.
    assert result.observed["max_drawdown_r"] == -5.0
    assert result.observed["total_r"] == -2.5
    # A first-trade loss is a drawdown from the starting 0 R (the peak starts at 0, as in orb.metrics).
    assert monte_carlo(_trades([-1.5, 3.0]), 5, seed=0).observed["max_drawdown_r"] == -1.5


def test_trades_are_taken_in_entry_order():
    times = ["2024-01-02 16:00", "2024-01-02 15:00", "2024-01-02 17:00"]
    result = monte_carlo(_trades([2.0, -1.0, 0.5], times=times), 10, seed=0)
    assert result.bands["observed"].tolist() == [-1.0, 1.0, 1.5]


def test_by_session_resamples_whole_sessions():
    # Session A: three -1 R losses; session B: one +1 R winner. Whole-session paths are AA, AB, BA or BB:
    # streaks 6, 3, 3, 0 and totals -6, -2, -2, 2. Resampling single trades gives other streaks too.
    days = [date(2024, 1, 2)] * 3 + [date(2024, 1, 3)]
    trades = _trades([-1.0, -1.0, -1.0, 1.0], sessions=days)
    result = monte_carlo(trades, 4000, seed=21, by_session=True)
    assert result.n_units == 2 and result.n_trades == 4
    assert set(np.unique(result.longest_losing_streak)) == {0, 3, 6}
    assert set(np.unique(result.total_r)) == {-6.0, -2.0, 2.0}
    # Uniform draws: AA and BB each a quarter of the paths (binomial sd about 0.007).
    assert abs(np.mean(result.longest_losing_streak == 6) - 0.25) < 0.03
    assert abs(np.mean(result.total_r == 2.0) - 0.25) < 0.03
    assert result.bands["step"].tolist() == [1, 2]  # one band step per session
    assert result.bands["observed"].tolist() == [-3.0, -2.0]
    per_trade = monte_carlo(trades, 4000, seed=21)
    assert {1, 2} <= set(np.unique(per_trade.longest_losing_streak))


def test_by_session_streak_runs_across_sessions_of_different_sizes():
    # Sessions of 2, 1, 2 and 1 trades: the one-trade sessions are padded internally; the padding must
    # neither break nor extend the run of five losses that crosses the first three sessions.
    days = [date(2024, 1, d) for d in (2, 2, 3, 4, 4, 5)]
    result = monte_carlo(_trades([-1.0] * 5 + [1.0], sessions=days), 10, seed=0, by_session=True)
    assert result.observed["longest_losing_streak"] == 5
    assert result.bands["observed"].tolist() == [-2.0, -3.0, -5.0, -4.0]
    assert result.observed["max_drawdown_r"] == -5.0


def test_no_trades_gives_zero_paths():
    result = monte_carlo(_trades([]), 50, seed=1, by_session=True)
    assert (result.total_r == 0).all() and (result.longest_losing_streak == 0).all()
    assert len(result.bands) == 0
    assert result.prob_drawdown_exceeds == {5.0: 0.0, 10.0: 0.0, 20.0: 0.0}


@pytest.mark.parametrize(
    ("trades", "kwargs", "message"),
    [
        (_trades([1.0]), {"n_paths": 0}, "n_paths must be >= 1"),
        (_trades([1.0, np.nan]), {}, "r_multiple has NaN"),
        (pd.DataFrame({"r_multiple": [1.0]}), {"by_session": True}, "lacks column(s) session_date"),
        (_trades([1.0]), {"dd_thresholds": (-1.0,)}, "thresholds must be finite"),
    ],
)
def test_bad_input_is_one_clear_error(trades, kwargs, message):
    args = {"n_paths": 10, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        monte_carlo(trades, args.pop("n_paths"), args.pop("seed"), **args)


def test_sorted_percentiles_equal_numpy():
    rng = np.random.default_rng(2)
    for n in (1, 2, 9, 1001):
        values = rng.normal(size=(n, 30))
        got = _sorted_percentiles(np.sort(values, axis=0), (5, 25, 50, 75, 95))
        np.testing.assert_array_equal(got, np.percentile(values, [5, 25, 50, 75, 95], axis=0))


def test_write_monte_carlo_files(tmp_path):
    result = monte_carlo(_random_trades(40), 300, seed=4, by_session=True, dd_thresholds=(2.5, 5.0))
    names = write_monte_carlo(result, tmp_path / "run")
    assert names == [SUMMARY_FILE, BANDS_FILE, PATHS_FILE]

    def reject(token):
        raise AssertionError(f"non-strict JSON token {token}")

    summary = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text(), parse_constant=reject)
    assert summary["n_paths"] == 300 and summary["seed"] == 4 and summary["resample"] == "sessions"
    assert summary["prob_max_drawdown_exceeds"].keys() == {"2.5", "5"}
    assert summary["percentiles"]["total_r"] == result.percentiles["total_r"]
    bands = pd.read_parquet(tmp_path / "run" / BANDS_FILE)
    assert list(bands.columns) == ["step", *QS, "observed"] and len(bands) == 40
    paths = pd.read_parquet(tmp_path / "run" / PATHS_FILE)
    assert list(paths.columns) == ["path", "total_r", "max_drawdown_r", "longest_losing_streak"]
    assert len(paths) == 300
    np.testing.assert_array_equal(paths["total_r"].to_numpy(), result.total_r)
