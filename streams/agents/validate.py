"""Validation stage: raw mentions in; valid ones out per brand; everything else accounted for.

Every record read ends in exactly one counted outcome: passed on (once per matched brand),
dead-lettered with a reason, dropped as a duplicate, or counted as naming no configured brand.
Nothing a collector sends can crash the agent: an unexpected error dead-letters the record too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import faust

from streams import metrics
from streams.brand_matching import BrandMatcher
from streams.dead_letter import send_dead_letter
from streams.dedup import Deduplicator
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection, validate_record
from streams.routing import route

log = get_logger(__name__)


@dataclass(frozen=True)
class ValidateConfig:
    limits: Limits
    dedup_window_ms: int
    partitions: int


def register(
    app: faust.App,
    *,
    source: faust.TopicT,
    valid: faust.TopicT,
    dlq: faust.TopicT,
    matcher: BrandMatcher,
    config: ValidateConfig,
) -> Any:
    seen = app.Table(
        "mention-ids",
        partitions=config.partitions,
        key_type=str,  # keys and values go through Faust's default json codec
        help="First occurrence [event_ms, partition, offset] of each mention id, for dedup.",
    )
    dedup = Deduplicator(seen, config.dedup_window_ms)

    async def reject(message: faust.types.Message, rejection: Rejection) -> None:
        await send_dead_letter(dlq, message, rejection)

    async def handle(message: faust.types.Message) -> None:
        result = validate_record(message.value, limits=config.limits)
        if isinstance(result, Rejection):
            await reject(message, result)
            return
        routed = route(result, matcher)
        if isinstance(routed, Rejection):
            await reject(message, routed)
            return
        if not routed.brands:
            # Before de-duplication: ids of posts about no configured brand are not remembered,
            # so a flood of them costs no memory and no changelog writes.
            metrics.MENTIONS_UNMATCHED.inc()
            return
        dedup.rebuild(app.rebalancing_count)
        key = f"{result.platform}:{result.id}"
        if dedup.is_duplicate(key, result.event_ms, message.partition, message.offset):
            metrics.MENTIONS_DUPLICATE.inc()
            log.debug("mention.duplicate", partition=message.partition, offset=message.offset)
            return
        for brand_id, record in routed.records():
            await valid.send(
                key=brand_id.encode(),
                value=json.dumps(record, ensure_ascii=False).encode(),
                timestamp=result.event_ms / 1000,
            )
            metrics.MENTIONS_ACCEPTED.labels(brand=brand_id).inc()

    @app.agent(source, name="stormvarsel.validate")
    async def validate(stream: faust.StreamT) -> None:
        async for event in stream.events():
            metrics.MENTIONS.inc()
            try:
                await handle(event.message)
            except Exception as exc:  # a bug must not stop the stream or lose the record
                log.exception("mention.internal_error", offset=event.message.offset)
                await reject(
                    event.message, Rejection("internal_error", f"{type(exc).__name__}: {exc}")
                )

    return validate
