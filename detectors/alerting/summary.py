"""Readable texts of an alert for a pager, Slack or e-mail: summary, description, drafts, drivers.

Post texts from the public are evidence, not statements: they are shown shortened, on one line,
with the characters that chat tools read as markup or mentions (``<``, ``>``, backticks, square
brackets, Slack's emphasis ``*``, ``_`` and ``~`` outside links and e-mail addresses,
``@here``-style group mentions, an ``&`` that starts an entity such as ``&lt;``) replaced by
lookalikes and every control, format (bidi overrides, zero-width) and unassigned character
removed, so a post cannot ping a channel, disguise a link, reverse the text around it or break a
notification. Every text that goes into an annotation passes :func:`safe_text`, the statement
drafts and suggested actions too; the top posts' links pass :func:`safe_link`, which keeps them
whole (percent-encoded) so that they still open.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_NEUTRALISE = str.maketrans(
    {
        "<": "\u2039",  # Slack's <!channel>, <url|text>; HTML tags
        ">": "\u203a",
        "`": "'",  # code spans and blocks
        "\\": "/",
        "[": "\uff3b",  # Markdown links [text](url) in Mattermost, Teams, Discord
        "]": "\uff3d",
    }
)
#: Slack's (and Markdown's) emphasis: ``*bold*``, ``_italic_``, ``~strike~``. The template sets
#: the summary in bold (``*{{ .Annotations.summary }}*``), so a brand called "E*TRADE" ended the
#: bold after its "E". They become full-width lookalikes, which read the same in an e-mail or a
#: plain-text pager, outside links and e-mail addresses (a contact URL in a draft must still
#: open: :data:`_LINK_OR_ADDRESS`).
_EMPHASIS = str.maketrans({"*": "\uff0a", "_": "\uff3f", "~": "\uff5e"})
#: A link or an e-mail address inside a text, left whole by :data:`_EMPHASIS`: a chat tool
#: shows it as a link, whose characters it does not read as emphasis.
_LINK_OR_ADDRESS = re.compile(
    r"(?:https?://|www\.)\S+|(?<![\w.+-])[^\W_][\w.+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)+",
    re.IGNORECASE,
)
#: Group mentions that notify everyone in Slack, Mattermost or Discord when a tool links names.
_GROUP_MENTION = re.compile(r"@(?=(?:everyone|here|channel|all|group)\b)", re.IGNORECASE)
#: An ``&`` that starts a character reference (``&lt;``, ``&#60;``, ``&#x3c;``): Slack and HTML
#: would show ``&lt;!channel&gt;`` as ``<!channel>``, a disguise of what the post said. A plain
#: ampersand (H&M, AT&T) is left alone.
_ENTITY = re.compile(r"&(?=#?[0-9a-z]+;)", re.IGNORECASE)


def safe_text(text: Any, limit: int = 160) -> str:
    """One line of untrusted text, without control characters or markup, at most ``limit``."""
    cleaned = "".join(
        " " if unicodedata.category(ch).startswith("C") else ch for ch in str(text or "")
    )
    neutral = _ENTITY.sub("\uff06", _GROUP_MENTION.sub("\uff20", cleaned.translate(_NEUTRALISE)))
    line = _no_emphasis(" ".join(neutral.split()))
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def _no_emphasis(line: str) -> str:
    """``line`` with Slack's emphasis characters as lookalikes, except in links and addresses."""
    if not any(ch in line for ch in "*_~"):
        return line
    out, start = [], 0
    for found in _LINK_OR_ADDRESS.finditer(line):
        out += [line[start : found.start()].translate(_EMPHASIS), found.group(0)]
        start = found.end()
    out.append(line[start:].translate(_EMPHASIS))
    return "".join(out)


#: A post's link as the mentions schema allows it (``http``/``https``, at most 2,048
#: characters); percent-encoding may make it longer.
_LINK = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)
_LINK_LIMIT = 4096
#: Driver terms (phrases, then words) and hashtags a page lists, each.
PAGE_TERMS = 10


