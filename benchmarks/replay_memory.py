"""Replay memory benchmark: peak memory of a replay as the replayed span and the brands grow.

    .venv/bin/python benchmarks/replay_memory.py [--brands 20] [--days 30] [--rate 1]
        [--partitions 3] [--no-report]

Synthetic scored mentions (``benchmarks/detector_bench.py``'s generator: a daily rhythm, a
storm in the first brand) go through :class:`streams.replay.engine.ReplayEngine` as a replay of
``mentions.scored`` (detection only, no Kafka, no model), then the report is written to a
temporary directory. Printed: the mentions, the bucket figures the result holds for the report,
and the process's peak resident memory (``ru_maxrss``) above what it was before the replay
(imports, generator). Mentions are generated lazily, so they are not counted. The detectors
close one bucket per brand per minute, with or without mentions in it, so what the result holds
grows with brands x minutes whatever ``--rate`` is; the rate only sets the running time.

Run one span and brand count per process: ``ru_maxrss`` is a high-water mark.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detector_bench import MINUTE, T0, mentions
from detectors.config import DetectorConfig
from detectors.episodes import Output
from detectors.events import MentionEvent
from streams.brand_matching import BrandMatcher
from streams.brands import BrandsFile
from streams.mention import Limits
from streams.replay.engine import ReplayEngine, RunSpec, SourceRecord, key_partition
from streams.replay.report import write_report
from streams.replay.result import ReplayResult

DAY_MS = 1440 * MINUTE


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def scored_value(event: MentionEvent) -> bytes:
    """A ``mentions.scored`` record for the event, as the scoring stage writes it."""
    record = {
        "id": event.mention_id,
        "text": event.text,
        "created_at_ms": event.event_ms,
        "brand": event.brand,
        "platform": event.platform,
        "lang": event.lang,
        "url": event.url,
        "author": {"id": event.author, "followers": event.followers},
        "engagement": {"likes": event.likes, "shares": event.shares, "replies": event.replies},
        "sentiment": {"label": event.sentiment},
    }
    return json.dumps(record, separators=(",", ":")).encode()


def records(brands: int, days: int, rate: float, partitions: int) -> Iterator[SourceRecord]:
    offsets = [0] * partitions
    for event in mentions(brands, days * 1440, rate, seed=3):
        partition = key_partition(event.brand.encode(), partitions)
        yield SourceRecord(
            partition,
            offsets[partition],
            event.event_ms,
            event.brand.encode(),
            scored_value(event),
        )
        offsets[partition] += 1


def synthetic_engine(
    days: int,
    partitions: int,
    runs: list[RunSpec],
    on_output: Callable[[int, Output, object], None] | None = None,
) -> ReplayEngine:
    """A replay of ``mentions.scored`` over ``days`` from :data:`T0` (no warm-up, no brands
    file, no scorer), for :func:`records`."""
    return ReplayEngine(
        stage="scored",
        runs=runs,
        start_ms=T0,
        end_ms=T0 + days * DAY_MS,
        warmup_start_ms=T0,
        lateness_ms=60_000,
        partitions=partitions,
        voices={},
        matcher=BrandMatcher.from_file(BrandsFile()),
        limits=Limits(),
        dedup_window_ms=24 * 3_600_000,
        scorer=None,
        on_output=on_output,
    )


def measure(brands: int, days: int, rate: float, partitions: int, report: bool) -> None:
    start_ms, end_ms = T0, T0 + days * DAY_MS
    engine = synthetic_engine(days, partitions, [RunSpec("live configuration", DetectorConfig())])
    before = _rss_kib()
    began = time.perf_counter()
    for record in records(brands, days, rate, partitions):
        engine.feed(record)
    runs = engine.finish()
    result = ReplayResult(
        topic="mentions.scored",
        stage="scored",
        start_ms=start_ms,
        end_ms=end_ms,
        warmup_start_ms=start_ms,
        runs=runs,
        counts=engine.counts,
        partitions=partitions,
    )
    held = sum(len(points) for run in runs for points in run.buckets.values())
    if report:
        with tempfile.TemporaryDirectory() as out:
            write_report(result, Path(out))
    seconds = time.perf_counter() - began
    peak = (_rss_kib() - before) * 1024
    brand_days = brands * days
    print(
        f"replay memory: {brands} brands x {days} days ({engine.counts.read:,} mentions, "
        f"{sum(len(r.alerts) for r in runs)} alerts, {held:,} bucket points held"
        f"{', report written' if report else ''}) in {seconds:.0f} s: peak RSS "
        f"+{peak / 2**20:.1f} MiB over the start ({peak / brand_days / 1024:.1f} KiB per "
        f"brand-day)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--brands", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--rate", type=float, default=1.0, help="mean mentions/min per brand over a day"
    )
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="measure the replay alone")
    args = parser.parse_args()
    if args.brands < 1 or args.days < 1 or args.partitions < 1 or args.rate <= 0:
        parser.error("--brands, --days and --partitions must be at least 1, --rate above 0")
    measure(args.brands, args.days, args.rate, args.partitions, not args.no_report)


if __name__ == "__main__":
    main()
