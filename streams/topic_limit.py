"""The largest record a topic takes, read from Kafka, for every producer that writes mentions.

``stormvarsel ingest``, the worker's ``POST /mentions`` and the worker's stages that forward a
record to the next topic (``streams.forwarding``) check a record against this before sending
it: a record over the topic's ``max.message.bytes`` is refused by the broker, and told only as
``MessageSizeTooLargeError``, without its size or the limit (kafka-python then fails the records
sent after it to the same partition too; aiokafka fails every record batched with it).

The timestamps a topic takes are read with the limit (:class:`TimestampRange`): a topic of
``message.timestamp.type`` ``CreateTime`` refuses a record dated further from the broker's clock
than ``message.timestamp.before.max.ms`` / ``message.timestamp.after.max.ms`` (Kafka 3.6 and
later; before 4.0 either falls back to ``message.timestamp.difference.max.ms`` while unset), and
with it every record of its batch. The worker's forwarding stages check a record's timestamp
against it before sending (``streams.forwarding``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError

from streams.kafka_clients import connect_admin
from streams.kafka_send import fit_batches
from streams.log_setup import get_logger
from streams.mention import Rejection
from streams.settings import Settings, load_settings

log = get_logger(__name__)

#: What a record alone in a record batch takes beyond its key and value. The batch header is 61
#: bytes, the record's own fields 3 more, plus three varints (the record's length, the key's and
#: the value's): 70 to 73 bytes for keys and values under 1 MiB, measured against a real broker
#: (the largest value a topic with ``max.message.bytes`` 2,000 takes with an 8-byte key is 1,922
#: bytes; 300,000 takes 299,920). The rest is a margin; ``tests/test_intake_kafka_limits.py``
#: checks both against the broker.
RECORD_BATCH_OVERHEAD = 100
#: The largest value the worker writes to a table's changelog, as JSON (Faust's codec): Kafka's
#: default record limit (the producer's ``max_request_size``, a topic's ``max.message.bytes``) is
#: 1 MiB, less the key and the framing. A larger record is refused, and the worker stops.
CHANGELOG_VALUE_MAX_BYTES = 1_000_000

TOO_LARGE_FOR_TOPIC = "too_large_for_topic"
#: Seconds a topic's record limit is used before it is read from Kafka again (a changed
#: ``max.message.bytes`` applies within this); read sooner after Kafka refused a record as too
#: large.
LIMIT_REFRESH_S = 60.0
#: Seconds reading the limit may wait for Kafka; the last limit read applies meanwhile.
LIMIT_READ_TIMEOUT_S = 10.0

TIMESTAMP_OUTSIDE_TOPIC_RANGE = "timestamp_outside_topic_range"
TIMESTAMP_TYPE = "message.timestamp.type"
TIMESTAMP_BEFORE_MAX_MS = "message.timestamp.before.max.ms"  # Kafka 3.6 and later
TIMESTAMP_AFTER_MAX_MS = "message.timestamp.after.max.ms"  # Kafka 3.6 and later
TIMESTAMP_DIFFERENCE_MAX_MS = "message.timestamp.difference.max.ms"  # before Kafka 4.0
#: The topic settings that bound the timestamps a topic takes (read with its record limit; a
#: broker leaves out of its answer those it does not know).
TIMESTAMP_CONFIGS = (
    TIMESTAMP_TYPE,
    TIMESTAMP_BEFORE_MAX_MS,
    TIMESTAMP_AFTER_MAX_MS,
    TIMESTAMP_DIFFERENCE_MAX_MS,
)
#: Kafka's default for the three: Long.MAX_VALUE, no bound.
_UNBOUNDED_MS = 2**63 - 1


def batch_bytes(key: bytes, value: bytes) -> int:
    """The bytes a record takes alone in a Kafka record batch, with a margin."""
    return len(key) + len(value) + RECORD_BATCH_OVERHEAD


def _utc(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):  # beyond datetime's years
        return f"{ms} ms since the epoch"


def _span(ms: int) -> str:
    """``ms`` for a reader: "90,000 ms (25 h 0 min)"."""
    minutes = ms // 60_000
    if minutes < 1:
        return f"{ms:,} ms"
    return f"{ms:,} ms ({minutes // 60} h {minutes % 60} min)"


@dataclass(frozen=True)
class TimestampRange:
    """The record timestamps a topic of ``message.timestamp.type`` ``CreateTime`` takes: from
    ``before_ms`` before the broker's clock to ``after_ms`` after it (None: no bound that side),
    each from the setting named in ``before_setting`` / ``after_setting``. The broker refuses a
    record outside the range (``InvalidTimestampError``), and every record batched with it."""

    topic: str
    before_ms: int | None
    after_ms: int | None
    before_setting: str = TIMESTAMP_BEFORE_MAX_MS
    after_setting: str = TIMESTAMP_AFTER_MAX_MS

    def bounds(self, now_ms: int) -> tuple[int | None, int | None]:
        """The earliest and the latest timestamp (ms) taken when the clock reads ``now_ms``."""
        earliest = None if self.before_ms is None else now_ms - self.before_ms
        latest = None if self.after_ms is None else now_ms + self.after_ms
        return earliest, latest

    def inside(self, timestamp_ms: int, now_ms: int, *, margin_ms: int = 0) -> bool:
        """Whether the broker takes ``timestamp_ms`` at ``now_ms`` (Kafka refuses a record when
        ``now - timestamp > before`` or ``timestamp - now > after``), ``margin_ms`` inside."""
        earliest, latest = self.bounds(now_ms)
        return (earliest is None or timestamp_ms >= earliest + margin_ms) and (
            latest is None or timestamp_ms <= latest - margin_ms
        )

    def describe(self) -> str:
        """The range and its settings, for the user."""

        def side(ms: int | None, setting: str, where: str) -> str:
            if ms is None:
                return f"any time {where} (no {setting})"
            return f"{_span(ms)} {where} ({setting}={ms})"

        return (
            f"topic {self.topic!r} takes timestamps from "
            f"{side(self.before_ms, self.before_setting, 'before')} to "
            f"{side(self.after_ms, self.after_setting, 'after')} the broker's clock "
            f"({TIMESTAMP_TYPE}=CreateTime)"
        )

    def refusal(self, timestamp_ms: int, now_ms: int) -> Rejection | None:
        """Why a record dated ``timestamp_ms`` cannot be sent when the clock reads ``now_ms``
        (Kafka would refuse it, with its batch), or None when the topic takes it."""
        if self.inside(timestamp_ms, now_ms):
            return None
        offset = now_ms - timestamp_ms
        where = f"{_span(offset)} before" if offset >= 0 else f"{_span(-offset)} after"
        return Rejection(
            TIMESTAMP_OUTSIDE_TOPIC_RANGE,
            f"the record's timestamp {_utc(timestamp_ms)} ({timestamp_ms} ms) is {where} the "
            f"worker's clock ({_utc(now_ms)}); {self.describe()}",
        )


def _bound(configs: Mapping[str, str], setting: str) -> tuple[int, str] | None:
    """The bound ``setting`` sets, falling back to ``message.timestamp.difference.max.ms`` while
    it is at its default (as Kafka 3.6 to 3.9 do; 4.0 has no such setting, before 3.6 it alone
    applies); None when neither bounds."""
    for name in (setting, TIMESTAMP_DIFFERENCE_MAX_MS):
        try:
            value = int(configs[name])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= value < _UNBOUNDED_MS:
            return value, name
    return None


def timestamp_range(topic: str, configs: Mapping[str, str]) -> TimestampRange | None:
    """The timestamps ``topic`` takes, from its settings as read (``TIMESTAMP_CONFIGS``, values
    as Kafka gives them); None when it takes any (``LogAppendTime``: the broker sets the
    timestamp; no bound set; nothing read)."""
    kind = configs.get(TIMESTAMP_TYPE)
    if kind is not None and kind.strip().lower() != "createtime":
        return None
    before = _bound(configs, TIMESTAMP_BEFORE_MAX_MS)
    after = _bound(configs, TIMESTAMP_AFTER_MAX_MS)
    if before is None and after is None:
        return None
    return TimestampRange(
        topic,
        None if before is None else before[0],
        None if after is None else after[0],
        TIMESTAMP_BEFORE_MAX_MS if before is None else before[1],
        TIMESTAMP_AFTER_MAX_MS if after is None else after[1],
    )


def timestamp_ms(timestamp: float) -> int:
    """The record timestamp (ms) the worker's producer sends for Faust's ``timestamp`` (s)."""
    return int(timestamp * 1000.0)  # as faust.transport.drivers.aiokafka does


@dataclass(frozen=True)
class RecordLimit:
    """The largest record batch the destination takes, and the setting it comes from; and the
    timestamps it takes (None: any, or not read)."""

    max_bytes: int
    setting: str  # e.g. "max.message.bytes of topic 'mentions'", for the user
    timestamps: TimestampRange | None = None

    def timestamp_refusal(
        self, timestamp: float | None, now: float | None = None
    ) -> Rejection | None:
        """Why a record of Faust's ``timestamp`` (seconds; None: the producer dates it now; 0
        is sent as the epoch, as Faust passes it on) cannot be sent when the clock reads
        ``now`` (default: now), or None."""
        if self.timestamps is None or timestamp is None:
            return None
        now_ms = timestamp_ms(time.time() if now is None else now)
        return self.timestamps.refusal(timestamp_ms(timestamp), now_ms)

    def takes_timestamp(
        self, timestamp: float | None, *, margin_ms: int = 0, now: float | None = None
    ) -> bool:
        """Whether the topic takes a record of ``timestamp`` now, ``margin_ms`` inside."""
        if self.timestamps is None or timestamp is None:
            return True
        now_ms = timestamp_ms(time.time() if now is None else now)
        return self.timestamps.inside(timestamp_ms(timestamp), now_ms, margin_ms=margin_ms)

    def refusal(self, key: bytes, value: bytes) -> Rejection | None:
        """Why this record cannot be sent (Kafka would refuse it), or None when it fits."""
        size = batch_bytes(key, value)
        if size <= self.max_bytes:
            return None
        return Rejection(
            TOO_LARGE_FOR_TOPIC,
            f"the record takes {size:,} bytes in a Kafka record batch (key and value "
            f"{size - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the "
            f"limit is {self.max_bytes:,} ({self.setting})",
        )


def config_strings(
    admin: KafkaAdminClient, kind: ConfigResourceType, name: str, keys: Sequence[str]
) -> dict[str, str]:
    """Settings of a topic or broker as Kafka gives them, in one request; those that cannot be
    read (or that the broker does not know) are left out (all of them when the request fails).

    kafka-python raises for a broker that has no DescribeConfigs (or none at all), but leaves a
    resource the broker refused (an ACL) out of its answer or empty.
    """
    resource = ConfigResource(kind, name, list(keys))
    try:
        described = admin.describe_configs([resource], config_filter="all")
        entries = described[kind.name.lower()][name]
    except (KafkaError, KeyError, TypeError, AttributeError) as exc:
        log.debug("kafka.config_unread", resource=name, keys=list(keys), error=repr(exc))
        return {}
    values: dict[str, str] = {}
    for key in keys:
        try:
            value = entries[key]["value"]
        except (KeyError, TypeError) as exc:
            log.debug("kafka.config_unread", resource=name, keys=[key], error=repr(exc))
            continue
        if value is not None:
            values[key] = str(value)
    return values


def _integers(values: Mapping[str, str], name: str) -> dict[str, int]:
    integers: dict[str, int] = {}
    for key, value in values.items():
        try:
            integers[key] = int(value)
        except ValueError as exc:
            log.debug("kafka.config_unread", resource=name, keys=[key], error=repr(exc))
    return integers


def config_values(
    admin: KafkaAdminClient, kind: ConfigResourceType, name: str, keys: Sequence[str]
) -> dict[str, int]:
    """Integer settings of a topic or broker, in one request; those that cannot be read are
    left out (all of them when the request fails; see :func:`config_strings`)."""
    return _integers(config_strings(admin, kind, name, keys), name)


def _broker_id(admin: KafkaAdminClient) -> str | None:
    try:
        brokers = admin.describe_cluster()["brokers"]
        first = brokers[0]
        return str(first.get("node_id", first.get("broker_id")))
    except (KafkaError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.debug("kafka.brokers_unread", error=repr(exc))
        return None


def record_limit(
    admin: KafkaAdminClient,
    topic: str,
    producer: tuple[int, str],
    *,
    warning: str = "ingest.topic_limit_unknown",
) -> RecordLimit:
    """The largest record batch ``topic`` takes from a producer whose own limit is
    ``producer`` (bytes, and the setting's name).

    The topic's ``max.message.bytes`` (its own, or the broker's default it inherits); when that
    cannot be read, the broker's ``message.max.bytes``; the producer's limit when it is smaller,
    or when neither can be read (then with one ``warning``). The topic's timestamp settings are
    read in the same request (:func:`timestamp_range`).
    """
    settings = config_strings(
        admin, ConfigResourceType.TOPIC, topic, ["max.message.bytes", *TIMESTAMP_CONFIGS]
    )
    timestamps = timestamp_range(topic, settings)
    read = _integers({k: v for k, v in settings.items() if k == "max.message.bytes"}, topic)
    topic_limit = read.get("max.message.bytes")
    found: tuple[int, str] | None = None
    if topic_limit is not None:
        found = (topic_limit, f"max.message.bytes of topic {topic!r}")
    else:
        broker = _broker_id(admin)
        if broker is not None:
            read = config_values(admin, ConfigResourceType.BROKER, broker, ["message.max.bytes"])
            if "message.max.bytes" in read:
                found = (read["message.max.bytes"], f"message.max.bytes of broker {broker}")
    if found is None:
        log.warning(
            warning,
            topic=topic,
            hint="neither the topic's max.message.bytes nor the broker's message.max.bytes "
            "could be read (no DescribeConfigs permission, or an old broker); a record over the "
            "limit will fail as send_failed:MessageSizeTooLargeError, and may fail records sent "
            "after it to the same partition",
        )
        return RecordLimit(*producer, timestamps=timestamps)
    return RecordLimit(*min(found, producer, key=lambda limit: limit[0]), timestamps=timestamps)


class TopicLimit:
    """The largest record a topic takes: read with ``read`` (in a thread) at the first
    :meth:`get`, then again once it is ``refresh_s`` old, or at the next :meth:`get` after
    :meth:`forget`. None until a read succeeded: records are then not checked, and Kafka's own
    refusal applies. ``event`` prefixes the warning logged when a read fails (``http``,
    ``validate``, ``score``). ``on_read`` is told of each limit read (the worker fits its
    producer's record batches to it: ``streams.kafka_send.fit_batches``)."""

    def __init__(
        self,
        read: Callable[[], RecordLimit],
        refresh_s: float = LIMIT_REFRESH_S,
        *,
        event: str = "http",
        on_read: Callable[[RecordLimit], object] | None = None,
    ) -> None:
        self._read = read
        self._refresh_s = refresh_s
        self._event = event
        self._on_read = on_read
        self._limit: RecordLimit | None = None
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    def _stale(self) -> bool:
        return time.monotonic() - self._read_at >= self._refresh_s

    async def get(self) -> RecordLimit | None:
        if not self._stale():
            return self._limit
        async with self._lock:  # one read for the callers that arrive meanwhile
            if self._stale():
                try:
                    self._limit = await asyncio.to_thread(self._read)
                except Exception as exc:  # KafkaUnreachable, a KafkaError, OSError
                    log.warning(
                        f"{self._event}.topic_limit_unread",
                        error=str(exc) or repr(exc),
                        hint="records are checked against the last limit read, if any, until "
                        "it is read again",
                    )
                else:
                    self._told(self._limit)
                self._read_at = time.monotonic()
        return self._limit

    def _told(self, limit: RecordLimit) -> None:
        if self._on_read is None:
            return
        try:
            self._on_read(limit)
        except Exception:  # the check against the limit read goes on all the same
            log.exception(f"{self._event}.topic_limit_not_applied")

    def forget(self) -> None:
        """Kafka refused a record as too large, or for its timestamp: the topic's limit or its
        timestamp range changed, read them again."""
        self._read_at = -math.inf


def kafka_topic_limit(
    settings: Settings | None, topic: str, producer: tuple[int, str], *, event: str = "http"
) -> Callable[[], RecordLimit]:
    """Reads ``topic``'s limit from Kafka as ``stormvarsel ingest`` does (the topic's
    ``max.message.bytes``, else the broker's ``message.max.bytes``, and ``producer``'s own when
    smaller). Without ``settings``, the worker's are read from the environment."""

    def read() -> RecordLimit:
        admin = connect_admin(settings or load_settings(), timeout_s=LIMIT_READ_TIMEOUT_S)
        try:
            return record_limit(admin, topic, producer, warning=f"{event}.topic_limit_unknown")
        finally:
            admin.close()

    return read


def producer_limit(app: Any) -> tuple[int, str]:
    """The Faust worker's own record limit (its producer's ``max_request_size``), named."""
    return int(app.conf.producer_max_request_size), "the worker's producer_max_request_size"


def worker_topic_limit(
    app: Any, settings: Settings | None, topic: str, *, event: str = "http"
) -> TopicLimit:
    """The limit of ``topic`` for the Faust ``app``'s producer: the topic's (or broker's), or
    the producer's own when that is smaller. Each limit read also bounds the producer's record
    batches (``streams.kafka_send.fit_batches``): Kafka applies the limit to a whole batch."""

    def fit(limit: RecordLimit) -> None:
        fit_batches(app, topic, limit.max_bytes)

    return TopicLimit(
        kafka_topic_limit(settings, topic, producer_limit(app), event=event),
        event=event,
        on_read=fit,
    )
