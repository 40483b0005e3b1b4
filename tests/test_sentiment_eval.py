"""Evaluation: metrics on hand-made examples, data loading, the CLI, the shared data baselines."""

from __future__ import annotations

import csv
import json
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams.sentiment.base import Sentiment
from streams.sentiment.evaluation import (
    EvalDataError,
    Example,
    allowed_classes,
    compute_metrics,
    evaluate,
    load_dataset,
    parse_filters,
    predict_label,
    write_predictions,
)
from streams.sentiment.labels import LabelMappingError, normalise_gold, parse_label_map

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment"


class KeywordScorer:
    """Deterministic stand-in: 'good' -> positive, 'bad' -> negative, else neutral."""

    version = "keyword:1"

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str | None]]] = []

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        self.calls.append((list(texts), list(langs)))
        out = []
        for text in texts:
            if "good" in text:
                out.append(Sentiment(0.1, 0.2, 0.7))
            elif "bad" in text:
                out.append(Sentiment(0.7, 0.2, 0.1))
            elif "meh+" in text:
                out.append(Sentiment(0.2, 0.5, 0.3))  # neutral, but positive beats negative
            else:
                out.append(Sentiment(0.25, 0.5, 0.25))  # neutral; a negative/positive tie
        return out


# --- Metrics ---


