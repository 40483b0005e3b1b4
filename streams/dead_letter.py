"""Dead-letter records: the original bytes, kept whole, with the reason they were refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from streams import metrics
from streams.kafka_send import publish
from streams.log_setup import get_logger
from streams.mention import Rejection
from streams.topic_limit import batch_bytes

log = get_logger(__name__)

#: The most bytes of an original a dead letter carries. Base64 makes 4 characters of every 3
#: bytes, and the record must stay under the producer's ``max_request_size`` (1,000,000 bytes in
#: Faust) and the broker's ``message.max.bytes`` (1 MiB): a record read from Kafka can be almost
#: that large, and its dead letter, a third larger, was refused by the producer (the validate
#: agent crashed on it and the record was lost). A larger original is kept in part, with its size
#: and SHA-256; the whole stays at its source topic, partition and offset.
ORIGINAL_MAX_BYTES = 600_000
#: The longest source key a dead letter is keyed by; a longer one (a key of up to 1 MiB reads
#: from Kafka) is left off, so that the key and the value fit in one record together.
KEY_MAX_BYTES = 16 * 1024


def dead_letter(
    rejection: Rejection,
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    original_max_bytes: int = ORIGINAL_MAX_BYTES,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Value and headers of the record sent to ``mentions.dlq``.

    The original travels base64-encoded so that any byte sequence, not only valid UTF-8, survives;
    the reason also goes into a header so consumers can filter without parsing the value. An
    original over ``original_max_bytes`` (:data:`ORIGINAL_MAX_BYTES` unless the dead-letter
    topic takes less) is cut to that many bytes (``original_truncated``), with
    ``original_size`` and ``original_sha256`` of the whole.
    """
    original = raw or b""
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "message": rejection.message,
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
        },
        "original_b64": base64.b64encode(original[:original_max_bytes]).decode("ascii"),
        "rejected_at": datetime.now(UTC).isoformat(),
    }
    if len(original) > original_max_bytes:
        record["original_truncated"] = True
        record["original_size"] = len(original)
        record["original_sha256"] = hashlib.sha256(original).hexdigest()
    headers = [("stormvarsel-reason", rejection.reason.encode())]
    return json.dumps(record).encode(), headers


def headers_bytes(headers: list[tuple[str, bytes]]) -> int:
    """What record headers add to a record in a batch: each header's key and value, their two
    length varints (at most 3 bytes each here), and the header count."""
    return 1 + sum(len(name.encode()) + len(value) + 6 for name, value in headers)


def _letter(
    message: Any, rejection: Rejection, max_bytes: int | None = None
) -> tuple[bytes | None, bytes, Any]:
    """Key, value and headers of the dead letter of a consumed Faust message; with
    ``max_bytes`` (the dead-letter topic's record limit, counted as ``batch_bytes`` counts), the
    original is cut further so that the letter fits it."""
    where = {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp_ms": int(message.timestamp * 1000) if message.timestamp else None,
    }
    key = message.key
    key_max = KEY_MAX_BYTES if max_bytes is None else min(KEY_MAX_BYTES, max_bytes // 8)
    if key is not None and len(key) > key_max:
        key = None
    value, headers = dead_letter(rejection, message.value, **where)
    if max_bytes is None or batch_bytes(key or b"", value) + headers_bytes(headers) <= max_bytes:
        return key, value, headers  # it fits (nearly always): built once
    # The letter without any of the original, as it is when cut: what is left of the limit
    # carries 3 bytes of the original in every 4 base64 characters.
    bare, headers = dead_letter(rejection, message.value, original_max_bytes=0, **where)
    room = max_bytes - batch_bytes(key or b"", bare) - headers_bytes(headers)
    original_max = min(ORIGINAL_MAX_BYTES, max(0, room // 4 * 3))
    value, headers = dead_letter(rejection, message.value, original_max_bytes=original_max, **where)
    return key, value, headers


def _count(message: Any, rejection: Rejection, stage: str) -> None:
    metrics.MENTIONS_REJECTED.labels(stage=stage, reason=rejection.reason).inc()
    log.info(
        "mention.rejected",
        stage=stage,
        reason=rejection.reason,
        detail=rejection.message,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )


async def publish_dead_letter(
    dlq: Any,
    message: Any,
    rejection: Rejection,
    *,
    stage: str,
    max_bytes: int | None = None,
    count: bool = True,
) -> asyncio.Future[Any]:
    """Hand the dead letter of a consumed Faust message to the producer; the future carries
    Kafka's answer (``streams.kafka_send.publish``). ``max_bytes``: the dead-letter topic's
    record limit, which the letter is cut to fit. Counted (by ``stage``: validate, score or
    detect) and logged unless ``count`` is False (a letter sent again)."""
    key, value, headers = _letter(message, rejection, max_bytes)
    pending = await publish(dlq, key=key, value=value, headers=headers)
    if count:
        _count(message, rejection, stage)
    return pending
