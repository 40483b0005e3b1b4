"""Synthetic mention streams and data paths shared by the detector tests (no tests here)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from detectors.events import MentionEvent, Sentiment

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

COMPLAINTS = [
    "refund still missing after three weeks",
    "app crashed again during checkout",
    "customer service never answers the phone",
]
NORMAL = ["nice new store opening", "ordered shoes yesterday", "anyone tried the summer menu"]


def daily_rate(hour: int, base: float) -> float:
    """Mentions per minute: quiet at night, busiest in the evening (peak about 3x the mean)."""
    return base * (1.0 + 0.9 * math.sin((hour - 12) / 24 * 2 * math.pi)) + base * 0.1


def stream(
    brand: str,
    start_ms: int,
    minutes: int,
    rate: Callable[[int], float],
    negative_share: float | Callable[[int], float] = 0.25,
    positive_share: float = 0.25,
    seed: int = 1,
    texts: list[str] | None = None,
) -> Iterator[MentionEvent]:
    """Poisson mentions, minute by minute; ``rate(t_ms)`` in mentions per minute."""
    rng = random.Random(seed)
    n = 0
    for m in range(minutes):
        t = start_ms + m * MINUTE
        lam = rate(t)
        # Knuth's Poisson sampler is fine for the small rates used here.
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= rng.random()
            if p <= limit:
                break
            k += 1
        neg = negative_share(t) if callable(negative_share) else negative_share
        for _ in range(k):
            u = rng.random()
            sentiment: Sentiment = (
                "negative" if u < neg else "positive" if u < neg + positive_share else "neutral"
            )
            pool = texts or (COMPLAINTS if sentiment == "negative" else NORMAL)
            n += 1
            yield MentionEvent(
                brand=brand,
                event_ms=t + rng.randrange(MINUTE),
                sentiment=sentiment,
                followers=rng.randrange(10, 5000),
                author=f"user{rng.randrange(100000)}",
                lang="en",
                platform="x",
                text=rng.choice(pool),
                mention_id=f"{brand}-{seed}-{n}",
                url=f"https://x.example/{brand}/{n}",
                likes=rng.randrange(20),
                shares=rng.randrange(5),
                replies=rng.randrange(5),
            )


def angry_posts_at_4am(brand: str, count: int, day: int = 7) -> list[MentionEvent]:
    """``count`` negative posts a minute apart from 04:00 of day ``day`` after ``T0``."""
    return [
        MentionEvent(
            brand,
            T0 + day * DAY + 4 * HOUR + i * MINUTE,
            "negative",
            text="awful",
            mention_id=f"angry{i}",
        )
        for i in range(count)
    ]
