"""Forwarding a consumed record to the next topic: a record Kafka will not take is dead-lettered,
never lost.

Faust's ``topic.send`` hands a record to the producer and returns; Kafka answers later. When
Kafka refused the record (say ``mentions.valid`` has a lower ``max.message.bytes`` than the
record), Faust set the refusal on a future that nobody held: asyncio logged "FutureMessage
exception was never retrieved", the source record's offset was committed all the same, and the
mention was gone. A :class:`Forwarder`

- checks the record against the destination's limit first (``streams.topic_limit``: read from
  Kafka, again every minute, and at once after a refusal) and dead-letters a record that cannot
  fit as ``too_large_for_topic``, with its size and the limit, without sending it: a batch the
  broker refuses fails every record in it, not only the large one;
- checks the record's timestamp (the mention's event time, which the stages give their records)
  the same way against the timestamps the destination takes, read with its limit (a topic of
  ``message.timestamp.type`` ``CreateTime`` with ``message.timestamp.before.max.ms`` /
  ``after.max.ms``, or before Kafka 4.0 ``message.timestamp.difference.max.ms``), against the
  worker's clock, and dead-letters one outside them as ``timestamp_outside_topic_range``, with
  its timestamp, the range and the settings, without sending it: Kafka refuses the whole batch
  that holds such a record, its batch-mates with it;
- holds every record it sent until Kafka has answered, and dead-letters one Kafka refused anyway
  as ``refused_by_kafka`` with Kafka's error (the limit or the timestamp range was changed since
  it was read, the broker's clock is not the worker's; records batched with a refused one come
  back refused too). A record refused as too large, or for its timestamp, is sent once more
  when, with the limit and the range read again, it fits alone and its timestamp lies inside the
  range (by :data:`TIMESTAMP_RESEND_MARGIN_MS`): it was refused for its batch (the producer's
  batches are fitted to every limit read, ``streams.kafka_send.fit_batches``). It is
  dead-lettered when Kafka refuses it again, or when it does not fit or lies outside (then with
  what the range or the limit read again says beside Kafka's error);
- sends the stage's own dead letters (:meth:`DeadLetters.reject`; the detect stage, which
  forwards nothing, has a :class:`DeadLetters` alone) the same way, held until Kafka has them,
  each cut to fit the dead-letter topic's own limit (its original shortened; the whole stays at
  its source offset), and cut again and sent once more when Kafka refuses it as too large (the
  limit was lowered since it was read);
- is waited for by the producer's flush, which Faust runs before it commits offsets
  (``kafka_fixes``): the offsets of a record are committed only once its forward was
  acknowledged or its dead letter was. A failure that says nothing against the record (a delivery
  timeout after the client's retries, a send that raised at once because the producer's buffer
  stayed full or the topic is unknown), or a dead letter Kafka refused as well, crashes the
  worker and fails every flush from then on: nothing more is committed, and the records are read
  again after it restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import faust
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faust.exceptions import NotReady, ProducerSendError

from streams.dead_letter import publish_dead_letter
from streams.held_futures import HeldFutures, answer_error
from streams.kafka_send import publish
from streams.log_setup import get_logger
from streams.mention import Rejection
from streams.topic_limit import (
    TIMESTAMP_OUTSIDE_TOPIC_RANGE,
    TOO_LARGE_FOR_TOPIC,
    RecordLimit,
    TopicLimit,
)

log = get_logger(__name__)

#: Kafka's answers that refuse the record itself: sending it again would be refused again.
REFUSED_RECORD_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)
_TOO_LARGE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
#: Kafka's refusals of a batch that a record refused with it may not deserve: sent once more when
#: it fits the limit and the timestamp range read again.
_SEND_AGAIN_ERRORS = (*_TOO_LARGE_ERRORS, InvalidTimestampError)
REFUSED_BY_KAFKA = "refused_by_kafka"
#: The reasons a forwarder dead-letters a record for.
FORWARD_REJECTION_REASONS = (TOO_LARGE_FOR_TOPIC, TIMESTAMP_OUTSIDE_TOPIC_RANGE, REFUSED_BY_KAFKA)
#: How far inside the destination's timestamp range (ms) a record Kafka refused must lie, by the
#: worker's clock, to be sent once more: one at the edge (or beyond a clock skew between the
#: worker and the broker) would be refused again, and take the records batched with it along.
TIMESTAMP_RESEND_MARGIN_MS = 5_000
#: Seconds :meth:`Forwarder.settle` waits for Kafka's answers before it fails the flush.
SETTLE_TIMEOUT_S = 120.0
#: Attribute on the Faust app: the forwarders whose records a flush waits for.
_FORWARDERS = "_stormvarsel_forwarders"


#: What a send raises at once that says nothing against the record (Faust's ``ProducerSendError``
#: for a ``KafkaTimeoutError`` after the producer's buffer stayed full, or an unknown topic; a
#: producer not started or closed): the worker halts rather than dead-letter the record.
SEND_FAULTS: tuple[type[Exception], ...] = (ProducerSendError, KafkaError, NotReady)


class ForwardLost(RuntimeError):
    """A forwarded record was neither delivered nor dead-lettered: committing would lose it."""


class SendFailed(ForwardLost):
    """A send raised at once: the worker is halted (:meth:`DeadLetters.halt`) and the record,
    not committed, is read again after the restart. Raised to the stage, which stops handling
    the record."""


def refusal_of(error: BaseException) -> BaseException | None:
    """Kafka's (or the client's) refusal of the record itself in ``error``, or None: a refusal
    the client raised at once comes wrapped in Faust's ``ProducerSendError``."""
    if isinstance(error, ProducerSendError):
        error = error.__cause__ or error
    return error if isinstance(error, REFUSED_RECORD_ERRORS) else None


