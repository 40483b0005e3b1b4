"""POST /mentions: unit checks of the batch logic, and the endpoint on a real worker."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.partitioner.default import murmur2

from streams.brand_matching import BrandMatcher
from streams.brands import Brand, OnCall
from streams.http_ingest import (
    MAX_ITEMS,
    answer,
    authorised,
    check_batch,
    deliver,
    encoding_problem,
    media_type_problem,
)
from streams.kafka_local import LocalKafka
from streams.mention import Limits
from streams.topic_limit import LIMIT_REFRESH_S, RECORD_BATCH_OVERHEAD, RecordLimit, TopicLimit
from tests.conftest import REPO
from tests.running_worker import RunningWorker, start_worker

MATCHER = BrandMatcher([Brand(name="Nordlys Energi", oncall=OnCall(team="c"))])
TOKEN = "t0ken-for-tests"


def mention(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"h{i}",
        "text": f"Nordlys Energi {i}",
        "created_at": "2026-11-24T10:00:00Z",
        **extra,
    }


def test_batch_of_one_object_or_an_array() -> None:
    one = check_batch(json.dumps(mention(1)).encode(), limits=Limits(), matcher=MATCHER)
    assert [key for key, _, _ in one.records] == [b"h1"] and not one.errors
    many = check_batch(
        json.dumps([mention(i) for i in range(3)]).encode(), limits=Limits(), matcher=MATCHER
    )
    assert len(many.records) == 3 and not many.errors


def test_batch_lists_every_bad_item() -> None:
    body = json.dumps(
        [mention(0), {"id": "x"}, mention(2, brand="Unknown Corp"), mention(3, author=5), 7]
    ).encode()
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert batch.errors == [
        {"index": 1, "reason": "missing_field:text", "message": "the mention has no 'text'"},
        {
            "index": 2,
            "reason": "unknown_brand",
            "message": "brand 'Unknown Corp' is not in the brands file (id, name or alias)",
        },
        {"index": 3, "reason": "bad_type:author", "message": batch.errors[2]["message"]},
        {"index": 4, "reason": "bad_type:mention", "message": "expected a JSON object, got number"},
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff", "not_utf8"),
        (b"{", "invalid_json"),
        (b"[]", "empty"),
        (b"[" * 3000, "invalid_json"),
    ],
)
def test_unparseable_bodies(body: bytes, reason: str) -> None:
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert batch.errors[0]["reason"] == reason and not batch.records


def with_extra(raw: str) -> bytes:
    """A valid mention whose last field is ``raw`` JSON text, as a sender could write it."""
    return json.dumps(mention(1))[:-1].encode() + b', "extra": ' + raw.encode() + b"}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("NaN", "invalid_json"),
        ("-Infinity", "invalid_json"),
        ("1e400", "invalid_json"),  # overflows to Infinity
        ("9" * 5000, "invalid_json"),  # Python's integer digit limit raised ValueError: 500
        ('"\\udc80"', "not_utf8"),  # a lone surrogate could not be encoded: 500
    ],
)
def test_what_the_validate_stage_would_dead_letter_is_refused_at_the_door(
    raw: str, reason: str
) -> None:
    """These were answered 202 (or 500) and then dead-lettered by the worker, unseen by the
    sender: the endpoint promises all or nothing, with the reason."""
    batch = check_batch(with_extra(raw), limits=Limits(), matcher=MATCHER)
    assert [e["reason"] for e in batch.errors] == [reason] and not batch.records
    assert "set_int_max_str_digits" not in batch.errors[0]["message"]


def test_the_documented_batch_limit_is_enforced() -> None:
    assert f"{MAX_ITEMS:,}" in (REPO / "docs" / "mentions.md").read_text()
    body = json.dumps([mention(i) for i in range(MAX_ITEMS + 1)]).encode()
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert [e["reason"] for e in batch.errors] == ["too_many"] and not batch.records


def test_a_huge_integer_time_is_out_of_range_not_a_500() -> None:
    body = b'[{"id": "1", "text": "Nordlys Energi", "created_at": ' + b"9" * 400 + b"}]"
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert [e["reason"] for e in batch.errors] == ["timestamp_out_of_range"] and not batch.records


def test_a_blank_brand_is_matched_from_the_text() -> None:
    body = json.dumps([mention(1, brand=""), mention(2, brand="  ")]).encode()
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert not batch.errors and [key for key, _, _ in batch.records] == [b"h1", b"h2"]


@pytest.mark.parametrize(
    ("content_type", "read"),
    [
        (None, True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/vnd.api+json", True),
        ("application/x-ndjson", False),  # was read, then refused as "Extra data"
        ("application/jsonl", False),
        ("application/json-seq", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
    ],
)
def test_only_json_documents_are_read(content_type: str | None, read: bool) -> None:
    problem = media_type_problem(content_type)
    assert (problem is None) == read
    if problem is not None:
        assert "JSON array" in problem and "application/json" in problem


class FakeKafka:
    """A producer for :func:`deliver`: acknowledges, fails, refuses or never answers by index."""

    def __init__(self, failing: int | None = None, refusing: int | None = None) -> None:
        self.failing, self.refusing = failing, refusing
        self.queued: list[bytes] = []
        self.silent: list[asyncio.Future[Any]] = []

    async def send(self, key: bytes, value: bytes, event_ms: int) -> asyncio.Future[Any]:
        index = len(self.queued)
        if index == self.refusing:
            raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")
        self.queued.append(key)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if index == self.failing:
            future.set_exception(NotLeaderForPartitionError())
        elif self.failing is None and self.refusing is None:
            self.silent.append(future)  # never answered
        else:
            future.set_result(("mentions", 0, index))
        return future


def deliver_batch(kafka: FakeKafka, items: int, timeout_s: float = 5.0) -> tuple[dict, int]:
    body = json.dumps([mention(i) for i in range(items)]).encode()
    batch = check_batch(body, limits=Limits(), matcher=MATCHER)
    assert not batch.errors
    delivery = asyncio.run(deliver(batch.records, kafka.send, timeout_s=timeout_s))
    return answer(delivery, len(batch.records))


def test_kafka_failing_part_way_is_not_answered_as_accepted() -> None:
    """Items 0 and 1 were written when Kafka failed item 2 and refused item 3: the client got a
    500 (or 202, the acknowledgements not awaited) and could not tell what was in."""
    kafka = FakeKafka(failing=2, refusing=3)
    body, status = deliver_batch(kafka, 5)
    assert status == 503
    assert kafka.queued == [b"h0", b"h1", b"h2"]  # nothing is tried after a refusal
    assert body["error"] == "not_confirmed" and body["accepted"] == 2
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (2, "send_failed:NotLeaderForPartitionError"),
        (3, "send_failed:KafkaTimeoutError"),
        (4, "send_failed:KafkaTimeoutError"),
    ]
    assert "Kafka acknowledged 2 of 5 item(s); 3 were not confirmed" in body["message"]
    assert "drops a mention id it has already taken" in body["message"]


def test_an_unanswered_send_is_not_confirmed_after_the_timeout() -> None:
    body, status = deliver_batch(FakeKafka(), 2, timeout_s=0.05)
    assert status == 503 and body["accepted"] == 0
    assert [e["reason"] for e in body["errors"]] == ["send_failed:not_confirmed"] * 2


class FullKafka(FakeKafka):
    """A producer whose batch for the partition is full from the third item on: aiokafka's
    ``send`` then waits for room, for up to its request timeout (20 minutes) while Kafka is
    away."""

    async def send(self, key: bytes, value: bytes, event_ms: int) -> asyncio.Future[Any]:
        if len(self.queued) == 2:
            await asyncio.sleep(3600)
        return await super().send(key, value, event_ms)


def test_a_send_waiting_for_room_is_not_confirmed_within_the_timeout() -> None:
    """The timeout covered only the answers, not handing the items over: the collector waited
    as long as the producer did, its slot held."""
    kafka = FullKafka()

    async def timed() -> tuple[float, tuple[dict[str, Any], int]]:
        body = json.dumps([mention(i) for i in range(4)]).encode()
        batch = check_batch(body, limits=Limits(), matcher=MATCHER)
        started = asyncio.get_running_loop().time()
        delivery = await asyncio.wait_for(deliver(batch.records, kafka.send, timeout_s=0.2), 30)
        return asyncio.get_running_loop().time() - started, answer(delivery, 4)

    took, (body, status) = asyncio.run(timed())
    assert took < 5, took
    assert status == 503 and body["accepted"] == 0
    assert [e["index"] for e in body["errors"]] == [0, 1, 2, 3]
    assert kafka.queued == [b"h0", b"h1"]  # the third was never added


@pytest.mark.parametrize(
    ("encoding", "read"),
    [(None, True), ("identity", True), ("gzip", False), ("deflate", False), ("br", False)],
)
def test_compressed_bodies_are_not_read(encoding: str | None, read: bool) -> None:
    problem = encoding_problem(encoding)
    assert (problem is None) == read
    if problem is not None:
        assert "uncompressed" in problem


def test_a_batch_kafka_acknowledged_whole_is_accepted() -> None:
    assert deliver_batch(FakeKafka(failing=99), 3) == ({"accepted": 3}, 202)


def test_an_item_over_the_topic_limit_is_refused_with_its_size_and_the_limit() -> None:
    limit = RecordLimit(2000, "max.message.bytes of topic 'mentions'")
    items = [mention(0), mention(1, text="Nordlys Energi " + "x" * 2000), mention(2)]
    batch = check_batch(json.dumps(items).encode(), limits=Limits(), matcher=MATCHER)
    assert not batch.errors  # without the topic's limit, only the mention cap applies
    batch = check_batch(
        json.dumps(items).encode(), limits=Limits(), matcher=MATCHER, topic_limit=limit
    )
    [error] = batch.errors
    size = len(json.dumps(items[1]).encode()) + len(b"h1") + RECORD_BATCH_OVERHEAD
    assert error == {
        "index": 1,
        "reason": "too_large_for_topic",
        "message": f"the record takes {size:,} bytes in a Kafka record batch (key and value "
        f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the limit "
        "is 2,000 (max.message.bytes of topic 'mentions')",
    }


class CountingReader:
    def __init__(self, *limits: RecordLimit | Exception) -> None:
        self.answers = list(limits)
        self.reads = 0

    def __call__(self) -> RecordLimit:
        answer = self.answers[min(self.reads, len(self.answers) - 1)]
        self.reads += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_topic_limit_is_read_once_then_again_when_old_or_refused_by_kafka() -> None:
    first, lowered = RecordLimit(50_000, "first"), RecordLimit(600, "lowered")

    async def scenario() -> list[RecordLimit | None]:
        read = CountingReader(first, lowered)
        cache = TopicLimit(read, refresh_s=0.2)
        seen = list(await asyncio.gather(*(cache.get() for _ in range(8))))  # one read
        assert read.reads == 1
        cache.forget()  # Kafka refused an item as too large: read again at the next request
        seen.append(await cache.get())
        assert read.reads == 2
        seen.append(await cache.get())
        await asyncio.sleep(0.25)
        seen.append(await cache.get())
        assert read.reads == 3
        return seen

    assert asyncio.run(scenario()) == [first] * 8 + [lowered] * 3
    assert f"again every {LIMIT_REFRESH_S:g} s" in (REPO / "docs" / "ingest.md").read_text()


def test_an_unreadable_topic_limit_keeps_the_last_one_read() -> None:
    known = RecordLimit(50_000, "known")

    async def scenario() -> list[RecordLimit | None]:
        cache = TopicLimit(CountingReader(OSError("no broker"), known, OSError("gone")), 0.0)
        return [await cache.get() for _ in range(3)]

    assert asyncio.run(scenario()) == [None, known, known]


def test_bearer_token_check() -> None:
    assert authorised(None, None)
    assert authorised(f"Bearer {TOKEN}", TOKEN)
    assert authorised(f"bearer {TOKEN}", TOKEN)
    assert not authorised(None, TOKEN)
    assert not authorised("Bearer wrong", TOKEN)
    assert not authorised(f"Basic {TOKEN}", TOKEN)
    assert not authorised(TOKEN, TOKEN)


@pytest.fixture
def worker(kafka: LocalKafka, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(
        kafka, tmp_path, STORMVARSEL_HTTP_INGEST_TOKEN=TOKEN, STORMVARSEL_HTTP_MAX_BYTES="4096"
    )
    yield running
    running.stop()


def post(
    worker: RunningWorker,
    body: bytes,
    token: str | None = TOKEN,
    content_type: str = "application/json",
    encoding: str | None = None,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{worker.base_url}/mentions", data=body, method="POST")
    request.add_header("Content-Type", content_type)
    if encoding:
        request.add_header("Content-Encoding", encoding)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.integration
def test_endpoint_on_a_real_worker(worker: RunningWorker) -> None:
    code, body = post(worker, json.dumps([mention(i) for i in range(5)]).encode())
    assert (code, body) == (202, {"accepted": 5})
    code, body = post(worker, json.dumps(mention(9)).encode())
    assert (code, body) == (202, {"accepted": 1})

    code, body = post(worker, json.dumps([mention(20), {"id": "bad"}]).encode())
    assert code == 400
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["reason"] == "missing_field:text"

    assert post(worker, json.dumps(mention(30)).encode(), token=None)[0] == 401
    assert post(worker, json.dumps(mention(31)).encode(), token="nope")[0] == 401
    big = json.dumps([mention(i, text="Nordlys Energi " + "x" * 500) for i in range(10)])
    assert post(worker, big.encode())[0] == 413
    assert post(worker, b"id=1", content_type="application/x-www-form-urlencoded")[0] == 415
    lines = json.dumps(mention(32)).encode() + b"\n" + json.dumps(mention(33)).encode()
    code, body = post(worker, lines, content_type="application/x-ndjson")
    assert code == 415 and "JSON array" in body["message"]
    huge = b'{"id": "h34", "text": "Nordlys Energi", "created_at": ' + b"9" * 400 + b"}"
    code, body = post(worker, huge)  # was a bare 500
    assert (code, body["errors"][0]["reason"]) == (400, "timestamp_out_of_range")
    # Compressed bodies are not unpacked (aiohttp did it on the event loop, also for a request
    # refused before its body was read): refused, or dropped after a 401, as they came. A body
    # that is not gzip at all was an aiohttp traceback in the log.
    zipped = gzip.compress(json.dumps(mention(35)).encode())
    code, body = post(worker, zipped, encoding="gzip")
    assert code == 415 and "uncompressed" in body["message"]
    assert post(worker, b"not gzip at all" * 100, token=None, encoding="gzip")[0] == 401
    assert post(worker, b"not gzip at all" * 100, encoding="deflate")[0] == 415
    assert "Unhandled exception" not in worker.log.read_text(errors="replace")

    # Exactly the accepted mentions come out of validation; the refused ones never entered.
    records = worker.consume("mentions.valid", expected=6)
    ids = sorted(json.loads(record.value)["id"] for record in records)
    assert ids == sorted([f"h{i}" for i in range(5)] + ["h9"])
    metrics = worker.metrics()
    assert metrics["stormvarsel_http_ingest_requests_total{code=202}"] == 2
    assert metrics["stormvarsel_http_ingest_requests_total{code=401}"] == 3
    assert metrics["stormvarsel_http_ingest_requests_total{code=400}"] == 2
    assert metrics["stormvarsel_http_ingest_requests_total{code=413}"] == 1
    assert metrics["stormvarsel_http_ingest_requests_total{code=415}"] == 4


def set_max_message_bytes(worker: RunningWorker, topic: str, value: int | None) -> None:
    """Set the topic's limit and wait until the broker applies it: AlterConfigs returns before
    that, and a record sent at once was still judged by the old limit (4 of 100 times, on a
    lone broker; never once the broker's DescribeConfigs showed the new value)."""
    admin = KafkaAdminClient(bootstrap_servers=worker.bootstrap)
    try:
        configs = {"max.message.bytes": str(value)} if value is not None else {}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
        if value is None:
            return
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        deadline = time.monotonic() + 30
        while True:
            described = admin.describe_configs([resource], config_filter="all")
            if described["topic"][topic]["max.message.bytes"]["value"] == str(value):
                return
            assert time.monotonic() < deadline, f"the broker did not apply {configs}"
            time.sleep(0.05)
    finally:
        admin.close()


@pytest.mark.integration
def test_kafka_refusing_part_of_a_batch_on_a_real_worker(worker: RunningWorker) -> None:
    """Kafka refused one item of a valid batch: the endpoint answered 202 {"accepted": 3} (it
    never waited for Kafka), so the sender could not know that item was lost. The answer now
    says which items are in, and sending the batch again is safe. Here the topic's limit was
    lowered after the worker read it; Kafka's refusal makes the worker read it again, so the
    batch sent again is refused whole, naming the new limit, until the item is left out."""
    mentions = worker.topic("mentions")
    assert post(worker, json.dumps(mention(10)).encode()) == (202, {"accepted": 1})
    set_max_message_bytes(worker, mentions, 600)  # the broker refuses the long item, only it
    items = [mention(0), mention(3, text="Nordlys Energi " + "x" * 1000), mention(4)]
    assert {partition_of(item["id"]) for item in items} == {0, 1, 2}  # one batch per item
    code, body = post(worker, json.dumps(items).encode())
    assert code == 503, body  # the worker read the topic's limit before it was lowered
    assert body["error"] == "not_confirmed" and body["accepted"] == 2
    [error] = body["errors"]
    assert error == {
        "index": 1,
        "reason": "send_failed:MessageSizeTooLargeError",
        "message": "[Error 10] MessageSizeTooLargeError",
    }

    code, body = post(worker, json.dumps(items).encode())
    assert code == 413, body
    [error] = body["errors"]
    assert error["index"] == 1 and error["reason"] == "too_large_for_topic"
    assert error["message"].endswith(f"the limit is 600 (max.message.bytes of topic '{mentions}')")
    assert post(worker, json.dumps([items[0], items[2]]).encode()) == (202, {"accepted": 2})
    # The items taken by the first request, sent again, were dropped as duplicates.
    records = worker.consume("mentions.valid", expected=3)
    assert sorted(json.loads(record.value)["id"] for record in records) == ["h0", "h10", "h4"]


@pytest.mark.integration
def test_a_mention_larger_than_the_topic_takes_is_refused_with_its_size_and_the_limit(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """The mentions topic took 50,000 bytes and a valid 60 KB mention (under the 64 KiB mention
    cap) was sent: Kafka refused it with a bare MessageSizeTooLargeError, and the 503 told the
    sender to send again an item that can never fit. It is now refused before anything is sent,
    413 naming its size and the limit, the batch whole as for any refused item; the others, sent
    again without it, and later requests are accepted."""
    worker = start_worker(kafka, tmp_path)
    try:
        mentions = worker.topic("mentions")
        set_max_message_bytes(worker, mentions, 50_000)
        big = mention(1, text="Nordlys Energi " + "x" * 60_000)
        others = [mention(2), mention(6), mention(3)]  # h2 and h6 share h1's partition
        assert partition_of("h2") == partition_of("h6") == partition_of("h1")
        code, body = post(worker, json.dumps([others[0], big, *others[1:]]).encode(), token=None)
        assert code == 413, body
        assert body["error"] == "too_large_for_topic"
        assert "nothing was accepted" in body["message"]
        [error] = body["errors"]
        size = len(json.dumps(big).encode()) + len(b"h1") + RECORD_BATCH_OVERHEAD
        assert error == {
            "index": 1,
            "reason": "too_large_for_topic",
            "message": f"the record takes {size:,} bytes in a Kafka record batch (key and value "
            f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the "
            f"limit is 50,000 (max.message.bytes of topic '{mentions}')",
        }

        assert post(worker, json.dumps(others).encode(), token=None) == (202, {"accepted": 3})
        later = [mention(12), mention(4)]
        assert post(worker, json.dumps(later).encode(), token=None) == (202, {"accepted": 2})
        records = worker.consume("mentions", expected=5)
        assert sorted(record.key for record in records) == [b"h12", b"h2", b"h3", b"h4", b"h6"]
        assert worker.metrics()["stormvarsel_http_ingest_requests_total{code=413}"] == 1
    finally:
        worker.stop()


def partition_of(key: str, partitions: int = 3) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def test_a_batch_is_checked_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MiB, 10,000-item body took ~0.25 s to check on the event loop, stalling everything."""
    import threading
    import time

    from streams import http_ingest

    seen: list[threading.Thread] = []
    real = http_ingest.check_batch

    def slow_check(body: bytes, **kwargs: Any) -> Any:
        seen.append(threading.current_thread())
        time.sleep(0.3)  # as long as a big batch takes
        return real(body, **kwargs)

    monkeypatch.setattr(http_ingest, "check_batch", slow_check)

    async def scenario() -> tuple[Any, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        body = json.dumps([{"id": "1", "text": "x", "created_at": "2026-01-01T00:00:00Z"}])
        batch = await http_ingest.check_off_loop(body.encode(), limits=Limits(), matcher=None)
        ticker.cancel()
        return batch, ticks

    batch, ticks = asyncio.run(scenario())
    assert not batch.errors and len(batch.records) == 1
    assert seen and seen[0] is not threading.main_thread()
    assert ticks >= 10  # the loop went on while the batch was checked
