"""The alert record published on the ``alerts`` topic for every episode change.

Built only from the episode event and the brand's voice (no clock, no randomness), so a replay of
the same mentions produces byte-identical alerts. Its id is the episode id, derived from (brand,
kind, start): every change of one episode updates one alert.
"""

from __future__ import annotations

from typing import Any

from detectors.alerting.actions import PUBLIC, suggested_actions
from detectors.alerting.statements import holding_statements
from detectors.alerting.voice import BrandVoice

ALERT_SCHEMA = "stormvarsel.alert/1"
TOP_POSTS = 5
#: Changes after which an episode is over for Alertmanager: ``abandoned`` means the detector
#: that followed it was reset, not that it calmed down (the summary and actions say so).
ENDED = frozenset({"resolved", "abandoned"})


def _top_posts(drivers: dict[str, Any]) -> list[dict[str, Any]]:
    """Posts with the most reach, then the most engagement, without repeats."""
    seen: set[str] = set()
    out = []
    for post in list(drivers.get("top_posts_by_reach", [])) + list(
        drivers.get("top_posts_by_engagement", [])
    ):
        key = str(post.get("id"))
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {
                k: post.get(k)
                for k in ("id", "url", "platform", "lang", "reach", "engagement", "sentiment")
            }
            | {"text": post.get("text")}
        )
    return out[:TOP_POSTS]


def alert_drivers(drivers: dict[str, Any]) -> dict[str, Any]:
    def terms(kind: str) -> list[dict[str, Any]]:
        return [dict(t) for t in drivers.get(kind, [])]

    return {
        "terms": terms("phrases") + terms("words"),
        "hashtags": terms("hashtags"),
        "top_posts": _top_posts(drivers),
        "languages": dict(drivers.get("languages") or {}),
        "platforms": dict(drivers.get("platforms") or {}),
    }


def draft_severity(severity: str, peak_severity: str | None) -> str:
    """The severity of an open storm's drafts: a storm that calmed to watch after a warning or
    critical keeps warning drafts, which say when the next update comes (the watch drafts
    acknowledge a storm for the first time and promise no update; posted as the update the
    brand's holding statement promised, one would drop that promise)."""
    return "warning" if severity == "watch" and peak_severity in PUBLIC else severity


def build_alert(event: dict[str, Any], voice: BrandVoice) -> dict[str, Any]:
    """The alert for one episode event (``EpisodeEvent.to_dict()``)."""
    episode = event["episode"]
    change = str(event["type"])
    kind = str(episode["kind"])
    severity = str(episode["severity"])
    drivers = episode.get("drivers") or {}
    ended = change in ENDED
    peak = episode.get("peak_severity")
    peak_severity = peak if isinstance(peak, str) else None
    drafts_at = draft_severity(severity, peak_severity)
    statements = (
        [s.to_dict() for s in holding_statements(voice, drafts_at, drivers)]
        if kind == "storm" and not ended
        else []
    )
    return {
        "schema": ALERT_SCHEMA,
        "alert_id": episode["episode_id"],
        "brand": voice.brand_id,
        "brand_name": voice.name,
        "kind": kind,
        "change": change,
        "status": "resolved" if ended else "firing",
        "severity": severity,
        "peak_severity": episode.get("peak_severity"),
        "changed_at": event["at"],
        "changed_at_ms": event["at_ms"],
        "start": episode.get("start"),
        "start_ms": episode.get("start_ms"),
        "first_abnormal": episode.get("first_abnormal"),
        "peak": episode.get("peak"),
        "peak_ms": episode.get("peak_ms"),
        "end": episode.get("end"),
        "end_ms": episode.get("end_ms"),
        "figures": episode.get("figures") or {},
        "peak_figures": episode.get("peak_figures") or {},
        "escalations": list(episode.get("escalations") or []),
        "drivers": alert_drivers(drivers),
        "actions": suggested_actions(voice, kind, change, severity, drivers, peak_severity),
        "statements": statements,
        "oncall": {"team": voice.team, "escalation": voice.escalation},
        "timezone": voice.timezone,
    }
