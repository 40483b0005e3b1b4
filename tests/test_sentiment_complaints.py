"""The default model on short everyday complaints and praise (docs/sentiment/complaints-check.csv,
ten sentences per language written by the project): a known weakness, measured, so that a model
that fixes it (or one that makes it worse) shows up here."""

from __future__ import annotations

import csv

import pytest

from streams.sentiment.factory import load_scorer
from streams.settings import Settings
from tests.conftest import REPO

CHECK = REPO / "docs" / "sentiment" / "complaints-check.csv"


@pytest.fixture(scope="module")
def predictions() -> list[tuple[str, str, str, str]]:
    """(language, gold, predicted, text) per row; binary, as ``sentiment eval`` judges two-class
    gold labels: the likelier of negative and positive."""
    with CHECK.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    scorer = load_scorer(Settings(), backend="e5")
    scores = scorer.score([r["text"] for r in rows], [r["lang"] for r in rows])
    return [
        (r["lang"], r["label"], "negative" if s.negative > s.positive else "positive", r["text"])
        for r, s in zip(rows, scores, strict=True)
    ]


def test_the_check_set_scores_as_documented(predictions: list[tuple[str, str, str, str]]) -> None:
    """docs/sentiment.md: every praise and every English complaint right; 8 of the 15 Norwegian,
    Swedish and Danish complaints right (the default model, int8)."""
    assert len(predictions) == 40
    wrong = [(lang, text) for lang, gold, predicted, text in predictions if gold != predicted]
    assert all(gold == "negative" for _, gold, predicted, _ in predictions if gold != predicted)
    assert not [text for lang, text in wrong if lang == "en"]
    assert len(wrong) <= 7, wrong


@pytest.mark.xfail(
    reason="known weakness: 7 of 15 short nb/sv/da complaints score positive (docs/sentiment.md)",
    strict=True,
)
def test_every_scandinavian_complaint_is_negative(
    predictions: list[tuple[str, str, str, str]],
) -> None:
    missed = [text for _, gold, predicted, text in predictions if gold != predicted]
    assert missed == []
