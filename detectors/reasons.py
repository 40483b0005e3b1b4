"""Judging a storm's drivers by what its complaints were about, as people labelled them.

The airline tweets carry an annotator's reason for most negative tweets ("Cancelled Flight",
"Customer Service Issue", "Late Flight", ...). Those labels give the drivers a measure instead
of an argument: does the page's list of terms name what the storm's complaints were about?

1. A *lexicon* maps a term (as :func:`detectors.text.extract` writes it) to the reason it
   stands for, learned from labelled complaints: the term names a reason when at least
   ``min_share`` of the complaints containing it carry that reason, among at least
   ``min_support`` of them. Generic words ("flight", "hours", "people") name none.
2. An episode's *reasons* are the labels of its brand's complaints within the episode.
3. Its drivers' *coverage* is the share of those complaints whose reason at least one of the
   page's terms names.

Learn the lexicon from complaints outside the episode (other days): else a term would name
whatever the storm's own complaints were labelled, and coverage would measure nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.alerting.record import alert_drivers
from detectors.alerting.summary import PAGE_TERMS
from detectors.text import extract

#: A term names a reason when at least this share of the complaints containing it carry it...
MIN_SHARE = 0.5
#: ...among at least this many labelled complaints.
MIN_SUPPORT = 5
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class LabelledComplaint:
    """One negative post with the reason an annotator gave it."""

    brand: str
    event_ms: int
    reason: str
    text: str
    lang: str | None = "en"


def learn_lexicon(
    complaints: Iterable[LabelledComplaint],
    min_share: float = MIN_SHARE,
    min_support: int = MIN_SUPPORT,
) -> dict[str, str]:
    """Term -> the reason it names (see the module docstring); terms that name none are left
    out. Ties between reasons go to the first by name, so the lexicon does not depend on the
    order of ``complaints``."""
    by_term: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for complaint in complaints:
        terms = extract(complaint.text, complaint.lang)
        for term in (*terms.words, *terms.phrases, *terms.hashtags):
            by_term[term][complaint.reason] += 1
    lexicon: dict[str, str] = {}
    for term, reasons in by_term.items():
        support = sum(reasons.values())
        reason, count = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        if support >= min_support and count >= min_share * support:
            lexicon[term] = reason
    return lexicon


@dataclass(frozen=True, slots=True)
class Coverage:
    """How well a list of driver terms names an episode's complaints."""

    #: Reason -> labelled complaints of the episode, most frequent first.
    reasons: dict[str, int]
    #: The reasons some term names, in the order the terms first name them.
    named: tuple[str, ...]
    #: Terms that name a reason, of all terms given.
    specific_terms: int
    terms: int

    @property
    def complaints(self) -> int:
        return sum(self.reasons.values())

    @property
    def share(self) -> float:
        """Share of the episode's labelled complaints whose reason a term names (0 when it has
        none)."""
        total = self.complaints
        return sum(self.reasons.get(r, 0) for r in self.named) / total if total else 0.0


def episode_reasons(
    complaints: Iterable[LabelledComplaint], brand: str, start_ms: int, end_ms: int
) -> dict[str, int]:
    """The reasons of ``brand``'s labelled complaints in ``[start_ms, end_ms)``, most frequent
    first (ties by name)."""
    counts = Counter(
        c.reason for c in complaints if c.brand == brand and start_ms <= c.event_ms < end_ms
    )
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def coverage(terms: Sequence[str], reasons: dict[str, int], lexicon: dict[str, str]) -> Coverage:
    """How much of an episode's complaints (``reasons``, from :func:`episode_reasons`) the
    ``terms`` name, by ``lexicon`` (from :func:`learn_lexicon`)."""
    named = tuple(dict.fromkeys(lexicon[t] for t in terms if t in lexicon))
    return Coverage(
        reasons=reasons,
        named=named,
        specific_terms=sum(t in lexicon for t in terms),
        terms=len(terms),
    )


def page_terms(episode: dict[str, Any]) -> list[str]:
    """The driver terms a page lists for an episode (``EpisodeEvent.to_dict()["episode"]``):
    phrases, then words, as many as the page shows."""
    drivers = alert_drivers(episode.get("drivers") or {})
    return [str(t["term"]) for t in drivers["terms"][:PAGE_TERMS]]


def judge_drivers(
    episode: dict[str, Any], first_page: Sequence[str], complaints: Sequence[LabelledComplaint]
) -> tuple[Coverage, Coverage] | None:
    """How much of an ended storm's labelled complaints the terms of its first page
    (``first_page``, from :func:`page_terms` when it opened) and of its last page name, by a
    lexicon learned from the complaints of other days (UTC days: a storm's evening may be the
    next). None when the storm has no labelled complaint."""
    start, end = int(episode["start_ms"]), int(episode["end_ms"])
    reasons = episode_reasons(complaints, str(episode["brand"]), start, end)
    if not reasons:
        return None
    days = range(start // _DAY_MS, end // _DAY_MS + 1)
    lexicon = learn_lexicon(c for c in complaints if c.event_ms // _DAY_MS not in days)
    return coverage(first_page, reasons, lexicon), coverage(page_terms(episode), reasons, lexicon)
