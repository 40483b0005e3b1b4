"""The holding-statement drafts a page carries pass the statement lint with the storm's own issue.

The brands file is linted at load with a short sample issue; a live driver phrase is longer, and
a watch draft of a brand with a long contact URL came out at 289 characters (limit 280). Live
drafts are linted too: one that fails names the neutral issue instead, and one that still fails
is kept, marked, in the alert and in the notification text."""

from __future__ import annotations

from typing import Any

from detectors.alerting import BrandVoice, build_alert, holding_statements, lint_statement
from detectors.alerting.issue_naming import GENERIC_ISSUE
from detectors.alerting.summary import statements_text
from detectors.alerting.voice_check import lint_voice
from streams.agents.notify import drafts_to_fix

LONG_PHRASE = "forsinkede nettselskapsfakturaene"
DRIVERS: dict[str, Any] = {
    "phrases": [{"term": LONG_PHRASE, "lang": "nb", "score": 4.0}],
    "languages": {"nb": 1.0},
}


def longest_accepted_voice() -> BrandVoice:
    """The reviewer's case: a formal nb brand with the longest contact URL the load-time lint
    accepts (one character more and the brands file is refused)."""
    accepted = None
    for n in range(10, 200):
        voice = BrandVoice(
            "nordlys",
            "Nordlys Energi",
            ("nb",),
            "formal",
            contact="https://kundeservice.example.no/" + "a" * n,
        )
        if lint_voice(voice):
            break
        accepted = voice
    assert accepted is not None
    return accepted


def test_a_long_driver_phrase_falls_back_to_the_neutral_issue_where_it_would_not_fit() -> None:
    voice = longest_accepted_voice()
    for severity in ("watch", "warning", "critical"):
        [draft] = holding_statements(voice, severity, DRIVERS)
        assert lint_statement(draft, voice) == [], (severity, len(draft.text))
        assert not draft.lint
    [watch] = holding_statements(voice, "watch", DRIVERS)
    assert watch.issue == GENERIC_ISSUE["nb"] and not watch.issue_named
    assert len(watch.text) <= 280
    # Where the phrase fits, the draft still names it.
    [warning] = holding_statements(voice, "warning", DRIVERS)
    assert warning.issue == LONG_PHRASE and warning.issue_named


def test_the_alert_record_carries_the_draft_that_passes() -> None:
    voice = longest_accepted_voice()
    event = {
        "type": "opened",
        "at": "2026-12-06T01:50:00.000Z",
        "at_ms": 1_796_521_800_000,
        "episode": {
            "episode_id": "nordlys-1",
            "kind": "storm",
            "severity": "watch",
            "drivers": DRIVERS,
        },
    }
    alert = build_alert(event, voice)
    [statement] = alert["statements"]
    assert len(statement["text"]) <= 280
    assert "lint" not in statement  # a passing draft's record is as it always was
    assert drafts_to_fix(alert) == []


def test_a_draft_that_cannot_pass_is_kept_and_marked_not_dropped() -> None:
    """A voice never checked at load (its override speculates): the fallback fails as well,
    and the on-call person gets the draft with what to fix, in the alert and the page."""
    voice = BrandVoice(
        "acme",
        "Acme",
        ("en",),
        templates={
            "en": {
                "watch": "We have seen the posts about {issue}, probably a glitch. "
                "Please send us {contact}."
            }
        },
    )
    drivers = {"phrases": [{"term": "delayed refunds", "lang": "en", "score": 3.0}]}
    [draft] = holding_statements(voice, "watch", drivers)
    assert draft.issue == "delayed refunds"  # the first draft, not the fallback
    assert any(problem.startswith("speculation") for problem in draft.lint)
    event = {
        "type": "opened",
        "at": "2026-12-06T01:50:00.000Z",
        "at_ms": 1_796_521_800_000,
        "episode": {
            "episode_id": "acme-1",
            "kind": "storm",
            "severity": "watch",
            "drivers": drivers,
        },
    }
    alert = build_alert(event, voice)
    [statement] = alert["statements"]
    assert statement["text"] == draft.text and statement["lint"] == list(draft.lint)
    text = statements_text(alert)
    assert "NOT READY, fails the statement lint: speculation" in text
    assert drafts_to_fix(alert) == [{"lang": "en", "problems": list(draft.lint)}]
