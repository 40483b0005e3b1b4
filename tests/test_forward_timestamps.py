"""The timestamps a topic takes, and the forwarder's check of a record's against them, without
Kafka (``tests/test_forward_timestamp_limits.py`` runs them on the real broker).

A topic of ``message.timestamp.type`` ``CreateTime`` refuses a record dated more than
``message.timestamp.before.max.ms`` before the broker's clock or ``after.max.ms`` after it
(before Kafka 4.0 each falls back to ``message.timestamp.difference.max.ms`` while unset), and
with it every record of its batch.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import InvalidTimestampError

from streams.forwarding import (
    FORWARD_REJECTION_REASONS,
    TIMESTAMP_RESEND_MARGIN_MS,
    Forwarder,
    flush_settled,
)
from streams.topic_limit import (
    TIMESTAMP_CONFIGS,
    TIMESTAMP_OUTSIDE_TOPIC_RANGE,
    RecordLimit,
    TimestampRange,
    TopicLimit,
    record_limit,
    timestamp_range,
)
from tests.test_forward_refusals import _App, _DeadLetters, _delivered, _Destination, _Message
from tests.test_ingest_topic_limit import FakeAdmin

ROOT = Path(__file__).resolve().parents[1]
UNSET = str(2**63 - 1)  # Kafka's default for the three settings: no bound
HOUR_MS = 3_600_000
NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
NOW = NOW_MS / 1000


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        pytest.param({}, None, id="nothing-read"),
        pytest.param(
            {"message.timestamp.type": "CreateTime", "message.timestamp.before.max.ms": UNSET},
            None,
            id="kafka4-defaults",
        ),
        pytest.param(
            {
                "message.timestamp.type": "LogAppendTime",
                "message.timestamp.before.max.ms": str(HOUR_MS),
            },
            None,
            id="log-append-time-takes-any",
        ),
        pytest.param(
            {
                "message.timestamp.type": "CreateTime",
                "message.timestamp.before.max.ms": str(HOUR_MS),
                "message.timestamp.after.max.ms": UNSET,
            },
            TimestampRange("t", HOUR_MS, None),
            id="kafka4-before",
        ),
        pytest.param(
            {
                "message.timestamp.type": "CreateTime",
                "message.timestamp.before.max.ms": UNSET,
                "message.timestamp.after.max.ms": "60000",
            },
            TimestampRange("t", None, 60_000),
            id="kafka4-after",
        ),
        pytest.param(
            {"message.timestamp.type": "CreateTime", "message.timestamp.difference.max.ms": "5000"},
            TimestampRange(
                "t",
                5000,
                5000,
                "message.timestamp.difference.max.ms",
                "message.timestamp.difference.max.ms",
            ),
            id="before-kafka-3.6",
        ),
        pytest.param(
            {
                "message.timestamp.type": "CreateTime",
                "message.timestamp.difference.max.ms": "5000",
                "message.timestamp.before.max.ms": str(HOUR_MS),
                "message.timestamp.after.max.ms": UNSET,
            },
            TimestampRange(
                "t",
                HOUR_MS,
                5000,
                "message.timestamp.before.max.ms",
                "message.timestamp.difference.max.ms",
            ),
            id="kafka3.6-falls-back-to-difference-while-unset",
        ),
        pytest.param(
            {
                "message.timestamp.before.max.ms": "not a number",
                "message.timestamp.after.max.ms": "0",
            },
            TimestampRange("t", None, 0),
            id="unreadable-values-skipped",
        ),
    ],
)
def test_the_range_comes_from_the_settings_kafka_applies(
    configs: dict[str, str], expected: TimestampRange | None
) -> None:
    assert timestamp_range("t", configs) == expected


def test_the_range_ends_where_kafka_refuses() -> None:
    """Kafka refuses ``now - timestamp > before`` and ``timestamp - now > after``."""
    window = TimestampRange("t", HOUR_MS, 60_000)
    assert window.bounds(NOW_MS) == (NOW_MS - HOUR_MS, NOW_MS + 60_000)
    assert window.inside(NOW_MS - HOUR_MS, NOW_MS)
    assert not window.inside(NOW_MS - HOUR_MS - 1, NOW_MS)
    assert window.inside(NOW_MS + 60_000, NOW_MS)
    assert not window.inside(NOW_MS + 60_001, NOW_MS)
    assert window.refusal(NOW_MS, NOW_MS) is None
    assert window.inside(NOW_MS - HOUR_MS + 5000, NOW_MS, margin_ms=5000)
    assert not window.inside(NOW_MS - HOUR_MS + 4999, NOW_MS, margin_ms=5000)
    assert TimestampRange("t", None, None).inside(0, NOW_MS)


def test_a_refusal_names_the_timestamp_the_range_and_the_settings() -> None:
    window = TimestampRange("t.mentions.valid", HOUR_MS, None)
    refusal = window.refusal(NOW_MS - 3 * HOUR_MS, NOW_MS)
    assert refusal is not None and refusal.reason == TIMESTAMP_OUTSIDE_TOPIC_RANGE
    assert refusal.message == (
        "the record's timestamp 2027-01-15T05:00:00.000+00:00 (1799989200000 ms) is "
        "10,800,000 ms (3 h 0 min) before the worker's clock (2027-01-15T08:00:00.000+00:00); "
        "topic 't.mentions.valid' takes timestamps from 3,600,000 ms (1 h 0 min) before "
        "(message.timestamp.before.max.ms=3600000) to any time after (no "
        "message.timestamp.after.max.ms) the broker's clock (message.timestamp.type=CreateTime)"
    )
    ahead = TimestampRange("t", None, 1000).refusal(NOW_MS + 1500, NOW_MS)
    assert ahead is not None and "1,500 ms after the worker's clock" in ahead.message


def test_a_record_limit_checks_faust_timestamps_in_seconds() -> None:
    limit = RecordLimit(1000, "x", TimestampRange("t", HOUR_MS, None))
    assert limit.timestamp_refusal(NOW - 3600, now=NOW) is None
    refused = limit.timestamp_refusal(NOW - 3600.001, now=NOW)
    assert refused is not None and refused.reason == TIMESTAMP_OUTSIDE_TOPIC_RANGE
    assert limit.timestamp_refusal(None, now=NOW) is None  # the producer dates it now
    # Faust passes 0 on as the record's timestamp (its driver: ``int(ts * 1000) if ts else
    # ts``), and aiokafka dates only None now: 0 is the epoch, which the range refuses.
    assert limit.timestamp_refusal(0.0, now=NOW) is not None
    assert RecordLimit(1000, "x").timestamp_refusal(1.0, now=NOW) is None  # no range read
    assert limit.takes_timestamp(NOW - 3590, margin_ms=5000, now=NOW)
    assert not limit.takes_timestamp(NOW - 3598, margin_ms=5000, now=NOW)


def test_the_range_is_read_with_the_size_limit_in_one_request() -> None:
    admin = FakeAdmin(
        {
            "max.message.bytes": "2000",
            "message.timestamp.type": "CreateTime",
            "message.timestamp.before.max.ms": str(HOUR_MS),
            "message.timestamp.after.max.ms": UNSET,
        },
        None,
    )
    limit = record_limit(admin, "mentions.valid", (1_000_000, "producer"))  # type: ignore[arg-type]
    assert limit == RecordLimit(
        2000,
        "max.message.bytes of topic 'mentions.valid'",
        TimestampRange("mentions.valid", HOUR_MS, None),
    )
    assert admin.asked == [("TOPIC", "mentions.valid")]
    assert "message.timestamp.difference.max.ms" in TIMESTAMP_CONFIGS  # asked of older brokers


class _Kafka(_Destination):
    """The destination: records handed over (``sent``), answered by the test (``pending``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    def as_future_message(self, **fields: Any) -> asyncio.Future[Any]:
        self.sent.append(fields)
        return super().as_future_message()


def _forwarder(ranges: list[TimestampRange | None]) -> tuple[Forwarder, _Kafka, _DeadLetters]:
    """A forwarder whose destination's range is read from ``ranges[-1]`` (a test appends to it
    to change the topic's settings)."""
    destination, dlq = _Kafka(), _DeadLetters()
    limit = TopicLimit(lambda: RecordLimit(1_000_000, "x", ranges[-1]), event="validate")
    forwarder = Forwarder(_App(), destination, dlq, stage="validate", limit=limit)  # type: ignore[arg-type]
    return forwarder, destination, dlq


def _letters(dlq: _DeadLetters) -> list[dict[str, Any]]:
    return [json.loads(value) for value in dlq.sent]


def test_a_record_outside_the_range_is_dead_lettered_without_being_sent() -> None:
    async def run() -> None:
        forwarder, destination, dlq = _forwarder([TimestampRange("t", HOUR_MS, None)])
        refused: list[int] = []
        stale = time.time() - 3 * 3600
        sent = await forwarder.forward(
            _Message(),  # type: ignore[arg-type]
            key=b"k",
            value=b"v",
            timestamp=stale,
            refused=lambda: refused.append(1),
        )
        assert not sent and refused == [1] and destination.sent == []
        assert await forwarder.forward(_Message(), key=b"k", value=b"v", timestamp=time.time())  # type: ignore[arg-type]
        assert len(destination.sent) == 1
        (letter,) = _letters(dlq)
        assert letter["reason"] == TIMESTAMP_OUTSIDE_TOPIC_RANGE
        assert letter["message"].startswith("not forwarded to t.mentions.valid: the record's ")
        assert "message.timestamp.before.max.ms=3600000" in letter["message"]

    asyncio.run(run())


def test_records_refused_with_an_old_one_are_sent_once_more_and_the_old_one_dead_lettered() -> None:
    """The range was set after the worker read it: Kafka refuses the batch of a recent record and
    an old one. Read again, the recent one lies inside (sent once more), the old one outside."""

    async def run() -> None:
        ranges: list[TimestampRange | None] = [None]
        forwarder, destination, dlq = _forwarder(ranges)
        delivered: list[str] = []
        refused: list[str] = []
        for name, timestamp in (("recent", time.time() - 60), ("old", time.time() - 3 * 3600)):
            assert await forwarder.forward(
                _Message(),  # type: ignore[arg-type]
                key=b"k",
                value=name.encode(),
                timestamp=timestamp,
                delivered=lambda name=name: delivered.append(name),  # type: ignore[misc]
                refused=lambda name=name: refused.append(name),  # type: ignore[misc]
            )
        ranges.append(TimestampRange("t", HOUR_MS, None))  # set since it was read
        for pending in destination.pending:  # one batch, refused whole
            pending.set_exception(InvalidTimestampError())
        for _ in range(50):
            if len(destination.pending) > 2:
                break
            await asyncio.sleep(0.01)
        assert [fields["value"] for fields in destination.sent] == [b"recent", b"old", b"recent"]
        destination.pending[2].set_result(None)
        await flush_settled(forwarder._app, _delivered)
        assert delivered == ["recent"] and refused == ["old"]
        (letter,) = _letters(dlq)
        assert letter["reason"] == "refused_by_kafka"
        assert "InvalidTimestampError" in letter["message"]
        assert "read again, the record's timestamp" in letter["message"]
        assert "message.timestamp.before.max.ms=3600000" in letter["message"]

    asyncio.run(run())


@pytest.mark.parametrize("again", ["refused again", "at the edge"])
def test_a_record_refused_for_its_timestamp_is_sent_once_at_most(again: str) -> None:
    """Sent once more when inside the range read again, and dead-lettered when Kafka refuses it
    again (the broker's clock is ahead of the worker's); not sent again at all when it lies
    within the margin of the range's edge, where it would be refused again with its batch."""

    async def run() -> None:
        window = TimestampRange("t", HOUR_MS, None)
        forwarder, destination, dlq = _forwarder([window])
        age_s = 1800 if again == "refused again" else 3600 - TIMESTAMP_RESEND_MARGIN_MS / 2000
        assert await forwarder.forward(
            _Message(),  # type: ignore[arg-type]
            key=b"k",
            value=b"v",
            timestamp=time.time() - age_s,
        )
        destination.pending[0].set_exception(InvalidTimestampError())
        if again == "refused again":
            for _ in range(50):
                if len(destination.pending) > 1:
                    break
                await asyncio.sleep(0.01)
            destination.pending[1].set_exception(InvalidTimestampError())
        await flush_settled(forwarder._app, _delivered)
        assert len(destination.sent) == (2 if again == "refused again" else 1)
        (letter,) = _letters(dlq)
        assert letter["reason"] == "refused_by_kafka"
        if again == "at the edge":
            assert "of the edge of the range" in letter["message"]

    asyncio.run(run())


def test_the_forwarders_reasons_are_documented_and_alerted_on() -> None:
    mentions = (ROOT / "docs" / "mentions.md").read_text(encoding="utf-8")
    rules = (ROOT / "deploy" / "prometheus" / "rules" / "pipeline.yml").read_text(encoding="utf-8")
    alerted = re.findall(r'stage="validate", reason=~"([^"]+)"', rules)
    assert alerted
    for reason in FORWARD_REJECTION_REASONS:
        assert f"| `{reason}` |" in mentions, reason
        for pattern in alerted:
            assert reason in pattern.split("|"), (reason, pattern)