def safe_link(url: Any) -> str | None:
    """A post's link, whole so that it still opens, or None if it is not an http(s) URL.

    :func:`safe_text` would cut a long link (tracking parameters) and swap brackets for
    lookalikes, which breaks it; here every character a chat tool could read as markup or a
    link's end (spaces, ``<>|[]`` and backticks, quotes, non-ASCII) is percent-encoded instead,
    and so are the ``@`` of a group mention and the ``&`` of a character reference."""
    text = str(url or "").strip()
    if not _LINK.match(text):
        return None
    link = quote(text, safe="!#$%&'()*+,-./:;=?@_~")
    link = _ENTITY.sub("%26", _GROUP_MENTION.sub("%40", link))
    return link if len(link) <= _LINK_LIMIT else None


def _percent(value: Any) -> str:
    return f"{100 * float(value or 0):.0f}%"


def _number(value: Any) -> str:
    number = float(value or 0)
    return f"{number:,.0f}" if number >= 10 or number == int(number) else f"{number:.1f}"


def _mix(mix: dict[str, Any]) -> str:
    ranked = sorted(mix.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    return ", ".join(f"{safe_text(k, 20)} {_percent(v)}" for k, v in ranked) or "none"


def _zone(name: Any) -> ZoneInfo | None:
    """The brand's zone for the times a person reads, or None (UTC only) if unknown."""
    if not isinstance(name, str) or not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _hhmm(iso: str | None, zone: ZoneInfo | None = None) -> str:
    """A time as the brand's team reads it: local time with its abbreviation and UTC beside it
    ("2026-03-10 14:05 CET (13:05 UTC)"), or UTC alone for a brand without a zone."""
    if not iso:
        return "?"
    utc = f"{safe_text(iso[:10], 10)} {safe_text(iso[11:16], 5)} UTC"
    if zone is None:
        return utc
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return utc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {safe_text(local.tzname(), 8)} ({utc[11:]})"


def summary(alert: dict[str, Any]) -> str:
    fig = alert.get("figures") or {}
    volume, share = fig.get("volume") or {}, fig.get("negative_share") or {}
    minutes = _number(fig.get("window_minutes", 60))
    state = (
        "no longer followed (detector reset)"
        if alert.get("change") == "abandoned"
        else "resolved"
        if alert["status"] == "resolved"
        else alert["severity"]
    )
    return (
        f"{safe_text(alert['brand_name'], 80)}: {alert['kind']} {state}: "
        f"{_number(volume.get('now'))} posts in {minutes} min (usual "
        f"{_number(volume.get('baseline'))}), {_percent(share.get('now'))} negative (usual "
        f"{_percent(share.get('baseline'))})"
    )


def left_summary(alert: dict[str, Any], severity: str) -> str:
    """The summary of the alert of a severity the storm has left (escalated or de-escalated
    from) while it is still open: that alert is sent resolved, and with the current summary a
    pager would read "RESOLVED ... storm warning" after a de-escalation from critical, as if the
    storm were over."""
    return (
        f"{safe_text(alert['brand_name'], 80)}: {alert['kind']} still open, now "
        f"{safe_text(alert['severity'], 20)} ({safe_text(alert['change'], 20)}): this "
        f"{safe_text(severity, 20)} alert ends"
    )


def moved_summary(alert: dict[str, Any], former_team: str) -> str:
    """The summary of the alert a storm's former on-call team had, sent resolved when the brand
    was given to another team while the storm is open: not the end of the storm."""
    now_with = safe_text(team_of(alert), 60) or "no team"
    return (
        f"{safe_text(alert['brand_name'], 80)}: {alert['kind']} still open, "
        f"{safe_text(alert['severity'], 20)}, now paged to {now_with}: this alert for "
        f"{safe_text(former_team, 60) or 'no team'} ends"
    )


def team_of(alert: Mapping[str, Any]) -> str:
    """The on-call team the record names ("" for none)."""
    return str((alert.get("oncall") or {}).get("team") or "")


def issue_terms(alert: dict[str, Any], limit: int = 6) -> list[str]:
    drivers = alert.get("drivers") or {}
    terms = [safe_text(t.get("term"), 40) for t in drivers.get("terms", [])]
    tags = [safe_text(t.get("term"), 40) for t in drivers.get("hashtags", [])]
    return list(dict.fromkeys(terms[:limit] + tags[:3]))


def description(alert: dict[str, Any]) -> str:
    fig = alert.get("figures") or {}
    reach = fig.get("negative_reach") or {}
    zone = _zone(alert.get("timezone"))
    lines = [
        f"Change: {safe_text(alert['change'], 20)} at {_hhmm(alert.get('changed_at'), zone)}. "
        f"Started {_hhmm(alert.get('start'), zone)} (first signs "
        f"{_hhmm(alert.get('first_abnormal'), zone)}), peak "
        f"{safe_text(alert.get('peak_severity'), 20)} at {_hhmm(alert.get('peak'), zone)}"
        + (f", ended {_hhmm(alert.get('end'), zone)}." if alert.get("end") else "."),
        f"Negative reach: {_number(reach.get('now'))} followers (usual "
        f"{_number(reach.get('baseline'))}).",
        f"Talked about: {', '.join(issue_terms(alert)) or 'no distinctive terms yet'}.",
        f"Languages: {_mix((alert.get('drivers') or {}).get('languages') or {})}. "
        f"Platforms: {_mix((alert.get('drivers') or {}).get('platforms') or {})}.",
    ]
    actions = alert.get("actions") or []
    if actions:
        lines.append("Suggested actions:")
        lines += [f"- {safe_text(a, 400)}" for a in actions]
    return "\n".join(lines)


def statements_text(alert: dict[str, Any]) -> str:
    """All drafts, each under its draft label, in the order of the storm's language mix.

    A draft names the issue only in plain words (see ``issue_naming``), and the rest comes from
    the built-in texts and the brands file; it still passes :func:`safe_text` here, so whatever
    a template or a future slot lets through cannot reach a notification as markup.
    """
    blocks = [
        f"[{safe_text(s.get('label'), 80)}] ({safe_text(s.get('lang'), 8)}, "
        f"{safe_text(s.get('tone'), 12)})\n{safe_text(s.get('text'), 2000)}{_lint_note(s)}"
        for s in alert.get("statements") or []
    ]
    return "\n\n".join(blocks)


def _lint_note(statement: dict[str, Any]) -> str:
    """A warning under a draft that still fails the lint, so nobody approves it unread."""
    problems = statement.get("lint")
    if not isinstance(problems, list) or not problems:
        return ""
    listed = "; ".join(safe_text(p, 200) for p in problems[:5])
    return f"\nNOT READY, fails the statement lint: {listed}. Edit it before approving."


def drivers_text(alert: dict[str, Any]) -> str:
    drivers = alert.get("drivers") or {}
    lines = []
    terms = [safe_text(t.get("term"), 40) for t in drivers.get("terms", [])][:PAGE_TERMS]
    if terms:
        lines.append("Terms: " + ", ".join(terms))
    tags = [safe_text(t.get("term"), 40) for t in drivers.get("hashtags", [])][:PAGE_TERMS]
    if tags:
        lines.append("Hashtags: " + ", ".join(tags))
    posts = drivers.get("top_posts") or []
    if posts:
        lines.append("Top posts:")
        for post in posts:
            where = safe_link(post.get("url")) or f"id {safe_text(post.get('id'), 40)}"
            lines.append(
                f"- {safe_text(post.get('platform'), 20)}, reach {_number(post.get('reach'))}, "
                f"{safe_text(post.get('sentiment'), 10)}: {safe_text(post.get('text'), 140)} "
                f"({where})"
            )
    return "\n".join(lines)
