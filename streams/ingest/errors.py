"""The errors ``stormvarsel ingest`` raises; the CLI prints each as one line."""

from __future__ import annotations

from streams.errors import StormvarselError


class IngestError(StormvarselError):
    """The input cannot be read or the topic cannot be used; one line for the terminal."""


class InputError(IngestError):
    """The input cannot be read at a line; :func:`run_ingest` puts the file's name before it."""


class OptionError(ValueError):
    """A bad command-line option value; the CLI shows it as a usage error naming the option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message
