"""A text longer than the token limit is scored by its start and its end, in both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streams.sentiment.e5_scorer import QUERY_PREFIX, SHIPPED_HEAD, E5Scorer, Head
from streams.sentiment.factory import encoder_dir, ensure_onnx, onnx_dir
from streams.sentiment.truncation import clip_chars, keep_ends
from streams.settings import Settings

INTRO = (
    "I have flown with this airline for many years and have always enjoyed the friendly crew, "
    "the comfortable seats, the good coffee and the punctual departures. "
)
COMPLAINT = (
    "But today was a disaster: they lost my luggage, cancelled my flight, and the staff were "
    "rude. Never again, absolutely terrible!"
)


def test_keep_ends_keeps_the_first_and_the_last_half() -> None:
    ids = list(range(10))
    assert keep_ends(ids, 10) == ids
    assert keep_ends(ids, 4) == [0, 1, 8, 9]
    assert keep_ends(ids, 5) == [0, 1, 2, 8, 9]
    assert keep_ends(ids, 2) == [0, 9]  # the start and end tokens


def test_clip_chars_keeps_both_ends_of_a_huge_text() -> None:
    text = "a" * 5000 + "MIDDLE" + "z" * 5000
    clipped = clip_chars(text, 128)  # 2,048 characters each end
    assert clipped.startswith("a" * 2048) and clipped.endswith("z" * 2048)
    assert "MIDDLE" not in clipped and len(clipped) == 2 * 2048 + 1
    assert clip_chars("short", 128) == "short"


@pytest.fixture(scope="module")
def e5(tmp_path_factory: pytest.TempPathFactory) -> E5Scorer:
    """The shipped model on its fp32 encoder: the truncation is the point, and int8 scores move
    with the CPU (docs/sentiment.md, "int8 and the CPU"; on an AVX2-only CPU int8 read the
    complaint below as positive)."""
    head = Head.load(SHIPPED_HEAD)
    model_dir = encoder_dir(Settings(), head)
    ensure_onnx(model_dir, head.layers)
    onnx = onnx_dir(model_dir, head.layers) / "encoder.onnx"
    return E5Scorer(model_dir, head, runtime="onnx", onnx_path=onnx, max_length=128, threads=1)


def test_e5_keeps_the_start_and_the_end_of_a_long_text(e5: E5Scorer) -> None:
    text = INTRO * 3 + COMPLAINT
    full = e5.tokenizer.encode(QUERY_PREFIX + text).ids
    assert len(full) > 128
    kept = e5.tokenize([text])[0]
    assert kept == full[:64] + full[-64:]
    assert kept[-1] == e5.tokenizer.token_to_id("</s>")


def test_e5_scores_the_complaint_at_the_end_of_a_long_post(e5: E5Scorer) -> None:
    """The reviewer's post: 598 characters, friendly for 130 tokens, then the complaint. Scored
    by its first 128 tokens it came out positive (0.972)."""
    sentiment = e5.score([INTRO * 3 + COMPLAINT], ["en"])[0]
    assert sentiment.label == "negative"


torch = pytest.importorskip("torch")


def test_transformers_keeps_the_start_and_the_end_of_a_long_text(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from streams.sentiment.hf_backend import TransformersScorer
    from tests.test_sentiment_hf import build_tiny_model

    directory = build_tiny_model(tmp_path / "tiny", {0: "NEG", 1: "NEU", 2: "POS"})
    threads = torch.get_num_threads()
    try:
        scorer = TransformersScorer(str(directory), max_length=16, threads=1)
    finally:
        torch.set_num_threads(threads)
    lead = "the flight was great and the crew was lovely " * 4
    endings = ["terrible delay again, lost my bag", "tak for en god oplevelse"]
    texts = [lead + ending for ending in endings]
    probs = scorer.predict_proba([*texts, "ok"])  # padded beside a short text

    # The model's own softmax over the first 8 and the last 8 tokens of each text.
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    with torch.inference_mode():
        for text, row in zip(texts, probs, strict=False):
            full = tokenizer(text)["input_ids"]
            assert len(full) > 16
            ids = torch.tensor([full[:8] + full[-8:]])
            expected = torch.softmax(model(input_ids=ids).logits, dim=-1)[0].numpy()
            assert np.allclose(row, expected, atol=1e-5)
    # Same first 16 tokens, different endings: the ending counts.
    assert not np.allclose(probs[0], probs[1], atol=1e-4)


def test_truncated_texts_are_counted_by_backend() -> None:
    """``stormvarsel_sentiment_truncated``: how many texts lost their middle, per backend."""
    from prometheus_client import REGISTRY

    from streams.sentiment.truncation import log_truncated

    def counted() -> float:
        sample = REGISTRY.get_sample_value(
            "stormvarsel_sentiment_truncated_total", {"backend": "e5"}
        )
        return sample or 0.0

    before = counted()
    log_truncated([10, 128, 129, 400], 128, "e5")
    assert counted() == before + 2
