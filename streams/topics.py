"""The pipeline's topics and their creation with the configured partition and replication counts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from mode.utils.times import want_seconds

from streams.errors import StormvarselError
from streams.kafka_clients import connect_admin
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)

MENTIONS = "mentions"
MENTIONS_DLQ = "mentions.dlq"
MENTIONS_VALID = "mentions.valid"
MENTIONS_SCORED = "mentions.scored"
ALERTS = "alerts"

#: name -> what it carries (shown by ``stormvarsel topics list`` and the docs)
PIPELINE_TOPICS: dict[str, str] = {
    MENTIONS: "incoming mentions as JSON, key: mention id (or brand, or none)",
    MENTIONS_DLQ: "rejected input: original bytes, machine-readable reason, message",
    MENTIONS_VALID: "validated mentions, one record per matched brand, key: brand id",
    MENTIONS_SCORED: "validated mentions with sentiment and language, key: brand id",
    ALERTS: "storm episodes (opened, escalated, resolved), key: brand id",
}


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    created: bool


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicState]:
    """Create any missing pipeline topic; report existing ones with their partition counts."""
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        wanted = [settings.topic(name) for name in PIPELINE_TOPICS]
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        created: set[str] = set()
        for name in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name=name,
                            num_partitions=settings.topic_partitions,
                            replication_factor=settings.topic_replication,
                        )
                    ]
                )
                created.add(name)
                log.info(
                    "topic.created",
                    topic=name,
                    partitions=settings.topic_partitions,
                    replication=settings.topic_replication,
                )
            except TopicAlreadyExistsError:
                pass  # another worker created it a moment ago
        # Only just created: the brokers' metadata may not list them yet (a Faust consumer
        # subscribing now would ignore them).
        wait_for_leaders(admin, sorted(created), timeout_s)
        described = admin.describe_topics(wanted)
        states = []
        for topic in described:
            # kafka-python 3 names the field "name"; older releases used "topic".
            name = topic.get("name") or topic.get("topic") or "?"
            count = len(topic.get("partitions") or [])
            if count != settings.topic_partitions and name not in created:
                log.warning(
                    "topic.partitions_differ",
                    topic=name,
                    partitions=count,
                    configured=settings.topic_partitions,
                )
            states.append(TopicState(name, count, name in created))
        return states
    finally:
        admin.close()


@dataclass(frozen=True)
class InternalTopic:
    """A topic Faust declares for itself: a table's changelog or the leader assignor's topic."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def faust_internal_topics(app: Any) -> list[InternalTopic]:
    """The topics the Faust ``app`` would create at start-up, with the settings it would use.

    The cleanup policy follows Faust's rule: ``compact`` and/or ``delete`` as the topic asks,
    ``retention.ms`` when it has a retention, then the topic's own config on top.
    """
    conf = app.conf
    out = []
    for table in app.tables.values():
        topic = table.changelog_topic
        config: dict[str, str] = {}
        policy = [
            name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on
        ]
        if policy:
            config["cleanup.policy"] = ",".join(policy)
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        config.update({str(k): str(v) for k, v in (topic.config or {}).items()})
        out.append(
            InternalTopic(
                topic.get_topic_name(),
                topic.partitions or conf.topic_partitions,
                topic.replicas or conf.topic_replication_factor,
                config,
            )
        )
    # The leader assignor's topic (see faust.assignor.leader_assignor): one partition.
    out.append(InternalTopic(f"{conf.id}-__assignor-__leader", 1, conf.topic_replication_factor))
    return out


def ensure_internal_topics(
    settings: Settings, topics: list[InternalTopic], timeout_s: float = 30.0
) -> None:
    """Create Faust's own topics before Faust starts, and wait until every partition has a leader.

    Faust creates them itself, but subscribes to them a few milliseconds later. On a busy
    machine the broker's metadata did not list a just-created changelog yet: the consumer
    ignored it ("not found in cluster metadata"), kept 0 partitions for it until its next
    metadata refresh (minutes), and every table write raised ``PartitionsMismatch``. The
    detect agent then crashed on each mention and lost it. Created here, seconds earlier and
    confirmed, the topics already exist when Faust looks, so it leaves them as they are.
    """
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        existing = set(admin.list_topics())
        for topic in topics:
            if topic.name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name=topic.name,
                            num_partitions=topic.partitions,
                            replication_factor=topic.replication,
                            topic_configs=topic.config,
                        )
                    ]
                )
                log.info("topic.created", topic=topic.name, partitions=topic.partitions)
            except TopicAlreadyExistsError:
                pass  # another worker of the group created it a moment ago
        wait_for_leaders(admin, [t.name for t in topics], timeout_s)
    finally:
        admin.close()


def wait_for_leaders(admin: KafkaAdminClient, names: Iterable[str], timeout_s: float) -> None:
    """Block until the brokers' metadata lists every partition of ``names`` with a leader."""
    wanted = list(names)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [name for name in wanted if not _has_leaders(admin, name)]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise StormvarselError(
                f"Kafka created {', '.join(pending)} but named no leader for every partition "
                f"within {timeout_s:.0f} s; check the brokers' logs"
            )
        time.sleep(0.2)


def _has_leaders(admin: KafkaAdminClient, name: str) -> bool:
    try:
        described = admin.describe_topics([name])
    except KafkaError:
        return False
    if not described or described[0].get("error_code", 0) != 0:
        return False
    partitions = described[0].get("partitions") or []
    return bool(partitions) and all(
        p.get("error_code", 0) == 0 and p.get("leader_id", -1) >= 0 for p in partitions
    )
