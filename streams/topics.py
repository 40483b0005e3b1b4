"""The pipeline's topics and their creation with the configured partition and replication counts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
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


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create if missing: a pipeline topic, a table's changelog or Faust's
    leader-assignor topic."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicState]:
    """Create any missing pipeline topic; report existing ones with their partition counts."""
    specs = [
        TopicSpec(settings.topic(name), settings.topic_partitions, settings.topic_replication)
        for name in PIPELINE_TOPICS
    ]
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        created = _create_missing(admin, specs, timeout_s)
        described = admin.describe_topics([spec.name for spec in specs])
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


def faust_internal_topics(app: Any) -> list[TopicSpec]:
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
            TopicSpec(
                topic.get_topic_name(),
                topic.partitions or conf.topic_partitions,
                topic.replicas or conf.topic_replication_factor,
                config,
            )
        )
    # The leader assignor's topic (see faust.assignor.leader_assignor): one partition.
    out.append(TopicSpec(f"{conf.id}-__assignor-__leader", 1, conf.topic_replication_factor))
    return out


def ensure_internal_topics(
    settings: Settings, topics: list[TopicSpec], timeout_s: float = 30.0
) -> None:
    """Create Faust's own topics before Faust starts, and wait until every partition has a leader.

    Faust creates them itself, but subscribes to them moments later. aiokafka's group
    coordinator records a subscribed topic that the brokers' metadata does not list yet with
    0 partitions, until its next metadata refresh (minutes); meanwhile every table write
    raised ``PartitionsMismatch`` and the detect agent failed each mention. Created here and
    confirmed, the topics already exist when Faust looks, so it leaves them as they are.
    """
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        _create_missing(admin, topics, timeout_s)
    finally:
        admin.close()


def _create_missing(admin: KafkaAdminClient, specs: list[TopicSpec], timeout_s: float) -> set[str]:
    """Create the topics of ``specs`` that do not exist, then wait until the brokers' metadata
    lists each new one with a leader for every partition (a consumer subscribing to a topic
    before that would see none). Returns the names created here."""
    existing = set(admin.list_topics())
    fresh = [spec for spec in specs if spec.name not in existing]
    created: set[str] = set()
    for spec in fresh:
        try:
            admin.create_topics(
                [NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=spec.config)]
            )
        except TopicAlreadyExistsError:
            continue  # another worker created it a moment ago
        except KafkaError as exc:
            raise StormvarselError(
                f"Kafka refused to create topic {spec.name!r} ({spec.partitions} partitions, "
                f"replication {spec.replication}): {_refusal(exc)}; check "
                "STORMVARSEL_TOPIC_PARTITIONS and STORMVARSEL_TOPIC_REPLICATION"
            ) from None
        created.add(spec.name)
        log.info(
            "topic.created",
            topic=spec.name,
            partitions=spec.partitions,
            replication=spec.replication,
        )
    names = [spec.name for spec in fresh]  # here or by another worker a moment ago
    try:
        admin.wait_for_topics(names, timeout_ms=int(timeout_s * 1000))
    except KafkaTimeoutError as exc:
        raise StormvarselError(
            f"Kafka named no leader for every partition of {', '.join(names)} within "
            f"{timeout_s:.0f} s ({exc}); check the brokers' logs"
        ) from None
    return created


def _refusal(exc: KafkaError) -> str:
    """The broker's own reason (its ``error_message``) when the error carries one."""
    found = re.search(r"error_message='([^']*)'", str(exc))
    reason = (found.group(1) if found else str(exc)).rstrip(". ")
    return f"{type(exc).__name__}: {reason}"
