"""Readable texts of an alert for a pager, Slack or e-mail: summary, description, drafts, drivers.

Post texts from the public are evidence, not statements: they are shown shortened, on one line,
with the characters that chat tools read as markup or mentions (``<``, ``>``, backticks) replaced,
so a post cannot ping a channel or break a notification.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_NEUTRALISE = str.maketrans({"<": "\u2039", ">": "\u203a", "`": "'", "\\": "/"})


def safe_text(text: str | None, limit: int = 160) -> str:
    """One line of untrusted text, without control characters or markup, at most ``limit``."""
    cleaned = "".join(
        " " if unicodedata.category(ch).startswith("C") else ch for ch in str(text or "")
    )
    line = " ".join(cleaned.translate(_NEUTRALISE).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def _percent(value: Any) -> str:
    return f"{100 * float(value or 0):.0f}%"


def _number(value: Any) -> str:
    number = float(value or 0)
    return f"{number:,.0f}" if number >= 10 or number == int(number) else f"{number:.1f}"


def _mix(mix: dict[str, Any]) -> str:
    ranked = sorted(mix.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    return ", ".join(f"{safe_text(k, 20)} {_percent(v)}" for k, v in ranked) or "none"


def _hhmm(iso: str | None) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "?"


def summary(alert: dict[str, Any]) -> str:
    fig = alert.get("figures") or {}
    volume, share = fig.get("volume") or {}, fig.get("negative_share") or {}
    minutes = _number(fig.get("window_minutes", 60))
    state = "resolved" if alert["status"] == "resolved" else alert["severity"]
    return (
        f"{safe_text(alert['brand_name'], 80)}: {alert['kind']} {state}: "
        f"{_number(volume.get('now'))} posts in {minutes} min (usual "
        f"{_number(volume.get('baseline'))}), {_percent(share.get('now'))} negative (usual "
        f"{_percent(share.get('baseline'))})"
    )


def issue_terms(alert: dict[str, Any], limit: int = 6) -> list[str]:
    drivers = alert.get("drivers") or {}
    terms = [safe_text(t.get("term"), 40) for t in drivers.get("terms", [])]
    tags = [safe_text(t.get("term"), 40) for t in drivers.get("hashtags", [])]
    return list(dict.fromkeys(terms[:limit] + tags[:3]))


def description(alert: dict[str, Any]) -> str:
    fig = alert.get("figures") or {}
    reach = fig.get("negative_reach") or {}
    lines = [
        f"Change: {alert['change']} at {_hhmm(alert.get('changed_at'))}. Started "
        f"{_hhmm(alert.get('start'))} (first signs {_hhmm(alert.get('first_abnormal'))}), "
        f"peak {alert.get('peak_severity')} at {_hhmm(alert.get('peak'))}"
        + (f", ended {_hhmm(alert.get('end'))}." if alert.get("end") else "."),
        f"Negative reach: {_number(reach.get('now'))} followers (usual "
        f"{_number(reach.get('baseline'))}).",
        f"Talked about: {', '.join(issue_terms(alert)) or 'no distinctive terms yet'}.",
        f"Languages: {_mix((alert.get('drivers') or {}).get('languages') or {})}. "
        f"Platforms: {_mix((alert.get('drivers') or {}).get('platforms') or {})}.",
    ]
    actions = alert.get("actions") or []
    if actions:
        lines.append("Suggested actions:")
        lines += [f"- {a}" for a in actions]
    return "\n".join(lines)


def statements_text(alert: dict[str, Any]) -> str:
    """All drafts, each under its draft label, in the order of the storm's language mix."""
    blocks = [
        f"[{s['label']}] ({s['lang']}, {s['tone']})\n{s['text']}"
        for s in alert.get("statements") or []
    ]
    return "\n\n".join(blocks)


def drivers_text(alert: dict[str, Any]) -> str:
    drivers = alert.get("drivers") or {}
    lines = []
    terms = [safe_text(t.get("term"), 40) for t in drivers.get("terms", [])][:10]
    if terms:
        lines.append("Terms: " + ", ".join(terms))
    tags = [safe_text(t.get("term"), 40) for t in drivers.get("hashtags", [])][:10]
    if tags:
        lines.append("Hashtags: " + ", ".join(tags))
    posts = drivers.get("top_posts") or []
    if posts:
        lines.append("Top posts:")
        for post in posts:
            where = safe_text(post.get("url"), 200) or f"id {safe_text(post.get('id'), 40)}"
            lines.append(
                f"- {safe_text(post.get('platform'), 20)}, reach {_number(post.get('reach'))}, "
                f"{safe_text(post.get('sentiment'), 10)}: {safe_text(post.get('text'), 140)} "
                f"({where})"
            )
    return "\n".join(lines)
