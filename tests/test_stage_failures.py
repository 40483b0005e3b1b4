"""What the scoring and detection stages do with a record they cannot handle.

Faust acknowledges a record even when the agent fails on it (the stream's iterator acks in a
``finally``), so a stage that let an exception out lost the record, or a whole scoring batch,
without a trace. Each stage now keeps such a record on ``mentions.dlq`` with a reason and goes on.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from detectors.alerting import build_alert, default_voice
from detectors.config import DetectorConfig
from detectors.events import MentionEvent
from detectors.replay import Replayer
from streams.agents import detect_state
from streams.agents.detect_state import PartitionState
from streams.agents.notify import readable_alert
from streams.agents.score import BatchScorer
from streams.alertmanager import Links
from streams.kafka_local import LocalKafka
from streams.mention import Rejection
from streams.sentiment.base import Sentiment
from tests.detector_support import T0, stream
from tests.running_worker import send_scored, start_worker
from tests.test_detect_config_change import as_record
from tests.test_detect_state import LATENESS_MS, ChangelogTable

BRAND = "nordlys-energi"  # a brand of deploy/brands.yaml, so its metrics carry its label


class BreaksOnBoom:
    """A model that fails on one text (as a tokenizer bug or an out-of-memory on one huge input
    would): the whole batch call raises."""

    version = "breaks-on-boom/1"

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        if any("boom" in text for text in texts):
            raise RuntimeError("the model failed on this input")
        return [Sentiment(0.1, 0.2, 0.7) for _ in texts]


def valid(i: int, text: str) -> bytes:
    return json.dumps(
        {"id": str(i), "text": text, "created_at_ms": T0 + i, "brand": "acme", "lang": "en"}
    ).encode()


def test_a_record_that_breaks_the_model_is_dead_lettered_and_the_rest_of_its_batch_scored() -> None:
    scorer = BatchScorer(BreaksOnBoom)
    batch = [valid(1, "fine"), valid(2, "boom goes the tokenizer"), b"{", valid(3, "also fine")]
    with pytest.raises(RuntimeError):
        scorer.run(batch)  # what the agent used to let out: the whole batch lost
    results = scorer.run_each(batch)
    assert len(results) == 4
    first, broken, unreadable, last = results
    assert isinstance(broken, Rejection) and broken.reason == "internal_error"
    assert "RuntimeError" in broken.message and "the model failed" in broken.message
    assert isinstance(unreadable, Rejection) and unreadable.reason == "invalid_json"
    for result, mention_id in ((first, "1"), (last, "3")):
        assert not isinstance(result, Rejection)
        _payload, record = result
        assert record["id"] == mention_id and record["sentiment"]["label"] == "positive"


def test_a_model_that_cannot_load_is_not_taken_for_bad_records() -> None:
    def cannot_load() -> BreaksOnBoom:
        raise OSError("no model files")

    with pytest.raises(OSError, match="no model files"):
        BatchScorer(cannot_load).run_each([valid(1, "fine")])


def test_a_pending_mention_the_rebuild_cannot_read_does_not_stop_the_partition() -> None:
    events = list(stream("acme", T0, 30, lambda t: 1.0))
    pending = ChangelogTable()
    for offset, event in enumerate(events):
        pending[detect_state.pending_key("acme", offset)] = {
            "partition": 0,
            "offset": offset,
            "mention": as_record(event),
        }
    broken = {**as_record(events[5]), "created_at_ms": float("inf")}
    pending[detect_state.pending_key("acme", 5)] = {"partition": 0, "offset": 5, "mention": broken}
    [state] = detect_state.rebuild(
        [], list(pending.items()), {0}, DetectorConfig(), LATENESS_MS
    ).values()
    assert state.replayer.detectors["acme"].observed_total == len(events) - 1
    assert state.high_offset == len(events) - 1


def test_forget_undoes_the_pending_entry_of_a_record_that_failed() -> None:
    pending = ChangelogTable()
    state = PartitionState(Replayer(None, LATENESS_MS))
    record = as_record(next(stream("acme", T0, 1, lambda t: 5.0)))
    event = MentionEvent.from_record(record)
    detect_state.take(state, detect_state.Disposition.FEED, 7, record, event, pending, 0)
    key = detect_state.pending_key("acme", 7)
    assert key in pending and state.pending["acme"] == [key]
    detect_state.forget(state, "acme", 7, pending)
    assert key not in pending and state.pending["acme"] == []


@pytest.mark.integration
def test_the_detect_stage_dead_letters_scored_records_it_cannot_read(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    """On the real Kafka: not JSON, a time of JSON ``Infinity`` and a JSON array (which used to
    stop the detect agent with an OverflowError or an AttributeError, and lose the record) end
    on ``mentions.dlq`` with their original bytes; the brand's next mention is counted."""
    worker = start_worker(kafka, tmp_path, STORMVARSEL_TOPIC_PARTITIONS="1")
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    try:
        good = [as_record(e) for e in stream(BRAND, T0, 3, lambda t: 2.0, seed=4)]
        infinite = json.dumps({**good[0], "id": "inf", "created_at_ms": float("inf")}).encode()
        assert b"Infinity" in infinite
        topic = worker.topic("mentions.scored")
        for value in (b"not json at all", infinite, b"[1]"):
            producer.send(topic, key=BRAND.encode(), value=value)
        send_scored(producer, topic, good)
        dead = [json.loads(r.value) for r in worker.consume("mentions.dlq", 3)]
        assert [d["reason"] for d in dead] == ["unreadable_scored"] * 3
        originals = [base64.b64decode(d["original_b64"]) for d in dead]
        assert originals == [b"not json at all", infinite, b"[1]"]
        assert "created_at_ms" in dead[1]["message"]
        assert "JSON object" in dead[2]["message"]
        worker.wait(
            lambda: (
                worker.metrics().get(f"stormvarsel_brand_mentions_counted{{brand={BRAND}}}")
                == len(good)
            ),
            60,
            "the good mentions to be counted",
        )
        assert worker.process.poll() is None
    finally:
        producer.close()
        worker.stop()
    assert "Agent crashed" not in worker.log.read_text()


