"""Test-wide guards: no test may reach the network (Yahoo included); loopback stays open."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("YF_DISABLE_CURL_CFFI", "1")  # yfinance over requests, so HTTP can be replayed
os.environ.setdefault("ORB_JOB_WORKERS", "0")  # API apps start no job workers unless a test asks

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
