"""What every pool of worker processes shares (sweeps, portfolio stages): the Dask client, with its
one-line errors, and a worker that never outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from orb.errors import OrbError

DASK_CONNECT_TIMEOUT = "10s"  # to reach the scheduler
DASK_WORKER_WAIT = 30  # seconds to wait for a first worker
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_SECONDS = 0.5


def die_with_parent() -> None:
    """On Linux the kernel sends SIGTERM when the parent exits (prctl PR_SET_PDEATHSIG); everywhere a
    daemon thread also exits the worker once its parent process is gone (re-parented)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="orb-parent-watch", daemon=True).start()


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A `distributed.Client` on the scheduler at `address` that has at least one worker; OrbError with
    one line saying what to do when the packages, the scheduler or a worker is missing."""
    try:
        from distributed import Client
    except ImportError:
        raise OrbError("--dask-scheduler needs the packages dask and distributed (pip install)") from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OrbError(
            f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); "
            f"start one with `dask scheduler` or fix --dask-scheduler"
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=DASK_WORKER_WAIT)
        except TimeoutError:
            raise OrbError(
                f"the Dask scheduler at {address} has no worker after {DASK_WORKER_WAIT} s; start one with "
                f"`PYTHONPATH=<project folder> dask worker {address}`"
            ) from None
        yield client
