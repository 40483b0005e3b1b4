"""From a storm episode to what the on-call comms person needs: an alert record with figures,
drivers, suggested actions and holding-statement drafts, plus the lint those drafts must pass.

Pure code like the rest of :mod:`detectors`: the same episode event and brand voice always give
the same alert record, so a replay yields the very alerts the live run raised.
"""

from detectors.alerting.record import ALERT_SCHEMA, build_alert
from detectors.alerting.statement_lint import Violation, lint_statement
from detectors.alerting.statements import Statement, holding_statements
from detectors.alerting.voice import BrandVoice, default_voice

__all__ = [
    "ALERT_SCHEMA",
    "BrandVoice",
    "Statement",
    "Violation",
    "build_alert",
    "default_voice",
    "holding_statements",
    "lint_statement",
]
