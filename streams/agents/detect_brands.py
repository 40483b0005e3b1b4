"""Brands the detect stage's tables hold but the brands file no longer names.

A brand removed from the brands file, or whose id changed (an id derived from the name changes
with the name), gets no more mentions: validation refuses them as ``unknown_brand``. Its
detector goes on closing empty buckets, so an open storm resolves after its cool-down as if the
posts had calmed down. After each rebuild the stage names such brands in an error, so that the
on-call engineer knows why, and how to keep a renamed brand's history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from streams.agents.detect_state import PartitionState
from streams.log_setup import get_logger

log = get_logger(__name__)

HINT = (
    "it gets no more mentions (validation refuses them as unknown_brand), and an open storm of "
    "it will resolve after its cool-down as if the posts had calmed. If it was renamed, give "
    "it its old id in the brands file (`id:`) to keep its history; an id derived from the name "
    "changes with the name"
)


def unfollowed(partitions: Mapping[int, PartitionState], followed: Collection[str]) -> list[str]:
    """The rebuilt brands not in ``followed`` (the brands file's ids), each named in an error
    with its open episodes."""
    found: list[str] = []
    for part, state in sorted(partitions.items()):
        for brand, detector in sorted(state.replayer.detectors.items()):
            if brand in followed:
                continue
            found.append(brand)
            log.error(
                "detect.brand_not_followed",
                brand=brand,
                partition=part,
                open_episodes=sorted(detector.episodes),
                hint=f"the brands file does not name {brand!r}: {HINT}",
            )
    return found
