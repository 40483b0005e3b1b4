"""An ``--input`` stage the topic's records are not: a bad option, said as such (no Kafka: the
planned records are handed to the replay directly)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detectors.config import DetectorConfig
from streams.errors import ConfigError
from streams.replay import run as replay_run
from streams.replay.engine import RunSpec, SourceRecord
from streams.replay.result import Stage
from streams.replay.run import LIVE_LABEL, Prepared, ReplayOptions, run_prepared
from streams.replay.source import NoMentions, Plan, Span
from streams.settings import load_settings

MINUTE = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE)


def raw(n: int) -> dict[str, Any]:
    """A mention as collectors send it to ``mentions`` (no brand list, no sentiment)."""
    return {
        "id": f"m{n}",
        "text": "Acme lost my bag again",
        "created_at": "2023-11-14T22:00:00Z",
        "platform": "x",
        "author": {"id": f"u{n}", "followers": 10},
    }


def scored(n: int, brand: str) -> dict[str, Any]:
    return {
        "id": f"s{n}",
        "text": "an ordinary day",
        "created_at_ms": T0 + n * MINUTE,
        "brand": brand,
        "platform": "x",
        "lang": "en",
        "author": {"id": f"u{n}", "followers": 10},
        "sentiment": {"label": "neutral"},
    }


def replay(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    values: list[dict[str, Any]],
    stage: Stage,
    *,
    auto: bool = False,
    brands: tuple[str, ...] = (),
) -> None:
    brands_file = tmp_path / "brands.yaml"
    brands_file.write_text(
        "brands:\n"
        "  - {name: Acme, id: acme, oncall: {team: comms}}\n"
        "  - {name: Bolt, id: bolt, oncall: {team: comms}}\n",
        encoding="utf-8",
    )
    records = [
        SourceRecord(0, n, T0 + n * MINUTE, b"acme", json.dumps(v).encode())
        for n, v in enumerate(values)
    ]

    def read_plan(*_args: Any) -> Iterator[SourceRecord]:
        yield from records

    monkeypatch.setattr(replay_run, "read_plan", read_plan)
    topic = f"p.mentions.{stage}" if auto else "p.mentions"
    options = ReplayOptions(
        T0, T0 + 60 * MINUTE, topic=topic, stage=None if auto else stage, warmup_ms=0
    )
    prepared = Prepared(
        settings=load_settings(brands_file=brands_file),
        options=options,
        topic=topic,
        stage=stage,
        plan=Plan(topic, [Span(0, 0, len(records))]),
        partitions=1,
        brands=brands,
        runs=[RunSpec(LIVE_LABEL, DetectorConfig())],
    )
    run_prepared(prepared)


def test_scored_input_on_raw_mentions_is_a_bad_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before, every record was unreadable and the error blamed the brands: "no mentions of any
    configured brand … (12 records in the range: 0 name no configured brand, 0 dead-lettered)",
    with exit status 1 and no word of the unreadable records."""
    with pytest.raises(ConfigError) as caught:  # exit status 2, like any bad option
        replay(monkeypatch, tmp_path, [raw(n) for n in range(12)], "scored")
    message = str(caught.value)
    assert message.startswith("--input scored: none of the 12 records of topic 'p.mentions'")
    assert "scored mentions" in message and "--input auto" in message
    assert "--input mentions" in message and "brand" not in message


def test_an_input_stage_taken_from_the_name_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"^--input auto \(read from the topic's name as valid"):
        replay(monkeypatch, tmp_path, [{"no": "brand"}] * 3, "valid", auto=True)


def test_some_unreadable_records_are_counted_in_the_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = [raw(0), raw(1), scored(2, "acme"), scored(3, "acme")]
    with pytest.raises(NoMentions) as caught:
        replay(monkeypatch, tmp_path, values, "scored", brands=("bolt",))
    assert not isinstance(caught.value, ConfigError)
    message = str(caught.value)
    assert "no mentions of bolt" in message
    assert "2 unreadable as scored mentions" in message
    assert "2 records could not be read as scored mentions: check --input scored" in message
