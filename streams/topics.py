"""The pipeline's topics and their creation with the configured partition and replication counts."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

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
