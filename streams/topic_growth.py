"""``stormvarsel topics grow``: give every pipeline topic more partitions, so more workers can share
the work, and start the workers' state afresh to match.

A brand lives on the partition its key hashes to, and that changes with the partition count. Two
things make growing by hand unsafe, and this command checks both before it changes anything:

- a running worker would keep writing its tables for the old layout: every worker must be stopped;
- scored mentions or alert records the workers have not read yet stay on their brand's *old*
  partition. Read after the growth, they would start a second detector (or alert tracker) for the
  brand there, which saves over the brand's real one. So ``mentions.scored`` and ``alerts`` must
  be read to the end first (``--force`` grows anyway): ``mentions.scored`` always, even where the
  workers never committed on it (they read it from its first record), ``alerts`` only where they
  did (without Alertmanager nothing reads it). Unread ``mentions`` and ``mentions.valid``
  records must be read too: they are keyed by brand only when the next stage writes them, but
  they stay on the old partitions while the collectors' new mentions also go to the new ones. A
  worker reads the partitions in turn, so the first mention from a new partition moves a
  brand's watermark on to the time of the growth, and the backlog behind it is counted late,
  outside its buckets (a review measured 29 of 30 such mentions late, and an extra
  de-escalation of the open storm).

The tables' changelogs must have as many partitions as the topics they follow, so the state
topics are deleted (:func:`streams.topics.reset_state_topics`) once the topics have grown; the
brands' detectors are kept first (:mod:`streams.detector_seeds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from streams.errors import StormvarselError
from streams.kafka_clients import connect_admin
from streams.log_setup import get_logger
from streams.settings import Settings
from streams.topics import (
    ALERTS,
    COORDINATOR_NOT_READY,
    MENTIONS,
    MENTIONS_SCORED,
    MENTIONS_VALID,
    PIPELINE_TOPICS,
    partition_counts,
    refusal,
    refuse_while_workers_run,
    reset_state_topics,
)

log = get_logger(__name__)

#: Topics keyed by brand whose unread records would be read on the brand's old partition.
KEYED_BY_BRAND = (MENTIONS_SCORED, ALERTS)
#: Topics before the brand keys, whose unread records would reach the detectors late.
BEFORE_BRAND_KEYS = (MENTIONS, MENTIONS_VALID)
MUST_BE_READ = (*BEFORE_BRAND_KEYS, *KEYED_BY_BRAND)
#: Of those, the topics only some deployments read: ``alerts`` has a reader only where
#: Alertmanager is configured. Where the group has never committed on one, nothing of it counts.
READ_IF_CONSUMED = (ALERTS,)


@dataclass(frozen=True)
class GrowthPlan:
    partitions: int
    current: dict[str, int]  # pipeline topic -> its partitions now
    unread: dict[str, dict[int, int]]  # topic of MUST_BE_READ -> partition -> unread records
    #: Topics of ``unread`` the group has never committed on: nothing of them read yet.
    never_read: frozenset[str] = frozenset()
    #: Topics of ``unread`` before the brand keys (``BEFORE_BRAND_KEYS``, with the prefix).
    before_keys: frozenset[str] = frozenset()

    @property
    def to_grow(self) -> list[str]:
        return [name for name, count in self.current.items() if count < self.partitions]

    @property
    def unread_total(self) -> int:
        return sum(sum(parts.values()) for parts in self.unread.values())

    def unread_lines(self) -> list[str]:
        """One line per topic with unread records, e.g. ``mentions.scored: 12 records
        (partitions 0, 2)``."""
        lines = []
        for topic, parts in self.unread.items():
            behind = [str(part) for part, count in sorted(parts.items()) if count]
            if behind:
                total = sum(parts.values())
                word = "record" if total == 1 else "records"
                label = "partition" if len(behind) == 1 else "partitions"
                lines.append(f"{topic}: {total:,} {word} ({label} {', '.join(behind)})")
        return lines


def unread_records(
    admin: KafkaAdminClient,
    group: str,
    topics: dict[str, int],
    read_if_consumed: Collection[str] = (),
) -> dict[str, dict[int, int]]:
    """Records of each partition of ``topics`` (name -> partition count) that the consumer group
    has not read: after its committed offset, or, where it has committed none, all of them (a
    worker starts there from the earliest record). A topic of ``read_if_consumed`` the group has
    never committed on is not read by these workers (``alerts`` without Alertmanager): nothing
    of it counts."""
    return _unread(admin, group, topics, read_if_consumed)[0]


def _unread(
    admin: KafkaAdminClient, group: str, topics: dict[str, int], read_if_consumed: Collection[str]
) -> tuple[dict[str, dict[int, int]], frozenset[str]]:
    """:func:`unread_records`, and the topics the group has never committed on."""
    partitions = [
        TopicPartition(name, part) for name, count in topics.items() for part in range(count)
    ]
    offsets = _group_offsets(admin, group, partitions)
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    firsts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
    unread: dict[str, dict[int, int]] = {name: {} for name in topics}
    never_read = frozenset(topics) - {tp.topic for tp in committed}
    for tp in partitions:
        if tp.topic in never_read and tp.topic in read_if_consumed:
            continue
        start = max(committed.get(tp, -1), firsts[tp].offset)
        unread[tp.topic][tp.partition] = max(0, ends[tp].offset - start)
    return unread, never_read


def _group_offsets(
    admin: KafkaAdminClient, group: str, partitions: list[TopicPartition], wait_s: float = 15.0
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets. On a cluster where no group has committed yet, asking makes
    Kafka create its offsets topic, and it names no coordinator for a few seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return admin.list_group_offsets({group: partitions}).get(group, {})
        except COORDINATOR_NOT_READY:
            if time.monotonic() > deadline:
                raise StormvarselError(
                    f"Kafka named no coordinator for the consumer group {group!r} within "
                    f"{wait_s:.0f} s, so what the workers have read is unknown; try again shortly"
                ) from None
            time.sleep(0.5)


def plan_growth(settings: Settings, partitions: int, timeout_s: float = 30.0) -> GrowthPlan:
    """What growing to ``partitions`` would change; raises if it cannot be done now."""
    if partitions < 1:
        raise StormvarselError(f"--partitions must be at least 1, got {partitions}")
    names = [settings.topic(name) for name in PIPELINE_TOPICS]
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        refuse_while_workers_run(admin, settings.app_id)
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            raise StormvarselError(
                f"{', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist; "
                "create the pipeline topics with "
                "`stormvarsel topics create` (STORMVARSEL_TOPIC_PARTITIONS sets their partitions)"
            )
        current = partition_counts(admin, names)
        current = {name: current[name] for name in names}
        largest = max(current.values())
        if partitions < largest:
            have = ", ".join(f"{name} {count}" for name, count in current.items())
            raise StormvarselError(
                f"Kafka cannot take partitions away: the topics have {have}; ask for "
                f"{largest} or more"
            )
        watched = {settings.topic(name): current[settings.topic(name)] for name in MUST_BE_READ}
        optional = {settings.topic(name) for name in READ_IF_CONSUMED}
        unread, never_read = _unread(admin, settings.app_id, watched, optional)
    finally:
        admin.close()
    before_keys = frozenset(settings.topic(name) for name in BEFORE_BRAND_KEYS)
    return GrowthPlan(partitions, current, unread, never_read, before_keys)


def check_read(plan: GrowthPlan, *, force: bool = False) -> None:
    """Raise while records of ``MUST_BE_READ`` are unread, unless ``force``."""
    if plan.unread_total and not force:
        unread_never = sorted(
            topic for topic in plan.never_read if sum(plan.unread.get(topic, {}).values())
        )
        never = (
            f" Nothing of {' or '.join(unread_never)} has been read yet (the workers' consumer "
            "group has committed no offset on it): the workers will read it from its first "
            "record, so every record there counts."
            if unread_never
            else ""
        )
        behind = {topic for topic, parts in plan.unread.items() if sum(parts.values())}
        harms = []
        if behind - plan.before_keys:
            harms.append(
                " Scored mentions and alert records would be counted on their brand's old "
                "partition, by a second detector that overwrites the brand's own."
            )
        if behind & plan.before_keys:
            harms.append(
                " Mentions not scored yet would reach their brand's detector behind newer ones "
                "from the new partitions, and be counted late, outside their buckets."
            )
        raise StormvarselError(
            "the workers have not read every record of the pipeline topics ("
            + "; ".join(plan.unread_lines())
            + ")."
            + "".join(harms)
            + never
            + " Pause the collectors, start the workers until the consumer lag is 0, stop them, "
            "and try again (--force grows anyway)"
        )


def grow_topics(
    settings: Settings,
    plan: GrowthPlan,
    *,
    force: bool = False,
    timeout_s: float = 30.0,
    before_growth: Callable[[], object] | None = None,
) -> list[str]:
    """Grow the topics of ``plan`` and delete the workers' state topics; returns the state topics
    deleted. Refused while records of ``MUST_BE_READ`` are unread, unless ``force``.
    ``before_growth`` runs once that is checked, before anything changes (it keeps the brands'
    detectors: ``streams.detector_seeds``)."""
    check_read(plan, force=force)
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        refuse_while_workers_run(admin, settings.app_id)  # one may have started since the plan
        if before_growth is not None:
            before_growth()
        if plan.to_grow:
            try:
                admin.create_partitions(
                    {name: plan.partitions for name in plan.to_grow},
                    timeout_ms=int(timeout_s * 1000),
                )
            except KafkaError as exc:
                raise StormvarselError(
                    f"Kafka refused to add partitions to {', '.join(plan.to_grow)}: {refusal(exc)}"
                ) from None
            _wait_grown(admin, plan.to_grow, plan.partitions, timeout_s)
            log.info("topic.grown", topics=plan.to_grow, partitions=plan.partitions)
    finally:
        admin.close()
    return reset_state_topics(settings, timeout_s=timeout_s)


def _wait_grown(
    admin: KafkaAdminClient, names: list[str], partitions: int, timeout_s: float
) -> None:
    """The brokers answer before every one of them lists the new partitions; a worker started
    before that would lay its tables out for the old count."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = partition_counts(admin, names)
        short = [name for name in names if counts.get(name, 0) < partitions]
        if not short:
            break
        if time.monotonic() > deadline:
            raise StormvarselError(
                f"Kafka did not list {partitions} partitions for {', '.join(short)} within "
                f"{timeout_s:.0f} s; check the brokers' logs"
            )
        time.sleep(0.2)
    try:  # and a leader for every new partition
        admin.wait_for_topics(names, timeout_ms=int(max(1.0, deadline - time.monotonic()) * 1000))
    except KafkaTimeoutError as exc:
        raise StormvarselError(
            f"Kafka named no leader for every new partition of {', '.join(names)} within "
            f"{timeout_s:.0f} s ({exc}); check the brokers' logs"
        ) from None
