"""The dataclass defaults of orb.config.Config equal defaults.yaml, key for key (one source of truth)."""

from __future__ import annotations

import yaml

from orb.config import DEFAULTS_PATH, Config, defaults_data, load_config


def _paths(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out |= _paths(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return out


def test_model_defaults_equal_defaults_yaml():
    from_file = yaml.safe_load(DEFAULTS_PATH.read_text(encoding="utf-8"))
    from_model = Config().to_dict()
    assert _paths(from_model) == _paths(from_file)
    assert from_model == from_file


def test_loading_defaults_yaml_changes_nothing():
    assert load_config(None) == Config()


def test_defaults_read_fast_equal_the_bounded_reading():
    """defaults.yaml goes through libyaml's loader (orb.config.defaults_data); the bounded loader that
    user files go through reads the same mapping from it and refuses nothing in it (no key twice)."""
    from orb.safeyaml import read_yaml_file

    bounded = read_yaml_file(DEFAULTS_PATH, "defaults.yaml", "--config")
    assert defaults_data() == bounded
    assert yaml.__with_libyaml__  # the pinned PyYAML wheel has it: the fast path is the one tested


def test_defaults_data_is_a_new_mapping_each_time():
    first = defaults_data()
    first["risk"]["initial_capital"] = -1
    assert defaults_data()["risk"]["initial_capital"] != -1
