"""The end of a replayed range on the real Kafka: the records just after ``--to`` move the
watermark as they did live, far enough for the range's last buckets to close whatever the
allowed lateness (``STORMVARSEL_DETECT_LATENESS_S``)."""

from __future__ import annotations

import json
import uuid

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.kafka_local import LocalKafka
from streams.replay.result import BucketPoint
from streams.replay.run import ReplayOptions, prepare, run_prepared
from streams.settings import load_settings

pytestmark = pytest.mark.integration

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def scored(n: int, t_ms: int) -> bytes:
    return json.dumps(
        {
            "id": f"m{n}",
            "text": "an ordinary day",
            "created_at_ms": t_ms,
            "brand": "acme",
            "platform": "x",
            "lang": "en",
            "author": {"id": f"u{n}", "followers": 10},
            "sentiment": {"label": "neutral"},
        }
    ).encode()


def test_the_last_buckets_close_with_a_lateness_longer_than_fifteen_minutes(
    kafka: LocalKafka,
) -> None:
    """With 30 minutes of allowed lateness the live watermark reached --to only once mentions
    dated 30 minutes past it came. The replay read (and ticked with) only the 15 minutes after
    --to, so the range's last quarter hour of buckets never closed: charted by the live run,
    missing from the replay (and their mentions counted "still open")."""
    prefix = f"tail{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}mentions.scored"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    stamps = [T0 + n * MINUTE for n in range(4 * 60)]  # a mention a minute for four hours
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for n, t_ms in enumerate(stamps):
        producer.send(topic, key=b"acme", value=scored(n, t_ms), timestamp_ms=t_ms)
    producer.flush()
    producer.close()
    lateness_ms = 30 * MINUTE
    settings = load_settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        topic_prefix=prefix,
        detect_lateness_s=lateness_ms / 1000,
    )
    start, end = T0 + HOUR, T0 + 2 * HOUR
    result = run_prepared(prepare(settings, ReplayOptions(start, end, topic=topic, warmup_ms=HOUR)))

    live = Replayer(DetectorConfig(), lateness_ms)
    expected: list[BucketPoint] = []
    for n, t_ms in enumerate(stamps):
        event = MentionEvent.from_record(json.loads(scored(n, t_ms)))
        for output in live.feed(event):
            if isinstance(output, BucketSummary) and start <= output.start_ms < end:
                expected.append(BucketPoint.from_summary(output))
    (run,) = result.runs
    assert expected[-1].end_ms == end  # live closed the range's buckets right up to --to
    assert run.buckets["acme"] == expected
    assert run.unclosed == 0
