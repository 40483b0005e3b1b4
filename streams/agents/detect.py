"""Detection stage: scored mentions in, alert records of storm and buzz episodes out on ``alerts``.

Each partition of ``mentions.scored`` (keyed by brand, so a brand lives on one partition) runs the
pure core's :class:`detectors.replay.Replayer`: the same code, and so the same episodes, as a
replay of the same ordered mentions. Its watermark is the highest event time seen on the partition
minus the allowed lateness; a wall-clock timer moves it on when a partition goes quiet, so a
silent brand still closes its buckets. The timer acts only on partitions the worker owns, and on
none while a rebalance is under way: the state is rebuilt when a rebalance has recovered the
tables (Faust's ``on_rebalance_complete``), so a partition given away is left to its new owner
and a partition taken over closes even if no mention of it arrives. A rebuilt partition's quiet
clock gets back the wall time the partition went unwatched (since its newest save or pending
mention), once the group has committed the end offset the partition had at the rebuild: the
timer then goes on as if the worker had not stopped, and mentions queued during the downtime
still find their buckets open (``detect_state.resume``).

Nothing is lost when a worker dies. Two changelog-backed tables hold the state
(:mod:`streams.agents.detect_state`, which also says why every redelivered record is counted
exactly once):

- ``detector-state``: each brand's detector, written after buckets closed, at most every
  ``save_interval_s`` of wall time (a detector is tens of kilobytes: saving it per mention, or per
  bucket while replaying history at speed, would flood the changelog), and at once after an
  episode change (rare, and the only record a rebuild under another bucket size has of it);
- ``detector-pending``: every mention observed since then, keyed by brand and source offset,
  deleted one save *after* the detector state that includes it.

A restarted worker rebuilds each detector from its saved state and replays the pending mentions
in their original order. Episode ids derive from (brand, episode start), so an episode
re-emitted after a crash updates the same alert instead of paging twice.

Each mention is counted once even though the stages before this one are at-least-once: a worker
killed after validating or scoring a record, but before committing its offset, validates and
scores it again after the restart, so ``mentions.scored`` can hold the same mention twice at two
offsets. A third table, ``detector-ids``, remembers the (brand, platform, id) of the mentions
counted in the last ``COPY_WINDOW_RECORDS`` records of each partition and drops such copies
(``stormvarsel_detect_duplicates``). The window is counted in records, not in event time: a copy
comes from work redone from the last committed offset, so it follows its original within a few
commit intervals of records, however much event time those span (a backlog caught up at speed
spans days in seconds, and a copy then came after its original's id had expired).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.types import TP

from detectors.alerting import BrandVoice, build_alert, default_voice
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent, Output, canonical_json
from detectors.events import MentionEvent
from detectors.replay import Seed
from streams import encoded_values, metrics
from streams.agents import detect_brands, detect_source, detect_state
from streams.agents.detect_state import Disposition, PartitionState
from streams.dedup import Deduplicator
from streams.errors import StormvarselError
from streams.forwarding import DeadLetters, watch_flushes
from streams.kafka_send import publish
from streams.log_setup import get_logger
from streams.mention import Rejection
from streams.partition_table import PartitionTable
from streams.topic_limit import TopicLimit

log = get_logger(__name__)


@dataclass(frozen=True)
class DetectConfig:
    detector: DetectorConfig
    lateness_ms: int
    idle_close_s: float
    partitions: int
    save_interval_s: float = 5.0
    #: Records of a partition within which a mention (brand, platform, id) seen again is a copy
    #: written by an upstream stage that was redone after a crash; 0 turns this off.
    copy_window_records: int = 0
    #: Brand id -> how its statement drafts speak; brands missing here get a default voice.
    voices: dict[str, BrandVoice] = field(default_factory=dict)
    #: Whether the stages before this one have caught up (blocking; see streams.upstream):
    #: the wall-clock timer closes nothing while they have not. None: always.
    upstream_caught_up: Callable[[], bool] | None = None
    #: How far the group has gone through the source's partitions (their committed offsets;
    #: blocking; None: not known): a rebuilt partition's quiet clock gets back the time the
    #: worker was down only once the stage has read what the partition held at the rebuild
    #: (``detect_state.resume``). None: never.
    source_read_to: Callable[[list[int]], Mapping[int, int] | None] | None = None
    #: Brands' detectors carried over from before the topics grew (streams.detector_seeds),
    #: for brands that have no saved state yet.
    seed: Seed | None = None
    #: The brands file's brand ids: the tables' other brands are named in an error after a
    #: rebuild (``detect_brands``). None: no brands file.
    followed: frozenset[str] | None = None


def timer_interval(idle_close_s: float) -> float:
    """How often the wall-clock timer looks for quiet partitions."""
    return max(1.0, idle_close_s / 4)


def alert_record(event: EpisodeEvent, voices: Mapping[str, BrandVoice]) -> dict[str, Any]:
    """The ``alerts`` record of one episode change, in the brand's voice (a default voice for
    brands missing from ``voices``). Shared with ``stormvarsel replay``."""
    brand = str(event.episode.get("brand"))
    return build_alert(event.to_dict(), voices.get(brand) or default_voice(brand))


def parse_scored(value: bytes) -> tuple[dict[str, Any], MentionEvent]:
    """A ``mentions.scored`` record and its detector input; raises ValueError, TypeError or
    KeyError for a record the stage cannot read. Shared with ``stormvarsel replay``."""
    record = json.loads(value)
    if not isinstance(record, dict):
        raise ValueError(f"a scored mention is a JSON object, not {type(record).__name__}")
    return record, MentionEvent.from_record(record)


class AbandonedSender:
    """Sends the ``abandoned`` events of the detector states a rebuild dropped, and keeps those
    it could not send to try again with the next record or timer tick. Once the dropped
    states' markers are saved, no later rebuild would make them again: an ``abandoned`` lost
    here would leave its storm's page firing until Alertmanager expires it."""

    def __init__(self, emit: Callable[[list[Output]], Awaitable[None]]) -> None:
        self.emit = emit
        self.unsent: list[Output] = []

    async def send(self, outputs: Sequence[Output] = ()) -> None:
        """Send ``outputs`` after any left from before. Never raises: it is also called from
        Faust's rebalance signal, which passes exceptions on into its recovery."""
        batch = [*self.unsent, *outputs]
        if not batch:
            return
        try:
            await self.emit(batch)
        except Exception:
            self.unsent = batch
            log.exception("detect.abandoned_not_sent", events=len(batch))
            return
        if self.unsent:
            log.info("detect.abandoned_sent_late", events=len(batch))
        self.unsent = []


