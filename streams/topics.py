"""The pipeline's topics and their creation with the configured partition and replication counts."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic, OffsetSpec
from kafka.errors import (
    ClusterAuthorizationFailedError,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    NotCoordinatorError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)
from mode.utils.times import want_seconds

from streams.errors import StormvarselError
from streams.kafka_clients import connect_admin
from streams.log_setup import get_logger
from streams.settings import Settings

#: A group's coordinator that is loading, moving or not yet named: a broker just started, or
#: the group's partition of ``__consumer_offsets`` just moved. Kafka answers each of these for
#: a moment, and asking again soon gets an answer.
COORDINATOR_NOT_READY = (
    CoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorError,
)

log = get_logger(__name__)

MENTIONS = "mentions"
MENTIONS_DLQ = "mentions.dlq"
MENTIONS_VALID = "mentions.valid"
MENTIONS_SCORED = "mentions.scored"
ALERTS = "alerts"

#: name -> what it carries (shown by ``stormvarsel topics create`` and the docs)
PIPELINE_TOPICS: dict[str, str] = {
    MENTIONS: "incoming mentions as JSON, key: mention id (or brand, or none)",
    MENTIONS_DLQ: "rejected input: original bytes, machine-readable reason, message",
    MENTIONS_VALID: "validated mentions, one record per matched brand, key: brand id",
    MENTIONS_SCORED: "validated mentions with sentiment and language, key: brand id",
    ALERTS: "storm episodes (opened, escalated, resolved), key: brand id",
}


#: The worker's Faust tables (streams/agents); each has a changelog ``<app id>-<name>-changelog``.
STATE_TABLES = (
    "mention-ids",
    "detector-state",
    "detector-pending",
    "detector-ids",
    "notifier-alerts",
)


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
        states = []
        for name, count in partition_counts(admin, [spec.name for spec in specs]).items():
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
        created = _create_missing(admin, topics, timeout_s)
        _check_existing(admin, [spec for spec in topics if spec.name not in created])
    finally:
        admin.close()


def partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic's partition count, in the order Kafka describes them."""
    return {
        # kafka-python 3 names the field "name"; older releases used "topic".
        (topic.get("name") or topic.get("topic") or "?"): len(topic.get("partitions") or [])
        for topic in admin.describe_topics(names)
    }


def _check_existing(admin: KafkaAdminClient, specs: list[TopicSpec]) -> None:
    """Refuse changelogs whose partition count differs from their table's, and warn about a
    cleanup policy other than the table's.

    A table's partitions follow its source topic, so growing a pipeline topic leaves the old
    changelog behind: Faust then raised ``PartitionsMismatch`` on every table write, and every
    mention went to the dead-letter topic while ``/healthz`` said ok.
    """
    if not specs:
        return
    wanted = {spec.name: spec for spec in specs}
    counts = partition_counts(admin, sorted(wanted))
    wrong = [
        f"{name} has {counts[name]}, needs {spec.partitions}"
        for name, spec in wanted.items()
        if name in counts and counts[name] != spec.partitions
    ]
    if wrong:
        raise StormvarselError(
            f"the worker's state topics do not match its pipeline topics' partitions "
            f"({'; '.join(wrong)}); a pipeline topic was grown, and Faust cannot use a changelog "
            "of another size (every mention would be dead-lettered). Stop every worker, run "
            "`stormvarsel topics reset-state` (de-duplication memory starts afresh; each "
            "brand's detector and the firing storm alerts are carried over), then start them "
            "again; `stormvarsel topics grow` "
            "grows every pipeline topic and resets the state in one step"
        )
    policies = {
        name: spec.config["cleanup.policy"]
        for name, spec in wanted.items()
        if "cleanup.policy" in spec.config
    }
    if not policies:
        return
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(policies)]
    )
    for name, entries in (described.get("topic") or {}).items():
        have = (entries.get("cleanup.policy") or {}).get("value")
        if have is not None and have != policies.get(name):
            log.warning(
                "topic.changelog_policy",
                topic=name,
                cleanup_policy=have,
                expected=policies.get(name),
                hint="the broker may delete table state this worker needs after a restart; "
                f"set it with kafka-configs.sh --alter --entity-type topics --entity-name {name} "
                f"--add-config cleanup.policy={policies.get(name)}",
            )


def state_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """The worker's own topics on the cluster: its tables' changelogs and the leader assignor's
    topic."""
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        return _state_topic_names(admin, settings.app_id)
    finally:
        admin.close()


