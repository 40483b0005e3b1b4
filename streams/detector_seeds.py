"""Brands' detectors carried over when the workers' state starts afresh (``topics grow``,
``topics reset-state``), so that a brand does not need its warm-up again.

The tables' changelogs belong to one partition layout (saved source offsets, and one watermark per
partition shared by its brands), so they cannot be kept when the topics grow. What can be kept is
each brand's detector: its baselines, the tails of its past scores, its storm machines and open
episodes. Before the state topics are deleted, the detectors are rebuilt from the changelogs the
way a restarting worker rebuilds them (saved state plus pending mentions:
:func:`streams.agents.detect_state.rebuild`) and written, one record per brand, to the compacted
topic ``<app id>-detector-seeds``. A worker reads that topic when it starts. A brand with no saved
state continues from its seed when its first mention arrives, on whatever partition that is now;
once its state is saved, the seed is not used again, not even after that state is dropped (another
bucket size; ``streams.agents.detect_state.Seeding``). A seed more than ``MAX_GAP_MS`` older than
the brand's first mention is not used: a brand silent that long starts afresh, and the episodes
its seed left open are ended (``abandoned``). A reset soon after another rebuilds each brand the
way the worker did, from the seeds kept before, so what a brand carried over is not lost; each seed
records the source offsets it covers, so a reset run again after its deletion failed knows its own
seeds.

The brand's firing storm alerts are carried over with it, from the notifier's table: without
them no worker would re-send the alerts of episodes still open, and Alertmanager would report
them resolved once their ``endsAt`` passed (see ``streams.agents.notify.carried_alerts``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from detectors.brand import BrandDetector
from detectors.config import DetectorConfig
from detectors.replay import Carried
from streams.agents import detect_state
from streams.errors import StormvarselError
from streams.kafka_clients import client_config, connect_admin
from streams.log_setup import get_logger
from streams.replay.source import consumer, partitions_of
from streams.settings import Settings
from streams.topics import TopicSpec, ensure_internal_topics, wait_deleted

log = get_logger(__name__)

#: A seed this much older (event time) than its brand's first mention is not used.
MAX_GAP_MS = 7 * 24 * 3600 * 1000
_STALL_S = 30.0


def seeds_topic(app_id: str) -> str:
    return f"{app_id}-detector-seeds"


def _changelog(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def read_table(settings: Settings, topic: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """A compacted topic written the way Faust writes a table's changelog (JSON keys and values,
    an empty value deletes its key), read to its end: the latest value of each key. Empty when
    the topic does not exist."""
    reader = consumer(settings, timeout_s=timeout_s)
    try:
        parts = partitions_of(reader, topic)
        if parts is None:
            return {}
        tps = [TopicPartition(topic, part) for part in parts]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = reader.end_offsets(tps)
        table: dict[str, Any] = {}
        progress = time.monotonic()
        while any(reader.position(tp) < ends[tp] for tp in tps):
            polled = reader.poll(timeout_ms=1000)
            if polled:
                progress = time.monotonic()
            elif time.monotonic() - progress > _STALL_S:
                raise StormvarselError(f"reading {topic} stalled before its end; try again")
            for batch in polled.values():
                for message in batch:
                    if message.key is None:
                        continue
                    key = json.loads(message.key)
                    if message.value is None:
                        table.pop(key, None)
                    else:
                        table[key] = json.loads(message.value)
        return table
    finally:
        reader.close(autocommit=False)


def collect_seeds(
    states: Mapping[str, Any],
    pending: Mapping[str, Any],
    config: DetectorConfig,
    lateness_ms: int,
    kept: Mapping[str, Any] | None = None,
) -> dict[str, BrandDetector]:
    """Every brand's detector as a worker would rebuild it from the two tables, seeded from the
    seeds ``kept`` by an earlier reset as the worker seeded it (a brand with only pending
    mentions since then would otherwise lose its carried baselines). A seed written from these
    very tables (a reset run again after its deletion failed) holds their pending mentions
    already: it goes on from there, as a worker restarted on them does. A brand found on two
    partitions (records read there after a growth by other means) keeps the one that has gone
    further."""
    owned = {int(value["partition"]) for value in [*states.values(), *pending.values()]}
    rebuilt = detect_state.rebuild(
        list(states.items()),
        list(pending.items()),
        owned,
        config,
        lateness_ms,
        seed_function(kept or {}, config),
    )
    seeds: dict[str, BrandDetector] = {}
    for part in sorted(rebuilt):
        for brand, detector in rebuilt[part].replayer.detectors.items():
            best = seeds.get(brand)
            if best is None or _progress(detector) > _progress(best):
                seeds[brand] = detector
    return seeds


def covered(states: Mapping[str, Any], pending: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What each brand's seed holds of these tables, by source partition: the offset of its
    last pending mention there and that mention's fingerprint (``detect_state.fingerprint``).
    Written with the seed: workers restarted on the same tables (a reset whose deletion then
    failed) find their mentions in it, and do not count them again. A partition where the
    brand has saved state on has no mark: the brand is never seeded there."""
    last: dict[str, dict[str, tuple[int, Any]]] = {}
    for record in pending.values():
        brand = str(record["mention"].get("brand"))
        part, offset = str(int(record["partition"])), int(record["offset"])
        mark = last.setdefault(brand, {}).get(part)
        if mark is None or offset > mark[0]:
            last[brand][part] = (offset, record["mention"])
    marks: dict[str, dict[str, Any]] = {}
    for brand, parts in last.items():
        for part, (offset, mention) in parts.items():
            saved = states.get(brand)
            if (
                isinstance(saved, dict)
                and str(saved.get("partition")) == part
                and not saved.get("unsaved")  # a brand never saved is seeded as before
            ):
                continue  # never seeded there
            marks.setdefault(brand, {})[part] = {
                "offset": offset,
                "mention": detect_state.fingerprint(mention),
            }
    return marks


