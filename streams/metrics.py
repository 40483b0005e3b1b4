"""Prometheus metrics of the worker. Label values are bounded: never ids, authors, URLs or text.

``brand`` values come from the brands file only; ``reason`` values from the schema's field names.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from streams import __version__

MENTIONS = Counter(
    "stormvarsel_mentions",
    "Records read from the mentions topic, whatever their outcome.",
)
MENTIONS_ACCEPTED = Counter(
    "stormvarsel_mentions_accepted",
    "Valid mentions passed on, once per matched brand.",
    ["brand"],
)
MENTIONS_REJECTED = Counter(
    "stormvarsel_mentions_rejected",
    "Records sent to the dead-letter topic, by the stage that refused them (validate, score, "
    "detect) and machine-readable reason.",
    ["stage", "reason"],
)
MENTIONS_DUPLICATE = Counter(
    "stormvarsel_mentions_duplicate",
    "Mentions dropped because their id was already seen within the dedup window.",
)
MENTIONS_UNMATCHED = Counter(
    "stormvarsel_mentions_unmatched",
    "Valid mentions that name no configured brand (not scored).",
)
HTTP_INGEST_REQUESTS = Counter(
    "stormvarsel_http_ingest_requests",
    "POST /mentions requests, by HTTP status code.",
    ["code"],
)
MENTIONS_SCORED = Counter(
    "stormvarsel_mentions_scored",
    "Mentions scored, by sentiment label and language (nb, nn, sv, da, en, other, unknown).",
    ["sentiment", "language"],
)
SCORING_BATCH_SECONDS = Histogram(
    "stormvarsel_scoring_batch_duration_seconds",
    "Time to score one micro-batch (language identification and sentiment).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SCORING_BATCH_SIZE = Histogram(
    "stormvarsel_scoring_batch_size",
    "Mentions per scoring micro-batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
SENTIMENT_TRUNCATED = Counter(
    "stormvarsel_sentiment_truncated",
    "Texts longer than STORMVARSEL_SENTIMENT_MAX_LENGTH tokens, scored on their first and last "
    "halves of that budget (the middle is not read), by scoring backend.",
    ["backend"],
)
SCORER_INFO = Info("stormvarsel_scorer", "The sentiment model the worker scores with.")
STORM_EPISODE_EVENTS = Counter(
    "stormvarsel_episode_events",
    "Alert records emitted to the alerts topic: storm and buzz episode changes, by brand, kind "
    "(storm, buzz), type (opened, escalated, de-escalated, resolved, abandoned) and severity.",
    ["brand", "kind", "type", "severity"],
)
BUCKETS_CLOSED = Counter(
    "stormvarsel_buckets_closed",
    "Per-brand event-time buckets closed by the detectors.",
)
LATE_MENTIONS = Counter(
    "stormvarsel_late_mentions",
    "Scored mentions that arrived after their bucket had closed (counted, not added).",
)
MENTIONS_DATED_AHEAD = Counter(
    "stormvarsel_mentions_dated_ahead",
    "Scored mentions the detectors dropped because they are dated more than 7 days ahead of "
    "their arrival (or, without an arrival stamp, of the stream's clock). Validation refuses "
    "more than an hour of skew, so these come from a wrong clock upstream or from records "
    "written to mentions.scored directly.",
)
DETECT_REDELIVERED = Counter(
    "stormvarsel_detect_redelivered",
    "Scored mentions Kafka delivered again after a restart, already in the detectors (skipped).",
)
DETECT_TIMER_HELD = Counter(
    "stormvarsel_detect_timer_held",
    "Times the detect stage's wall-clock timer left a quiet partition's buckets open because "
    "the stages before it had not caught up (a backlog, a stall, or Kafka unreachable).",
)
DETECT_TIMER_HOLDING = Gauge(
    "stormvarsel_detect_timer_holding",
    "1 while the detect stage's wall-clock timer leaves quiet partitions' buckets open because "
    "the stages before it have not caught up; set at each tick, so it stays true between ticks "
    "however long STORMVARSEL_DETECT_IDLE_CLOSE_S makes them apart.",
)
DETECT_DUPLICATES = Counter(
    "stormvarsel_detect_duplicates",
    "Scored mentions already counted by the brand's detector, written again by a validation or "
    "scoring stage that was redone after a crash (dropped).",
)
DETECTOR_STATES_RETUNED = Counter(
    "stormvarsel_detector_states_retuned",
    "Brand detector states saved under another detector configuration of the same layout, "
    "continued under the current one at a rebuild (start-up or rebalance).",
)
DETECTOR_STATES_DISCARDED = Counter(
    "stormvarsel_detector_states_discarded",
    "Brand detector states that could not continue under the current detector configuration "
    "(other bucket or window sizes) and were started afresh: the brand warms up again.",
)
DETECTOR_STATES_UNSAVED = Counter(
    "stormvarsel_detector_states_unsaved",
    "Saves of a brand's detector state left out because the state was larger than a Kafka "
    "record may be; the brand's mentions since its last save stay pending and are replayed "
    "after a restart.",
)
TABLE_WRITES_FAILED = Counter(
    "stormvarsel_table_writes_failed",
    "Writes to a table's changelog that Kafka refused or did not acknowledge (a record over the "
    "changelog topic's max.message.bytes, a delivery timeout, no authorisation); the worker "
    "stops without committing the records they came from, which are read again after it "
    "restarts.",
    ["table"],
)
NOTIFY_TABLE_FITTED = Counter(
    "stormvarsel_notify_table_fitted",
    "Parts of a brand's notifier-alerts entry left out so that it fits a Kafka record: "
    "compacted (an alert stored without its top posts), dropped (a resolved alert no longer "
    "remembered), unsaved (the entry still did not fit and was not written).",
    ["action"],
)
ALERTMANAGER_POSTS = Counter(
    "stormvarsel_alertmanager_posts",
    "Posts of the current storm alerts to Alertmanager, by result (ok; rejected: Alertmanager "
    "refused some alerts of the post and stored the others; error: not delivered everywhere).",
    ["result"],
)
#: every ``result`` of ALERTMANAGER_POSTS, created at 0 so increase() sees the first of each
ALERTMANAGER_POST_RESULTS = ("ok", "rejected", "error")
ALERTMANAGER_RETRIES = Counter(
    "stormvarsel_alertmanager_retries",
    "Posts to Alertmanager made again after a failed one (each back-off step counts once).",
)
ALERTMANAGER_UP = Gauge(
    "stormvarsel_alertmanager_up",
    "1 if the last post to this Alertmanager reached it, else 0 (one series per configured URL; "
    "none when paging is off).",
    ["alertmanager"],
)
NOTIFY_TRACKED = Gauge(
    "stormvarsel_notify_alerts",
    "Storm alerts the notifier keeps sending to Alertmanager, by status (firing, resolved).",
    ["status"],
)
NOTIFY_SKIPPED = Counter(
    "stormvarsel_notify_skipped",
    "Alert records not sent to Alertmanager, by reason (buzz, stale, superseded, unreadable).",
    ["reason"],
)
NOTIFY_SKIP_REASONS = ("buzz", "stale", "superseded", "unreadable")
#: The reasons the score and detect stages dead-letter a record for (any one is a pipeline
#: fault, and the StormvarselStageDeadLetters alert needs their series to exist at 0).
STAGE_REJECTION_REASONS = {
    # The reasons that say the pipeline failed, not the input: alerted on however few
    # (StormvarselStageDeadLetters), so they are exported at 0 from the start. Validation's
    # too_large_for_topic, timestamp_outside_topic_range and refused_by_kafka: mentions.valid did
    # not take a valid mention.
    "validate": (
        "internal_error",
        "too_large_for_topic",
        "timestamp_outside_topic_range",
        "refused_by_kafka",
    ),
    # too_large_for_topic, timestamp_outside_topic_range and refused_by_kafka: mentions.scored
    # did not take the scored record (streams/forwarding.py).
    "score": (
        "invalid_json",
        "not_utf8",
        "internal_error",
        "too_large_for_topic",
        "timestamp_outside_topic_range",
        "refused_by_kafka",
    ),
    "detect": ("unreadable_scored", "internal_error"),
}
EVENT_LAG_SECONDS = Histogram(
    "stormvarsel_event_lag_seconds",
    "Wall-clock time now minus the mention's event time, when the mention leaves a stage "
    "(scored: written to mentions.scored; alerted: its bucket produced an alert record).",
    ["stage"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400),
)
KAFKA_UP = Gauge(
    "stormvarsel_kafka_up",
    "1 if the worker's last check of the Kafka cluster (the consumer-lag probe, every 15 s) "
    "succeeded, 0 while the brokers cannot be reached.",
)
KAFKA_CHECKS_FAILED = Counter(
    "stormvarsel_kafka_checks_failed",
    "Checks of the Kafka cluster (the consumer-lag probe) that failed: brokers down or "
    "unreachable. The worker keeps running and resumes by itself when they are back.",
)
CONSUMER_LAG = Gauge(
    "stormvarsel_consumer_lag_records",
    "Records in a source topic partition this worker owns that its consumer group has not "
    "committed yet (end offset minus committed offset).",
    ["topic", "partition"],
)

# Per-brand figures of the last closed event-time bucket. ``brand`` is always a configured brand.
BRAND_MENTIONS = Gauge(
    "stormvarsel_brand_bucket_mentions",
    "Mentions of the brand in its last closed event-time bucket.",
    ["brand"],
)
BRAND_EXPECTED = Gauge(
    "stormvarsel_brand_bucket_expected_mentions",
    "Mentions the brand's seasonal baseline expected in that bucket.",
    ["brand"],
)
BRAND_NEGATIVE = Gauge(
    "stormvarsel_brand_negative_ratio",
    "Share of negative mentions in the brand's last closed bucket (NaN when it was empty).",
    ["brand"],
)
BRAND_NEGATIVE_BASELINE = Gauge(
    "stormvarsel_brand_negative_baseline_ratio",
    "The negative share the brand's baseline expected in that bucket.",
    ["brand"],
)
BRAND_VOLUME_SCORE = Gauge(
    "stormvarsel_brand_volume_score",
    "Volume spike score of the last closed bucket (1 = the watch threshold).",
    ["brand"],
)
BRAND_NEGATIVE_SCORE = Gauge(
    "stormvarsel_brand_negative_score",
    "Negative spike score of the last closed bucket (1 = the watch threshold).",
    ["brand"],
)
BRAND_STORM_LEVEL = Gauge(
    "stormvarsel_brand_storm_level",
    "Storm level after the last closed bucket: 0 normal, 1 watch, 2 warning, 3 critical.",
    ["brand"],
)
BRAND_BUZZ_LEVEL = Gauge(
    "stormvarsel_brand_buzz_level",
    "Positive-buzz level after the last closed bucket: 0 normal, 1 watch, 2 warning, 3 critical.",
    ["brand"],
)
BRAND_BUCKET_END = Gauge(
    "stormvarsel_brand_bucket_end_timestamp_seconds",
    "Event time at which the brand's last closed bucket ended (Unix seconds).",
    ["brand"],
)
BRAND_COUNTED = Gauge(
    "stormvarsel_brand_mentions_counted",
    "Mentions of the brand its detector has counted (in a bucket or as late) since its state "
    "began. Kept in the saved detector state, so unlike a counter it carries over restarts and "
    "rebalances: it equals the valid mentions of the brand, each counted once.",
    ["brand"],
)
BUCKET_SECONDS = Gauge(
    "stormvarsel_detector_bucket_seconds",
    "Width of the detectors' event-time buckets.",
)
BRAND_GAUGES = (
    BRAND_MENTIONS,
    BRAND_EXPECTED,
    BRAND_NEGATIVE,
    BRAND_NEGATIVE_BASELINE,
    BRAND_VOLUME_SCORE,
    BRAND_NEGATIVE_SCORE,
    BRAND_STORM_LEVEL,
    BRAND_BUZZ_LEVEL,
    BRAND_BUCKET_END,
    BRAND_COUNTED,
)
LEVEL_VALUES = {"normal": 0, "watch": 1, "warning": 2, "critical": 3}

BUILD = Info("stormvarsel_build", "Version of the running Stormvarsel worker.")
BUILD.info({"version": __version__, "python": platform.python_version()})


#: Brand ids of the brands file; per-brand series exist only for these (see brand_label).
_CONFIGURED: set[str] = set()


def brand_label(brand: str) -> str | None:
    """``brand`` as a label value, or None when it is not in the brands file.

    Validation only passes configured brands on, but anyone who can write ``mentions.scored``
    could name any brand; series must stay bounded all the same. Without a brands file (tests of
    the detection stage alone) every brand is its own label.
    """
    return brand if not _CONFIGURED or brand in _CONFIGURED else None


def set_brand_gauge(gauge: Gauge, brand: str, value: float) -> None:
    label = brand_label(brand)
    if label is not None:
        gauge.labels(brand=label).set(value)


def record_bucket(summary: dict[str, Any]) -> None:
    """Publish one closed bucket (a ``BucketSummary.to_dict()``) as the brand's gauges."""
    label = brand_label(str(summary["brand"]))
    if label is None:
        return
    brand = label
    volume = int(summary["volume"])
    BRAND_MENTIONS.labels(brand=brand).set(volume)
    BRAND_EXPECTED.labels(brand=brand).set(float(summary["expected_volume"]))
    share = int(summary["negative"]) / volume if volume else math.nan
    BRAND_NEGATIVE.labels(brand=brand).set(share)
    BRAND_NEGATIVE_BASELINE.labels(brand=brand).set(float(summary["negative_share_baseline"]))
    BRAND_VOLUME_SCORE.labels(brand=brand).set(float(summary["volume_score"]))
    BRAND_NEGATIVE_SCORE.labels(brand=brand).set(float(summary["negative_score"]))
    BRAND_STORM_LEVEL.labels(brand=brand).set(LEVEL_VALUES[str(summary["storm_level"])])
    BRAND_BUZZ_LEVEL.labels(brand=brand).set(LEVEL_VALUES[str(summary["buzz_level"])])
    BRAND_BUCKET_END.labels(brand=brand).set(int(summary["end_ms"]) / 1000)


