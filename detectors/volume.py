"""The volume detector: one count series in, alert levels out.

It is the part of a brand's detector that watches total volume, usable on its own for any series
of counts per bucket (NAB's realTweets files are one). The same pieces, with the same
configuration, watch a brand's negative mentions in :mod:`detectors.brand`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.baseline import SeasonalBaseline
from detectors.config import DetectorConfig
from detectors.spikes import SpikeScore, SpikeScorer
from detectors.states import LevelMachine, Transition


@dataclass(frozen=True)
class VolumeStep:
    """What one closed bucket did to the volume detector."""

    start_ms: int
    count: float
    expected: float
    spike: SpikeScore
    level: int
    transition: Transition | None


class VolumeDetector:
    """Seasonal baseline + multi-scale spike score + alert state machine over one count series."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.minutes = self.config.bucket_minutes
        self.baseline = SeasonalBaseline(self.config.baseline)
        self.scorer = SpikeScorer(self.config.spikes, self.minutes)
        self.machine = LevelMachine(self.config.states, self.minutes)

    def step(self, start_ms: int, count: float) -> VolumeStep:
        """Close one bucket (starting at ``start_ms``) that held ``count`` mentions."""
        rate = self.baseline.expected_rate(start_ms)
        expected = rate * self.minutes
        unseen = 1.0 - self.baseline.seasonal_weight(start_ms)
        confidence = 1.0 / (1.0 + self.config.spikes.cold_start_factor * unseen)
        spike = self.scorer.step(count, expected, confidence)
        end_ms = start_ms + round(self.minutes * 60_000)
        transition = self.machine.step(end_ms, spike.score, armed=self.baseline.warm)
        self.baseline.update(start_ms, count / self.minutes, self.minutes, rate)
        return VolumeStep(start_ms, count, expected, spike, self.machine.level, transition)

    def to_state(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_state(),
            "scorer": self.scorer.to_state(),
            "machine": self.machine.to_state(),
        }

    @classmethod
    def from_state(cls, config: DetectorConfig, state: dict[str, Any]) -> VolumeDetector:
        detector = cls(config)
        detector.baseline = SeasonalBaseline.from_state(config.baseline, state["baseline"])
        detector.scorer.load_state(state["scorer"])
        detector.machine.load_state(state["machine"])
        return detector