#: Ids the detect stage keeps per partition to recognise copies (about 18 MB per partition).
#: Copies follow their originals within the upstream stages' uncommitted work (a few commit
#: intervals: the chaos tests saw up to 3,200 records), so this is a wide margin.
COPY_WINDOW_RECORDS = 50_000


def is_copy(
    dedup: Deduplicator,
    mention: MentionEvent,
    partition: int,
    offset: int,
    generation: object,
) -> bool:
    """Whether a scored mention is a copy of one already counted: the same (brand, platform, id)
    at another offset, within the window of ``dedup`` (records of the partition: see
    ``COPY_WINDOW_RECORDS``). Shared with ``stormvarsel replay``."""
    if not mention.mention_id:
        return False
    dedup.rebuild(generation)
    identity = f"{mention.brand}|{mention.platform}:{mention.mention_id}"
    return dedup.is_duplicate(identity, offset, partition, offset)


def sender(
    alerts: faust.TopicT, voices: Mapping[str, BrandVoice]
) -> Callable[[list[Output]], Awaitable[None]]:
    """The stage's ``emit``: alert records of the episode changes to ``alerts``, metrics of the
    closed buckets."""

    async def emit(outputs: list[Output]) -> None:
        """Send the alert records of the episode changes and return once Kafka has them all
        (``producer_acks=-1``): the tables written after this cover them (``settle``). An
        episode change is counted and logged once Kafka has its record: one it refused is sent
        again by the restarted worker (``halt``), and would otherwise count twice."""
        deliveries: list[asyncio.Future[Any]] = []
        sent: list[tuple[EpisodeEvent, dict[str, Any]]] = []
        for output in outputs:
            if isinstance(output, EpisodeEvent):
                alert = alert_record(output, voices)
                delivery = await publish(
                    alerts,
                    key=str(output.episode.get("brand")).encode(),
                    value=canonical_json(alert).encode(),
                    timestamp=output.at_ms / 1000,
                )
                deliveries.append(delivery)
                sent.append((output, alert))
            else:
                metrics.BUCKETS_CLOSED.inc()
                metrics.record_bucket(output.to_dict())
        # Every answer is read, a refusal after the first one too.
        await asyncio.gather(*deliveries)
        for output, alert in sent:
            brand = str(output.episode.get("brand"))
            metrics.STORM_EPISODE_EVENTS.labels(
                brand=metrics.brand_label(brand) or "other",
                kind=str(alert["kind"]),
                type=str(output.type),
                severity=str(alert["severity"]),
            ).inc()
            metrics.EVENT_LAG_SECONDS.labels(stage="alerted").observe(
                max(0.0, time.time() - output.at_ms / 1000)
            )
            log.info(
                "episode." + str(output.type),
                brand=brand,
                kind=alert["kind"],
                severity=alert["severity"],
                alert_id=alert["alert_id"],
            )

    return emit


