"""Prometheus metrics of the worker. Label values are bounded: never ids, authors, URLs or text.

``brand`` values come from the brands file only; ``reason`` values from the schema's field names.
"""

from __future__ import annotations

from prometheus_client import Counter, Info

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
BUILD = Info("stormvarsel_build", "Version of the running Stormvarsel worker.")
BUILD.info({"version": __version__})