def _registered(app: faust.App) -> list[DeadLetters]:
    """The list of forwarders on ``app``, made on first use."""
    registered: list[DeadLetters] | None = getattr(app, _FORWARDERS, None)
    if registered is None:
        registered = []
        setattr(app, _FORWARDERS, registered)
    return registered


#: Attribute on the Faust app: what learns of each completed flush (:class:`FlushWatcher`).
_FLUSH_WATCHERS = "_stormvarsel_flush_watchers"


class FlushWatcher(Protocol):
    """Told when a producer flush begins and when it has completed: what was written before it
    began is then in Kafka (the detection stage's table saves, ``detect_state.FlushClock``)."""

    def flush_started(self) -> int: ...

    def flush_done(self, started: int) -> None: ...


def watch_flushes(app: faust.App, watcher: FlushWatcher) -> None:
    """Tell ``watcher`` of every flush of ``app``'s producer (before each offset commit)."""
    watchers: list[FlushWatcher] | None = getattr(app, _FLUSH_WATCHERS, None)
    if watchers is None:
        watchers = []
        setattr(app, _FLUSH_WATCHERS, watchers)
    watchers.append(watcher)


async def flush_settled(app: Any, flush: Callable[[], Awaitable[None]]) -> None:
    """Run the producer's ``flush``, then wait until every record the app's forwarders had sent
    before it began is acknowledged or dead-lettered (records sent meanwhile are left to the
    next flush, so that a busy stage cannot hold a commit back for ever)."""
    marks = [(forwarder, forwarder.mark()) for forwarder in forwarders_of(app)]
    watchers = list(getattr(app, _FLUSH_WATCHERS, ()) or ())
    started = [watcher.flush_started() for watcher in watchers]
    await flush()
    for watcher, mark in zip(watchers, started, strict=True):
        watcher.flush_done(mark)
    for forwarder, sent in marks:
        await forwarder.settle(sent)


def forwarders_of(app: Any) -> list[DeadLetters]:
    """The forwarders and dead letters registered on ``app``, without registering a list on it."""
    return list(getattr(app, _FORWARDERS, ()) or ())


