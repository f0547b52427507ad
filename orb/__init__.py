"""orb: research Opening Range Breakout strategies on US stocks and ETFs, minute by minute."""

__version__ = "0.1.0"
