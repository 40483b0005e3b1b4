"""Suggested actions for the on-call comms person, following community-management practice:
acknowledge publicly and resolve privately, answer the constructive critics together in one
statement, hide (never delete) abuse and spam, and keep answering the supporters."""

from __future__ import annotations

from typing import Any

from detectors.alerting.voice import BrandVoice

HIGH_REACH = 10_000
"""Followers from which a post's author is worth answering first."""


#: Severities at which the team is told to post the holding statement (see below).
PUBLIC = frozenset({"warning", "critical"})


def suggested_actions(
    voice: BrandVoice,
    kind: str,
    change: str,
    severity: str,
    drivers: dict[str, Any],
    peak_severity: str | None = None,
) -> list[str]:
    """What to do now, most urgent first (plain English for the team, not for the public).

    They follow what the team was told to say in public during the episode (its
    ``peak_severity``): a storm that calmed to watch after a warning or critical still has a
    holding statement out that promised updates, and one that never left watch was not to be
    acknowledged in public, so it is not closed in public either."""
    went_public = severity in PUBLIC or peak_severity in PUBLIC
    if change == "abandoned":
        return [
            "Stormvarsel no longer follows this episode: its detector was reset after a change "
            "of bucket or window sizes, so this is not a sign that it calmed down.",
            f"Check {voice.name}'s mentions by hand; the detector needs a day of mentions "
            "before it can raise a new alert.",
        ]
    if kind == "buzz":
        if change == "resolved":
            return ["The positive buzz has calmed down; note what triggered it for marketing."]
        return [
            "Positive buzz, not a storm: no holding statement is needed.",
            "Thank and engage the supporters; share the best posts if they allow it.",
        ]
    if change == "resolved":
        close = (
            "Post a closing update once the cause is fixed, and thank people for their patience."
            if went_public
            else "The storm calmed down without growing past watch: post a closing update only "
            "if you did post a statement; otherwise there is nothing to close in public."
        )
        return [
            close,
            "Keep answering the private messages that are still open.",
            "Write the post-mortem: replay the topics for this episode (see the runbook).",
        ]
    actions: list[str] = []
    if severity == "critical" and voice.escalation:
        actions.append(f"Escalate to {voice.escalation} now.")
    if severity == "watch" and went_public:
        actions.append(
            "The storm has calmed to watch but is still open: if a holding statement is out, "
            "keep posting the updates it promised until you post a closing update."
        )
    elif severity == "watch":
        actions.append(
            "Watch the trend and prepare the statement; a public post is not needed yet "
            "unless it grows."
        )
    else:
        actions.append(
            "Acknowledge publicly: post the holding statement once a person has approved it, "
            "then move individual cases to private messages."
        )
    actions += [
        "Answer the constructive critics together in one public statement, not one by one.",
        "Hide (do not delete) abusive posts and spam, following the community guidelines; "
        "deleting criticism fuels a storm.",
        "Keep answering supporters and customers who ask for help.",
    ]
    top = (drivers.get("top_posts_by_reach") or [{}])[0]
    if int(top.get("reach") or 0) >= HIGH_REACH:
        actions.insert(1, "Reply first to the high-reach posts listed under top posts.")
    if went_public:
        actions.append(
            f"Pause scheduled promotional posts and ads for {voice.name} until this is over."
        )
        actions.append(
            f"Post the next update on time (every {voice.next_update_minutes} minutes), "
            "even if there is nothing new."
        )
    return actions
