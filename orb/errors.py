"""One exception tree; each class carries the process exit code (interfaces.md); values in messages are
cut short (`short`, `cut`)."""

SHORT = 60  # characters of a value shown in a message


def short(value: object, limit: int = SHORT) -> str:
    """repr(value), cut to `limit` characters (never format an unbounded value into a message)."""
    if isinstance(value, str | bytes) and len(value) > limit * 4:
        value = value[: limit * 4]  # repr of a 20 MB string is not built just to be cut
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut(text: str) -> str:
    """`text` cut to SHORT characters (for keys and values shown without quotes)."""
    return text if len(text) <= SHORT else text[: SHORT - 3] + "..."


class OrbError(Exception):
    """Base of every error the CLI reports as one line (exit code 1)."""

    exit_code = 1


class ConfigError(OrbError):
    """A configuration file or key is invalid."""


class RequestError(OrbError):
    """The run asks for something no data can answer (dates out of order or without a session, a
    malformed symbol, an unsupported interval or calendar). Exit code 1: argparse's own errors are the
    usage errors (exit 2)."""


class DataError(OrbError):
    """Bars could not be loaded, or they break the bar contract beyond repair."""


class NoDataError(DataError):
    """A source answered but had no bars for the symbol and range."""


class SourceUnavailableError(DataError):
    """A data source could not be reached (network, rate limit) after retries."""


class EmptyUniverseError(DataError):
    """A portfolio run's universe rules select no symbol on any session (strategy.md 10.4-10.5)."""


class OutputError(OrbError):
    """The run folder could not be written."""