def test_metrics_on_a_hand_made_confusion() -> None:
    gold = ["negative"] * 4 + ["neutral"] * 3 + ["positive"] * 3
    pred = [
        *("negative", "negative", "neutral", "positive"),
        *("neutral", "neutral", "negative"),
        *("positive", "positive", "neutral"),
    ]
    m = compute_metrics(gold, pred)  # type: ignore[arg-type]
    assert m.confusion == {
        "negative": {"negative": 2, "neutral": 1, "positive": 1},
        "neutral": {"negative": 1, "neutral": 2, "positive": 0},
        "positive": {"negative": 0, "neutral": 1, "positive": 2},
    }
    neg, neu, pos = (m.per_class[c] for c in ("negative", "neutral", "positive"))
    assert (neg.precision, neg.recall, neg.f1) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    assert (neu.precision, neu.recall, neu.f1) == pytest.approx((1 / 2, 2 / 3, 4 / 7))
    assert (pos.precision, pos.recall, pos.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (neg.support, neu.support, pos.support) == (4, 3, 3)
    assert (neg.predicted, neu.predicted, pos.predicted) == (3, 4, 3)
    assert m.macro_f1 == pytest.approx(38 / 63)
    assert m.accuracy == pytest.approx(0.6)


def test_macro_f1_is_over_gold_classes_only() -> None:
    m = compute_metrics(
        ["negative", "negative", "positive", "positive"],
        ["negative", "neutral", "positive", "positive"],
    )
    assert m.classes == ("negative", "positive")
    assert m.shown == ("negative", "neutral", "positive")
    assert m.per_class["neutral"].support == 0
    assert m.per_class["neutral"].precision == 0.0
    # negative: P 1, R 1/2, F1 2/3; positive: P 1, R 1, F1 1
    assert m.macro_f1 == pytest.approx((2 / 3 + 1) / 2)


def test_binary_gold_restricts_predictions() -> None:
    assert allowed_classes(["negative", "positive", "positive"]) == ("negative", "positive")
    assert allowed_classes(["neutral", "positive"]) == ("neutral", "positive")
    assert allowed_classes(["positive"]) == ("negative", "neutral", "positive")
    leaning_positive = Sentiment(0.2, 0.5, 0.3)
    assert predict_label(leaning_positive) == "neutral"
    assert predict_label(leaning_positive, ("negative", "positive")) == "positive"
    assert predict_label(Sentiment(0.25, 0.5, 0.25), ("negative", "positive")) == "negative"


def test_evaluate_with_a_fake_scorer(tmp_path: Path) -> None:
    examples = [
        Example(0, "good flight", "positive"),
        Example(1, "bad flight", "negative"),
        Example(2, "meh+", "positive"),
        Example(3, "plain", "positive", lang="sv", id="x3"),
        Example(4, "", "negative"),
    ]
    scorer = KeywordScorer()
    report = evaluate(
        scorer, examples, batch_size=2, detect=lambda texts, given: [g or "en" for g in given]
    )
    # Binary gold: meh+ -> positive (right), plain and "" are ties -> negative.
    assert [p.predicted for p in report.predictions] == [
        "positive",
        "negative",
        "positive",
        "negative",
        "negative",
    ]
    assert report.allowed == ("negative", "positive")
    assert report.metrics.accuracy == pytest.approx(4 / 5)
    assert [len(texts) for texts, _ in scorer.calls] == [2, 2, 1]
    assert scorer.calls[1][1] == ["en", "sv"]
    assert report.langs == {"en": 4, "sv": 1}
    out = tmp_path / "pred.jsonl"
    assert write_predictions(out, report.predictions) == 5
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines[3] == {
        "row": 3,
        "id": "x3",
        "gold": "positive",
        "predicted": "negative",
        "negative": 0.25,
        "neutral": 0.5,
        "positive": 0.25,
        "lang": "sv",
        "text": "plain",
    }
    summary = report.to_dict()
    assert summary["confusion"] == {
        "labels": ["negative", "positive"],
        "matrix": [[2, 0], [1, 2]],
    }


# --- Gold labels ---


def test_gold_label_normalisation() -> None:
    assert normalise_gold("Positive") == "positive"
    assert normalise_gold(" NEUTRAL ") == "neutral"
    assert normalise_gold("neg") is None
    assert normalise_gold("") is None
    assert normalise_gold(None) is None
    table = parse_label_map("neg=negative, pos=Positive,0=neutral")
    assert table == {"neg": "negative", "pos": "positive", "0": "neutral"}
    assert normalise_gold("NEG", table) == "negative"
    assert normalise_gold(0, table) == "neutral"
    assert normalise_gold("negative", table) == "negative"
    assert parse_label_map(["a=negative", "b=positive"]) == {"a": "negative", "b": "positive"}


@pytest.mark.parametrize("spec", ["neg", "=negative", "neg=bad"])
def test_bad_label_map(spec: str) -> None:
    with pytest.raises(LabelMappingError, match="label map entry"):
        parse_label_map(spec)


# --- Reading files ---


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


ROWS = [
    {"id": "1", "text": "good", "label": "pos", "split": "dev", "lang": "nb"},
    {"id": "2", "text": "bad", "label": "Negative", "split": "dev", "lang": ""},
    {"id": "3", "text": "good", "label": "positive", "split": "train", "lang": "sv"},
    {"id": "4", "text": "what", "label": "", "split": "dev", "lang": ""},
    {"id": "5", "text": "hm", "label": "mixed", "split": "dev", "lang": ""},
    {"id": "6", "text": "x" * 200_000, "label": "neutral", "split": "dev", "lang": ""},
]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_load_dataset_formats_filters_and_skips(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        _write_csv(path, ROWS)
    elif fmt == "json":
        path.write_text(json.dumps(ROWS), encoding="utf-8")
    else:
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n", encoding="utf-8")
    loaded = load_dataset(
        path,
        text_col="text",
        label_col="label",
        label_map=parse_label_map("pos=positive"),
        filters=parse_filters(["split=dev"]),
        lang_col="lang",
        id_col="id",
    )
    assert [(e.row, e.gold, e.lang, e.id) for e in loaded.examples] == [
        (0, "positive", "nb", "1"),
        (1, "negative", None, "2"),
        (5, "neutral", None, "6"),
    ]
    assert len(loaded.examples[2].text) == 200_000
    assert (loaded.rows_read, loaded.rows_filtered_out) == (6, 1)
    assert (loaded.skipped_blank, loaded.skipped_unknown) == (1, 1)
    assert loaded.unknown_labels == {"mixed": 1}
    limited = load_dataset(path, text_col="text", label_col="label", limit=2)
    assert [e.row for e in limited.examples] == [1, 2]


def test_load_dataset_errors(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", ROWS)
    with pytest.raises(EvalDataError, match=r"--text-col body: no such column .*id, text"):
        load_dataset(path, text_col="body", label_col="label")
    with pytest.raises(EvalDataError, match="--filter fold="):
        load_dataset(path, text_col="text", label_col="label", filters=[("fold", "1")])
    with pytest.raises(EvalDataError, match="COLUMN=VALUE"):
        parse_filters(["split"])
    odd = tmp_path / "d.txt"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(EvalDataError, match="--format"):
        load_dataset(odd, text_col="text", label_col="label")
    bad = tmp_path / "d.jsonl"
    bad.write_text('{"text": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match="line 2"):
        load_dataset(bad, text_col="text", label_col="label")
    obj = tmp_path / "o.json"
    obj.write_text('{"text": "a"}', encoding="utf-8")
    with pytest.raises(EvalDataError, match="JSON list"):
        load_dataset(obj, text_col="text", label_col="label")


# --- The command ---


@pytest.fixture
def fake_factory(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Stands in for streams.sentiment.factory; records how load_scorer was called."""
    from streams.log_setup import configure_logging

    configure_logging("WARNING", "console")  # structlog to stderr, as `stormvarsel` itself does
    seen: dict[str, object] = {}

    def load_scorer(
        settings: object,
        backend: str | None = None,
        model: str | None = None,
        say: object = None,
        label_map: str | None = None,
    ) -> KeywordScorer:
        seen.update(backend=backend, model=model, label_map=label_map)
        return KeywordScorer()

    module = types.ModuleType("streams.sentiment.factory")
    module.load_scorer = load_scorer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streams.sentiment.factory", module)
    return seen


def _cli() -> click.Group:
    from streams.sentiment_cli import sentiment_group

    return sentiment_group


def test_cli_json_and_predictions(tmp_path: Path, fake_factory: dict[str, object]) -> None:
    data = _write_csv(tmp_path / "d.csv", ROWS)
    preds = tmp_path / "p.jsonl"
    result = CliRunner().invoke(
        _cli(),
        [
            "eval",
            "--data",
            str(data),
            "--label-map",
            "pos=positive",
            "--filter",
            "split=dev",
            "--backend",
            "lexicon",
            "--lang",
            "no",
            "--json",
            "--predictions",
            str(preds),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert fake_factory == {"backend": "lexicon", "model": None, "label_map": None}
    assert out["n"] == 3
    assert out["scorer"] == "keyword:1"
    assert out["classes"] == ["negative", "neutral", "positive"]
    assert out["macro_f1"] == pytest.approx(1.0)
    assert (out["skipped_blank_label"], out["skipped_unknown_label"]) == (1, 1)
    assert out["unknown_labels"] == {"mixed": 1}
    assert out["langs"] == {"nb": 3}
    assert out["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert len(preds.read_text(encoding="utf-8").splitlines()) == 3


def test_cli_refuses_to_write_predictions_over_the_data(
    tmp_path: Path, fake_factory: dict[str, object]
) -> None:
    data = _write_csv(tmp_path / "d.csv", ROWS)
    before = data.read_bytes()
    for target in (str(data), str(tmp_path / "." / "d.csv")):
        result = CliRunner().invoke(
            _cli(), ["eval", "--data", str(data), "--backend", "lexicon", "--predictions", target]
        )
        assert result.exit_code == 2, result.output
        assert "is the --data file; it would be overwritten" in result.output
    assert data.read_bytes() == before
    assert fake_factory == {}  # refused before any model was loaded


def test_cli_table(tmp_path: Path, fake_factory: dict[str, object]) -> None:
    data = tmp_path / "d.json"
    data.write_text(
        json.dumps([{"t": "good", "y": "1"}, {"t": "bad", "y": "0"}, {"t": "meh+", "y": "1"}]),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        _cli(),
        [
            "eval",
            "--data",
            str(data),
            "--text-col",
            "t",
            "--label-col",
            "y",
            "--label-map",
            "0=negative,1=positive",
            "--lang",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "binary gold labels" in result.stdout
    assert "macro-F1 1.0000 over negative, positive" in result.stdout
    assert "confusion" in result.stdout


def test_cli_model_means_the_transformers_backend(
    tmp_path: Path, fake_factory: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--model used to be ignored unless the backend was transformers: the default e5 model was
    evaluated instead, and `--backend lexicon --model x` said nothing."""
    monkeypatch.delenv("STORMVARSEL_SENTIMENT_BACKEND", raising=False)
    data = _write_csv(tmp_path / "d.csv", ROWS)
    args = ["eval", "--data", str(data), "--lang", "none", "--json"]
    result = CliRunner().invoke(
        _cli(), [*args, "--model", "m", "--model-label-map", "LABEL_0=negative,LABEL_1=positive"]
    )
    assert result.exit_code == 0, result.output
    assert fake_factory == {
        "backend": "transformers",
        "model": "m",
        "label_map": "LABEL_0=negative,LABEL_1=positive",
    }
    fake_factory.clear()
    for extra, said in [
        (["--backend", "lexicon", "--model", "m"], "--model is for the transformers backend"),
        (["--model-label-map", "LABEL_0=negative"], "--model-label-map needs the transformers"),
        (["--model", "m", "--model-label-map", "LABEL_0=bad"], "expected MODEL_LABEL=CLASS"),
    ]:
        result = CliRunner().invoke(_cli(), [*args, *extra])
        assert result.exit_code == 2, result.output
        assert said in result.output
    assert fake_factory == {}  # refused before any model was loaded


@pytest.mark.parametrize(
    ("lang", "code"), [("nb_NO", "nb"), ("sv-SE", "sv"), ("NOB", "nb"), ("DA", "da"), ("en", "en")]
)
def test_lang_aliases_are_normalised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str, code: str
) -> None:
    scorer = KeywordScorer()
    module = types.ModuleType("streams.sentiment.factory")
    module.load_scorer = lambda *_a, **_k: scorer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streams.sentiment.factory", module)
    data = _write_csv(tmp_path / "d.csv", ROWS)
    result = CliRunner().invoke(_cli(), ["eval", "--data", str(data), "--lang", lang, "--json"])
    assert result.exit_code == 0, result.output
    assert set(scorer.calls[0][1]) == {code}


@pytest.mark.parametrize("lang", ["se", "swedish", "dk", "de", "und", ""])
def test_an_unsupported_lang_is_a_usage_error(
    tmp_path: Path, fake_factory: dict[str, object], lang: str
) -> None:
    """`--lang se` or `--lang swedish` was accepted and every text scored with English."""
    data = _write_csv(tmp_path / "d.csv", ROWS)
    result = CliRunner().invoke(_cli(), ["eval", "--data", str(data), "--lang", lang])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--lang': {lang!r} is not a supported language" in result.output
    assert "expected one of nb, nn, sv, da, en" in result.output
    assert fake_factory == {}  # refused before any model was loaded


@pytest.mark.parametrize("lang", ["none", "da"])
def test_lang_col_codes_are_normalised_whatever_lang_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    """Only --lang auto normalised --lang-col codes: with none or a fixed language, sv-SE reached
    the lexicon raw, which then used English while the live stage would use Swedish."""
    scorer = KeywordScorer()
    module = types.ModuleType("streams.sentiment.factory")
    module.load_scorer = lambda *_a, **_k: scorer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streams.sentiment.factory", module)
    rows = [
        {"text": "good", "label": "positive", "lang": code}
        for code in ("sv-SE", "nob", "NO", "eng", "und")
    ]
    data = _write_csv(tmp_path / "d.csv", rows)
    args = ["eval", "--data", str(data), "--lang-col", "lang", "--lang", lang, "--json"]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    fallback = None if lang == "none" else "da"  # und names no language: --lang fills it in
    assert scorer.calls[0][1] == ["sv", "nb", "nb", "en", fallback]


def test_cli_errors_are_one_line(tmp_path: Path, fake_factory: dict[str, object]) -> None:
    data = _write_csv(tmp_path / "d.csv", ROWS)
    result = CliRunner().invoke(_cli(), ["eval", "--data", str(data), "--label-col", "nope"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --label-col nope: no such column in d.csv (columns: id, text, label, split, lang)"
    ]
    result = CliRunner().invoke(
        _cli(), ["eval", "--data", str(data), "--filter", "split=test", "--lang", "none"]
    )
    assert result.exit_code == 1
    assert "no labelled rows to evaluate" in result.stderr


# --- The shared data: the lexicon backend reproduces the published asent baselines ---


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared evaluation data {path} is absent (a fresh clone): see the README")
    return path


@pytest.fixture(scope="module")
def lexicon_and_lid() -> tuple[object, object]:
    from streams.sentiment.language import LanguageIdentifier
    from streams.sentiment.lexicon import LexiconScorer

    return LexiconScorer(), LanguageIdentifier()


@pytest.mark.parametrize(
    ("name", "kwargs", "baseline", "classes"),
    [
        (
            "airline_tweets.csv",
            {"label_col": "airline_sentiment", "filters": [("split", "dev")]},
            0.50,
            ("negative", "neutral", "positive"),
        ),
        (
            "norec_sentence_3class_dev.json",
            {"label_col": "label"},
            0.46,
            ("negative", "neutral", "positive"),
        ),
        ("swedish_reviews_small.csv", {"label_col": "sentiment"}, 0.74, ("negative", "positive")),
    ],
)
def test_lexicon_reproduces_published_baselines(
    name: str,
    kwargs: dict[str, object],
    baseline: float,
    classes: tuple[str, ...],
    lexicon_and_lid: tuple[object, object],
) -> None:
    from streams.sentiment.language import LanguageIdentifier
    from streams.sentiment.lexicon import LexiconScorer

    scorer, lid = lexicon_and_lid
    assert isinstance(scorer, LexiconScorer)
    assert isinstance(lid, LanguageIdentifier)
    loaded = load_dataset(_shared(name), text_col="text", **kwargs)  # type: ignore[arg-type]
    assert loaded.skipped == 0
    report = evaluate(scorer, loaded.examples, batch_size=256, detect=lid.detect)
    assert report.metrics.classes == classes
    assert report.metrics.macro_f1 == pytest.approx(baseline, abs=0.05)
