"""Holding-statement drafts: one per configured language, in the brand's tone, scaled to severity.

Every draft is labelled as a draft for a person to approve; none is ever posted by Stormvarsel.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from detectors.alerting.issue_naming import GENERIC_ISSUE, issue_in
from detectors.alerting.statement_texts import (
    CONTACT_AT_URL,
    DEFAULT_CONTACT,
    DRAFT_LABEL,
    NEXT_UPDATE,
    PARTS_BY_SEVERITY,
    TEXTS,
)
from detectors.alerting.voice import LANGUAGES, BrandVoice

_URL = re.compile(r"^https?://\S+$")
#: Language codes a detector may report, folded onto the statement languages.
_LANG_ALIASES = {"no": "nb", "nob": "nb", "nno": "nn", "swe": "sv", "dan": "da", "eng": "en"}


@dataclass(frozen=True)
class Statement:
    """One draft, with the slot values it was filled with (the lint checks them apart)."""

    lang: str
    tone: str
    severity: str
    text: str
    issue: str
    issue_named: bool
    next_update: str
    contact: str
    source: str  # "built-in" or "brand override"
    label: str
    draft: bool = True
    #: The lint problems a live draft still has (see :func:`holding_statements`): the on-call
    #: person must fix them before approving. Left out of the record when there are none.
    lint: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.lint:
            out["lint"] = list(self.lint)
        else:
            del out["lint"]  # the records of drafts that pass stay as they always were
        return out


def next_update_phrase(lang: str, minutes: int) -> str:
    """ "within an hour" in ``lang`` for the brand's update interval."""
    in_minutes, one_hour, in_hours = NEXT_UPDATE[lang]
    if minutes == 60:
        return one_hour
    if minutes > 60 and minutes % 60 == 0:
        return in_hours.format(n=minutes // 60)
    return in_minutes.format(n=minutes)


def is_contact_url(contact: str) -> bool:
    """True if a configured contact is a URL (drafts then say "a message at <url>")."""
    return _URL.match(contact) is not None


def contact_phrase(lang: str, contact: str | None) -> str:
    """The private channel as written in a ``lang`` draft, from the contact for ``lang``."""
    if not contact:
        return DEFAULT_CONTACT[lang]
    if is_contact_url(contact):
        return CONTACT_AT_URL[lang].format(url=contact)
    return contact


def statement_language(code: str | None) -> str | None:
    key = (code or "").split("-", 1)[0].lower()
    key = _LANG_ALIASES.get(key, key)
    return key if key in LANGUAGES else None


def ordered_languages(voice: BrandVoice, mix: dict[str, float]) -> list[str]:
    """The brand's languages, the most used in the storm first (ties keep the brand's order)."""
    share: dict[str, float] = {}
    for code, value in mix.items():
        lang = statement_language(code)
        if lang is not None:
            share[lang] = share.get(lang, 0.0) + float(value)
    langs = [lang for lang in dict.fromkeys(voice.languages) if lang in LANGUAGES]
    return sorted(langs, key=lambda lang: (-share.get(lang, 0.0), langs.index(lang)))


def effective_tone(tone: str, severity: str) -> str:
    """Playful brands speak warmly in a critical storm: humour does not belong there."""
    return "warm" if tone == "playful" and severity == "critical" else tone


def render(voice: BrandVoice, lang: str, severity: str, issue: str, issue_named: bool) -> Statement:
    """The draft in ``lang`` for ``severity``: the brand's override if it has one."""
    tone = effective_tone(voice.tone, severity)
    slots = {
        "brand": voice.name,
        "issue": issue,
        "next_update": next_update_phrase(lang, voice.next_update_minutes),
        "contact": contact_phrase(lang, voice.contact_for(lang)),
    }
    override = voice.override(lang, severity)
    if override is not None:
        text, source = override.format(**slots), "brand override"
    else:
        parts = TEXTS[lang][tone]
        text = " ".join(parts[name] for name in PARTS_BY_SEVERITY[severity]).format(**slots)
        source = "built-in"
    return Statement(
        lang=lang,
        tone=tone,
        severity=severity,
        text=text,
        issue=issue,
        issue_named=issue_named,
        next_update=slots["next_update"],
        contact=slots["contact"],
        source=source,
        label=DRAFT_LABEL[lang],
    )


def holding_statements(
    voice: BrandVoice, severity: str, drivers: dict[str, Any]
) -> list[Statement]:
    """Drafts in every language of the brand, ordered by the storm's language mix.

    Each passes the lint the brands file passed at load, again with this storm's issue: that
    check used a short sample issue, and a long driver phrase can push a draft past its length
    limit. A draft that fails names the neutral issue instead ("the problems you are
    experiencing"; the terms are in the alert anyway); if that fails too (a voice never checked
    at load), the first draft is kept with its problems in ``lint``: one to fix is more use to
    the on-call person than none. Not linted against the posts: the issue (at most three plain
    words, no authors' names) is all a draft takes from the storm, so five words it shares with
    a post would be the brand's own wording, quoted back by the crowd."""
    # Imported here: the lint module imports this one (Statement, is_contact_url).
    from detectors.alerting.statement_lint import lint_statement

    if severity not in PARTS_BY_SEVERITY:
        return []
    out = []
    for lang in ordered_languages(voice, drivers.get("languages") or {}):
        issue, named = issue_in(drivers, lang, voice)
        draft = render(voice, lang, severity, issue, named)
        problems = lint_statement(draft, voice)
        if problems and named:
            plain = render(voice, lang, severity, GENERIC_ISSUE[lang], False)
            if not lint_statement(plain, voice):
                draft, problems = plain, []
        if problems:
            draft = replace(draft, lint=tuple(str(p) for p in problems))
        out.append(draft)
    return out
