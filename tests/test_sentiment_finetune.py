"""Fine-tuning the encoder's top layers: recipe, cached lower layers, patched encoder, targets."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from streams.sentiment.e5_model import build_tuned_dir
from streams.sentiment.e5_scorer import SHIPPED_HEAD, E5Scorer, Head
from streams.sentiment.evaluation import evaluate, load_dataset
from streams.sentiment.factory import e5_dir, ensure_onnx, install_e5
from streams.sentiment.finetune import TuneConfig, Tuner, balanced_weights
from streams.sentiment.recipe import Recipe, RecipeError, train_from_recipe
from streams.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment"

ROWS = [
    ("Terrible service, lost my bag again", "negative"),
    ("Worst airline ever, never again", "negative"),
    ("Forsinket igjen, helt håpløst", "negative"),
    ("Thanks for the great flight!", "positive"),
    ("Supert, takk for hjelpen", "positive"),
    ("Jag älskar den här appen", "positive"),
    ("The flight leaves at 9", "neutral"),
    ("Butikken åpner klokka ti", "neutral"),
    ("Where is gate 12?", "neutral"),
]


@pytest.fixture(scope="module")
def base_dir() -> Path:
    from streams.sentiment.e5_model import build_model_dir

    return build_model_dir(e5_dir(Settings()))


def test_balanced_weights_give_every_class_the_same_total() -> None:
    labels = np.asarray([0, 0, 0, 1, 2, 2])
    weights = balanced_weights(labels, 2.0)
    totals = [weights[labels == c].sum() for c in range(3)]
    assert totals == pytest.approx([2 / 3] * 3)


@pytest.mark.parametrize("balanced_by", ["sample_weight", "train_head"])
def test_head_training_balances_classes_once(balanced_by: str) -> None:
    """Recipes pass per-dataset balanced sample weights; train_head also weighed classes by
    1/frequency, so a 10% class got 5.8x the loss mass of a 60% class and was over-predicted."""
    from streams.sentiment.training import TrainConfig, train_head

    labels = np.repeat([0, 1, 2], [30, 180, 90])  # 10% / 60% / 30%
    features = np.zeros((len(labels), 4), np.float32)  # no signal: the head learns the prior
    weights = balanced_weights(labels, 1.0) if balanced_by == "sample_weight" else None
    head = train_head(
        features,
        labels,
        (1,),
        config=TrainConfig(hidden=0, epochs=40, batch_size=300, learning_rate=0.05),
        sample_weight=None if weights is None else weights / weights.mean(),
    )
    prior = head.probabilities(features[:1])[0]
    assert prior == pytest.approx([1 / 3] * 3, abs=0.03), prior


def test_recipe_finetune_section_is_validated(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "version: t\nfinetune: {keep_layers: 8, train_layers: 2, nope: 1}\n"
        "datasets: [{name: a, path: a.csv}]\n"
    )
    with pytest.raises(RecipeError, match=r"finetune\.nope"):
        Recipe.load(recipe)


def test_cached_lower_layers_give_the_full_model_features(base_dir: Path) -> None:
    """Frozen layers run once and cached (fp16) + top layers = the truncated model, pooled."""
    import torch
    from transformers import AutoModel

    config = TuneConfig(keep_layers=4, train_layers=2)
    tuner = Tuner(base_dir, config, (1, 3, 4))
    texts = [text for text, _ in ROWS]
    ids = tuner.tokenize(texts)
    features = tuner.features(tuner.cache(ids))
    model = AutoModel.from_pretrained(base_dir, add_pooling_layer=False).eval()
    reference = []
    with torch.inference_mode():
        for seq in ids:
            hidden = model(input_ids=torch.tensor([seq]), output_hidden_states=True).hidden_states
            reference.append(torch.cat([hidden[i].mean(1) for i in (1, 3, 4)], 1)[0].numpy())
    assert np.abs(features - np.stack(reference)).max() < 0.02  # fp16 cache


def test_finetune_recipe_end_to_end(tmp_path: Path, base_dir: Path) -> None:
    """A tiny recipe: the head file carries the tuned layers, the encoder is patched and scores."""
    data = tmp_path / "d.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(ROWS * 2)
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        "version: tiny-1\nlayers: [1, 2]\nepochs: 2\nholdout: 0.34\n"
        "finetune: {keep_layers: 2, train_layers: 1, epochs: 1, batch_size: 4}\n"
        "datasets: [{name: tiny, path: d.csv}]\n"
    )
    report = train_from_recipe(Recipe.load(recipe_file), features_of=lambda *_: np.zeros(0))
    head = report.head
    assert head.keep_layers == 2 and head.layers == (1, 2)
    assert {int(name.split(".")[2]) for name in head.tuned} == {1}
    assert report.rows == {"tiny": 18} and set(report.holdout_scores) == {"tiny"}
    assert head.card["finetune"]["tuned_layers"] == [2]
    path = tmp_path / "tiny.npz"
    head.save(path)
    loaded = Head.load(path)
    assert loaded.encoder_id() == head.encoder_id()
    assert all(np.array_equal(loaded.tuned[k], head.tuned[k]) for k in head.tuned)

    # What encoder_dir builds in the cache (<e5_dir>/tuned/<id>), here in tmp_path.
    model_dir = build_tuned_dir(base_dir, tmp_path / loaded.encoder_id(), 2, loaded.tuned)
    onnx = ensure_onnx(model_dir, loaded.layers) / "encoder-int8.onnx"
    assert json.loads((onnx.parent / "export.json").read_text())["fp32_matmuls"] == [
        "/encoder/encoder/layer.1/output/dense/MatMul"
    ]
    scorer = E5Scorer(model_dir, loaded, onnx_path=onnx, threads=1)
    torch_scorer = E5Scorer(model_dir, loaded, runtime="torch", threads=1)
    texts = [text for text, _ in ROWS]
    a = scorer.probabilities(texts)
    b = torch_scorer.probabilities(texts)
    assert a.shape == (len(ROWS), 3) and np.abs(a - b).max() < 0.1


# --- The shipped model on the shared evaluation data (skipped in a fresh clone) ---


def _norec_dev() -> Path:
    path = SHARED / "norec_sentence_3class_dev.json"
    if not path.exists():
        pytest.skip(f"shared evaluation data {path} is absent (a fresh clone): see the README")
    return path


def test_shipped_model_meets_the_norec_target_and_int8_keeps_full_precision() -> None:
    settings = Settings()
    model_dir = install_e5(settings)
    head = Head.load(SHIPPED_HEAD)
    examples = load_dataset(_norec_dev(), text_col="text", label_col="label").examples
    onnx = ensure_onnx(model_dir, head.layers)
    scores = {}
    for runtime, name in (("onnx-int8", "encoder-int8.onnx"), ("onnx", "encoder.onnx")):
        scorer = E5Scorer(model_dir, head, runtime=runtime, onnx_path=onnx / name, threads=2)
        scores[runtime] = evaluate(scorer, examples, batch_size=256).metrics.macro_f1
    assert scores["onnx-int8"] >= 0.65, scores
    assert abs(scores["onnx-int8"] - scores["onnx"]) <= 0.01, scores


def test_train_refuses_an_out_it_cannot_write_before_training(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streams.sentiment_train_cli import train_command

    data = tmp_path / "d.csv"
    data.write_text("text,label\nbra,positive\nfælt,negative\n", encoding="utf-8")
    out = tmp_path / "no-such-dir" / "head"
    result = CliRunner().invoke(train_command, ["--data", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"cannot write a file in {out.parent}" in result.output


def refuse_encoder_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options refused before training: building the encoder (tens of seconds) fails the test."""
    import streams.sentiment.e5_model as e5_model

    def no_build(*_args: object, **_kwargs: object) -> Path:
        raise AssertionError("the encoder must not be built for refused options")

    monkeypatch.setattr(e5_model, "build_model_dir", no_build)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--layers", "6,99"], "Invalid value for --layers: 99 is not a layer to pool"),
        (["--layers", "-1"], "Invalid value for --layers: -1 is not a layer to pool"),
        (["--layers", "6,x"], "expected comma-separated layer numbers, e.g. 6,8,10,12, got '6,x'"),
    ],
)
def test_train_refuses_layers_the_encoder_lacks_before_building_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    """A layer beyond the encoder's failed the ONNX export (~20 s in) with an IndexError."""
    from click.testing import CliRunner

    from streams.sentiment_train_cli import train_command

    refuse_encoder_build(monkeypatch)
    data = tmp_path / "d.csv"
    data.write_text("text,label\nbra,positive\nfælt,negative\n", encoding="utf-8")
    out = tmp_path / "head"
    result = CliRunner().invoke(train_command, ["--data", str(data), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert said in result.output
    if "not a layer" in said:
        assert "expected numbers from 0 (the embeddings) to 12" in result.output


def test_recipe_layers_beyond_the_kept_layers_name_the_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "version: t\nlayers: [6, 10]\nfinetune: {keep_layers: 8}\n"
        "datasets: [{name: a, path: a.csv}]\n"
    )
    with pytest.raises(RecipeError) as exc:
        Recipe.load(recipe)
    assert str(exc.value) == (
        f"{recipe}: layers: 10 is not a layer to pool: finetune.keep_layers keeps 8; "
        "expected numbers from 0 (the embeddings) to 8"
    )
    recipe.write_text("version: t\nlayers: [6, 10]\ndatasets: [{name: a, path: a.csv}]\n")
    assert Recipe.load(recipe).layers_problem(12) is None


@pytest.mark.parametrize(
    ("body", "said"),
    [
        # Tuner built features in encoder order, the scorer pools in recipe order: the head was
        # fitted on swapped blocks and the deployed model scored garbage, silently.
        ("layers: [8, 4]", "layers: expected layer numbers in ascending order without repeats"),
        ("layers: [6, 8, 8]", "e.g. [6, 8]"),  # crashed with a width mismatch
        # first_tuned went negative: accepted, then crashed after caching every text.
        (
            "layers: [2]\nfinetune: {keep_layers: 2, train_layers: 4}",
            "finetune: train_layers 4 is more than keep_layers 2",
        ),
    ],
)
def test_recipe_refuses_layers_training_would_get_wrong(
    tmp_path: Path, body: str, said: str
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"version: t\n{body}\ndatasets: [{{name: a, path: a.csv}}]\n")
    with pytest.raises(RecipeError, match=re.escape(said)) as exc:
        Recipe.load(recipe)
    assert "\n" not in str(exc.value) and "Value error" not in str(exc.value)


def test_train_refuses_unordered_layers_as_an_option_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streams.sentiment_train_cli import train_command

    data = tmp_path / "d.csv"
    data.write_text("text,label\nbra,positive\nfælt,negative\n", encoding="utf-8")
    result = CliRunner().invoke(
        train_command,
        ["--data", str(data), "--out", str(tmp_path / "head"), "--layers", "12,6"],
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for --layers: expected layer numbers in ascending order" in result.output


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--holdout", "5"], 2, "Invalid value for '--holdout': 5.0 is not in the range 0<=x<0.9"),
        (["--holdout", "nan"], 2, "'--holdout': 'nan' is not a finite number"),
        (["--version", "a b"], 2, "Invalid value for --version: String should match pattern"),
        (["--filter", "split"], 1, "error: --filter 'split': expected COLUMN=VALUE"),
        (["--label-map", "neg"], 1, "error: label map entry 'neg': expected DATASET_LABEL=CLASS"),
    ],
)
def test_train_options_the_recipe_refuses_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, said: str
) -> None:
    """pydantic's five-line report, 'dictionary update sequence element #0 has length 1', or (a
    --label-map entry without '=') silently dropped."""
    from click.testing import CliRunner

    from streams.sentiment_train_cli import train_command

    refuse_encoder_build(monkeypatch)
    data = tmp_path / "d.csv"
    data.write_text("text,label\nbra,positive\nfælt,negative\n", encoding="utf-8")
    result = CliRunner().invoke(
        train_command, ["--data", str(data), "--out", str(tmp_path / "head"), *args]
    )
    assert result.exit_code == code, result.output
    assert said in result.output
    assert len(result.output.strip().splitlines()) in (1, 4)  # error:, or click's usage error


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--layers", "6,8"], "--layers"),
        (["--holdout", "0.2", "--version", "v2"], "--holdout, --version"),
        (
            ["--text-col", "t", "--label-col", "y", "--filter", "split=train"],
            "--text-col, --label-col, --filter",
        ),
        (["--format", "csv", "--label-map", "neg=negative"], "--format, --label-map"),
    ],
)
def test_train_refuses_data_options_beside_a_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], named: str
) -> None:
    """They were silently ignored: the recipe's layers, holdout, version and columns were used."""
    from click.testing import CliRunner

    from streams.sentiment_train_cli import train_command

    refuse_encoder_build(monkeypatch)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: r1\ndatasets: [{name: a, path: a.csv}]\n")
    result = CliRunner().invoke(
        train_command, ["--recipe", str(recipe), "--out", str(tmp_path / "head"), *args]
    )
    assert result.exit_code == 2, result.output
    assert f"Error: {named} only go with --data; with --recipe, set them in the recipe" in (
        result.output
    )


