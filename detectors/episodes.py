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
        """An episode saved by :meth:`to_state`; shares nothing with ``state``.

        Tolerant of another release's state (a rolling upgrade, a rollback): a key this code
        does not know is ignored (:func:`unknown_episode_keys` names them, for the caller to
        log), a missing optional one takes its default. The identity (brand, kind, start,
        first abnormal time) is required, and every value is checked for its type: a
        ``KeyError``, ``TypeError`` or ``ValueError`` says the state cannot be used.
        """
        kind = state["kind"]
        if kind not in ("storm", "buzz"):
            raise ValueError(f"episode kind {kind!r}")
        end = state.get("end_ms")
        return cls(
            brand=_text(state["brand"]),
            kind=kind,
            start_ms=_int(state["start_ms"]),
            first_abnormal_ms=_int(state["first_abnormal_ms"]),
            evidence=evidence,
            level=_level(state.get("level", 1)),
            peak_level=_level(state.get("peak_level", 1)),
            peak_ms=_int(state.get("peak_ms", 0)),
            peak_score=_float(state.get("peak_score", 0.0)),
            end_ms=None if end is None else _int(end),
            escalations=[dict(e) for e in copy.deepcopy(_list(state.get("escalations", [])))],
            figures=dict(copy.deepcopy(_dict(state.get("figures", {})))),
            peak_figures=dict(copy.deepcopy(_dict(state.get("peak_figures", {})))),
            brand_replies=_int(state.get("brand_replies", 0)),
        )


#: The keys :meth:`Episode.to_state` writes.
EPISODE_STATE_KEYS = frozenset(
    (
        "brand",
        "kind",
        "start_ms",
        "first_abnormal_ms",
        "evidence",
        "level",
        "peak_level",
        "peak_ms",
        "peak_score",
        "end_ms",
        "escalations",
        "figures",
        "peak_figures",
        "brand_replies",
    )
)


def unknown_episode_keys(state: dict[str, Any]) -> list[str]:
    """Keys of a saved episode this code does not know (written by a newer release)."""
    return sorted(str(k) for k in state if k not in EPISODE_STATE_KEYS)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _level(value: Any) -> int:
    level = _int(value)
    if not 0 <= level < len(LEVELS):
        raise ValueError(f"level {level} out of range")
    return level


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


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
