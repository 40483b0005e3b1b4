"""The replay pipeline without Kafka: records in, the live stages' code, results out.

Records from a topic are handed to :meth:`ReplayEngine.feed` in the order the live worker would
have consumed them. The engine runs the very functions the agents run: validation, routing and
de-duplication (:func:`streams.agents.validate.check_mention`), scoring in micro-batches
(:class:`streams.agents.score.BatchScorer`), reading scored records
(:func:`streams.agents.detect.parse_scored`), detection (:class:`detectors.replay.Replayer`) and
alert records (:func:`streams.agents.detect.alert_record`).

The live detect agent keeps one Replayer per partition of ``mentions.scored``: the brands of a
partition share one watermark, so which brands share a partition changes *when* buckets close
and so which mentions are late. The engine therefore sends every scored mention to the partition
the live producer would have chosen (Kafka's murmur2 partitioner on the brand key) and keeps one
Replayer per partition, per detector configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka.partitioner.default import murmur2

from detectors.alerting import BrandVoice
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, EpisodeEvent, Output
from detectors.events import MentionEvent, watermark_clock
from detectors.replay import Replayer
from detectors.timeslots import bucket_start
from streams.agents.detect import COPY_WINDOW_RECORDS, alert_record, is_copy, parse_scored
from streams.agents.score import BatchScorer
from streams.agents.validate import Passed, Skipped, check_mention, valid_value
from streams.brand_matching import BrandMatcher
from streams.dedup import Deduplicator
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection
from streams.replay.charts import merge_cell_ms
from streams.replay.result import BucketPoint, ReplayCounts, RunResult, Stage, merge_points

log = get_logger(__name__)

#: Bucket points a brand's chart series holds before the older ones are merged (a long
#: replay): 1-minute buckets are kept as they are for the first 2.8 days of a range, so a
#: shorter replay's result holds every bucket.
POINTS_PER_BRAND = 4096

#: Called for every output inside the range: (run index, output, its alert record or None).
OutputHook = Callable[[int, Output, dict[str, Any] | None], None]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of the replayed topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class RunSpec:
    """A detector configuration to run over the history."""

    label: str
    config: DetectorConfig
    source: str = "defaults"


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's, aiokafka's and kafka-python's alike:
    murmur2 of the key) gives a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class _Pending:
    """A brand copy of a mention waiting for the next scoring batch (order is kept)."""

    key: bytes
    value: bytes
    clock_ms: int  # how far it moves the watermark (MentionEvent.clock_ms)
    score: bool  # False: a brand left out with --brand; it only moves the watermark


def _clock_ms(record: dict[str, Any]) -> int:
    """:attr:`MentionEvent.clock_ms` of a validated record (not yet scored, so not a
    :class:`MentionEvent`)."""
    received = record.get("received_at_ms")
    return watermark_clock(
        int(record["created_at_ms"]), received if isinstance(received, int | float) else None
    )


@dataclass
class _Run:
    spec: RunSpec
    result: RunResult
    replayers: dict[int, Replayer] = field(default_factory=dict)


class ReplayEngine:
    """Validate, score and detect records in the order given; collect what falls in the range."""

    def __init__(
        self,
        *,
        stage: Stage,
        runs: Sequence[RunSpec],
        start_ms: int,
        end_ms: int,
        warmup_start_ms: int,
        lateness_ms: int,
        partitions: int,
        voices: Mapping[str, BrandVoice],
        matcher: BrandMatcher,
        limits: Limits,
        dedup_window_ms: int,
        scorer: BatchScorer | None,
        batch_size: int = 256,
        brands: frozenset[str] = frozenset(),
        on_output: OutputHook | None = None,
        tail_ms: int = 0,
    ) -> None:
        if stage != "scored" and scorer is None:
            raise ValueError(f"a replay from {stage} needs a scorer")
        if not runs:
            raise ValueError("at least one detector configuration is needed")
        self.stage = stage
        self.start_ms = start_ms
        self.end_ms = end_ms
        #: Records this long past the end (the source reads them) only move the watermark, as
        #: they did live: the buckets just before the end close as they closed live.
        self.tail_ms = max(0, tail_ms)
        self.warmup_start_ms = min(warmup_start_ms, start_ms)
        self.lateness_ms = lateness_ms
        self.partitions = partitions
        self.voices = voices
        self.matcher = matcher
        self.limits = limits
        self.dedup = Deduplicator({}, dedup_window_ms)
        #: The detect stage's own check for copies an upstream stage wrote twice.
        self.copies = Deduplicator({}, COPY_WINDOW_RECORDS if dedup_window_ms > 0 else 0)
        self._scored_offsets: dict[int, int] = {}
        self.scorer = scorer
        self.batch_size = max(1, batch_size)
        self.brands = brands
        self.on_output = on_output
        self.counts = ReplayCounts()
        self._runs = [_Run(spec, RunResult(spec.label, spec.config, spec.source)) for spec in runs]
        self._pending: list[_Pending] = []
        self._to_score = 0
        #: Brands with a mention inside the range that reached the detectors.
        self.seen_brands: set[str] = set()
        # The report charts buckets in bins of one size for every brand and run, chosen from
        # the span up to the newest bucket's end (streams.replay.charts.bins_for). A long
        # replay merges each brand's buckets into cells every bin it can still choose is a
        # whole number of, so the result stays small and the charts the same.
        bucket_sizes = [run.result.bucket_ms for run in self._runs]
        self._unit_ms = math.lcm(*(max(1, size) for size in bucket_sizes))
        self._max_span_ms = end_ms - start_ms + max(bucket_sizes)
        self._stop_ms = start_ms  # the newest reported bucket's end
        self._merge_at: dict[tuple[int, str], int] = {}

    @property
    def results(self) -> list[RunResult]:
        return [run.result for run in self._runs]

    def selected(self, brand: str) -> bool:
        return not self.brands or brand in self.brands

    # --- input -------------------------------------------------------------------------------

    def feed(self, record: SourceRecord) -> None:
        """One record of the topic, in consumption order."""
        counts = self.counts
        counts.read += 1
        stamp = record.timestamp_ms
        counts.last_ms = stamp if counts.last_ms is None else max(counts.last_ms, stamp)
        if self.end_ms <= record.timestamp_ms < self.end_ms + self.tail_ms:
            counts.after += 1
            self._dispatch(record, tail=True)
            return
        if not self.warmup_start_ms <= record.timestamp_ms < self.end_ms:
            counts.outside += 1
            return
        counts.first_ms = stamp if counts.first_ms is None else min(counts.first_ms, stamp)
        if record.timestamp_ms < self.start_ms:
            counts.warmup += 1
        else:
            counts.in_range += 1
        self._dispatch(record, tail=False)

    def _dispatch(self, record: SourceRecord, *, tail: bool) -> None:
        """``tail``: a record past the end; it moves the watermark of its brand's partition and
        is counted nowhere else."""
        if self.stage == "mentions":
            self._validate(record, tail)
        elif self.stage == "valid":
            self._from_valid(record, tail)
        else:
            self._detect_scored(record.partition, record.value, record.offset, tail)

    def finish(self) -> list[RunResult]:
        """Score and detect what is still waiting; the results of every run."""
        self._flush()
        for run in self._runs:
            detectors = [d for r in run.replayers.values() for d in r.detectors.values()]
            run.result.unclosed = sum(
                bucket.volume
                for d in detectors
                for start, bucket in d.open.items()
                if self.start_ms <= start < self.end_ms
            )
        return self.results

    # --- validation --------------------------------------------------------------------------

    def _validate(self, record: SourceRecord, tail: bool = False) -> None:
        try:
            outcome = check_mention(
                record.value,
                record.partition,
                record.offset,
                limits=self.limits,
                matcher=self.matcher,
                dedup=self.dedup,
                generation=0,
                # The live stage checked "not too far in the future" against its clock when the
                # record arrived; the record's timestamp is the closest we have to that.
                now=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC),
            )
        except Exception as exc:  # the live stage dead-letters its own bugs, so do we
            outcome = Rejection("internal_error", f"{type(exc).__name__}: {exc}")
        if tail:
            if isinstance(outcome, Passed):
                for brand_id, brand_record in outcome.records:
                    self._queue(
                        brand_id.encode(), b"", _clock_ms(brand_record), brand_id, tick_only=True
                    )
            return
        if isinstance(outcome, Rejection):
            self.counts.dead_letter(outcome.reason)
            return
        if outcome is Skipped.UNMATCHED:
            self.counts.unmatched += 1
            return
        if outcome is Skipped.DUPLICATE:
            self.counts.duplicates += 1
            return
        assert isinstance(outcome, Passed)
        for brand_id, brand_record in outcome.records:
            self.counts.passed += 1
            self._queue(
                brand_id.encode(), valid_value(brand_record), _clock_ms(brand_record), brand_id
            )

    def _from_valid(self, record: SourceRecord, tail: bool = False) -> None:
        try:
            parsed = json.loads(record.value or b"")
            brand = str(parsed["brand"])
            clock_ms = _clock_ms(parsed)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            # Unreadable here is unreadable for the scorer too: it would dead-letter it.
            log.debug("replay.unreadable_valid", offset=record.offset, error=str(exc))
            if not tail:
                self.counts.dead_letter("invalid_json")
            return
        if tail:
            self._queue(record.key or brand.encode(), b"", clock_ms, brand, tick_only=True)
            return
        self.counts.passed += 1
        self._queue(record.key or brand.encode(), record.value or b"", clock_ms, brand)

    # --- scoring -----------------------------------------------------------------------------

    def _queue(
        self, key: bytes, value: bytes, clock_ms: int, brand: str, *, tick_only: bool = False
    ) -> None:
        score = self.selected(brand) and not tick_only
        if not score and not tick_only:
            self.counts.other_brands += 1
        self._pending.append(_Pending(key, value, clock_ms, score))
        self._to_score += score
        if self._to_score >= self.batch_size or len(self._pending) >= 4 * self.batch_size:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending, self._to_score = self._pending, [], 0
        if not pending:
            return
        wanted = [item.value for item in pending if item.score]
        assert self.scorer is not None or not wanted
        results = iter(self.scorer.run(wanted) if self.scorer is not None and wanted else [])
        for item in pending:
            partition = key_partition(item.key, self.partitions)
            if not item.score:
                self._tick(partition, item.clock_ms)
                continue
            result = next(results)
            if isinstance(result, Rejection):
                self.counts.dead_letter(result.reason)
                continue
            self.counts.scored += 1
            payload, _record = result
            self._detect_scored(partition, payload)

    # --- detection ---------------------------------------------------------------------------

    def _detect_scored(
        self, partition: int, value: bytes | None, offset: int | None = None, tail: bool = False
    ) -> None:
        """A scored record as the detect agent takes it; ``offset`` is its offset on
        mentions.scored (a replay that scores numbers its records per partition instead)."""
        if offset is None:
            offset = self._scored_offsets.get(partition, 0)
            self._scored_offsets[partition] = offset + 1
        try:
            _record, event = parse_scored(value or b"")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.debug("replay.unreadable_scored", partition=partition, error=str(exc))
            self.counts.unreadable += not tail
            return
        if is_copy(self.copies, event, partition, offset, 0):
            self.counts.copies += not tail
            return
        if tail or not self.selected(event.brand):
            self._tick(partition, event.clock_ms)
            return
        self.counts.detected += 1
        if event.event_ms < self.start_ms:
            self.counts.detected_warmup += 1
        elif event.event_ms >= self.end_ms:
            self.counts.detected_after += 1
        if event.event_ms >= self.start_ms:
            self.seen_brands.add(event.brand)
        self._detect(partition, event)

    def _detect(self, partition: int, event: MentionEvent) -> None:
        in_range = self.start_ms <= event.event_ms < self.end_ms
        for index, run in enumerate(self._runs):
            replayer = self._replayer(run, partition)
            known = replayer.detectors.get(event.brand)
            late_before = known.late_total if known is not None else 0
            outputs = replayer.feed(event)
            if in_range:
                # Where the mention went, told now: a late one is reported with the next bucket
                # of its brand that closes, which can lie past the end (and is not reported).
                detector = replayer.detectors[event.brand]
                if detector.late_total > late_before:
                    run.result.late += 1
                elif bucket_start(event.event_ms, detector.bucket_ms) < self.start_ms:
                    run.result.cut += 1
            self._collect(index, run, outputs)

    def _tick(self, partition: int, event_ms: int) -> None:
        for index, run in enumerate(self._runs):
            replayer = self._replayer(run, partition)
            self._collect(index, run, replayer.tick(event_ms))

    def _replayer(self, run: _Run, partition: int) -> Replayer:
        replayer = run.replayers.get(partition)
        if replayer is None:
            replayer = run.replayers[partition] = Replayer(run.spec.config, self.lateness_ms)
        return replayer

    def _collect(self, index: int, run: _Run, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, EpisodeEvent):
                # at_ms is the end of the bucket that caused the change: in the range when
                # that bucket is (buckets past the end close on the records just after it).
                if not self.start_ms < output.at_ms <= self.end_ms:
                    continue
                alert = alert_record(output, self.voices)
                run.result.alerts.append(alert)
                if self.on_output is not None:
                    self.on_output(index, output, alert)
            elif isinstance(output, BucketSummary):
                if not self.start_ms <= output.start_ms < self.end_ms:
                    continue
                points = run.result.buckets.setdefault(output.brand, [])
                points.append(BucketPoint.from_summary(output))
                self._stop_ms = max(self._stop_ms, output.end_ms)
                if len(points) > self._merge_at.get((index, output.brand), POINTS_PER_BRAND):
                    self._merge(index, run, output.brand)
                if self.on_output is not None:
                    self.on_output(index, output, None)

    def _merge(self, index: int, run: _Run, brand: str) -> None:
        """Merge a brand's points into the coarsest cells the chart bins allow by now."""
        cell_ms = merge_cell_ms(self._stop_ms - self.start_ms, self._max_span_ms, self._unit_ms)
        points = run.result.buckets[brand]
        if cell_ms > run.result.bucket_ms:
            points[:] = merge_points(points, cell_ms)
        # With bucket sizes a round bin fits, a merge leaves fewer than 1,000 points. One that
        # leaves more (a bucket size no round bin fits, 7 minutes say, can keep every bucket a
        # cell of its own for a while) waits for another quarter of the allowance.
        left = len(points)
        self._merge_at[(index, brand)] = (
            POINTS_PER_BRAND if left <= POINTS_PER_BRAND * 3 // 4 else left + POINTS_PER_BRAND // 4
        )
