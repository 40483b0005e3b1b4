"""Posts that are only emoji are scored from the emoji (streams/sentiment/emoji.py): the shipped
model called "🤬" and "💩" neutral at 1.00 and "😡😡😡" negative at only 0.57, so a storm's angry
emoji replies were missed negatives. Every other post still goes to the model."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from streams.sentiment.base import Scorer, Sentiment
from streams.sentiment.factory import load_scorer
from streams.settings import Settings


@pytest.fixture(scope="module")
def shipped() -> Scorer:
    """The default backend as the worker loads it (int8 e5)."""
    return load_scorer(Settings(), backend="e5")


ANGRY = ["🤬", "💩", "😡", "😡😡😡", "👎", "😡😡😡!!!", "@SAS 🤬🤬 #fail https://t.co/x1"]


def test_angry_emoji_only_posts_are_confidently_negative(shipped: Scorer) -> None:
    scored = shipped.score(ANGRY, [None] * len(ANGRY))
    got = {text: (s.label, round(s.negative, 2)) for text, s in zip(ANGRY, scored, strict=True)}
    assert all(label == "negative" and p >= 0.75 for label, p in got.values()), got


def test_happy_emoji_only_posts_are_positive(shipped: Scorer) -> None:
    texts = ["👍", "❤️❤️", "😍🙌"]
    assert [s.label for s in shipped.score(texts, [None] * 3)] == ["positive"] * 3


@pytest.mark.parametrize(
    "text",
    [
        "👎🏽",  # skin tone
        "👎🏿👎🏻",
        "🤦‍♂️",  # ZWJ sequence with a variation selector: face palm, man
        "🤦🏻‍♀️",  # skin tone inside a ZWJ sequence
        "😡️",  # a stray variation selector
        "☹",  # text-style character, no selector
        "☹️",
    ],
)
def test_modifiers_joiners_and_selectors_do_not_change_the_reading(
    shipped: Scorer, text: str
) -> None:
    (sentiment,) = shipped.score([text], [None])
    assert sentiment.label == "negative" and sentiment.negative >= 0.6, (text, sentiment)


@pytest.mark.parametrize(
    "text",
    [
        "😂😡",  # mixed signals
        "😡👍",
        "🦄",  # not in the table
        "🇳🇴",  # a flag
        "👨‍👩‍👧",  # a ZWJ family: its parts are no signal
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # a subdivision flag (tag characters)
    ],
)
def test_mixed_or_unknown_emoji_are_neutral_without_confidence(shipped: Scorer, text: str) -> None:
    from streams.sentiment.emoji import EMOJI_RULE

    (sentiment,) = shipped.score([text], [None])
    assert sentiment.label == "neutral", (text, sentiment)
    assert max(sentiment.negative, sentiment.neutral, sentiment.positive) <= 0.5, sentiment
    assert sentiment.decided_by == EMOJI_RULE  # the record says the rule decided, not the model


class Recording:
    """A backend that says positive to everything and remembers what it was asked."""

    version = "recording-1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        self.calls.append(list(texts))
        return [Sentiment(0.0, 0.0, 1.0) for _ in texts]


def test_posts_with_words_or_digits_still_go_to_the_model_in_one_batch() -> None:
    from streams.sentiment.emoji import EMOJI_RULE, EmojiRuleScorer

    inner = Recording()
    scorer = EmojiRuleScorer(inner)
    texts = ["😡", "Elendig service 😡", "😡 2", "!!!", "", "🤬 @telenor", "ok 👍", "😡😡"]
    scored = scorer.score(texts, [None] * len(texts))
    assert inner.calls == [["Elendig service 😡", "😡 2", "!!!", "", "ok 👍"]]
    assert scorer.version == "recording-1"
    labels = [(s.label, s.decided_by) for s in scored]
    assert labels == [
        ("negative", EMOJI_RULE),
        ("positive", None),
        ("positive", None),
        ("positive", None),
        ("positive", None),
        ("negative", EMOJI_RULE),
        ("positive", None),
        ("negative", EMOJI_RULE),
    ]
    # A batch of emoji only never calls the backend.
    scorer.score(["🤬"], ["nb"])
    assert len(inner.calls) == 1


def test_the_scored_record_names_the_rule_that_decided() -> None:
    """The record's ``sentiment.model`` is the backend's version when the model decided and the
    emoji rule when it did (docs/sentiment.md)."""
    from streams.agents.score import BatchScorer
    from streams.sentiment.emoji import EMOJI_RULE, EmojiRuleScorer

    batch = BatchScorer(lambda: EmojiRuleScorer(Recording()))
    values = [
        json.dumps({"id": i, "text": text, "created_at_ms": 1_700_000_000_000}).encode()
        for i, text in enumerate(["🤬🤬", "Strømmen er borte igjen", "🦄"])
    ]
    results = batch.run(values)
    sentiments = [r[1]["sentiment"] for r in results if isinstance(r, tuple)]
    assert [(s["label"], s["model"]) for s in sentiments] == [
        ("negative", EMOJI_RULE),
        ("positive", "recording-1"),
        ("neutral", EMOJI_RULE),
    ]
    assert EMOJI_RULE == "rule:emoji-1"


def test_every_backend_gets_the_rule() -> None:
    lexicon = load_scorer(Settings(), backend="lexicon")
    (sentiment,) = lexicon.score(["😂😡"], ["nb"])
    assert sentiment.label == "neutral" and sentiment.neutral <= 0.5
