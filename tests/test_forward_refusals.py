"""A stage's output that Kafka will not take is dead-lettered, never lost (streams/forwarding.py).

Before: the validation stage sent a valid mention on with ``topic.send`` and went on. A
``mentions.valid`` with a lower ``max.message.bytes`` than the record refused it, Faust set the
refusal on a future nobody held (asyncio logged "FutureMessage exception was never retrieved"),
the mention's offset was committed, and the mention was in no topic at all.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from streams.dead_letter import headers_bytes
from streams.forwarding import DeadLetters, Forwarder, ForwardLost, flush_settled
from streams.kafka_local import LocalKafka
from streams.mention import Rejection
from streams.topic_limit import RecordLimit, TopicLimit, batch_bytes
from tests.running_worker import RunningWorker, committed_offset, start_worker, topics_made_first

SMALL_LIMIT = 3000  # max.message.bytes: a mention with a 5,000-character text does not fit
DLQ_LIMIT = 2500  # nor its dead letter (the original in base64, a third larger, and the reason)
NEVER_RETRIEVED = "exception was never retrieved"


def mention(index: int, text: str) -> dict[str, Any]:
    return {
        "id": f"fwd-{index}",
        "platform": "x",
        "created_at": f"2026-11-24T10:{index // 60:02d}:{index % 60:02d}Z",
        "text": text,
        "brand": "nordlys-energi",
    }


def send_mentions(bootstrap: str, topic: str, mentions: list[dict[str, Any]]) -> list[int]:
    """Produce the mentions one by one (each acknowledged before the next); their offsets."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000)
    try:
        offsets = []
        for item in mentions:
            value = json.dumps(item).encode()
            sent = producer.send(topic, key=item["id"].encode(), value=value, partition=0)
            offsets.append(sent.get(timeout=30).offset)
        return offsets
    finally:
        producer.close()


def dead_letters(worker: RunningWorker, expected: int) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in worker.consume("mentions.dlq", expected, timeout_s=60)]


def set_topic_limit(admin: KafkaAdminClient, topic: str, max_bytes: int) -> None:
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(max_bytes)})]
    )


def wait_committed(worker: RunningWorker, through: int, topic: str = "mentions") -> None:
    """Until the worker committed partition 0 of ``topic`` (by default the validation stage's
    source) past ``through``."""
    group = worker.env["STORMVARSEL_APP_ID"]
    worker.wait(
        lambda: committed_offset(worker.bootstrap, group, worker.topic(topic)) > through,
        60,
        f"a commit of {topic}[0] past offset {through}",
    )


def sent_again_is_not_dropped(
    worker: RunningWorker, admin: KafkaAdminClient, item: dict[str, Any]
) -> None:
    """The operator raises ``mentions.valid``'s limit and ingests a dead-lettered mention again
    (docs/mentions.md): it is forwarded, or dead-lettered again while the stage still holds the
    old limit (read once a minute), and never dropped as a duplicate of its own dead-lettered
    copy (the validation stage remembered its id for a day)."""
    set_topic_limit(admin, worker.topic("mentions.valid"), 1_048_588)
    before = len(worker.consume("mentions.dlq", 0, timeout_s=2))
    [offset] = send_mentions(worker.bootstrap, worker.topic("mentions"), [item])

    def arrived() -> bool:
        valid = worker.consume("mentions.valid", 0, timeout_s=2)
        if any(json.loads(r.value)["id"] == item["id"] for r in valid):
            return True
        letters = [json.loads(r.value) for r in worker.consume("mentions.dlq", before, 2)]
        return any(letter["source"]["offset"] == offset for letter in letters)

    worker.wait(arrived, 60, f"{item['id']}, sent again, forwarded or dead-lettered again")


