"""Test-wide guards: no test may reach the network (Yahoo included); loopback stays open; the config
and calendar caches are temporary folders.

Hypothesis profiles: `default` is derandomized (each test draws the same examples on every run, so a
fresh-clone CI run is reproducible; no example database), `explore` (HYPOTHESIS_PROFILE=explore) is random,
keeps failures in .hypothesis/ and multiplies every test's budget by HYPOTHESIS_EXPLORE_SCALE (default 10)
through hypothesis_budget.examples. Neither has a deadline: wall time on a shared machine is not a property.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis_budget import EXPLORE_SCALE

os.environ.setdefault("YF_DISABLE_CURL_CFFI", "1")  # yfinance over requests, so HTTP can be replayed
os.environ.setdefault("ORB_JOB_WORKERS", "0")  # API apps start no job workers unless a test asks
# The cache of validated configs (orb.config_cache) never goes to the user's home: a folder for the
# session (processes started by session fixtures), and a new one for every test (below).
_CACHE_ROOT = tempfile.mkdtemp(prefix="orb-test-cache-")
atexit.register(shutil.rmtree, _CACHE_ROOT, ignore_errors=True)
os.environ["ORB_CACHE_DIR"] = _CACHE_ROOT
os.environ.setdefault("ORB_CALENDAR_CACHE", os.path.join(_CACHE_ROOT, "calendars"))  # shared by the session

settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile(
    "explore",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    deadline=None,
    max_examples=100 * EXPLORE_SCALE,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_real_connect = socket.socket.connect
_LOOPBACK = ("127.", "::1", "localhost")


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith(_LOOPBACK) or self.family == socket.AF_UNIX):
        return _real_connect(self, address)
    raise OSError(f"network access blocked in tests: {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _own_cache_dir(monkeypatch):
    """Each test starts with an empty config cache (a run's second load is a hit only within a test)."""
    monkeypatch.setenv("ORB_CACHE_DIR", tempfile.mkdtemp(prefix="test-", dir=_CACHE_ROOT))
