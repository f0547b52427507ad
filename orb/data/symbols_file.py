"""`--symbols-file FILE`: one symbol per line; `#` starts a comment; blank lines are ignored."""

from __future__ import annotations

from pathlib import Path

from orb.data import validate_symbol
from orb.errors import RequestError


def read_symbols_file(path: str | Path) -> tuple[str, ...]:
    """The file's symbols, upper-cased, in file order without repeats.

    RequestError (one line naming the file and line) for a missing or unreadable file, an entry that is
    not a valid symbol, or a file without any symbol."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RequestError(
            f"symbols file {path} not found; pass an existing file to --symbols-file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise RequestError(f"symbols file {path} cannot be read ({reason}); check the file") from None
    symbols: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            symbols.append(validate_symbol(entry))
        except RequestError as exc:
            raise RequestError(f"symbols file {path} line {number}: {exc}") from None
    if not symbols:
        raise RequestError(f"symbols file {path} lists no symbol; put one symbol per line")
    return tuple(dict.fromkeys(symbols))
