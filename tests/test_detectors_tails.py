"""The brand's own scale: quantiles of the decayed histogram, and the windowed sums of counts.

Both sit on the detector's per-bucket path and were rewritten for speed; these tests pin what
they must keep computing, exactly.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from detectors.spikes import RecentCounts
from detectors.tails import DecayedHistogram

PROBABILITIES = (0.0, 0.5, 0.9, 0.99, 0.995, 1.0)


def reference_quantiles(hist: DecayedHistogram, probabilities: tuple[float, ...]) -> list[float]:
    """Counting by hand: walk down from the highest occupied bin, adding each bin's mass, until
    the mass above reaches ``(1 - p) * total``; interpolate inside that bin."""
    if hist.total <= 0:
        return [0.0] * len(probabilities)
    mass = hist.mass
    top = max((i for i, m in enumerate(mass) if m > 0), default=0)
    out = []
    for p in probabilities:
        target = (1.0 - p) * hist.total
        above = 0.0
        value = hist.low
        for i in range(top, -1, -1):
            if above + mass[i] >= target:
                frac = (target - above) / mass[i] if mass[i] > 0 else 0.0
                value = hist.low + (i + 1 - frac) * hist.width
                break
            above += mass[i]
        out.append(value)
    return out


def random_histogram(rng: random.Random) -> DecayedHistogram:
    hist = DecayedHistogram(-5.0, 9.0, 280, rng.choice((60.0, 1440.0, 20160.0)))
    if rng.random() < 0.5:
        hist.seed_normal(0.0, 0.5, 1440.0)
    for _ in range(rng.randrange(1, 2000)):
        hist.add(rng.gauss(rng.random(), 3 * rng.random()), rng.choice((1.0, 5.0)))
    return hist


def test_quantiles_equal_counting_by_hand() -> None:
    rng = random.Random(11)
    for _ in range(200):
        hist = random_histogram(rng)
        assert hist.quantiles(PROBABILITIES) == reference_quantiles(hist, PROBABILITIES)


def test_a_mass_rounded_to_zero_by_the_decay_no_longer_counts_as_the_top() -> None:
    hist = DecayedHistogram(-5.0, 9.0, 280, 1.0)
    hist.add(8.0, 5.0)
    for _ in range(400):  # rescaled every ~67 adds: the early mass shrinks below the floats
        hist.add(0.0, 5.0)
    assert hist.mass[int((8.0 + 5.0) / hist.width)] == 0.0
    assert hist.quantiles(PROBABILITIES) == reference_quantiles(hist, PROBABILITIES)
    assert hist.quantiles((1.0,)) == [pytest.approx(0.05)]


def test_quantiles_of_an_empty_histogram_are_zero() -> None:
    assert DecayedHistogram(-5.0, 9.0, 280, 60.0).quantiles((0.9, 0.995)) == [0.0, 0.0]


def test_quantiles_find_a_known_distribution() -> None:
    hist = DecayedHistogram(0.0, 10.0, 1000, 1e12)
    rng = random.Random(5)
    for _ in range(50_000):
        hist.add(rng.uniform(0.0, 10.0), 1.0)
    q90, q99 = hist.quantiles((0.9, 0.99))
    assert q90 == pytest.approx(9.0, abs=0.1)
    assert q99 == pytest.approx(9.9, abs=0.05)


def test_a_restored_histogram_reads_the_same_quantiles_as_it_goes_on() -> None:
    rng = random.Random(3)
    hist = random_histogram(rng)
    restored = DecayedHistogram(-5.0, 9.0, 280, hist.half_life_minutes)
    restored.load_state(hist.to_state())
    for _ in range(500):
        value = rng.gauss(2.0, 2.0)  # reaches bins above the saved ones
        hist.add(value, 5.0)
        restored.add(value, 5.0)
        assert restored.quantiles(PROBABILITIES) == hist.quantiles(PROBABILITIES)


def test_recent_sums_are_the_correctly_rounded_sums_of_the_latest_buckets() -> None:
    rng = random.Random(7)
    recent = RecentCounts(60)
    pairs: list[tuple[float, float]] = []
    for _ in range(500):
        pair = (float(rng.randrange(100)), rng.random() * 10 ** rng.randrange(-3, 4))
        recent.append(*pair)
        pairs.append(pair)
        for span in (1, 5, 60, 360):
            latest = pairs[-span:][-60:]
            expected = (
                float(sum(Fraction(o) for o, _ in latest)),
                float(sum(Fraction(e) for _, e in latest)),
            )
            assert recent.sums(span) == expected


def test_recent_sums_continue_exactly_after_a_restore() -> None:
    rng = random.Random(9)
    recent = RecentCounts(12)
    for _ in range(30):
        recent.append(float(rng.randrange(9)), rng.random())
    restored = RecentCounts(12)
    restored.load_state(recent.to_state())
    for _ in range(30):
        pair = (float(rng.randrange(9)), rng.random())
        recent.append(*pair)
        restored.append(*pair)
        assert restored.sums(5) == recent.sums(5)
        assert restored.sums(12) == recent.sums(12)
