"""The cache of validated configs (orb.config_cache): a hit equals the validation it skips, pydantic is
not imported on a hit, and a damaged, missing or unwritable cache only means a normal validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest

from orb import config_cache
from orb.config import (
    Config,
    Direction,
    EntryMode,
    SameBar,
    StopMode,
    build_config,
    deep_merge,
    defaults_data,
    load_config,
)
from orb.config_base import Section
from orb.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = [
    {},
    {"entry": {"mode": "or_candle"}, "trade": {"stop_mode": "or_opposite", "same_bar": "ohlc_path"}},
    {"entry": {"mode": "close", "direction": "long"}, "trade": {"stop_mode": "atr"}},
    {"entry": {"direction": "short", "cutoff": 900}, "trade": {"flatten_time": "15:45"}},
    {"entry": {"direction": "or_candle"}, "trade": {"partials": False, "target_r": None}},
    {"orb": {"min_width_atr": None, "max_width_atr": None, "validate": True}},
    {"governance": {"max_daily_loss_r": None}, "data": {"alpaca": {"url": "http://x"}}},
    {"data": {"databento": {"max_cost": 12.5}}, "portfolio": {"enabled": True, "benchmark": " spy "}},
    {"universe": {"min_price": 5, "min_atr": 0.5}, "confluence": {"required": 1, "adx": {"enabled": True}}},
]


def _entries() -> list[Path]:
    return sorted(config_cache.folder().glob("*.json"))


def _load(tmp_path: Path, override: dict) -> Config:
    path = tmp_path / "user.yaml"
    path.write_text(json.dumps(override), encoding="utf-8")  # JSON is YAML
    return load_config(path)


@pytest.mark.parametrize("override", CONFIGS)
def test_built_from_the_cache_equals_the_validated_config(override):
    validated = build_config(deep_merge(defaults_data(), override))
    restored = Config.from_dict(json.loads(validated.canonical_json()))
    assert restored == validated
    assert hash(restored) == hash(validated)
    assert restored.canonical_json() == validated.canonical_json()
    for section in ("entry", "trade"):
        for name, value in vars(getattr(validated, section)).items():
            assert type(getattr(getattr(restored, section), name)) is type(value), (section, name)


def test_every_enum_value_survives_the_cache():
    seen = set()
    for override in CONFIGS:
        cfg = Config.from_dict(
            json.loads(build_config(deep_merge(defaults_data(), override)).canonical_json())
        )
        seen |= {cfg.entry.mode, cfg.entry.direction, cfg.trade.stop_mode, cfg.trade.same_bar}
    assert seen == {*EntryMode, *Direction, *StopMode, *SameBar}


def test_a_second_load_is_a_hit_equal_to_the_first(tmp_path):
    first = _load(tmp_path, CONFIGS[1])
    assert len(_entries()) == 1
    second = _load(tmp_path, CONFIGS[1])
    assert second == first and second.canonical_json() == first.canonical_json()
    assert len(_entries()) == 1


def test_the_second_process_does_not_import_pydantic_or_yaml(tmp_path):
    (tmp_path / "user.yaml").write_text(
        "orb:\n  base_minutes: 5\nentry:\n  cutoff: 14:30\n", encoding="utf-8"
    )
    code = (
        "import sys; from orb.config import load_config; cfg = load_config(sys.argv[1]); "
        "print('pydantic' in sys.modules, 'yaml' in sys.modules, cfg.sha256())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "user.yaml")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        for _ in range(2)
    ]
    (miss_pydantic, miss_yaml, miss_sha), (hit_pydantic, hit_yaml, hit_sha) = (r.stdout.split() for r in runs)
    assert (miss_pydantic, hit_pydantic) == ("True", "False")
    assert (miss_yaml, hit_yaml) == ("True", "False")
    assert hit_sha == miss_sha == load_config(tmp_path / "user.yaml").sha256()
    assert all(r.stderr == "" for r in runs)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "",  # empty
        lambda text: text.replace("XNYS", "XNYZ"),  # a value changed under the checksum
        lambda text: "\x00\xff garbage",
    ],
)
def test_a_damaged_entry_is_ignored_and_repaired(tmp_path, damage, capsys):
    good = _load(tmp_path, CONFIGS[2])
    (entry,) = _entries()
    intact = entry.read_text(encoding="utf-8")
    entry.write_text(damage(intact), encoding="utf-8")
    assert _load(tmp_path, CONFIGS[2]) == good
    assert entry.read_text(encoding="utf-8") == intact
    assert capsys.readouterr().err == ""


def test_an_entry_with_a_valid_checksum_but_the_wrong_shape_is_revalidated(tmp_path):
    good = _load(tmp_path, CONFIGS[3])
    (entry,) = _entries()
    name = entry.stem
    config_cache.write(name, json.dumps({"session": {"timezone": "UTC"}}))  # a section missing
    assert _load(tmp_path, CONFIGS[3]) == good
    assert Config.from_dict(config_cache.read(name)) == good


def test_an_unwritable_cache_folder_is_only_slower(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("ORB_CACHE_DIR", str(blocker))
    cfgs = [_load(tmp_path, CONFIGS[4]) for _ in range(2)]
    assert cfgs[0] == cfgs[1] == build_config(deep_merge(defaults_data(), CONFIGS[4]))
    assert capsys.readouterr().err == ""


def test_a_changed_input_is_a_miss(tmp_path):
    five = _load(tmp_path, {"orb": {"base_minutes": 5}})
    ten = _load(tmp_path, {"orb": {"base_minutes": 10}})
    assert (five.orb.base_minutes, ten.orb.base_minutes) == (5, 10)
    assert len(_entries()) == 2
    assert config_cache.key({"a": 1}) != config_cache.key({"a": 1.0}) != config_cache.key({"a": True})


def test_the_key_is_the_texts_so_an_edited_file_is_validated_again(tmp_path):
    path = tmp_path / "user.yaml"
    path.write_text("orb: {base_minutes: 5}\n", encoding="utf-8")
    assert load_config(path).orb.base_minutes == 5
    path.write_text("orb: {base_minutes: 0}\n", encoding="utf-8")  # the same size, now invalid
    with pytest.raises(ConfigError, match="orb.base_minutes"):
        load_config(path)
    path.write_text("orb: {base_minutes: 5}   # five\n", encoding="utf-8")
    assert load_config(path).orb.base_minutes == 5
    assert len(_entries()) == 2  # one entry per text validated, none for the invalid one


def test_a_file_above_the_yaml_readers_limit_is_refused_by_it_not_read_whole(tmp_path):
    from orb.config import TEXT_LIMIT
    from orb.safeyaml import MAX_BYTES

    assert TEXT_LIMIT == MAX_BYTES
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="big.yaml"):
        load_config(path)
    assert _entries() == []


def test_a_changed_rule_file_is_a_miss(tmp_path, monkeypatch):
    data = defaults_data()
    before = config_cache.key(data)
    copies = []
    for path in config_cache._RULES:
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes() + b"\n# changed\n")
        copies.append(copy)
    monkeypatch.setattr(config_cache, "_RULES", tuple(copies))
    assert config_cache.key(data) not in (None, before)


def test_invalid_configs_are_not_cached(tmp_path):
    with pytest.raises(ConfigError, match="orb.base_minutes"):
        _load(tmp_path, {"orb": {"base_minutes": 0}})
    assert _entries() == []


def test_input_that_is_not_json_is_validated_without_the_cache(tmp_path):
    (tmp_path / "user.yaml").write_text("session:\n  calendar: 2024-01-02\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="session.calendar"):
        load_config(tmp_path / "user.yaml")
    assert config_cache.key({"session": {"calendar": object()}}) is None


def test_the_cache_keeps_the_most_recently_used_entries(monkeypatch):
    monkeypatch.setattr(config_cache, "MAX_ENTRIES", 3)
    for i in range(5):
        config_cache.write(f"entry{i}", json.dumps({"i": i}))
        path = config_cache.folder() / f"entry{i}.json"
        os.utime(path, ns=(i * 10**9, i * 10**9))
    config_cache.write("entry5", json.dumps({"i": 5}))
    assert [p.stem for p in _entries()] == ["entry3", "entry4", "entry5"]
    assert config_cache.read("entry3") == {"i": 3}


def test_a_crashed_writers_temp_file_goes_after_an_hour_and_a_live_ones_stays():
    base = config_cache.folder()
    base.mkdir(parents=True, exist_ok=True)
    old, fresh = base / ".tmp-crashed.json", base / ".tmp-writing.json"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    two_hours_ago = time.time_ns() - 2 * 3600 * 10**9
    os.utime(old, ns=(two_hours_ago, two_hours_ago))
    config_cache.write("entry", json.dumps({"i": 1}))
    assert not old.exists() and fresh.exists()
    assert config_cache.read("entry") == {"i": 1}


def test_the_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ORB_CACHE_DIR", str(tmp_path / "orb"))
    assert config_cache.folder() == tmp_path / "orb" / "config"
    monkeypatch.delenv("ORB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config_cache.folder() == tmp_path / "xdg" / "orb" / "config"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_cache.folder() == tmp_path / "home" / ".cache" / "orb" / "config"


def _number_fields(section: type[Section], prefix: str = ""):
    """(file key path, int or float) of every field typed int or float, optionally None."""
    for f in fields(section):
        kind = f.type
        if get_origin(kind) in (Union, UnionType):
            (kind,) = (a for a in get_args(kind) if a is not type(None))
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        if isinstance(kind, type) and issubclass(kind, Section):
            yield from _number_fields(kind, f"{prefix}{f.name}.")
        elif kind in (int, float):
            yield f"{prefix}{f.metadata.get('alias', f.name)}", kind


@pytest.mark.parametrize("key", [k for k, _ in _number_fields(Config)])
def test_every_number_field_refuses_a_bool(key):
    """Each int/float field carries `Num` (the bool rule): pydantic alone would read true as 1."""
    section, name = key.rsplit(".", 1)
    override: dict = {name: True}
    for part in reversed(section.split(".")):
        override = {part: override}
    with pytest.raises(ConfigError, match="expected a number, not true/false"):
        build_config(deep_merge(defaults_data(), override))


def test_number_fields_are_found():
    found = dict(_number_fields(Config))
    assert found["orb.base_minutes"] is int and found["trade.target_r"] is float
    assert found["data.databento.max_cost"] is float and "orb.validate" not in found
