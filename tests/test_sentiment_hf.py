"""The transformers backend and the id2label mapping.

The models are tiny, randomly initialised BERTs with a WordPiece tokenizer trained here, saved to a
temporary directory and loaded through TransformersScorer's real loading code: no network, no hub.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from streams.errors import StormvarselError
from streams.sentiment.labels import LabelMappingError, classify_label_name, map_id2label

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from streams.sentiment.hf_backend import ModelLoadError, TransformersScorer  # noqa: E402
from tests.sentiment_texts import EDGE_LANGS, EDGE_TEXTS  # noqa: E402

CORPUS = [
    "the flight was great and the crew was lovely",
    "terrible delay again, lost my bag",
    "flyget var bra men maten var dålig",
    "veldig dårlig service i dag",
    "tak for en god oplevelse",
    "hej med dig, hvordan går det",
]
STYLES: dict[str, dict[int, str]] = {
    "names": {0: "NEG", 1: "NEU", 2: "POS"},
    "stars": {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
    "binary": {0: "negative", 1: "positive"},
    "cardinal": {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
}


def build_tiny_model(
    directory: Path,
    id2label: dict[int, str],
    max_positions: int = 64,
    vocab_size: int | None = None,
) -> Path:
    """A 2-layer, 32-wide BERT classifier and a fast WordPiece tokenizer, saved in ``directory``.

    ``vocab_size`` smaller than the tokenizer's makes a model that fails on most texts."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        CORPUS * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_positions,
    )
    config = BertConfig(
        vocab_size=vocab_size or tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        initializer_range=0.2,  # larger random weights: outputs differ from text to text
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(1234)
    model = BertForSequenceClassification(config)
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def build_tiny_gpt2(directory: Path, eos: str | None = "<eos>") -> Path:
    """A 2-layer GPT-2 classifier (binary labels) whose tokenizer has no pad token, saved in
    ``directory``; ``eos=None`` leaves it without end-of-text and unknown tokens too."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS * 3, trainers.WordLevelTrainer(special_tokens=["<eos>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, model_max_length=64)
    config = GPT2Config(
        vocab_size=tok.get_vocab_size(),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        initializer_range=0.2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(1234)
    model = GPT2ForSequenceClassification(config)
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {style: build_tiny_model(root / style, labels) for style, labels in STYLES.items()}


@pytest.fixture(scope="module")
def scorers(model_dirs: dict[str, Path]) -> dict[str, TransformersScorer]:
    threads = torch.get_num_threads()
    try:
        return {
            style: TransformersScorer(str(path), batch_size=3, max_length=512, threads=1)
            for style, path in model_dirs.items()
        }
    finally:
        torch.set_num_threads(threads)


def raw_probs(model_dir: Path, texts: list[str], max_length: int = 64) -> np.ndarray:
    """The model's own softmax, one text at a time (no padding), for comparison."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(torch.softmax(model(**enc).logits, dim=-1)[0].numpy())
    return np.array(rows, dtype=np.float64)


# --- Loading real model directories ---


@pytest.mark.parametrize("style", list(STYLES))
def test_loads_local_directory(style: str, scorers: dict[str, TransformersScorer]) -> None:
    scorer = scorers[style]
    assert scorer.version == f"transformers:{style}@local"
    assert scorer.max_length == 64  # clamped to the model's 64 positions
    assert scorer.mapping.scheme == {"names": "names", "stars": "stars", "binary": "names"}.get(
        style, "cardinal"
    )


def test_three_label_names_match_the_models_own_softmax(
    model_dirs: dict[str, Path], scorers: dict[str, TransformersScorer]
) -> None:
    texts = [CORPUS[3], "ok", CORPUS[0] + " " + CORPUS[1], "hej"]
    got = scorers["names"].predict_proba(texts)
    expected = raw_probs(model_dirs["names"], texts)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # padding and sorting change nothing
    # Texts must score differently, or the order checks below would prove nothing.
    assert scorers["names"].predict_proba(CORPUS).std(axis=0).max() > 0.02


def test_star_model_sums_stars_per_class(
    model_dirs: dict[str, Path], scorers: dict[str, TransformersScorer]
) -> None:
    raw = raw_probs(model_dirs["stars"], CORPUS)
    got = scorers["stars"].predict_proba(CORPUS)
    np.testing.assert_allclose(got[:, 0], raw[:, 0] + raw[:, 1], atol=1e-5)
    np.testing.assert_allclose(got[:, 1], raw[:, 2], atol=1e-5)
    np.testing.assert_allclose(got[:, 2], raw[:, 3] + raw[:, 4], atol=1e-5)


def test_binary_model_has_no_neutral(
    model_dirs: dict[str, Path], scorers: dict[str, TransformersScorer]
) -> None:
    raw = raw_probs(model_dirs["binary"], CORPUS)
    for sentiment, row in zip(scorers["binary"].score(CORPUS, [None] * 6), raw, strict=True):
        assert sentiment.neutral == 0.0
        assert sentiment.negative == pytest.approx(row[0], abs=1e-5)
        assert sentiment.positive == pytest.approx(row[1], abs=1e-5)


def test_batches_are_sorted_by_length_and_returned_in_order(
    scorers: dict[str, TransformersScorer],
) -> None:
    scorer = scorers["names"]
    texts = [CORPUS[i % len(CORPUS)] * (1 + i % 4) for i in range(11)]
    together = scorer.predict_proba(texts)
    alone = np.vstack([scorer.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert scorer.predict_proba([]).shape == (0, 3)
    assert scorer.score([], []) == []


@pytest.mark.parametrize("style", list(STYLES))
def test_edge_texts_score_without_error(style: str, scorers: dict[str, TransformersScorer]) -> None:
    results = scorers[style].score(EDGE_TEXTS, EDGE_LANGS)
    assert len(results) == len(EDGE_TEXTS)
    for result in results:
        total = result.negative + result.neutral + result.positive
        assert math.isfinite(total)
        assert total == pytest.approx(1.0, abs=1e-5)


def test_whitespace_scores_as_empty(scorers: dict[str, TransformersScorer]) -> None:
    empty, blank, tabs = scorers["names"].score(["", "   ", "\n\t"], [None] * 3)
    # Rows of one batch may differ in the last float bits (BLAS), hence approx.
    for other in (blank, tabs):
        assert [other.negative, other.neutral, other.positive] == pytest.approx(
            [empty.negative, empty.neutral, empty.positive], abs=1e-6
        )


def test_threads_are_set(model_dirs: dict[str, Path]) -> None:
    before = torch.get_num_threads()
    try:
        TransformersScorer(str(model_dirs["names"]), threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unmappable_model_labels_fail_clearly(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "emotions", {0: "joy", 1: "anger", 2: "negative"})
    with pytest.raises(LabelMappingError, match=r"\['joy', 'anger'\]"):
        TransformersScorer(str(path))
    scorer = TransformersScorer(str(path), label_overrides={"joy": "positive", "anger": "negative"})
    assert scorer.mapping.classes == ("positive", "negative", "negative")


def test_label_map_setting_makes_an_anonymous_binary_model_usable(tmp_path: Path) -> None:
    """A LABEL_0/LABEL_1 model is refused on its own; the setting names the classes, through
    the factory the worker and `sentiment eval` use."""
    from streams.sentiment.factory import load_scorer
    from streams.settings import Settings

    path = build_tiny_model(tmp_path / "binary-anon", {0: "LABEL_0", 1: "LABEL_1"})
    settings = Settings(sentiment_backend="transformers", sentiment_model=str(path))
    with pytest.raises(LabelMappingError, match="STORMVARSEL_SENTIMENT_LABEL_MAP"):
        load_scorer(settings)
    named = Settings(
        sentiment_backend="transformers",
        sentiment_model=str(path),
        sentiment_label_map="LABEL_0=negative, LABEL_1=positive",
    )
    scorer = load_scorer(named).inner  # behind the emoji rule
    assert isinstance(scorer, TransformersScorer)
    assert scorer.mapping.classes == ("negative", "positive")
    raw = raw_probs(path, CORPUS[:2])
    got = scorer.predict_proba(CORPUS[:2])
    np.testing.assert_allclose(got[:, [0, 2]], raw, atol=1e-5)
    # The command-line value wins over the setting (here: the classes swapped).
    swapped = load_scorer(named, label_map="LABEL_0=positive,LABEL_1=negative").inner
    assert isinstance(swapped, TransformersScorer)
    np.testing.assert_allclose(swapped.predict_proba(CORPUS[:2])[:, [2, 0]], raw, atol=1e-5)


def test_a_tokenizer_without_a_pad_token_pads_with_its_eos(tmp_path: Path) -> None:
    """GPT-2 style models ship no pad token: every batch used to fail ("Asking to pad but the
    tokenizer does not have a padding token"), so every mention was dead-lettered."""
    path = build_tiny_gpt2(tmp_path / "gpt2")
    scorer = TransformersScorer(str(path), batch_size=4)
    texts = [CORPUS[0], "ok", CORPUS[2] + " " + CORPUS[3], "hej"]
    got = scorer.predict_proba(texts)
    expected = raw_probs(path, texts)  # one text at a time: no padding needed
    # The classifier must read each text's last real token, not a pad position.
    np.testing.assert_allclose(got[:, [0, 2]], expected, atol=1e-5)
    assert got[:, 0].std() > 0.01  # texts score differently, so the check above means something


def test_a_tokenizer_with_nothing_to_pad_with_fails_at_load(tmp_path: Path) -> None:
    path = build_tiny_gpt2(tmp_path / "gpt2-bare", eos=None)
    with pytest.raises(ModelLoadError, match="no padding, end-of-text or unknown token") as exc:
        TransformersScorer(str(path))
    _one_line_error(exc)


def test_a_model_that_cannot_score_fails_at_load(tmp_path: Path) -> None:
    """Token ids beyond the model's embeddings: loading worked, every record failed later."""
    path = build_tiny_model(tmp_path / "short-vocab", STYLES["names"], vocab_size=5)
    with pytest.raises(ModelLoadError, match="cannot score a probe text") as exc:
        TransformersScorer(str(path))
    _one_line_error(exc)


# --- Failing to load: one clear line, no network ---


def _one_line_error(exc: pytest.ExceptionInfo[StormvarselError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such directory") as exc:
        TransformersScorer(str(tmp_path / "nope" / "model"))
    _one_line_error(exc)
    with pytest.raises(ModelLoadError, match="no such directory"):
        TransformersScorer("./not-here")


def test_a_missing_relative_directory_shaped_like_a_hub_id_says_no_such_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model models/my-xlmr`` (meant as a directory, not there) looks like org/name: the
    Hub error must also say that no such local directory exists."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as exc:
        TransformersScorer("models/my-xlmr", cache_dir=tmp_path / "hf-cache")
    message = _one_line_error(exc)
    assert f"no such local directory: {str(tmp_path / 'models' / 'my-xlmr')!r}" in message
    with pytest.raises(ModelLoadError, match="no such directory"):
        TransformersScorer("~/stormvarsel-no-such-model")


def test_broken_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelLoadError) as exc:
        TransformersScorer(str(tmp_path))
    assert str(tmp_path) in _one_line_error(exc)


def test_hub_id_not_cached_and_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as exc:
        TransformersScorer("stormvarsel-test/not-a-model", revision="abc123", cache_dir=tmp_path)
    assert "stormvarsel-test/not-a-model@abc123" in _one_line_error(exc)


def test_hub_id_not_cached_and_hub_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    with socket.socket() as sock:  # a port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelLoadError, match="unreachable") as exc:
        TransformersScorer("stormvarsel-test/not-a-model", cache_dir=tmp_path, hub_timeout_s=2)
    assert "stormvarsel-test/not-a-model" in _one_line_error(exc)


def test_bad_device(model_dirs: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="expected cpu, cuda"):
        TransformersScorer(str(model_dirs["names"]), device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            TransformersScorer(str(model_dirs["names"]), device="cuda:0")


# --- id2label mapping ---


@pytest.mark.parametrize(
    ("id2label", "classes"),
    [
        ({0: "NEG", 1: "NEU", 2: "POS"}, ("negative", "neutral", "positive")),
        ({0: "negative", 1: "neutral", 2: "positive"}, ("negative", "neutral", "positive")),
        ({"0": "Negative", "1": "Neutral", "2": "Positive"}, ("negative", "neutral", "positive")),
        ({0: "negativ", 1: "nøytral", 2: "positiv"}, ("negative", "neutral", "positive")),
        ({0: "Negativ", 1: "Neutral", 2: "Positiv"}, ("negative", "neutral", "positive")),
        ({0: "positive", 1: "negative", 2: "neutral"}, ("positive", "negative", "neutral")),
        ({0: "neg", 1: "pos"}, ("negative", "positive")),
        ({0: "NEGATIVE", 1: "POSITIVE"}, ("negative", "positive")),
        (
            {0: "Very Negative", 1: "Negative", 2: "Neutral", 3: "Positive", 4: "Very Positive"},
            ("negative", "negative", "neutral", "positive", "positive"),
        ),
        (
            {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
            ("negative", "negative", "neutral", "positive", "positive"),
        ),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "neutral", "positive")),
    ],
)
def test_id2label_styles(id2label: dict[int | str, str], classes: tuple[str, ...]) -> None:
    assert map_id2label(id2label).classes == classes


def test_mapping_sums_probabilities_per_class() -> None:
    stars = map_id2label({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"})
    assert stars.scheme == "stars"
    np.testing.assert_allclose(
        stars.apply(np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])), [[0.3, 0.3, 0.4]]
    )
    binary = map_id2label({0: "NEGATIVE", 1: "POSITIVE"})
    assert not binary.has_neutral
    np.testing.assert_allclose(binary.apply(np.array([[0.7, 0.3]])), [[0.7, 0.0, 0.3]])


def test_cardinal_order_warns() -> None:
    with capture_logs() as logs:
        mapping = map_id2label({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, model="m")
    assert mapping.scheme == "cardinal"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "sentiment.labels.cardinal_order"
    ]


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({0: "joy", 1: "sadness", 2: "negative"}, r"\['joy', 'sadness'\]"),
        ({0: "LABEL_0", 1: "LABEL_1"}, "anonymous labels"),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}, "anonymous labels"),
        ({0: "negative", 1: "neutral"}, "no positive"),
        ({1: "negative", 2: "positive"}, "keys must be 0..1"),
        ({}, "no labels"),
        ({0: "6 stars", 1: "negative", 2: "positive"}, "6 stars"),
    ],
)
def test_unmappable_labels_raise(id2label: dict[int | str, str], message: str) -> None:
    with pytest.raises(LabelMappingError, match=message):
        map_id2label(id2label)


def test_overrides() -> None:
    mapping = map_id2label(
        {0: "LABEL_0", 1: "LABEL_1"}, overrides={"label_0": "Negative", "LABEL_1": "positive"}
    )
    assert mapping.classes == ("negative", "positive")
    assert mapping.scheme == "override"
    with pytest.raises(LabelMappingError, match="expected negative, neutral or positive"):
        map_id2label({0: "a", 1: "b"}, overrides={"a": "bad"})


def test_an_override_naming_no_model_label_is_an_error() -> None:
    """A typo (LABEL_O) or a map meant for another model was silently ignored: the model's own
    labels, or the cardinal guess, were used instead."""
    with pytest.raises(LabelMappingError) as exc:
        map_id2label(
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
            overrides={"LABEL_O": "negative", "label_1": "neutral", "pos": "positive"},
            model="m",
        )
    assert str(exc.value) == (
        "m: label override LABEL_O, pos matches none of the model's labels "
        "['LABEL_0', 'LABEL_1', 'LABEL_2'] (STORMVARSEL_SENTIMENT_LABEL_MAP or --model-label-map)"
    )


def test_the_label_map_setting_is_checked_against_the_model(tmp_path: Path) -> None:
    from streams.sentiment.factory import load_scorer
    from streams.settings import Settings

    path = build_tiny_model(tmp_path / "names", STYLES["names"])
    settings = Settings(
        sentiment_backend="transformers",
        sentiment_model=str(path),
        sentiment_label_map="LABEL_0=negative,LABEL_1=positive",
    )
    with pytest.raises(LabelMappingError, match=r"LABEL_0, LABEL_1 matches none .*'NEG', 'NEU'"):
        load_scorer(settings)


@pytest.mark.parametrize(("micro_batch", "inference_batch"), [(256, 64), (64, 64), (16, 16)])
def test_inference_batches_are_at_most_64_like_e5(
    tmp_path: Path, micro_batch: int, inference_batch: int
) -> None:
    """The whole micro-batch (256 by default) went through the model in one padded run, though
    the README promises inference batches of at most 64."""
    from streams.sentiment.factory import load_scorer
    from streams.settings import Settings

    path = build_tiny_model(tmp_path / "names", STYLES["names"])
    settings = Settings(
        sentiment_backend="transformers",
        sentiment_model=str(path),
        sentiment_batch_size=micro_batch,
    )
    scorer = load_scorer(settings).inner  # behind the emoji rule
    assert isinstance(scorer, TransformersScorer)
    assert scorer.batch_size == inference_batch


def test_classify_label_name() -> None:
    assert classify_label_name("  Strongly_Negative ") == "negative"
    assert classify_label_name("noytral") == "neutral"
    assert classify_label_name("5 Stars") == "positive"
    assert classify_label_name("3stars") == "neutral"
    assert classify_label_name("LABEL_0") is None
    assert classify_label_name("mixed") is None
