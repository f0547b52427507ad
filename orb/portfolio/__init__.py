"""Portfolio mode: one account trading the daily stocks-in-play universe (strategy.md 10)."""

from orb.portfolio.runner import PortfolioOutcome, run

__all__ = ["PortfolioOutcome", "run"]
