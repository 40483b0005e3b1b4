"""Drivers: what an episode is about, and who and what carries it.

Terms, hashtags and two-word phrases are counted per language (stop words removed, see
:mod:`detectors.text`) in three bounded places: the brand's *background* (all its mentions in
normal times, decaying over about a week), a *recent* window of its negative mentions (decaying
over about an hour, so an episode can start with the posts that built it up), and each open
episode's own *foreground*. A term's score is the log-odds ratio of its document frequency in the
foreground against the background, smoothed by a weak prior and divided by its standard error
(the "informative Dirichlet prior" z of Monroe, Colaresi & Quinn, 2008): frequent *and* unusual
terms rank first, and a brand with no background yet falls back on plain frequency. Among the
terms at z >= 3 the order is by how much of the storm's difference from normal each carries
(its term of the Kullback-Leibler divergence): by z alone, a word the background never saw stays
near z 4 while the brand's usual complaints reach z 8 and more. Terms are
counted per language, but a term's frequency is its share of all the documents, every language
together, so a storm in a language the brand rarely hears ranks that language's words.

Every counter holds at most ``2 * counter_capacity`` keys per language and at most
``max_languages`` languages, so memory does not grow with traffic; and each of the three places
at most :data:`TABLE_BUDGET_BYTES` of saved state, all its languages together, so a brand's state
stays one Kafka record whatever its posts hold.
"""

from __future__ import annotations

import math
from typing import Any

from detectors.buckets import OpenBucket, Post
from detectors.config import DriversConfig
from detectors.counters import BoundedCounter, TopK
from detectors.text import Terms

KINDS = ("words", "hashtags", "phrases")
#: A term this many standard errors over its background is clearly the storm's; those rank by
#: how much of the storm's difference from normal they carry (see :meth:`EpisodeEvidence.explain`).
SIGNIFICANT_Z = 3.0
#: The most one :class:`LanguageTable` may take of a saved state (an upper bound, see
#: :func:`detectors.counters.entry_cost`). A brand's state holds up to four (the background, the
#: recent terms, an open storm's and an open buzz's), and the worker saves it as one Kafka record,
#: 1 MB by default: posts of random 40-character terms in eight languages made it 4.7 MB. A busy
#: single-language brand's table takes about 60 KB, so only such input meets the budget.
TABLE_BUDGET_BYTES = 150_000
#: Growth factor at which lazily decayed counts are rescaled.
_RESCALE_AT = 1e6


