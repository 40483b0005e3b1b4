"""What a long replay keeps for its report: a bounded number of chart points per brand, charted
exactly as every bucket would be (no Kafka; benchmarks/replay_memory.py measures the memory)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.detector_bench import T0
from benchmarks.replay_memory import DAY_MS, records, synthetic_engine
from detectors.config import DetectorConfig
from detectors.episodes import BucketSummary, Output
from streams.replay.charts import bins_for, brand_charts, choose_bin_ms, merge_cell_ms
from streams.replay.engine import POINTS_PER_BRAND, RunSpec
from streams.replay.report_wording import counts_rows
from streams.replay.result import BucketPoint, ReplayResult, RunResult
from streams.replay.times import MINUTE_MS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "replay_memory.py"
PARTITIONS = 2


def replay(days: int, runs: list[RunSpec]) -> tuple[ReplayResult, ReplayResult]:
    """Two brands (brand00 storms mid-range) replayed from mentions.scored: the engine's result,
    and the same result holding every reported bucket as the detectors closed it."""
    every: list[dict[str, list[BucketPoint]]] = [{} for _ in runs]

    def keep(index: int, output: Output, _alert: object) -> None:
        if isinstance(output, BucketSummary):
            every[index].setdefault(output.brand, []).append(BucketPoint.from_summary(output))

    end = T0 + days * DAY_MS
    engine = synthetic_engine(days, PARTITIONS, runs, on_output=keep)
    for record in records(2, days, 0.3, PARTITIONS):
        engine.feed(record)
    got = engine.finish()

    def result(run_results: list[RunResult]) -> ReplayResult:
        return ReplayResult(
            topic="mentions.scored",
            stage="scored",
            start_ms=T0,
            end_ms=end,
            warmup_start_ms=T0,
            runs=run_results,
            counts=engine.counts,
            partitions=PARTITIONS,
        )

    full = [replace(r, buckets=b) for r, b in zip(got, every, strict=True)]
    return result(got), result(full)


@pytest.fixture(scope="module")
def twelve_days() -> tuple[ReplayResult, ReplayResult]:
    return replay(
        12,
        [
            RunSpec("live configuration", DetectorConfig()),
            RunSpec("candidate", DetectorConfig(bucket_minutes=5.0)),
        ],
    )


def test_a_long_replay_holds_a_bounded_number_of_points_per_brand(
    twelve_days: tuple[ReplayResult, ReplayResult],
) -> None:
    """Twelve days are 17,280 one-minute buckets per brand; the old engine held every one for
    the whole run (about 250 bytes each: 210 MB for 20 brands over 30 days)."""
    merged, full = twelve_days
    assert len(full.runs[0].buckets["brand00"]) > 12 * 1440 - 10  # not the last, still open
    for run in merged.runs:
        assert set(run.buckets) == {"brand00", "brand01"}
        for points in run.buckets.values():
            assert len(points) <= POINTS_PER_BRAND
    for run, every in zip(merged.runs, full.runs, strict=True):
        for brand, points in run.buckets.items():
            assert sum(p.buckets for p in points) == len(every.buckets[brand])


def test_a_long_replay_charts_exactly_what_every_bucket_gives(
    twelve_days: tuple[ReplayResult, ReplayResult],
) -> None:
    merged, full = twelve_days
    assert full.runs[0].alerts, "the storm should alert, so the levels have something to show"
    bins = bins_for(full)
    assert bins_for(merged) == bins
    assert bins.bin_ms == 60 * MINUTE_MS  # the engine cannot know that until the last days
    for brand in ("brand00", "brand01"):
        assert brand_charts(merged, brand, bins) == brand_charts(full, brand, bins)
    assert counts_rows_text(merged) == counts_rows_text(full)


def counts_rows_text(result: ReplayResult) -> str:
    return repr(counts_rows(result))


def test_a_short_replay_keeps_every_bucket() -> None:
    merged, full = replay(2, [RunSpec("live configuration", DetectorConfig())])
    assert merged.runs[0].buckets == full.runs[0].buckets


@pytest.mark.parametrize("unit_min", [1, 5, 7, 60])
def test_every_bin_a_span_can_get_is_a_whole_number_of_the_merge_cell(unit_min: int) -> None:
    unit = unit_min * MINUTE_MS
    high = 40 * DAY_MS
    for low in (1, 7 * 60 * MINUTE_MS, DAY_MS, 5 * DAY_MS, 20 * DAY_MS, high):
        cell = merge_cell_ms(low, high, unit)
        assert cell % unit == 0
        span = low
        while span <= high:
            for s in (span, span + 1):  # just past every threshold of choose_bin_ms too
                assert choose_bin_ms(min(s, high), unit) % cell == 0, (low, s)
            span += 60 * MINUTE_MS if span < DAY_MS else 7 * MINUTE_MS * 480


def test_the_benchmark_prints_peak_memory_for_a_span_and_brands() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--brands", "2", "--days", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(
        r"replay memory: 2 brands x 1 days \([\d,]+ mentions, \d+ alerts, [\d,]+ bucket points "
        r"held, report written\) in \d+ s: peak RSS \+[\d.]+ MiB over the start "
        r"\([\d.]+ KiB per brand-day\)\n",
        run.stdout,
    ), run.stdout
