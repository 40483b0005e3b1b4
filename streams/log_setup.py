"""structlog for our own code and for Faust/aiokafka's stdlib logging, through one formatter.

JSON lines when the output is not a terminal (containers, CI, log shippers); readable, coloured
lines on a terminal. ``log_format`` in the settings overrides the choice.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
import time
from typing import Any

import structlog

#: Secrets shorter than this are not looked for (they would blank out ordinary words).
MIN_SECRET_LENGTH = 4
REDACTED = "********"
_secrets: frozenset[str] = frozenset()
_secrets_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Never let ``value`` reach a log line: every formatted line is scrubbed of it.

    The settings register each secret (SASL password, tokens, passwords inside URLs) as soon as
    it is read, so even a third-party library that logs its configuration cannot leak one.
    """
    global _secrets
    if value is None or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets = _secrets | {value}


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``********`` (longest first)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter for every handler, with registered secrets scrubbed from the line
    (message, fields and tracebacks alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RepeatFilter(logging.Filter):
    """Let one of a run of repeated warnings from the Kafka client libraries through every
    ``interval_s``, with how many were held back in ``suppressed``.

    While the brokers are down aiokafka reports every failed retry (tens a second); the first
    line says the brokers are gone, and the worker's own ``kafka.unreachable`` and
    ``kafka.reachable`` events say when the outage began and how long it lasted.

    asyncio's ``socket.accept() out of system resource`` (no file handle left for a new
    connection) is held back the same way: it comes with a traceback for every listening socket
    every second for as long as the handles are gone, tens of megabytes a minute. Its message
    names the socket, so such messages are told apart by their first line only.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka", "kafka"),
        interval_s: float = 30,
        first_lines: tuple[str, ...] = ("socket.accept() out of system resource",),
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval_s = interval_s
        self.first_lines = first_lines
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        template = str(record.msg)
        if record.name.startswith(self.prefixes):
            key = (record.name, record.levelno, template)
        elif template.startswith(self.first_lines):
            key = (record.name, record.levelno, template.split("\n", 1)[0])
        else:
            return True
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (-self.interval_s, 0))
            if now - last < self.interval_s:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # bounded: forget the oldest templates
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                    del self._seen[old]
        if held:
            record.suppressed = held
        return True


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def use_json(log_format: str, stream: Any = None) -> bool:
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    stream = stream if stream is not None else sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def logging_config(level: str = "INFO", log_format: str = "auto") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict routing all stdlib logging through structlog."""
    renderer: Any
    if use_json(log_format):
        renderer = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = []
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": RedactingFormatter,
                "foreign_pre_chain": _SHARED,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *final,
                    renderer,
                ],
            }
        },
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "filters": ["repeats"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # aiokafka is chatty at INFO about every coordinator step.
            "aiokafka": {"level": "WARNING" if level in {"INFO", "DEBUG"} else level},
            "kafka": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO", log_format: str = "auto") -> dict[str, Any]:
    """Configure structlog and stdlib logging; return the dict so Faust's worker can reuse it."""
    config = logging_config(level, log_format)
    logging.config.dictConfig(config)
    # The list is changed in place, not replaced: a logger cached on first use keeps the list it
    # was bound with, so a second set-up (the CLI, then the worker) would not reach it, nor
    # would structlog's capture_logs, which edits the configured list.
    processors = structlog.get_config()["processors"]
    processors[:] = [*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return config


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