class _FakeEncoder:
    """Stands in for the int8 E5Scorer that `sentiment train` builds: records its max_length."""

    built: ClassVar[list[int]] = []

    def __init__(self, _model_dir: Path, head: Head, **kwargs: object) -> None:
        self.head = head
        self.max_length = int(kwargs.get("max_length", 128))  # type: ignore[call-overload]
        _FakeEncoder.built.append(self.max_length)

    def features(self, texts: list[str]) -> np.ndarray:
        rng = np.random.default_rng(len(texts))
        return rng.normal(size=(len(texts), self.head.mean.shape[0])).astype(np.float32)


def _train_on_fake_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`sentiment train --data d.csv --layers 6` with _FakeEncoder for the int8 encoder; the
    head it wrote."""
    from click.testing import CliRunner

    import streams.sentiment.e5_model as e5_model
    import streams.sentiment.e5_scorer as e5_scorer
    import streams.sentiment.factory as factory
    from streams.sentiment_train_cli import train_command

    monkeypatch.setattr(e5_model, "build_model_dir", lambda *_a, **_k: tmp_path)
    monkeypatch.setattr(factory, "ensure_onnx", lambda *_a, **_k: tmp_path)
    monkeypatch.setattr(e5_scorer, "E5Scorer", _FakeEncoder)
    data = _write_rows(tmp_path / "d.csv")
    out = tmp_path / "head.npz"
    result = CliRunner().invoke(
        train_command, ["--data", str(data), "--layers", "6", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _write_rows(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *ROWS * 2])
    return path


def test_train_truncates_as_scoring_does_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training features were always cut at 128 tokens, whatever STORMVARSEL_SENTIMENT_MAX_LENGTH
    made the scorer keep: the head saw texts scoring never shows it."""
    monkeypatch.setenv("STORMVARSEL_SENTIMENT_MAX_LENGTH", "32")
    _FakeEncoder.built.clear()
    out = _train_on_fake_encoder(tmp_path, monkeypatch)
    assert _FakeEncoder.built == [32]
    assert Head.load(out).card["max_length"] == 32


