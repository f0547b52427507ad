"""run_backtest.py end to end: the run folder contract, determinism, exit codes and bad input.

Most runs call `run_backtest.main(argv)` in-process (fast); a few start a real process where the
behaviour is the process's own (Ctrl-C, a fresh interpreter).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from orb.schema import EQUITY_COLUMNS, METRIC_KEYS, SESSION_COLUMNS, TRADE_COLUMNS
from tests.cli_helpers import one_error_line, run_cli, visible_runs

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data"  # copies of ../shared/data/real (see its README)
SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-03-28"]
PER_SYMBOL = ("trades", "fills", "equity", "sessions", "events", "bars")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    code, out = run_cli(tmp, "--symbols", "SPY", "QQQ", *SYNTH, "-q")
    assert code == 0
    (run_dir,) = visible_runs(out)
    return run_dir


def test_run_folder_holds_every_file_of_run_format(synthetic_run):
    names = {p.name for p in synthetic_run.iterdir()}
    expected = {f"{sym}_{kind}.parquet" for sym in ("SPY", "QQQ") for kind in PER_SYMBOL}
    expected |= {f"{sym}_metrics.json" for sym in ("SPY", "QQQ")}
    expected |= {"all_trades.parquet", "all_trades.csv", "combined_equity.parquet", "metrics.json"}
    expected |= {"config.json", "manifest.json", "run.log"}
    assert names == expected
    assert (synthetic_run.parent / "latest").read_text().strip() == synthetic_run.name


def test_manifest_hashes_every_file_and_records_provenance(synthetic_run):
    manifest = json.loads((synthetic_run / "manifest.json").read_text())
    assert manifest["run_id"] == synthetic_run.name
    assert manifest["symbols"] == ["SPY", "QQQ"]
    assert manifest["sources"] == {"SPY": "synthetic", "QQQ": "synthetic"}
    assert (manifest["start"], manifest["end"], manifest["interval"]) == ("2024-01-02", "2024-03-28", "1m")
    assert set(manifest["files"]) == {
        p.name for p in synthetic_run.iterdir() if p.name not in ("manifest.json", "run.log")
    }
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((synthetic_run / name).read_bytes()).hexdigest() == digest, name
    config = json.loads((synthetic_run / "config.json").read_text())
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == manifest["config_sha256"]
    for key in (
        "schema_version",
        "created",
        "command",
        "data_sha256",
        "package_version",
        "python",
        "libraries",
    ):
        assert key in manifest


def test_columns_and_metric_keys_follow_run_format(synthetic_run):
    trades = pd.read_parquet(synthetic_run / "SPY_trades.parquet")
    assert list(trades.columns[: len(TRADE_COLUMNS)]) == list(TRADE_COLUMNS)
    assert [c for c in trades.columns if c.startswith("factor_")]
    assert str(trades["entry_time"].dt.tz) == "UTC" and len(trades) > 0
    assert list(pd.read_parquet(synthetic_run / "SPY_equity.parquet").columns) == list(EQUITY_COLUMNS)
    assert list(pd.read_parquet(synthetic_run / "SPY_sessions.parquet").columns) == list(SESSION_COLUMNS)
    metrics = json.loads((synthetic_run / "metrics.json").read_text())
    assert list(metrics["per_symbol"]) == ["SPY", "QQQ"]
    assert list(metrics["aggregate"])[: len(METRIC_KEYS)] == list(METRIC_KEYS)
    assert metrics["aggregate"]["symbols"] == ["SPY", "QQQ"]
    assert json.loads((synthetic_run / "SPY_metrics.json").read_text()) == metrics["per_symbol"]["SPY"]
    assert metrics["aggregate"]["total_trades"] == sum(
        m["total_trades"] for m in metrics["per_symbol"].values()
    )


def test_all_trades_sorted_and_csv_times_are_iso_with_offset(synthetic_run):
    all_trades = pd.read_parquet(synthetic_run / "all_trades.parquet")
    parts = [pd.read_parquet(synthetic_run / f"{s}_trades.parquet") for s in ("SPY", "QQQ")]
    assert len(all_trades) == sum(len(p) for p in parts)
    keys = list(zip(all_trades["entry_time"], all_trades["symbol"], strict=True))
    assert keys == sorted(keys)
    csv = pd.read_csv(synthetic_run / "all_trades.csv")
    assert csv["entry_time"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$").all()


def test_combined_equity_is_the_sum_of_symbol_equities(synthetic_run):
    combined = pd.read_parquet(synthetic_run / "combined_equity.parquet")
    finals = [
        pd.read_parquet(synthetic_run / f"{s}_equity.parquet")["equity"].iloc[-1] for s in ("SPY", "QQQ")
    ]
    assert combined["equity"].iloc[-1] == pytest.approx(sum(finals))
    assert combined["timestamp"].is_monotonic_increasing


def test_rerun_is_byte_identical(tmp_path, synthetic_run):
    code, out = run_cli(tmp_path, "--symbols", "SPY", "QQQ", *SYNTH, "-q")
    assert code == 0
    (again,) = visible_runs(out)
    first = json.loads((synthetic_run / "manifest.json").read_text())["files"]
    second = json.loads((again / "manifest.json").read_text())["files"]
    assert first == second


def test_two_runs_in_the_same_second_do_not_collide(tmp_path):
    args = ("--symbols", "SPY", "--synthetic", "--start", "2024-01-02", "--end", "2024-01-05", "-q")
    for _ in range(3):
        assert run_cli(tmp_path, *args, "--run-name", "same")[0] == 0
    runs = visible_runs(tmp_path / "runs")
    assert len(runs) == 3 and len({p.name for p in runs}) == 3
    for run in runs:
        assert json.loads((run / "manifest.json").read_text())["run_id"] == run.name


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--symbols", "SPY", *SYNTH, "--interval", "3m"], 2, "invalid choice: '3m'"),
        (["--symbols", "SP/Y", *SYNTH], 2, "invalid symbol 'SP/Y'"),
        (["--symbols", "SPY", "--synthetic", "--start", "2024-1-2x"], 2, "malformed date '2024-1-2x'"),
        (
            ["--symbols", "SPY", "--synthetic", "--start", "2024-03-01", "--end", "2024-02-01"],
            1,
            "is before --start",
        ),
        (
            ["--symbols", "SPY", "--synthetic", "--start", "2024-12-25", "--end", "2024-12-25"],
            1,
            "no trading session",
        ),
        (
            ["--symbols", "SPY", "--start", "2020-01-02", "--end", "2020-01-10"],
            1,
            "only for the last 30 days",
        ),
        (["--symbols", "SPY", "--data", "/no/such/file.csv"], 1, "/no/such/file.csv"),
    ],
)
def test_bad_command_line_is_one_line_and_writes_nothing(tmp_path, capsys, args, code, needle):
    with pytest.raises(SystemExit) if code == 2 else _no_raise():
        result, out = run_cli(tmp_path, *args)
        assert result == code
    text = capsys.readouterr()
    line = one_error_line(text.out + text.err)
    assert needle in line
    assert visible_runs(tmp_path / "runs") == []


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("orb:\n  base_minutes: 15\n  colour: red\n", "unknown config key 'orb.colour'"),
        ("risk:\n  risk_per_trade: lots\n", "risk.risk_per_trade"),
    ],
)
def test_bad_config_exits_1_with_the_key_path(tmp_path, capsys, yaml_text, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--config", str(cfg))
    assert code == 1
    assert needle in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []


def test_output_dir_that_is_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = run_backtest.main(["--symbols", "SPY", *SYNTH, "--output-dir", str(blocker / "runs")])
    assert code == 1
    assert "not writable" in one_error_line(capsys.readouterr().out)


def _write_spy_csv(path: Path, mutate=None) -> None:
    bars = pd.read_parquet(REAL / "spy_1min_2011-01_2011-03_utc_barstart.parquet")
    bars = bars[bars["timestamp"] < "2011-01-11"]
    if mutate is not None:
        bars = mutate(bars)
    bars.to_csv(path, index=False)


def test_data_file_missing_columns_and_nans_are_errors(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_spy_csv(folder / "SPY.csv", lambda b: b.drop(columns=["volume"]))
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--data", str(folder))
    assert code == 1
    line = one_error_line(capsys.readouterr().out)
    assert "volume" in line and "SPY.csv" in line
    _write_spy_csv(folder / "SPY.csv", lambda b: b.assign(close=b["close"].where(b.index != 500)))
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--data", str(folder))
    assert code == 1
    assert "missing or non-numeric values" in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []


def test_unsorted_and_duplicate_timestamps_are_fixed_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_spy_csv(folder / "SPY.csv", lambda b: pd.concat([b.iloc[::-1], b.iloc[100:103]]))
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", "--data", str(folder), "--config", str(_short_atr(tmp_path))
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "warning:" in text and "duplicate" in text
    (run_dir,) = visible_runs(out)
    bars = pd.read_parquet(run_dir / "SPY_bars.parquet")
    assert bars["timestamp"].is_monotonic_increasing and bars["timestamp"].is_unique


def _short_atr(tmp_path: Path) -> Path:
    path = tmp_path / "short.yaml"
    path.write_text("orb:\n  atr_period: 2\nconfluence:\n  rel_volume:\n    lookback_sessions: 2\n")
    return path


def test_partial_failure_saves_the_others_and_exits_1(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_spy_csv(folder / "SPY.csv")
    code, out = run_cli(tmp_path, "--symbols", "SPY", "QQQ", "--data", str(folder), "-q")
    assert code == 1
    (run_dir,) = visible_runs(out)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["symbols"] == ["SPY"] and "QQQ" in manifest["failed_symbols"]
    assert "QQQ" in capsys.readouterr().out


def test_yahoo_unreachable_is_one_line(tmp_path, capsys):
    """No network here (and the test guard blocks sockets): the real yfinance path must say so."""
    cfg = tmp_path / "noretry.yaml"
    cfg.write_text("data:\n  yahoo_retries: 0\n")
    code, out = run_cli(tmp_path, "--symbols", "SPY", "QQQ", "IWM", "--config", str(cfg))
    assert code == 1
    line = one_error_line(capsys.readouterr().out)
    assert "Yahoo could not be reached for SPY" in line and "--synthetic" in line
    assert line.endswith("(QQQ, IWM not tried)")  # an unreachable source is not retried per symbol
    assert visible_runs(out) == []


def test_corrupt_cache_file_is_ignored_and_refetched(tmp_path, capsys):
    args = ("--symbols", "SPY", "--synthetic", "--start", "2024-01-02", "--end", "2024-01-31", "--cache")
    args += ("--cache-dir", str(tmp_path / "cache"))
    assert run_cli(tmp_path, *args)[0] == 0
    (cached,) = (tmp_path / "cache").rglob("*.parquet")
    cached.write_bytes(b"PAR1 this is not parquet")
    capsys.readouterr()
    assert run_cli(tmp_path, *args)[0] == 0
    assert "warning:" in capsys.readouterr().out
    first, second = visible_runs(tmp_path / "runs")
    files = [json.loads((p / "manifest.json").read_text())["files"] for p in (first, second)]
    assert files[0] == files[1]
    assert pd.read_parquet(cached).shape[0] > 0  # rewritten, valid again


def test_ctrl_c_leaves_no_visible_run_folder(tmp_path):
    out = tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "QQQ", "IWM", "--synthetic"]
    cmd += ["--start", "2015-01-02", "--end", "2024-05-31", "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".tmp-*")) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output
    assert visible_runs(out) == [] and not list(out.glob(".tmp-*"))


def test_version_and_help_work_in_a_fresh_process():
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_backtest.py"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("orb ")
    helptext = subprocess.run(
        [sys.executable, str(ROOT / "run_backtest.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--symbols", "--validate-or", "--report", "--cache-dir", "--run-name", "--seed", "--quiet"):
        assert flag in helptext


def test_report_flag_writes_a_hashed_self_contained_report(tmp_path):
    args = (
        "--symbols",
        "SPY",
        "--synthetic",
        "--start",
        "2024-01-02",
        "--end",
        "2024-02-29",
        "--report",
        "-q",
    )
    code, out = run_cli(tmp_path, *args)
    assert code == 0
    (run_dir,) = visible_runs(out)
    report = run_dir / "SPY_report.html"
    html = report.read_text()
    assert '<script src="http' not in html and "plotly" in html.lower()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["files"]["SPY_report.html"] == hashlib.sha256(report.read_bytes()).hexdigest()


def test_file_run_without_dates_covers_the_whole_file(tmp_path):
    parquet = REAL / "spy_1min_2011-01_2011-03_utc_barstart.parquet"
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--data", str(parquet), "-q")
    assert code == 0
    (run_dir,) = visible_runs(out)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["start"], manifest["end"]) == ("2011-01-03", "2011-03-31")
    assert manifest["sources"]["SPY"] == f"file:{parquet}"
    assert len(pd.read_parquet(run_dir / "SPY_sessions.parquet")) == 43


def test_yahoo_limit_fails_before_any_output_or_download(tmp_path, capsys):
    code, out = run_cli(tmp_path, "--symbols", "SPY", "--start", "2020-01-02", "--end", "2020-01-10")
    assert code == 1
    text = capsys.readouterr().out
    assert text.startswith("error: Yahoo serves 1m bars only for the last 30 days")
    assert "--interval" in text and "--data" in text and "--synthetic" in text


@pytest.mark.parametrize("quiet", [True, False])
def test_a_run_folder_path_with_brackets_is_printed_as_it_is(tmp_path, quiet):
    """Rich markup in a path ([red], [/]) is text: the quiet run's last line is the path itself, and
    the completion panel shows it unchanged."""
    out_dir = tmp_path / "runs[red]x[/]"
    args = ["--symbols", "SPY", "--synthetic", "--start", "2024-01-02", "--end", "2024-01-05"]
    proc = subprocess.run(
        [sys.executable, str(Path(run_backtest.__file__)), *args, "--output-dir", str(out_dir)]
        + (["-q"] if quiet else []),
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "COLUMNS": "500"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    lines = proc.stdout.splitlines()
    if quiet:
        assert lines[-1] == str(run_dir)
    else:
        assert any(f"Run folder: {run_dir}" in line for line in lines), proc.stdout


def test_the_process_ends_with_its_output_and_log_flushed(tmp_path):
    """The CLI process ends without the interpreter's teardown: what it printed and logged is all there."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_backtest.py"), "--symbols", "SPY", "--synthetic",
         "--start", "2024-01-02", "--end", "2024-01-31", "-q", "--output-dir", "runs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = visible_runs(tmp_path / "runs")
    assert done.stdout == f"{Path('runs') / run.name}\n"
    last = (tmp_path / "backtest_run.log").read_text(encoding="utf-8").splitlines()[-1]
    assert "SPY: " in last and " trades over 21 sessions" in last
    assert "SPY: " in (run / "run.log").read_text(encoding="utf-8").splitlines()[-1]


def test_the_fast_exit_waits_for_nothing_alive():
    """With another thread alive, `_end_process` returns the code for a normal exit (which joins it)."""
    import threading

    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert run_backtest._end_process(3) == 3
    finally:
        release.set()
        worker.join()


def test_the_collector_is_off_during_start_up_and_on_for_the_run(tmp_path):
    """`cli` turns the cyclic collector off for start-up only: the run itself collects as usual."""
    probe = (
        "import gc, sys, run_backtest\n"
        "from orb import pipeline\n"
        "run = pipeline.run\n"
        "def traced(*args, **kwargs):\n"
        "    print('start-up', started, 'run', gc.isenabled())\n"
        "    return run(*args, **kwargs)\n"
        "started = None\n"
        "def main(argv=None, exiting=False):\n"
        "    global started\n"
        "    started = gc.isenabled()\n"
        "    return real(argv, exiting=exiting)\n"
        "real, run_backtest.main, pipeline.run = run_backtest.main, main, traced\n"
        "sys.argv[1:] = ['--symbols', 'SPY', '--synthetic', '--start', '2024-01-02', '--end', '2024-01-05',"
        " '-q', '--output-dir', 'runs']\n"
        "run_backtest.cli()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "start-up False run True"
