"""Two detector configurations over the same history, side by side (pure).

Episodes of the same brand and kind are the same incident when they overlap in time (from the
first abnormal bucket to the resolution, or the end of the range while open). Unmatched ones are
alerts only one configuration raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Literal

from streams.replay.timeline import EpisodeTimeline

Verdict = Literal[
    "earlier", "later", "same time", "both before the range", "only candidate", "only live"
]


@dataclass(frozen=True)
class Pair:
    """One incident as both configurations saw it (either side may be missing)."""

    brand: str
    kind: str
    live: EpisodeTimeline | None
    candidate: EpisodeTimeline | None

    @property
    def first_alert_delta_ms(self) -> int | None:
        """Candidate's first alert minus the live configuration's (negative: earlier)."""
        if self.live is None or self.candidate is None:
            return None
        a, b = self.live.first_alert_ms, self.candidate.first_alert_ms
        return None if a is None or b is None else b - a

    @property
    def verdict(self) -> Verdict:
        if self.live is None:
            return "only candidate"
        if self.candidate is None:
            return "only live"
        live, candidate = self.live.first_alert_ms, self.candidate.first_alert_ms
        # None: the episode was already alerted when the range began, before the other side.
        if live is None and candidate is None:
            return "both before the range"
        if live is None or candidate is None:
            return "later" if live is None else "earlier"
        delta = candidate - live
        return "earlier" if delta < 0 else "later" if delta > 0 else "same time"

    @property
    def start_ms(self) -> int:
        sides = [e.first_abnormal_ms for e in (self.live, self.candidate) if e is not None]
        return min(sides)


def pair_episodes(
    live: list[EpisodeTimeline], candidate: list[EpisodeTimeline], open_until_ms: int
) -> list[Pair]:
    """Match each live episode with the first overlapping candidate episode of its brand and
    kind, in time order; what is left on either side stands alone."""
    unused = list(candidate)
    pairs: list[Pair] = []
    for episode in sorted(live, key=lambda e: e.first_abnormal_ms):
        match = next(
            (
                other
                for other in unused
                if other.brand == episode.brand
                and other.kind == episode.kind
                and episode.overlaps(other, open_until_ms)
            ),
            None,
        )
        if match is not None:
            unused.remove(match)
        pairs.append(Pair(episode.brand, episode.kind, episode, match))
    pairs.extend(Pair(e.brand, e.kind, None, e) for e in unused)
    return sorted(pairs, key=lambda p: (p.brand, p.start_ms, p.kind))


@dataclass(frozen=True)
class Verdicts:
    """The answer to "would the candidate have alerted earlier, or falsely?" in counts."""

    both: int
    earlier: int
    later: int
    same: int
    before_range: int  # both already alerted when the range began: no time to compare
    only_candidate: int
    only_live: int
    median_delta_ms: float | None  # over incidents both alerted (negative: earlier)


def summarise(pairs: list[Pair], kind: str = "storm") -> Verdicts:
    chosen = [p for p in pairs if p.kind == kind]
    deltas = [d for p in chosen if (d := p.first_alert_delta_ms) is not None]
    return Verdicts(
        both=sum(1 for p in chosen if p.live is not None and p.candidate is not None),
        earlier=sum(1 for p in chosen if p.verdict == "earlier"),
        later=sum(1 for p in chosen if p.verdict == "later"),
        same=sum(1 for p in chosen if p.verdict == "same time"),
        before_range=sum(1 for p in chosen if p.verdict == "both before the range"),
        only_candidate=sum(1 for p in chosen if p.verdict == "only candidate"),
        only_live=sum(1 for p in chosen if p.verdict == "only live"),
        median_delta_ms=float(median(deltas)) if deltas else None,
    )