def test_the_notifier_takes_only_alerts_it_can_post() -> None:
    """The notifier posts all tracked alerts together from one loop, so an alert it could not
    build (a record on ``alerts`` from something else) would stop every page: it is refused on
    the way in, with the reason."""
    links = Links("https://runbooks.example", "https://grafana.example")
    good = build_alert(
        {
            "type": "opened",
            "at": "2026-03-02T10:00:00.000Z",
            "at_ms": 1_772_445_600_000,
            "episode": {
                "episode_id": "e1",
                "brand": BRAND,
                "kind": "storm",
                "severity": "watch",
                "start_ms": 1_772_445_000_000,
            },
        },
        default_voice(BRAND),
    )
    assert readable_alert(json.dumps(good).encode(), links)["alert_id"] == "e1"
    broken: list[tuple[object, str]] = [
        ([good], "not a JSON object"),
        ({k: v for k, v in good.items() if k != "status"}, "status"),
        ({**good, "status": "pending"}, "status"),
        ({**good, "severity": None}, "severity"),
        ({**good, "changed_at_ms": "yesterday"}, "changed_at_ms"),
        ({**good, "changed_at_ms": float("inf")}, "changed_at_ms"),
        ({**good, "start_ms": float("inf")}, "cannot build"),
        ({k: v for k, v in good.items() if k != "brand_name"}, "cannot build"),
        ({**good, "figures": "none"}, "cannot build"),
    ]
    for value, reason in broken:
        with pytest.raises(ValueError, match=reason):
            readable_alert(json.dumps(value).encode(), links)
    with pytest.raises(ValueError):
        readable_alert(b"\xff not json", links)


class _FailsWhenClosing(DetectorConfig):
    """A brand's configuration whose storm settings, first read when a bucket closes, raise.

    The failure is planted in the data the detector reads, not by patching
    ``BrandDetector._close``: the detector core runs compiled (mypyc), where a patched method
    is not what its callers call."""

    def __getattribute__(self, name: str) -> Any:
        if name == "storm":
            raise RuntimeError("a bug met this bucket")
        return super().__getattribute__(name)


def _fails_when_closing(config: DetectorConfig) -> DetectorConfig:
    failing = copy.copy(config)
    object.__setattr__(failing, "__class__", _FailsWhenClosing)  # frozen: past its __setattr__
    return failing


def test_a_record_the_detectors_fail_on_leaves_the_partition_as_if_it_never_came() -> None:
    """``take`` raises halfway: the mention is counted and one brand's buckets closed before
    the other brand's closing fails. The stage dead-letters the record; the partition, rebuilt
    from its tables, must be what the pure core gives without that record."""
    events = sorted(
        [
            *stream("acme", T0, 180, lambda t: 1.0, seed=1),
            *stream("globex", T0, 180, lambda t: 1.0, seed=2),
        ],
        key=lambda e: (e.event_ms, e.mention_id),
    )
    records = [as_record(e) for e in events]
    minute = 60_000
    # A record whose watermark enters a new bucket, so it closes buckets of both brands.
    failing = next(
        i
        for i in range(len(records) // 2, len(records))
        if (events[i].event_ms - LATENESS_MS) // minute
        > (max(e.event_ms for e in events[:i]) - LATENESS_MS) // minute
    )
    states, pending = ChangelogTable(), ChangelogTable()
    state: PartitionState | None = PartitionState(Replayer(None, LATENESS_MS))
    for offset, record in enumerate(records):
        assert state is not None
        mention = MentionEvent.from_record(record)
        kind = detect_state.disposition(state, mention.brand, offset)
        if offset == failing:
            acme, globex = state.replayer.detectors["acme"], state.replayer.detectors["globex"]
            acme_closed = acme.closed_until
            config, globex.config = globex.config, _fails_when_closing(globex.config)
            with pytest.raises(RuntimeError, match="a bug met this bucket"):
                detect_state.take(state, kind, offset, record, mention, pending, 0)
            globex.config = config
            # Half done: the mention counted, acme's buckets closed, then globex's failed.
            assert state.replayer.detectors[mention.brand].observed_total > 0
            assert acme.closed_until > acme_closed
            detect_state.forget(state, mention.brand, offset, pending)
            state = detect_state.recover(0, states, pending, DetectorConfig(), LATENESS_MS)
            continue
        detect_state.take(state, kind, offset, record, mention, pending, 0)
        if offset % 37 == 0:
            detect_state.save(0, state, states, pending)
    assert state is not None
    pure = Replayer(None, LATENESS_MS)
    for offset, record in enumerate(records):
        if offset != failing:
            pure.feed(MentionEvent.from_record(record))
    assert {b: d.to_state() for b, d in state.replayer.detectors.items()} == {
        b: d.to_state() for b, d in pure.detectors.items()
    }
