"""The detector's input: one scored mention, as the live pipeline and replays hand it over."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive")
#: Event times the detector accepts: 2000-01-01 to 2100-01-01 UTC. The validate stage refuses
#: times outside a much narrower range; this guards the detect stage against records written to
#: ``mentions.scored`` by anything else, where a time in the year 10^20 could not even be
#: bucketed. Within the range, :data:`MAX_AHEAD_MS` bounds how far ahead a mention may be.
EVENT_MS_RANGE = (946_684_800_000, 4_102_444_800_000)
#: How far a mention may be dated ahead of its arrival (``received_ms``) or, without that
#: stamp, ahead of the stream's clock (the highest mention time seen): 7 days. A mention dated
#: further ahead is dropped (counted in ``BrandDetector.dropped_total``, in no bucket), and a
#: mention moves the stream's clock at most this far. The validate stage allows an hour of
#: skew; a week lets a stream without arrival stamps be silent for days (a quiet brand
#: replayed on its own) and still bounds what one mention can cost: a week of buckets per
#: brand, where a mention dated 2099 made every brand close 38 million.
MAX_AHEAD_MS = 7 * 24 * 3_600_000
#: The largest follower or engagement count taken (2**53, the last integer a float holds exactly):
#: a larger one made reach arithmetic overflow (``OverflowError`` crashed the detect stage).
MAX_COUNT = 2**53


@dataclass(frozen=True, slots=True)
class MentionEvent:
    """One mention of one brand with its sentiment, reduced to what detection needs."""

    brand: str
    event_ms: int
    sentiment: Sentiment
    followers: int = 0
    author: str | None = None
    lang: str | None = None
    platform: str = "other"
    text: str = ""
    mention_id: str = ""
    url: str | None = None
    likes: int = 0
    shares: int = 0
    replies: int = 0
    is_brand_reply: bool = False
    #: When the validate stage received the mention (``received_at_ms``), if it says.
    received_ms: int | None = None
    #: What labelled it (``sentiment.model``: the scorer's model, or ``rule:...``), if it says.
    #: Not kept with a post's evidence in a saved state (``detectors.buckets``).
    model: str | None = None

    @property
    def engagement(self) -> int:
        return self.likes + self.shares + self.replies

    @property
    def clock_ms(self) -> int:
        """How far this mention moves the watermark: its event time, but no later than its
        arrival. A mention dated ahead of its arrival (a collector's clock, or local time
        written with a ``Z``) still goes into its own bucket; but if it moved the watermark
        there, every brand sharing the partition would have its current mentions counted late
        until real time caught up (up to the validator's hour of allowed skew)."""
        return watermark_clock(self.event_ms, self.received_ms)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MentionEvent:
        """Build from a ``mentions.scored`` JSON record.

        Expected fields: ``id``, ``text``, ``created_at_ms``, ``brand``, ``platform``, ``lang``,
        ``author {id, handle, followers}``, ``url``, ``engagement {likes, shares, replies}``,
        ``is_brand_reply`` and ``sentiment {label, negative, neutral, positive, model}``; and
        ``received_at_ms`` if the validate stage stamped it (older records lack it).
        Raises ``ValueError`` naming the field when a required one is missing or malformed.
        """
        brand = record.get("brand")
        if not isinstance(brand, str) or not brand:
            raise ValueError("brand: required, a non-empty string")
        created = record.get("created_at_ms")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise ValueError("created_at_ms: required, epoch milliseconds")
        # Comparisons, not math.isfinite (it raises OverflowError for an int beyond floats);
        # NaN and infinities fail them too.
        if not EVENT_MS_RANGE[0] <= created < EVENT_MS_RANGE[1]:
            raise ValueError(
                f"created_at_ms: {_shown(created)} is not between the years 2000 and 2100"
            )
        received = record.get("received_at_ms")
        if received is not None and (
            isinstance(received, bool)
            or not isinstance(received, int | float)
            or not EVENT_MS_RANGE[0] <= received < EVENT_MS_RANGE[1]
        ):
            raise ValueError(f"received_at_ms: {_shown(received)} is not epoch milliseconds")
        sentiment = record.get("sentiment")
        model: Any = None
        if isinstance(sentiment, Mapping):
            label = sentiment.get("label")
            model = sentiment.get("model")
            if not isinstance(model, str) or not model:
                model = None
        else:
            label = sentiment
        if label not in SENTIMENTS:
            raise ValueError(f"sentiment.label: expected one of {SENTIMENTS}, got {label!r}")
        author = record.get("author") or {}
        if not isinstance(author, Mapping):
            raise ValueError("author: expected an object")
        engagement = record.get("engagement") or {}
        if not isinstance(engagement, Mapping):
            raise ValueError("engagement: expected an object")
        author_key = author.get("id") or author.get("handle")
        return cls(
            brand=brand,
            event_ms=int(created),
            sentiment=cast(Sentiment, label),
            followers=_count(author.get("followers"), "author.followers"),
            author=str(author_key) if author_key is not None else None,
            lang=_optional_text(record.get("lang")),
            platform=_optional_text(record.get("platform")) or "other",
            text=str(record.get("text") or ""),
            mention_id=str(record.get("id") or ""),
            url=_optional_text(record.get("url")),
            likes=_count(engagement.get("likes"), "engagement.likes"),
            shares=_count(engagement.get("shares"), "engagement.shares"),
            replies=_count(engagement.get("replies"), "engagement.replies"),
            is_brand_reply=bool(record.get("is_brand_reply", False)),
            received_ms=int(received) if received is not None else None,
            model=model,
        )


def ahead_reference(event: MentionEvent, now_ms: int | None) -> int | None:
    """What a mention's date is checked against: its arrival if stamped, else the stream's
    clock ``now_ms`` (None: nothing to compare with)."""
    return event.received_ms if event.received_ms is not None else now_ms


def too_far_ahead(event: MentionEvent, now_ms: int | None) -> bool:
    """Whether a mention is dated more than :data:`MAX_AHEAD_MS` ahead of its
    :func:`ahead_reference`."""
    reference = ahead_reference(event, now_ms)
    return reference is not None and event.event_ms - reference > MAX_AHEAD_MS


def watermark_clock(event_ms: int, received_ms: float | None) -> int:
    """The time a mention moves the watermark to: its event time, no later than its arrival
    when that is known (see :attr:`MentionEvent.clock_ms`)."""
    return event_ms if received_ms is None else min(event_ms, int(received_ms))


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    # A comparison, not math.isfinite: that raises OverflowError for an int beyond floats.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{name}: expected a number from 0 to 2**53, got {_shown(value)}")
    return int(value)


def _shown(value: Any) -> str:
    """A value for an error message: an integer too long to print whole is described."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:40]


def _optional_text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
