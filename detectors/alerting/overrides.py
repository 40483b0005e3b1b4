"""Checking a brand's own statement templates before they are ever used.

An override is rendered with a named issue and with the neutral fallback, and both drafts must
pass the same lint as the built-in texts; the brands file is refused otherwise.
"""

from __future__ import annotations

from detectors.alerting.issue_naming import GENERIC_ISSUE
from detectors.alerting.statement_lint import lint_statement
from detectors.alerting.statements import render
from detectors.alerting.voice import BrandVoice

#: A plain two-word issue, as the drivers would name one.
SAMPLE_ISSUE = "delayed deliveries"


def lint_overrides(voice: BrandVoice) -> str | None:
    """The first problem of the brand's overrides as ``lang.severity: rule: message``."""
    for lang, by_severity in sorted(voice.templates.items()):
        for severity in sorted(by_severity):
            try:
                drafts = [
                    render(voice, lang, severity, SAMPLE_ISSUE, True),
                    render(voice, lang, severity, GENERIC_ISSUE[lang], False),
                ]
            except (KeyError, IndexError, ValueError) as exc:
                return f"statements.templates.{lang}.{severity}: cannot be filled in ({exc})"
            for draft in drafts:
                problems = lint_statement(draft, voice)
                if problems:
                    return f"statements.templates.{lang}.{severity}: {problems[0]}"
    return None
