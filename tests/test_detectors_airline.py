"""Replaying the real airline tweets (Feb 2015): the 22 February storms, and quiet days."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from detectors.datasets import AIRLINE_ZONE, airline_complaints, airline_tweets, parse_airline_time
from detectors.episodes import EpisodeEvent, canonical_json
from detectors.reasons import judge_drivers, page_terms
from detectors.replay import replay
from streams.eval_cli import eval_group
from tests.detector_support import DATA

AIRLINE = DATA / "sentiment" / "airline_tweets.csv"
pytestmark = pytest.mark.skipif(
    not AIRLINE.exists(), reason=f"airline tweets not found at {AIRLINE} (../shared/data is absent)"
)


def _day(ms: int) -> str:
    """The airlines' own (US Pacific) calendar day."""
    return datetime.fromtimestamp(ms / 1000, AIRLINE_ZONE).strftime("%m-%d")


def test_tweet_times_are_us_pacific() -> None:
    # The original export's form, with its offset, and the shared copy's naive local form.
    with_offset = parse_airline_time("2015-02-24 11:35:52 -0800")
    assert with_offset == datetime(2015, 2, 24, 19, 35, 52, tzinfo=UTC)
    assert parse_airline_time("2/24/2015 11:35") == datetime(2015, 2, 24, 19, 35, tzinfo=UTC)
    # An explicit offset wins over the zone given for naive times.
    assert parse_airline_time("2015-02-24 11:35:52 +0000", ZoneInfo("Europe/Oslo")) == datetime(
        2015, 2, 24, 11, 35, 52, tzinfo=UTC
    )
    assert parse_airline_time("2/24/2015 11:35", UTC) == datetime(2015, 2, 24, 11, 35, tzinfo=UTC)
    with pytest.raises(ValueError, match="tweet_created"):
        parse_airline_time("yesterday")


def test_events_match_the_live_stage_records() -> None:
    """Same instants as tests/test_detect_stage.py builds for the live path (Pacific)."""
    pacific = ZoneInfo("America/Los_Angeles")
    with AIRLINE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = {
        row["tweet_id"]: int(
            datetime.strptime(row["tweet_created"], "%m/%d/%Y %H:%M")
            .replace(tzinfo=pacific)
            .timestamp()
            * 1000
        )
        for row in rows
    }
    events = airline_tweets(AIRLINE)
    assert len(events) == len(rows)
    assert all(e.event_ms == expected[e.mention_id] for e in events)
    assert [e.event_ms for e in events] == sorted(e.event_ms for e in events)


@pytest.fixture(scope="module")
def events() -> list[EpisodeEvent]:
    return [o for o in replay(airline_tweets(AIRLINE)) if isinstance(o, EpisodeEvent)]


def test_storms_on_22_february(events: list[EpisodeEvent]) -> None:
    opened = [e.episode for e in events if e.type == "opened" and e.episode["kind"] == "storm"]
    on_22 = {ep["brand"] for ep in opened if _day(ep["start_ms"]) == "02-22"}
    assert {"American", "Delta", "US Airways"} <= on_22


def test_no_episodes_on_17_and_18_february(events: list[EpisodeEvent]) -> None:
    early = [
        (e.episode["brand"], e.episode["kind"], e.episode["start"])
        for e in events
        if e.type == "opened" and _day(e.episode["start_ms"]) in ("02-16", "02-17", "02-18")
    ]
    assert early == []


def test_american_drivers_name_the_complaints(events: list[EpisodeEvent]) -> None:
    resolved = [
        e.episode
        for e in events
        if e.type == "resolved"
        and e.episode["kind"] == "storm"
        and e.episode["brand"] == "American"
    ]
    assert resolved, "American's storm never resolved"
    drivers = resolved[0]["drivers"]
    top = [t["term"] for t in drivers["words"][:10]] + [t["term"] for t in drivers["phrases"][:10]]
    text = " | ".join(top)
    assert re.search(r"cancel", text), top
    assert re.search(r"\bhold\b", text), top
    assert re.search(r"book", text), top
    assert resolved[0]["peak_severity"] == "critical"


def test_the_22_february_storms_pages_name_what_their_complaints_were_about(
    events: list[EpisodeEvent],
) -> None:
    """Judged by the annotators' reasons (``negativereason``), with a lexicon learned from
    other days: each storm's last page names its most common reason, and together the pages
    name the reasons of most complaints (measured: US Airways 81 %, Delta 47 %, American 62 %)."""
    complaints = airline_complaints(AIRLINE)
    assert len(complaints) > 6000  # labelled negatives with a reason other than "Can't Tell"
    first_pages = {
        e.episode["episode_id"]: page_terms(e.episode) for e in events if e.type == "opened"
    }
    judged = {}
    for e in events:
        ep = e.episode
        if e.type == "resolved" and ep["kind"] == "storm" and _day(ep["start_ms"]) == "02-22":
            judgement = judge_drivers(ep, first_pages[ep["episode_id"]], complaints)
            assert judgement is not None, ep["brand"]
            judged[ep["brand"]] = judgement[1]
    assert set(judged) == {"American", "Delta", "US Airways"}
    for brand, final in judged.items():
        most_common = next(iter(final.reasons))
        assert most_common in final.named, (brand, final)
    assert sum(final.share for final in judged.values()) / len(judged) >= 0.55, judged


def test_eval_airline_judges_the_drivers_by_the_annotators_reasons() -> None:
    result = CliRunner().invoke(eval_group, ["airline", "--data", str(AIRLINE)])
    assert result.exit_code == 0, result.output
    american = result.output[result.output.index("resolved  storm American") :]
    assert re.search(r"reasons \([\d,]+ labelled complaints\): Customer Service Issue", american)
    assert re.search(r"the page's terms name \d+% of them \(.*Customer Service Issue", american)
    assert re.search(
        r"drivers against the annotators' reasons \(\d+ storm episodes\)", result.output
    )


def test_eval_airline_reads_offsets_and_shows_local_times(tmp_path: Path) -> None:
    with AIRLINE.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        rows = list(reader)[:50]
    # One row in the original export's form: 11:35:52 -0800 is 19:35:52 UTC.
    rows[0]["tweet_created"] = "2015-02-24 11:35:52 -0800"
    path = tmp_path / "airline.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    events = airline_tweets(path)
    first = next(e for e in events if e.mention_id == rows[0]["tweet_id"])
    assert first.event_ms == int(datetime(2015, 2, 24, 19, 35, 52, tzinfo=UTC).timestamp() * 1000)
    runner = CliRunner()
    result = runner.invoke(eval_group, ["airline", "--data", str(path)])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(eval_group, ["airline", "--data", str(path), "--timezone", "Mars/Base"])
    assert bad.exit_code != 0
    assert "--timezone" in bad.output


def test_replay_is_byte_identical() -> None:
    events = airline_tweets(AIRLINE)[:6000]
    first = "\n".join(
        canonical_json(o.to_dict()) for o in replay(events) if isinstance(o, EpisodeEvent)
    )
    second = "\n".join(
        canonical_json(o.to_dict()) for o in replay(events) if isinstance(o, EpisodeEvent)
    )
    assert first.encode() == second.encode()
