"""A brand's saved state stays far below Kafka's record limit, whatever its mentions hold."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from detectors.events import MentionEvent
from detectors.replay import Replayer
from detectors.text import MAX_TERM_LENGTH
from detectors.timeslots import hour_of_day
from tests.detector_support import DAY, MINUTE, T0, daily_rate, stream

#: Kafka's default largest record (``message.max.bytes``), which the state is saved as.
KAFKA_RECORD_LIMIT = 1_000_000


def _keys(table: dict[str, Any]) -> list[str]:
    """The keys of a saved :class:`detectors.drivers.LanguageTable`, every language."""
    return [key for counts in table.values() for key in counts["counter"]["counts"]]


def test_state_stays_small_with_posts_of_long_unbroken_runs() -> None:
    """Two days of normal traffic and 30 neutral posts, each one 40,000-character token (a
    base64 blob, a URL without scheme, a run of Chinese: mentions may be 64 KiB). Each run was
    a term of the 7-day background: the state was 640 KB here (41 KB now), and over a megabyte
    with more such posts, which the worker saves as one Kafka record, and the producer refused
    it."""
    rng = random.Random(3)
    normal = stream("acme", T0, 2 * 1440, lambda t: daily_rate(hour_of_day(t), 5.0))
    runs = [
        MentionEvent(
            "acme",
            T0 + DAY + i * 45 * MINUTE + 7,
            "neutral",
            lang="en",
            text="".join(rng.choice(string.ascii_letters) for _ in range(40_000)),
            mention_id=f"run{i}",
        )
        for i in range(30)
    ]
    replayer = Replayer()
    for event in sorted([*normal, *runs], key=lambda e: (e.event_ms, e.mention_id)):
        replayer.feed(event)
    state = replayer.detectors["acme"].to_state()
    size = len(json.dumps(state))
    assert size < KAFKA_RECORD_LIMIT // 10, size
    keys = _keys(state["background"]) + _keys(state["recent_terms"])
    assert keys and max(len(k) for k in keys) <= 2 * MAX_TERM_LENGTH + 1
