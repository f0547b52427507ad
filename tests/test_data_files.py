"""Local CSV/Parquet files: every real file in shared/data/real loads as its README describes, plus errors."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orb.config import load_config
from orb.data import load_symbol
from orb.errors import DataError, NoDataError, RequestError
from tests.data_fixtures import NY, real

PYALGO = ("pyalgotrade_nt-spy-minute-2011-01.csv", "pyalgotrade_nt-spy-minute-2011-03.csv")
PARQUET = "spy_1min_2011-01_2011-03_utc_barstart.parquet"
NINJA = {"data.file_timezone": "UTC", "data.file_bar_label": "end"}


def load(path, symbol="SPY", start=date(2011, 1, 1), end=date(2011, 3, 31), **overrides):
    cfg = load_config(overrides={"data.warmup_sessions": 0, **overrides})
    return load_symbol(symbol, config=cfg, start=start, end=end, source="file", data_path=Path(path))


def per_session(bars: pd.DataFrame) -> pd.Series:
    return bars.groupby(bars.index.tz_convert(NY).date).size()


def first_bar_utc(bars: pd.DataFrame) -> pd.Series:
    return (
        pd.Series(bars.index, index=bars.index)
        .groupby(bars.index.tz_convert(NY).date)
        .min()
        .dt.strftime("%H:%M")
    )


# --- the real files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sessions"), [(PYALGO[0], 20), (PYALGO[1], 23)])
def test_ninjatrader_csv_gives_390_rth_bars_per_session(name, sessions):
    path = real(name)
    loaded = load(path, **NINJA)
    counts = per_session(loaded.bars)
    assert len(counts) == sessions and (counts == 390).all()
    assert loaded.source == f"file:{path}"
    assert date(2011, 1, 17) not in counts.index  # MLK day: no session


def test_ninjatrader_bar_end_labels_shift_to_bar_start_across_dst():
    loaded = load(real(PYALGO[1]), **NINJA)
    firsts = first_bar_utc(loaded.bars)
    before = firsts[[d < date(2011, 3, 13) for d in firsts.index]]
    after = firsts[[d > date(2011, 3, 13) for d in firsts.index]]
    assert set(before) == {"14:30"} and len(before) == 9
    assert set(after) == {"13:30"} and len(after) == 14


def test_ninjatrader_values_land_on_the_bar_start():
    path = real(PYALGO[0])
    line = next(row for row in path.read_text().splitlines() if row.startswith("20110103 143100;"))
    o, h, lo, c, v = (float(x) for x in line.split(";")[1:])
    bar = load(path, **NINJA).bars.loc[pd.Timestamp("2011-01-03 14:30", tz="UTC")]
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (o, h, lo, c, v)


@pytest.mark.parametrize("symbol", ["SPY", "QQQ"])
def test_eqker_csv_descending_naive_eastern_bar_end(symbol):
    path = real(f"eqker_{symbol}_1min_2019-02.csv")
    loaded = load(path, symbol, date(2019, 2, 11), date(2019, 2, 15), **{"data.file_bar_label": "end"})
    counts = per_session(loaded.bars)
    expected = {d: 390 for d in counts.index} | ({date(2019, 2, 14): 388} if symbol == "QQQ" else {})
    assert counts.to_dict() == expected and len(counts) == 5
    assert set(first_bar_utc(loaded.bars)) == {"14:30"}  # 09:30 ET in February
    assert loaded.bars.index.is_monotonic_increasing
    assert any("not in time order" in w for w in loaded.warnings)
    row = pd.read_csv(path).set_index("datetime").loc["2019-02-11 09:31:00"]
    bar = loaded.bars.loc[pd.Timestamp("2019-02-11 14:30", tz="UTC")]
    assert bar[["open", "high", "low", "close"]].tolist() == row[["open", "high", "low", "close"]].tolist()
    assert bar["volume"] == row["volume"]


def test_parquet_gives_the_same_bars_as_the_csvs():
    parquet = load(real(PARQUET))
    csv_parts = [load(real(name), **NINJA).bars for name in PYALGO]
    csvs = pd.concat(csv_parts)
    assert len(parquet.bars) == 43 * 390
    pd.testing.assert_frame_equal(parquet.bars, csvs)
    assert parquet.sha256 == load(real(PARQUET)).sha256  # stable across loads


def test_bar_contract_of_loaded_files():
    bars = load(real(PARQUET)).bars
    assert bars.index.name == "timestamp" and str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert bars.dtypes.tolist() == ["float64"] * 4 + ["int64"]


def test_only_requested_sessions_plus_warm_up_are_kept():
    cfg = load_config(overrides={**NINJA, "data.warmup_sessions": 3})
    loaded = load_symbol(
        "SPY",
        config=cfg,
        start=date(2011, 1, 20),
        end=date(2011, 1, 25),
        source="file",
        data_path=real(PYALGO[0]),
    )
    days = [d.isoformat() for d in per_session(loaded.bars).index]
    assert days == [
        "2011-01-14",
        "2011-01-18",
        "2011-01-19",
        "2011-01-20",
        "2011-01-21",
        "2011-01-24",
        "2011-01-25",
    ]
    assert not any("warm-up" in w for w in loaded.warnings)


def test_missing_warm_up_is_a_warning():
    cfg = load_config(overrides=NINJA)  # 40 warm-up sessions; the file starts on the first day
    loaded = load_symbol(
        "SPY",
        config=cfg,
        start=date(2011, 1, 10),
        end=date(2011, 1, 12),
        source="file",
        data_path=real(PYALGO[0]),
    )
    assert any("holds 5 of the 40 warm-up sessions" in w for w in loaded.warnings)


def test_the_universe_lookback_counts_as_history_in_portfolio_mode():
    # strategy.md 10.3: avg_volume and rel_volume need universe.lookback_sessions prior sessions
    over = {**NINJA, "data.warmup_sessions": 5, "orb.atr_period": 2, "universe.lookback_sessions": 30}
    kwargs = dict(start=date(2011, 1, 10), end=date(2011, 1, 12), source="file", data_path=real(PYALGO[0]))
    single = load_symbol("SPY", config=load_config(overrides=over), **kwargs)
    assert not any("universe.lookback_sessions" in w for w in single.warnings)
    both = load_symbol("SPY", config=load_config(overrides={**over, "portfolio.enabled": True}), **kwargs)
    assert any("universe.lookback_sessions 30" in w and "holds 5 sessions" in w for w in both.warnings)


def test_range_outside_the_file_is_no_data():
    with pytest.raises(NoDataError, match=r"no data for SPY between 2012-01-03 and 2012-01-06 in .*covers"):
        load(real(PYALGO[0]), start=date(2012, 1, 3), end=date(2012, 1, 6), **NINJA)


def test_finer_file_bars_are_aggregated_to_the_interval():
    path = real("eqker_SPY_1min_2019-02.csv")
    minute = load(path, "SPY", date(2019, 2, 11), date(2019, 2, 15), **{"data.file_bar_label": "end"}).bars
    five = load(
        path,
        "SPY",
        date(2019, 2, 11),
        date(2019, 2, 15),
        **{"data.file_bar_label": "end", "data.interval": "5m"},
    )
    assert (per_session(five.bars) == 78).all()
    first5 = minute.iloc[:5]
    bar = five.bars.iloc[0]
    assert five.bars.index[0] == minute.index[0]
    assert bar["open"] == first5["open"].iloc[0] and bar["close"] == first5["close"].iloc[-1]
    assert bar["high"] == first5["high"].max() and bar["low"] == first5["low"].min()
    assert bar["volume"] == first5["volume"].sum()
    assert any("aggregated to 5m" in w for w in five.warnings)


# --- folders and formats -------------------------------------------------------------------------------


def test_folder_with_one_file_per_symbol_matches_names_case_insensitively(tmp_path):
    shutil.copy(real("eqker_SPY_1min_2019-02.csv"), tmp_path / "spy.CSV")
    shutil.copy(real("eqker_QQQ_1min_2019-02.csv"), tmp_path / "QQQ.csv")
    opts = {"data.file_bar_label": "end"}
    spy = load(tmp_path, "spy", date(2019, 2, 11), date(2019, 2, 15), **opts)
    qqq = load(tmp_path, "QQQ", date(2019, 2, 11), date(2019, 2, 15), **opts)
    assert spy.symbol == "SPY" and len(spy.bars) == 1950 and spy.source == f"file:{tmp_path / 'spy.CSV'}"
    assert len(qqq.bars) == 1948
    with pytest.raises(DataError, match=r"has no file for IWM; add IWM\.csv or IWM\.parquet"):
        load(tmp_path, "IWM", date(2019, 2, 11), date(2019, 2, 15), **opts)


def test_folder_with_two_files_for_one_symbol_is_an_error(tmp_path):
    shutil.copy(real("eqker_SPY_1min_2019-02.csv"), tmp_path / "SPY.csv")
    shutil.copy(real(PARQUET), tmp_path / "SPY.parquet")
    with pytest.raises(DataError, match="several files for SPY"):
        load(tmp_path, "SPY")


def _write(tmp_path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_columns_are_matched_case_insensitively_and_extras_ignored(tmp_path):
    path = _write(
        tmp_path,
        "Symbol,Datetime,Open,HIGH,low,Close,Volume,VWAP\n"
        "SPY,2024-03-01 09:30:00,10,11,9,10.5,100,10.2\n"
        "SPY,2024-03-01 09:31:00,10.5,11,10,10.8,200,10.4\n",
    )
    bars = load(path, start=date(2024, 3, 1), end=date(2024, 3, 1)).bars
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.index.tolist() == [
        pd.Timestamp("2024-03-01 14:30", tz="UTC"),
        pd.Timestamp("2024-03-01 14:31", tz="UTC"),
    ]
    assert bars["close"].tolist() == [10.5, 10.8] and bars["volume"].tolist() == [100, 200]


def test_separate_date_and_time_columns(tmp_path):
    path = _write(tmp_path, "Date;Time;Open;High;Low;Close;Volume\n2024-07-01;09:45:00;1;2;0.5;1.5;7\n")
    bars = load(path, start=date(2024, 7, 1), end=date(2024, 7, 1)).bars
    assert bars.index.tolist() == [pd.Timestamp("2024-07-01 13:45", tz="UTC")]  # EDT


def test_timezone_aware_timestamps_are_converted_not_relocalised(tmp_path):
    path = _write(
        tmp_path,
        "timestamp,open,high,low,close,volume\n"
        "2024-03-08 09:30:00-05:00,1,2,0.5,1.5,10\n"
        "2024-03-11 09:30:00-04:00,1,2,0.5,1.5,10\n",
    )
    bars = load(
        path, start=date(2024, 3, 8), end=date(2024, 3, 11), **{"data.file_timezone": "Asia/Tokyo"}
    ).bars
    assert bars.index.tolist() == [
        pd.Timestamp("2024-03-08 14:30", tz="UTC"),
        pd.Timestamp("2024-03-11 13:30", tz="UTC"),
    ]


def test_naive_timestamps_use_file_timezone(tmp_path):
    path = _write(tmp_path, "datetime,open,high,low,close,volume\n2024-03-08 14:30:00,1,2,0.5,1.5,10\n")
    bars = load(path, start=date(2024, 3, 8), end=date(2024, 3, 8), **{"data.file_timezone": "UTC"}).bars
    assert bars.index.tolist() == [pd.Timestamp("2024-03-08 14:30", tz="UTC")]


def test_early_close_keeps_bars_until_13_00_only(tmp_path):
    stamps = pd.date_range("2024-11-29 12:58", "2024-11-29 13:02", freq="1min")
    rows = "".join(f"{t:%Y-%m-%d %H:%M:%S},1,2,0.5,1.5,10\n" for t in stamps)
    bars = load(
        _write(tmp_path, "datetime,open,high,low,close,volume\n" + rows),
        start=date(2024, 11, 29),
        end=date(2024, 11, 29),
    ).bars
    assert bars.index.tz_convert(NY).strftime("%H:%M").tolist() == ["12:58", "12:59"]


# --- problems ---------------------------------------------------------------------------------------


def test_duplicates_and_unsorted_rows_are_fixed_with_warnings(tmp_path):
    path = _write(
        tmp_path,
        "datetime,open,high,low,close,volume\n"
        "2024-03-01 09:31:00,2,3,1,2,20\n"
        "2024-03-01 09:30:00,1,2,0.5,1.5,10\n"
        "2024-03-01 09:31:00,2,3,1,2.5,30\n",
    )
    loaded = load(path, start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert loaded.bars["close"].tolist() == [1.5, 2.5]
    assert "SPY: 1 duplicate timestamps dropped (kept the last)" in loaded.warnings
    assert "SPY: rows were not in time order; sorted them" in loaded.warnings


def test_ohlc_violations_are_kept_and_counted(tmp_path):
    path = _write(
        tmp_path,
        "datetime,open,high,low,close,volume\n"
        "2024-03-01 09:30:00,1,2,0.5,1.5,10\n"
        "2024-03-01 09:31:00,1,1.2,0.5,1.5,10\n"
        "2024-03-01 09:32:00,1,2,1.1,1.5,10\n",
    )
    loaded = load(path, start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert len(loaded.bars) == 3
    [warning] = [w for w in loaded.warnings if "violate" in w]
    assert warning.startswith("SPY: 2 bars violate") and "2024-03-01 14:31 UTC" in warning


def test_nan_prices_are_an_error_with_count_and_first_time(tmp_path):
    path = _write(
        tmp_path,
        "datetime,open,high,low,close,volume\n"
        "2024-03-01 09:30:00,1,2,0.5,1.5,10\n"
        "2024-03-01 09:31:00,1,,0.5,1.5,10\n"
        "2024-03-01 09:32:00,1,2,0.5,abc,10\n",
    )
    with pytest.raises(
        DataError,
        match=r"bars\.csv: 2 bars have missing or non-numeric values \(first at 2024-03-01 14:31 UTC\)",
    ) as err:
        load(path, start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert "\n" not in str(err.value)


def test_missing_columns_are_named(tmp_path):
    path = _write(tmp_path, "datetime,open,close\n2024-03-01 09:30:00,1,1.5\n")
    with pytest.raises(DataError, match=r"bars\.csv lacks the column\(s\) high, low, volume"):
        load(path)


def test_missing_time_column_is_named(tmp_path):
    path = _write(tmp_path, "when,open,high,low,close,volume\n2024-03-01 09:30:00,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match="no time column"):
        load(path)


def test_bad_timestamps_are_an_error(tmp_path):
    path = _write(tmp_path, "datetime,open,high,low,close,volume\nyesterday,1,2,0.5,1.5,10\n")
    with pytest.raises(
        DataError, match=r"1 values of column 'datetime' are not timestamps \(first: 'yesterday'\)"
    ):
        load(path)


def test_bad_ninjatrader_timestamp_is_an_error(tmp_path):
    path = _write(tmp_path, "20110103 143100;1;2;0.5;1.5;10\n20110x03 143200;1;2;0.5;1.5;10\n")
    with pytest.raises(
        DataError, match=r"1 values of column 'timestamp' are not timestamps \(first: '20110x03 143200'\)"
    ):
        load(path, **NINJA)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.csv does not exist"):
        load(tmp_path / "nothing.csv")


def test_unreadable_parquet_is_an_error(tmp_path):
    path = _write(tmp_path, "this is not parquet", "SPY.parquet")
    with pytest.raises(DataError, match=r"SPY\.parquet is not a readable \.parquet file"):
        load(path)


def test_unsupported_suffix_is_an_error(tmp_path):
    path = _write(tmp_path, "{}", "bars.json")
    with pytest.raises(DataError, match="neither .csv nor .parquet"):
        load(path)


def test_file_source_needs_a_path():
    with pytest.raises(RequestError, match="--data"):
        load_symbol("SPY", config=load_config(), start=date(2024, 3, 1), end=date(2024, 3, 1), source="file")


def test_coarser_file_than_interval_is_an_error(tmp_path):
    stamps = pd.date_range("2024-03-01 09:30", periods=6, freq="5min")
    rows = "".join(f"{t:%Y-%m-%d %H:%M:%S},1,2,0.5,1.5,10\n" for t in stamps)
    path = _write(tmp_path, "datetime,open,high,low,close,volume\n" + rows)
    with pytest.raises(DataError, match="5-minute bars.*--interval 5m"):
        load(path, start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert len(load(path, start=date(2024, 3, 1), end=date(2024, 3, 1), **{"data.interval": "5m"}).bars) == 6


def test_multi_symbol_file_is_filtered_to_the_symbol(tmp_path):
    path = _write(
        tmp_path,
        "symbol,datetime,open,high,low,close,volume\n"
        "SPY,2024-03-01 09:30:00,1,2,0.5,1.5,10\n"
        "QQQ,2024-03-01 09:30:00,5,6,4.5,5.5,20\n",
    )
    bars = load(path, "QQQ", date(2024, 3, 1), date(2024, 3, 1)).bars
    assert bars["open"].tolist() == [5.0]
    with pytest.raises(DataError, match="none is IWM"):
        load(path, "IWM", date(2024, 3, 1), date(2024, 3, 1))


def test_sha256_changes_with_the_data(tmp_path):
    text = "datetime,open,high,low,close,volume\n2024-03-01 09:30:00,1,2,0.5,1.5,10\n"
    a = load(_write(tmp_path, text, "a.csv"), start=date(2024, 3, 1), end=date(2024, 3, 1)).sha256
    b = load(
        _write(tmp_path, text.replace(",10\n", ",11\n"), "b.csv"),
        start=date(2024, 3, 1),
        end=date(2024, 3, 1),
    ).sha256
    assert len(a) == 64 and a != b
    assert np.all([c in "0123456789abcdef" for c in a])
