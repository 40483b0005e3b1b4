"""Posts that are only emoji or text emoticons are scored from them (streams/sentiment/emoji.py):
the shipped model called "🤬" and "💩" neutral at 1.00, "😡😡😡" negative at only 0.57 and ":'("
neutral at 0.99, so a storm's angry replies were missed negatives. Mixed emoji go to a clear
majority. Every other post still goes to the model."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from streams.sentiment.base import Scorer, Sentiment
from streams.sentiment.emoji import emoji_only
from streams.sentiment.factory import load_scorer
from streams.sentiment.handles import HANDLE
from streams.sentiment.language import clean_for_detection
from streams.settings import Settings


@pytest.fixture(scope="module")
def shipped() -> Scorer:
    """The default backend as the worker loads it (int8 e5)."""
    return load_scorer(Settings(), backend="e5")


ANGRY = [
    "🤬",
    "💩",
    "😡",
    "😡😡😡",
    "👎",
    "😡😡😡!!!",
    "@SAS 🤬🤬 #fail https://t.co/x1",
    # Instagram, TikTok and YouTube handles hold dots and dashes: "@kari" was taken for the
    # handle and ".nordmann" left behind as a word, and the model called the reply neutral
    "@kari.nordmann 🤬🤬",
    "@telenor.norge 😡",
    "@ola-hansen 👎",
]


def test_angry_emoji_only_posts_are_confidently_negative(shipped: Scorer) -> None:
    scored = shipped.score(ANGRY, [None] * len(ANGRY))
    got = {text: (s.label, round(s.negative, 2)) for text, s in zip(ANGRY, scored, strict=True)}
    assert all(label == "negative" and p >= 0.75 for label, p in got.values()), got


def test_a_handle_ends_at_its_last_word_character() -> None:
    """A dot or dash between word characters is part of a handle; a full stop after it is not."""
    assert emoji_only("@kari.nordmann 🤬🤬") == ["🤬", "🤬"]
    assert HANDLE.sub("", "Sendt til @ola.hansen.") == "Sendt til ."
    assert clean_for_detection("Sendt til @ola.hansen i dag") == "Sendt til i dag"


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
    assert EMOJI_RULE == "rule:emoji-2"


def test_every_backend_gets_the_rule() -> None:
    lexicon = load_scorer(Settings(), backend="lexicon")
    (sentiment,) = lexicon.score(["😂😡"], ["nb"])
    assert sentiment.label == "neutral" and sentiment.neutral <= 0.5


# Mixed emoji: a clear majority wins (at least twice the opposing weight), weakened by the rest.


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("😖😞😁", "negative"),  # 1.4 against 0.7: exactly twice
        ("😡😡👍", "negative"),
        ("❤️❤️😢", "positive"),
        ("😡😡😡 👍 🦄", "negative"),  # emoji outside the table still carry nothing
        ("👍👍👍😂😡", "positive"),
        ("😖 😞 😬 😁", "negative"),  # the Swedish review of docs/sentiment.md
    ],
)
def test_a_clear_majority_of_emoji_wins(text: str, label: str) -> None:
    from streams.sentiment.emoji import EMOJI_RULE, EmojiRuleScorer

    inner = Recording()
    (sentiment,) = EmojiRuleScorer(inner).score([text], [None])
    assert inner.calls == []
    assert (sentiment.label, sentiment.decided_by) == (label, EMOJI_RULE), (text, sentiment)


def test_the_opposing_emoji_lower_the_majority_s_confidence() -> None:
    from streams.sentiment.emoji import emoji_only, emoji_sentiment

    def negative(text: str) -> float:
        found = emoji_only(text)
        assert found is not None
        return emoji_sentiment(found).negative

    # One-sided posts are as before: the strongest emoji's probability, repeats add nothing.
    assert negative("😡") == negative("😡😡") == pytest.approx(0.85)
    # Each opposing emoji takes some of it, and the rest of the post keeps it above the others.
    assert negative("😡😡😡") > negative("😡😡😡👍") > negative("😡😡👍") > 0.5
    weakest = emoji_sentiment(["😂", "😂", "😡"])  # 1.1 against 0.85: not a clear majority
    assert weakest.label == "neutral" and weakest.neutral == pytest.approx(0.4)


@pytest.mark.parametrize(
    "text",
    [
        "😂😂🤬",  # 1.1 against 0.9
        "😡👍👍",  # 1.6 against 0.85: less than twice
        "😡😡👍👍",  # an even split
        "😂😡",
    ],
)
def test_no_clear_majority_stays_unsure(text: str) -> None:
    from streams.sentiment.emoji import EMOJI_RULE, EmojiRuleScorer

    (sentiment,) = EmojiRuleScorer(Recording()).score([text], [None])
    assert sentiment.label == "neutral" and sentiment.neutral == pytest.approx(0.4), text
    assert sentiment.decided_by == EMOJI_RULE


def test_every_emoji_in_the_table_wins_at_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """At exactly twice the opposing weight the majority's label must still be the likeliest,
    for the weakest emoji of the table too (a probability below about 0.46 would not be)."""
    from streams.sentiment.emoji import POLARITY, emoji_sentiment

    for emoji, polarity in list(POLARITY.items()):
        # An opposing emoji of exactly half its weight (a private-use character, not in Unicode).
        monkeypatch.setitem(POLARITY, "\ue000", -polarity / 2)
        sentiment = emoji_sentiment([emoji, "\ue000"])
        want = "negative" if polarity < 0 else "positive"
        assert sentiment.label == want, (emoji, sentiment)
        # Just under twice: no clear majority.
        monkeypatch.setitem(POLARITY, "\ue000", -polarity / 2 * 1.01)
        assert emoji_sentiment([emoji, "\ue000"]).label == "neutral", emoji


# Text emoticons: a post of only emoticons (and emoji) is decided by the rule like emoji.


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (":(", "negative"),
        (":-(", "negative"),
        (":'(", "negative"),
        (">:(", "negative"),
        ("D:", "negative"),
        (":(((", "negative"),
        ("</3", "negative"),
        (":/", "negative"),
        (":-/", "negative"),
        (":)", "positive"),
        (":-)", "positive"),
        (":D", "positive"),
        ("<3", "positive"),
        ("<333", "positive"),
        ("xD", "positive"),
        (":) :)", "positive"),
        (":( 😡", "negative"),
        ("😡:(", "negative"),
        (":(!!!", "negative"),
        ("@SAS :( #fail https://t.co/x1", "negative"),
        ("https://example.com/a :/", "negative"),
        (";)", "neutral"),  # 😉: a wink to a company is as often sarcasm
        (":P", "neutral"),  # 😛: teasing either way
        (":) :(", "neutral"),
    ],
)
def test_posts_of_emoticons_are_scored_like_emoji(text: str, label: str) -> None:
    from streams.sentiment.emoji import EMOJI_RULE, EmojiRuleScorer

    inner = Recording()
    (sentiment,) = EmojiRuleScorer(inner).score([text], [None])
    assert inner.calls == [], text
    assert (sentiment.label, sentiment.decided_by) == (label, EMOJI_RULE), (text, sentiment)
    if label == "neutral":
        assert sentiment.neutral == pytest.approx(0.4)


def test_an_emoticon_reads_as_the_emoji_it_draws() -> None:
    from streams.sentiment.emoji import emoji_only

    assert emoji_only(":(") == emoji_only("🙁")
    assert emoji_only("<3 <3") == emoji_only("❤️❤️")
    assert emoji_only(":'( 😡") == ["😢", "😡"]


@pytest.mark.parametrize(
    "text",
    [
        "10:30",
        "C:/",
        "D:/",
        "C:\\Users",
        "Bra :P",
        "Elendig :(",
        "kl. 10:30 :(",
        "fly 2 :)",
        ":( 2",
        "xd",  # not an emoticon here: lower-case 'xd' is also a word piece
        ":Dd",
        "https://t.co/x1",  # nothing left once the URL is gone
        "http://example.com/",
        ":",
        "!!!",
        "-_-",
    ],
)
def test_posts_with_anything_but_emoticons_still_go_to_the_model(text: str) -> None:
    from streams.sentiment.emoji import EmojiRuleScorer

    inner = Recording()
    (sentiment,) = EmojiRuleScorer(inner).score([text], [None])
    assert inner.calls == [[text]]
    assert sentiment.decided_by is None


def test_the_emoticon_table_in_the_docs_is_the_code_s() -> None:
    """docs/sentiment.md lists every emoticon the rule reads, each beside the emoji it draws."""
    from pathlib import Path

    from streams.sentiment.emoji import EMOTICONS

    doc = (Path(__file__).parent.parent / "docs" / "sentiment.md").read_text(encoding="utf-8")
    section = doc[
        doc.index("### Emoji-only posts") : doc.index("Probabilities that are not finite")
    ]
    documented: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            quoted, drawn = line.replace("\\|", "|").split(" | ")[:2]
            for emoticon in quoted.strip("| ").split("`")[1::2]:
                documented[emoticon] = drawn
    assert set(documented) == set(EMOTICONS)
    wrong = {e: (d, EMOTICONS[e]) for e, d in documented.items() if EMOTICONS[e] not in d}
    assert not wrong
