"""Whether the detect stage's tables were written from the topic it reads now.

The tables hold source offsets: the highest one each brand's saved state covers, and the
pending mentions' own. They are named after the application id only, so a worker whose
``STORMVARSEL_TOPIC_PREFIX`` changed, or whose ``mentions.scored`` was deleted and created again,
restores tables of another topic. Counting on would be silently wrong: every new record at or
below the old offsets would be taken for one counted already (skipped) or one a saved state
holds (only the watermark moves), so brands' buckets closed empty, storms "resolved" and the
baselines learnt zeros until the new topic's offsets passed the old ones. The stage refuses that
instead, naming what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.agents.detect_state import PartitionState

ADVICE = (
    "Counting on would take its new mentions for ones counted already. Run `stormvarsel topics "
    "reset-state` (brands keep their baselines), or point the worker back at the topic the "
    "tables were written from (STORMVARSEL_TOPIC_PREFIX)."
)


def foreign_tables(
    topic: str,
    saved: Iterable[tuple[str, Any]],
    partitions: Mapping[int, PartitionState],
    ends: Mapping[int, int],
) -> str | None:
    """Why the rebuilt ``partitions`` cannot be of ``topic`` as it is now, or None.

    ``saved``: the states table's entries (those saved before the topic was recorded have no
    name to compare); ``ends``: each partition's log end offset, which never goes back while
    the topic exists, so tables holding an offset at or past it come from another topic."""
    for brand, value in saved:
        if not isinstance(value, dict) or int(value.get("partition", -1)) not in partitions:
            continue
        named = value.get("topic")
        if isinstance(named, str) and named != topic:
            return (
                f"the detect stage's tables were written reading {named} (brand {brand!r}), "
                f"and the worker now reads {topic}. {ADVICE}"
            )
    for part, state in sorted(partitions.items()):
        end = ends.get(part)
        highest = max([state.high_offset, *state.saved_offset.values()])
        if end is not None and highest >= end:
            return (
                f"the detect stage's tables hold mentions of {topic}[{part}] up to offset "
                f"{highest}, but that partition ends at offset {end}: the topic was deleted "
                f"and created again since they were written. {ADVICE}"
            )
    return None
