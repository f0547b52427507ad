"""Hostile config and sweep files, strict numbers, `--set key.path=value` and `--mc-seed` (issue 9)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orb.config import build_config, load_config, parse_override
from orb.errors import ConfigError
from orb.research.sweep import load_sweep
from orb.safeyaml import MAX_ALIASES, short
from tests.cli_helpers import one_error_line, run_cli, visible_runs

SYNTH = ["--synthetic", "--start", "2024-01-02", "--end", "2024-02-09"]


def _laughs(key: str = "orb", leaf: str = "base_minutes") -> str:
    """About 390 bytes that expand to 10**9 strings under `key.leaf` (nested anchors)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 10)}]")
    return "\n".join(lines) + f"\n{key}:\n  {leaf}: [*i,*i,*i,*i,*i,*i,*i,*i,*i,*i]\n"


HOSTILE = [
    # (name, file content, text the one line must hold)
    ("billion_laughs", _laughs(), "aliases"),
    ("deep_nesting", "orb:\n  base_minutes: " + "[" * 100_000 + "]" * 100_000 + "\n", "nests deeper"),
    ("deep_mapping", "orb:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(60)), "nests deeper"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd", "not UTF-8"),
    ("nul_bytes", "orb:\n  base_minutes: 5\x00\x00\n", "NUL"),
    ("overflow_float", "orb:\n  adaptive_low: 1.0e+400\n", "'orb.adaptive_low'"),
    ("overflow_string", "orb:\n  adaptive_low: 1e400\n", "'orb.adaptive_low'"),
    ("overflow_int_key", "orb:\n  base_minutes: 1e400\n", "'orb.base_minutes'"),
    ("nan", "trade:\n  t1_r: .nan\n", "'trade.t1_r'"),
    ("infinite", "risk:\n  initial_capital: .inf\n", "'risk.initial_capital'"),
    ("huge_timezone", "session:\n  timezone: " + "A" * 20_000_000 + "\n", "larger than"),
    ("long_timezone", "session:\n  timezone: " + "A" * 500_000 + "\n", "'session.timezone'"),
    ("bool_int", "orb:\n  base_minutes: true\n", "'orb.base_minutes' = True"),
    ("bool_float", "trade:\n  t1_r: false\n", "'trade.t1_r' = False"),
    ("bool_optional_float", "orb:\n  min_width_atr: true\n", "'orb.min_width_atr' = True"),
    ("duplicate_section", "orb:\n  base_minutes: 5\ntrade:\n  t1_r: 1.0\norb:\n  adaptive: true\n", "'orb'"),
    ("duplicate_key", "orb:\n  base_minutes: 5\n  base_minutes: 10\n", "'orb.base_minutes'"),
    ("duplicate_deep", "confluence:\n  adx:\n    period: 5\n    period: 6\n", "'confluence.adx.period'"),
    ("many_aliases", "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n", "aliases"),
    ("huge_int", "data:\n  seed: " + "9" * 5000 + "\n", "bad.yaml"),
]


