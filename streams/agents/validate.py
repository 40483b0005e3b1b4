"""Validation stage: raw mentions in; valid ones out per brand; everything else accounted for.

Every record read ends in exactly one counted outcome: passed on (once per brand it goes to that
has not had it yet; counted once Kafka has the copy), dead-lettered with a reason, dropped as a
duplicate (every such brand has had it), or counted as naming no configured brand.
Nothing a collector sends can crash the agent: an unexpected error dead-letters the record too.
A send that fails for a reason not the record's (the producer's buffer stayed full, an unknown
topic) is no fault of the record: the worker stops without committing it
(``streams.forwarding.SendFailed``) and reads it again after the restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any

import faust

from streams import metrics
from streams.brand_matching import BrandMatcher
from streams.dedup import Deduplicator
from streams.forwarding import Forwarder, ForwardLost
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection, validate_record
from streams.partition_table import PartitionTable
from streams.routing import route
from streams.topic_limit import TopicLimit

log = get_logger(__name__)


@dataclass(frozen=True)
class ValidateConfig:
    limits: Limits
    dedup_window_ms: int
    partitions: int


class Skipped(Enum):
    """Outcomes that send nothing on: counted, never dead-lettered."""

    UNMATCHED = "unmatched"  # names no configured brand
    DUPLICATE = "duplicate"  # every brand it goes to had its id within the window


@dataclass(frozen=True)
class Passed:
    """A valid mention: one (brand id, record) per brand it concerns, and its event time."""

    records: list[tuple[str, dict[str, Any]]]
    event_ms: int


Outcome = Rejection | Skipped | Passed


@dataclass
class _Progress:
    """How far the handling of one record got, for an error part-way: the de-duplication keys
    of the copies it was to send (None: not known yet), and of those handed on."""

    keys: list[str] | None = None
    handed: set[str] = field(default_factory=set)


def check_mention(
    value: bytes | None,
    partition: int,
    offset: int,
    *,
    limits: Limits,
    matcher: BrandMatcher,
    dedup: Deduplicator,
    generation: object,
    now: datetime | None = None,
) -> Outcome:
    """What the stage does with one record of the mentions topic, without sending anything.

    The agent and ``stormvarsel replay`` both call this, so a replay validates, routes and
    de-duplicates exactly as the live stage did. ``generation`` tells the de-duplicator when
    to re-index its store (the rebalance count); ``now`` is the clock for the future-time check,
    and the arrival time stamped into each passed record as ``received_at_ms`` (see
    :attr:`detectors.events.MentionEvent.clock_ms`).
    """
    now = now or datetime.now(UTC)
    result = validate_record(value, limits=limits, now=now)
    if isinstance(result, Rejection):
        return result
    routed = route(result, matcher)
    if isinstance(routed, Rejection):
        return routed
    if not routed.brands:
        # Before de-duplication: ids of posts about no configured brand are not remembered,
        # so a flood of them costs no memory and no changelog writes.
        return Skipped.UNMATCHED
    dedup.rebuild(generation)
    # Per brand: a listening tool with one query per brand exports the same post once per brand
    # (``brand`` set on each copy); each copy must reach its brand, and only a brand that already
    # had this post is spared a second copy.
    fresh = {
        brand_id
        for brand_id in routed.brands
        if not dedup.is_duplicate(
            dedup_key(brand_id, result.platform, result.id), result.event_ms, partition, offset
        )
    }
    if not fresh:
        return Skipped.DUPLICATE
    received_ms = int(now.timestamp() * 1000)
    records = [(brand_id, record) for brand_id, record in routed.records() if brand_id in fresh]
    for _brand, record in records:
        record["received_at_ms"] = received_ms
    return Passed(records, result.event_ms)


def dedup_key(brand_id: str, platform: str, mention_id: str) -> str:
    """The de-duplication key of one brand's copy of a mention: ``brand/platform:id``.

    Brand ids never contain ``/``, so the brand prefix cannot be confused with an id.
    """
    return f"{brand_id}/{platform}:{mention_id}"


def valid_value(record: dict[str, Any]) -> bytes:
    """The ``mentions.valid`` record value for one brand's copy of a mention."""
    return json.dumps(record, ensure_ascii=False).encode()


