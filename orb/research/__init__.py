"""Research tools over the backtest engine: parameter sweeps and walk-forward analysis (on a local
process pool or a Dask cluster) and Monte Carlo resampling of a run's trades (docs/research.md)."""
