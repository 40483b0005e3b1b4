"""Episodes told as timelines, from the alert records a run produced (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.replay.times import parse_iso_ms

SEVERITY_RANK = {"normal": 0, "watch": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True)
class Change:
    """One alert: the episode opened, escalated, de-escalated or resolved."""

    at_ms: int
    change: str
    severity: str


@dataclass(frozen=True)
class SuggestedStatement:
    """A holding-statement draft as an alert suggested it."""

    at_ms: int  # the alert that first suggested this text
    severity: str
    lang: str
    text: str
    label: str


@dataclass
class EpisodeTimeline:
    """One storm or buzz of one brand, from its first abnormal bucket to its resolution."""

    brand: str
    brand_name: str
    kind: str
    alert_id: str
    first_abnormal_ms: int
    start_ms: int
    changes: list[Change] = field(default_factory=list)
    peak_ms: int | None = None
    peak_severity: str = "watch"
    end_ms: int | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    peak_figures: dict[str, Any] = field(default_factory=dict)
    drivers: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    statements: list[SuggestedStatement] = field(default_factory=list)

    @property
    def began_before_range(self) -> bool:
        """Its opening alert lies before the replayed range (it was open when the range began)."""
        return not self.changes or self.changes[0].change != "opened"

    @property
    def first_alert_ms(self) -> int | None:
        """When the episode was first alerted (its "opened" alert), if inside the range."""
        return None if self.began_before_range else self.changes[0].at_ms

    @property
    def time_to_alert_ms(self) -> int | None:
        """From the start of the first abnormal bucket to the first alert."""
        first = self.first_alert_ms
        return None if first is None else first - self.first_abnormal_ms

    def first_at(self, severity: str) -> int | None:
        """When the episode first reached ``severity`` or worse (opened or escalated)."""
        wanted = SEVERITY_RANK[severity]
        for change in self.changes:
            if change.change in ("opened", "escalated") and (
                SEVERITY_RANK.get(change.severity, 0) >= wanted
            ):
                return change.at_ms
        return None

    @property
    def resolved(self) -> bool:
        return self.end_ms is not None

    def overlaps(self, other: EpisodeTimeline, open_until_ms: int) -> bool:
        """Whether two episodes of the same brand and kind cover some common time."""
        mine = (self.first_abnormal_ms, self.end_ms if self.end_ms is not None else open_until_ms)
        theirs = (
            other.first_abnormal_ms,
            other.end_ms if other.end_ms is not None else open_until_ms,
        )
        return mine[0] <= theirs[1] and theirs[0] <= mine[1]


def _first_abnormal(alert: dict[str, Any]) -> int:
    text = alert.get("first_abnormal")
    if isinstance(text, str) and text:
        return parse_iso_ms(text)
    return int(alert.get("start_ms") or alert["changed_at_ms"])


def episodes(alerts: list[dict[str, Any]]) -> list[EpisodeTimeline]:
    """Alert records grouped by episode (alert id), in the order of their first abnormal bucket."""
    found: dict[str, EpisodeTimeline] = {}
    for alert in alerts:
        alert_id = str(alert["alert_id"])
        episode = found.get(alert_id)
        if episode is None:
            episode = found[alert_id] = EpisodeTimeline(
                brand=str(alert["brand"]),
                brand_name=str(alert.get("brand_name") or alert["brand"]),
                kind=str(alert["kind"]),
                alert_id=alert_id,
                first_abnormal_ms=_first_abnormal(alert),
                start_ms=int(alert.get("start_ms") or alert["changed_at_ms"]),
            )
        change = Change(int(alert["changed_at_ms"]), str(alert["change"]), str(alert["severity"]))
        episode.changes.append(change)
        if alert.get("peak_ms") is not None:
            episode.peak_ms = int(alert["peak_ms"])
        episode.peak_severity = str(alert.get("peak_severity") or change.severity)
        if change.change in ("resolved", "abandoned"):
            episode.end_ms = int(alert.get("end_ms") or change.at_ms)
        episode.figures = dict(alert.get("figures") or {})
        episode.peak_figures = dict(alert.get("peak_figures") or {})
        episode.drivers = dict(alert.get("drivers") or {})
        if alert.get("actions"):
            episode.actions = [str(a) for a in alert["actions"]]
        known = {(s.lang, s.text) for s in episode.statements}
        for statement in alert.get("statements") or []:
            key = (str(statement.get("lang")), str(statement.get("text")))
            if key in known:
                continue
            known.add(key)
            episode.statements.append(
                SuggestedStatement(
                    at_ms=change.at_ms,
                    severity=str(statement.get("severity") or change.severity),
                    lang=key[0],
                    text=key[1],
                    label=str(statement.get("label") or ""),
                )
            )
    return sorted(found.values(), key=lambda e: (e.first_abnormal_ms, e.brand, e.kind))
