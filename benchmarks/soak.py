"""Soak: the whole pipeline at a steady rate for minutes, with storms, and a printed report.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--short] [--rate N] [--json FILE]

Everything is real and local: a Kafka broker of its own (KRaft, free ports, a temporary data
directory), one worker process (``stormvarsel worker``) with the default scoring backend (the
offline e5 model that ``stormvarsel models install`` prepares; this script prepares it too), and
this process as collector and observer.

1. History: a day and an hour of calm mentions for three "storm" brands (two a minute each, event
   times in the past) go through the whole pipeline, so their baselines are warm and a storm
   can be detected.
2. Calibration, unless ``--rate`` is given. First a backlog of mentions (event time now) for
   the other brands is sent at once: the rate at which the worker scores it is its burst
   capacity. Then steady rates, from 80% of that down in steps of 15%, each for 40 s, until one
   is sustained: mentions reach ``mentions.scored`` within 5 s (p50) and 15 s (p99) of their
   event time in the last 15 s of the step. That is the highest rate the default scoring
   backend sustains on this machine, through the whole pipeline.
3. Soak: mentions at that steady rate for ``--minutes`` (event time = send time). The storm
   brands keep their calm two a minute; one after the other, each has a storm (two a second,
   mostly complaints, for three minutes) inside the same total rate; the last one ends two
   minutes before the soak does, so its alerts are raised by live traffic.
4. Drain, then the report: the rate; consumer lag (the worker's gauge, sampled); end-to-end lag
   p50/p99 from event time to ``mentions.scored`` and to an alert record (measured here, on
   receipt from the topics; the worker's own histogram beside it); worker RSS one minute into
   the soak and at its end against a stated bound; and zero lost or duplicated mentions (every
   mention sent is on ``mentions.scored`` exactly once, and the detectors counted each exactly
   once).

``--short`` is a quick check: 3 minutes, a smaller calibration, one shorter storm. The exit
status is 0 when the pipeline kept up, lost nothing, counted nothing twice, raised the storms
and stayed within the memory bound.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from streams.kafka_local import LocalKafka, free_port  # noqa: E402
from streams.settings import Settings  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "sentiment"
STORM_BRANDS = [("Nordlys Energi", "nordlys-energi"), ("Fjordkraft Mobil", "fjordkraft-mobil")]
STORM_BRANDS += [("Vidde Bank", "vidde-bank")]
LOAD_BRANDS = [(f"Soak Brand {i:02d}", f"soak-brand-{i:02d}") for i in range(1, 7)]
CALM = [
    ("nb", "Byttet til {b} i går, enkel prosess"),
    ("en", "Does {b} have a student plan?"),
    ("sv", "{b} har bra kundtjänst"),
    ("nb", "Fikk svar fra {b} på chatten"),
    ("en", "Just renewed with {b}, smooth as always"),
]
COMPLAINTS = [
    ("nb", "{b}: forsinket refusjon igjen, venter fortsatt"),
    ("nb", "Tredje uka med forsinket refusjon fra {b}"),
    ("en", "Still waiting on my delayed refund from {b}"),
    ("en", "{b} delayed refund for a month now, ridiculous"),
    ("nb", "Hvor blir pengene av, {b}? Forsinket refusjon, ingen svar"),
]
CALM_PER_MINUTE = 2  # each storm brand, in the history and all through the soak
STORM_PER_S = 2.0  # a storm brand during its storm
STORM_MINUTES = 3
STEP_S = 40  # each steady calibration step
HISTORY_HOURS = 25  # the baseline is warm after 24 hours
RSS_SLACK_MB = 32.0
#: Memory the worker may add per mention soaked: validation and detection each keep the
#: mention's id for STORMVARSEL_DEDUP_WINDOW_S (24 h by default), about 360 bytes each in a
#: Python dict and heap; the rest is slack for dict growth steps.
RSS_PER_MENTION_BYTES = 1024
SUSTAINED_P50_S = 5.0
SUSTAINED_P99_S = 15.0


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# --- input -------------------------------------------------------------------------------


def load_texts(rng: random.Random) -> list[tuple[str, str]]:
    """Tweet-length texts in English, Norwegian and Swedish (the shared sets, else synthetic)."""
    texts: list[tuple[str, str]] = []
    if SHARED.exists():
        with (SHARED / "airline_tweets.csv").open(encoding="utf-8") as handle:
            texts += [("en", row["text"]) for row in csv.DictReader(handle)]
        norec = json.loads((SHARED / "norec_sentence_3class_dev.json").read_text())
        texts += [("nb", row["text"]) for row in norec]
        with (SHARED / "swedish_reviews_small.csv").open(encoding="utf-8") as handle:
            texts += [("sv", row["text"][:280]) for row in csv.DictReader(handle)]
    else:
        words = ["strøm", "faktura", "kundeservice", "flight", "delayed", "väntat", "app"]
        texts = [("en", " ".join(rng.choices(words, k=rng.randint(4, 30)))) for _ in range(5000)]
    rng.shuffle(texts)
    return texts


@dataclass
class Mentions:
    """Makes collector mentions with unique ids and remembers how many of each brand it made."""

    rng: random.Random
    texts: list[tuple[str, str]]
    sent: Counter[str] = field(default_factory=Counter)
    n: int = 0

    def make(self, brand: tuple[str, str], at_ms: int, complaint: bool = False) -> dict[str, Any]:
        name, brand_id = brand
        self.n += 1
        if brand in LOAD_BRANDS:
            lang, text = self.texts[self.n % len(self.texts)]
        else:
            lang, template = self.rng.choice(COMPLAINTS if complaint else CALM)
            text = template.format(b=name)
        self.sent[brand_id] += 1
        return {
            "id": f"soak-{self.n}",
            "text": text,
            "created_at": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(),
            "brand": brand_id,
            "platform": "x",
            "lang": lang,
            "author": {"id": f"user{self.rng.randrange(50_000)}", "followers": 100},
        }


def brands_yaml() -> str:
    lines = ["brands:"]
    for name, brand_id in STORM_BRANDS + LOAD_BRANDS:
        lines += [
            f"  - name: {name}",
            f"    id: {brand_id}",
            "    languages: [nb, sv, en]",
            "    tone: neutral",
            "    oncall:",
            "      team: comms-soak",
        ]
    return "\n".join(lines) + "\n"


# --- the worker ----------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    url: str
    prefix: str
    log: Path

    def metrics(self) -> dict[str, float]:
        url = f"{self.url}/metrics"  # http://127.0.0.1:<port>, built here
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def alive(self) -> bool:
        return self.process.poll() is None


def start_worker(broker: LocalKafka, work: Path, brands: Path) -> Worker:
    prefix = f"soak{uuid.uuid4().hex[:6]}."
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMVARSEL_")}
    env.update(
        {
            "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "STORMVARSEL_TOPIC_PREFIX": prefix,
            "STORMVARSEL_APP_ID": f"soak-{prefix.rstrip('.')}",
            "STORMVARSEL_WEB_PORT": str(port),
            "STORMVARSEL_DATA_DIR": str(work / "worker"),
            "STORMVARSEL_BRANDS_FILE": str(brands),
            "STORMVARSEL_LOG_FORMAT": "json",
        }
    )
    log = work / "worker.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    worker = Worker(process, f"http://127.0.0.1:{port}", prefix, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if not worker.alive():
            raise SystemExit(f"the worker exited; see {log}")
        try:  # the scorer's info appears once the model is loaded
            if any(k.startswith("stormvarsel_scorer_info{model=") for k in worker.metrics()):
                break
        except OSError:
            pass
        time.sleep(1)
    else:
        raise SystemExit(f"the worker did not load its model within 180 s; see {log}")
    return worker


# --- observing the topics ------------------------------------------------------------------


class TopicWatcher(threading.Thread):
    """Reads a topic from its beginning as records arrive; keeps per-record receive lags."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.stop_event = threading.Event()
        self.copies: Counter[tuple[str, str]] = Counter()
        self.lags: list[tuple[float, float]] = []  # (receive wall time, lag s)
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        parts = None
        while parts is None and not self.stop_event.is_set():
            parts = consumer.partitions_for_topic(self.topic)
            if parts is None:
                time.sleep(0.5)
        consumer.assign([TopicPartition(self.topic, p) for p in sorted(parts or [])])
        try:
            while not self.stop_event.is_set():
                for batch in consumer.poll(timeout_ms=200).values():
                    now = time.time()
                    with self.lock:
                        for record in batch:
                            self._take(json.loads(record.value), now)
        finally:
            consumer.close()

    def _take(self, value: dict[str, Any], now: float) -> None:
        if "alert_id" in value:
            value["_received"] = now
            self.alerts.append(value)
            return
        self.copies[(str(value["brand"]), str(value["id"]))] += 1
        self.lags.append((now, now - value["created_at_ms"] / 1000))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)


