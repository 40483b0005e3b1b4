"""Prometheus metrics of the worker. Label values are bounded: never ids, authors, URLs or text."""

from __future__ import annotations

from prometheus_client import Counter, Info

from streams import __version__

MENTIONS = Counter(
    "stormvarsel_mentions",
    "Mentions read from the mentions topic, whatever their outcome.",
)
MENTIONS_ACCEPTED = Counter(
    "stormvarsel_mentions_accepted",
    "Mentions that passed validation.",
)
MENTIONS_REJECTED = Counter(
    "stormvarsel_mentions_rejected",
    "Mentions sent to the dead-letter topic, by machine-readable reason.",
    ["reason"],
)
BUILD = Info("stormvarsel_build", "Version of the running Stormvarsel worker.")
BUILD.info({"version": __version__})
