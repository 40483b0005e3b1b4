"""Hostile input: floods of unknown brands and authors stay in bounded memory, and crafted texts
(control characters, bidi overrides, markup, group mentions, oversized and deeply nested JSON)
never reach alert annotations or holding statements as they were written.

The in-process tests run every mention through the same functions the worker's stages call, in
the same order (validate, route, de-duplicate, score, detect, build the alert, render it for
Alertmanager), so the sizes of the structures they keep can be read exactly. The flood through a
real worker on the real Kafka is in ``test_hostile_flood.py``.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.alerting import build_alert
from detectors.alerting.issue_naming import GENERIC_ISSUE
from detectors.buckets import MAX_AUTHORS_PER_BUCKET
from detectors.config import DetectorConfig
from detectors.episodes import EpisodeEvent, canonical_json
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents.score import BatchScorer
from streams.agents.validate import Passed, Skipped, check_mention, valid_value
from streams.alertmanager import Links, am_alerts, am_annotations
from streams.brand_matching import BrandMatcher
from streams.brands import load_brands
from streams.dedup import Deduplicator
from streams.http_ingest import check_batch
from streams.mention import MAX_DEPTH, Limits, Rejection, validate_record
from streams.sentiment.lexicon import LexiconScorer
from tests.conftest import REPO
from tests.storm_scenario import BRAND, COMPLAINTS, phases

BRANDS = load_brands(REPO / "deploy" / "brands.yaml")
VOICES = BRANDS.voices()
LINKS = Links(runbook_url="https://runbooks.example/brandstorm", grafana_url="https://g.example")
HOUR_MS = 3_600_000
T0_MS = 1_795_500_000_000  # 2026-11-24T04:00Z

#: Texts written to break a notification: each marker must never reach an annotation as is.
HOSTILE_MARKERS = {
    "bidi override": "\u202e",
    "bidi isolate": "\u2066",
    "zero-width space": "\u200b",
    "escape sequence": "\x1b[31m",
    "bell": "\x07",
    "null": "\x00",
    "slack broadcast": "<!channel>",
    "slack link": "<https://evil.example|click here>",
    "html": "<script>alert(1)</script>",
    "markdown link": "[refund form](https://evil.example)",
    "code fence": "```",
    "group mention": "@everyone",
    "here mention": "@here",
    "line separator": "\u2028",
}
HOSTILE_TEXT = (
    "Nordlys Energi \u202eSTOP\u202c <!channel> @here forsinket refusjon \x1b[31mred\x1b[0m "
    "[refund form](https://evil.example) <script>alert(1)</script> ```rm -rf``` @everyone "
    "\u2066isolated\u2069 zero\u200bwidth \x00\x07 line\u2028break "
    "<https://evil.example|click here>"
)


def annotation_problems(annotations: dict[str, str]) -> list[str]:
    """Everything in the annotations that must not be there, as readable findings."""
    problems = []
    for key, value in annotations.items():
        for name, marker in HOSTILE_MARKERS.items():
            if marker in value:
                problems.append(f"{key}: {name} {marker!r}")
        for ch in set(value):
            category = unicodedata.category(ch)
            if category.startswith("C") and ch != "\n":
                problems.append(f"{key}: character U+{ord(ch):04X} ({category})")
        if key not in {"runbook_url", "dashboard_url"}:
            problems += [f"{key}: markup {ch!r}" for ch in "<>`" if ch in value]
        problems += [
            f"{key}: line of {len(line)}" for line in value.split("\n") if len(line) > 2100
        ]
    return problems


# --- the worker's stages, in process ---


@dataclass
class InProcessPipeline:
    """validate -> route -> unmatched? -> dedup -> score -> detect -> alert, as the agents do."""

    limits: Limits = field(default_factory=lambda: Limits(max_bytes=65536))
    window_ms: int = 24 * HOUR_MS
    matcher: BrandMatcher = field(default_factory=lambda: BrandMatcher.from_file(BRANDS))
    outcomes: dict[str, int] = field(default_factory=dict)
    dedup_store: dict[str, list[int]] = field(default_factory=dict)
    replayer: Replayer = field(default_factory=lambda: Replayer(DetectorConfig(), 60_000))
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dedup = Deduplicator(self.dedup_store, self.window_ms)
        self.scorer = BatchScorer(LexiconScorer)
        self.offset = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def feed(self, raws: Iterable[bytes], now_ms: int) -> None:
        from datetime import UTC, datetime

        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        valid: list[bytes] = []
        for raw in raws:
            self.offset += 1
            # The validate agent's own decision (validation, routing, per-brand de-duplication).
            outcome = check_mention(
                raw,
                0,
                self.offset,
                limits=self.limits,
                matcher=self.matcher,
                dedup=self.dedup,
                generation=0,
                now=now,
            )
            if isinstance(outcome, Rejection):
                self.count(f"rejected:{outcome.reason}")
                continue
            if outcome is Skipped.UNMATCHED:
                self.count("unmatched")
                continue
            if outcome is Skipped.DUPLICATE:
                self.count("duplicate")
                continue
            assert isinstance(outcome, Passed)
            for _brand, record in outcome.records:
                valid.append(valid_value(record))
                self.count("accepted")
        for scored in self.scorer.run(valid):
            assert not isinstance(scored, Rejection), scored
            _payload, record = scored
            for output in self.replayer.feed(MentionEvent.from_record(record)):
                if isinstance(output, EpisodeEvent):
                    voice = VOICES[str(output.episode["brand"])]
                    self.alerts.append(build_alert(output.to_dict(), voice))


def flood(count: int, seed: int, start_ms: int, span_ms: int, distinct: bool = True) -> list[bytes]:
    """Mentions of thousands of distinct unknown brands and authors, plus hostile texts.

    A quarter name an unknown brand in ``brand``, a quarter name none in the text (with new
    handles and hashtags), a quarter are about a configured brand from a new author with new
    words, and a quarter are about it with hostile text, deep nesting or a huge size (1 in 100
    over the size limit). ``distinct=False`` gives the same traffic with names, authors and words
    drawn from 50 each: the yardstick for what distinctness alone costs.
    """
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = seed * 1_000_000 + i
        name = n if distinct else i % 50
        base: dict[str, Any] = {
            "id": f"f{n}",
            "created_at": start_ms + (i * span_ms) // count,
            "platform": rng.choice(["x", "reddit", "instagram", "forum"]),
            "author": {
                "id": f"author-{name}",
                "handle": f"@user{name}",
                "followers": rng.randrange(9),
            },
            "lang": rng.choice(["nb", "en", "sv"]),
        }
        kind = i % 4
        if kind == 0:
            base |= {"brand": f"Unknown Brand {name}", "text": f"love brand{name} #tag{name}"}
        elif kind == 1:
            base |= {"text": f"@someone{name} #hashtag{name} word{name} other{name} no brands"}
        elif kind == 2:
            words = " ".join(f"w{name}x{k}" for k in range(5))
            base |= {"text": f"Nordlys Energi {words} #nytt{name} @new{name}"}
        elif i % 100 == 99:
            base |= {"text": "Nordlys Energi " + "x" * 70_000}  # over the 64 KiB limit
        elif i % 100 == 51:
            base |= {"text": "Nordlys Energi " + "lang tekst " * 1_800}  # 20 kB, accepted
        elif i % 12 == 3:
            base |= {"text": HOSTILE_TEXT}
        elif i % 12 == 7:
            nested: Any = "deep"
            for _ in range(MAX_DEPTH - 2):
                nested = {"x": nested}
            base |= {"text": f"Nordlys Energi nested {name}", "extra": nested}
        else:
            base |= {"text": f"Nordlys Energi klage{name} faktura{name} #sint{name}"}
        out.append(json.dumps(base, ensure_ascii=False).encode())
    return out


def detector_state_bytes(replayer: Replayer) -> int:
    return sum(len(canonical_json(d.to_state())) for d in replayer.detectors.values())


def test_a_flood_of_unknown_brands_and_authors_keeps_memory_bounded() -> None:
    """20,000 mentions with distinct names: what the stages keep after the second 10,000 is no
    larger than after the first (bounded counters, samples, author sets and dedup window)."""
    pipeline = InProcessPipeline(window_ms=6 * HOUR_MS)
    sizes = []
    for half in range(2):
        # Each half spread over 12 hours of event time, longer than the 6 h dedup window here;
        # 500 at a time like the scoring stage's micro-batches.
        start = T0_MS + half * 12 * HOUR_MS
        raws = flood(10_000, half + 1, start, 12 * HOUR_MS)
        for chunk in range(0, len(raws), 500):
            pipeline.feed(raws[chunk : chunk + 500], now_ms=start + 13 * HOUR_MS)
        detectors = pipeline.replayer.detectors
        sizes.append(
            {
                "dedup": len(pipeline.dedup_store),
                "dedup_index": len(pipeline.dedup),
                "detectors": sorted(detectors),
                "state_bytes": detector_state_bytes(pipeline.replayer),
                "open_authors": max(
                    (len(b.authors) for d in detectors.values() for b in d.open.values()),
                    default=0,
                ),
            }
        )
    outcomes = pipeline.outcomes
    assert outcomes["rejected:unknown_brand"] == 5_000
    assert outcomes["rejected:too_large"] == 200
    assert outcomes["unmatched"] == 5_000
    assert outcomes["accepted"] == 9_800
    first, second = sizes
    # Only configured brands get a detector, whatever brand names arrive.
    assert second["detectors"] == ["nordlys-energi"]
    # Dedup remembers only ids of mentions about configured brands, one window's worth:
    # 10,000 mentions per 12 h, half of them about the brand, a 6 h window -> about 2,500.
    assert second["dedup"] == second["dedup_index"] <= 2_600
    assert second["dedup"] <= first["dedup"] * 1.05
    no_brand = [k for k in pipeline.dedup_store if int(k.rpartition(":f")[2]) % 4 in (0, 1)]
    assert no_brand == []
    # 10,000 more distinct authors, words, handles and hashtags do not grow the detector state
    # (the seasonal baseline fills a few more time slots: a little slack for that).
    assert second["state_bytes"] <= first["state_bytes"] * 1.1, sizes
    assert second["state_bytes"] < 1_000_000, sizes
    assert second["open_authors"] <= MAX_AUTHORS_PER_BUCKET


def test_oversized_and_deeply_nested_json_is_refused_before_anything_keeps_it() -> None:
    limits = Limits(max_bytes=65536)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert validate_record(deep, limits=limits).reason == "too_large"  # type: ignore[union-attr]
    roomy = Limits(max_bytes=1_000_000)
    assert validate_record(deep[:400_000], limits=roomy).reason == "invalid_json"  # type: ignore[union-attr]
    nested: Any = 1
    for _ in range(MAX_DEPTH + 5):
        nested = [nested]
    record = {"id": "d", "text": "Nordlys Energi", "created_at": T0_MS, "x": nested}
    assert validate_record(json.dumps(record).encode(), limits=limits).reason == "too_deep"  # type: ignore[union-attr]
    # The HTTP endpoint parses a whole body: deep nesting there is refused, not a crash.
    batch = check_batch(deep[:400_000], limits=limits, matcher=BrandMatcher.from_file(BRANDS))
    assert not batch.records and batch.errors[0]["reason"] == "invalid_json"
    batch = check_batch(json.dumps([record]).encode(), limits=limits, matcher=None)
    assert not batch.records and batch.errors[0]["reason"] == "too_deep"


SURROGATE = b'{"id": "s", "text": "Nordlys Energi", "created_at": 1795511700, "c": "\\ud83d"}'
HUGE_TIME = b'{"id": "o", "text": "Nordlys Energi", "created_at": ' + b"9" * 400 + b"}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # passed validation, then valid_value() could not encode it: dead-lettered internal_error
        (SURROGATE, "not_utf8"),
        # OverflowError out of the validator: dead-lettered internal_error
        (HUGE_TIME, "timestamp_out_of_range"),
    ],
    ids=["lone-surrogate", "huge-integer-time"],
)
def test_the_validate_stage_refuses_what_the_doors_refuse(raw: bytes, reason: str) -> None:
    matcher = BrandMatcher.from_file(BRANDS)
    outcome = check_mention(
        raw,
        0,
        0,
        limits=Limits(),
        matcher=matcher,
        dedup=Deduplicator({}, 86_400_000),
        generation=1,
        now=datetime(2026, 11, 24, 12, tzinfo=UTC),
    )
    assert isinstance(outcome, Rejection) and outcome.reason == reason, outcome
    batch = check_batch(b"[" + raw + b"]", limits=Limits(), matcher=matcher)
    assert [e["reason"] for e in batch.errors] == [reason]


def test_nested_extras_never_reach_the_alert() -> None:
    """Unknown fields (here nested 30 deep) pass validation but stop at the detector's input."""
    pipeline = InProcessPipeline()
    scenario = phases()
    raws = []
    for n, record in enumerate(scenario["calm"] + scenario["onset"] + scenario["escalation"]):
        nested: Any = "x"
        for _ in range(MAX_DEPTH - 2):
            nested = {"n": nested}
        raws.append(
            json.dumps(
                {
                    "id": record["id"],
                    "text": record["text"] if n % 2 else HOSTILE_TEXT,
                    "created_at": record["created_at_ms"],
                    "platform": "x",
                    "lang": record["lang"],
                    "author": {"id": record["author"]["id"], "followers": 10, "extra": nested},
                    "url": record["url"],
                    "extra": nested,
                }
            ).encode()
        )
    pipeline.feed(raws, now_ms=T0_MS + 400 * 24 * HOUR_MS)
    assert pipeline.alerts, "the scenario must raise alerts for this test to mean anything"
    for alert in pipeline.alerts:
        for post in alert["drivers"]["top_posts"]:
            assert set(post) == {
                "id",
                "url",
                "platform",
                "lang",
                "reach",
                "engagement",
                "sentiment",
                "text",
            }
        assert "extra" not in json.dumps(alert)