def register(
    app: faust.App,
    *,
    source: faust.TopicT,
    valid: faust.TopicT,
    dlq: faust.TopicT,
    matcher: BrandMatcher,
    config: ValidateConfig,
    valid_limit: TopicLimit | None = None,
    dlq_limit: TopicLimit | None = None,
) -> Any:
    """The validation stage. ``valid_limit``: the largest record ``valid`` takes (read from
    Kafka), so that a copy it cannot take is dead-lettered instead of sent."""
    forwarder = Forwarder(app, valid, dlq, stage="validate", limit=valid_limit, dlq_limit=dlq_limit)
    seen = app.Table(
        "mention-ids",
        partitions=config.partitions,
        key_type=str,  # keys and values go through Faust's default json codec
        help="First occurrence [event_ms, partition, offset] of each brand/platform:id, for dedup.",
    )
    dedup = Deduplicator(seen, config.dedup_window_ms)

    reject = forwarder.reject

    async def handle(message: faust.types.Message, progress: _Progress) -> None:
        outcome = check_mention(
            message.value,
            message.partition,
            message.offset,
            limits=config.limits,
            matcher=matcher,
            dedup=dedup,
            generation=app.rebalancing_count,
        )
        if isinstance(outcome, Rejection):
            await reject(message, outcome)
            return
        if outcome is Skipped.UNMATCHED:
            metrics.MENTIONS_UNMATCHED.inc()
            return
        if outcome is Skipped.DUPLICATE:
            metrics.MENTIONS_DUPLICATE.inc()
            log.debug("mention.duplicate", partition=message.partition, offset=message.offset)
            return
        assert isinstance(outcome, Passed)
        keys = [dedup_key(b, str(r["platform"]), str(r["id"])) for b, r in outcome.records]
        progress.keys = keys
        for (brand_id, record), key in zip(outcome.records, keys, strict=True):
            # A copy dead-lettered instead (too large for the topic, refused by Kafka) is
            # forgotten by de-duplication: ingested again once the topic takes it, it must pass.
            # Counted as accepted once Kafka has it.
            await forwarder.forward(
                message,
                key=brand_id.encode(),
                value=valid_value(record),
                timestamp=outcome.event_ms / 1000,
                refused=partial(
                    dedup.forget_key,
                    key,
                    message.partition,
                    message.offset,
                    PartitionTable(seen, message.partition),  # Kafka may answer later
                ),
                delivered=metrics.MENTIONS_ACCEPTED.labels(brand=brand_id).inc,
            )
            progress.handed.add(key)

    def forget_unsent(message: faust.types.Message, progress: _Progress) -> None:
        """Forget the keys the record recorded for copies it did not hand on: its dead letter,
        ingested again, must pass for those brands; a copy already forwarded keeps its key, so
        the mention ingested again is not forwarded to that brand twice."""
        if progress.keys is None:
            dedup.forget(message.partition, message.offset)
            return
        for key in progress.keys:
            if key not in progress.handed:
                dedup.forget_key(key, message.partition, message.offset)

    async def internal_error(message: faust.types.Message, exc: Exception) -> None:
        """Dead-letter the record a bug met; never raises (a letter that fails halts)."""
        why = f"{type(exc).__name__}: {exc}"
        try:
            await reject(message, Rejection("internal_error", why))
        except ForwardLost:
            pass  # the forwarder halted the worker: the record is read again after the restart
        except Exception as failed:  # reject halts on its own failures; a bug of its own
            forwarder.halt(
                message, "not dead-lettered", f"its dead letter failed: {failed!r} (after {why})"
            )

    @app.agent(source, name="stormvarsel.validate")
    async def validate(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            if forwarder.halted:
                continue  # stopping without a commit: read again after the restart
            metrics.MENTIONS.inc()
            progress = _Progress()
            try:
                await handle(message, progress)
            except ForwardLost:
                continue  # a send failed, not for the record: the forwarder halted the worker
            except Exception as exc:  # a bug must not stop the stream or lose the record
                log.exception("mention.internal_error", offset=message.offset)
                try:
                    forget_unsent(message, progress)
                except Exception:  # the letter still goes; ingested again it may be dropped
                    log.exception("mention.dedup_not_forgotten", offset=message.offset)
                await internal_error(message, exc)

    return validate
