"""The cache of validated configs: a run whose config texts were validated before skips YAML and pydantic.

Key: SHA-256 of the input (the texts of defaults.yaml and the user's file, and the overrides, as
canonical JSON), the bytes of the modules holding the rules (orb/config.py, config_base.py,
config_schema.py) and of the installed pydantic's version.py (its version and the pydantic-core version
it needs), read without importing pydantic. Value: the validated config's `to_dict()` JSON, after a line
holding that JSON's SHA-256. Files live in `$ORB_CACHE_DIR/config/`, else `$XDG_CACHE_HOME/orb/config/`,
else `~/.cache/orb/config/`, at most `MAX_ENTRIES` of them (the least recently used go; a crashed
writer's temp file goes after an hour). The cache is a shortcut only: any problem with it means a
normal validation.
"""

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from orb.cachedir import cache_root

MAX_ENTRIES = 256
STALE_TEMP_NS = 3600 * 10**9  # a temp file this old belongs to no live writer
_RULES = tuple(Path(__file__).with_name(f"{name}.py") for name in ("config", "config_base", "config_schema"))
log = logging.getLogger(__name__)


def folder() -> Path:
    """Where the entries live (the environment is read on each call)."""
    return cache_root() / "config"


def key(data: dict[str, Any]) -> str | None:
    """The entry name of the input `data` (orb.config: the texts of defaults.yaml and the user's file,
    and the overrides); None when it is not plain JSON data (a YAML date...) or the rules cannot be
    read. Two inputs with one key validate alike: JSON keeps int, float, bool and None apart, and the
    non-string keys it turns into strings are never field names."""
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        digest = hashlib.sha256(text.encode())
        for path in (*_RULES, _pydantic_version_file()):
            digest.update(path.read_bytes())
    except (TypeError, ValueError, OSError) as exc:
        log.debug("config cache off for this config: %s", exc)
        return None
    return digest.hexdigest()


def _pydantic_version_file() -> Path:
    spec = importlib.util.find_spec("pydantic")
    if spec is None or spec.origin is None:
        raise OSError("pydantic is not installed")
    return Path(spec.origin).with_name("version.py")


def read(name: str) -> dict[str, Any] | None:
    """The validated mapping stored under `name`, or None (missing, unreadable or damaged)."""
    path = folder() / f"{name}.json"
    try:
        stored, _, payload = path.read_bytes().partition(b"\n")
        if stored.decode() != hashlib.sha256(payload).hexdigest():
            raise ValueError("checksum mismatch")
        mapping = json.loads(payload)
        if not isinstance(mapping, dict):
            raise ValueError("not a mapping")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.debug("config cache entry %s ignored: %s", path, exc)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept longest
    return mapping


def write(name: str, validated_json: str) -> None:
    """Store `validated_json` under `name` (temp file + os.replace), then prune to MAX_ENTRIES."""
    base = folder()
    payload = validated_json.encode()
    tmp = None
    try:
        base.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=base, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "wb") as fh:
            fh.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        os.replace(tmp, base / f"{name}.json")
        tmp = None
        _prune(base)
    except OSError as exc:
        log.debug("config cache not written in %s: %s", base, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _prune(base: Path) -> None:
    entries = []
    stale = time.time_ns() - STALE_TEMP_NS
    for entry in os.scandir(base):
        with contextlib.suppress(OSError):
            if entry.name.startswith(".tmp-") and entry.stat().st_mtime_ns < stale:
                os.unlink(entry.path)  # left by a writer that crashed before its os.replace
            elif entry.name.endswith(".json") and not entry.name.startswith("."):
                entries.append((entry.stat().st_mtime_ns, entry.path))
    entries.sort()
    for _, path in entries[: max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            os.unlink(path)