# --- crafted storms ---


def hostile_storm_records() -> list[dict[str, Any]]:
    """The shared storm scenario, with every complaint carrying hostile text and markup."""
    scenario = phases()
    records = scenario["calm"] + scenario["onset"] + scenario["escalation"] + scenario["aftermath"]
    rng = random.Random(3)
    complaints = {text for _lang, text in COMPLAINTS}
    out = []
    for record in records:
        if record["text"] in complaints:
            marker = rng.choice(list(HOSTILE_MARKERS.values()))
            record = dict(record)
            record["text"] = f"{record['text']} {marker} {HOSTILE_TEXT[: rng.randrange(40, 400)]}"
            record["url"] = f"https://x.example/<b>{record['id']}</b>`\u202e"
            record["author"] = dict(record["author"], followers=rng.randrange(50, 90_000))
        out.append(record)
    return out


def test_a_storm_of_hostile_posts_reaches_annotations_only_neutralised() -> None:
    """The real detector on a storm whose posts carry the hostile texts: the alert record keeps
    the evidence as written, every annotation and every statement draft is clean."""
    replayer = Replayer(DetectorConfig(), 60_000)
    alerts = []
    for record in hostile_storm_records():
        for output in replayer.feed(MentionEvent.from_record(record)):
            if isinstance(output, EpisodeEvent) and output.episode["kind"] == "storm":
                alerts.append(build_alert(output.to_dict(), VOICES[BRAND]))
    for output in replayer.flush():
        if isinstance(output, EpisodeEvent) and output.episode["kind"] == "storm":
            alerts.append(build_alert(output.to_dict(), VOICES[BRAND]))
    assert {a["change"] for a in alerts} >= {"opened", "escalated", "resolved"}
    raw_posts = " ".join(p["text"] for a in alerts for p in a["drivers"]["top_posts"])
    # The evidence really is hostile (otherwise this test would prove nothing) ...
    assert "\u202e" in raw_posts or "<!channel>" in raw_posts or "@everyone" in raw_posts
    firing = 0
    for alert in alerts:
        for am_alert in am_alerts(alert, ["watch", "warning", "critical"], LINKS, T0_MS, 900_000):
            # ... and none of it reaches what Alertmanager shows.
            assert annotation_problems(am_alert["annotations"]) == []
            assert all(
                isinstance(v, str) and annotation_problems({k: v}) == []
                for k, v in am_alert["labels"].items()
            )
        for statement in alert["statements"]:
            firing += 1
            text = statement["text"]
            assert annotation_problems({"statement": text}) == []
            # The issue comes from the drivers in plain words only, or is the neutral phrase.
            issue = statement["issue"]
            assert issue == GENERIC_ISSUE[statement["lang"]] or all(
                word.replace("-", "").replace("'", "").isalpha() for word in issue.split()
            ), issue
    assert firing > 0


