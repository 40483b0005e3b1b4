"""Keeping a brand's ``notifier-alerts`` entry within one Kafka record.

The notifier writes all of a brand's tracked storm alerts as one table value, and keeps a
resolved one for a day (``notify.keep_s``). Each alert carries its top posts, whose ids, links
and texts a platform may fill with up to kilobytes of emoji, which JSON escapes at 12 bytes
each: a reviewer's seven storms in a day made one brand's value 1.13 MB, and the producer's
refusal of the changelog record stopped the worker, on every restart, as the alert records were
read again. :func:`fit` makes the value fit, giving up the least useful parts first:

1. the top posts of resolved alerts (re-sent for one TTL, no one reads their evidence),
2. resolved alerts, oldest change first (they only supersede a redelivered older record),
3. the top posts of firing alerts, oldest change first (a restarted worker re-sends them
   without their posts; the running worker keeps them whole in memory).

If it still does not fit the value is not written (the table keeps the brand's last value).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams import encoded_values
from streams.topic_limit import CHANGELOG_VALUE_MAX_BYTES


@dataclass
class Fitted:
    """A brand's table value made to fit (``value`` None: it cannot)."""

    value: dict[str, dict[str, Any]] | None
    size: int
    #: Alert ids whose stored copy lost its top posts.
    compacted: list[str] = field(default_factory=list)
    #: Resolved alert ids left out.
    dropped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.compacted or self.dropped) or self.value is None


def encoded_size(value: Any) -> int:
    """The value's size as Faust's JSON codec writes it (compact, non-ASCII escaped)."""
    return len(encoded_values.dumps(value))


def fit(entries: Mapping[str, Mapping[str, Any]], limit: int = CHANGELOG_VALUE_MAX_BYTES) -> Fitted:
    """``entries`` (alert id: ``asdict(Tracked)``), or as much of them as fits in ``limit``."""
    value: dict[str, dict[str, Any]] = {key: dict(entry) for key, entry in entries.items()}
    fitted = Fitted(value, encoded_size(value))
    if fitted.size <= limit:
        return fitted
    value = copy.deepcopy(value)  # trimmed here, not in the caller's alerts
    fitted.value = value

    def oldest(resolved: bool) -> list[str]:
        keys = [k for k, e in value.items() if (_status(e) == "resolved") is resolved]
        return sorted(keys, key=lambda k: (float(value[k].get("changed_wall") or 0.0), k))

    steps: list[tuple[str, list[str]]] = [
        ("compact", oldest(resolved=True)),
        ("drop", oldest(resolved=True)),
        ("compact", oldest(resolved=False)),
    ]
    for action, keys in steps:
        for key in keys:
            if action == "drop":
                del value[key]
                fitted.dropped.append(key)
                fitted.compacted = [k for k in fitted.compacted if k != key]
            elif _drop_posts(value[key]):
                fitted.compacted.append(key)
            else:
                continue
            fitted.size = encoded_size(value)
            if fitted.size <= limit:
                return fitted
    fitted.value = None
    return fitted


def _status(entry: Mapping[str, Any]) -> str | None:
    alert = entry.get("alert")
    return alert.get("status") if isinstance(alert, Mapping) else None


def _drop_posts(entry: dict[str, Any]) -> bool:
    """Empty the stored alert's top posts; False if it had none."""
    drivers = (entry.get("alert") or {}).get("drivers")
    if not isinstance(drivers, dict) or not drivers.get("top_posts"):
        return False
    drivers["top_posts"] = []
    return True
