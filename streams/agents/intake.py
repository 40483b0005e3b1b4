"""Intake stage: read raw mentions, count them, and dead-letter anything that is not a mention."""

from __future__ import annotations

from typing import Any

import faust

from streams import metrics
from streams.dead_letter import dead_letter
from streams.log_setup import get_logger
from streams.validation import Rejection, decode_mention

log = get_logger(__name__)


def register(app: faust.App, source: faust.TopicT, dlq: faust.TopicT) -> Any:
    @app.agent(source, name="stormvarsel.intake")
    async def intake(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            raw = message.value
            metrics.MENTIONS.inc()
            result = decode_mention(raw)
            if isinstance(result, Rejection):
                value, headers = dead_letter(
                    result,
                    raw,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
                )
                await dlq.send(key=message.key, value=value, headers=headers)
                metrics.MENTIONS_REJECTED.labels(reason=result.reason).inc()
                log.info(
                    "mention.rejected",
                    reason=result.reason,
                    detail=result.message,
                    partition=message.partition,
                    offset=message.offset,
                )
                continue
            metrics.MENTIONS_ACCEPTED.inc()
            log.debug("mention.accepted", partition=message.partition, offset=message.offset)

    return intake
