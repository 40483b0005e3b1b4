"""The asent lexicon backend: right polarity per language, edge texts, probabilities."""

from __future__ import annotations

import importlib.metadata
import math

import pytest

from streams.sentiment.lexicon import LexiconScorer, compound_to_probs
from tests.sentiment_texts import EDGE_LANGS, EDGE_TEXTS

CASES = [
    ("en", "This is a wonderful airline, I love the friendly crew!", "positive"),
    ("en", "Terrible service, the worst flight ever. I hate this.", "negative"),
    ("nb", "Dette var en fantastisk opplevelse, jeg er veldig fornøyd!", "positive"),
    ("nb", "Elendig service og dårlig mat, jeg er skuffet.", "negative"),
    ("nn", "Dette var ei fantastisk oppleving, eg er veldig nøgd!", "positive"),
    ("nn", "Elendig service og dårleg mat, eg er skuffa.", "negative"),
    ("sv", "Det här var en fantastisk upplevelse, jag är mycket nöjd!", "positive"),
    ("sv", "Usel service och dålig mat, jag är besviken.", "negative"),
    ("da", "Det var en fantastisk oplevelse, jeg er meget glad!", "positive"),
    ("da", "Elendig service og dårlig mad, jeg er skuffet.", "negative"),
]


@pytest.fixture(scope="module")
def scorer() -> LexiconScorer:
    return LexiconScorer()


@pytest.mark.parametrize(("lang", "text", "expected"), CASES)
def test_obvious_sentences(scorer: LexiconScorer, lang: str, text: str, expected: str) -> None:
    [result] = scorer.score([text], [lang])
    assert result.label == expected
    assert max(result.negative, result.positive) > 0.9


def test_mixed_batch_uses_each_languages_lexicon(scorer: LexiconScorer) -> None:
    """asent's lexicon lookups are process-global; each language must still get its own."""
    texts = [text for _, text, _ in CASES]
    langs = [lang for lang, _, _ in CASES]
    together = scorer.compounds(texts, langs)
    alone = [scorer.compounds([t], [lang])[0] for t, lang in zip(texts, langs, strict=True)]
    assert together == pytest.approx(alone)
    # English after the Scandinavian pipelines exist: "love"/"hate" are only in the English list.
    assert scorer.compounds(["I love it", "I hate it"], ["en", "en"])[0] > 0.5
    assert scorer.compounds(["I love it", "I hate it"], ["en", "en"])[1] < -0.5


def test_unknown_or_missing_language_uses_english(scorer: LexiconScorer) -> None:
    english = scorer.compounds(["I love this great crew"], ["en"])[0]
    assert scorer.compounds(["I love this great crew"] * 3, [None, "de", ""]) == pytest.approx(
        [english] * 3
    )
    assert LexiconScorer.pipeline_key("nn") == LexiconScorer.pipeline_key("nb")
    assert LexiconScorer.pipeline_key("NO") == ("nb", "asent_no_v1")


def test_edge_texts(scorer: LexiconScorer) -> None:
    for langs in ([None] * len(EDGE_TEXTS), EDGE_LANGS):
        results = scorer.score(EDGE_TEXTS, langs)
        assert len(results) == len(EDGE_TEXTS)
        for result in results:
            total = result.negative + result.neutral + result.positive
            assert math.isfinite(total)
            assert total == pytest.approx(1.0)
    empty, blank = scorer.score(EDGE_TEXTS[:2], [None, None])
    assert empty.label == blank.label == "neutral"
    assert scorer.score([], []) == []


def test_long_text_is_scored(scorer: LexiconScorer) -> None:
    [result] = scorer.score([EDGE_TEXTS[3]], ["en"])
    assert result.label == "negative"


def test_language_count_must_match(scorer: LexiconScorer) -> None:
    with pytest.raises(ValueError, match="langs"):
        scorer.score(["a", "b"], ["en"])


def test_version() -> None:
    assert LexiconScorer().version == f"lexicon:asent-{importlib.metadata.version('asent')}"


def test_compound_to_probabilities() -> None:
    none = compound_to_probs(0.0)
    assert none.label == "neutral"
    assert none.neutral == pytest.approx(1 / (1 + 2 * math.exp(-1.2)))
    assert none.negative == pytest.approx(none.positive)
    # VADER's decision rule: the neutral band is |compound| < 0.05.
    assert compound_to_probs(0.04).label == "neutral"
    assert compound_to_probs(0.06).label == "positive"
    assert compound_to_probs(-0.06).label == "negative"
    previous = -1.0
    for step in range(-10, 11):
        probs = compound_to_probs(step / 10)
        assert probs.negative + probs.neutral + probs.positive == pytest.approx(1.0)
        assert probs.positive >= previous
        previous = probs.positive
    assert compound_to_probs(0.9).positive > 0.99
    assert compound_to_probs(-0.9).negative > 0.99
    assert compound_to_probs(5.0) == compound_to_probs(1.0)  # clipped


@pytest.mark.parametrize(
    "text",
    [
        "Helt forferdelig service fra dere",
        "Forferdelig dårlig kundeservice",  # was positive: asent has forferdelig +4
        "For en forferdelige opplevelse",
        "Den forferdeligste flyturen jeg har hatt",
    ],
)
def test_norwegian_forferdelig_is_negative(scorer: LexiconScorer, text: str) -> None:
    [result] = scorer.score([text], ["nb"])
    assert result.label == "negative", result


def test_lexicon_fixes_are_in_the_lexicon_asent_reads(scorer: LexiconScorer) -> None:
    """Fixed in the dict the asent component looks words up in, not in a copy."""
    import asent.lang.no

    assert asent.lang.no.LEXICON["forferdelig"] == -3.0
    assert asent.lang.no.LEXICON["illevarslende"] < 0
    # Same text, same words otherwise: the fix turns the sign, it does not only add weight.
    terrible, dreadful = scorer.compounds(["forferdelig", "fryktelig"], ["nb", "nb"])
    assert terrible == pytest.approx(dreadful)


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("nb", "Bra service i dag", "positive"),  # bra (good) was missing in Norwegian
        ("da", "Bra service i dag", "positive"),  # ... and in Danish
        ("nb", "Kjempebra kundeservice", "positive"),
        ("sv", "Jättebra kundtjänst", "positive"),
        ("sv", "Urdålig kundtjänst", "negative"),
        ("nb", "Helt håpløst", "negative"),  # helt (completely) was +2, håpløst absent
        ("nb", "Usel kundeservice", "negative"),
        ("nn", "Dårleg kundeservice", "negative"),
        ("da", "Forfærdelig kundeservice", "negative"),
        ("nb", "Telenor 😡", "negative"),  # 0 in asent's emoji lexicon
        ("en", "Vodafone 🤬", "negative"),
        ("da", "TDC 👎", "negative"),
        ("nb", "DNB 💩", "negative"),
        ("sv", "Telia 😡", "negative"),  # asent's Swedish component never merged the emoji
        ("sv", "Telia 😍", "positive"),
        ("en", "Vodafone 👍", "positive"),
    ],
)
def test_common_scandinavian_words_and_emoji_count(
    scorer: LexiconScorer, lang: str, text: str, expected: str
) -> None:
    """They scored 0 (neutral): missing from asent's lexicons, or 0 in its emoji lexicon."""
    [result] = scorer.score([text], [lang])
    assert result.label == expected, result
