"""Dead-letter records: the original bytes, kept whole, with the reason they were refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from streams import metrics
from streams.log_setup import get_logger
from streams.mention import Rejection

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
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Value and headers of the record sent to ``mentions.dlq``.

    The original travels base64-encoded so that any byte sequence, not only valid UTF-8, survives;
    the reason also goes into a header so consumers can filter without parsing the value. An
    original over :data:`ORIGINAL_MAX_BYTES` is cut to that many bytes (``original_truncated``),
    with ``original_size`` and ``original_sha256`` of the whole.
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
        "original_b64": base64.b64encode(original[:ORIGINAL_MAX_BYTES]).decode("ascii"),
        "rejected_at": datetime.now(UTC).isoformat(),
    }
    if len(original) > ORIGINAL_MAX_BYTES:
        record["original_truncated"] = True
        record["original_size"] = len(original)
        record["original_sha256"] = hashlib.sha256(original).hexdigest()
    headers = [("stormvarsel-reason", rejection.reason.encode())]
    return json.dumps(record).encode(), headers


def _letter(message: Any, rejection: Rejection) -> tuple[bytes | None, bytes, Any]:
    """Key, value and headers of the dead letter of a consumed Faust message."""
    value, headers = dead_letter(
        rejection,
        message.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )
    key = message.key
    if key is not None and len(key) > KEY_MAX_BYTES:
        key = None
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


async def send_dead_letter(dlq: Any, message: Any, rejection: Rejection, *, stage: str) -> None:
    """Send a consumed Faust message to the dead-letter topic, counted (by ``stage``: validate,
    score or detect) and logged."""
    key, value, headers = _letter(message, rejection)
    await dlq.send(key=key, value=value, headers=headers)
    _count(message, rejection, stage)


async def publish_dead_letter(
    dlq: Any, message: Any, rejection: Rejection, *, stage: str
) -> asyncio.Future[Any]:
    """:func:`send_dead_letter`, returning the future that carries Kafka's answer (Faust's
    ``send`` returns the client's and leaves this one, whose error nobody would retrieve)."""
    key, value, headers = _letter(message, rejection)
    pending: asyncio.Future[Any] = dlq.as_future_message(key=key, value=value, headers=headers)
    await dlq.publish_message(pending)
    _count(message, rejection, stage)
    return pending