def test_finetuning_truncates_to_max_length(base_dir: Path) -> None:
    """The fine-tuner cut every text at 128 tokens, whatever the scorer keeps."""
    long_text = "kundeservice svarte aldri " * 100
    tuner = Tuner(base_dir, TuneConfig(keep_layers=2, train_layers=1, max_length=24), (1, 2))
    assert [len(ids) for ids in tuner.tokenize([long_text, "ok"])] == [24, 6]


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths `sentiment train` reads its datasets from, one entry per read."""
    import streams.sentiment.recipe as recipe_module

    reads: list[str] = []
    real = recipe_module.load_dataset

    def counted(path: Path, *args: object, **kwargs: object) -> object:
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(recipe_module, "load_dataset", counted)
    return reads


def test_train_reads_its_data_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data was read up front (to find a wrong column before the encoder export) and again
    for training: twice the time and memory on a large file."""

    reads = _counting_reads(monkeypatch)
    out = _train_on_fake_encoder(tmp_path, monkeypatch)
    assert reads == ["d.csv"]
    assert Head.load(out).card["datasets"] == {"d": len(ROWS) * 2}


def test_train_with_a_finetune_recipe_skips_the_onnx_export(
    base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fine-tuning runs the packaged encoder in torch, yet `sentiment train --recipe` exported
    the int8 ONNX encoder for the recipe's layers first (about a minute, thrown away)."""
    from click.testing import CliRunner

    import streams.sentiment.factory as factory
    from streams.sentiment_train_cli import train_command

    def no_export(*_args: object, **_kwargs: object) -> Path:
        raise AssertionError("a finetune recipe must not export the ONNX encoder")

    monkeypatch.setattr(factory, "ensure_onnx", no_export)
    reads = _counting_reads(monkeypatch)
    data = _write_rows(tmp_path / "d.csv")
    recipe = tmp_path / "tune.yaml"
    recipe.write_text(
        "version: tiny\nlayers: [1, 2]\nhidden: 0\nepochs: 2\nholdout: 0\n"
        "finetune: {keep_layers: 2, train_layers: 1, epochs: 1, batch_size: 8}\n"
        f"datasets: [{{name: d, path: {data}}}]\n"
    )
    out = tmp_path / "tuned.npz"
    result = CliRunner().invoke(train_command, ["--recipe", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert reads == ["d.csv"]
    assert Head.load(out).card["datasets"] == {"d": len(ROWS) * 2}