class DeadLetters:
    """A stage's dead letters, each held until Kafka has it (see the module). ``limit`` is the
    dead-letter topic's record limit: a letter is cut to fit it (its original shortened, as
    :data:`streams.dead_letter.ORIGINAL_MAX_BYTES` shortens one over 600,000 bytes), and a letter
    Kafka refuses as too large is cut to the limit read again and sent once more."""

    def __init__(
        self,
        app: faust.App,
        dlq: faust.TopicT,
        *,
        stage: str,
        limit: TopicLimit | None = None,
        settle_timeout_s: float = SETTLE_TIMEOUT_S,
    ) -> None:
        self._app = app
        self._dlq = dlq
        self._stage = stage
        self._dlq_limit = limit
        self._dlq_name = self._name = dlq.get_topic_name()
        # Records (and dead letters) sent that Kafka has not answered yet.
        self._sent = HeldFutures(settle_timeout_s)
        # Dead letters sent (again) after Kafka's answer, each awaited to its end.
        self._letters = HeldFutures(settle_timeout_s)
        self._lost: list[tuple[str, str]] = []  # (what was not done, where and why)
        self._crash: asyncio.Future[Any] | None = None  # the app's crash, once a record is lost
        _registered(app).append(self)

    @property
    def in_flight(self) -> int:
        """Records sent and not yet answered, and dead letters under way."""
        return len(self._sent) + len(self._letters)

    async def _publish(
        self, message: faust.types.Message, rejection: Rejection, *, count: bool
    ) -> asyncio.Future[Any]:
        limit = await self._dlq_limit.get() if self._dlq_limit is not None else None
        return await publish_dead_letter(
            self._dlq,
            message,
            rejection,
            stage=self._stage,
            max_bytes=None if limit is None else limit.max_bytes,
            count=count,
        )

    async def reject(self, message: faust.types.Message, rejection: Rejection) -> None:
        """Dead-letter the consumed ``message``: its offset is committed once Kafka has the
        dead letter, and a dead letter Kafka refuses stops the worker (nothing holds the record).
        A letter that cannot even be handed to the producer stops it too, and raises
        :class:`SendFailed`."""
        try:
            pending = await self._publish(message, rejection, count=True)
        except Exception as exc:  # whatever it was, nothing holds the record
            why = f"its dead letter failed: {type(exc).__name__}: {exc}"
            self._give_up(message, why, topic=self._dlq_name)
            raise SendFailed(why) from exc
        self._sent.hold(pending, partial(self._lettered, message, rejection))

    def _lettered(
        self, message: faust.types.Message, rejection: Rejection, pending: asyncio.Future[Any]
    ) -> None:
        error = answer_error(pending)
        if isinstance(error, _TOO_LARGE_ERRORS) and self._dlq_limit is not None:
            self._hold(self._letter_again(message, rejection, error))
        elif error is not None:
            why = f"its dead letter failed: {type(error).__name__}: {error}"
            self._give_up(message, why, topic=self._dlq_name)

    def _hold(self, letter: Awaitable[None]) -> None:
        self._letters.hold(asyncio.ensure_future(letter))

    async def _letter_again(
        self, message: faust.types.Message, rejection: Rejection, error: BaseException
    ) -> None:
        """Kafka refused a dead letter as too large: the topic's limit was lowered since it was
        read. Read it again, cut the letter to it, and send it once more."""
        assert self._dlq_limit is not None
        self._dlq_limit.forget()
        self._log_refused("dead_letter.refused", self._dlq_name, message, error)
        await self._letter_held(message, rejection, count=False, again=False)

    async def _letter_held(
        self, message: faust.types.Message, rejection: Rejection, *, count: bool, again: bool
    ) -> None:
        """Send a dead letter and wait for Kafka's answer; cut to fit and sent ``again`` when
        refused as too large; else give up on the record (the worker stops) when refused."""
        try:
            await (await self._publish(message, rejection, count=count))
        except _TOO_LARGE_ERRORS as exc:
            if again and self._dlq_limit is not None:
                await self._letter_again(message, rejection, exc)
            else:
                why = f"its dead letter failed: {type(exc).__name__}: {exc}"
                self._give_up(message, why, topic=self._dlq_name)
        except Exception as exc:  # the dead letter was refused: nothing holds the record
            why = f"its dead letter failed: {type(exc).__name__}: {exc}"
            self._give_up(message, why, topic=self._dlq_name)

    def _log_refused(
        self, event: str, topic: str, message: faust.types.Message, error: BaseException
    ) -> None:
        log.warning(
            event,
            stage=self._stage,
            topic=topic,
            error=f"{type(error).__name__}: {error}",
            source_partition=message.partition,
            source_offset=message.offset,
        )

    def _lost_what(self) -> str:
        return "not dead-lettered"

    def _give_up(self, message: faust.types.Message, why: str, *, topic: str) -> None:
        self.halt(message, self._lost_what(), why, topic=topic)

    def halt(
        self, message: faust.types.Message | None, what: str, why: str, *, topic: str = ""
    ) -> None:
        """Stop the worker without committing anything more: ``message`` (None: something the
        stage did on its own, such as its timer) was ``what`` (e.g. "not dead-lettered")
        because of ``why``, writing to ``topic`` (default: the stage's destination). Every
        flush fails from now on, so its offset is not committed and it is read again when the
        worker restarts."""
        where = (
            "the stage's timer"
            if message is None
            else f"{message.topic}[{message.partition}]@{message.offset}"
        )
        self._lost.append((what, f"{where}: {why}"))
        log.error(
            "forward.lost",
            stage=self._stage,
            topic=topic or self._name,
            error=why,
            lost=what,
            source_partition=None if message is None else message.partition,
            source_offset=None if message is None else message.offset,
            hint="the worker stops without committing it; the record is read again when the "
            "worker restarts",
        )
        if len(self._lost) == 1:
            self._crash = asyncio.ensure_future(self._app.crash(self._lost_error()))

    @property
    def halted(self) -> bool:
        """Whether the worker is stopping because a record was not handled to the end."""
        return bool(self._lost)

    def _lost_error(self) -> ForwardLost:
        what, first = self._lost[0]
        return ForwardLost(
            f"{len(self._lost)} record(s) read by the {self._stage} stage were {what}; "
            f"first: {first}"
        )

    def mark(self) -> set[asyncio.Future[Any]]:
        """The records sent and not yet answered, for :meth:`settle`."""
        return self._sent.mark()

    async def settle(self, sent: set[asyncio.Future[Any]] | None = None) -> None:
        """Wait until the records in ``sent`` (a :meth:`mark`; default: those sent so far) are
        acknowledged or dead-lettered; raise :class:`ForwardLost` when one is neither (and at
        every call after that: nothing may be committed any more)."""
        await self._wait(self._sent, sent, "acknowledged")
        await asyncio.sleep(0)  # the answers' callbacks start the dead letters
        await self._wait(self._letters, None, "dead-lettered")
        if self._lost:
            raise self._lost_error()

    async def _wait(
        self, held: HeldFutures, marked: set[asyncio.Future[Any]] | None, what: str
    ) -> None:
        late = await held.wait(marked)
        if late:
            raise ForwardLost(
                f"{len(late)} record(s) sent by the {self._stage} stage to {self._name} were "
                f"not {what} within {held.timeout_s:g} s"
            )


