"""The tokeniser's fast path (a space-separated chunk of letters is one token without the
regular expression) finds exactly what the expression finds on the whole text."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.text import _TOKEN_OR_BREAK, _tokens_and_breaks
from tests.conftest import SHARED_DATA

AIRLINE = SHARED_DATA / "sentiment" / "airline_tweets.csv"
#: Letters of several scripts, digits, the apostrophes, every break, dashes, sigils, spaces of
#: several kinds, an underscore and a combining mark: what the expression treats differently.
ALPHABET = (
    "abzæøåÄé" + "ж中" + "09" + "'\u2019" + '\n.!?;:,\u2026\u2013\u2014()"\u201c\u201d\u201e«»'
)
ALPHABET += "-#@ \t\u00a0_\u030a"


@given(st.text(alphabet=ALPHABET, max_size=60))
@settings(max_examples=3000, deadline=None)
def test_the_fast_path_finds_what_the_expression_finds(text: str) -> None:
    assert _tokens_and_breaks(text) == _TOKEN_OR_BREAK.findall(text)


@pytest.mark.parametrize(
    "text",
    ["", " ", "a - b", "a -- b", "-a", "a-", "--a", "a--", "x @y #z's", "a\tb", "a\u00a0- b"],
)
def test_edges_of_chunks(text: str) -> None:
    assert _tokens_and_breaks(text) == _TOKEN_OR_BREAK.findall(text)


@pytest.mark.skipif(not AIRLINE.exists(), reason=f"{AIRLINE} not found (../shared/data is absent)")
def test_the_same_tokens_on_every_airline_tweet() -> None:
    with AIRLINE.open(newline="", encoding="utf-8") as handle:
        texts = [row["text"].lower() for row in csv.DictReader(handle)]
    assert len(texts) > 14_000
    differ = [t for t in texts if _tokens_and_breaks(t) != _TOKEN_OR_BREAK.findall(t)]
    assert differ == []
