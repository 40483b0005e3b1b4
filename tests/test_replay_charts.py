"""Chart bins and time axis labels of the post-mortem report (pure, no Kafka)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from detectors.config import DetectorConfig
from streams.replay.charts import MAX_TICKS, bins_for, choose_bin_ms, time_ticks
from streams.replay.report import write_report
from streams.replay.result import BucketPoint, ReplayResult, RunResult
from streams.replay.times import MINUTE_MS, parse_iso_ms

T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


def buckets(first_min: int, last_min: int, size_min: int, levels: dict[int, int]) -> list:
    """Buckets of ``size_min`` minutes on the epoch grid (as the detectors make them) from the
    first at or after ``first_min`` (minutes after T0); ``levels``: storm level by the minute
    (after T0) a bucket starts in."""
    size = size_min * MINUTE_MS
    start = -(-(T0 + first_min * MINUTE_MS) // size) * size
    return [
        BucketPoint(
            start_ms=at,
            end_ms=at + size,
            volume=size_min,
            negative=1,
            expected_volume=float(size_min),
            negative_share_baseline=0.2,
            storm_level=levels.get((at - T0) // MINUTE_MS, 0),
            buzz_level=0,
        )
        for at in range(start, T0 + last_min * MINUTE_MS - size + 1, size)
    ]


def two_runs(from_min: int, minutes: int, candidate_min: int) -> ReplayResult:
    """A live run of 1-minute buckets and a candidate of ``candidate_min`` buckets whose storm
    level rises in its first bucket starting at or after minute 10."""
    live = buckets(from_min, from_min + minutes, 1, {})
    first = buckets(10, 10 + 2 * candidate_min, candidate_min, {})
    at = (first[0].start_ms - T0) // MINUTE_MS if first else 10
    rise = {at: 1, at + candidate_min: 2, at + 2 * candidate_min: 3}
    candidate = buckets(from_min, from_min + minutes, candidate_min, rise)
    return ReplayResult(
        topic="mentions.scored",
        stage="scored",
        start_ms=T0 + from_min * MINUTE_MS,
        end_ms=T0 + (from_min + minutes) * MINUTE_MS,
        warmup_start_ms=T0,
        runs=[
            RunResult("live configuration", DetectorConfig(), buckets={"acme": live}),
            RunResult(
                "candidate",
                DetectorConfig.from_dict({"bucket_minutes": candidate_min}),
                buckets={"acme": candidate},
            ),
        ],
        brand_names={"acme": "Acme"},
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("from_min", "candidate_min"), [(7, 5), (3, 5), (0, 5), (7, 7)])
def test_a_bin_covers_the_buckets_it_shows(
    tmp_path: Path, from_min: int, candidate_min: int
) -> None:
    """Before, bins started at --from: with --from at 00:07 and 5-minute candidate buckets,
    the bin 00:07-00:12 showed the bucket 00:10-00:15, so the candidate's storm level rose in
    the chart and storm_level.csv from 00:07, before its bucket began."""
    result = two_runs(from_min, 120, candidate_min)
    write_report(result, tmp_path)
    rows = _rows(tmp_path / "storm_level.csv")
    spans = [(parse_iso_ms(r["bin_start"]), parse_iso_ms(r["bin_end"])) for r in rows]
    assert spans[0][0] == result.start_ms  # the first bin begins at --from
    assert all(a < b for a, b in spans)
    assert all(b == c for (_, b), (c, _) in pairwise(spans))
    for run, key in zip(result.runs, ("storm_level", "storm_level_candidate"), strict=True):
        points = run.buckets["acme"]
        for (start, end), row in zip(spans, rows, strict=True):
            shown = [p for p in points if start <= p.start_ms < end]
            assert all(p.end_ms <= end for p in shown), (key, row)
            want = str(max(p.storm_level for p in shown)) if shown else ""
            assert row[key] == want, (key, row)
    # The candidate's level is up only from its own bucket on, never before it began.
    raised = [s for (s, _), r in zip(spans, rows, strict=True) if r["storm_level_candidate"] > "0"]
    first_raised = min(p.start_ms for p in result.runs[1].buckets["acme"] if p.storm_level)
    assert raised and min(raised) >= first_raised
    # The volume CSV still adds up to the buckets, run by run.
    volume = _rows(tmp_path / "volume.csv")
    assert sum(int(r["volume"] or 0) for r in volume) == sum(
        p.volume for p in result.runs[0].buckets["acme"]
    )


def test_bins_are_whole_buckets_of_every_run() -> None:
    assert choose_bin_ms(120 * MINUTE_MS, 7 * MINUTE_MS) == 7 * MINUTE_MS
    assert choose_bin_ms(9 * 1440 * MINUTE_MS, 7 * MINUTE_MS) % (7 * MINUTE_MS) == 0
    assert choose_bin_ms(9 * 1440 * MINUTE_MS, MINUTE_MS) == 30 * MINUTE_MS
    bins = bins_for(two_runs(7, 120, 5))
    assert bins.bin_ms % (5 * MINUTE_MS) == 0 and bins.grid_ms % bins.bin_ms == 0


# --- time axis labels --------------------------------------------------------------------------


def _ms(year: int, month: int, day: int, hour: int = 0, zone: Any = UTC) -> int:
    return int(datetime(year, month, day, hour, tzinfo=zone).timestamp() * 1000)


SPANS_H = [1, 3, 9, 20, 30, 50, 100, 9 * 24, 20 * 24, 60 * 24, 200 * 24, 366 * 24, 3 * 8760]


@pytest.mark.parametrize("zone", [UTC, ZoneInfo("Europe/Oslo"), ZoneInfo("America/Los_Angeles")])
@pytest.mark.parametrize("hours", SPANS_H)
def test_time_labels_stay_few_and_inside_the_range(zone: Any, hours: int) -> None:
    """Before, past 8 x 168 hours the fallback step (336 h) gave 27 overlapping labels for a
    year."""
    start = _ms(2025, 3, 17, 13, zone=zone)
    end = start + hours * 3_600_000
    ticks = time_ticks(start, end, zone)
    assert 1 <= len(ticks) <= MAX_TICKS, (hours, ticks)
    times = [at for at, _ in ticks]
    assert times == sorted(set(times)) and all(start <= at < end for at in times)


def test_a_year_is_labelled_by_quarters() -> None:
    ticks = time_ticks(_ms(2025, 1, 1), _ms(2026, 1, 1), UTC)
    assert [label for _, label in ticks] == ["2025-01", "2025-04", "2025-07", "2025-10"]


@pytest.mark.parametrize(
    ("start", "end"),
    [((2025, 12, 30), (2026, 1, 2)), ((2025, 12, 20), (2026, 1, 20)), ((2025, 3, 1), (2026, 3, 1))],
)
def test_dates_carry_the_year_when_the_range_crosses_one(
    start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    """Before, "%m-%d" labels read 12-29, 01-05 across New Year: which year, and which came
    first, was left to guess."""
    ticks = time_ticks(_ms(*start), _ms(*end), UTC)
    dates = [label for _, label in ticks if ":" not in label]
    assert dates and all(re.fullmatch(r"20\d\d(-\d\d){1,2}", d) for d in dates), dates
    assert any(d.startswith("2026") for d in dates)
    for at, label in ticks:
        if ":" not in label:
            assert datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d").startswith(label)


def test_dates_within_one_year_stay_short() -> None:
    ticks = time_ticks(_ms(2015, 2, 16), _ms(2015, 2, 25), UTC)
    assert ticks and all(re.fullmatch(r"\d\d-\d\d", label) for _, label in ticks)
