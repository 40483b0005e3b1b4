"""A range or warm-up reaching past the topic's history: the report says the stretch without
records is missing history, not a quiet time (no Kafka)."""

from __future__ import annotations

from pathlib import Path

from streams.brands import BrandsFile
from streams.replay.command import summary_lines
from streams.replay.escape import h, md
from streams.replay.report import write_report
from streams.replay.result import ReplayResult
from tests.test_replay_engine import HOUR, T0, brands, engine, raw_mentions, run

__all__ = ["brands"]  # the module-scoped fixture, shared with the engine tests


def replay(
    brands: BrandsFile,
    start_ms: int,
    end_ms: int,
    warmup_ms: int,
    *,
    from_first_record: bool = True,
    until_ms: int = T0 + 20 * HOUR,
) -> ReplayResult:
    """The engine over the scenario's mentions up to ``until_ms`` (its first record is at T0),
    read, as the plan said, from the topic's first record or not."""
    records = [r for r in raw_mentions() if r[0] < until_ms]
    eng = engine(brands, start_ms=start_ms, end_ms=end_ms, warmup_ms=warmup_ms)
    run(eng, records)
    return ReplayResult(
        topic="mentions",
        stage="mentions",
        start_ms=start_ms,
        end_ms=end_ms,
        warmup_start_ms=start_ms - warmup_ms,
        runs=eng.results,
        counts=eng.counts,
        from_first_record=from_first_record,
    )


def notes(result: ReplayResult, out: Path) -> tuple[list[str], str, str]:
    """The command's summary lines that are notes, the Markdown and the HTML."""
    paths = write_report(result, out)
    lines = [line for line in summary_lines(result, paths, 1.0) if line.startswith("Note:")]
    return lines, paths.markdown.read_text("utf-8"), paths.html.read_text("utf-8")


def test_a_range_reaching_past_both_ends_of_the_data_says_so(
    brands: BrandsFile, tmp_path: Path
) -> None:
    result = replay(brands, T0 - 6 * HOUR, T0 + 3 * 24 * HOUR, 0)
    lines, markdown, page = notes(result, tmp_path)
    first, last = lines
    assert "oldest record is dated 2026-03-02 00:00 UTC, 6 h 00 min after --from" in first
    assert "newest record is dated 2026-03-02 19:" in last
    assert "before --to (2026-03-05 00:00 UTC): the charts end there" in last
    for line in lines:
        assert f"**{md(line)}**" in markdown
        assert f'<p class="warning">{h(line)}</p>' in page


def test_a_warm_up_longer_than_the_history_says_how_much_there_was(
    brands: BrandsFile, tmp_path: Path
) -> None:
    result = replay(brands, T0 + 2 * HOUR, T0 + 19 * HOUR, 12 * HOUR)
    (line,) = notes(result, tmp_path)[0]
    assert "oldest record is dated 2026-03-02 00:00 UTC, 10 h 00 min after the warm-up" in line
    assert "learnt from 2 h 00 min of history, not 12 h 00 min" in line


def test_an_empty_warm_up_is_named(brands: BrandsFile, tmp_path: Path) -> None:
    result = replay(brands, T0 - 3 * HOUR, T0 + 19 * HOUR, 24 * HOUR)
    (line,) = notes(result, tmp_path)[0]
    assert "3 h 00 min after --from" in line
    assert "the warm-up held no record, so the detectors began cold" in line


def test_a_range_the_data_covers_has_no_note(brands: BrandsFile, tmp_path: Path) -> None:
    result = replay(brands, T0 + 2 * HOUR, T0 + 19 * HOUR, 2 * HOUR)
    lines, markdown, page = notes(result, tmp_path)
    assert lines == []
    assert "Note: the topic" not in markdown and "Note: the topic" not in page


def test_no_start_note_when_the_topic_holds_older_records(
    brands: BrandsFile, tmp_path: Path
) -> None:
    """Older records than those read (a partition not read from its first offset): the empty
    stretch before the first record read is a quiet time, not missing history."""
    result = replay(brands, T0 - 6 * HOUR, T0 + 19 * HOUR, 12 * HOUR, from_first_record=False)
    assert notes(result, tmp_path)[0] == []


def test_no_end_note_when_a_record_past_the_range_was_read(
    brands: BrandsFile, tmp_path: Path
) -> None:
    """Records read past --to (the plan reads on past the end) show the topic goes on: a quiet
    last hours of the range are quiet, not missing."""
    result = replay(brands, T0, T0 + 10 * HOUR, 0, until_ms=T0 + 30 * HOUR)
    quiet = replay(brands, T0, T0 + 10 * HOUR, 0, until_ms=T0 + 8 * HOUR)
    assert notes(result, tmp_path / "a")[0] == []
    (line,) = notes(quiet, tmp_path / "b")[0]
    assert "before --to" in line