def crafted_event(severity: str = "critical", change: str = "escalated") -> dict[str, Any]:
    """An episode whose every free-text field is hostile, as no detector would build it."""
    terms = [
        {"term": marker + " refund", "lang": "en", "score": 9.0, "count": 50}
        for marker in HOSTILE_MARKERS.values()
    ]
    posts = [
        {
            "id": f"<@U123>{i}\u202e",
            "url": "javascript:alert(1)//<x>" if i % 2 else f"https://x.example/{marker}",
            "platform": "x<b>",
            "lang": "en\u202e",
            "reach": 10**9,
            "engagement": 5,
            "sentiment": "negative`",
            "author": "kari",
            "text": f"{HOSTILE_TEXT} {marker} " + "A" * 70_000,
        }
        for i, marker in enumerate(HOSTILE_MARKERS.values())
    ]
    return {
        "type": change,
        "at_ms": T0_MS,
        "at": "2026-11-24T04:00:00.000Z",
        "episode": {
            "episode_id": "hostile-1",
            "brand": BRAND,
            "kind": "storm",
            "severity": severity,
            "peak_severity": severity,
            "start_ms": T0_MS - HOUR_MS,
            "start": "2026-11-24T03:00:00.000Z",
            "figures": {"volume": {"now": 500, "baseline": 10}, "window_minutes": 60},
            "drivers": {
                "phrases": terms,
                "words": terms,
                "hashtags": [{"term": "#<!here>\u202e", "lang": "en", "score": 3, "count": 9}],
                "top_posts_by_reach": posts,
                "top_posts_by_engagement": posts[::-1],
                "languages": {"en\u202e<b>": 0.5, "nb": 0.5},
                "platforms": {"x`<!channel>`": 1.0},
            },
        },
    }


