"""Episodes (storms and buzz), the events that report them, and their canonical JSON form."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from detectors.drivers import EpisodeEvidence, LanguageTable
from detectors.states import LEVELS

Kind = Literal["storm", "buzz"]
#: ``abandoned``: the episode's detector state was dropped (see
#: :func:`detectors.brand.abandoned_episodes`), so nothing follows the episode any more.
EventType = Literal["opened", "escalated", "de-escalated", "resolved", "abandoned"]


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2015-02-22T12:00:00.000Z``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def episode_id(brand: str, kind: str, start_ms: int) -> str:
    """Stable id of an episode: the same brand, kind and start always give the same id, so a
    re-sent alert updates the one already raised instead of paging twice."""
    digest = hashlib.blake2b(f"{brand}\x1f{kind}\x1f{start_ms}".encode(), digest_size=8)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept: byte-identical for equal values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Episode:
    """One storm or buzz of one brand, from its first alert to its resolution."""

    brand: str
    kind: Kind
    start_ms: int
    first_abnormal_ms: int
    evidence: EpisodeEvidence
    level: int = 1
    peak_level: int = 1
    peak_ms: int = 0
    peak_score: float = 0.0
    end_ms: int | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    peak_figures: dict[str, Any] = field(default_factory=dict)
    #: The brand's own answers (``is_brand_reply``) since the episode opened, counted apart
    #: from the public's posts (absent, so 0, in states saved before 2026-12).
    brand_replies: int = 0

    @property
    def episode_id(self) -> str:
        return episode_id(self.brand, self.kind, self.start_ms)

    def to_dict(self, background: LanguageTable) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "brand": self.brand,
            "kind": self.kind,
            "status": "resolved" if self.end_ms is not None else "open",
            "severity": LEVELS[self.level],
            "peak_severity": LEVELS[self.peak_level],
            "start_ms": self.start_ms,
            "start": iso(self.start_ms),
            "first_abnormal_ms": self.first_abnormal_ms,
            "first_abnormal": iso(self.first_abnormal_ms),
            "peak_ms": self.peak_ms,
            "peak": iso(self.peak_ms),
            "peak_score": round(self.peak_score, 4),
            "end_ms": self.end_ms,
            "end": iso(self.end_ms) if self.end_ms is not None else None,
            "escalations": list(self.escalations),
            "figures": self.figures,
            "peak_figures": self.peak_figures,
            "brand_replies": self.brand_replies,
            "drivers": self.evidence.explain(background),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "first_abnormal_ms": self.first_abnormal_ms,
            "evidence": self.evidence.to_state(),
            "level": self.level,
            "peak_level": self.peak_level,
            "peak_ms": self.peak_ms,
            "peak_score": self.peak_score,
            "end_ms": self.end_ms,
            # Copies: the worker keeps saved states as they are (Faust's in-memory table store,
            # and a changelog record serialised only when it leaves the producer's buffer), so a
            # live list here would gain escalations after the save, and a rebuild that replays
            # the mentions since the save would add them a second time.
            "escalations": copy.deepcopy(self.escalations),
            "figures": copy.deepcopy(self.figures),
            "peak_figures": copy.deepcopy(self.peak_figures),
            "brand_replies": self.brand_replies,
        }

    @classmethod
    def from_state(cls, evidence: EpisodeEvidence, state: dict[str, Any]) -> Episode:
        """An episode saved by :meth:`to_state`; shares nothing with ``state``."""
        values = {k: copy.deepcopy(v) for k, v in state.items() if k != "evidence"}
        return cls(evidence=evidence, **values)


@dataclass(frozen=True)
class EpisodeEvent:
    """A change in an episode: opened, escalated, de-escalated or resolved, with a snapshot."""

    type: EventType
    at_ms: int
    episode: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "at_ms": self.at_ms,
            "at": iso(self.at_ms),
            "episode": self.episode,
        }


@dataclass(frozen=True)
class BucketSummary:
    """What one closed bucket held, what was expected, and the scores and levels it produced."""

    brand: str
    start_ms: int
    end_ms: int
    volume: int
    negative: int
    neutral: int
    positive: int
    reach_negative: int
    unique_authors: int
    languages: dict[str, int]
    platforms: dict[str, int]
    expected_volume: float
    negative_share_baseline: float
    volume_score: float
    negative_score: float
    share_z: float
    storm_level: str
    buzz_level: str
    late: int
    #: The brand's own answers in the bucket, counted apart from the public's posts (none of
    #: the fields above include them).
    brand_replies: int = 0

    def to_dict(self) -> dict[str, Any]:
        # By its fields, not ``__dict__``: compiled with mypyc (pyproject.toml) it has none.
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["start"] = iso(self.start_ms)
        for key in (
            "expected_volume",
            "negative_share_baseline",
            "volume_score",
            "negative_score",
            "share_z",
        ):
            out[key] = round(out[key], 4)
        return out


Output = BucketSummary | EpisodeEvent
