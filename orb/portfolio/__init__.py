"""Portfolio mode: one account trading the daily stocks-in-play universe (strategy.md 10)."""

from orb.portfolio.runner import PortfolioOutcome, PortfolioResult, backtest, run
from orb.portfolio.stages import FrameSource, Source

__all__ = ["FrameSource", "PortfolioOutcome", "PortfolioResult", "Source", "backtest", "run"]
