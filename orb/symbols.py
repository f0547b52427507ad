"""The one symbol rule for the command line, data files, run files and the API.

A symbol is 1-15 characters among A-Z, 0-9, '.', '^', '=', '-', starting with a letter, a digit or '^'
(SPY, BRK.B, BF-B, ^GSPC, ES=F). So `.`, `..`, `.HIDDEN` or `=` never name a file.
"""

from __future__ import annotations

import re

from orb.errors import RequestError

MAX_LENGTH = 15
# case-insensitive form for request parameters (the API upper-cases what it accepts)
SYMBOL_PATTERN = rf"^[A-Za-z0-9^][A-Za-z0-9.^=-]{{0,{MAX_LENGTH - 1}}}$"
RULE = (
    f"use 1-{MAX_LENGTH} characters among A-Z, 0-9, '.', '^', '=', '-', starting with a letter, "
    "a digit or '^' (e.g. SPY, BRK.B, ^GSPC)"
)
_SYMBOL = re.compile(SYMBOL_PATTERN)


def is_symbol(text: object) -> bool:
    """True when `text` is a str that follows the rule as given (any case, no surrounding spaces)."""
    return isinstance(text, str) and _SYMBOL.fullmatch(text) is not None


def normalize_symbol(symbol: object) -> str:
    """The stripped, upper-cased symbol; RequestError naming it (cut to 40 characters) otherwise."""
    upper = symbol.strip().upper() if isinstance(symbol, str) else None
    if upper is None or not is_symbol(upper):
        shown = repr(symbol)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise RequestError(f"invalid symbol {shown}: {RULE}")
    return upper
