"""The default model on posts the project wrote (docs/sentiment/posts-check.csv: 120 realistic
posts; docs/sentiment/complaints-check.csv: 40 short fragments): a known weakness with some
Scandinavian complaint words, measured, so that a model that fixes it (or one that makes it
worse) shows up here (docs/sentiment.md, "Known weakness").

Scored with the fp32 encoder, the reference the int8 default approximates: int8 figures depend
on the CPU (onnxruntime's u8 x s8 kernels saturate on CPUs without VNNI; on an AVX2-only AMD EPYC
the fragments had 8 wrong, not 7), while the fp32 ones are the same on every CPU measured
(docs/sentiment.md, "int8 and the CPU")."""

from __future__ import annotations

import csv
from typing import cast

import pytest

from streams.sentiment.base import Label, Scorer
from streams.sentiment.evaluation import compute_metrics
from streams.sentiment.factory import load_scorer
from streams.settings import Settings
from tests.conftest import REPO

CHECKS = REPO / "docs" / "sentiment"


def read(name: str) -> list[dict[str, str]]:
    with (CHECKS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return load_scorer(Settings(sentiment_runtime="onnx"), backend="e5")


@pytest.fixture(scope="module")
def predictions(scorer: Scorer) -> list[tuple[str, str, str, str]]:
    """(language, gold, predicted, text) per fragment; binary, as ``sentiment eval`` judges
    two-class gold labels: the likelier of negative and positive."""
    rows = read("complaints-check.csv")
    scores = scorer.score([r["text"] for r in rows], [r["lang"] for r in rows])
    return [
        (r["lang"], r["label"], "negative" if s.negative > s.positive else "positive", r["text"])
        for r, s in zip(rows, scores, strict=True)
    ]


def test_the_posts_score_as_documented(scorer: Scorer) -> None:
    """docs/sentiment.md: 3-class macro-F1 0.913 on the 120 posts (fp32), every English post
    right."""
    rows = read("posts-check.csv")
    assert len(rows) == 120
    scores = scorer.score([r["text"] for r in rows], [r["lang"] for r in rows])
    gold = [cast(Label, r["label"]) for r in rows]
    predicted = [s.label for s in scores]
    assert compute_metrics(gold, predicted).macro_f1 >= 0.90
    assert all(g == p for r, g, p in zip(rows, gold, predicted, strict=True) if r["lang"] == "en")


def test_the_check_set_scores_as_documented(predictions: list[tuple[str, str, str, str]]) -> None:
    """docs/sentiment.md: every praise and every English complaint right; 8 of the 15 Norwegian,
    Swedish and Danish complaints right (the default model's fp32 encoder)."""
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