def state_topic_names(app_id: str) -> list[str]:
    """Every state topic the worker of ``app_id`` may have, by exact name (a prefix would take
    those of an app id that starts with this one, e.g. ``stormvarsel-staging``)."""
    changelogs = [f"{app_id}-{table}-changelog" for table in STATE_TABLES]
    return sorted([*changelogs, f"{app_id}-__assignor-__leader"])


def _state_topic_names(admin: KafkaAdminClient, app_id: str) -> list[str]:
    existing = set(admin.list_topics())
    return [name for name in state_topic_names(app_id) if name in existing]


def refuse_while_workers_run(admin: KafkaAdminClient, app_id: str, wait_s: float = 20.0) -> None:
    """Raise while a worker of ``app_id`` is a member of its consumer group (or Kafka cannot say
    whether one is): it would go on writing to the topics about to change. A coordinator that
    is still loading (a broker just started, or the group's partition just moved) is waited
    for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            group = admin.describe_groups([app_id]).get(app_id) or {}
            break
        except COORDINATOR_NOT_READY:
            if "__consumer_offsets" not in admin.list_topics():
                group = {}  # no consumer group has ever existed on this cluster
                break
            if time.monotonic() >= deadline:
                raise StormvarselError(
                    f"Kafka has had no coordinator for the consumer group {app_id!r} for "
                    f"{wait_s:g} s, so whether a worker runs is unknown; try again shortly"
                ) from None
            time.sleep(0.5)
    members = group.get("members") or []
    if members:
        raise StormvarselError(
            f"{len(members)} worker(s) of app id {app_id!r} are running "
            f"(consumer group state {group.get('group_state') or '?'}); stop every worker "
            "first"
        )


def reset_state_topics(
    settings: Settings,
    timeout_s: float = 30.0,
    *,
    before_delete: Callable[[], object] | None = None,
) -> list[str]:
    """Delete the worker's state topics (see ``state_topics``) so the next start creates them
    afresh with the pipeline topics' partition counts. Refused while a worker of the app id is a
    member of its consumer group: it would keep writing to the deleted topics. ``before_delete``
    runs once that is checked (it keeps the brands' detectors: ``streams.detector_seeds``)."""
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        refuse_while_workers_run(admin, settings.app_id)
        if before_delete is not None:
            before_delete()
        names = _state_topic_names(admin, settings.app_id)
        if names:
            _delete_and_wait(admin, names, timeout_s)
            log.info("topic.state_deleted", topics=names)
        return names
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
                f"replication {spec.replication}): {refusal(exc)}; {_hint(exc)}"
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


def refusal(exc: KafkaError) -> str:
    """The broker's own reason (its ``error_message``) when the error carries one."""
    # The response's repr quotes the message with ' or, when it contains a ', with ".
    found = re.search(r"""error_message=(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""", str(exc))
    reason = (found.group(1) or found.group(2) if found else str(exc)).rstrip(". ")
    return f"{type(exc).__name__}: {reason}"


def _delete_and_wait(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Delete ``names`` and return once the broker no longer lists them."""
    try:
        admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
    except KafkaError as exc:
        raise StormvarselError(
            f"Kafka refused to delete {', '.join(names)}: {refusal(exc)}"
        ) from None
    wait_deleted(admin, names, timeout_s)


def wait_deleted(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Deletion finishes on the brokers after the answer; a worker started before would find
    the old topics still there, or be refused creating them."""
    deadline = time.monotonic() + timeout_s
    while left := set(names) & set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise StormvarselError(
                f"Kafka had not deleted {', '.join(sorted(left))} within {timeout_s:.0f} s; "
                "check the brokers' logs"
            )
        time.sleep(0.2)


def _hint(exc: KafkaError) -> str:
    """The settings behind a refused topic, by the kind of refusal."""
    if isinstance(exc, InvalidTopicError):
        # A name too long, or one that collides with another ('.' and '_' are the same to
        # Kafka's metrics).
        return "check STORMVARSEL_TOPIC_PREFIX and STORMVARSEL_APP_ID (they make the name)"
    if isinstance(exc, InvalidReplicationFactorError):
        return "check STORMVARSEL_TOPIC_REPLICATION"
    if isinstance(exc, InvalidPartitionsError):
        return "check STORMVARSEL_TOPIC_PARTITIONS"
    if isinstance(exc, (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        return "the Kafka user needs the right to create topics, or create them beforehand"
    return "check STORMVARSEL_TOPIC_PARTITIONS and STORMVARSEL_TOPIC_REPLICATION"


#: Kafka's own topics (``__consumer_offsets``, ``__transaction_state``, KRaft's metadata): never
#: deleted by prefix.
_KAFKA_INTERNAL = "__"


def protected_topics(settings: Settings) -> list[str]:
    """The topics ``stormvarsel topics delete --prefix`` never deletes: the live pipeline topics
    (with the configured STORMVARSEL_TOPIC_PREFIX, and by their bare names), the configured
    app's state topics and its detector seeds topic."""
    from streams.detector_seeds import seeds_topic

    live = {settings.topic(name) for name in PIPELINE_TOPICS} | set(PIPELINE_TOPICS)
    own = {*state_topic_names(settings.app_id), seeds_topic(settings.app_id)}
    return sorted(live | own)


def prefix_refusal(
    settings: Settings, prefix: str, existing: list[str] | None = None
) -> str | None:
    """Why the topics beginning with ``prefix`` may not be deleted (one line), or None when they
    may. ``existing``, the topics on the cluster when known, adds the app's repartition topics
    and Kafka's own."""
    if not prefix.strip():
        return (
            "--prefix is empty: it would match every topic; name the prefix of the topics to delete"
        )
    app = f"{settings.app_id}-"
    if app.startswith(prefix):
        return (
            f"--prefix {prefix!r} would match every topic of the worker's app id "
            f"{settings.app_id!r} ({app}*: its state and internal topics); name a longer prefix"
        )
    for name in protected_topics(settings):
        if name.startswith(prefix):
            return (
                f"--prefix {prefix!r} would match {name!r}, a topic the live pipeline uses "
                f"(app id {settings.app_id!r}); name a prefix only the topics to delete have"
            )
    for name in existing or []:
        if not name.startswith(prefix):
            continue
        if name.startswith(_KAFKA_INTERNAL):
            return (
                f"--prefix {prefix!r} would match Kafka's own topic {name!r}; name another prefix"
            )
        if name.startswith(app) and name.endswith("-repartition"):
            return (
                f"--prefix {prefix!r} would match the worker's internal topic {name!r} (app id "
                f"{settings.app_id!r}); name a prefix only the topics to delete have"
            )
    return None


def prefixed_topics(settings: Settings, prefix: str, timeout_s: float = 30.0) -> dict[str, int]:
    """The topics whose names begin with ``prefix``, sorted, each with its record count (last
    offset minus first, summed over its partitions). Raises :class:`StormvarselError` when the
    prefix is refused (see :func:`prefix_refusal`)."""
    refused = prefix_refusal(settings, prefix)
    if refused:
        raise StormvarselError(refused)
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        existing = sorted(admin.list_topics())
        refused = prefix_refusal(settings, prefix, existing)
        if refused:
            raise StormvarselError(refused)
        names = [name for name in existing if name.startswith(prefix)]
        return record_counts(admin, names)
    finally:
        admin.close()


def record_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic of ``names`` with its record count, in the order given (a compacted topic's
    count is of offsets: records compaction removed are counted too)."""
    if not names:
        return {}
    counts = partition_counts(admin, names)
    partitions = [
        TopicPartition(name, part) for name in names for part in range(counts.get(name, 0))
    ]
    try:
        firsts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
    except KafkaError as exc:
        raise StormvarselError(
            f"Kafka did not tell how many records {', '.join(names)} hold: {refusal(exc)}; "
            "try again when every partition has a leader"
        ) from None
    held = dict.fromkeys(names, 0)
    for tp in partitions:
        held[tp.topic] += max(0, ends[tp].offset - firsts[tp].offset)
    return held


def delete_prefixed(
    settings: Settings, prefix: str, names: list[str], timeout_s: float = 30.0
) -> list[str]:
    """Delete ``names`` (topics listed by :func:`prefixed_topics` for ``prefix``) and wait until
    the brokers no longer list them. Each is checked against the prefix again first."""
    refused = prefix_refusal(settings, prefix, names)
    if refused:
        raise StormvarselError(refused)
    stray = [name for name in names if not name.startswith(prefix)]
    if stray:
        raise StormvarselError(f"{', '.join(stray)} do not begin with {prefix!r}; nothing deleted")
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        present = sorted(set(names) & set(admin.list_topics()))
        if present:
            _delete_and_wait(admin, present, timeout_s)
            log.info("topic.deleted", topics=present, prefix=prefix)
        return present
    finally:
        admin.close()
