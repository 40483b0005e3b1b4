"""Futures held until Kafka has answered them, so that a flush can wait for the answers.

The producer answers a record on its future later, and nobody else reads it: a refusal or a
delivery timeout would go unseen, and the offsets of the records behind it would be committed.
The forwarders (``streams.forwarding``) and the tables' changelog writes
(``streams.table_writes``) hold each such future in a :class:`HeldFutures` until it is done, and
the producer's flush before an offset commit waits for the ones held when it began
(:meth:`HeldFutures.mark`, :meth:`HeldFutures.wait`). What to do with an answer, and what to
raise for the ones not answered in time, stays with the holder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

#: What a holder does with a future once it is done (reads Kafka's answer off it).
OnAnswer = Callable[[asyncio.Future[Any]], None]


def answer_error(future: asyncio.Future[Any]) -> BaseException | None:
    """What a done future says went wrong: Kafka's error, ``CancelledError`` when it was
    cancelled (``exception()`` would raise that instead), None when the record was taken."""
    return asyncio.CancelledError() if future.cancelled() else future.exception()


class HeldFutures:
    """The futures held and not done yet; :meth:`wait` gives up after ``timeout_s`` seconds."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._held: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, future: asyncio.Future[Any], on_answer: OnAnswer | None = None) -> None:
        """Hold ``future`` until it is done; then call ``on_answer`` with it, and let it go
        (after ``on_answer``, so that what that starts, a dead letter, is held before it)."""
        self._held.add(future)
        future.add_done_callback(partial(self._answered, on_answer))

    def _answered(self, on_answer: OnAnswer | None, future: asyncio.Future[Any]) -> None:
        try:
            if on_answer is not None:
                on_answer(future)
        finally:
            self._held.discard(future)

    def mark(self) -> set[asyncio.Future[Any]]:
        """The futures held now, for a later :meth:`wait`."""
        return set(self._held)

    async def wait(
        self, futures: Iterable[asyncio.Future[Any]] | None = None
    ) -> set[asyncio.Future[Any]]:
        """Wait until every future in ``futures`` (a :meth:`mark`; None: those held now) is done,
        for :attr:`timeout_s` at the most. Returns the ones still not done (empty when all
        were): the holder fails its flush for them. They are neither cancelled nor let go."""
        waiting = self.mark() if futures is None else set(futures)
        if not waiting:
            return set()
        _, late = await asyncio.wait(waiting, timeout=self.timeout_s)
        return late
