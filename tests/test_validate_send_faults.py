"""The validation stage when a send fails: the real agent (``validate.register``) on stand-ins
for Faust's app, topics and stream.

Before: a send that raised at once (Faust's ``ProducerSendError`` for a ``KafkaTimeoutError``
after the producer's buffer stayed full) was dead-lettered as ``internal_error``, a Stormvarsel
bug, after the mention's first copy had gone on, and de-duplication forgot that copy's key too:
the mention ingested again went to that brand twice. When the dead letter's send raised as well,
the exception left the agent, and Faust acknowledged the record. A copy Kafka refused was
counted as accepted and as rejected; and ``forward.lost`` named the destination when a dead
letter failed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.errors import InvalidTimestampError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from streams.agents import validate
from streams.brand_matching import BrandMatcher
from streams.brands import Brand, OnCall
from streams.forwarding import Forwarder, ForwardLost, flush_settled, refusal_of
from streams.kafka_send import fit_batches
from streams.mention import Limits
from streams.topic_limit import RecordLimit, TopicLimit

#: What a send does: None (Kafka takes it later), an exception (Kafka refuses it later), or
#: raise at once, as Faust's send does.
Policy = Callable[[dict[str, Any]], BaseException | None]
TIMEOUT = ProducerSendError("Error while sending: KafkaTimeoutError()")
MATCHER = BrandMatcher(
    [
        Brand(name="Nordlys Energi", oncall=OnCall(team="c")),
        Brand(name="Telenor", oncall=OnCall(team="c")),
    ]
)


def _raw(mention_id: str, text: str) -> bytes:
    return json.dumps(
        {"id": mention_id, "text": text, "created_at": "2026-11-24T09:15:00Z"}
    ).encode()


BOTH = _raw("1", "Telenor og Nordlys Energi svarer ikke")  # one copy for each brand


class _Table(dict[str, Any]):
    @property
    def data(self) -> _Table:
        return self

    def send_changelog(self, partition: int, key: Any, value: Any, **_: Any) -> None:
        pass


class _App:
    rebalancing_count = 0

    def __init__(self) -> None:
        self.crashed: list[BaseException] = []
        self.table = _Table()

    def Table(self, name: str, **_: Any) -> _Table:  # Faust's name
        return self.table

    def agent(self, source: Any, name: str) -> Callable[[Any], Any]:
        return lambda function: function

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)


class _Topic:
    def __init__(self, name: str, policy: Policy = lambda fields: None) -> None:
        self.name, self.policy = name, policy
        self.sent: list[dict[str, Any]] = []  # handed to the producer
        self.acked: list[dict[str, Any]] = []  # and taken by Kafka

    def get_topic_name(self) -> str:
        return self.name

    def as_future_message(self, **fields: Any) -> Any:
        future: Any = asyncio.get_running_loop().create_future()
        future.fields = fields
        return future

    async def publish_message(self, future: Any) -> None:
        outcome = self.policy(future.fields)  # may raise at once
        self.sent.append(future.fields)
        loop = asyncio.get_running_loop()
        if outcome is None:
            self.acked.append(future.fields)
            loop.call_later(0.01, future.set_result, None)
        else:
            loop.call_later(0.01, future.set_exception, outcome)


@dataclass
class _Message:
    value: bytes | None
    offset: int
    partition: int = 0
    topic: str = "mentions"
    key: bytes | None = None
    timestamp: float = 1795511700.0


@dataclass
class _Event:
    message: _Message


class _Stream:
    def __init__(self, messages: list[_Message]) -> None:
        self.messages = messages

    async def events(self) -> AsyncIterator[_Event]:
        for message in self.messages:
            yield _Event(message)


async def _delivered() -> None:
    """The producer's own flush, which has nothing left to deliver here."""


class _Stage:
    def __init__(self, valid: Policy = lambda f: None, dlq: Policy = lambda f: None) -> None:
        self.app = _App()
        self.valid, self.dlq = _Topic("t.mentions.valid", valid), _Topic("t.mentions.dlq", dlq)
        config = validate.ValidateConfig(Limits(), 86_400_000, 1)
        self.agent = validate.register(
            self.app,  # type: ignore[arg-type]
            source=None,  # type: ignore[arg-type]
            valid=self.valid,  # type: ignore[arg-type]
            dlq=self.dlq,  # type: ignore[arg-type]
            matcher=MATCHER,
            config=config,
        )

    async def run(self, *messages: _Message) -> None:
        await self.agent(_Stream(list(messages)))  # raises if an error leaves the agent

    async def commit(self) -> None:
        """What Faust's flush before a commit does (``kafka_fixes``)."""
        await flush_settled(self.app, _delivered)

    def letters(self) -> list[str]:
        return [json.loads(fields["value"])["reason"] for fields in self.dlq.sent]

    def brands(self) -> list[bytes]:
        return [fields["key"] for fields in self.valid.acked]


