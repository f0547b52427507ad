"""`python -m orb.worker [--runs-dir DIR] [--dask-scheduler tcp://HOST:PORT]`: run queued jobs."""

from orb.jobs.pool import main

if __name__ == "__main__":
    raise SystemExit(main())
