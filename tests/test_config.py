"""Configuration: defaults, deep merge, validation messages (strategy.md keys), round trip."""

from __future__ import annotations

import json

import pytest
import yaml

from orb.config import DEFAULTS_PATH, deep_merge, load_config, with_overrides
from orb.errors import ConfigError


def test_defaults_yaml_documents_every_key_with_a_comment():
    cfg = load_config()
    lines = DEFAULTS_PATH.read_text().splitlines()

    def leaves(d, prefix=""):
        for key, value in d.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", key

    for path, key in leaves(cfg.to_dict()):
        matching = [ln for ln in lines if ln.strip().startswith(f"{key}:")]
        assert matching, f"{path} is missing from defaults.yaml"
        assert all("#" in ln for ln in matching), f"{path} has no comment in defaults.yaml"


def test_design_card_key_names_and_defaults():
    cfg = load_config()
    assert cfg.orb.base_minutes == 15 and cfg.orb.adaptive is False
    assert cfg.trade.stop_mode == "atr_capped" and cfg.trade.partials is True
    assert (cfg.trade.t1_r, cfg.trade.runner_r) == (1.0, 3.0)
    assert cfg.governance.max_signals_per_day == 2
    assert cfg.governance.lockout_after_losses == 1
    assert cfg.governance.max_daily_loss_r == 3.0
    assert cfg.confluence.rel_volume.min_ratio == 1.0
    assert cfg.entry.cutoff == "15:00"


def test_deep_merge_keeps_siblings_and_returns_a_new_dict():
    base = {"a": {"x": 1, "y": 2}, "b": 3}
    merged = deep_merge(base, {"a": {"y": 20}})
    assert merged == {"a": {"x": 1, "y": 20}, "b": 3}
    assert base == {"a": {"x": 1, "y": 2}, "b": 3}


def test_user_file_is_merged_over_defaults(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("orb:\n  base_minutes: 30\ntrade:\n  partials: false\n")
    cfg = load_config(path)
    assert cfg.orb.base_minutes == 30 and cfg.trade.partials is False
    assert cfg.orb.atr_period == 14  # untouched sibling from defaults.yaml


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("orb:\n  base_minute: 5\n", "unknown config key 'orb.base_minute'"),
        ("trade:\n  t1_r: abc\n", "config key 'trade.t1_r' = 'abc'"),
        ("trade:\n  t1_r: 2.0\n  t2_r: 1.5\n", "t1_r < t2_r < runner_r"),
        ("trade:\n  t1_pct: 0.8\n  t2_pct: 0.3\n", "t1_pct + t2_pct must be <= 1"),
        ("entry:\n  cutoff: '17:30'\n", "must be inside the session"),
        ("orb:\n  adaptive_low: 1.5\n  adaptive_high: 1.2\n", "adaptive_low must be <= adaptive_high"),
        ("data:\n  interval: 3m\n", "unknown interval '3m'"),
        ("data:\n  interval: 5m\norb:\n  base_minutes: 12\n", "not a whole number of 5m bars"),
        ("trade:\n  stop_mode: wide\n", "config key 'trade.stop_mode' = 'wide'"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("orb: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, yaml_text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and str(path) in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_json_round_trips_as_config(tmp_path):
    cfg = with_overrides(load_config(), {"orb.validate": True, "entry.cutoff": "14:30"})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))  # JSON is YAML: the run's config.json is a valid --config
    again = load_config(path)
    assert again == cfg and again.sha256() == cfg.sha256()
    assert yaml.safe_load(path.read_text())["orb"]["validate"] is True


def test_unquoted_yaml_time_is_read_as_hh_mm(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("entry:\n  cutoff: 14:45\n")  # YAML 1.1 reads this as 885 (sexagesimal)
    assert load_config(path).entry.cutoff == "14:45"


def test_error_caused_by_a_command_line_override_names_it():
    with pytest.raises(ConfigError) as info:
        load_config(None, {"data.interval": "30m"})
    message = str(info.value)
    assert "command-line data.interval=30m" in message and "multiple of 30" in message
