"""``--publish-prefix P``: a replay's results on topics of their own, never on live ones."""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from detectors.episodes import BucketSummary, EpisodeEvent, Output, canonical_json
from streams.kafka_clients import client_config, connect_admin
from streams.log_setup import get_logger
from streams.replay.source import ReplayError, ReplayOptionError, consumer
from streams.settings import Settings
from streams.topics import PIPELINE_TOPICS, prefix_refusal

log = get_logger(__name__)

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
#: The results are stamped with event times, often weeks or years back: under the broker's time
#: retention (7 days by default) Kafka would delete them minutes after they were written. They
#: are kept until the topics are deleted.
TOPIC_CONFIG = {"retention.ms": "-1"}


def published_topics(prefix: str, runs: int) -> list[tuple[str, str]]:
    """(alerts topic, buckets topic) per run: ``P alerts``/``P buckets`` for the configuration
    the live worker uses, ``P candidate.alerts``/``P candidate.buckets`` for ``--config``."""
    names = [(f"{prefix}alerts", f"{prefix}buckets")]
    if runs > 1:
        names.append((f"{prefix}candidate.alerts", f"{prefix}candidate.buckets"))
    return names


def check_prefix(settings: Settings, prefix: str, runs: int) -> list[tuple[str, str]]:
    """The topics ``prefix`` names; refused when one would be a live pipeline topic."""
    names = published_topics(prefix, runs)
    live = {settings.topic(name) for name in PIPELINE_TOPICS}
    for pair in names:
        for name in pair:
            if not _TOPIC_NAME.match(name):
                raise ReplayOptionError(
                    f"--publish-prefix {prefix!r}: {name!r} is not a valid topic name "
                    "(letters, digits, '.', '_' and '-')"
                )
            if name in live:
                raise ReplayOptionError(
                    f"--publish-prefix {prefix!r} would write to the live topic {name!r}; "
                    "choose a prefix of its own, e.g. 'replay.'"
                )
    return names


def held_records(client: KafkaConsumer, names: Iterable[str]) -> dict[str, int]:
    """Of ``names``, the topics that exist and hold records, with how many (end offset minus
    first offset, summed over their partitions), in the order given."""
    wanted = list(dict.fromkeys(names))
    try:
        existing = client.topics()  # asks about every topic: a missing one is not auto-created
        partitions = [
            TopicPartition(name, part)
            for name in wanted
            if name in existing
            for part in sorted(client.partitions_for_topic(name) or ())
        ]
        if not partitions:
            return {}
        firsts = client.beginning_offsets(partitions)
        ends = client.end_offsets(partitions)
    except KafkaError as exc:
        raise ReplayError(
            f"--publish-prefix: cannot tell whether {', '.join(wanted)} already hold records "
            f"({type(exc).__name__}: {exc}); try again when Kafka answers"
        ) from None
    held: dict[str, int] = {}
    for tp in partitions:
        count = max(0, ends[tp] - firsts[tp])
        if count:
            held[tp.topic] = held.get(tp.topic, 0) + count
    return {name: held[name] for name in wanted if name in held}


def delete_command(settings: Settings, names: Iterable[str]) -> str:
    """The ``kafka-topics.sh`` command that deletes exactly ``names``: its ``--topic`` is a
    regular expression matched against whole names (``,`` reads as ``|``), so every ``.`` is
    escaped, else ``replay.alerts`` would delete ``replay-alerts`` too."""
    pattern = "|".join(name.replace(".", "\\.") for name in names)
    command = (
        f"kafka-topics.sh --bootstrap-server {settings.kafka_bootstrap_servers} "
        f"--delete --topic {shlex.quote(pattern)}"
    )
    if settings.kafka_security_protocol != "PLAINTEXT":
        command += (
            " --command-config client.properties (a file with the TLS/SASL client settings "
            "that STORMVARSEL_KAFKA_* give the replay)"
        )
    return command


def refuse_used_topics(
    settings: Settings, prefix: str, client: KafkaConsumer, topics: list[tuple[str, str]]
) -> None:
    """Refuse ``prefix`` when one of its ``topics`` already holds records (a replay published
    there before): this replay's records would follow them and every reader would count both.
    An existing empty topic (created by a replay stopped before its first result) is fine."""
    held = held_records(client, [name for pair in topics for name in pair])
    if not held:
        return
    listing = ", ".join(
        f"{name!r} ({count:,} record{'' if count == 1 else 's'})" for name, count in held.items()
    )
    one = len(held) == 1
    raise ReplayOptionError(
        f"--publish-prefix {prefix!r}: {'the topic' if one else 'the topics'} {listing} "
        f"already {'holds' if one else 'hold'} records, most likely an earlier replay's results; "
        "this replay's would be added after them, and whoever reads "
        f"{'it' if one else 'them'} (Grafana, a post-mortem script) would see both, the same "
        "alerts and buckets twice where the ranges overlap. Nothing was replayed. Choose a prefix "
        f"no replay has used, or delete {'that topic' if one else 'those topics'} first: "
        f"{delete_advice(settings, prefix, held)}"
    )


