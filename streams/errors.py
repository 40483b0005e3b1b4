"""Errors that reach the user as one readable line (the CLI prints them and exits non-zero)."""


class StormvarselError(Exception):
    """Base for errors whose message is meant for the person at the terminal."""


class ConfigError(StormvarselError):
    """A configuration value or file is invalid; the message names the key and the expected form."""
