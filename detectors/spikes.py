"""Spike scores: how unusual the latest counts are *for this brand*, and for how long.

Each closed bucket is compared with the baseline over a few reference windows (by default the
last 5 and the last 60 minutes, so 1-minute and 5-minute buckets mean the same thing) as a log
ratio ``lr = ln((X + a) / (E + a))``; the pseudo-count ``a`` keeps a quiet brand's 2-versus-0
from looking like infinity. The log ratio is then put on the brand's own scale, in *tail units*:
``u = (lr - q_anchor) / (q_tail - q_anchor)``, with both quantiles (90th and 99.5th percentile
by default) read from a decayed histogram of the brand's own past log ratios at that window.
``u = 0`` is an ordinary busy moment for this brand, ``u = 1`` its one-in-two-hundred one, and
the spacing of the two quantiles measures how heavy the brand's tail is, so a ticker that
trends every other day needs a bigger excursion to alarm than a brand whose volume is steady.

Two classic detectors from process control read ``u``:

* Shewhart (a spike): ``u / spike_tails`` reaches 1 on one window far out in the tail;
* Page's CUSUM (a build-up): ``S = max(0, S + (u - drift) * w)``, with ``w`` = bucket length /
  window length, accumulates a run of unusual windows (a sustained rise, or repeated bursts) and
  reaches 1 at ``S / cusum_limit``. While the window's count is at or below its baseline
  (``lr <= 0``), ``S`` falls by at least ``cusum_limit`` per ``cusum_drain_minutes``, so a long
  storm's evidence is gone within hours of its end.

The score is the largest of these over the windows, so 1.0 is where the state machine's default
watch threshold sits. While the series has fewer than ``min_volume`` mentions in the last
``gate_minutes``, no evidence is added (the "three angry posts at 4 a.m." gate).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

from detectors.config import SpikeConfig
from detectors.tails import DecayedHistogram

_HIST_LOW, _HIST_HIGH, _HIST_BINS = -5.0, 9.0, 280
QUANTILE_REFRESH_MINUTES = 5.0


@dataclass(frozen=True)
class SpikeScore:
    """One bucket's evidence: the combined score and what it was made of."""

    score: float
    tail_units: float
    cusum: float
    observed: float
    expected: float
    window_minutes: float
    #: The series had fewer than ``min_volume`` in the last ``gate_minutes``: no evidence counts.
    gated: bool = False


class RecentCounts:
    """The last ``length`` buckets' (observed, expected) counts, with sums over any suffix.

    The sums are ``math.fsum``: correctly rounded whatever the order of the terms, so a restored
    state, or another Python version, continues with exactly the same floating-point values; and
    a C loop, so summing an hour of 1-minute buckets on every bucket stays cheap.
    """

    def __init__(self, length: int) -> None:
        self.observed: deque[float] = deque(maxlen=length)
        self.expected: deque[float] = deque(maxlen=length)

    def append(self, observed: float, expected: float) -> None:
        self.observed.append(observed)
        self.expected.append(expected)

    def sums(self, span: int) -> tuple[float, float]:
        """Observed and expected totals of the latest ``span`` buckets (fewer if fewer seen)."""
        if span >= len(self.observed):
            return math.fsum(self.observed), math.fsum(self.expected)
        return (
            math.fsum(islice(reversed(self.observed), span)),
            math.fsum(islice(reversed(self.expected), span)),
        )

    def to_state(self) -> list[list[float]]:
        return [[o, e] for o, e in zip(self.observed, self.expected, strict=True)]

    def load_state(self, state: list[list[float]]) -> None:
        self.observed.clear()
        self.expected.clear()
        for o, e in state:
            self.append(float(o), float(e))


