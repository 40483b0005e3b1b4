"""The scorer interface every backend implements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    """Probabilities over the three labels (they sum to 1) and the most likely one.

    ``decided_by`` names a rule that scored the text instead of the scorer's model (the emoji
    rule, :mod:`streams.sentiment.emoji`); None when the model did."""

    negative: float
    neutral: float
    positive: float
    decided_by: str | None = None

    @property
    def finite(self) -> bool:
        """False when a probability is NaN or infinite (a broken model): such a score has no
        label (``max`` would say negative) and cannot be written as strict JSON."""
        return all(math.isfinite(p) for p in (self.negative, self.neutral, self.positive))

    @property
    def label(self) -> Label:
        probs = {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}
        return max(LABELS, key=lambda name: probs[name])

    def as_dict(self, model: str) -> dict[str, object]:
        """The scored record's ``sentiment``; its ``model`` is ``model`` (the scorer's version)
        or the rule that decided instead."""
        return {
            "label": self.label,
            "negative": round(self.negative, 4),
            "neutral": round(self.neutral, 4),
            "positive": round(self.positive, 4),
            "model": self.decided_by or model,
        }


class Scorer(Protocol):
    """Scores texts in batches. Must accept any string: empty, emoji-only, 50 kB, mixed language."""

    #: Stable name + version of the model, written into every scored mention.
    version: str

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        """One Sentiment per text; ``langs`` are language codes (nb, nn, sv, da, en) or None."""
        ...