def _tell(callback: Callable[[], None] | None) -> None:
    """Run a forward's ``refused`` or ``delivered`` callback; a failure of it is logged and must
    not keep the record from its dead letter (already under way)."""
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("forward.callback_failed")


@dataclass(frozen=True)
class _Copy:
    """A record forwarded, kept until Kafka has answered so that it can be sent once more."""

    key: bytes | None
    value: bytes
    timestamp: float
    refused: Callable[[], None] | None
    delivered: Callable[[], None] | None


class Forwarder(DeadLetters):
    """Sends a stage's output records to ``destination`` for the records it consumed, and its
    dead letters to ``dlq`` (see the module). ``limit`` is the destination's record limit
    (None: not checked before sending); ``dlq_limit`` the dead-letter topic's."""

    def __init__(
        self,
        app: faust.App,
        destination: faust.TopicT,
        dlq: faust.TopicT,
        *,
        stage: str,
        limit: TopicLimit | None,
        dlq_limit: TopicLimit | None = None,
        settle_timeout_s: float = SETTLE_TIMEOUT_S,
    ) -> None:
        super().__init__(app, dlq, stage=stage, limit=dlq_limit, settle_timeout_s=settle_timeout_s)
        self._destination = destination
        self._limit = limit
        self._name = destination.get_topic_name()

    def _lost_what(self) -> str:
        return f"neither forwarded to {self._name} nor dead-lettered"

    async def forward(
        self,
        message: faust.types.Message,
        *,
        key: bytes | None,
        value: bytes,
        timestamp: float,
        refused: Callable[[], None] | None = None,
        delivered: Callable[[], None] | None = None,
    ) -> bool:
        """Send ``key``/``value`` (made from the consumed ``message``) to the destination. False
        when it was dead-lettered instead, because the destination cannot take it.
        ``refused`` is called when the record is dead-lettered instead of forwarded: at once
        when the destination's limit refuses it here, or when Kafka refuses it later;
        ``delivered`` once Kafka has acknowledged it. A send that raises at once for a reason
        not the record's halts the worker and raises :class:`SendFailed`."""
        limit = await self._limit.get() if self._limit is not None else None
        if limit is not None and (refusal := _refusal(limit, key, value, timestamp)) is not None:
            why = f"not forwarded to {self._name}: {refusal.message}"
            await self.reject(message, Rejection(refusal.reason, why))
            _tell(refused)
            return False
        copy = _Copy(key, value, timestamp, refused, delivered)
        pending = await self._send(message, copy)
        self._sent.hold(pending, partial(self._answered, message, copy))
        return True

    async def _send(self, message: faust.types.Message, copy: _Copy) -> asyncio.Future[Any]:
        """Hand ``copy`` to the producer. A refusal of the record the client raises at once
        comes back on the future, as Kafka's would; any other failure halts the worker."""
        try:
            return await publish(
                self._destination, key=copy.key, value=copy.value, timestamp=copy.timestamp
            )
        except SEND_FAULTS as exc:
            if (refusal := refusal_of(exc)) is None:
                why = f"{type(exc).__name__}: {exc}"
                self._give_up(message, why, topic=self._name)
                raise SendFailed(why) from exc
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(refusal)
            return refused

    def _answered(
        self, message: faust.types.Message, copy: _Copy, pending: asyncio.Future[Any]
    ) -> None:
        error = answer_error(pending)
        if error is None:
            _tell(copy.delivered)
        elif isinstance(error, _SEND_AGAIN_ERRORS) and self._limit is not None:
            self._hold(self._forward_again(message, copy, error))
        elif isinstance(error, REFUSED_RECORD_ERRORS):
            self._hold(self._dead_letter(message, error))
            _tell(copy.refused)
        else:
            self._give_up(message, f"{type(error).__name__}: {error}", topic=self._name)

    async def _forward_again(
        self, message: faust.types.Message, copy: _Copy, error: BaseException
    ) -> None:
        """Kafka refused the record as too large, or for its timestamp: the topic's limit or its
        timestamp range was changed since it was read, the broker's clock is not the worker's,
        or the record was in a batch with a record Kafka refused. Read the limit and the range
        again (which fits the producer's batches to the limit): a record that fits alone and
        lies inside the range (by :data:`TIMESTAMP_RESEND_MARGIN_MS`) is sent once more, and
        dead-lettered if Kafka refuses it again; any other is dead-lettered."""
        assert self._limit is not None
        self._limit.forget()
        limit = await self._limit.get()
        detail: str | None = None
        if limit is not None:
            refusal = _refusal(limit, copy.key, copy.value, copy.timestamp)
            if refusal is not None:
                detail = refusal.message
            elif not limit.takes_timestamp(copy.timestamp, margin_ms=TIMESTAMP_RESEND_MARGIN_MS):
                assert limit.timestamps is not None
                detail = (
                    f"the record's timestamp lies within {TIMESTAMP_RESEND_MARGIN_MS:,} ms of the "
                    f"edge of the range: {limit.timestamps.describe()}"
                )
        if limit is not None and detail is None:
            self._log_refused("forward.sent_again", self._name, message, error)
            try:
                await (await self._send(message, copy))
            except SendFailed:
                return  # the worker halts
            except REFUSED_RECORD_ERRORS as exc:
                error = exc
            except Exception as exc:  # a delivery timeout: nothing holds the record
                self._give_up(message, f"{type(exc).__name__}: {exc}", topic=self._name)
                return
            else:
                _tell(copy.delivered)
                return
        _tell(copy.refused)
        await self._dead_letter(message, error, detail)

    async def _dead_letter(
        self, message: faust.types.Message, error: BaseException, detail: str | None = None
    ) -> None:
        if isinstance(error, _SEND_AGAIN_ERRORS) and self._limit is not None:
            self._limit.forget()  # the topic's limit or timestamp range changed since read
        why = f"Kafka refused the record forwarded to {self._name}: {type(error).__name__}: {error}"
        if detail is not None:
            why += f"; read again, {detail}"
        self._log_refused("forward.refused", self._name, message, error)
        await self._letter_held(message, Rejection(REFUSED_BY_KAFKA, why), count=True, again=True)


def _refusal(
    limit: RecordLimit, key: bytes | None, value: bytes, timestamp: float
) -> Rejection | None:
    """Why the destination cannot take the record (too large, or dated outside the timestamps it
    takes), or None."""
    return limit.refusal(key or b"", value) or limit.timestamp_refusal(timestamp)