def delete_advice(settings: Settings, prefix: str, names: Iterable[str]) -> str:
    """How to delete ``names``, a replay's used topics under ``prefix``: ``stormvarsel topics
    delete --prefix`` (the local broker of ``stormvarsel kafka start`` has no Kafka scripts),
    and the same with any Kafka admin tool, e.g. ``kafka-topics.sh``. A prefix that command
    refuses (one that would match a live topic too) gets the ``kafka-topics.sh`` command alone."""
    tool = delete_command(settings, names)
    if prefix_refusal(settings, prefix) is not None:
        return tool
    return (
        f"stormvarsel topics delete --prefix {shlex.quote(prefix)} (it lists the topics "
        "beginning with the prefix and asks; any Kafka admin tool works too, e.g. "
        f"{tool})"
    )


class Publisher:
    """Writes alert records and bucket summaries of each run to its prefixed topics."""

    def __init__(self, settings: Settings, prefix: str, runs: int, partitions: int) -> None:
        self.topics = check_prefix(settings, prefix, runs)
        # ``prepare`` checked already, before the replay began; checked again here, as another
        # replay may have published there since.
        client = consumer(settings)
        try:
            refuse_used_topics(settings, prefix, client, self.topics)
        finally:
            client.close(autocommit=False)
        self._create(settings, partitions)
        try:
            self._producer = KafkaProducer(
                **client_config(settings, "stormvarsel-replay-publish"),
                acks="all",
                linger_ms=50,
                allow_auto_create_topics=False,
            )
        except (KafkaError, OSError) as exc:
            raise ReplayError(f"cannot open a producer for --publish-prefix: {exc}") from None
        self.sent = 0
        self.failed = 0
        self.confirmed = 0
        self._first_error: str | None = None

    def _create(self, settings: Settings, partitions: int) -> None:
        admin = connect_admin(settings)
        try:
            existing = set(admin.list_topics())
            for pair in self.topics:
                for name in pair:
                    if name in existing:
                        log.info("replay.topic_exists", topic=name, config="left as it is")
                        continue
                    try:
                        admin.create_topics(
                            [
                                NewTopic(
                                    name=name,
                                    num_partitions=partitions,
                                    replication_factor=settings.topic_replication,
                                    topic_configs=dict(TOPIC_CONFIG),
                                )
                            ]
                        )
                        log.info("replay.topic_created", topic=name, partitions=partitions)
                    except TopicAlreadyExistsError:
                        pass
        finally:
            admin.close()

    def send(self, run: int, output: Output, alert: dict[str, Any] | None) -> None:
        alerts_topic, buckets_topic = self.topics[run]
        if isinstance(output, EpisodeEvent) and alert is not None:
            topic, brand, stamp = alerts_topic, str(alert["brand"]), output.at_ms
            value = canonical_json(alert)
        elif isinstance(output, BucketSummary):
            topic, brand, stamp = buckets_topic, output.brand, output.start_ms
            value = canonical_json(output.to_dict())
        else:
            return
        self.sent += 1
        try:
            future = self._producer.send(
                topic, key=brand.encode(), value=value.encode(), timestamp_ms=stamp
            )
        except KafkaError as exc:
            # Refused before it was queued (larger than max_request_size, no metadata for the
            # topic within max_block_ms): not written, like a record the broker refuses.
            self._failed(topic, exc)
            return
        future.add_callback(self._confirmed)
        future.add_errback(self._failed, topic)

    def _confirmed(self, _metadata: Any) -> None:
        self.confirmed += 1

    def _failed(self, topic: str, exc: BaseException) -> None:
        self.failed += 1
        if self._first_error is None:
            self._first_error = f"{topic}: {type(exc).__name__}: {exc}"
            log.error("replay.publish_failed", topic=topic, error=str(exc))

    def close(self, timeout_s: float = 60.0) -> None:
        """Wait for every record; a :class:`ReplayError` when any was not written."""
        deadline = time.monotonic() + timeout_s
        unconfirmed = None
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:  # a timeout, or batches aborted after a fatal error
            unconfirmed = f"{type(exc).__name__}: {exc}"
        # flush() can return, or raise, before the records' own callbacks have run (kafka-python
        # wakes it when a batch completes, then completes the batch's records): wait for them,
        # so that a refused record is named as such, not as "not confirmed".
        while self.confirmed + self.failed < self.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(KafkaError):  # it flushes again, and fails the same way
            self._producer.close(timeout=10)
        if self.failed:
            raise ReplayError(
                f"--publish-prefix: {self.failed:,} of {self.sent:,} records were not written "
                f"(first: {self._first_error}); the published topics are incomplete"
            )
        if self.confirmed < self.sent:
            reason = f" ({unconfirmed})" if unconfirmed is not None else ""
            raise ReplayError(
                f"--publish-prefix: Kafka confirmed {self.confirmed:,} of {self.sent:,} records "
                f"within {timeout_s:.0f} s{reason}; the published topics may be incomplete"
            )
