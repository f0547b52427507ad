"""Hypothesis example budgets: a test's own count, times HYPOTHESIS_EXPLORE_SCALE under `explore`."""

from __future__ import annotations

import os

from hypothesis import settings

EXPLORE_SCALE = int(os.environ.get("HYPOTHESIS_EXPLORE_SCALE", "10"))


def examples(n: int) -> int:
    """max_examples for a test whose CI budget is `n` (the profiles are registered in conftest.py)."""
    return n * EXPLORE_SCALE if settings.get_current_profile_name() == "explore" else n
