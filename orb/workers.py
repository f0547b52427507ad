"""What every pool of worker processes shares (sweeps, portfolio stages): Dask timeouts and a worker
that never outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

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
