"""Where orb keeps its small on-disk caches (validated configs, exchange schedules): `$ORB_CACHE_DIR`,
else `$XDG_CACHE_HOME/orb`, else `~/.cache/orb`. The environment is read on each call."""

import os
from pathlib import Path


def cache_root() -> Path:
    """The folder holding orb's caches, one subfolder per kind."""
    if base := os.environ.get("ORB_CACHE_DIR"):
        return Path(base)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "orb"
    return Path.home() / ".cache" / "orb"
