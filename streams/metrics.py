"""Prometheus metrics of the worker. Label values are bounded: never ids, authors, URLs or text.

``brand`` values come from the brands file only; ``reason`` values from the schema's field names.
"""

from __future__ import annotations

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
    "Records sent to the dead-letter topic, by machine-readable reason.",
    ["reason"],
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
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
SCORER_INFO = Info("stormvarsel_scorer", "The sentiment model the worker scores with.")
STORM_EPISODE_EVENTS = Counter(
    "stormvarsel_episode_events",
    "Storm and buzz episode changes emitted to the alerts topic, by type.",
    ["type"],
)
BUCKETS_CLOSED = Counter(
    "stormvarsel_buckets_closed",
    "Per-brand event-time buckets closed by the detectors.",
)
LATE_MENTIONS = Counter(
    "stormvarsel_late_mentions",
    "Scored mentions that arrived after their bucket had closed (counted, not added).",
)
DETECT_REDELIVERED = Counter(
    "stormvarsel_detect_redelivered",
    "Scored mentions Kafka delivered again after a restart, already in the detectors (skipped).",
)
ALERTMANAGER_POSTS = Counter(
    "stormvarsel_alertmanager_posts",
    "Posts of the current storm alerts to Alertmanager, by result (ok, error).",
    ["result"],
)
ALERTMANAGER_UP = Gauge(
    "stormvarsel_alertmanager_up",
    "1 if the last post to every configured Alertmanager succeeded, else 0.",
)
NOTIFY_TRACKED = Gauge(
    "stormvarsel_notify_alerts",
    "Storm alerts the notifier keeps sending to Alertmanager, by status (firing, resolved).",
    ["status"],
)
NOTIFY_SKIPPED = Counter(
    "stormvarsel_notify_skipped",
    "Alert records not sent to Alertmanager, by reason (buzz, stale, unreadable).",
    ["reason"],
)
BUILD = Info("stormvarsel_build", "Version of the running Stormvarsel worker.")
BUILD.info({"version": __version__})