class _Scale:
    """Histogram and CUSUM of the log ratio over one reference window."""

    def __init__(self, config: SpikeConfig, window_minutes: float, bucket_minutes: float) -> None:
        self.window_minutes = window_minutes
        self.span = max(1, round(window_minutes / bucket_minutes))
        self.step_weight = min(1.0, bucket_minutes / window_minutes)
        self.hist = DecayedHistogram(
            _HIST_LOW, _HIST_HIGH, _HIST_BINS, config.tail_half_life_days * 1440.0
        )
        self.hist.seed_normal(0.0, config.prior_sd, config.prior_weight_hours * 60.0)
        self.cusum = 0.0
        #: Cached (anchor, tail) quantiles and the minutes of data since they were read: the
        #: histogram moves slowly (a half-life of days), so re-reading it every few minutes
        #: is as good as every bucket and much cheaper with 1-minute buckets.
        self.cached: tuple[float, float] | None = None
        self.cache_age = 0.0

    def quantiles(self, config: SpikeConfig, bucket_minutes: float) -> tuple[float, float]:
        if self.cached is None or self.cache_age >= QUANTILE_REFRESH_MINUTES:
            anchor, tail = self.hist.quantiles((config.anchor_quantile, config.tail_quantile))
            self.cached = (anchor, tail)
            self.cache_age = 0.0
        self.cache_age += bucket_minutes
        return self.cached