class TermCounts:
    """Document frequencies of words, hashtags and phrases in one language, lazily decayed.

    One counter holds all three kinds (a hashtag starts with ``#``, a phrase has a space), which
    keeps the per-post work to one update.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counter = BoundedCounter(3 * capacity)
        self.docs = 0.0
        self.growth = 1.0

    def add(self, terms: Terms, weight: float) -> None:
        w = weight * self.growth
        self.docs += w
        self.counter.add_all(terms.words + terms.hashtags + terms.phrases, w)

    def decay(self, minutes: float, half_life_minutes: float) -> None:
        """Age the counts: new documents weigh more from now on (O(1) except when rescaling)."""
        self.growth *= 2.0 ** (minutes / half_life_minutes)
        if self.growth > _RESCALE_AT:
            factor = 1.0 / self.growth
            self.counter.decay(factor, floor=1e-3)
            self.docs *= factor
            self.growth = 1.0

    def count(self, key: str) -> float:
        """(Decayed) documents with the key."""
        return self.counter.get(key) / self.growth

    def documents(self) -> float:
        """All (decayed) documents, in the units of :meth:`count`."""
        return self.docs / self.growth

    def copy(self) -> TermCounts:
        other = TermCounts(self.capacity)
        other.counter = self.counter.copy()
        other.docs = self.docs
        other.growth = self.growth
        return other

    def to_state(self) -> dict[str, Any]:
        return {"counter": self.counter.to_state(), "docs": self.docs, "growth": self.growth}

    @classmethod
    def from_state(cls, capacity: int, state: dict[str, Any]) -> TermCounts:
        counts = cls(capacity)
        counts.counter = BoundedCounter.from_state(3 * capacity, state["counter"])
        counts.docs = float(state["docs"])
        counts.growth = float(state["growth"])
        return counts


def term_kind(key: str) -> str:
    if key.startswith("#"):
        return "hashtags"
    return "phrases" if " " in key else "words"


class LanguageTable:
    """TermCounts per language, at most ``max_languages`` of them (further ones pool as "other").

    A full table frees the slot of a language whose (decayed) documents have fallen below
    ``min_term_count`` for a new language: no term of such a language can be ranked, and
    otherwise the first languages ever seen (a collector's stray tags on a quiet week: ``tl``,
    ``ht``, ``et``) would hold the slots for good and send a storm's language to "other".
    """

    def __init__(self, config: DriversConfig) -> None:
        self.config = config
        self.by_lang: dict[str, TermCounts] = {}

    def lang_key(self, lang: str | None) -> str:
        key = (lang or "unknown").split("-", 1)[0].lower()
        if key in self.by_lang or len(self.by_lang) < self.config.max_languages - 1:
            return key
        spent = self._spent_language()
        if spent is None:
            return "other"
        del self.by_lang[spent]
        return key

    def _spent_language(self) -> str | None:
        """The named language with the fewest documents, if below ``min_term_count`` (ties:
        the first by name, so replay and live free the same one)."""
        best: tuple[float, str] | None = None
        for name, counts in self.by_lang.items():
            if name == "other":
                continue
            docs = counts.documents()
            if docs < self.config.min_term_count and (best is None or (docs, name) < best):
                best = (docs, name)
        return None if best is None else best[1]

    def add(self, lang: str | None, terms: Terms, weight: float) -> None:
        key = self.lang_key(lang)
        counts = self.by_lang.get(key)
        if counts is None:
            counts = self.by_lang[key] = TermCounts(self.config.counter_capacity)
        counts.add(terms, weight)
        self._fit_budget()

    def cost(self) -> int:
        """What the table takes of a saved state, at most (its counters' entries)."""
        return sum(counts.counter.cost for counts in self.by_lang.values())

    def _fit_budget(self) -> None:
        """Halve the largest language's counter (its smallest counts go; ties by name) until the
        table fits :data:`TABLE_BUDGET_BYTES`."""
        total = self.cost()
        while total > TABLE_BUDGET_BYTES:
            name = max(self.by_lang, key=lambda k: (self.by_lang[k].counter.cost, k))
            counter = self.by_lang[name].counter
            before = counter.cost
            counter.shrink(before // 2)
            total -= before - counter.cost

    def add_sample(
        self, sample: list[tuple[Post, Terms]], count: int, limit: int | None = None
    ) -> None:
        """Add a bucket's sampled posts (the first ``limit`` of them), each standing for an equal
        share of the ``count`` posts they were drawn from."""
        if limit is not None:
            sample = sample[:limit]
        if sample:
            weight = count / len(sample)
            for post, terms in sample:
                self.add(post.lang, terms, weight)

    def documents(self) -> float:
        """All (decayed) documents, of every language."""
        return sum(counts.documents() for counts in self.by_lang.values())

    def decay(self, minutes: float, half_life_minutes: float) -> None:
        for counts in self.by_lang.values():
            counts.decay(minutes, half_life_minutes)

    def copy(self) -> LanguageTable:
        other = LanguageTable(self.config)
        other.by_lang = {k: v.copy() for k, v in self.by_lang.items()}
        return other

    def to_state(self) -> dict[str, Any]:
        return {k: v.to_state() for k, v in sorted(self.by_lang.items())}

    @classmethod
    def from_state(cls, config: DriversConfig, state: dict[str, Any]) -> LanguageTable:
        table = cls(config)
        table.by_lang = {
            k: TermCounts.from_state(config.counter_capacity, v) for k, v in state.items()
        }
        return table


class EpisodeEvidence:
    """Everything one episode collects: terms, top posts and authors, language/platform mix."""

    def __init__(self, config: DriversConfig, seed: LanguageTable | None = None) -> None:
        self.config = config
        self.terms = seed.copy() if seed is not None else LanguageTable(config)
        self.top_reach = TopK(config.top_k)
        self.top_engagement = TopK(config.top_k)
        self.top_authors = TopK(config.top_k)
        self.languages: dict[str, int] = {}
        self.platforms: dict[str, int] = {}

    def absorb(
        self,
        bucket: OpenBucket,
        group: str,
        count: int,
        sample: list[tuple[Post, Terms]] | None = None,
    ) -> None:
        """Add one closed bucket's posts of a sentiment group ("negative" or "other"): its
        tokenised sample (when given) and its top posts and authors."""
        if sample is not None:
            self.terms.add_sample(sample, count)
        for post in bucket.top_reach(group):
            self.top_reach.offer(post.mention_id or post.text, post.followers, _post_payload(post))
        for post in bucket.top_engagement(group):
            self.top_engagement.offer(
                post.mention_id or post.text, post.engagement, _post_payload(post)
            )
        for post in bucket.top_reach(group):
            if post.author is not None:
                self.top_authors.offer(
                    post.author, post.followers, {"author": post.author, "reach": post.followers}
                )

    def add_mix(self, languages: dict[str, int], platforms: dict[str, int]) -> None:
        """Add a bucket's language and platform counts; at most 24 keys each, the rest pool as
        "other". Which keys still get a place does not depend on the order of the bucket's
        dict (a restored bucket's is sorted, a live one's in arrival order): the largest new
        keys first, ties by name, so a restored run gives the episode an uninterrupted one
        would."""
        for source, target in ((languages, self.languages), (platforms, self.platforms)):
            new: list[str] = []
            for key, n in source.items():
                if key in target:
                    target[key] += n
                else:
                    new.append(key)
            if len(new) > 1:
                new.sort(key=lambda k: (-source[k], k))
            for key in new:
                n = source[key]
                if len(target) < 24:
                    target[key] = n
                else:
                    target["other"] = target.get("other", 0) + n

    def explain(self, background: LanguageTable) -> dict[str, Any]:
        """The episode's drivers, ready for the alert payload."""
        cfg = self.config
        ranked: dict[str, list[tuple[tuple[float, float], float, str, str, float]]] = {
            k: [] for k in KINDS
        }
        n = self.terms.documents()
        nb = background.documents()
        for lang, fg in self.terms.by_lang.items():
            bg = background.by_lang.get(lang)
            for key, _ in fg.counter.most_common(3 * cfg.counter_capacity):
                c = fg.count(key)
                if c < cfg.min_term_count:
                    continue
                cb = bg.count(key) if bg is not None else 0.0
                z, divergence = _log_odds_z(c, n, cb, nb, cfg.prior_rate, cfg.prior_strength)
                if z > 0:
                    rank = (1.0, divergence) if z >= SIGNIFICANT_Z else (0.0, z)
                    ranked[term_kind(key)].append((rank, z, key, lang, c))
        out: dict[str, Any] = {}
        for kind in KINDS:
            best = sorted(ranked[kind], key=lambda r: (-r[0][0], -r[0][1], r[2], r[3]))
            out[kind] = [
                {"term": key, "lang": lang, "score": round(z, 3), "count": round(c, 1)}
                for _, z, key, lang, c in best[: cfg.top_terms]
            ]
        out["top_posts_by_reach"] = self.top_reach.ranked()
        out["top_posts_by_engagement"] = self.top_engagement.ranked()
        out["top_authors"] = self.top_authors.ranked()
        out["languages"] = _mix(self.languages)
        out["platforms"] = _mix(self.platforms)
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "terms": self.terms.to_state(),
            "top_reach": self.top_reach.to_state(),
            "top_engagement": self.top_engagement.to_state(),
            "top_authors": self.top_authors.to_state(),
            "languages": dict(sorted(self.languages.items())),
            "platforms": dict(sorted(self.platforms.items())),
        }

    @classmethod
    def from_state(cls, config: DriversConfig, state: dict[str, Any]) -> EpisodeEvidence:
        ev = cls(config)
        ev.terms = LanguageTable.from_state(config, state["terms"])
        ev.top_reach = TopK.from_state(config.top_k, state["top_reach"])
        ev.top_engagement = TopK.from_state(config.top_k, state["top_engagement"])
        ev.top_authors = TopK.from_state(config.top_k, state["top_authors"])
        ev.languages = dict(state["languages"])
        ev.platforms = dict(state["platforms"])
        return ev


def _log_odds_z(
    c: float, n: float, cb: float, nb: float, rate: float, strength: float
) -> tuple[float, float]:
    """(z, divergence) of a key's smoothed document frequency, foreground vs background: the
    log-odds ratio in standard errors, and the key's term of the foreground's Kullback-Leibler
    divergence from the background (``pf * log(pf / pb)``)."""
    prior = rate * strength
    pf = (c + prior) / (n + strength)
    pb = (cb + prior) / (nb + strength)
    pf = min(pf, 1.0 - 1e-9)
    pb = min(pb, 1.0 - 1e-9)
    delta = math.log(pf / (1.0 - pf)) - math.log(pb / (1.0 - pb))
    z = delta / math.sqrt(1.0 / (c + prior) + 1.0 / (cb + prior))
    return z, pf * math.log(pf / pb)


def _post_payload(post: Post) -> dict[str, Any]:
    return {
        "id": post.mention_id,
        "url": post.url,
        "author": post.author,
        "reach": post.followers,
        "engagement": post.engagement,
        "sentiment": post.sentiment,
        "lang": post.lang,
        "platform": post.platform,
        "text": post.text[:280],
    }


def _mix(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    if not total:
        return {}
    return {
        k: round(v / total, 4) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    }
