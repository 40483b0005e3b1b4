"""What a replay produced: the pure data the report is written from (no Kafka, no clocks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Literal

from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary
from detectors.states import LEVELS

#: Which topic a replay starts from: raw mentions (validate, score, detect), validated mentions
#: (score, detect) or scored mentions (detect only).
Stage = Literal["mentions", "valid", "scored"]

LEVEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}


@dataclass(frozen=True, slots=True)
class BucketPoint:
    """The figures of one closed bucket that the report charts (a compact BucketSummary).

    In a long replay a point may stand for several consecutive buckets of its brand (``buckets``
    of them, see :func:`merge_points`): then ``volume``, ``negative``, ``expected_volume`` and
    ``late`` are their sums, ``negative_share_baseline`` their mean, the levels their highest,
    ``start_ms`` the first one's start and ``end_ms`` the last one's end.
    """

    start_ms: int
    end_ms: int
    volume: int
    negative: int
    expected_volume: float
    negative_share_baseline: float
    storm_level: int  # index into detectors.states.LEVELS: 0 normal .. 3 critical
    buzz_level: int
    late: int = 0
    buckets: int = 1  # how many buckets the point stands for

    @classmethod
    def from_summary(cls, summary: BucketSummary) -> BucketPoint:
        return cls(
            start_ms=summary.start_ms,
            end_ms=summary.end_ms,
            volume=summary.volume,
            negative=summary.negative,
            expected_volume=summary.expected_volume,
            negative_share_baseline=summary.negative_share_baseline,
            storm_level=LEVEL_INDEX.get(summary.storm_level, 0),
            buzz_level=LEVEL_INDEX.get(summary.buzz_level, 0),
            late=summary.late,
        )


def merge_points(points: Sequence[BucketPoint], cell_ms: int) -> list[BucketPoint]:
    """One point per ``cell_ms`` cell of the epoch grid (the grid buckets and chart bins lie
    on), in time order: what a chart bin that is a whole number of cells shows is the same from
    the merged points as from the buckets (sums, the highest level, the mean usual share).
    ``points`` are one brand's, in time order."""
    return [
        _merged(list(group)) for _, group in groupby(points, key=lambda p: p.start_ms // cell_ms)
    ]


def _merged(group: list[BucketPoint]) -> BucketPoint:
    """One point for consecutive points of a brand (see :class:`BucketPoint`)."""
    if len(group) == 1:
        return group[0]
    count = sum(p.buckets for p in group)
    return BucketPoint(
        start_ms=group[0].start_ms,
        end_ms=group[-1].end_ms,
        volume=sum(p.volume for p in group),
        negative=sum(p.negative for p in group),
        expected_volume=sum(p.expected_volume for p in group),
        negative_share_baseline=sum(p.negative_share_baseline * p.buckets for p in group) / count,
        storm_level=max(p.storm_level for p in group),
        buzz_level=max(p.buzz_level for p in group),
        late=sum(p.late for p in group),
        buckets=count,
    )


@dataclass
class RunResult:
    """One detector configuration run over the history: its alerts and its buckets."""

    label: str  # e.g. "live configuration", "candidate"
    config: DetectorConfig
    source: str = "defaults"  # where the configuration came from (a file, or the defaults)
    #: Alert records (as published on ``alerts``) changed inside the range, in emission order.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Brand id -> its closed buckets inside the range, in time order; in a long replay merged
    #: to a resolution every chart bin the report can choose is a whole number of (so at most
    #: about ``streams.replay.engine.POINTS_PER_BRAND`` points per brand, whatever the span).
    buckets: dict[str, list[BucketPoint]] = field(default_factory=dict)
    #: Mentions dated in the range that the detectors counted late (their bucket had closed
    #: when they came): in no bucket's volume. Counted as they are fed, whichever bucket (maybe
    #: one past the end, which is not reported) the detector reports them with.
    late: int = 0
    #: Mentions of the range in buckets still open at the end (no later record closed them):
    #: in no bucket either, and nothing was detected on them.
    unclosed: int = 0
    #: Mentions of the range in the bucket that ``--from`` cuts (it starts before the range, so
    #: it is not reported): when ``--from`` is not on a bucket boundary.
    cut: int = 0

    @property
    def unreported(self) -> int:
        """Mentions of the range in no reported bucket (late, still open, or cut by --from)."""
        return self.late + self.unclosed + self.cut

    @property
    def bucket_ms(self) -> int:
        return round(self.config.bucket_minutes * 60_000)


@dataclass
class ReplayCounts:
    """Where every record read went (a record may fan out to several brands)."""

    read: int = 0  # records read from the topic
    outside: int = 0  # their timestamp lies outside [warm-up start, end + tail)
    after: int = 0  # in [end, end + tail): they only moved the watermark, as they did live
    warmup: int = 0  # inside the warm-up, before the range: they teach the detectors only
    in_range: int = 0  # timestamp inside [start, end)
    passed: int = 0  # brand copies passed on by validation (a mention of two brands counts 2)
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason -> records
    duplicates: int = 0
    unmatched: int = 0  # mentions naming no configured brand
    other_brands: int = 0  # brand copies of brands left out with --brand (not scored)
    scored: int = 0
    unreadable: int = 0  # scored records the detection stage could not read
    copies: int = 0  # scored copies of a mention already counted, dropped as the detect stage does
    detected: int = 0  # mentions fed to the detectors (warm-up and range)
    detected_warmup: int = 0  # of them dated before the range (they teach the detectors only)
    detected_after: int = 0  # of them dated at or after the end (record timestamp in the range)
    #: Partitions whose timestamps go back in time past the range's end: read to their log end.
    reordered: set[int] = field(default_factory=set)
    #: The oldest record timestamp in [warm-up start, end) and the newest of every record read
    #: (past the range too): how much of what was asked for the topic held (None: none read).
    first_ms: int | None = None
    last_ms: int | None = None

    @property
    def detected_in_range(self) -> int:
        """Mentions fed to the detectors dated in the range: the charts' buckets, the late ones,
        those in buckets still open and those in the bucket --from cuts add up to this."""
        return self.detected - self.detected_warmup - self.detected_after

    def dead_letter(self, reason: str) -> None:
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1


@dataclass
class ReplayResult:
    """Everything :func:`streams.replay.report.write_report` needs, and nothing from Kafka."""

    topic: str
    stage: Stage
    start_ms: int
    end_ms: int
    warmup_start_ms: int
    runs: list[RunResult]
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    timezone: str = "UTC"
    #: Brand id -> display name (from the brands file; the id when unknown).
    brand_names: dict[str, str] = field(default_factory=dict)
    #: The brands asked for with --brand (empty: every brand).
    selected_brands: tuple[str, ...] = ()
    #: Partitions of mentions.scored: one detector group (one shared watermark) per partition.
    partitions: int = 1
    #: The topic whose partitions those are: the replayed one (a scored topic), else the live
    #: ``<prefix>mentions.scored``.
    partitions_topic: str = "mentions.scored"
    #: ``partitions_topic`` was not found, so ``partitions`` is STORMVARSEL_TOPIC_PARTITIONS:
    #: the live layout may have been another.
    partitions_fallback: bool = False
    scorer: str | None = None  # model version, when the replay scored
    lateness_ms: int = 60_000
    #: The topic held no record older than those read (every partition read from its first
    #: offset): an empty stretch at the start of the warm-up or range is history it lacks.
    from_first_record: bool = False

    def brands(self) -> list[str]:
        """Brand ids that have buckets or alerts in any run, sorted."""
        found: set[str] = set()
        for run in self.runs:
            found.update(run.buckets)
            found.update(str(alert.get("brand")) for alert in run.alerts)
        return sorted(found)

    def brand_name(self, brand: str) -> str:
        return self.brand_names.get(brand, brand)
