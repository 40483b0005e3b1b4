"""Dead-letter records: the original bytes, kept whole, with the reason they were refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from streams.mention import Rejection


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
