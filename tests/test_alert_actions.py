"""The suggested actions follow what the team was told to say in public during the episode: a
storm that calmed to watch after a holding statement keeps its promised updates, and one that
never left watch (nothing was to be posted) is not closed in public."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.alerting import BrandVoice, build_alert
from tests.test_holding_statements import episode_event

VOICE = BrandVoice(brand_id="nordlys-energi", name="Nordlys Energi", languages=("nb", "en"))


def event(change: str, severity: str, peak: str) -> dict[str, Any]:
    """A storm event at ``severity`` that peaked at ``peak``, without drivers."""
    out = episode_event(change, severity)
    out["episode"] |= {"peak_severity": peak, "drivers": {}}
    return out


@pytest.mark.parametrize("peak", ["warning", "critical"])
def test_a_storm_calmed_to_watch_keeps_the_updates_its_statement_promised(peak: str) -> None:
    """At warning the team posted a holding statement saying "we will post an update here
    within an hour"; told at watch that "a public post is not needed yet", it would break that
    promise while the storm is still open."""
    alert = build_alert(event("de-escalated", "watch", peak), VOICE)
    actions = alert["actions"]
    assert alert["status"] == "firing"
    assert not any("public post is not needed" in a for a in actions), actions
    assert (
        "Post the next update on time (every 60 minutes), even if there is nothing new." in actions
    )
    assert any("still open" in a and "holding statement" in a for a in actions), actions


def test_a_storm_still_at_its_first_watch_needs_no_public_post() -> None:
    actions = build_alert(event("opened", "watch", "watch"), VOICE)["actions"]
    assert actions[0].startswith("Watch the trend and prepare the statement")
    assert not any("next update on time" in a for a in actions)


def test_a_storm_that_never_left_watch_is_not_closed_in_public() -> None:
    """At watch the team was told a public post was not needed: a closing update about a storm
    the brand never acknowledged draws the attention the team chose not to."""
    actions = build_alert(event("resolved", "watch", "watch"), VOICE)["actions"]
    assert not any(a.startswith("Post a closing update") for a in actions), actions
    assert any("only if" in a and "statement" in a for a in actions), actions
    assert "Keep answering the private messages that are still open." in actions


@pytest.mark.parametrize("peak", ["warning", "critical"])
def test_a_storm_with_a_public_statement_is_closed_in_public(peak: str) -> None:
    actions = build_alert(event("resolved", peak, peak), VOICE)["actions"]
    assert actions[0].startswith("Post a closing update once the cause is fixed")


@pytest.mark.parametrize("peak", ["warning", "critical"])
def test_a_storm_calmed_to_watch_gets_drafts_that_keep_the_update_promise(peak: str) -> None:
    """The watch drafts acknowledge a storm for the first time and say nothing of the next
    update: posted as the update a holding statement promised, one would drop that promise."""
    alert = build_alert(event("de-escalated", "watch", peak), VOICE)
    assert [s["lang"] for s in alert["statements"]] == ["nb", "en"]
    for draft in alert["statements"]:
        assert draft["next_update"] in draft["text"], draft["text"]
        assert "lint" not in draft


def test_a_storm_at_its_first_watch_gets_watch_drafts() -> None:
    alert = build_alert(event("opened", "watch", "watch"), VOICE)
    assert {s["severity"] for s in alert["statements"]} == {"watch"}
    assert all(s["next_update"] not in s["text"] for s in alert["statements"])
