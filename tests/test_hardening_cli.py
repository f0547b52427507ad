"""The command line under hostile input and hostile surroundings, and the console polish (issue 9)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger

import run_backtest
from orb import console
from orb.config import load_config
from orb.data import validate_symbol
from orb.errors import RequestError
from orb.reasons import SKIP_REASONS
from orb.symbols import SYMBOL_PATTERN, is_symbol, normalize_symbol
from tests.cli_helpers import one_error_line, run_cli, visible_runs

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data"
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-02-09"]


# --- one symbol rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [".", "..", ".HIDDEN", "=", "-X", "=F", "", " ", "A" * 16, "SPY/..", "SP_Y"])
def test_symbols_that_would_name_hidden_or_odd_files_are_rejected(bad):
    assert not is_symbol(bad)
    with pytest.raises(RequestError) as info:
        normalize_symbol(bad)
    assert repr(bad) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("good", ["SPY", "brk.b", "^GSPC", "ES=F", "BF-B", "9984.T", "A" * 15])
def test_tickers_are_accepted_upper_cased(good):
    assert is_symbol(good) and normalize_symbol(good) == good.upper()
    assert re.fullmatch(SYMBOL_PATTERN, good)  # the pattern the API can publish is the same rule


def test_the_data_layer_uses_the_one_rule():
    assert validate_symbol is normalize_symbol


def test_hostile_symbol_value_is_cut_in_the_message():
    with pytest.raises(RequestError) as info:
        normalize_symbol("X" * 100_000)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("bad", [".HIDDEN", "..", "="])
def test_cli_rejects_hidden_file_symbols_and_writes_nothing(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, "--symbols", bad, *SYNTH)
    assert exit_.value.code == 2
    text = capsys.readouterr()
    assert repr(bad) in one_error_line(text.out + text.err)
    assert visible_runs(tmp_path / "runs") == [] and not (tmp_path / "runs").exists()


# --- out-of-range stamps in a data file --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_year_9999_stamps_are_one_data_error_naming_the_file(tmp_path, capsys, suffix):
    bars = pd.read_parquet(REAL / "spy_1min_2011-01_2011-03_utc_barstart.parquet").head(400)
    stamps = bars["timestamp"].dt.tz_convert(None).astype(str).tolist()
    stamps[200] = "9999-12-31 15:00:00"
    frame = bars.drop(columns="timestamp").assign(timestamp=stamps)
    path = tmp_path / f"SPY{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.assign(timestamp=pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")).to_parquet(path)
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--data", str(path))
    assert code == 1
    line = one_error_line(capsys.readouterr().out)
    assert str(path) in line and "1 timestamp outside the years 1678-2261" in line and "9999-12-31" in line
    assert "internal error" not in line and visible_runs(out) == []


# --- a log file that cannot be written ---------------------------------------------------------------


def test_full_disk_for_the_log_file_is_one_warning_and_the_run_goes_on(tmp_path, capsys):
    (tmp_path / "backtest_run.log").symlink_to("/dev/full")  # every write: ENOSPC, as on a full disk
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH)
    logger.remove()  # drop the sink on /dev/full before the next test
    assert code == 0
    text = capsys.readouterr()
    output = text.out + text.err
    warnings = [ln for ln in output.splitlines() if "cannot write" in ln]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], output
    assert "Traceback" not in output and "Logging error" not in output
    assert "Run complete" in output and len(visible_runs(out)) == 1


def test_log_file_in_a_missing_folder_is_one_warning(tmp_path, capsys):
    console.setup_logging("INFO", tmp_path / "gone" / "backtest_run.log")
    for i in range(5):
        logger.info(f"message {i}")
    logger.remove()
    text = capsys.readouterr()
    output = text.out + text.err
    assert sum("cannot write" in ln for ln in output.splitlines()) == 1
    assert "message 4" in output and "Traceback" not in output


# --- Ctrl-C while the program starts -----------------------------------------------------------------


def _mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("library", ["numpy", "pydantic_core"])
def test_ctrl_c_while_the_imports_run_is_one_line_and_exit_130(tmp_path, library):
    cmd = [
        sys.executable,
        str(ROOT / "run_backtest.py"),
        "--symbols",
        "SPY",
        *SYNTH,
        "--set",
        "orb.adaptive=true",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not _mapped(proc.pid, library):
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)  # the heavy imports are running now
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert len([ln for ln in output.splitlines() if "interrupted" in ln]) == 1, output
    assert not (tmp_path / "runs").exists()


# --- pool workers die with their parent --------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_of_a_sweep_ends_its_pool_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    grid = tmp_path / "sweep.yaml"
    grid.write_text("grid:\n  costs.slippage_per_share: [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]\n")
    cmd = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "QQQ", "--synthetic"]
    cmd += ["--start", "2019-01-02", "--end", "2023-12-29", "--sweep", str(grid), "--workers", "2"]
    proc = subprocess.Popen(
        [*cmd, "--output-dir", str(tmp_path / "runs")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    workers: list = []
    while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = psutil.Process(proc.pid).children()
        time.sleep(0.05)
    assert len(workers) == 2, "the pool never started"
    proc.kill()
    proc.wait(10)
    _, alive = psutil.wait_procs(workers, timeout=15)
    for leftover in alive:  # do not leave them behind when the assertion fails
        leftover.kill()
    assert alive == []


# --- console polish ------------------------------------------------------------------------------------


def test_plural():
    assert [console.plural(n, "trade") for n in (0, 1, 2, 1500)] == [
        "0 trades",
        "1 trade",
        "2 trades",
        "1,500 trades",
    ]


def test_trade_count_in_the_log_reads_right(tmp_path):
    code, _ = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "-q")
    assert code == 0
    log = (tmp_path / "backtest_run.log").read_text()
    count, noun = re.search(r"SPY: ([\d,]+) (trades?) over", log).groups()
    assert noun == ("trade" if count == "1" else "trades")


def _metrics(trades: int, sharpe: float | None) -> dict:
    return {
        "total_trades": trades,
        "win_rate": 1.0,
        "total_r": 1.5,
        "avg_r": 1.5,
        "profit_factor": None,
        "sharpe": sharpe,
        "max_drawdown_r": 0.0,
    }


def test_a_sharpe_from_few_trades_is_marked_as_a_small_sample(capsys):
    console.symbol_table({"SPY": _metrics(1, 11.2), "QQQ": _metrics(console.SMALL_SAMPLE_TRADES, 0.8)})
    out = capsys.readouterr().out
    assert "11.20*" in out and "0.80*" not in out and "0.80" in out
    assert f"fewer than {console.SMALL_SAMPLE_TRADES} trades" in out and "small sample" in out
    aggregate = _metrics(1, 11.2) | {"symbols": ["SPY"], "avg_r_per_trade": 1.5}
    console.aggregate_table(aggregate)
    assert "11.20*" in capsys.readouterr().out


def test_a_sharpe_from_enough_trades_has_no_caveat(capsys):
    console.symbol_table({"SPY": _metrics(200, 1.1)})
    out = capsys.readouterr().out
    assert "1.10" in out and "*" not in out and "small sample" not in out


def test_skip_reasons_get_a_one_line_meaning(capsys):
    console.skipped_table({"SPY": {"width_below_min": 3, "warmup": 40}})
    out = capsys.readouterr().out
    assert "width_below_min: the opening range is narrower than orb.min_width_atr x ATR" in out
    assert "warmup: too few earlier sessions" in out


def test_every_reason_the_engine_can_give_has_a_meaning():
    # the skip reasons live in session preparation and OR validation (moved out of engine.py)
    source = "".join((ROOT / "orb" / f).read_text() for f in ("engine.py", "prepare.py", "validation.py"))
    reasons = set(re.findall(r'reason = "([a-z_]+)"', source)) | set(
        re.findall(r'out\.append\("([a-z_]+)"\)', source)
    )
    assert {"warmup", "width_below_min", "missing_bar", "zero_volume"} <= reasons  # the scan finds them
    assert reasons <= set(SKIP_REASONS)
    assert all(meaning and "\n" not in meaning for meaning in SKIP_REASONS.values())


def test_header_names_the_cache_folder_once():
    args = Namespace(data=None, cache=True, cache_dir=Path("cache"), config=None, output_dir=Path("runs"))
    rows = run_backtest._header_rows(args, load_config(), "yahoo", None, None, ("SPY",))
    assert "cache cache" not in rows["Data"] and rows["Data"] == f"Yahoo, bar cache in cache{os.sep}"


# --- the screenshot script ---------------------------------------------------------------------------


def _screenshot_module():
    spec = importlib.util.spec_from_file_location(
        "screenshot_dashboard", ROOT / "scripts" / "screenshot_dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_out_in_a_missing_folder_is_one_line(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "screenshot_dashboard.py")]
    result = subprocess.run(
        [*script, "--runs-dir", str(tmp_path), "--out", str(tmp_path / "nope" / "shot.png")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'nope' / 'shot.png'}: the folder {tmp_path / 'nope'} does not exist; "
        "create it or pick another"
    ]


def test_screenshot_runs_dir_must_be_a_folder(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        _screenshot_module().main(["--runs-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "a.png")])
    assert "--runs-dir" in str(exit_.value.code) and "is not a folder" in str(exit_.value.code)
