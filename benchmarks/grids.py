"""The sweep grids of `bench_sweep.py` (ours) and `peer_vectorbt.py` (the peer): the same values."""

from __future__ import annotations

MINUTES = [5, 10, 15, 20, 30]
GRIDS = {  # combinations -> (atr_stop_mult values, slippage_per_share values); x 5 OR lengths
    200: ([0.5, 0.8, 1.0, 1.5], [round(0.005 * k, 3) for k in range(10)]),
    1000: ([0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0], [round(0.0025 * k, 4) for k in range(20)]),
}


def grid_values(size: int) -> tuple[list[int], list[float], list[float]]:
    stops, slips = GRIDS[size]
    return MINUTES, stops, slips


def grid_yaml(size: int) -> str:
    """The sweep file of our grid (orb.base_minutes x trade.atr_stop_mult x costs.slippage_per_share)."""
    minutes, stops, slips = grid_values(size)
    return (
        "grid:\n"
        f"  orb.base_minutes: {minutes}\n"
        f"  trade.atr_stop_mult: {stops}\n"
        f"  costs.slippage_per_share: {slips}\n"
    )
