"""One exception tree; each class carries the process exit code (interfaces.md)."""


class OrbError(Exception):
    """Base of every error the CLI reports as one line (exit code 1)."""

    exit_code = 1


class ConfigError(OrbError):
    """A configuration file or key is invalid."""


class UsageError(OrbError):
    """The command line asks for something impossible (bad dates, symbols, interval)."""


class DataError(OrbError):
    """Bars could not be loaded, or they break the bar contract beyond repair."""


class NoDataError(DataError):
    """A source answered but had no bars for the symbol and range."""


class SourceUnavailableError(DataError):
    """A data source could not be reached (network, rate limit) after retries."""


class OutputError(OrbError):
    """The run folder could not be written."""


class RunInterrupted(OrbError):
    """The user pressed Ctrl-C; nothing half-written is left behind."""

    exit_code = 130
