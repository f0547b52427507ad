"""Files that cannot be misread: `auto` timezone and bar label, contradictions, one file for several
symbols, --data SYM=PATH, the warm-up message (issue 11's misreadings each fail loudly now)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

from orb.config import load_config
from orb.data import load_symbol
from orb.errors import DataError
from tests.cli_helpers import one_error_line, run_cli, visible_runs

DATA = Path(__file__).resolve().parent / "data"
NINJA = {"data.file_timezone": "UTC", "data.file_bar_label": "end"}
EQKER = {"data.file_timezone": "America/New_York", "data.file_bar_label": "end"}
# every real file of tests/data with the settings its README gives
REAL_FILES = {
    "pyalgotrade_nt-spy-minute-2011-01.csv": ("SPY", NINJA),
    "pyalgotrade_nt-spy-minute-2011-03.csv": ("SPY", NINJA),
    "spy_1min_2011-01_2011-03_utc_barstart.parquet": ("SPY", {"data.file_bar_label": "start"}),
    "eqker_SPY_1min_2019-02.csv": ("SPY", EQKER),
    "eqker_QQQ_1min_2019-02.csv": ("QQQ", EQKER),
}


@pytest.fixture
def infos():
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="INFO")
    yield messages
    logger.remove(sink)


def load(name_or_path, symbol="SPY", **overrides):
    cfg = load_config(overrides={"data.warmup_sessions": 0, **overrides})
    path = name_or_path if isinstance(name_or_path, Path) else DATA / name_or_path
    return load_symbol(symbol, config=cfg, start=None, end=None, source="file", data_path=path)


@pytest.mark.parametrize("name", list(REAL_FILES))
def test_every_real_file_loads_with_auto_as_with_its_explicit_settings(name, infos):
    symbol, explicit = REAL_FILES[name]
    auto = load(name, symbol)
    pd.testing.assert_frame_equal(auto.bars, load(name, symbol, **explicit).bars)
    assert auto.bars.groupby(auto.bars.index.tz_convert("America/New_York").date).size().max() == 390
    [decision] = [m for m in infos if m.startswith(f"{name}: read as")][:1]
    assert "auto:" in decision and "390 regular-hours bars each" in decision


def test_the_decision_line_gives_the_evidence(infos):
    load("pyalgotrade_nt-spy-minute-2011-01.csv")
    assert (
        "pyalgotrade_nt-spy-minute-2011-01.csv: read as UTC, bar end (auto: 20 sessions with 390 "
        "regular-hours bars each, stamped 14:31-21:00 in the file, opening-minute volume"
    ) in next(m for m in infos if "read as" in m)


def test_ninjatrader_read_as_new_york_bar_start_stops_naming_the_right_settings():
    """Issue: parsed as New York time without a word, 4,989 of 7,800 bars used, 0 trades."""
    with pytest.raises(DataError) as err:
        load("pyalgotrade_nt-spy-minute-2011-01.csv", **{"data.file_timezone": "America/New_York"})
    message = str(err.value)
    assert "pyalgotrade_nt-spy-minute-2011-01.csv" in message and "\n" not in message
    assert "means UTC, bar end" in message and "--tz UTC --bar-label end" in message
    assert "data.file_timezone=America/New_York is set" in message


def test_eqker_read_as_bar_start_stops():
    """Issue: read as bar-start, QQQ's result changed from +0.76 R to +0.96 R, silently."""
    with pytest.raises(DataError, match=r"means America/New_York, bar end, but data.file_bar_label=start"):
        load("eqker_QQQ_1min_2019-02.csv", "QQQ", **{"data.file_bar_label": "start"})


def test_ambiguous_evidence_under_auto_stops(tmp_path):
    """Extended-hours bars with flat volume: every reading fits and no opening minute stands out."""
    stamps = pd.date_range("2024-03-04 04:00", "2024-03-08 19:59", freq="1min")
    stamps = stamps[(stamps.hour >= 4) & (stamps.hour < 20)]
    frame = pd.DataFrame(
        {"datetime": stamps, "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "volume": 100}
    )
    path = tmp_path / "flat.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataError, match=r"flat\.csv: cannot tell how its stamps are meant .*--tz and --bar-label"
    ):
        load(path)
    assert not load(path, **{"data.file_timezone": "UTC", "data.file_bar_label": "start"}).bars.empty


def test_tz_and_bar_label_flags_set_the_file_settings(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(DATA / "pyalgotrade_nt-spy-minute-2011-01.csv", folder / "SPY.csv")
    code, out = run_cli(
        tmp_path,
        "--symbols",
        "SPY",
        "--data",
        str(folder),
        "--tz",
        "America/New_York",
        "--bar-label",
        "start",
    )
    assert code == 1 and visible_runs(out) == []
    assert "--tz UTC --bar-label end" in one_error_line(capsys.readouterr().out)
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "--data", str(folder), "--tz", "UTC", "--bar-label", "end"
    )
    assert code == 0
    config = json.loads((visible_runs(out)[0] / "config.json").read_text())
    assert (config["data"]["file_timezone"], config["data"]["file_bar_label"]) == ("UTC", "end")


