"""A brand's saved state stays far below Kafka's record limit, whatever its mentions hold."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from detectors.brand import BrandDetector
from detectors.buckets import MAX_POST_TEXT, author_key, post_from_state
from detectors.config import DriversConfig
from detectors.drivers import TABLE_BUDGET_BYTES, LanguageTable
from detectors.events import MentionEvent
from detectors.replay import Replayer
from detectors.text import MAX_TERM_LENGTH, Terms
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


def _words(*words: str) -> Terms:
    return Terms(words=words, hashtags=(), phrases=())


def _random_terms(rng: random.Random, letters: str, n: int) -> list[str]:
    return ["".join(rng.choices(letters, k=MAX_TERM_LENGTH)) for _ in range(n)]


#: Eight languages, three scripts: escaped in JSON, a Chinese or Russian letter takes 6 bytes.
_SCRIPTS = {
    "ascii": string.ascii_lowercase,
    "cjk": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 500)),
    "cyrillic": "".join(chr(c) for c in range(0x430, 0x450)),
}
_LANGS = {
    "en": "ascii",
    "nb": "ascii",
    "sv": "ascii",
    "da": "ascii",
    "de": "ascii",
    "fr": "ascii",
    "zh": "cjk",
    "ru": "cyrillic",
}


def test_a_brand_of_random_terms_in_eight_languages_stays_one_kafka_record() -> None:
    """Two days of posts of 60 random 40-character terms each, in eight languages, then an
    hour of them as a storm: each language filled its term counters, and the background, the
    recent terms and the storm's copy of them made the state 4 MB. Each term table now keeps
    within its byte budget, and the whole state within a Kafka record."""
    rng = random.Random(1)
    pools = {name: _random_terms(rng, letters, 20_000) for name, letters in _SCRIPTS.items()}
    langs = list(_LANGS)

    def post(i: int, base: MentionEvent) -> MentionEvent:
        lang = langs[i % len(langs)]
        text = " ".join(rng.sample(pools[_LANGS[lang]], 60))
        return MentionEvent(
            "acme", base.event_ms, base.sentiment, lang=lang, text=text, mention_id=base.mention_id
        )

    normal = stream("acme", T0, 2 * 1440, lambda t: daily_rate(hour_of_day(t), 8.0))
    events = [post(i, e) for i, e in enumerate(normal)]
    end = T0 + 2 * DAY
    events += [
        post(i, MentionEvent("acme", end + i * 1200, "negative", mention_id=f"s{i}"))
        for i in range(1500)
    ]
    replayer = Replayer()
    for event in sorted(events, key=lambda e: (e.event_ms, e.mention_id)):
        replayer.feed(event)
    detector = replayer.detectors["acme"]
    assert "storm" in detector.episodes  # the storm's evidence holds a third table
    tables = [detector.background, detector.recent_terms, detector.episodes["storm"].evidence.terms]
    for table in tables:
        assert len(table.by_lang) == len(_LANGS)
        assert table.cost() <= TABLE_BUDGET_BYTES
        # The budget is counted as the saved state writes it (an upper bound).
        assert len(json.dumps(table.to_state())) <= table.cost()
    size = len(json.dumps(detector.to_state()))
    assert size < KAFKA_RECORD_LIMIT * 0.6, size


def test_a_table_over_its_budget_forgets_the_rarest_terms_of_its_largest_language() -> None:
    """The budget halves the largest language: its most frequent terms and the small
    languages stay whole."""
    table = LanguageTable(DriversConfig())
    rng = random.Random(5)
    table.add("nb", _words("forsinket", "kansellert"), 1.0)
    for _ in range(5):
        table.add("en", _words("cancelled", "refund"), 1.0)
    noise = _random_terms(rng, _SCRIPTS["cjk"], 3000)
    for i in range(0, len(noise), 50):
        table.add("zh", _words(*noise[i : i + 50]), 1.0)
    assert table.cost() <= TABLE_BUDGET_BYTES
    assert table.by_lang["zh"].counter.cost > TABLE_BUDGET_BYTES // 4  # halved, not emptied
    assert table.by_lang["en"].count("cancelled") == 5.0
    assert table.by_lang["nb"].count("kansellert") == 1.0


def test_a_minute_of_long_posts_keeps_a_short_text_of_each() -> None:
    """Forty 60,000-character Russian posts in one minute, with and without ids: every one of
    the bucket's 28 places held a whole post, and a post without an id held its text twice
    (as its key): the open bucket made the state 10 MB. A post keeps 500 characters now."""
    rng = random.Random(2)
    detector = BrandDetector("acme")
    for i in range(40):
        text = "".join(rng.choices("абвгдежзийклмнопрстуфхцчшщ ", k=60_000))
        detector.observe(
            MentionEvent(
                "acme",
                T0 + i * 1000,
                "negative" if i % 2 else "positive",
                lang="ru",
                text=text,
                mention_id=f"p{i}" if i % 3 else "",
                followers=i,
                likes=i,
            )
        )
    state = detector.to_state()
    posts = [
        post_from_state(entry[3])
        for bucket in state["open"]
        for heaps in bucket["heaps"].values()
        for heap in heaps
        for entry in heap
    ]
    assert len(posts) == 28
    assert all(len(post.text) == MAX_POST_TEXT for post in posts)
    assert len(json.dumps(state)) < KAFKA_RECORD_LIMIT // 4


def test_a_bucket_of_thousands_of_long_author_names_stays_small_and_counts_them_apart() -> None:
    """2,000 authors (a bucket's cap) whose ids are 256 Cyrillic letters (the longest an id may
    be; JSON writes each letter as 6 bytes) post twice each in one minute: the bucket kept
    every name for its unique-author count and once more for reach, and the open bucket made
    the state 4.9 MB. It keeps a digest of a long name now: the same authors and reach are
    counted, in a fraction of the bytes."""
    detector = BrandDetector("acme")
    authors = [f"{'Ж' * 250}{n:06d}" for n in range(2000)]
    for i in range(4000):  # each author twice: counted once for authors and for reach
        detector.observe(
            MentionEvent(
                "acme",
                T0 + 10 + i,
                "negative",
                lang="ru",
                text="ужасный сервис",
                mention_id=f"m{i}",
                author=authors[i % 2000],
                followers=10,
            )
        )
    (bucket,) = detector.to_state()["open"]
    assert len(bucket["authors"]) == len(bucket["negative_authors"]) == 2000  # the cap
    assert bucket["reach_negative"] == 2000 * 10  # each author's followers once
    assert len(json.dumps(bucket["authors"])) <= 2000 * len('"~0123456789abcdef0123", ')
    assert len(json.dumps(detector.to_state())) < KAFKA_RECORD_LIMIT // 4


def test_author_keys_tell_authors_apart_and_keep_short_names() -> None:
    assert author_key("kari_nordmann") == "kari_nordmann"  # short ASCII: kept, readable
    long_ids = [author_key("Ж" * 250 + f"{n:06d}") for n in range(1000)]
    assert len(set(long_ids)) == 1000 and all(len(k) == 21 for k in long_ids)
    assert author_key("Åse") != "Åse" and author_key("Åse") == author_key("Åse")
    assert author_key("tab\there") != "tab\there"  # JSON would escape it