class SpikeScorer:
    """Shewhart + CUSUM on brand-relative log ratios of one count series, at several windows."""

    def __init__(
        self, config: SpikeConfig, bucket_minutes: float, min_volume: float | None = None
    ) -> None:
        self.config = config
        self.bucket_minutes = bucket_minutes
        self.min_volume = config.min_volume if min_volume is None else min_volume
        self.scales = [_Scale(config, w, bucket_minutes) for w in config.windows_minutes]
        #: The least a CUSUM falls per bucket while its window reads below its usual level.
        self.drain = (
            config.cusum_limit * bucket_minutes / config.cusum_drain_minutes
            if config.cusum_drain_minutes > 0
            else 0.0
        )
        self.gate_span = max(1, round(config.gate_minutes / bucket_minutes))
        self.spans = sorted({s.span for s in self.scales} | {self.gate_span})
        longest = max([s.span for s in self.scales] + [self.gate_span])
        self.recent = RecentCounts(longest)

    def step(self, observed: float, expected: float, confidence: float = 1.0) -> SpikeScore:
        """Score a closed bucket, then learn from it. ``confidence`` (0..1] damps early evidence."""
        cfg = self.config
        a = cfg.pseudo_count
        self.recent.append(observed, expected)
        sums: dict[int, tuple[float, float]] = {}
        for span in self.spans:
            sums[span] = self.recent.sums(span)
        gated = sums[self.gate_span][0] < self.min_volume
        best: SpikeScore | None = None
        for scale in self.scales:
            x, e = sums[scale.span]
            lr = math.log((x + a) / (e + a))
            anchor, tail = scale.quantiles(cfg, self.bucket_minutes)
            spread = max(tail - anchor, cfg.min_tail_spread)
            u = (lr - anchor) / spread * confidence
            if gated:
                u = min(u, 0.0)
            step = (u - cfg.cusum_drift) * scale.step_weight
            if lr <= 0 and self.drain > 0:
                # At or below its baseline the window holds no evidence of a storm, and its sum
                # drains at least at a floor rate. By u alone the 60-minute window's sum fell
                # by about 0.2 an hour (its u is only a little below 0 in normal times), so a
                # storm of several hours held its episode open (at watch) for 10 to 20 hours
                # after it ended, and the next day's storm came as an escalation of it, its
                # drivers yesterday's. Above the baseline, if below the brand's usual busy
                # level (u < 0), nothing changes: a mild rise still builds up.
                step = min(step, -self.drain)
            scale.cusum = max(0.0, scale.cusum + step)
            # Capped, so evidence drains within hours of the end of a storm, however long it ran.
            scale.cusum = min(scale.cusum, cfg.cusum_cap * cfg.cusum_limit)
            score = max(u / cfg.spike_tails, scale.cusum / cfg.cusum_limit)
            if best is None or score > best.score:
                best = SpikeScore(score, u, scale.cusum, x, e, scale.window_minutes, gated)
            # While evidence is building up, learn winsorised at the tail quantile: a storm's
            # windows pile up *at* the tail instead of stretching it, so the brand's sensitivity
            # next week stays what it was. In normal times, learn every value as it is.
            if score >= cfg.learn_guard:
                lr = min(lr, tail)
            scale.hist.add(lr, self.bucket_minutes)
        assert best is not None
        return best

    def to_state(self) -> dict[str, Any]:
        return {
            "recent": self.recent.to_state(),
            "scales": [
                {
                    "hist": s.hist.to_state(),
                    "cusum": s.cusum,
                    "cached": list(s.cached) if s.cached is not None else None,
                    "cache_age": s.cache_age,
                }
                for s in self.scales
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.recent.load_state(state["recent"])
        for scale, saved in zip(self.scales, state["scales"], strict=True):
            scale.hist.load_state(saved["hist"])
            scale.cusum = float(saved.get("cusum", 0.0))
            # The cached quantiles are re-read from the histogram when absent.
            cached = saved.get("cached")
            scale.cached = (float(cached[0]), float(cached[1])) if cached is not None else None
            scale.cache_age = float(saved.get("cache_age", 0.0))


class SustainedScorer:
    """Significance of a long window's excess over the baseline (hours of a raised level).

    ``z = (X - E) / sqrt(E + phi * E^2)`` over the last ``window_minutes``: Poisson noise plus
    the brand's own window-to-window variation ``phi`` (negative-binomial style), learnt from
    consecutive non-overlapping windows, winsorised at ``3`` standard errors and shrunk towards
    ``prior_phi``. Catches a day-long doubling of complaints that never makes any one hour
    stand out, which the spike scores are built to ignore.

    The caller gates it as it gates the spike score of the same series (see
    :class:`detectors.brand.BrandDetector`): below ``min_volume`` in the last ``gate_minutes``
    the score does not count, or a brand with a post a day would read one post as ``z`` of 5.
    """

    def __init__(
        self,
        window_minutes: float,
        bucket_minutes: float,
        prior_phi: float,
        prior_windows: float,
        min_ratio: float,
        z_unit: float,
    ) -> None:
        self.span = max(1, round(window_minutes / bucket_minutes))
        self.recent_span = max(1, round(60.0 / bucket_minutes))
        self.recent = RecentCounts(self.span)
        self.prior_phi = prior_phi
        self.prior_windows = prior_windows
        self.min_ratio = min_ratio
        self.z_unit = z_unit
        self.phi_sum = 0.0
        self.phi_n = 0.0
        self.since_sample = 0

    @property
    def phi(self) -> float:
        return (self.prior_phi * self.prior_windows + self.phi_sum) / (
            self.prior_windows + self.phi_n
        )

    def step(self, observed: float, expected: float, confidence: float = 1.0) -> float:
        """Add a closed bucket; return the score (1.0 = ``z_unit`` standard errors)."""
        self.recent.append(observed, expected)
        x, e = self.recent.sums(self.span)
        e = max(e, 1e-9)
        phi = self.phi
        z = (x - e) / math.sqrt(e + phi * e * e)
        self.since_sample += 1
        if self.since_sample >= self.span:
            self.since_sample = 0
            zc = max(-3.0, min(3.0, z))
            dev2 = zc * zc * (e + phi * e * e)
            self.phi_sum += max(0.0, (dev2 - e) / (e * e))
            self.phi_n += 1.0
        if x < self.min_ratio * e or not self._still_rising():
            return 0.0
        return max(0.0, z * confidence / self.z_unit)

    def _still_rising(self) -> bool:
        """The last ``recent_span`` buckets are themselves above expectation: evidence from
        hours ago alone does not keep an episode open."""
        x, e = self.recent.sums(self.recent_span)
        return x >= self.min_ratio * e

    def to_state(self) -> dict[str, Any]:
        return {
            "recent": self.recent.to_state(),
            "phi": [self.phi_sum, self.phi_n, self.since_sample],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.recent.load_state(state["recent"])
        self.phi_sum, self.phi_n = float(state["phi"][0]), float(state["phi"][1])
        self.since_sample = int(state["phi"][2])