@pytest.mark.integration
def test_a_mention_mentions_valid_cannot_take_is_dead_lettered_with_its_size_and_the_limit(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    limit = {"max.message.bytes": str(SMALL_LIMIT)}
    prefix = topics_made_first(admin, {"mentions.valid": limit}, partitions=3)
    worker = start_worker(kafka, tmp_path, prefix=prefix)
    try:
        small = ["Strømmen er borte igjen"] * 3
        texts = [*small, "strømbrudd " * 500, *(["Kundeservice svarer ikke"] * 3)]
        offsets = send_mentions(
            kafka.bootstrap, worker.topic("mentions"), list(map(mention, range(7), texts))
        )
        forwarded = worker.consume("mentions.valid", 6, timeout_s=60)
        [letter] = dead_letters(worker, 1)
        assert sorted(json.loads(r.value)["id"] for r in forwarded) == [
            f"fwd-{i}" for i in (0, 1, 2, 4, 5, 6)
        ]
        assert letter["reason"] == "too_large_for_topic"
        assert letter["source"]["offset"] == offsets[3]
        assert f"not forwarded to {prefix}mentions.valid" in letter["message"]
        assert f"the limit is {SMALL_LIMIT:,} (max.message.bytes of topic" in letter["message"]
        assert json.loads(base64.b64decode(letter["original_b64"]))["id"] == "fwd-3"
        wait_committed(worker, offsets[-1] - 1)
        assert NEVER_RETRIEVED not in worker.log.read_text()
        sent_again_is_not_dropped(worker, admin, mention(3, texts[3]))
    finally:
        worker.stop()


@pytest.mark.integration
def test_a_limit_lowered_while_the_worker_runs_dead_letters_what_kafka_refuses(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    """The stage read the limit before it was lowered: it sends the large copy, Kafka refuses
    it, and the mention is dead-lettered with Kafka's error; the offsets are still committed."""
    worker = start_worker(kafka, tmp_path)
    try:
        topic = worker.topic("mentions")
        send_mentions(kafka.bootstrap, topic, [mention(0, "Strømmen er borte igjen")])
        worker.consume("mentions.valid", 1, timeout_s=60)  # the limit is read and kept a minute
        set_topic_limit(admin, worker.topic("mentions.valid"), SMALL_LIMIT)
        time.sleep(2)  # the broker applies a topic's new config within a moment
        texts = ["strømbrudd " * 500, "Kundeservice svarer ikke", "strømbrudd " * 600]
        offsets = send_mentions(kafka.bootstrap, topic, list(map(mention, (1, 2, 3), texts)))
        # Every mention is in one place: forwarded, or dead-lettered (the small one too when the
        # producer had batched it with a large one, which Kafka refuses whole).
        passed: list[str] = []
        letters: list[dict[str, Any]] = []
        lettered: list[str] = []

        def accounted() -> bool:
            nonlocal passed, letters, lettered
            letters = dead_letters(worker, 2)
            passed = [json.loads(r.value)["id"] for r in worker.consume("mentions.valid", 1)]
            lettered = [
                json.loads(base64.b64decode(letter["original_b64"]))["id"] for letter in letters
            ]
            return len(passed) + len(lettered) >= 4

        worker.wait(accounted, 90, "every mention forwarded or dead-lettered")
        assert sorted(passed + lettered) == ["fwd-0", "fwd-1", "fwd-2", "fwd-3"]
        assert {"fwd-1", "fwd-3"} <= set(lettered)
        by_offset = {letter["source"]["offset"]: letter for letter in letters}
        assert {offsets[0], offsets[2]} <= set(by_offset)
        # The first refusal makes the stage read the limit again; a copy sent before it came
        # back is refused by Kafka too, one sent after is checked against the new limit.
        reasons = {letter["reason"] for letter in letters}
        assert by_offset[offsets[0]]["reason"] == "refused_by_kafka"
        assert reasons <= {"refused_by_kafka", "too_large_for_topic"}
        refused = by_offset[offsets[0]]
        assert "MessageSizeTooLargeError" in refused["message"]
        wait_committed(worker, offsets[-1] - 1)
        log = worker.log.read_text()
        assert NEVER_RETRIEVED not in log and '"forward.refused"' in log
        assert worker.process.poll() is None
        sent_again_is_not_dropped(worker, admin, mention(1, texts[0]))
    finally:
        worker.stop()


@pytest.mark.integration
def test_dead_letters_are_cut_to_fit_a_dead_letter_topic_with_a_small_limit(
    kafka: LocalKafka, admin: KafkaAdminClient, tmp_path: Path
) -> None:
    """A ``mentions.dlq`` with a lower ``max.message.bytes`` than a dead letter would take: the
    validation stage's letter of a mention too large for ``mentions.valid`` and the detection
    stage's letter of a scored record it cannot read are cut to fit it, and Kafka takes them.
    Before, Kafka refused both: the detection stage's was lost with its offset committed, and
    the validation stage's stopped the worker (the record read again, and refused again, at
    every restart)."""
    prefix = topics_made_first(
        admin,
        {
            "mentions.valid": {"max.message.bytes": str(SMALL_LIMIT)},
            "mentions.dlq": {"max.message.bytes": str(DLQ_LIMIT)},
        },
        partitions={"mentions.valid": 3, "mentions.dlq": 1},
    )
    worker = start_worker(kafka, tmp_path, prefix=prefix)
    try:
        texts = ["Strømmen er borte igjen", "strømbrudd " * 500, "Kundeservice svarer ikke"]
        offsets = send_mentions(
            kafka.bootstrap, worker.topic("mentions"), list(map(mention, range(3), texts))
        )
        unreadable = b"not a scored mention " * 400  # 8,400 bytes, its letter about 11,500
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        try:
            scored = producer.send(
                worker.topic("mentions.scored"),
                key=b"nordlys-energi",
                value=unreadable,
                partition=0,
            )
            scored_offset = scored.get(timeout=30).offset
        finally:
            producer.close()
        by_reason = {letter["reason"]: letter for letter in dead_letters(worker, 2)}
        assert set(by_reason) == {"too_large_for_topic", "unreadable_scored"}
        for letter, raw in (
            (by_reason["too_large_for_topic"], json.dumps(mention(1, texts[1])).encode()),
            (by_reason["unreadable_scored"], unreadable),
        ):
            head = base64.b64decode(letter["original_b64"])
            assert letter["original_truncated"] is True and 0 < len(head) < len(raw)
            assert letter["original_size"] == len(raw)
        assert by_reason["too_large_for_topic"]["source"]["offset"] == offsets[1]
        assert by_reason["unreadable_scored"]["source"]["offset"] == scored_offset
        wait_committed(worker, offsets[-1] - 1)
        wait_committed(worker, scored_offset, topic="mentions.scored")
        log = worker.log.read_text()
        assert NEVER_RETRIEVED not in log and "forward.lost" not in log
        assert worker.process.poll() is None
    finally:
        worker.stop()


class _Destination:
    """Stands in for a Faust topic whose record Kafka answers later (``answer``): the one part
    of a delivery timeout a test can hold (a real one takes the producer's 20 minutes)."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Any]] = []

    def get_topic_name(self) -> str:
        return "t.mentions.valid"

    def as_future_message(self, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    async def publish_message(self, future: asyncio.Future[Any]) -> None:
        return None


class _DeadLetters(_Destination):
    """Kafka takes every dead letter at once."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def get_topic_name(self) -> str:
        return "t.mentions.dlq"

    def as_future_message(self, **fields: Any) -> asyncio.Future[Any]:
        self.sent.append(fields["value"])
        future = super().as_future_message()
        future.set_result(None)
        return future


class _App:
    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)


async def _delivered() -> None:
    """The producer's own flush, which has nothing left to deliver here."""


class _Message:
    topic, partition, offset, key, value, timestamp = "t.mentions", 0, 7, b"k", b"{}", 1.0


def test_settling_waits_for_every_answer_and_fails_on_a_record_neither_sent_nor_dead_lettered() -> (
    None
):
    async def run() -> None:
        app = _App()
        destination, dlq = _Destination(), _DeadLetters()
        forwarder = Forwarder(app, destination, dlq, stage="validate", limit=None)  # type: ignore[arg-type]
        for _ in range(3):
            assert await forwarder.forward(_Message(), key=b"k", value=b"v", timestamp=1.0)  # type: ignore[arg-type]
        settling = asyncio.ensure_future(flush_settled(app, _delivered))
        await asyncio.sleep(0.05)
        assert not settling.done()  # Kafka has not answered: no commit yet
        destination.pending[0].set_result(None)
        destination.pending[1].set_exception(MessageSizeTooLargeError())
        await asyncio.sleep(0.05)
        assert not settling.done()
        destination.pending[2].set_result(None)
        await settling  # all answered; the refused one is dead-lettered
        assert [json.loads(v)["reason"] for v in dlq.sent] == ["refused_by_kafka"]
        assert forwarder.in_flight == 0

        await forwarder.reject(_Message(), Rejection("invalid_json", "not JSON"))  # type: ignore[arg-type]
        assert [json.loads(v)["reason"] for v in dlq.sent][-1] == "invalid_json"
        await flush_settled(app, _delivered)  # a dead letter Kafka has is settled

        assert await forwarder.forward(_Message(), key=b"k", value=b"v", timestamp=1.0)  # type: ignore[arg-type]
        destination.pending[3].set_exception(KafkaTimeoutError())
        with pytest.raises(
            ForwardLost,
            match=r"neither forwarded to t.mentions.valid nor dead-lettered; "
            r"first: t.mentions\[0\]@7: KafkaTimeoutError",
        ):
            await flush_settled(app, _delivered)
        with pytest.raises(ForwardLost):  # and at every flush after it: nothing more is committed
            await flush_settled(app, _delivered)
        await asyncio.sleep(0)
        assert [type(reason) for reason in app.crashed] == [ForwardLost]  # the worker stops

    asyncio.run(run())


def test_a_flush_does_not_wait_for_records_sent_while_it_runs() -> None:
    """A busy stage keeps forwarding while the producer flushes: waiting for those too could hold
    the commit back for as long as mentions keep coming."""

    async def run() -> None:
        app = _App()
        destination = _Destination()
        forwarder = Forwarder(app, destination, _DeadLetters(), stage="score", limit=None)  # type: ignore[arg-type]
        await forwarder.forward(_Message(), key=b"k", value=b"v", timestamp=1.0)  # type: ignore[arg-type]

        async def busy_flush() -> None:
            destination.pending[0].set_result(None)
            await forwarder.forward(_Message(), key=b"k", value=b"v", timestamp=1.0)  # type: ignore[arg-type]

        await asyncio.wait_for(flush_settled(app, busy_flush), timeout=5)
        assert forwarder.in_flight == 1  # the record sent during the flush, for the next one
        assert app.crashed == []

    asyncio.run(run())


def test_settling_gives_up_on_an_answer_that_never_comes() -> None:
    async def run() -> None:
        app = _App()
        destination = _Destination()
        forwarder = Forwarder(
            app, destination, _DeadLetters(), stage="score", limit=None, settle_timeout_s=0.2
        )  # type: ignore[arg-type]
        await forwarder.forward(_Message(), key=None, value=b"v", timestamp=1.0)  # type: ignore[arg-type]
        with pytest.raises(ForwardLost, match=r"were not acknowledged within 0\.2 s"):
            await forwarder.settle()

    asyncio.run(run())


class _RefusingDeadLetters(_Destination):
    """Kafka refuses every dead letter (a dead-letter topic with too small a limit)."""

    def as_future_message(self, **fields: Any) -> asyncio.Future[Any]:
        future = super().as_future_message()
        future.set_exception(MessageSizeTooLargeError())
        return future


def test_a_dead_letter_kafka_refuses_stops_the_worker_before_anything_is_committed() -> None:
    async def run() -> None:
        app = _App()
        forwarder = Forwarder(
            app, _Destination(), _RefusingDeadLetters(), stage="validate", limit=None
        )  # type: ignore[arg-type]
        await forwarder.reject(_Message(), Rejection("invalid_json", "not JSON"))  # type: ignore[arg-type]
        with pytest.raises(ForwardLost, match="its dead letter failed: MessageSizeTooLargeError"):
            await flush_settled(app, _delivered)
        await asyncio.sleep(0)
        assert [type(reason) for reason in app.crashed] == [ForwardLost]

    asyncio.run(run())


class _LimitedDeadLetters(_Destination):
    """A dead-letter topic whose limit was lowered to ``max_bytes`` after it was read: Kafka
    refuses a letter over it as too large."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.sent: list[bytes] = []

    def get_topic_name(self) -> str:
        return "t.mentions.dlq"

    def as_future_message(self, **fields: Any) -> asyncio.Future[Any]:
        future = super().as_future_message()
        size = batch_bytes(fields["key"] or b"", fields["value"]) + headers_bytes(fields["headers"])
        if size > self.max_bytes:
            future.set_exception(MessageSizeTooLargeError())
        else:
            self.sent.append(fields["value"])
            future.set_result(None)
        return future


def test_a_dead_letter_refused_as_too_large_is_cut_to_the_limit_read_again_and_sent_once_more() -> (
    None
):
    async def run() -> None:
        app = _App()
        dlq = _LimitedDeadLetters(4_000)
        reads = [RecordLimit(1_000_000, "first read"), *[RecordLimit(4_000, "read again")] * 2]
        limit = TopicLimit(lambda: reads.pop(0), refresh_s=3600, event="dead_letter")
        letters = DeadLetters(app, dlq, stage="detect", limit=limit)  # type: ignore[arg-type]
        message = _Message()
        message.value = b"x" * 20_000
        await letters.reject(message, Rejection("unreadable_scored", "detect: not JSON"))  # type: ignore[arg-type]
        await flush_settled(app, _delivered)  # waits for the letter sent again
        [sent] = dlq.sent
        letter = json.loads(sent)
        assert letter["original_truncated"] is True and letter["original_size"] == 20_000
        assert 0 < len(base64.b64decode(letter["original_b64"])) < 3_000
        assert app.crashed == [] and len(reads) == 1

        dlq.max_bytes = 500  # lowered again, below any letter: now nothing holds the record
        await letters.reject(message, Rejection("unreadable_scored", "detect: not JSON"))  # type: ignore[arg-type]
        with pytest.raises(
            ForwardLost, match=r"were not dead-lettered; first: t\.mentions\[0\]@7: its dead letter"
        ):
            await flush_settled(app, _delivered)
        await asyncio.sleep(0)
        assert [type(reason) for reason in app.crashed] == [ForwardLost]

    asyncio.run(run())