@pytest.mark.parametrize("severity", ["watch", "warning", "critical"])
def test_crafted_driver_terms_and_posts_are_neutralised(severity: str) -> None:
    """Even drivers no tokenizer would produce (markup inside terms, 70 kB posts, hostile ids,
    URLs, platforms and language keys) come out of build_alert and the Alertmanager rendering
    clean, short and on their own lines."""
    alert = build_alert(crafted_event(severity), VOICES[BRAND])
    assert alert["statements"], "a firing storm has drafts"
    for statement in alert["statements"]:
        assert statement["issue"] == GENERIC_ISSUE[statement["lang"]]  # nothing plain to name it
        assert annotation_problems({"statement": statement["text"]}) == []
    (firing,) = am_alerts(alert, [], LINKS, T0_MS, 900_000)
    notes = firing["annotations"]
    assert annotation_problems(notes) == []
    assert sum(len(v) for v in notes.values()) < 16_000  # 70 kB posts are shown shortened
    # Still readable: the neutralised evidence is there, not dropped.
    assert "\u2039!channel\u203a" in notes["drivers"] and "\uff20here" in notes["drivers"]
    assert "\uff3brefund form\uff3d" in notes["drivers"]
    # The labels Alertmanager groups and routes by never carry post text.
    assert set(firing["labels"]) == {"alertname", "brand", "severity", "episode", "team"}
    assert firing["labels"]["brand"] == BRAND
    assert firing["labels"]["team"] == VOICES[BRAND].team  # from the brands file