def _accepted(brand: str) -> float:
    return REGISTRY.get_sample_value("stormvarsel_mentions_accepted_total", {"brand": brand}) or 0.0


def _refused() -> float:
    labels = {"stage": "validate", "reason": "refused_by_kafka"}
    return REGISTRY.get_sample_value("stormvarsel_mentions_rejected_total", labels) or 0.0


def _second_send_raises() -> Policy:
    sends = [0]

    def policy(fields: dict[str, Any]) -> None:
        sends[0] += 1
        if sends[0] == 2:
            raise TIMEOUT

    return policy


def test_a_copy_the_producer_cannot_take_halts_the_worker_instead_of_a_dead_letter() -> None:
    async def run() -> None:
        stage = _Stage(valid=_second_send_raises())
        with capture_logs() as logs:
            await stage.run(_Message(BOTH, offset=5), _Message(_raw("2", "Telenor svarer ikke"), 6))
        assert stage.letters() == []  # not an internal_error: the record is not at fault
        assert stage.brands() == [b"nordlys-energi"]  # the second record was not handled
        with pytest.raises(ForwardLost, match=r"mentions\[0\]@5: ProducerSendError"):
            await stage.commit()  # nothing is committed: read again after the restart
        await asyncio.sleep(0)
        assert [type(reason) for reason in stage.app.crashed] == [ForwardLost]
        [lost] = [line for line in logs if line["event"] == "forward.lost"]
        assert lost["topic"] == "t.mentions.valid" and lost["source_offset"] == 5
        # Both keys stay recorded at the record's own offset: read again, it is no duplicate
        # of itself, and its first copy is not lost for a mention ingested again meanwhile.
        assert sorted(stage.app.table) == ["nordlys-energi/other:1", "telenor/other:1"]

    asyncio.run(run())


def test_a_failing_send_and_a_failing_dead_letter_do_not_leave_the_agent() -> None:
    def raises(fields: dict[str, Any]) -> None:
        raise TIMEOUT

    async def run() -> None:
        for message in (_Message(BOTH, offset=5), _Message(b"not json", offset=5)):
            stage = _Stage(valid=raises, dlq=raises)
            with capture_logs() as logs:
                await stage.run(message)  # returns: the agent goes on until the worker stops
            with pytest.raises(ForwardLost):
                await stage.commit()
            await asyncio.sleep(0)
            assert [type(reason) for reason in stage.app.crashed] == [ForwardLost]
            [lost] = [line for line in logs if line["event"] == "forward.lost"]
            expected = "t.mentions.valid" if message.value == BOTH else "t.mentions.dlq"
            assert lost["topic"] == expected

    asyncio.run(run())


def test_a_bug_after_a_copy_went_on_forgets_only_the_keys_of_the_copies_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = [0]
    real = validate.valid_value

    def second_copy_fails(record: dict[str, Any]) -> bytes:
        made[0] += 1
        if made[0] == 2:
            raise ValueError("a bug")
        return real(record)

    monkeypatch.setattr(validate, "valid_value", second_copy_fails)

    async def run() -> None:
        stage = _Stage()
        await stage.run(_Message(BOTH, offset=5))
        await stage.commit()
        assert stage.letters() == ["internal_error"]
        assert stage.brands() == [b"nordlys-energi"]
        assert sorted(stage.app.table) == ["nordlys-energi/other:1"]
        # The dead letter ingested again (docs/mentions.md): only the brand without its copy.
        await stage.run(_Message(BOTH, offset=9))
        await stage.commit()
        assert stage.brands() == [b"nordlys-energi", b"telenor"]
        assert stage.app.crashed == []

    asyncio.run(run())


def test_a_copy_is_counted_as_accepted_once_kafka_has_it_and_never_when_refused() -> None:
    async def run() -> None:
        refused_before, accepted_before = _refused(), _accepted("telenor")
        stage = _Stage(valid=lambda fields: MessageSizeTooLargeError())
        await stage.run(_Message(_raw("r", "Telenor svarer ikke"), 5))
        await stage.commit()
        assert stage.letters() == ["refused_by_kafka"]
        assert _refused() == refused_before + 1
        assert _accepted("telenor") == accepted_before  # passed on to no topic

        stage = _Stage()
        await stage.run(_Message(_raw("a", "Telenor svarer ikke"), 6))
        assert _accepted("telenor") == accepted_before  # handed to the producer only
        await stage.commit()
        assert _accepted("telenor") == accepted_before + 1

    asyncio.run(run())


def test_a_dead_letter_kafka_refuses_is_reported_on_the_dead_letter_topic() -> None:
    async def run() -> None:
        stage = _Stage(dlq=lambda fields: MessageSizeTooLargeError())
        with capture_logs() as logs:
            await stage.run(_Message(b"not json", offset=5))
            with pytest.raises(ForwardLost, match="its dead letter failed"):
                await stage.commit()
        [lost] = [line for line in logs if line["event"] == "forward.lost"]
        assert lost["topic"] == "t.mentions.dlq"

    asyncio.run(run())


