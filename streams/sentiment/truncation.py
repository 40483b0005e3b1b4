"""What is scored of a text longer than the model's token limit: its start and its end.

A post often opens politely and complains at the end ("I have flown with you for years and
always liked ... But today you lost my luggage."); keeping only the first tokens scored such a
post by its lead-in. :func:`keep_ends` keeps the first half of the token budget and the last
half (the tokeniser's start and end tokens stay in place), dropping the middle.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams import metrics
from streams.log_setup import get_logger

log = get_logger(__name__)

#: Characters kept at each end of a text before tokenising; far more than ``max_length`` tokens
#: ever need (a token is at most a few characters), it only bounds the tokeniser's work.
CHARS_PER_TOKEN_CAP = 16


def clip_chars(text: str, max_length: int) -> str:
    """``text``, or for a huge one its first and last ``max_length * CHARS_PER_TOKEN_CAP``
    characters (each end still yields more tokens than :func:`keep_ends` keeps of it)."""
    cap = max_length * CHARS_PER_TOKEN_CAP
    if len(text) <= 2 * cap:
        return text
    return f"{text[:cap]} {text[-cap:]}"


def keep_ends(ids: Sequence[int], max_length: int) -> list[int]:
    """At most ``max_length`` token ids: all of them, or the first ``ceil(max_length / 2)`` and
    the last ``floor(max_length / 2)`` (the start and end tokens are the first and last ids)."""
    if len(ids) <= max_length:
        return list(ids)
    head = (max_length + 1) // 2
    tail = max_length - head
    return [*ids[:head], *ids[len(ids) - tail :]]


def log_truncated(lengths: Sequence[int], max_length: int, backend: str) -> None:
    """Count (``stormvarsel_sentiment_truncated``) and log at debug a batch's texts longer
    than ``max_length`` tokens."""
    longer = [n for n in lengths if n > max_length]
    if longer:
        metrics.SENTIMENT_TRUNCATED.labels(backend=backend).inc(len(longer))
        log.debug(
            "sentiment.truncated",
            backend=backend,
            texts=len(longer),
            of=len(lengths),
            longest_tokens=max(longer),
            max_length=max_length,
        )
