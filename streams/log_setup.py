"""structlog for our own code and for Faust/aiokafka's stdlib logging, through one formatter.

JSON lines when the output is not a terminal (containers, CI, log shippers); readable, coloured
lines on a terminal. ``log_format`` in the settings overrides the choice.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import structlog
from rich.console import Console
from rich.traceback import Trace, Traceback

#: Secrets shorter than this are not looked for (they would blank out ordinary words).
MIN_SECRET_LENGTH = 4
REDACTED = "********"
#: Every registered secret in every form it is looked for (see :func:`written_forms`).
_secrets: frozenset[str] = frozenset()
#: All of ``_secrets`` in one alternation, longest first; None while there are none.
_pattern: re.Pattern[str] | None = None
_secrets_lock = threading.Lock()


def written_forms(secret: str) -> frozenset[str]:
    """``secret`` as it can appear in a finished line: as it is, inside a ``repr`` (which
    escapes ``\\`` and quotes) or ``ascii``, and each of those inside a JSON string, with
    non-ASCII letters escaped (``\\u00e4``, as the JSON renderer writes them) or not."""
    forms = set()
    for text in (secret, repr(secret)[1:-1], ascii(secret)[1:-1]):
        forms.add(text)
        forms.add(json.dumps(text)[1:-1])
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
    return frozenset(forms)


def add_secret(value: str | None) -> None:
    """Never let ``value`` reach a log line: every event and formatted line is scrubbed of it.

    The settings register each secret (SASL password, tokens, passwords inside URLs) as soon as
    it is read, so even a third-party library that logs its configuration cannot leak one.
    """
    global _secrets, _pattern
    if value is None or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets = _secrets | written_forms(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # a longer form wins over its part
        _pattern = re.compile("|".join(map(re.escape, ordered)))


def redact(text: str) -> str:
    """``text`` with every registered secret, in any of its forms, replaced by ``********``."""
    pattern = _pattern
    return text if pattern is None else pattern.sub(REDACTED, text)


#: Values the scrubber leaves as they are: they cannot hold a secret.
_PLAIN = frozenset({int, float, bool, type(None)})


def _scrubbed(value: Any) -> Any:
    """``value`` with every string in it redacted: in dicts, lists and tuples too, and the
    ``repr`` of any other object (which both renderers print) when it holds a secret."""
    kind = type(value)
    if kind is str:
        return redact(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if kind is list or kind is tuple:  # not a named tuple: made from its fields, not a list
        return kind(_scrubbed(item) for item in value)
    if isinstance(value, str):  # a str subclass, an enum.StrEnum: shown as its text
        scrubbed = redact(value)
        return value if scrubbed == value else scrubbed
    shown = repr(value)
    scrubbed = redact(shown)
    return value if scrubbed == shown else scrubbed


def scrub_event(_logger: Any, _method: str, event_dict: Any) -> Any:
    """Processor run right before the renderer: every string in the event, the formatted
    exception included, is scrubbed before the renderer escapes it (JSON writes ``"`` as
    ``\\"`` and ``ä`` as ``\\u00e4``) or cuts it. ``exc_info`` is left to the console
    renderer's exception formatter, :class:`ScrubbedTraceback`.

    It runs on every line, so it returns at once while no secret is registered and changes
    the event in place (the formatter works on a copy of it)."""
    pattern = _pattern
    if pattern is None:
        return event_dict
    for key, value in event_dict.items():
        if type(value) is str:
            event_dict[key] = pattern.sub(REDACTED, value)
        elif type(value) not in _PLAIN and key != "exc_info":
            event_dict[key] = _scrubbed(value)
    return event_dict


@dataclass
class ScrubbedTraceback:
    """Rich tracebacks for the console renderer, without the frames' local variables (rich cut
    their strings at 80 characters, so most of a long token held in a local was shown, out of
    the scrubber's reach), and with the exception messages and source lines scrubbed before
    rich colours and wraps them."""

    color_system: Literal["auto", "standard", "256", "truecolor", "windows"] | None = "truecolor"

    def __call__(self, sio: TextIO, exc_info: Any) -> None:
        trace = Traceback.extract(*exc_info, show_locals=False)
        _scrub_trace(trace)
        sio.write("\n")
        console = Console(file=sio, color_system=self.color_system)
        console.print(Traceback(trace, width=None, word_wrap=True, show_locals=False))


def _scrub_trace(trace: Trace) -> None:
    for stack in trace.stacks:
        stack.exc_value = redact(stack.exc_value)
        if stack.syntax_error is not None:
            stack.syntax_error.msg = redact(stack.syntax_error.msg)
            stack.syntax_error.line = redact(stack.syntax_error.line)
        for frame in stack.frames:
            frame.line = redact(frame.line)
        # Not in every rich release this project allows: notes and exception groups.
        if notes := getattr(stack, "notes", None):
            stack.notes = [redact(note) for note in notes]
        for group in getattr(stack, "exceptions", ()):  # the members of an exception group
            _scrub_trace(group)


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter for every handler, with registered secrets scrubbed from the line
    (message, fields and tracebacks alike): a second pass after :func:`scrub_event`."""

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
        colors = sys.stderr.isatty()
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors,
            exception_formatter=ScrubbedTraceback("truecolor" if colors else None),
        )
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
                    scrub_event,
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