def test_a_record_refused_with_its_batch_that_fits_the_limit_alone_is_sent_once_more() -> None:
    """Kafka refused a batch as too large (the limit was lowered since it was read): a record
    that fits the limit read again alone goes once more; one that does not is dead-lettered."""

    async def run() -> None:
        app = _App()
        first = [True]

        def batch_refused_once(fields: dict[str, Any]) -> BaseException | None:
            if first[0]:
                first[0] = False
                return MessageSizeTooLargeError()
            return None

        valid, dlq = _Topic("t.mentions.valid", batch_refused_once), _Topic("t.mentions.dlq")
        topic_limit = [3_000]
        limit = TopicLimit(lambda: RecordLimit(topic_limit[0], "max.message.bytes"), 3600)
        forwarder = Forwarder(app, valid, dlq, stage="validate", limit=limit)  # type: ignore[arg-type]
        refused: list[str] = []
        sent = await forwarder.forward(
            _Message(b"{}", 5),  # type: ignore[arg-type]
            key=b"k",
            value=b"v" * 1_000,
            timestamp=1.0,
            refused=lambda: refused.append("refused"),
        )
        assert sent
        await flush_settled(app, _delivered)
        assert len(valid.sent) == 2 and len(valid.acked) == 1
        assert dlq.sent == [] and refused == [] and app.crashed == []

        first[0] = True  # refused as too large again, and now too large alone as well
        await forwarder.forward(
            _Message(b"{}", 6),  # type: ignore[arg-type]
            key=b"k",
            value=b"v" * 1_000,
            timestamp=1.0,
            refused=lambda: refused.append("refused"),
        )
        topic_limit[0] = 500  # lowered again
        await flush_settled(app, _delivered)
        assert [json.loads(f["value"])["reason"] for f in dlq.sent] == ["refused_by_kafka"]
        assert refused == ["refused"] and len(valid.sent) == 3

    asyncio.run(run())


def test_a_record_kafka_refuses_for_its_timestamp_is_dead_lettered_and_reported_refused() -> None:
    """Kafka refusing the record itself (here for its timestamp; no topic limit to read
    again) dead-letters it as ``refused_by_kafka`` and runs the forward's ``refused`` callback
    (validation un-records the copy's key there, so the mention ingested again passes), not
    ``delivered``."""

    async def run() -> None:
        app = _App()
        valid = _Topic("t.mentions.valid", lambda fields: InvalidTimestampError())
        dlq = _Topic("t.mentions.dlq")
        forwarder = Forwarder(app, valid, dlq, stage="validate", limit=None)  # type: ignore[arg-type]
        told: list[str] = []
        sent = await forwarder.forward(
            _Message(b"{}", 7),  # type: ignore[arg-type]
            key=b"k",
            value=b"v",
            timestamp=1.0,
            refused=lambda: told.append("refused"),
            delivered=lambda: told.append("delivered"),
        )
        assert sent  # handed to the producer; Kafka answers later
        await flush_settled(app, _delivered)
        assert told == ["refused"]
        [letter] = [json.loads(fields["value"]) for fields in dlq.sent]
        assert letter["reason"] == "refused_by_kafka"
        assert "InvalidTimestampError" in letter["message"]
        assert valid.acked == [] and app.crashed == []

    asyncio.run(run())


def test_a_refusal_the_client_raised_at_once_is_found_inside_fausts_wrapper() -> None:
    """Faust wraps a send that raised at once in ``ProducerSendError``: the refusal of the
    record is its cause, and that is what is reported (a record-size refusal is dead-lettered
    rather than halting the worker)."""
    cause = MessageSizeTooLargeError()
    try:
        raise ProducerSendError("Error while sending: MessageSizeTooLargeError()") from cause
    except ProducerSendError as wrapped:
        assert refusal_of(wrapped) is cause
    assert refusal_of(TIMEOUT) is None  # a timeout is no refusal of the record
    assert refusal_of(cause) is cause


class _Conf:
    producer_max_batch_size = 16_384


class _Accumulator:
    _batch_size = 16_384


class _Client:
    _message_accumulator = _Accumulator()


class _Producer:
    max_batch_size = 16_384
    _producer = _Client()


class _ProducingApp:
    conf = _Conf()
    producer = _Producer()


def test_the_producers_batches_are_fitted_to_the_smallest_limit_read() -> None:
    app = _ProducingApp()
    assert fit_batches(app, "mentions.valid", 3_000) == 3_000
    assert fit_batches(app, "mentions.dlq", 1_000_000) == 3_000
    assert app.producer._producer._message_accumulator._batch_size == 3_000  # the running one
    assert app.producer.max_batch_size == 3_000  # and one Faust makes later
    assert fit_batches(app, "mentions.valid", 20_000) == 16_384  # raised again: as configured
