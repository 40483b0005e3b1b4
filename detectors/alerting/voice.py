"""How a brand speaks in its holding statements: its languages, tone and what it may promise.

The brands file (``streams.brands``) is turned into a :class:`BrandVoice`, so this pure package
does not depend on the configuration code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Tone = Literal["formal", "warm", "playful", "neutral"]
Severity = Literal["watch", "warning", "critical"]

LANGUAGES = ("nb", "nn", "sv", "da", "en")
TONES: tuple[Tone, ...] = ("formal", "warm", "playful", "neutral")
SEVERITIES: tuple[Severity, ...] = ("watch", "warning", "critical")
#: The placeholders a template (built-in or a brand's override) may use.
PLACEHOLDERS = ("brand", "issue", "next_update", "contact")
#: The on-call team of a brand missing from the brands file (which requires ``oncall.team``):
#: the shared comms team, so its storms carry ``team="comms-oncall"`` and page the shared
#: ``comms-pager`` of deploy/alertmanager/alertmanager.yml like any team without its own pager.
DEFAULT_TEAM = "comms-oncall"


@dataclass(frozen=True)
class BrandVoice:
    """Everything the statement drafts of one brand depend on."""

    brand_id: str
    name: str
    languages: tuple[str, ...] = ("en",)
    tone: Tone = "neutral"
    #: Minutes until the next public update: the only time the statements commit to.
    next_update_minutes: int = 60
    #: Where affected people are invited to write privately: a URL, a short phrase such as
    #: "a direct message" (brands with one language), or one URL or phrase per language;
    #: ``None`` (or a language missing): the built-in "direct message" wording.
    contact: str | Mapping[str, str] | None = None
    #: Words the brand has decided it may promise ("refund", "compensation"); nothing else.
    may_promise: tuple[str, ...] = ()
    #: Brand overrides: language -> severity -> template with the :data:`PLACEHOLDERS`.
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    team: str = DEFAULT_TEAM
    escalation: str | None = None
    #: The brand's other names (aliases, handles, hashtags): like its name, never the issue.
    aliases: tuple[str, ...] = ()
    #: IANA zone the brand's team reads times in (its detector's zone); "": UTC only.
    timezone: str = ""

    def override(self, lang: str, severity: str) -> str | None:
        return self.templates.get(lang, {}).get(severity)

    def contact_for(self, lang: str) -> str | None:
        """The configured private channel for drafts in ``lang`` (``None``: the built-in one)."""
        if isinstance(self.contact, Mapping):
            return self.contact.get(lang) or None
        return self.contact or None


def default_voice(brand_id: str) -> BrandVoice:
    """The voice of a brand missing from the brands file: its id as name, English, neutral,
    the shared :data:`DEFAULT_TEAM` on call, times in UTC."""
    return BrandVoice(brand_id=brand_id, name=brand_id)