@pytest.mark.parametrize(("name", "content", "needle"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_config_file_is_one_short_line_naming_file_and_key(tmp_path, name, content, needle):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    began = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert time.perf_counter() - began < 5
    assert str(path) in message and needle in message
    assert "\n" not in message and len(message) <= 400


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [HOSTILE[0], HOSTILE[1], HOSTILE[3], HOSTILE[10], HOSTILE[16]],
    ids=["billion_laughs", "deep_nesting", "binary", "huge_file", "duplicate_key"],
)
def test_hostile_sweep_file_is_one_line_naming_the_file(tmp_path, name, content, needle):
    path = tmp_path / "sweep.yaml"
    if name == "duplicate_key":
        content = "grid:\n  orb.base_minutes: [5, 15]\n  orb.base_minutes: [30]\n"
        needle = "'grid.orb.base_minutes' is given twice"
    elif name == "billion_laughs":
        content = _laughs("grid", "orb.base_minutes")
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    began = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_sweep(path, load_config())
    message = str(info.value)
    assert time.perf_counter() - began < 5
    assert f"sweep file {path}" in message and needle in message and "\n" not in message


def test_billion_laughs_through_the_cli_is_fast_and_one_line(tmp_path, capsys):
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(_laughs())
    assert len(cfg.read_bytes()) < 600
    began = time.perf_counter()
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--config", str(cfg))
    assert code == 1 and time.perf_counter() - began < 10
    assert "aliases" in one_error_line(capsys.readouterr().out)
    assert visible_runs(out) == []


def test_a_huge_value_given_to_build_config_is_not_formatted_in_full():
    began = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        build_config({"session": {"timezone": "Z" * 20_000_000}})
    message = str(info.value)
    assert time.perf_counter() - began < 5
    assert "'session.timezone'" in message and len(message) <= 400


def test_short_cuts_reprs():
    assert short("x" * 10_000) == repr("x" * 56)[:-1] + "..."
    assert short([1, 2]) == "[1, 2]"


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("trade:\n  <<: {t2_r: 1.6, t1_r: 1.1}\n  t2_r: 1.7\n")  # an explicit key beats the merge
    trade = load_config(path).trade
    assert (trade.t1_r, trade.t2_r) == (1.1, 1.7)


def test_numbers_stay_numbers():
    assert load_config(None, {"orb.base_minutes": 5}).orb.base_minutes == 5
    assert load_config(None, {"confluence.required": 2}).confluence.required == 2.0  # int for a float
    assert load_config(None, {"orb.adaptive": True}).orb.adaptive is True  # bools still go to bools


# --- --set -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("orb.base_minutes=5", ("orb.base_minutes", 5)),
        ("trade.stop_mode=atr", ("trade.stop_mode", "atr")),
        ("orb.max_width_atr=null", ("orb.max_width_atr", None)),
        ("entry.cutoff='14:30'", ("entry.cutoff", "14:30")),
        ("trade.t1_r=1.25", ("trade.t1_r", 1.25)),
        ("orb.validate=true", ("orb.validate", True)),
    ],
)
def test_set_values_are_yaml_scalars(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("orb.base_minutes", "use key.path=value"),
        ("=5", "use key.path=value"),
        ("orb..x=1", "use key.path=value"),
        ("orb.base_minutes=[5", "--set orb.base_minutes is not valid YAML"),
        ("orb.base_minutes=1.0e+400", "not a finite number"),
        ("orb.base_minutes=" + "[" * 5000 + "]" * 5000, "nests deeper"),
    ],
)
def test_malformed_set_is_a_config_error_naming_it(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert needle in str(info.value) and len(str(info.value)) <= 400


def test_cli_set_overrides_are_applied_logged_and_recorded(tmp_path):
    code, out = run_cli(
        tmp_path, "--symbols", "SPY", *SYNTH, "-q",
        "--set", "orb.base_minutes=5", "--set", "trade.stop_mode=atr", "--set", "orb.base_minutes=10",
    )  # fmt: skip
    assert code == 0
    (run_dir,) = visible_runs(out)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["orb"]["base_minutes"] == 10 and config["trade"]["stop_mode"] == "atr"  # last one wins
    log = (tmp_path / "backtest_run.log").read_text()
    assert "command line overrides config orb.base_minutes = 10" in log
    assert "command line overrides config trade.stop_mode = atr" in log


def test_cli_set_with_a_bad_value_names_the_override(tmp_path, capsys):
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--set", "orb.base_minutes=abc")
    assert code == 1
    line = one_error_line(capsys.readouterr().out)
    assert "orb.base_minutes=abc" in line and "config key 'orb.base_minutes'" in line
    assert visible_runs(out) == []


def test_cli_set_with_an_unknown_key_names_it(tmp_path, capsys):
    code, _ = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--set", "orb.colour=red")
    assert code == 1
    assert "unknown config key 'orb.colour'" in one_error_line(capsys.readouterr().out)


def test_cli_malformed_set_is_usage_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--set", "base_minutes")
    assert exit_.value.code == 2
    text = capsys.readouterr()
    assert "--set" in one_error_line(text.out + text.err)


# --- --mc-seed ---------------------------------------------------------------------------------------


def _mc_run(tmp_path: Path, *extra: str) -> tuple[dict, dict]:
    tmp_path.mkdir()
    code, out = run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "-q", "--monte-carlo", "200", *extra)
    assert code == 0
    (run_dir,) = visible_runs(out)
    summary = json.loads((run_dir / "montecarlo_summary.json").read_text())
    return summary, json.loads((run_dir / "config.json").read_text())


def test_mc_seed_is_separate_from_the_data_seed(tmp_path):
    a_summary, a_config = _mc_run(tmp_path / "a", "--mc-seed", "5")
    b_summary, b_config = _mc_run(tmp_path / "b", "--mc-seed", "5", "--seed", "7")
    c_summary, _ = _mc_run(tmp_path / "c", "--mc-seed", "6")
    assert a_summary["seed"] == b_summary["seed"] == 5 and c_summary["seed"] == 6
    assert (a_config["data"]["seed"], b_config["data"]["seed"]) == (42, 7)  # --seed changes only the bars
    assert a_summary["observed"] == c_summary["observed"]  # same trades, another bootstrap
    assert a_summary["percentiles"] != c_summary["percentiles"]


def test_mc_seed_needs_monte_carlo(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, "--symbols", "SPY", *SYNTH, "--mc-seed", "3")
    assert exit_.value.code == 2
    text = capsys.readouterr()
    assert "--mc-seed needs --monte-carlo" in one_error_line(text.out + text.err)