def forget_brands(keep: Iterable[str] = ()) -> None:
    """Drop the per-brand gauges of brands this worker no longer owns (after a rebalance), so a
    stale value never stands in for a brand another worker now watches."""
    kept = set(keep)
    for gauge in BRAND_GAUGES:
        for labels in list(gauge._metrics):  # prometheus_client has no public label listing
            if labels[0] not in kept:
                gauge.remove(*labels)


def initialise(brands: Iterable[str], bucket_seconds: float) -> None:
    """Create the label sets known up front, so rates and dashboards start from zero."""
    BUCKET_SECONDS.set(bucket_seconds)
    _CONFIGURED.clear()
    _CONFIGURED.update(brands)
    for brand in _CONFIGURED:
        MENTIONS_ACCEPTED.labels(brand=brand)
        for kind, severities in (("storm", LEVEL_VALUES), ("buzz", LEVEL_VALUES)):
            for severity in list(severities)[1:]:
                for change in ("opened", "escalated", "de-escalated", "resolved", "abandoned"):
                    STORM_EPISODE_EVENTS.labels(
                        brand=brand, kind=kind, type=change, severity=severity
                    )
    for result in ALERTMANAGER_POST_RESULTS:
        ALERTMANAGER_POSTS.labels(result=result)
    for stage, reasons in STAGE_REJECTION_REASONS.items():
        for reason in reasons:
            MENTIONS_REJECTED.labels(stage=stage, reason=reason)
    for reason in NOTIFY_SKIP_REASONS:
        NOTIFY_SKIPPED.labels(reason=reason)
    for action in ("compacted", "dropped", "unsaved"):
        NOTIFY_TABLE_FITTED.labels(action=action)
    for backend in ("e5", "transformers"):
        SENTIMENT_TRUNCATED.labels(backend=backend)
    for stage in ("scored", "alerted"):
        EVENT_LAG_SECONDS.labels(stage=stage)