def test_one_file_for_several_symbols_without_a_symbol_column_is_an_error(tmp_path, capsys):
    """Issue: `--symbols SPY QQQ --data eqker_SPY...csv` backtested QQQ on SPY's bars."""
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "QQQ", "--data", str(DATA / "eqker_SPY_1min_2019-02.csv")
    )
    assert code == 1 and visible_runs(out) == []
    line = one_error_line(capsys.readouterr().out)
    assert "eqker_SPY_1min_2019-02.csv has no symbol column" in line and "--data SPY=FILE QQQ=FILE2" in line


def test_a_file_with_a_symbol_column_is_split_by_symbol(tmp_path):
    spy = pd.read_csv(DATA / "eqker_SPY_1min_2019-02.csv").assign(symbol="SPY")
    qqq = pd.read_csv(DATA / "eqker_QQQ_1min_2019-02.csv").assign(symbol="QQQ")
    path = tmp_path / "both.csv"
    pd.concat([spy, qqq]).to_csv(path, index=False)
    both_spy, both_qqq = load(path, "SPY"), load(path, "QQQ")
    pd.testing.assert_frame_equal(both_spy.bars, load("eqker_SPY_1min_2019-02.csv").bars)
    pd.testing.assert_frame_equal(both_qqq.bars, load("eqker_QQQ_1min_2019-02.csv", "QQQ").bars)


def test_data_sym_equals_path_pairs_files_whatever_their_names(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    shutil.copy(DATA / "eqker_SPY_1min_2019-02.csv", a)
    shutil.copy(DATA / "eqker_QQQ_1min_2019-02.csv", b)
    short = tmp_path / "short.yaml"
    short.write_text("orb:\n  atr_period: 2\nconfluence:\n  rel_volume:\n    lookback_sessions: 2\n")
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "QQQ", "--data", f"SPY={a}", f"QQQ={b}", "--config", str(short), "-q"
    )
    assert code == 0
    run = visible_runs(out)[0]
    spy = pd.read_parquet(run / "SPY_bars.parquet")
    qqq = pd.read_parquet(run / "QQQ_bars.parquet")
    assert not spy["close"].equals(qqq["close"])  # each symbol on its own bars
    assert json.loads((run / "manifest.json").read_text())["sources"] == {
        "SPY": f"file:{a}",
        "QQQ": f"file:{b}",
    }


def test_a_symbol_without_its_pair_is_an_error(tmp_path, capsys):
    a = tmp_path / "a.csv"
    shutil.copy(DATA / "eqker_SPY_1min_2019-02.csv", a)
    code, _ = run_cli(tmp_path, "--symbols", "SPY", "QQQ", "--data", f"SPY={a}")
    assert code == 1
    assert "--data has no file for QQQ; add QQQ=PATH" in one_error_line(capsys.readouterr().out)


def test_the_loading_bar_counts_a_failed_symbol_as_tried_and_says_so(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(DATA / "eqker_SPY_1min_2019-02.csv", folder / "SPY.csv")
    code, _ = run_cli(tmp_path, "--symbols", "SPY", "QQQ", "--data", str(folder))
    out = capsys.readouterr().out
    assert code == 1 and "has no file for QQQ" in out  # interfaces.md: saved with SPY, exit 1
    assert "Loading bars (file), 1 failed" in out and "2/2" in out


def test_warmup_message_names_the_settings_that_need_history():
    """Issue: a 5-session file ended '0 trades, 5 sessions skipped: warmup' with a hint at warmup_sessions."""
    loaded = load("eqker_SPY_1min_2019-02.csv")
    [note] = [w for w in loaded.warnings if "sessions" in w and "need" in w]
    assert "holds only 5 sessions" in note
    assert "orb.atr_period 14" in note and "confluence.rel_volume.lookback_sessions 14" in note


@pytest.mark.parametrize(
    ("zone", "label", "stamped"),
    [("America/New_York", "end", "09:31-16:00"), ("UTC", "start", "13:30-19:59")],
)
def test_a_long_file_is_read_from_a_sample_of_whole_days(tmp_path, infos, zone, label, stamped):
    """Files of more than SAMPLE_DAYS days are scored on that many days; the reading is the right one,
    no session is cut (first and last stamps as written), and the note says the days were sampled."""
    from orb.data.synthetic import generate_bars

    bars = generate_bars(
        "SPY", pd.Timestamp("2023-01-03").date(), pd.Timestamp("2023-08-31").date(), 1, 7, "XNYS", False
    )
    shift = pd.Timedelta(minutes=1 if label == "end" else 0)
    stamps = (bars.index + shift).tz_convert(zone).tz_localize(None)
    path = tmp_path / "long.parquet"
    bars.reset_index(drop=True).assign(datetime=stamps).to_parquet(path, index=False)
    auto = load(path)
    explicit = load(path, **{"data.file_timezone": zone, "data.file_bar_label": label})
    pd.testing.assert_frame_equal(auto.bars, explicit.bars)
    pd.testing.assert_frame_equal(auto.bars, bars.loc[bars.index >= auto.bars.index[0]])
    days = len(set(stamps.date))
    [note] = [m for m in infos if m.startswith("long.parquet: read as")]
    assert f"read as {zone}, bar {label}" in note and f"stamped {stamped} in the file" in note
    assert f"scored on 100 of the file's {days} days" in note
