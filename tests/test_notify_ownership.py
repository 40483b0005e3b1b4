"""Which stored alerts a notifier re-sends: only those of the partitions it owns."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.agents.notify import Tracked, key_partition, owned_alerts
from streams.kafka_local import LocalKafka


def entry(alert_id: str, status: str, partition: int) -> dict[str, object]:
    alert = {"alert_id": alert_id, "status": status, "brand": alert_id.split("-")[0]}
    return asdict(Tracked(alert, ["critical"], 100.0, partition))


def test_standby_copies_of_other_partitions_are_not_resent() -> None:
    """A standby copy can still say firing after the owner resolved the episode; a notifier
    that re-sent it would bring the page back."""
    items = [
        ("acme", {"acme-1": entry("acme-1", "firing", 0)}),
        (
            "nordlys",
            {
                "nordlys-1": entry("nordlys-1", "firing", 3),
                "nordlys-0": entry("nordlys-0", "resolved", 3),
            },
        ),
    ]
    assert sorted(owned_alerts(items, {0, 1}, 4)) == ["acme-1"]
    assert sorted(owned_alerts(items, {3}, 4)) == ["nordlys-0", "nordlys-1"]
    assert owned_alerts(items, set(), 4) == {}


def test_an_entry_saved_before_partitions_were_recorded_belongs_to_one_worker_only() -> None:
    """Kept by every worker, such an entry was re-sent by all of them, stale copies too."""
    old = {"alert": {"alert_id": "acme-1", "status": "firing"}, "severities": ["warning"]}
    home = key_partition("acme", 6)
    owners = [p for p in range(6) if owned_alerts([("acme", {"acme-1": old})], {p}, 6)]
    assert owners == [home]
    tracked = owned_alerts([("acme", {"acme-1": old})], {home}, 6)
    assert tracked["acme-1"].partition == home
    assert tracked["acme-1"].severities == ["warning"]


@pytest.mark.integration
def test_the_derived_partition_is_where_the_producer_put_the_brand(kafka: LocalKafka) -> None:
    """Faust's producer (aiokafka, default partitioner) against the real broker."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic("ownership-check", num_partitions=6, replication_factor=1)])
    admin.close()
    brands = ["acme", "nordlys-energi", "fjordbank", "sas", "norwegian", "ikea", "ølbryggeriet"]

    async def placed() -> dict[str, int]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            return {
                brand: (
                    await producer.send_and_wait("ownership-check", b"{}", brand.encode())
                ).partition
                for brand in brands
            }
        finally:
            await producer.stop()

    where = asyncio.run(placed())
    assert where == {brand: key_partition(brand, 6) for brand in brands}
    assert len(set(where.values())) > 1  # the brands do spread, so the check can fail