def _progress(detector: BrandDetector) -> tuple[int, int]:
    return (detector.closed_until or 0, detector.observed_total)


@dataclass(frozen=True)
class Kept:
    """What :func:`keep_baselines` wrote: brands' detectors, and firing storm alerts."""

    brands: int
    alerts: int


def firing_alerts(table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The notifier table's firing alerts by brand (its entries as the notifier saved them)."""
    firing: dict[str, dict[str, Any]] = {}
    for brand, entries in table.items():
        if not isinstance(entries, dict):
            continue
        for alert_id, entry in entries.items():
            alert = entry.get("alert") if isinstance(entry, dict) else None
            if isinstance(alert, dict) and alert.get("status") == "firing":
                firing.setdefault(brand, {})[alert_id] = entry
    return firing


def seed_records(
    seeds: Mapping[str, BrandDetector],
    notified: Mapping[str, Any],
    earlier: Mapping[str, Any],
    carried_at: float,
    covers: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The seeds topic's new record per brand: its detector with the source offsets it covers
    (:func:`covered`), and its firing alerts from the notifier's table (``notified``) or, for a
    brand with no entry there yet, the ones an earlier reset carried over (with that reset's
    time). A record replaces the brand's earlier one whole, so those would otherwise be lost,
    and Alertmanager would report the episode resolved at its ``endsAt``."""
    alerts = firing_alerts(notified)
    records: dict[str, dict[str, Any]] = {}
    for brand, detector in seeds.items():
        records[brand] = {"state": detector.to_state()}
        if covers and brand in covers:
            records[brand]["covers"] = covers[brand]
    for brand, entries in alerts.items():
        records.setdefault(brand, {}).update(alerts=entries, carried_at=carried_at)
    for brand, record in records.items():
        before = earlier.get(brand)
        if brand in notified or not isinstance(before, dict) or "alerts" not in before:
            continue
        record.update(alerts=before["alerts"], carried_at=before.get("carried_at"))
    return records


def keep_baselines(settings: Settings, config: DetectorConfig, timeout_s: float = 30.0) -> Kept:
    """Write every brand's detector and firing storm alerts from the workers' tables to the seeds
    topic (created if missing). Nothing to write when the tables are gone already (a second
    reset): the seeds written before stay."""
    app_id = settings.app_id
    states = read_table(settings, _changelog(app_id, "detector-state"), timeout_s)
    pending = read_table(settings, _changelog(app_id, "detector-pending"), timeout_s)
    notified = read_table(settings, _changelog(app_id, "notifier-alerts"), timeout_s)
    alerts = firing_alerts(notified)
    if not states and not pending and not alerts:
        return Kept(0, 0)
    lateness_ms = round(settings.detect_lateness_s * 1000)
    earlier = load_seeds(settings, timeout_s)
    seeds = collect_seeds(states, pending, config, lateness_ms, earlier)
    records = seed_records(seeds, notified, earlier, time.time(), covered(states, pending))
    topic = seeds_topic(app_id)
    spec = TopicSpec(topic, 1, settings.topic_replication, {"cleanup.policy": "compact"})
    ensure_internal_topics(settings, [spec], timeout_s=timeout_s)
    producer = KafkaProducer(
        **client_config(settings, "stormvarsel-seeds"),
        acks="all",
        max_request_size=16 * 1024 * 1024,
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        futures = [
            producer.send(topic, key=json.dumps(brand).encode(), value=json.dumps(value).encode())
            for brand, value in sorted(records.items())
        ]
        producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
    except KafkaError as exc:
        raise StormvarselError(
            f"Kafka did not take the brands' detectors on {topic} ({type(exc).__name__}: {exc}); "
            "nothing was deleted. Try again, or pass --discard-baselines to start every brand "
            "afresh"
        ) from None
    finally:
        producer.close(timeout=5)
    kept = Kept(len(seeds), sum(len(record.get("alerts", {})) for record in records.values()))
    log.info("detect.seeds_written", topic=topic, brands=kept.brands, alerts=kept.alerts)
    return kept


def discard_baselines(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Delete the seeds topic, so every brand starts afresh; whether there was one."""
    topic = seeds_topic(settings.app_id)
    admin = connect_admin(settings, timeout_s=timeout_s)
    try:
        if topic not in set(admin.list_topics()):
            return False
        admin.delete_topics([topic], timeout_ms=int(timeout_s * 1000))
        wait_deleted(admin, [topic], timeout_s)
    finally:
        admin.close()
    log.info("detect.seeds_deleted", topic=topic)
    return True


def load_seeds(settings: Settings, timeout_s: float = 30.0) -> dict[str, Any]:
    """The seeds topic's latest record per brand (empty without one)."""
    return read_table(settings, seeds_topic(settings.app_id), timeout_s)


def seed_function(seeds: Mapping[str, Any], config: DetectorConfig) -> SeedBook | None:
    """What the detect stage asks for a brand new on a partition (see ``Replayer.seed``)."""
    return SeedBook(seeds, config) if seeds else None


class SeedBook:
    """The seeds topic's records as the detect stage uses them: a brand's detector to go on
    with (``Replayer.seed``), and the source offsets each seed holds already
    (``detect_state.CoveringSeed``).

    A seed that cannot be used (silent for over ``MAX_GAP_MS``, or saved under another bucket
    or window size) ends its open episodes with ``abandoned`` events: the brand starts afresh,
    and nothing else would end the alerts carried over with it."""

    def __init__(self, seeds: Mapping[str, Any], config: DetectorConfig) -> None:
        self.seeds = seeds
        self.config = config
        self._usable: dict[str, bool] = {}
        #: Detectors :meth:`covered` restored, handed out by the next call for their brand.
        self._restored: dict[str, BrandDetector] = {}

    def _saved(self, brand: str) -> dict[str, Any] | None:
        saved = self.seeds.get(brand)
        if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
            return None
        return saved

    def __call__(self, brand: str, event_ms: int) -> Carried | None:
        saved = self._saved(brand)
        if saved is None:
            return None
        detector = self._restored.pop(brand, None)
        if detector is None:
            detector = detect_state.restore(brand, saved["state"], self.config)
        closed = detector.closed_until if detector is not None else None
        if closed is not None and event_ms - closed > MAX_GAP_MS:
            log.info("detect.seed_too_old", brand=brand, gap_h=round((event_ms - closed) / 3.6e6))
            detector = None
        if detector is None:
            return Carried(ended=tuple(detect_state.abandon(brand, saved["state"], self.config)))
        log.info("detect.state_seeded", brand=brand, observed=detector.observed_total)
        return Carried(detector)

    def covered(self, brand: str, partition: int) -> tuple[int, str] | None:
        """The offset of the last mention of ``partition`` that ``brand``'s seed holds, and
        that mention's fingerprint (None: none, or a seed that cannot be restored). Written by
        :func:`covered`."""
        saved = self._saved(brand)
        marks = saved.get("covers") if saved is not None else None
        mark = marks.get(str(partition)) if isinstance(marks, dict) else None
        if saved is None or not isinstance(mark, dict):
            return None
        offset, named = mark.get("offset"), mark.get("mention")
        if not isinstance(offset, int) or isinstance(offset, bool) or not isinstance(named, str):
            return None
        if brand not in self._usable:
            restored = detect_state.restore(brand, saved["state"], self.config)
            self._usable[brand] = restored is not None
            if restored is not None:
                self._restored[brand] = restored
        return (offset, named) if self._usable[brand] else None
