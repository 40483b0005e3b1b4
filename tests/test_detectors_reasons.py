"""Judging drivers by annotators' reasons: the lexicon, an episode's reasons, coverage."""

from __future__ import annotations

from detectors.reasons import (
    LabelledComplaint,
    coverage,
    episode_reasons,
    learn_lexicon,
)


def _complaints(text: str, reason: str, n: int, brand: str = "Air", at: int = 0) -> list:
    return [LabelledComplaint(brand, at + i, reason, text) for i in range(n)]


def test_a_term_names_the_reason_most_of_its_complaints_carry() -> None:
    complaints = (
        _complaints("flight cancelled again", "Cancelled Flight", 6)
        + _complaints("flight delayed again", "Late Flight", 5)
        + _complaints("cancelled and delayed", "Late Flight", 2)
    )
    lexicon = learn_lexicon(complaints)
    # 6 of the 8 complaints with "cancelled" are about cancellations; "delayed": 7 of 7.
    assert lexicon["cancelled"] == "Cancelled Flight"
    assert lexicon["delayed"] == "Late Flight"
    assert lexicon["flight cancelled"] == "Cancelled Flight"
    # "flight" is in 11 complaints, 6 against 5: a majority, but barely, and still named...
    assert lexicon["flight"] == "Cancelled Flight"
    # ...while a share under half names nothing.
    mixed = learn_lexicon(
        _complaints("flight late", "Late Flight", 5)
        + _complaints("flight lost bag", "Lost Luggage", 3)
        + _complaints("flight rude staff", "Customer Service Issue", 3)
    )
    assert "flight" not in mixed
    assert mixed["late"] == "Late Flight"


def test_a_term_in_too_few_complaints_names_nothing() -> None:
    lexicon = learn_lexicon(_complaints("luggage gone", "Lost Luggage", 4))
    assert lexicon == {}
    assert learn_lexicon(_complaints("luggage gone", "Lost Luggage", 4), min_support=4) == {
        "luggage": "Lost Luggage",
        "gone": "Lost Luggage",
        "luggage gone": "Lost Luggage",
    }


def test_the_lexicon_does_not_depend_on_the_order_of_complaints() -> None:
    complaints = _complaints("refund please", "Cancelled Flight", 5) + _complaints(
        "refund please", "Customer Service Issue", 5
    )
    # A tie goes to the first reason by name, whichever came first.
    assert learn_lexicon(complaints)["refund"] == "Cancelled Flight"
    assert learn_lexicon(complaints[::-1])["refund"] == "Cancelled Flight"


def test_an_episode_s_reasons_are_its_brand_s_complaints_in_its_time() -> None:
    complaints = (
        _complaints("x", "Late Flight", 3, at=100)
        + _complaints("x", "Lost Luggage", 5, at=100)
        + _complaints("x", "Cancelled Flight", 9, at=0)  # before the episode
        + _complaints("x", "Cancelled Flight", 9, at=200)  # at its end: not in it
        + _complaints("x", "Cancelled Flight", 9, brand="Other", at=100)
    )
    reasons = episode_reasons(complaints, "Air", 100, 200)
    assert list(reasons.items()) == [("Lost Luggage", 5), ("Late Flight", 3)]


def test_coverage_is_the_share_of_complaints_whose_reason_a_term_names() -> None:
    lexicon = {"cancelled": "Cancelled Flight", "hold": "Customer Service Issue", "rude": "X"}
    reasons = {"Customer Service Issue": 50, "Cancelled Flight": 30, "Late Flight": 20}
    judged = coverage(["hold", "flight", "cancelled", "hold on"], reasons, lexicon)
    assert judged.named == ("Customer Service Issue", "Cancelled Flight")
    assert judged.share == 0.8
    assert (judged.specific_terms, judged.terms, judged.complaints) == (2, 4, 100)
    # A reason named that the episode's complaints never carry adds nothing.
    assert coverage(["rude"], reasons, lexicon).share == 0.0
    assert coverage(["hold"], {}, lexicon).share == 0.0