def test_statement_drafts_and_actions_are_neutralised_in_annotations_too() -> None:
    """Drafts and actions come from built-in texts and the brands file, not from posts; should a
    template or a future slot ever carry markup, the annotation still shows it neutralised."""
    alert = build_alert(crafted_event(), VOICES[BRAND])
    tampered = dict(alert)
    tampered["statements"] = [
        dict(s, text=s["text"] + " " + HOSTILE_TEXT, label=s["label"] + "\u202e<b>")
        for s in alert["statements"]
    ]
    tampered["actions"] = [a + " <!here> `x`" for a in alert["actions"]]
    notes = am_annotations(tampered, LINKS)
    assert annotation_problems(notes) == []
    first = alert["statements"][0]
    assert first["text"] in notes["statements"]  # a clean draft is shown exactly as written


def test_lexicon_scorer_vocabulary_stays_bounded_under_new_words() -> None:
    """spaCy keeps every distinct token it has seen; the lexicon backend rebuilds its pipeline
    past a limit, so a stream of new words cannot grow it for ever, and scores do not change."""
    scorer = LexiconScorer(max_vocab_strings=20_000)
    probe = ["Nordlys Energi is terrible and awful", "I love it, great service", "ok"]
    before = scorer.score(probe, ["en"] * 3)
    largest = 0
    for start in range(0, 8_000, 500):
        texts = [
            f"Nordlys Energi ord{i}a ord{i}b #tag{i} @user{i}" for i in range(start, start + 500)
        ]
        scorer.score(texts, ["en"] * len(texts))
        largest = max(largest, len(scorer._pipeline(scorer.pipeline_key("en")).vocab.strings))
    # Without the limit the vocabulary ends near 45,000 strings (5 new ones per text).
    assert largest <= 20_000 + 500 * 6
    assert scorer.score(probe, ["en"] * 3) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author", {"followers": 10**400}),
        ("engagement", {"likes": 10**400}),
        ("author", {"followers": 1e308}),
        ("created_at_ms", 10**400),
        ("received_at_ms", 10**400),
    ],
)
def test_a_scored_record_with_a_huge_number_is_unreadable_not_a_crash(
    field: str, value: object
) -> None:
    """``math.isfinite`` raised OverflowError for an integer beyond floats: the detect stage's
    agent crashed on the record (it reads ValueError, TypeError and KeyError as unreadable)
    and the record was committed uncounted, with no dead letter."""
    from streams.agents.detect import parse_scored

    record = {
        "brand": "nordlys-energi",
        "created_at_ms": 1_764_000_000_000,
        "sentiment": {"label": "negative"},
        field: value,
    }
    with pytest.raises(ValueError, match=field.split("_at")[0]):
        parse_scored(json.dumps(record).encode())
