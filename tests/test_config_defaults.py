"""The pydantic defaults of orb.config.Config equal defaults.yaml, key for key (one source of truth)."""

from __future__ import annotations

import yaml

from orb.config import DEFAULTS_PATH, Config, load_config


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