def admit(
    state: PartitionState,
    dedup: Deduplicator,
    mention: MentionEvent,
    partition: int,
    offset: int,
    generation: object,
) -> Disposition | None:
    """How the stage takes a record of its partition (TICK or FEED), or None to leave it: in the
    detectors already, or a copy."""
    kind = detect_state.disposition(state, mention.brand, offset)
    if kind is Disposition.SKIP:
        metrics.DETECT_REDELIVERED.inc()
        if offset in state.replayed:
            # Counted before the restart (the rebuild replayed it). Its identity is recorded
            # again: the kill may have lost that write of the ids table (flushed apart from the
            # others), and a copy the redone upstream stages wrote would be counted twice.
            is_copy(dedup, mention, partition, offset, generation)
        return None
    if is_copy(dedup, mention, partition, offset, generation):
        metrics.DETECT_DUPLICATES.inc()
        return None
    if kind is Disposition.TICK:
        metrics.DETECT_REDELIVERED.inc()  # counted in its brand's saved state
    return kind


def assigned_partitions(app: faust.App, topic: str) -> set[int]:
    """This worker's partitions of ``topic``, as its consumer has them now."""
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


def timer_partitions(app: faust.App, topic: str) -> set[int]:
    """The partitions of ``topic`` whose buckets the wall-clock timer may close: the assigned
    ones, and none while a rebalance is under way (from the revocation until the tables are
    recovered and the state rebuilt from them). A partition given away is its new owner's to
    close: the old owner's timer would resolve, under the same alert id, a storm the new owner
    still sees."""
    if app.rebalancing:
        return set()
    return assigned_partitions(app, topic)


