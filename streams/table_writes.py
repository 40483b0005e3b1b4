"""A table write Kafka refuses or fails stops the worker before its record's offset is committed.

Faust writes a table's changes to its changelog topic with ``send_soon``
(``Collection.send_changelog``): the record goes into the producer's buffer and ``__setitem__``
returns; nobody waits for Kafka's answer. The buffer hands it to aiokafka, which checks only the
producer's ``max_request_size`` at once (a larger record raises there, and the buffer's task
crashes the worker). Anything Kafka answers later, a record over the changelog topic's
``max.message.bytes``, a delivery timeout after the client's retries while the brokers were out
of reach, a topic the worker may not write, was set on the write's future: Faust logged a
warning (``_on_published error``), asyncio "FutureMessage exception was never retrieved", and
the worker went on. The producer's flush before each offset commit waits for every batch to be
*answered*, not delivered, so the offsets of the records that made the writes were committed: a
restarted worker never reads them again, and its table, restored from the changelog, lacks the
write (on the real Kafka: three mentions committed, ``mention-ids`` changelog empty).

A :class:`TableWrites` (one per app, :func:`table_writes`) holds each changelog write until
Kafka answered. A failed one is logged (``table.write_failed``, with the table, the key, the
record's size and Kafka's error) and counted (``stormvarsel_table_writes_failed_total``), and
stops the worker, as the forwarding stage's ``forward.lost`` does: the producer's flush, which
Faust runs before it commits offsets, raises from then on (``kafka_fixes``), so nothing more is
committed and the records are read again after the restart. Successful writes go on as before.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from streams import metrics
from streams.held_futures import HeldFutures, answer_error
from streams.log_setup import get_logger

log = get_logger(__name__)

#: Seconds :meth:`TableWrites.settle` waits for Kafka's answers before it fails the flush (they
#: have arrived by then: the producer's flush waits for every batch it holds).
SETTLE_TIMEOUT_S = 120.0
#: Characters of a write's key shown in the log (a key is a brand or a mention id).
KEY_SHOWN = 200
#: Attribute on the Faust app: its :class:`TableWrites`.
_WRITES = "_stormvarsel_table_writes"


class TableWriteFailed(RuntimeError):
    """A table's changelog write was not acknowledged: committing would lose it."""


def _shown(key: Any) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes | bytearray) else repr(key)
    return text if len(text) <= KEY_SHOWN else f"{text[:KEY_SHOWN]}..."


def _size(data: Any) -> int:
    return len(data) if isinstance(data, bytes | bytearray) else 0


class TableWrites:
    """The changelog writes of one app's tables that Kafka has not answered yet, and the ones it
    refused (see the module)."""

    def __init__(self, app: Any, *, settle_timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        self._app = app
        self._pending = HeldFutures(settle_timeout_s)
        self._failed: list[str] = []  # what failed, first first
        self._crash: asyncio.Future[Any] | None = None  # the app's crash, once one failed

    @property
    def in_flight(self) -> int:
        """Writes handed to the producer that Kafka has not answered yet."""
        return len(self._pending)

    @property
    def failed(self) -> bool:
        """Whether a write failed: the worker is stopping and commits nothing more."""
        return bool(self._failed)

    def track(self, table: str, future: asyncio.Future[Any]) -> None:
        """Hold ``future`` (Faust's ``FutureMessage`` of a write to ``table``'s changelog)
        until Kafka has answered it."""
        self._pending.hold(future, partial(self._answered, table))

    def _answered(self, table: str, future: asyncio.Future[Any]) -> None:
        error = answer_error(future)
        if error is not None:
            self.fail(table, future, error)

    def fail(self, table: str, future: Any, error: BaseException) -> None:
        """Log and count the write ``future`` to ``table`` as failed with ``error``, and stop the
        worker (once); every :meth:`settle` raises from now on."""
        message = getattr(future, "message", None)
        key = getattr(message, "key", None)
        size = _size(key) + _size(getattr(message, "value", None))
        channel = getattr(message, "channel", None)
        topic = channel.get_topic_name() if channel is not None else None
        why = f"{type(error).__name__}: {error}"
        metrics.TABLE_WRITES_FAILED.labels(table=table).inc()
        log.error(
            "table.write_failed",
            table=table,
            topic=topic,
            partition=getattr(message, "partition", None),
            key=_shown(key),
            bytes=size,
            error=why,
            hint="the worker stops without committing the records it read since; they are read "
            "again when it restarts",
        )
        self._failed.append(f"{table}[{_shown(key)}] ({size:,} bytes to {topic}): {why}")
        if len(self._failed) == 1:
            self._crash = asyncio.ensure_future(self._app.crash(self._error()))

    def _error(self) -> TableWriteFailed:
        return TableWriteFailed(
            f"{len(self._failed)} table write(s) were not acknowledged by Kafka; first: "
            f"{self._failed[0]}"
        )

    def mark(self) -> set[asyncio.Future[Any]]:
        """The writes not answered yet, for :meth:`settle`."""
        return self._pending.mark()

    async def settle(self, marked: set[asyncio.Future[Any]]) -> None:
        """Wait until Kafka has answered the writes in ``marked`` (a :meth:`mark`); raise
        :class:`TableWriteFailed` if one of them, or any write before, failed, or when they are
        not answered within the timeout."""
        if marked:
            late = await self._pending.wait(marked)
            if late:
                raise TableWriteFailed(
                    f"{len(late)} table write(s) were not answered by Kafka within "
                    f"{self._pending.timeout_s:g} s"
                )
            await asyncio.sleep(0)  # the answers' callbacks
        if self._failed:
            raise self._error()


def table_writes(app: Any) -> TableWrites:
    """The app's :class:`TableWrites`, made on first use."""
    writes: TableWrites | None = getattr(app, _WRITES, None)
    if writes is None:
        writes = TableWrites(app)
        setattr(app, _WRITES, writes)
    return writes