class Sampler(threading.Thread):
    """Scrapes the worker every few seconds: consumer lag per topic, scored count, RSS."""

    def __init__(self, worker: Worker, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.every_s = every_s
        self.stop_event = threading.Event()
        self.samples: list[dict[str, Any]] = []

    def run(self) -> None:
        while not self.stop_event.wait(self.every_s):
            try:
                m = self.worker.metrics()
            except OSError:
                continue
            lag: Counter[str] = Counter()
            for key, value in m.items():
                if key.startswith("stormvarsel_consumer_lag_records{"):
                    topic = key.split("topic=", 1)[1].rstrip("}").split(",")[0]
                    lag[topic.removeprefix(self.worker.prefix)] += int(value)
            self.samples.append(
                {"t": time.time(), "lag": dict(lag), "rss_mb": self.worker.rss_mb()}
            )

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)


def scored_total(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("stormvarsel_mentions_scored_total"))


def counted_total(metrics: dict[str, float]) -> dict[str, float]:
    prefix = "stormvarsel_brand_mentions_counted{brand="
    return {k[len(prefix) : -1]: v for k, v in metrics.items() if k.startswith(prefix)}


def wait_scored(worker: Worker, target: float, timeout_s: float) -> list[tuple[float, float]]:
    """Poll the worker's scored counter until it reaches ``target``; the (time, count) trail."""
    trail: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.alive():
            raise SystemExit(f"the worker died; see {worker.log}")
        with contextlib.suppress(OSError):
            trail.append((time.time(), scored_total(worker.metrics())))
        if trail and trail[-1][1] >= target:
            return trail
        time.sleep(0.5)
    raise SystemExit(f"scoring did not reach {target:.0f} within {timeout_s:.0f} s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def histogram_quantile(
    metrics: dict[str, float], base: dict[str, float], stage: str, q: float
) -> float:
    """The worker's ``stormvarsel_event_lag_seconds`` quantile over what was observed since
    ``base`` (another scrape), interpolated like PromQL's ``histogram_quantile``."""
    buckets = []
    for key, value in metrics.items():
        if key.startswith("stormvarsel_event_lag_seconds_bucket{") and f"stage={stage}" in key:
            le = key.split("le=", 1)[1].split(",")[0].rstrip("}")
            buckets.append((float(le), value - base.get(key, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            span = count - lower_count
            share = (rank - lower_count) / span if span else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return float("nan")


# --- the run -------------------------------------------------------------------------------


def lags_between(watcher: TopicWatcher, begin: float, end: float) -> list[float]:
    with watcher.lock:
        return [lag for t, lag in watcher.lags if begin <= t <= end]


def send_paced(
    producer: KafkaProducer,
    topic: str,
    make: Any,
    rate: float,
    seconds: float,
) -> int:
    """Send ``make(now_ms, i)`` records at ``rate`` per second for ``seconds``; returns count."""
    started = time.monotonic()
    i = 0
    total = int(rate * seconds)
    while i < total:
        now = time.time()
        record = make(int(now * 1000), i)
        producer.send(
            topic,
            key=record["id"].encode(),
            value=json.dumps(record).encode(),
            timestamp_ms=int(now * 1000),
        )
        i += 1
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush()
    return i


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    parser.add_argument(
        "--short", action="store_true", help="quick check: 3 minutes, smaller calibration"
    )
    parser.add_argument("--rate", type=float, help="mentions/s (default: the highest sustained)")
    parser.add_argument("--calibration", type=int, help="backlog size for the capacity")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    minutes = 3.0 if args.short and args.minutes == 10.0 else args.minutes
    calibration = args.calibration or (4000 if args.short else 15000)
    storms = 1 if minutes < 6 else 3

    settings = Settings()
    say("preparing the default scoring model (stormvarsel models install) ...")
    from streams.sentiment.factory import install_e5

    install_e5(settings, say=say)

    work = Path(tempfile.mkdtemp(prefix="stormvarsel-soak-"))
    brands = work / "brands.yaml"
    brands.write_text(brands_yaml(), encoding="utf-8")
    broker = LocalKafka(
        version=settings.kafka_version,
        data_dir=work / "kafka",
        cache_dir=settings.cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
    )
    rng = random.Random(11)  # noqa: S311 (test data, not security)
    mentions = Mentions(rng, load_texts(rng))
    worker: Worker | None = None
    watchers: list[TopicWatcher] = []
    sampler: Sampler | None = None
    load_before = os.getloadavg()
    try:
        say(f"starting Kafka ({broker.bootstrap}) and a worker in {work}")
        broker.start(timeout_s=120)
        worker = start_worker(broker, work, brands)
        topic = f"{worker.prefix}mentions"
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, batch_size=65536
        )
        scored_watch = TopicWatcher(broker.bootstrap, f"{worker.prefix}mentions.scored")
        alert_watch = TopicWatcher(broker.bootstrap, f"{worker.prefix}alerts")
        watchers = [scored_watch, alert_watch]
        for watcher in watchers:
            watcher.start()

        # 1. History: warm baselines for the storm brands.
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - HISTORY_HOURS * 3_600_000
        step = 60_000 // CALM_PER_MINUTE
        history = 0
        for at in range(start_ms, now_ms - 120_000, step):
            for brand in STORM_BRANDS:
                record = mentions.make(brand, at + rng.randrange(step))
                producer.send(topic, key=record["id"].encode(), value=json.dumps(record).encode())
                history += 1
        producer.flush()
        say(f"history: {history} mentions over {HISTORY_HOURS} h for the storm brands")
        wait_scored(worker, history, 600)

        # 2. Calibration: the burst capacity, then the highest steady rate sustained.
        sent_before = sum(mentions.sent.values())
        for i in range(calibration):
            record = mentions.make(LOAD_BRANDS[i % len(LOAD_BRANDS)], int(time.time() * 1000))
            producer.send(topic, key=record["id"].encode(), value=json.dumps(record).encode())
        producer.flush()
        trail = wait_scored(worker, sent_before + calibration, 900)
        done = [(t, n - sent_before) for t, n in trail]
        t10 = next(t for t, n in done if n >= 0.1 * calibration)
        t90 = next(t for t, n in done if n >= 0.9 * calibration)
        capacity = 0.8 * calibration / max(t90 - t10, 1e-3)
        say(f"burst capacity: {capacity:.0f} mentions/s through the pipeline")
        steps: list[dict[str, float]] = []
        rate = float(args.rate or 0)
        candidate = round(capacity * 0.8)

        def probe(at_ms: int, i: int) -> dict[str, Any]:
            return mentions.make(LOAD_BRANDS[i % len(LOAD_BRANDS)], at_ms)

        while not rate:
            step_start = time.time()
            send_paced(producer, topic, probe, candidate, STEP_S)
            tail = lags_between(scored_watch, time.time() - 15, time.time())
            p50, p99 = percentile(tail, 0.5), percentile(tail, 0.99)
            steps.append({"rate": candidate, "p50_s": round(p50, 2), "p99_s": round(p99, 2)})
            say(
                f"  {candidate:.0f}/s for {time.time() - step_start:.0f} s: scored within "
                f"p50 {p50:.1f} s, p99 {p99:.1f} s"
            )
            if (p50 <= SUSTAINED_P50_S and p99 <= SUSTAINED_P99_S) or candidate <= 10:
                rate = candidate
                break
            candidate = round(candidate * 0.85)
            wait_scored(worker, sum(mentions.sent.values()), 900)  # drain before the next
        say(f"soaking at {rate:.0f} mentions/s")
        time.sleep(10)

        # 3. Soak.
        sampler = Sampler(worker)
        sampler.start()
        at_start = worker.metrics()
        soak_start = time.time()
        seconds = minutes * 60
        storm_s = STORM_MINUTES * 60 if storms > 1 else 90.0
        first = min(60.0, seconds / 8)
        spacing = (seconds - first - storm_s - 120) / max(1, storms - 1)
        storm_starts = [(STORM_BRANDS[k], first + k * max(0.0, spacing)) for k in range(storms)]
        rss_marks: dict[str, float] = {}
        calm_gap = 60.0 / CALM_PER_MINUTE
        next_calm = {brand: soak_start + rng.random() * calm_gap for brand in STORM_BRANDS}
        storm_sent: Counter[str] = Counter()

        def make(at_ms: int, i: int) -> dict[str, Any]:
            t = at_ms / 1000
            for brand in STORM_BRANDS:
                if t >= next_calm[brand]:
                    next_calm[brand] += calm_gap
                    return mentions.make(brand, at_ms)
            if "start" not in rss_marks and t - soak_start >= 60:
                rss_marks["start"] = worker.rss_mb()  # one minute in: buffers at their size
            for brand, begins in storm_starts:
                elapsed = t - soak_start - begins
                if 0 <= elapsed < storm_s and rng.random() < STORM_PER_S / rate:
                    storm_sent[brand[1]] += 1
                    return mentions.make(brand, at_ms, complaint=rng.random() < 0.85)
            return mentions.make(LOAD_BRANDS[i % len(LOAD_BRANDS)], at_ms)

        say(f"soaking for {minutes:g} min at {rate:.0f} mentions/s with {storms} storm(s)")
        soaked = send_paced(producer, topic, make, rate, seconds)
        send_s = time.time() - soak_start
        rss_end = worker.rss_mb()
        rss_start = rss_marks.get("start", rss_end)
        soaked_after_start = soaked * max(0.0, send_s - 60) / send_s
        total = sum(mentions.sent.values())

        # 4. Drain.
        say(f"sent {soaked} in {send_s:.0f} s; draining")
        wait_scored(worker, total, 600)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counted = counted_total(worker.metrics())
            if sum(counted.values()) >= total and len(scored_watch.copies) >= total:
                break
            time.sleep(2)
        deadline = time.monotonic() + 200  # quiet partitions close after 120 s idle
        while time.monotonic() < deadline:
            with alert_watch.lock:
                opened = {a["brand"] for a in alert_watch.alerts if a.get("change") == "opened"}
            if all(brand[1] in opened for brand, _ in storm_starts):
                break
            time.sleep(2)
        time.sleep(20)  # a few more lag samples after the end
        rss_drained = worker.rss_mb()
        sampler.stop()
        final = worker.metrics()
        counted = counted_total(final)
        for watcher in watchers:
            watcher.stop()
        producer.close()

        # --- report ---
        soak_lags = [lag for t, lag in scored_watch.lags if t >= soak_start]
        storm_alerts = [a for a in alert_watch.alerts if a.get("kind") == "storm"]
        live_alerts = [a for a in storm_alerts if a["changed_at_ms"] / 1000 >= soak_start]
        alert_lags = [a["_received"] - a["changed_at_ms"] / 1000 for a in live_alerts]
        detected = {
            brand[1]: min(
                (
                    a["_received"] - (soak_start + begins)
                    for a in live_alerts
                    if a["brand"] == brand[1] and a["change"] == "opened"
                ),
                default=float("nan"),
            )
            for brand, begins in storm_starts
        }
        during = [s for s in sampler.samples if soak_start <= s["t"] <= soak_start + send_s]
        lag_totals = [sum(s["lag"].values()) for s in during]
        sent_ids = total
        copies = scored_watch.copies
        duplicated = sum(n - 1 for n in copies.values() if n > 1)
        lost = sent_ids - len(copies)
        counted_sum = sum(counted.values())
        per_brand_ok = all(counted.get(b, 0) == n for b, n in mentions.sent.items())
        bound_mb = rss_start + RSS_SLACK_MB + soaked_after_start * RSS_PER_MENTION_BYTES / 2**20
        half = len(lag_totals) // 2
        # Kept up: never more than 30 s of input behind, and not growing towards the end.
        overall = statistics.mean(lag_totals) if lag_totals else 0.0
        late = statistics.mean(lag_totals[half:]) if lag_totals[half:] else 0.0
        kept_up = bool(lag_totals) and max(lag_totals) <= rate * 30 and late <= overall * 1.5 + rate
        figures = {
            "minutes": minutes,
            "burst_capacity_per_s": round(capacity, 1),
            "steady_steps": steps,
            "rate_per_s": rate,
            "rate_given": bool(args.rate),  # --rate: the soak's rate was not searched for
            "achieved_send_rate_per_s": round(soaked / send_s, 1),
            "mentions": {"history": history, "calibration": calibration, "soak": soaked},
            "consumer_lag_records": {
                "max": max(lag_totals, default=0),
                "mean": round(statistics.mean(lag_totals), 1) if lag_totals else 0,
                "final": sum(sampler.samples[-1]["lag"].values()) if sampler.samples else None,
                "samples": len(lag_totals),
            },
            "lag_to_scored_s": {
                "p50": round(percentile(soak_lags, 0.5), 3),
                "p99": round(percentile(soak_lags, 0.99), 3),
                "max": round(max(soak_lags, default=float("nan")), 3),
                "worker_p50": round(histogram_quantile(final, at_start, "scored", 0.5), 3),
                "worker_p99": round(histogram_quantile(final, at_start, "scored", 0.99), 3),
            },
            "lag_to_alert_s": {
                "p50": round(percentile(alert_lags, 0.5), 1),
                "p99": round(percentile(alert_lags, 0.99), 1),
                "alert_records": len(alert_lags),
                "worker_p50": round(histogram_quantile(final, at_start, "alerted", 0.5), 1),
                "worker_p99": round(histogram_quantile(final, at_start, "alerted", 0.99), 1),
                "storm_detected_after_s": {k: round(v, 1) for k, v in detected.items()},
            },
            "rss_mb": {
                "start": round(rss_start, 1),
                "end": round(rss_end, 1),
                "after_drain": round(rss_drained, 1),
                "bound": round(bound_mb, 1),
                "bytes_per_mention": round(
                    (rss_end - rss_start) * 2**20 / max(1.0, soaked_after_start)
                ),
            },
            "scored_lag_by_minute_p50_s": [
                round(percentile(lags_between(scored_watch, m, m + 60), 0.5), 2)
                for m in range(int(soak_start), int(soak_start + send_s), 60)
            ],
            "mentions_sent": sent_ids,
            "on_mentions_scored": {"distinct": len(copies), "lost": lost, "twice": duplicated},
            "detector_counts": {"total": counted_sum, "each_brand_exact": per_brand_ok},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "cpu": os.cpu_count(),
        }
        ok = {
            "kept up (consumer lag bounded, not growing)": kept_up,
            "no mention lost": lost == 0 and counted_sum >= sent_ids,
            "no mention counted twice": duplicated == 0 and counted_sum == sent_ids,
            "each brand counted exactly": per_brand_ok,
            "every storm detected": all(v == v for v in detected.values()),
            "RSS within the bound": rss_end <= bound_mb,
        }
        print_report(figures, ok, storm_sent)
        if args.json:
            args.json.write_text(json.dumps({"figures": figures, "checks": ok}, indent=2))
        return 0 if all(ok.values()) else 1
    finally:
        for watcher in watchers:
            watcher.stop_event.set()
        if sampler is not None:
            sampler.stop_event.set()
        if worker is not None and worker.alive():
            worker.process.terminate()
            try:
                worker.process.wait(60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        broker.stop()
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_report(figures: dict[str, Any], ok: dict[str, bool], storm_sent: Counter[str]) -> None:
    f = figures
    lag = f["consumer_lag_records"]
    scored, alert, rss = f["lag_to_scored_s"], f["lag_to_alert_s"], f["rss_mb"]
    lines = [
        "",
        "Stormvarsel soak report",
        "=======================",
        f"machine: {f['cpu']} cores; load average before {f['load_average_before']}, "
        f"after {f['load_average_after']}",
        f"default scoring backend through the pipeline: burst capacity "
        f"{f['burst_capacity_per_s']:.0f} mentions/s (backlog of {f['mentions']['calibration']}); "
        f"steady steps {[(x['rate'], x['p50_s'], x['p99_s']) for x in f['steady_steps']]} "
        f"(rate/s, scored p50 s, p99 s)",
        (
            f"steady rate given (--rate, not searched for): {f['rate_per_s']:.0f} mentions/s"
            if f.get("rate_given")
            else f"highest steady rate sustained: {f['rate_per_s']:.0f} mentions/s"
        ),
        f"soak: {f['minutes']:g} min at {f['rate_per_s']:.0f} mentions/s "
        f"(sent at {f['achieved_send_rate_per_s']:.1f}/s), {f['mentions']['soak']} mentions, "
        f"storm mentions {dict(storm_sent)}",
        f"consumer lag (sum over topics, sampled every 5 s): max {lag['max']}, mean "
        f"{lag['mean']}, after the drain {lag['final']}",
        f"event time -> mentions.scored: p50 {scored['p50']:.2f} s, p99 {scored['p99']:.2f} s, "
        f"max {scored['max']:.2f} s (worker histogram: p50 {scored['worker_p50']:.2f} s, "
        f"p99 {scored['worker_p99']:.2f} s)",
        f"event time of the bucket -> alert record: p50 {alert['p50']:.1f} s, p99 "
        f"{alert['p99']:.1f} s over {alert['alert_records']} storm alert records (worker: p50 "
        f"{alert['worker_p50']:.1f} s, p99 {alert['worker_p99']:.1f} s); storm start -> "
        f"opened: {alert['storm_detected_after_s']}",
        f"event time -> scored, p50 per minute of the soak: {f['scored_lag_by_minute_p50_s']}",
        f"worker RSS: {rss['start']:.0f} MB a minute in, {rss['end']:.0f} MB at the end, "
        f"{rss['after_drain']:.0f} MB after the drain ({rss['bytes_per_mention']} B per mention; "
        f"bound {rss['bound']:.0f} MB: start + {RSS_SLACK_MB:.0f} MB + "
        f"{RSS_PER_MENTION_BYTES} B per mention soaked after it)",
        f"mentions sent {f['mentions_sent']}: on mentions.scored {f['on_mentions_scored']}; "
        f"detectors counted {f['detector_counts']['total']:.0f}",
        "",
    ]
    lines += [f"  [{'ok' if good else 'FAILED'}] {check}" for check, good in ok.items()]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
