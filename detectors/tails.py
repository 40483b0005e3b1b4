"""A decayed histogram of a score, from which any quantile can be read in fixed memory.

Used to learn what is normal *for this brand*: the median and a high quantile (e.g. the 99th
percentile) of its own log ratios. Heavy-tailed brands (a ticker that trends every other day) get
a wide tail and so need a bigger excursion to alarm than a brand whose volume is steady; this is
what makes one fixed configuration work across brands of very different character.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from typing import Any


class DecayedHistogram:
    """Fixed bins over [low, high); mass decays with a half-life measured in minutes of data."""

    def __init__(self, low: float, high: float, bins: int, half_life_minutes: float) -> None:
        self.low = low
        self.high = high
        self.width = (high - low) / bins
        self.half_life_minutes = half_life_minutes
        self.mass = [0.0] * bins
        self.total = 0.0
        #: Weight of new mass relative to the stored mass. Decay is applied lazily: instead of
        #: shrinking every bin on every update, new mass is added ever larger, which leaves all
        #: quantiles the same and costs O(1) per update (rescaled once it grows large).
        self.growth = 1.0
        #: The highest bin holding any mass (0 when empty). Mass is only ever added; only the
        #: rescaling can round a tiny one to zero, and it looks again.
        self.top = 0

    def seed_normal(self, mean: float, sd: float, weight: float) -> None:
        """Add a normal prior with ``weight`` minutes of mass (cold start)."""
        n = len(self.mass)
        cdf_prev = _norm_cdf((self.low - mean) / sd)
        for i in range(n):
            cdf = _norm_cdf((self.low + (i + 1) * self.width - mean) / sd)
            self.mass[i] += weight * (cdf - cdf_prev)
            cdf_prev = cdf
        self.total = sum(self.mass)
        self.top = _highest_occupied(self.mass)

    def add(self, value: float, minutes: float) -> None:
        self.growth *= 2.0 ** (minutes / self.half_life_minutes)
        mass = self.mass
        i = int((value - self.low) / self.width)
        i = 0 if i < 0 else len(mass) - 1 if i >= len(mass) else i
        weight = minutes * self.growth
        mass[i] += weight
        if i > self.top:
            self.top = i
        self.total += weight
        if self.growth > 1e100:
            self.mass = [m / self.growth for m in mass]
            self.total /= self.growth
            self.growth = 1.0
            self.top = _highest_occupied(self.mass)  # a tiny old mass may now be zero

    def quantiles(self, probabilities: tuple[float, ...]) -> list[float]:
        """Interpolated quantiles (any order), read from the mass above each bin, counted down
        from the highest occupied bin (``accumulate`` and ``bisect``: C loops, the same sums
        in the same order as counting by hand)."""
        if self.total <= 0:
            return [0.0 for _ in probabilities]
        mass = self.mass
        top = self.top
        #: above[j]: the mass of bins top - j .. top.
        above = list(accumulate(mass[top::-1]))
        out = []
        for p in probabilities:
            target = (1.0 - p) * self.total
            j = bisect_left(above, target)
            if j == len(above):
                out.append(self.low)
                continue
            m = mass[top - j]
            before = above[j - 1] if j else 0.0
            frac = (target - before) / m if m > 0 else 0.0
            out.append(self.low + (top - j + 1 - frac) * self.width)
        return out

    def to_state(self) -> dict[str, Any]:
        return {"mass": list(self.mass), "total": self.total, "growth": self.growth}

    def load_state(self, state: dict[str, Any]) -> None:
        mass = [float(m) for m in state["mass"]]
        if len(mass) != len(self.mass):
            raise ValueError("histogram state has a different number of bins")
        self.mass = mass
        self.total = float(state["total"])
        self.growth = float(state["growth"])
        self.top = _highest_occupied(mass)


def _highest_occupied(mass: list[float]) -> int:
    top = len(mass) - 1
    while top > 0 and mass[top] <= 0.0:
        top -= 1
    return top


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
