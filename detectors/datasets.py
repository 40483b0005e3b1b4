"""Loaders that turn public evaluation data into mention events (used by tests and docs)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from detectors.events import SENTIMENTS, MentionEvent, Sentiment


def airline_tweets(path: Path) -> list[MentionEvent]:
    """The "Twitter US Airline Sentiment" CSV as mentions, in time order.

    The airline is the brand and the human label the sentiment. Rows of the held-out test split
    have no label: they are kept as *neutral* mentions, because they are real volume (dropping
    them would hide a fifth of every brand's traffic) while their sentiment is unknown. Times are
    ``m/d/Y H:M`` and taken as UTC; ties keep the tweet-id order.
    """
    events: list[MentionEvent] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            created = datetime.strptime(row["tweet_created"], "%m/%d/%Y %H:%M").replace(tzinfo=UTC)
            label = row.get("airline_sentiment") or "neutral"
            sentiment = cast(Sentiment, label if label in SENTIMENTS else "neutral")
            events.append(
                MentionEvent(
                    brand=row["airline"],
                    event_ms=int(created.timestamp() * 1000),
                    sentiment=sentiment,
                    lang="en",
                    platform="x",
                    text=row["text"],
                    mention_id=row["tweet_id"],
                )
            )
    events.sort(key=lambda e: (e.event_ms, e.mention_id))
    return events
