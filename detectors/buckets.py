"""Event-time buckets: what one brand's mentions added up to in one bucket of time."""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import zlib
from dataclasses import dataclass, field
from heapq import heappush, heapreplace
from typing import Any
from zlib import crc32

from detectors.events import MentionEvent

#: The posts kept as evidence are the mention events themselves (immutable, so shared freely).
Post = MentionEvent
#: (rank or -hash, minus arrival number, mention id, post): on equal rank the earlier post wins,
#: and no two entries ever compare equal, so posts themselves are never compared.
Entry = tuple[int, int, str, Post]

#: Distinct authors are counted exactly up to this many per bucket, then the count saturates
#: (keeps a bucket's state bounded in the worst storm).
MAX_AUTHORS_PER_BUCKET = 2000
#: A post kept in a bucket keeps this much of its text: its driver terms come from that, and the
#: page shows 280 characters. A mention may be 64 KiB, and a minute of such posts (28 places in a
#: bucket's heaps, the text once more as the key of a post without an id) made a saved state
#: 10 MB, ten times the Kafka record it is saved as.
MAX_POST_TEXT = 500
#: Distinct languages / platforms kept per bucket; the rest are counted as "other".
MAX_MIX_KEYS = 24
#: An author counted in a bucket is kept by name up to this many ASCII characters, and by a
#: digest of its name past that: the name only tells authors apart, and 2,000 names of 256
#: Cyrillic letters (6 bytes each in JSON) made one open bucket's saved state 6 MB.
MAX_AUTHOR_KEY = 24
GROUPS = ("negative", "other")
#: A post's fields in a saved state, in order. ``model`` (2026-12) is left out: the evidence
#: does not need it, and a state with it would not load in the release before.
_POST_FIELDS = tuple(f.name for f in dataclasses.fields(MentionEvent) if f.name != "model")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def author_key(author: str) -> str:
    """How a bucket tells ``author`` apart from the others: the name itself when short and
    ASCII, else ``~`` and 20 hex digits of its BLAKE2b digest (at most 24 bytes of JSON)."""
    if len(author) <= MAX_AUTHOR_KEY and author.isascii() and author.isprintable():
        return author
    digest = hashlib.blake2b(author.encode("utf-8", "surrogatepass"), digest_size=10)
    return "~" + digest.hexdigest()


def post_state(post: Post) -> list[Any]:
    return [getattr(post, name) for name in _POST_FIELDS]


def post_from_state(state: list[Any]) -> Post:
    return MentionEvent(**dict(zip(_POST_FIELDS, state, strict=True)))


