"""Portfolio runs through `run_backtest.py`: the run folder of run-format.md "Portfolio runs", the
Zarattini-Barbon-Aziz preset, the synthetic universe from a symbols file, and one-line bad inputs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import one_error_line, run_cli, visible_runs

from orb.config import Direction, StopMode, load_config
from orb.data.symbols_file import read_symbols_file
from orb.data.synthetic import generate_bars
from orb.errors import RequestError

REPO = Path(__file__).resolve().parent.parent
PRESET = REPO / "configs" / "zarattini_2024_stocks_in_play.yaml"
SYNTH = ["--synthetic", "--start", "2024-02-01", "--end", "2024-03-28"]
UNIVERSE = ["ALFA", "BRAVO", "CHAR", "DELT", "ECHO", "FOXT", "GOLF", "HOTL"]
FILES = {
    "universe.parquet", "all_trades.parquet", "all_trades.csv", "all_fills.parquet", "all_events.parquet",
    "bars.parquet", "combined_equity.parquet", "benchmark.parquet", "metrics.json", "config.json",
    "manifest.json", "run.log",
}  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def small_config(tmp: Path, extra: str = "") -> Path:
    return write(
        tmp / "portfolio.yaml",
        "portfolio:\n  enabled: true\n  max_positions: 3\n  benchmark: SPY\n"
        "universe:\n  min_price: 5\n  min_rel_volume: 1.0\norb:\n  base_minutes: 5\n" + extra,
    )


def test_zarattini_2024_preset_has_the_papers_rules() -> None:
    cfg = load_config(PRESET)
    assert cfg.portfolio.enabled and cfg.portfolio.max_positions == 20 and not cfg.orb.adaptive
    assert cfg.orb.base_minutes == 5 and cfg.entry.direction is Direction.OR_CANDLE
    assert cfg.trade.stop_mode is StopMode.ATR and cfg.trade.atr_stop_mult == 0.1
    assert cfg.trade.target_r is None and cfg.trade.partials is False
    assert (cfg.risk.risk_per_trade, cfg.risk.max_leverage) == (0.01, 4.0)
    u = cfg.universe
    assert (u.min_price, u.min_avg_volume, u.min_atr, u.min_rel_volume, u.lookback_sessions) == (
        5.0, 1_000_000, 0.5, 1.0, 14,
    )  # fmt: skip
    assert cfg.confluence.enabled is False and cfg.governance.max_signals_per_day == 1


def test_synthetic_universe_run_writes_the_portfolio_files_byte_identically(tmp_path, capsys) -> None:
    symbols = write(
        tmp_path / "universe.txt", "# a test universe\n" + "\n".join(UNIVERSE) + "\nalfa  # again\n"
    )
    args = ("--symbols-file", str(symbols), *SYNTH, "--config", str(small_config(tmp_path)), "--workers", "1")
    code, out = run_cli(tmp_path, *args)
    assert code == 0
    text = capsys.readouterr().out
    assert "Portfolio (one account)" in text and "Universe funnel" in text and "Daily Hit Ratio" in text
    (run,) = visible_runs(out)
    assert {p.name for p in run.iterdir()} == FILES
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["mode"] == "portfolio" and manifest["symbols"] == UNIVERSE
    universe = pd.read_parquet(run / "universe.parquet")
    assert len(universe) == len(UNIVERSE) * universe["session_date"].nunique()
    assert set(universe["status"]) <= {"traded", "no_signal", "not_selected", "skipped"}
    assert {"min_price", "min_rel_volume"} <= set(universe["reason"].dropna())  # the bounds matter
    trades = pd.read_parquet(run / "all_trades.parquet")
    assert len(trades) and {"alloc", "rank"} <= set(trades.columns)
    agg = json.loads((run / "metrics.json").read_text())["aggregate"]
    for key in ("daily_hit_ratio", "worst_day_pct", "avg_positions", "max_positions_used",
                "benchmark_return_pct", "beta", "alpha_pct", "sharpe", "total_return_pct"):  # fmt: skip
        assert key in agg
    (tmp_path / "again").mkdir()
    code, out2 = run_cli(tmp_path / "again", *args)
    assert code == 0
    (run2,) = visible_runs(out2)
    files = json.loads((run2 / "manifest.json").read_text())["files"]
    assert files == manifest["files"]


def test_synthetic_universe_symbols_differ_and_have_news_days() -> None:
    from orb.data.synthetic import news_days

    frames = {
        s: generate_bars(s, date(2024, 1, 2), date(2024, 6, 28), 1, 42, universe=True) for s in UNIVERSE
    }
    opens = [f["open"].iloc[0] for f in frames.values()]
    assert max(opens) / min(opens) > 5  # different price levels
    for sym, bars in frames.items():
        news = news_days(sym, date(2024, 1, 2), date(2024, 6, 28), 42)
        local = bars.index.tz_convert("America/New_York")
        first = bars[(local.hour == 9) & (local.minute < 35)]
        or_volume = first["volume"].groupby(first.index.tz_convert("America/New_York").date).sum()
        if news:
            assert or_volume.loc[news].min() > 2.5 * or_volume.median(), sym  # many times normal
    assert sum(len(news_days(s, date(2024, 1, 2), date(2024, 6, 28), 42)) for s in UNIVERSE) >= 4


def test_read_symbols_file(tmp_path) -> None:
    path = write(tmp_path / "s.txt", "# header\n spy \n\nqqq # comment\nSPY\nBRK.B\n")
    assert read_symbols_file(path) == ("SPY", "QQQ", "BRK.B")
    with pytest.raises(RequestError, match=r"s2.txt line 2: invalid symbol 'AA\$'"):
        read_symbols_file(write(tmp_path / "s2.txt", "SPY\nAA$\n"))
    with pytest.raises(RequestError, match="lists no symbol"):
        read_symbols_file(write(tmp_path / "s3.txt", "# nothing\n"))
    with pytest.raises(RequestError, match="not found"):
        read_symbols_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("symbols_file", "line 3: invalid symbol 'NOT A SYMBOL'"),
        ("empty_universe", "the universe is empty on every session"),
        ("adaptive", "orb.adaptive: true is not allowed with portfolio.enabled: true"),
        ("benchmark", "benchmark ZZZ has no bars"),
    ],
)
def test_bad_inputs_give_one_line_and_no_run(tmp_path, capsys, setup, needle) -> None:
    symbols = write(tmp_path / "u.txt", "ALFA\nBRAVO\n")
    config = small_config(tmp_path)
    data = list(SYNTH)
    if setup == "symbols_file":
        symbols = write(tmp_path / "u.txt", "ALFA\nBRAVO\nNOT A SYMBOL\n")
    elif setup == "empty_universe":
        config = write(tmp_path / "x.yaml", config.read_text().replace("min_price: 5", "min_price: 100000"))
    elif setup == "adaptive":
        config = write(tmp_path / "x.yaml", config.read_text() + "  adaptive: true\n")
    else:  # a file source with ALFA and BRAVO only; the benchmark ZZZ has no file
        folder = tmp_path / "bars"
        folder.mkdir()
        for sym in ("ALFA", "BRAVO"):
            bars = generate_bars(sym, date(2024, 1, 2), date(2024, 3, 28), 1, 42, universe=True)
            bars.reset_index().to_parquet(folder / f"{sym}.parquet")
        data = ["--data", str(folder), "--start", "2024-02-01", "--end", "2024-03-28"]
        config = write(tmp_path / "x.yaml", config.read_text().replace("SPY", "ZZZ"))
    code, out = run_cli(tmp_path, "--symbols-file", str(symbols), *data, "--config", str(config))
    assert code == 1
    assert needle in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []


def test_workers_and_dask_flags_need_sweep_unless_portfolio(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--workers", "2")
    assert exit_.value.code == 2
    assert "--workers needs --sweep" in capsys.readouterr().err
    config = small_config(tmp_path).read_text().replace("benchmark: SPY", "benchmark: null")
    path = write(tmp_path / "c.yaml", config)
    code, out = run_cli(
        tmp_path, "--symbols", "ALFA", "BRAVO", "CHAR", *SYNTH, "--config", str(path), "--workers", "2", "-q"
    )
    assert code == 0 and len(visible_runs(out)) == 1
