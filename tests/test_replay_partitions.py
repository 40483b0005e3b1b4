"""The detector groups of a replay that re-scores: the partitions of the live mentions.scored,
or, when that topic is not found, STORMVARSEL_TOPIC_PARTITIONS, said as such (no Kafka: the
topic lookups are stubbed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detectors.config import DetectorConfig
from streams.replay import run as replay_run
from streams.replay.command import summary_lines
from streams.replay.report import write_report
from streams.replay.result import ReplayResult, RunResult
from streams.replay.run import Prepared, ReplayOptions, prepare
from streams.replay.source import Plan, Span
from streams.settings import load_settings

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


class _Client:
    def close(self, autocommit: bool = True) -> None:
        pass


def _prepare(monkeypatch: pytest.MonkeyPatch, scored_partitions: list[int] | None) -> Prepared:
    monkeypatch.setattr(replay_run, "consumer", lambda *_: _Client())
    monkeypatch.setattr(
        replay_run, "plan_range", lambda _c, topic, *_: Plan(topic, [Span(0, 0, 10)])
    )
    monkeypatch.setattr(replay_run, "partitions_of", lambda *_: scored_partitions)
    settings = load_settings(topic_prefix="p.", topic_partitions=4)
    options = ReplayOptions(T0, T0 + HOUR, topic="p.mentions", warmup_ms=0)
    return prepare(settings, options)


def _result(prepared: Prepared) -> ReplayResult:
    return ReplayResult(
        topic=prepared.topic,
        stage=prepared.stage,
        start_ms=T0,
        end_ms=T0 + HOUR,
        warmup_start_ms=T0,
        runs=[RunResult("live configuration", DetectorConfig())],
        partitions=prepared.partitions,
        partitions_topic=prepared.partitions_topic,
        partitions_fallback=prepared.partitions_fallback,
    )


def test_a_missing_mentions_scored_is_named_as_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before, the layout fell back to STORMVARSEL_TOPIC_PARTITIONS silently and the report said
    "4 (partitions of mentions.scored, as live)"."""
    with capture_logs() as logs:
        prepared = _prepare(monkeypatch, None)
    assert prepared.partitions == 4
    warned = [e for e in logs if e["event"] == "replay.partitions_fallback"]
    assert warned and warned[0]["log_level"] == "warning"
    assert warned[0]["topic"] == "p.mentions.scored"

    paths = write_report(_result(prepared), tmp_path)
    said = "4 (STORMVARSEL_TOPIC_PARTITIONS; p.mentions.scored not found)"
    page = paths.html.read_text(encoding="utf-8")
    summary = paths.markdown.read_text(encoding="utf-8")
    assert said in page and "as live" not in page
    assert "p.mentions.scored was not found" in page
    assert "p.mentions.scored was not found" in summary.replace("\\", "")
    lines = summary_lines(_result(prepared), paths, 1.0)
    assert any("p.mentions.scored was not found" in line for line in lines)


def test_the_live_layout_is_named_when_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        prepared = _prepare(monkeypatch, [0, 1, 2])
    assert prepared.partitions == 3
    assert not [e for e in logs if e["event"] == "replay.partitions_fallback"]
    paths = write_report(_result(prepared), tmp_path)
    page = paths.html.read_text(encoding="utf-8")
    assert "3 (partitions of p.mentions.scored, as live)" in page
    assert "not found" not in page


def test_a_scored_replay_names_its_own_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*_args: Any) -> None:
        raise AssertionError("a scored replay uses its own topic's partitions")

    monkeypatch.setattr(replay_run, "consumer", lambda *_: _Client())
    monkeypatch.setattr(
        replay_run, "plan_range", lambda _c, topic, *_: Plan(topic, [Span(0, 0, 5), Span(1, 0, 5)])
    )
    monkeypatch.setattr(replay_run, "partitions_of", no_lookup)
    settings = load_settings(topic_prefix="p.")
    prepared = prepare(settings, ReplayOptions(T0, T0 + HOUR, topic="p.mentions.scored"))
    assert (prepared.partitions, prepared.partitions_topic) == (2, "p.mentions.scored")
    assert not prepared.partitions_fallback