@dataclass(slots=True)
class OpenBucket:
    """A bucket still receiving mentions. :meth:`add` is the hot path: counters, small heaps.

    Text is not tokenised here. Per sentiment group ("negative", "other") a bucket keeps a
    bounded, order-independent sample of posts for driver terms (the ``sample_size`` posts with
    the smallest hash of their id: a bottom-k sample, so a replay picks the same posts as the
    live run whatever the arrival order within the bucket), and its top posts by reach and by
    engagement. Terms are extracted from the sample when the bucket closes.
    """

    start_ms: int
    volume: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    reach_negative: int = 0
    authors: set[str] = field(default_factory=set)
    #: Authors whose followers are already in ``reach_negative`` (at most
    #: ``MAX_AUTHORS_PER_BUCKET``; past that, a new author's every post counts).
    negative_authors: set[str] = field(default_factory=set)
    languages: dict[str, int] = field(default_factory=dict)
    platforms: dict[str, int] = field(default_factory=dict)
    #: The same mix for the negative group alone: a storm's languages and platforms are its
    #: complaints', not those of the neutral news shared alongside them.
    negative_languages: dict[str, int] = field(default_factory=dict)
    negative_platforms: dict[str, int] = field(default_factory=dict)
    #: The brand's own answers (``is_brand_reply``): counted here only, apart from the
    #: public's posts (not in volume, sentiment counts, reach, authors, mix or any heap).
    brand_replies: int = 0
    #: Per group: [sample heap, reach heap, engagement heap].
    heaps: dict[str, list[list[Entry]]] = field(
        default_factory=lambda: {g: [[], [], []] for g in GROUPS}
    )

    def add(self, event: MentionEvent, sample_size: int, top_k: int) -> None:
        # Runs once per mention: locals instead of repeated attribute look-ups, and a heap is
        # touched only when the post earns a place in it.
        if event.is_brand_reply:
            self.brand_replies += 1
            return
        if len(event.text) > MAX_POST_TEXT:
            event = dataclasses.replace(event, text=event.text[:MAX_POST_TEXT])
        volume = self.volume + 1
        self.volume = volume
        seq = -volume
        lang = event.lang or "unknown"
        platform = event.platform
        author = event.author
        if author is not None:
            author = author_key(author)
        if event.sentiment == "negative":
            self.negative += 1
            mix = self.negative_languages
            if lang in mix:
                mix[lang] += 1
            else:
                _bump(mix, lang)
            mix = self.negative_platforms
            if platform in mix:
                mix[platform] += 1
            else:
                _bump(mix, platform)
            # Reach counts an author's followers once per bucket, however often they post.
            if author is None:
                self.reach_negative += event.followers
            else:
                counted = self.negative_authors
                if author not in counted:
                    if len(counted) < MAX_AUTHORS_PER_BUCKET:
                        counted.add(author)
                    self.reach_negative += event.followers
            sample, reach, engagement = self.heaps["negative"]
        else:
            if event.sentiment == "positive":
                self.positive += 1
            else:
                self.neutral += 1
            sample, reach, engagement = self.heaps["other"]
        if author is not None:
            authors = self.authors
            if len(authors) < MAX_AUTHORS_PER_BUCKET:
                authors.add(author)
        languages = self.languages
        if lang in languages:
            languages[lang] += 1
        else:
            _bump(languages, lang)
        platforms = self.platforms
        if platform in platforms:
            platforms[platform] += 1
        else:
            _bump(platforms, platform)
        key = event.mention_id or event.text
        h = -crc32(key.encode("utf-8", "surrogatepass"))
        if len(sample) < sample_size:
            heappush(sample, (h, seq, key, event))
        else:
            least = sample[0]
            if h > least[0] or (h == least[0] and seq > least[1]):
                heapreplace(sample, (h, seq, key, event))
        rank = event.followers
        if len(reach) < top_k:
            heappush(reach, (rank, seq, key, event))
        elif rank > reach[0][0]:
            heapreplace(reach, (rank, seq, key, event))
        rank = event.likes + event.shares + event.replies
        if len(engagement) < top_k:
            heappush(engagement, (rank, seq, key, event))
        elif rank > engagement[0][0]:
            heapreplace(engagement, (rank, seq, key, event))

    def sample(self, group: str) -> list[Post]:
        """The group's sampled posts, smallest hash first (a prefix is again a fair sample)."""
        return ordered(self.heaps[group][0], reverse=True)

    def top_reach(self, group: str) -> list[Post]:
        return ordered(self.heaps[group][1])

    def top_engagement(self, group: str) -> list[Post]:
        return ordered(self.heaps[group][2])

    def to_state(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "counts": [self.volume, self.negative, self.neutral, self.positive],
            "reach_negative": self.reach_negative,
            "brand_replies": self.brand_replies,
            "authors": sorted(self.authors),
            "negative_authors": sorted(self.negative_authors),
            "languages": dict(sorted(self.languages.items())),
            "platforms": dict(sorted(self.platforms.items())),
            "negative_languages": dict(sorted(self.negative_languages.items())),
            "negative_platforms": dict(sorted(self.negative_platforms.items())),
            "heaps": {
                g: [[[r, s, k, post_state(p)] for r, s, k, p in sorted(h, key=_order)] for h in hs]
                for g, hs in sorted(self.heaps.items())
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OpenBucket:
        volume, negative, neutral, positive = state["counts"]
        bucket = cls(int(state["start_ms"]), volume, negative, neutral, positive)
        bucket.reach_negative = int(state["reach_negative"])
        bucket.brand_replies = int(state.get("brand_replies", 0))  # absent before 2026-12
        bucket.authors = set(state["authors"])
        bucket.negative_authors = set(state.get("negative_authors", ()))  # absent before 2026-12
        bucket.languages = dict(state["languages"])
        bucket.platforms = dict(state["platforms"])
        # Absent in states saved before 2026-12: that bucket's complaints then add nothing to a
        # storm's mix (rather than its whole traffic).
        bucket.negative_languages = dict(state.get("negative_languages", {}))
        bucket.negative_platforms = dict(state.get("negative_platforms", {}))
        bucket.heaps = {
            g: [[(int(r), int(s), str(k), post_from_state(p)) for r, s, k, p in h] for h in hs]
            for g, hs in state["heaps"].items()
        }
        for heaps in bucket.heaps.values():
            for heap in heaps:
                heapq.heapify(heap)
        return bucket


def _order(entry: Entry) -> tuple[int, int]:
    return entry[0], entry[1]


def ordered(heap: list[Entry], reverse: bool = False) -> list[Post]:
    """A heap's posts in a canonical order: by rank (or hash), then arrival."""
    return [entry[3] for entry in sorted(heap, key=_order, reverse=reverse)]


def _bump(mix: dict[str, int], key: str) -> None:
    if len(mix) < MAX_MIX_KEYS:
        mix[key] = 1
    else:
        mix["other"] = mix.get("other", 0) + 1
