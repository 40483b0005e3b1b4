"""The demo's post-mortem asks replay for a warm-up the story's topic holds.

It used to ask for replay's default week while the topic begins a day before the storm, so the
report the demo hands a new user opened with a note that the detectors learnt from less history
than asked and "may alert less than live did": a caveat about nothing but the demo's request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from streams import demo
from streams.demo_scenario import generate
from streams.replay import command
from streams.replay.report_wording import COVERAGE_GAP_MS
from streams.replay.times import parse_duration
from streams.settings import Settings


@pytest.mark.parametrize("end", ["2026-11-25T15:30:17+00:00", "2026-12-06T13:04:59+00:00"])
def test_the_report_warm_up_is_the_story_history(
    end: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[command.CommandOptions] = []

    def run_command(_settings: Settings, options: command.CommandOptions) -> Iterator[str]:
        asked.append(options)
        yield "Report: written"

    monkeypatch.setattr(command, "run_command", run_command)
    scenario = generate(int(datetime.fromisoformat(end).timestamp() * 1000))
    console = Console(record=True, width=200)

    demo._write_report(console, Settings(), scenario, tmp_path / "report")

    (options,) = asked
    start_ms = int(datetime.fromisoformat(options.start).timestamp() * 1000)
    warmup_from = start_ms - parse_duration(options.warmup)
    first_post = min(demo._event_ms(m) for m in scenario.all)
    # Not after the first post (the detectors learn the whole calm day), and not so long before
    # it that the report notes missing history.
    assert 0 <= first_post - warmup_from < COVERAGE_GAP_MS, (options.warmup, options.start)
    assert start_ms <= scenario.storm_start_ms - 3 * 3_600_000
    assert f"--warmup {options.warmup}" in console.export_text()


def test_replay_accepts_the_demo_warm_up() -> None:
    options = command.CommandOptions(
        start="2026-12-06T00:00+00:00", end="2026-12-06T13:00+00:00", warmup="1261m"
    )
    assert command.replay_options(options).warmup_ms == 1261 * 60_000


def test_the_printed_replay_command_replays_the_demo_topics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo printed `stormvarsel replay --from .. --to .. --warmup ..`: run later, it read the
    default topics, not the run's `demo-<run>.` ones, and found nothing."""
    import shlex

    from click.testing import CliRunner

    from streams.cli import main

    asked: list[tuple[Settings, command.CommandOptions]] = []

    def run_command(settings: Settings, options: command.CommandOptions) -> Iterator[str]:
        asked.append((settings, options))
        yield "Report: written"

    monkeypatch.setattr(command, "run_command", run_command)
    brands = tmp_path / "brands.yaml"
    brands.write_text(demo.REPO_BRANDS.read_text(encoding="utf-8"), encoding="utf-8")
    local = Settings(
        kafka_bootstrap_servers="127.0.0.1:19092",
        topic_prefix="demo-20261206-130301.",
        brands_file=brands,
    )
    scenario = generate(int(datetime.fromisoformat("2026-12-06T13:04:59+00:00").timestamp() * 1000))
    console = Console(record=True, width=80)
    demo._write_report(console, local, scenario, tmp_path / "report")
    printed = console.export_text()
    [line] = [ln.strip() for ln in printed.splitlines() if "stormvarsel replay" in ln]
    words = shlex.split(line)
    split = words.index("stormvarsel")
    for assignment in words[:split]:
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, words[split + 1 :])
    assert result.exit_code == 0, result.output
    (_, by_demo), (again, by_hand) = asked
    assert again.topic("mentions") == "demo-20261206-130301.mentions"
    assert again.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert again.brands_file == brands.resolve()
    assert (by_hand.start, by_hand.end, by_hand.warmup) == (
        by_demo.start,
        by_demo.end,
        by_demo.warmup,
    )
    assert by_hand.out == (tmp_path / "report").resolve()
