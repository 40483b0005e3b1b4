"""Dead-letter records: the original bytes, kept whole, with the reason they were refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from streams import metrics
from streams.log_setup import get_logger
from streams.mention import Rejection

log = get_logger(__name__)


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
    the reason also goes into a header so consumers can filter without parsing the value.
    """
    record = {
        "reason": rejection.reason,
        "message": rejection.message,
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
        },
        "original_b64": base64.b64encode(raw or b"").decode("ascii"),
        "rejected_at": datetime.now(UTC).isoformat(),
    }
    headers = [("stormvarsel-reason", rejection.reason.encode())]
    return json.dumps(record).encode(), headers


async def send_dead_letter(dlq: Any, message: Any, rejection: Rejection, *, stage: str) -> None:
    """Send a consumed Faust message to the dead-letter topic, counted (by ``stage``: validate,
    score or detect) and logged."""
    value, headers = dead_letter(
        rejection,
        message.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )
    await dlq.send(key=message.key, value=value, headers=headers)
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
