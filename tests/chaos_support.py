"""Helpers for the chaos tests (no tests here): collector-shaped mentions, a paced producer
that keeps sending while workers and brokers come and go, and readers of what the pipeline
counted."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from tests.running_worker import RunningWorker

#: The chaos tests score with the lexicon backend: the same label for the same text in every
#: run and every batch (the int8 default model can flip a borderline label with the batch it
#: lands in), and fast enough to leave the test's time to the faults themselves.
LEXICON = {"STORMVARSEL_SENTIMENT_BACKEND": "lexicon"}


def collector_mention(record: dict[str, Any]) -> dict[str, Any]:
    """A scored scenario record as a collector sends it: no sentiment, ISO event time."""
    out = {k: v for k, v in record.items() if k not in ("sentiment", "created_at_ms")}
    out["created_at"] = datetime.fromtimestamp(record["created_at_ms"] / 1000, UTC).isoformat()
    if isinstance(out.get("author"), dict):
        out["author"] = {k: v for k, v in out["author"].items() if v is not None}
    return out


class PacedSender(threading.Thread):
    """Produces mentions to ``topic`` at ``rate`` per second in a background thread, keyed by
    their id with their event time as record time, as ``stormvarsel ingest`` does. It keeps
    going whatever happens to the workers; ``sent`` says how far it got."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        records: list[dict[str, Any]],
        rate: float,
        key_field: str = "id",
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.records = records
        self.rate = rate
        self.key_field = key_field
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        try:
            started = time.monotonic()
            for i, record in enumerate(self.records):
                producer.send(
                    self.topic,
                    key=str(record[self.key_field]).encode(),
                    value=json.dumps(collector_mention(record)).encode(),
                    timestamp_ms=record["created_at_ms"],
                )
                self.sent = i + 1
                delay = started + (i + 1) / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.flush()
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            producer.close()

    def finish(self, timeout_s: float = 120) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), "the producer did not finish sending"
        assert self.error is None, f"the producer failed: {self.error!r}"


def send_mentions(
    bootstrap: str, topic: str, records: Iterable[dict[str, Any]], key_field: str = "id"
) -> int:
    """Produce mentions at once (no pacing), keyed by ``key_field``; returns how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    n = 0
    try:
        for record in records:
            producer.send(
                topic,
                key=str(record[key_field]).encode(),
                value=json.dumps(collector_mention(record)).encode(),
                timestamp_ms=record["created_at_ms"],
            )
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def settle(
    read: Callable[[], Mapping[str, float]],
    expected: Mapping[str, int],
    timeout_s: float,
    quiet_s: float = 30,
    after_s: float = 8,
) -> dict[str, float]:
    """Counts per brand once the pipeline is done: every count reached what was sent (then
    ``after_s`` more, for anything counted twice to show), or the counts stopped moving for
    ``quiet_s`` (something was lost), or ``timeout_s`` passed. ``read`` may raise OSError while
    a worker is starting; counts that never appeared do not start the quiet clock."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, float] = {}
    changed = time.monotonic()
    reads, failed, error = 0, 0, ""
    while time.monotonic() < deadline:
        reads += 1
        try:
            now = dict(read())
        except OSError as exc:
            now = last
            failed, error = failed + 1, repr(exc)
        if now != last:
            last, changed = now, time.monotonic()
        if all(last.get(brand, 0) >= n for brand, n in expected.items()):
            time.sleep(after_s)
            return dict(read())
        if last and time.monotonic() - changed > quiet_s:
            break
        time.sleep(1)
    # Shown with a failing test's output: a worker whose /metrics never answered looks, from
    # the counts alone, like one that lost everything.
    print(f"settle: {failed} of {reads} reads failed{f' (last: {error})' if failed else ''}")
    return last


def count_problems(got: Mapping[str, float], expected: Mapping[str, int]) -> list[str]:
    """What differs between the detectors' counts and the mentions sent, brand by brand."""
    problems = []
    for brand, n in sorted(expected.items()):
        have = int(got.get(brand, 0))
        if have < n:
            problems.append(f"{brand}: {n - have} of {n} mentions lost")
        elif have > n:
            problems.append(f"{brand}: {have - n} of {n} mentions counted twice")
    return problems


def explain(problems: list[str], workers: Iterable[RunningWorker]) -> str:
    """An assertion message for lost or doubled mentions: the problems, then each worker's state
    and the end of its log, so a failure on a CI machine can be read without the machine."""
    parts = ["; ".join(problems)]
    for worker in workers:
        code = worker.process.poll()
        state = "running" if code is None else f"exited with {code}"
        parts.append(f"--- worker {worker.base_url} ({state}), log tail:\n{worker.log_tail()}")
    return "\n".join(parts)


def brand_counts(workers: Iterable[RunningWorker]) -> dict[str, float]:
    """Each brand's detector count, from whichever worker owns the brand now. A worker that gave
    a brand away may still show its older, smaller count for a moment, so the largest value is
    the current one (a mention counted twice pushes it past what was sent)."""
    out: dict[str, float] = {}
    prefix = "stormvarsel_brand_mentions_counted{brand="
    for worker in workers:
        for key, value in worker.metrics().items():
            if key.startswith(prefix):
                brand = key[len(prefix) : -1]
                out[brand] = max(out.get(brand, 0.0), value)
    return out


def counted(worker: RunningWorker, brand: str) -> float:
    """The brand's detector count: mentions counted once each, kept in the detector state."""
    return worker.metrics().get(f"stormvarsel_brand_mentions_counted{{brand={brand}}}", 0.0)


def read_topic(bootstrap: str, topic: str, quiet_s: float = 3.0) -> list[Any]:
    """Every record of ``topic`` up to its current end, in partition order per partition."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(quiet_s * 1000),
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def id_counts(records: Iterable[Any], brand_field: str = "brand") -> Counter[tuple[str, str]]:
    """How often each (brand, mention id) occurs in JSON records of a topic."""
    out: Counter[tuple[str, str]] = Counter()
    for record in records:
        value = json.loads(record.value)
        out[(str(value[brand_field]), str(value["id"]))] += 1
    return out


def alerts_by_brand(records: Iterable[Any]) -> dict[str, list[str]]:
    """Alert records of the ``alerts`` topic per brand, in order, as sorted-key JSON."""
    out: dict[str, list[str]] = {}
    for record in records:
        value = json.loads(record.value)
        out.setdefault(str(value["brand"]), []).append(json.dumps(value, sort_keys=True))
    return out


def terminate(worker: RunningWorker, timeout_s: float = 60) -> None:
    """Stop a worker the way an orchestrator does (SIGTERM: it commits and leaves the group)."""
    worker.process.terminate()
    try:
        worker.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()
        raise AssertionError(f"the worker ignored SIGTERM for {timeout_s} s") from None
