"""Checking everything a brand configures for its drafts when the brands file is loaded.

A brand's contact phrases, its template overrides and the built-in drafts it will get (each of
its languages at every severity, in the tone it speaks at that severity) must pass the
statement lint before any storm needs them; the brands file is refused otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from detectors.alerting.issue_naming import GENERIC_ISSUE
from detectors.alerting.overrides import SAMPLE_ISSUE, lint_overrides
from detectors.alerting.statement_lint import lint_contact, lint_statement
from detectors.alerting.statements import effective_tone, render
from detectors.alerting.voice import SEVERITIES, BrandVoice


def _contact_field(voice: BrandVoice, lang: str) -> str:
    per_language = isinstance(voice.contact, Mapping)
    return f"statements.contact.{lang}" if per_language else "statements.contact"


def lint_contacts(voice: BrandVoice) -> str | None:
    """The first problem of the brand's contact phrases, each read in its own language."""
    for lang in dict.fromkeys(voice.languages):
        contact = voice.contact_for(lang)
        problems = lint_contact(contact, lang, voice) if contact else []
        if problems:
            return f"{_contact_field(voice, lang)}: {problems[0]}"
    return None


def _passes_without_contact(voice: BrandVoice, lang: str, severity: str, issue: str) -> bool:
    plain = replace(voice, contact=None)
    return not lint_statement(render(plain, lang, severity, issue, issue == SAMPLE_ISSUE), plain)


def lint_built_in(voice: BrandVoice) -> str | None:
    """The first problem of a built-in draft the brand can get (overridden ones are skipped)."""
    for lang in dict.fromkeys(voice.languages):
        for severity in SEVERITIES:
            if voice.override(lang, severity) is not None:
                continue
            for issue, named in ((SAMPLE_ISSUE, True), (GENERIC_ISSUE[lang], False)):
                problems = lint_statement(render(voice, lang, severity, issue, named), voice)
                if not problems:
                    continue
                tone = effective_tone(voice.tone, severity)
                draft = f"the built-in {lang}.{severity} draft ({tone} tone)"
                if voice.contact_for(lang) and _passes_without_contact(
                    voice, lang, severity, issue
                ):
                    field = _contact_field(voice, lang)
                    return f"{field}: {draft} with this contact fails {problems[0]}"
                return f"statements: {draft} fails {problems[0]}"
    return None


def lint_voice(voice: BrandVoice) -> str | None:
    """The first problem of what the brand configured, as ``field: rule: message``."""
    return lint_contacts(voice) or lint_overrides(voice) or lint_built_in(voice)
