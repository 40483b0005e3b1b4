"""Where ingest's record limit comes from when the topic's own cannot be read (no
DescribeConfigs permission, an old broker): the broker's default, then the producer's own."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import IncompatibleBrokerVersion, KafkaError
from structlog.testing import capture_logs

from streams.ingest.kafka_sink import PRODUCER_LIMIT, PRODUCER_MAX_REQUEST_SIZE
from streams.topic_limit import RECORD_BATCH_OVERHEAD, RecordLimit, record_limit


class FakeAdmin:
    """Answers describe_configs as kafka-python does: a resource the broker refused (an ACL)
    comes back empty; a broker without DescribeConfigs raises."""

    def __init__(
        self,
        topic: dict[str, str] | None,
        broker: dict[str, str] | None,
        error: KafkaError | None = None,
    ) -> None:
        self._configs = {ConfigResourceType.TOPIC: topic, ConfigResourceType.BROKER: broker}
        self._error = error
        self.asked: list[tuple[str, str]] = []

    def describe_configs(self, resources: list[ConfigResource], config_filter: str) -> Any:
        if self._error is not None:
            raise self._error
        (resource,) = resources
        kind = ConfigResourceType(resource.resource_type)
        self.asked.append((kind.name, resource.name))
        values = self._configs[kind] or {}
        return {kind.name.lower(): {resource.name: {k: {"value": v} for k, v in values.items()}}}

    def describe_cluster(self) -> Any:
        if self._error is not None:
            raise self._error
        return {"brokers": [{"node_id": 3, "host": "127.0.0.1"}]}


def limit_with_logs(admin: FakeAdmin) -> tuple[RecordLimit, list[MutableMapping[str, Any]]]:
    with capture_logs() as logs:
        limit = record_limit(admin, "mentions", PRODUCER_LIMIT)  # type: ignore[arg-type]
    return limit, [entry for entry in logs if entry["log_level"] == "warning"]


def test_the_topic_limit_applies_without_asking_the_broker() -> None:
    admin = FakeAdmin({"max.message.bytes": "2000"}, {"message.max.bytes": "900"})
    limit, warnings = limit_with_logs(admin)
    assert limit == RecordLimit(2000, "max.message.bytes of topic 'mentions'")
    assert admin.asked == [("TOPIC", "mentions")]
    assert warnings == []


def test_a_topic_limit_it_may_not_read_falls_back_to_the_brokers() -> None:
    limit, warnings = limit_with_logs(FakeAdmin(None, {"message.max.bytes": "5000"}))
    assert limit == RecordLimit(5000, "message.max.bytes of broker 3")
    assert warnings == []


def test_the_producers_max_request_size_applies_when_smaller() -> None:
    limit, _ = limit_with_logs(FakeAdmin({"max.message.bytes": "8000000"}, None))
    assert limit == RecordLimit(PRODUCER_MAX_REQUEST_SIZE, "the producer's max_request_size")


@pytest.mark.parametrize(
    "admin",
    [FakeAdmin(None, None), FakeAdmin(None, None, IncompatibleBrokerVersion("DescribeConfigs"))],
    ids=["acl-denied", "old-broker"],
)
def test_an_unreadable_limit_is_one_warning_and_the_producers_own_applies(
    admin: FakeAdmin,
) -> None:
    limit, warnings = limit_with_logs(admin)
    assert limit == RecordLimit(PRODUCER_MAX_REQUEST_SIZE, "the producer's max_request_size")
    assert [entry["event"] for entry in warnings] == ["ingest.topic_limit_unknown"]


def test_a_record_fits_up_to_the_limit_with_the_batch_overhead() -> None:
    limit = RecordLimit(2000, "max.message.bytes of topic 'mentions'")

    fits = 2000 - RECORD_BATCH_OVERHEAD - 4
    assert limit.refusal(b"key1", b"v" * fits) is None
    refusal = limit.refusal(b"key1", b"v" * (fits + 1))
    assert refusal is not None and refusal.reason == "too_large_for_topic"
    assert refusal.message == (
        f"the record takes 2,001 bytes in a Kafka record batch (key and value "
        f"{2001 - RECORD_BATCH_OVERHEAD:,} + {RECORD_BATCH_OVERHEAD} for the batch); the limit "
        "is 2,000 (max.message.bytes of topic 'mentions')"
    )
