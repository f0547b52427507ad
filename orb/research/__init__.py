"""Research tools over backtest results: sweeps, walk-forward, Monte Carlo."""
