"""Dead letters for records as large as Kafka lets a collector write: the dead letter itself must
still fit in a Kafka record, or the record is lost (the producer refused it, the validate agent
crashed on it and was restarted past it)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from streams import dead_letter as dl
from streams.mention import Limits, Rejection, validate_record
from streams.topic_limit import batch_bytes

#: Faust's default producer ``max_request_size``: a larger record is refused by ``send``.
PRODUCER_MAX_REQUEST_SIZE = 1_000_000


@dataclass
class _Message:
    value: bytes
    key: bytes | None
    topic: str = "mentions"
    partition: int = 0
    offset: int = 41
    timestamp: float = 1795511700.0


class _Dlq:
    """Refuses what the producer refuses: a record (key and value) over its request size."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def as_future_message(
        self, *, key: bytes | None, value: bytes, headers: Any
    ) -> asyncio.Future[Any]:
        size = len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers)
        if size > PRODUCER_MAX_REQUEST_SIZE - 200:  # record and batch overhead
            raise RuntimeError(f"MessageSizeTooLargeError: {size} bytes")
        self.sent.append({"key": key, "value": value, "headers": headers})
        return asyncio.get_running_loop().create_future()

    async def publish_message(self, pending: asyncio.Future[Any]) -> None:
        pending.set_result(None)


def _near_kafka_limit_record() -> bytes:
    text = "Nordlys Energi " * 66_000  # about 990 kB: Kafka takes it (message.max.bytes 1 MiB)
    return json.dumps({"id": "1", "text": text, "created_at": 1795511700}).encode()


def test_a_record_near_kafkas_limit_is_dead_lettered_with_its_head_size_and_hash() -> None:
    raw = _near_kafka_limit_record()
    rejection = validate_record(raw, limits=Limits())
    assert isinstance(rejection, Rejection) and rejection.reason == "too_large"
    dlq = _Dlq()
    message = _Message(value=raw, key=b"1")
    asyncio.run(dl.publish_dead_letter(dlq, message, rejection, stage="validate"))

    [sent] = dlq.sent
    record = json.loads(sent["value"])
    assert record["reason"] == "too_large"
    assert record["source"] == {
        "topic": "mentions",
        "partition": 0,
        "offset": 41,
        "timestamp_ms": 1795511700000,
    }
    head = base64.b64decode(record["original_b64"])
    assert head == raw[: len(head)] and len(head) == dl.ORIGINAL_MAX_BYTES
    assert record["original_truncated"] is True
    assert record["original_size"] == len(raw)
    assert record["original_sha256"] == hashlib.sha256(raw).hexdigest()
    assert sent["key"] == b"1"


def test_a_huge_key_is_left_off_the_dead_letter_so_that_it_fits() -> None:
    raw = b'{"id": "1"}' + b" " * 500_000
    dlq = _Dlq()
    message = _Message(value=raw, key=b"k" * 700_000)
    asyncio.run(
        dl.publish_dead_letter(dlq, message, Rejection("too_large", "big"), stage="validate")
    )
    [sent] = dlq.sent
    assert sent["key"] is None
    assert base64.b64decode(json.loads(sent["value"])["original_b64"]) == raw


def test_an_ordinary_original_is_kept_whole_without_the_extra_fields() -> None:
    raw = b'{"id": "x", "text": '
    value, headers = dl.dead_letter(
        Rejection("invalid_json", "cut short"),
        raw,
        topic="mentions",
        partition=1,
        offset=2,
        timestamp_ms=None,
    )
    record = json.loads(value)
    assert base64.b64decode(record["original_b64"]) == raw
    assert "original_truncated" not in record and "original_size" not in record
    assert headers == [("stormvarsel-reason", b"invalid_json")]


def _letter_bytes(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return batch_bytes(key or b"", value) + dl.headers_bytes(headers)


def test_a_dead_letter_is_cut_to_fit_a_dead_letter_topic_with_a_smaller_limit() -> None:
    """A ``mentions.dlq`` whose ``max.message.bytes`` is below what the letter would take: the
    original is cut further (to a prefix, with its size and hash), instead of Kafka refusing the
    letter and the record being lost."""
    raw = json.dumps({"id": "1", "text": "Nordlys Energi " * 2_000}).encode()  # about 30 kB
    message = _Message(value=raw, key=b"nordlys-energi")
    rejection = Rejection("too_large_for_topic", "not forwarded to mentions.valid: too large")
    whole = dl._letter(message, rejection)
    assert _letter_bytes(*whole) > 20_000  # without a limit the original travels whole
    for limit in (20_000, 5_000, 1_500):
        key, value, headers = dl._letter(message, rejection, max_bytes=limit)
        assert limit - 8 <= _letter_bytes(key, value, headers) <= limit
        record = json.loads(value)
        head = base64.b64decode(record["original_b64"])
        assert head == raw[: len(head)] and 0 < len(head) < len(raw)
        assert record["original_truncated"] is True
        assert record["original_size"] == len(raw)
        assert record["original_sha256"] == hashlib.sha256(raw).hexdigest()
        assert record["source"]["offset"] == 41 and record["reason"] == "too_large_for_topic"
        assert key == b"nordlys-energi"


def test_a_dead_letter_that_fits_is_not_cut_and_a_key_too_large_for_the_limit_is_left_off() -> None:
    raw = b'{"id": "1", "text": "Strommen er borte"}'
    key, value, _ = dl._letter(_Message(value=raw, key=b"k"), Rejection("x", "y"), max_bytes=2_000)
    record = json.loads(value)
    assert base64.b64decode(record["original_b64"]) == raw
    assert "original_truncated" not in record and key == b"k"
    key, value, headers = dl._letter(
        _Message(value=raw, key=b"k" * 1_000), Rejection("x", "y"), max_bytes=2_000
    )
    assert key is None and _letter_bytes(key, value, headers) <= 2_000