def register(
    app: faust.App,
    *,
    source: faust.TopicT,
    alerts: faust.TopicT,
    dlq: faust.TopicT,
    config: DetectConfig,
    dlq_limit: TopicLimit | None = None,
) -> Any:
    """The detection stage. ``dlq_limit``: the dead-letter topic's record limit (read from
    Kafka), which its dead letters are cut to fit."""
    letters = DeadLetters(app, dlq, stage="detect", limit=dlq_limit)
    #: Which saves Kafka has: their pending entries may go (detect_state.FlushClock).
    clock = detect_state.FlushClock()
    watch_flushes(app, clock)
    states = app.Table(
        "detector-state",
        partitions=config.partitions,
        key_type=str,
        help="Each brand's detector state, saved when its buckets close.",
    )
    encoded_values.use_for(states)
    pending = app.Table(
        "detector-pending",
        partitions=config.partitions,
        key_type=str,
        help="Scored mentions observed since the brand's state was last saved.",
    )
    ids = app.Table(
        "detector-ids",
        partitions=config.partitions,
        key_type=str,
        help="First [offset, partition, offset] of each counted mention, to drop copies.",
    )
    dedup = Deduplicator(ids, config.copy_window_records)
    partitions: dict[int, PartitionState] = {}
    #: Partitions whose first record since the last rebuild has not arrived yet.
    resuming: set[int] = set()
    generation: list[object] = [None]

    def rebuild() -> list[Output]:
        """After start-up or a rebalance: detectors from saved state plus pending mentions.
        Returns the ``abandoned`` events of the states that could not continue, to be sent.

        Only for the partitions this worker owns now: the tables also hold standby copies of
        other workers' partitions, which are not this worker's to count or to report."""
        owned = assigned_partitions(app, source.get_topic_name())
        partitions.clear()
        partitions.update(
            detect_state.rebuild(
                list(states.items()),
                list(pending.items()),
                owned,
                config.detector,
                config.lateness_ms,
                config.seed,
            )
        )
        resuming.clear()
        resuming.update(partitions)
        metrics.forget_brands(b for s in partitions.values() for b in s.replayer.detectors)
        for state in partitions.values():
            for brand, detector in state.replayer.detectors.items():
                metrics.set_brand_gauge(metrics.BRAND_COUNTED, brand, detector.observed_total)
        log.info(
            "detect.rebuilt",
            partitions=sorted(partitions),
            brands=sum(len(s.replayer.detectors) for s in partitions.values()),
        )
        abandoned: list[Output] = []
        for state in partitions.values():
            abandoned.extend(state.abandoned)
            state.abandoned = []
        if config.followed is not None:
            detect_brands.unfollowed(partitions, config.followed)
        return abandoned

    #: Why the stage refused its tables (``detect_source``): it counts nothing more.
    refused: list[str] = []

    async def check_source() -> None:
        """Refuse tables written from another topic than the one read now (the worker stops,
        saying what to do): counting on would skip or only tick its new mentions."""
        topic = source.get_topic_name()
        tps = [TP(topic, part) for part in partitions]
        try:
            ends = await asyncio.wait_for(app.consumer.highwaters(*tps), 15) if tps else {}
        except Exception as exc:  # the offsets' check only: Kafka reports trouble elsewhere
            log.warning("detect.source_unchecked", error=f"{type(exc).__name__}: {exc}")
            ends = {}
        by_partition = {tp.partition: end for tp, end in ends.items()}
        for part, state in partitions.items():
            # What the stage must read before the downtime counts (``detect_state.resume``).
            if state.unwatched_s > 0 and state.resume_at is None and part in by_partition:
                state.resume_at = by_partition[part]
        problem = detect_source.foreign_tables(
            topic, list(states.items()), partitions, by_partition
        )
        if problem is None or refused:
            return
        refused.append(problem)
        partitions.clear()
        log.error("detect.source_changed", topic=topic, error=problem)
        await app.crash(StormvarselError(problem))

    async def on_recovered(sender: Any, *_args: Any, signal: Any = None, **_kwargs: Any) -> None:
        # Rebuilt as soon as the tables are recovered, not on the new generation's first event:
        # until then the timer would close the partitions given away (their new owner's) and
        # have no state for those taken over (a quiet brand there would never close). The
        # agent then finds the generation current and does not rebuild again.
        generation[0] = app.consumer_generation_id
        abandoned = rebuild()
        await check_source()
        if not refused:
            await send_abandoned(abandoned)

    # Kept strongly referenced by the signal (the default); typed loosely for mode's union.
    app.on_rebalance_complete.connect(cast(Any, on_recovered))

    emit = sender(alerts, config.voices)
    abandoned_sender = AbandonedSender(emit)
    send_abandoned = abandoned_sender.send

    def halt(message: faust.types.Message | None, exc: Exception) -> None:
        """Kafka did not take an episode change's alert record (a delivery timeout after the
        client's retries; a record over the topic's limit). The detector has counted what led
        to it, and saving that would make the change for good a change nobody was told of:
        the stage stops here, like a kill, with nothing more saved or committed, and the
        restarted worker counts the record again and sends the alert then."""
        letters.halt(
            message,
            f"counted, but the alert records of what they changed were not written to "
            f"{alerts.get_topic_name()}",
            f"{type(exc).__name__}: {exc}",
            topic=alerts.get_topic_name(),
        )

    @app.agent(source, name="stormvarsel.detect")
    async def detect(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if letters.halted or refused:
                continue  # the worker is stopping: nothing more is counted, saved or committed
            # The group generation, not Faust's rebalance count: that one changes when a
            # rebalance starts, and a rebuild then would read the tables before the recovery
            # of newly assigned partitions (stale standby copies), and never again. Events of
            # a new generation arrive only once its tables are recovered. ``on_recovered``
            # has rebuilt by then; this is a fallback.
            if generation[0] != app.consumer_generation_id:
                generation[0] = app.consumer_generation_id
                abandoned = rebuild()
                await check_source()
                if refused:
                    continue
                await send_abandoned(abandoned)
            elif abandoned_sender.unsent:
                await send_abandoned()
            message = event.message
            try:
                record, mention = parse_scored(message.value)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("detect.unreadable", offset=message.offset, error=str(exc))
                await letters.reject(message, Rejection("unreadable_scored", f"detect: {exc}"))
                continue
            part = message.partition
            state = partitions.get(part)
            if part in resuming and state is not None:
                # Where Kafka resumed against what the tables held: a first offset beyond the
                # replayed ones plus one means records were acknowledged but never counted.
                resuming.discard(part)
                log.info(
                    "detect.resumed",
                    partition=part,
                    first_offset=message.offset,
                    replayed_to=state.high_offset,
                    saved_offsets=sorted(set(state.saved_offset.values())),
                )
            if state is None:
                state = partitions[part] = detect_state.fresh(
                    config.detector, config.lateness_ms, config.seed
                )
            kind = admit(state, dedup, mention, part, message.offset, generation[0])
            if kind is None:
                continue
            try:
                outputs = detect_state.count(state, kind, message.offset, mention)
            except Exception as exc:
                # Faust acknowledges a record even if the agent fails on it (and restarts the
                # agent on the same state): keep the record, with the reason, and go on.
                log.exception("detect.internal_error", partition=part, offset=message.offset)
                detect_state.forget(state, mention.brand, message.offset, pending)
                dedup.forget(part, message.offset)
                recovered = detect_state.recover(
                    part, states, pending, config.detector, config.lateness_ms, config.seed
                )
                partitions.pop(part, None)
                if recovered is not None:
                    recovered.abandoned = []  # sent when the partition was first rebuilt
                    partitions[part] = recovered
                await letters.reject(
                    message, Rejection("internal_error", f"detect: {type(exc).__name__}: {exc}")
                )
                continue
            metrics.set_brand_gauge(
                metrics.BRAND_COUNTED,
                mention.brand,
                state.replayer.detectors[mention.brand].observed_total,
            )
            # The alert records first, durably; then the tables that cover them.
            try:
                await detect_state.settle(
                    state, kind, message.offset, record, mention, outputs, pending, part, emit
                )
            except Exception as exc:
                halt(message, exc)
                continue
            now = time.monotonic()
            if detect_state.may_save(state, now, config.save_interval_s):
                detect_state.save(part, state, states, pending, clock, source.get_topic_name())
                state.dirty = False
                state.last_save = now

    held_since: list[float | None] = [None]

    @app.timer(interval=timer_interval(config.idle_close_s))
    async def close_quiet_partitions() -> None:
        # Wall-clock closing for brands that went quiet, on owned partitions only. Results are
        # emitted now, and the state saved once Kafka has them (save_quiet).
        if letters.halted or refused:
            return
        topic = source.get_topic_name()
        if abandoned_sender.unsent:
            await send_abandoned()
        await resume_clocks(topic)
        now = time.monotonic()
        owned = timer_partitions(app, topic)
        quiet = [
            part
            for part, state in list(partitions.items())
            if part in owned
            and detect_state.idle_boundary(state, now, config.idle_close_s, config.lateness_ms)
            is not None
        ]
        check = config.upstream_caught_up
        if quiet and check is not None and not await asyncio.to_thread(check):
            # Its mentions may be stuck upstream: closing now would make them late.
            metrics.DETECT_TIMER_HELD.inc()
            metrics.DETECT_TIMER_HOLDING.set(1)
            if held_since[0] is None:
                held_since[0] = now
                log.info("detect.timer_held", partitions=sorted(quiet))
            return
        # Nothing held back: no partition is quiet (mentions flow again), or upstream caught up.
        metrics.DETECT_TIMER_HOLDING.set(0)
        if held_since[0] is not None:
            log.info("detect.timer_released", held_s=round(now - held_since[0], 1))
            held_since[0] = None
        if not quiet:
            return
        try:
            await detect_state.close_quiet(
                partitions,
                lambda: timer_partitions(app, topic),
                time.monotonic(),
                config.idle_close_s,
                config.lateness_ms,
                emit,
                save_quiet,
            )
        except Exception as exc:
            halt(None, exc)

    async def resume_clocks(topic: str) -> None:
        """Give rebuilt partitions back the time the worker was down, once the stage has read
        what they held at the rebuild (``detect_state.resume``)."""
        read_to = config.source_read_to
        if read_to is None:
            return

        async def ends(parts: list[int]) -> Mapping[int, int]:
            try:
                got = await asyncio.wait_for(
                    app.consumer.highwaters(*(TP(topic, part) for part in parts)), 15
                )
            except Exception as exc:  # asked again next round
                log.info("detect.ends_unknown", error=f"{type(exc).__name__}: {exc}")
                return {}
            return {tp.partition: end for tp, end in got.items()}

        async def positions(parts: list[int]) -> Mapping[int, int] | None:
            return await asyncio.to_thread(read_to, parts)

        try:
            await detect_state.resume_clocks(
                partitions, lambda: timer_partitions(app, topic), ends, positions
            )
        except Exception:  # the clocks stay as they are, and are tried again next round
            log.exception("detect.resume_failed")

    def save_quiet(part: int, state: PartitionState) -> None:
        # A quiet partition has no mention to save with: its tables are written here, on its
        # own changelog partitions (Faust's table writes take those from the current event).
        now = time.monotonic()
        if detect_state.may_save(state, now, config.save_interval_s):
            detect_state.save(
                part,
                state,
                PartitionTable(states, part),
                PartitionTable(pending, part),
                clock,
                source.get_topic_name(),
            )
            state.dirty = False
            state.last_save = now

    return detect
