"""Backtest jobs: a SQLite queue in the runs folder, workers that run `run_backtest.py`, HTTP routes.

In-process functions for the dashboard: `submit`, `list_jobs`, `get_job`, `cancel` (orb.jobs.service).
"""
