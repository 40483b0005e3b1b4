"""`sentiment train` and `sentiment eval` on awkward labelled files (found in a review of the
evaluation and training commands): a dataset with no usable row, rows dropped for unknown labels,
a stray quote in a CSV, csv's process-wide field limit, and the fine-tuning script's --out."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.sentiment import evaluation, finetune, recipe
from streams.sentiment.evaluation import EvalDataError, load_dataset
from streams.sentiment.recipe import DatasetSpec, Recipe, RecipeError


def fake_features(texts: list[str], layers: tuple[int, ...]) -> np.ndarray:
    """Features that tell the classes apart, without an encoder."""
    return np.asarray(
        [[1.0 if "good" in t else -1.0, float(len(t) % 3)] for t in texts], dtype=np.float32
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def plan(path: Path, **options: Any) -> Recipe:
    return Recipe(
        version="t", layers=[6], epochs=2, datasets=[DatasetSpec(name="d", path=path)], **options
    )


def test_a_dataset_without_usable_rows_is_refused_with_its_counts(tmp_path: Path) -> None:
    data = write(tmp_path / "num.csv", "text,label\ngood,1\nbad,0\nfine,\n")
    with pytest.raises(RecipeError) as caught:  # was a TypeError from np.bincount
        recipe.train_from_recipe(plan(data), fake_features)
    said = str(caught.value)
    assert "dataset d: no labelled rows to train on (3 read, 0 filtered out, 1 blank and 2 " in said
    assert "unknown values: '1', '0'; map them with label_map:" in said


def test_train_command_refuses_an_empty_dataset_before_the_encoder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import streams.sentiment_train_cli as train_cli

    def no_encoder(*_args: object) -> None:
        raise AssertionError("the encoder was built for a dataset with no row to train on")

    monkeypatch.setattr(train_cli, "_frozen_features", no_encoder)
    monkeypatch.setenv("STORMVARSEL_CACHE_DIR", str(tmp_path / "cache"))
    data = write(tmp_path / "num.csv", "text,label\ngood,1\nbad,0\n")
    out = tmp_path / "head.npz"
    result = CliRunner().invoke(
        main, ["sentiment", "train", "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert "no labelled rows to train on (2 read, 0 filtered out, 0 blank and 2 unknown " in (
        result.output
    )
    assert "map them with --label-map VALUE=negative,..." in result.output
    assert not out.exists()


def test_rows_with_unknown_labels_are_counted_per_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import streams.sentiment_train_cli as train_cli

    monkeypatch.setattr(train_cli, "_frozen_features", lambda *_a: fake_features)
    rows = "".join(f"good {i},positive\nbad {i},negative\n" for i in range(10))
    data = write(tmp_path / "mixed.csv", f"text,label\n{rows}meh,pos\nugh,neg\nhm,neg\nx,\n")
    out = tmp_path / "head.npz"
    result = CliRunner().invoke(
        main,
        ["sentiment", "train", "--data", str(data), "--out", str(out), "--layers", "6"],
    )
    assert result.exit_code == 0, result.output
    assert (
        "mixed: 20 rows used, 4 skipped (24 read, 0 filtered out, 1 blank and 3 unknown labels; "
        "unknown values: 'neg', 'pos'; map them with --label-map VALUE=negative,...)"
    ) in result.output
    said: list[str] = []
    recipe.load_recipe_data(plan(data), said.append)
    assert said and said[0].startswith("d: 20 rows used, 4 skipped (")
    assert said[0].endswith(
        "map them with label_map: {VALUE: negative, ...} in the recipe's dataset)"
    )


def test_balanced_weights_of_no_rows() -> None:
    weights = finetune.balanced_weights(np.asarray([]), 1.0)  # float64: np.bincount refused it
    assert weights.shape == (0,)


def test_a_holdout_that_leaves_nothing_to_train_on_is_refused(tmp_path: Path) -> None:
    data = write(tmp_path / "two.csv", "text,label\ngood,positive\nbad,negative\n")
    with pytest.raises(RecipeError, match=r"no rows left to train on: the holdout share 0\.6"):
        recipe.train_from_recipe(plan(data, holdout=0.6), fake_features)


def _stray_quote_file(path: Path, rows: int = 1000, at: int = 10) -> Path:
    lines = [f"so good {i},positive\n" for i in range(rows)]
    lines[at] = '"' + lines[at]  # line at + 2: the header is line 1
    return write(path, "text,label\n" + "".join(lines))


def test_a_quote_never_closed_stops_reading_naming_its_line(tmp_path: Path) -> None:
    """csv read the rest of the file as one cell: 989 of 1,000 rows lost, one counted blank."""
    data = _stray_quote_file(tmp_path / "quote.csv")
    with pytest.raises(EvalDataError, match=r"quote\.csv, line 12: a quote opened on this line "):
        load_dataset(data, text_col="text", label_col="label")
    result = CliRunner().invoke(
        main, ["sentiment", "eval", "--data", str(data), "--backend", "lexicon"]
    )
    assert result.exit_code == 1, result.output
    assert "line 12: a quote opened on this line is never closed" in result.output
    assert "rows evaluated" not in result.output


def test_a_cell_over_the_limit_names_its_line(tmp_path: Path) -> None:
    """A stray quote in a large file was read as a cell of up to 2 GiB, without a word."""
    data = tmp_path / "big.csv"
    body = "".join(f"so good {i},positive\n" for i in range(60_000))  # 1.2 million characters
    data.write_text('text,label\nok,positive\n"oops,negative\n' + body + 'x",positive\n')
    with pytest.raises(EvalDataError) as caught:
        load_dataset(data, text_col="text", label_col="label")
    assert "big.csv, line 3: a quoted cell opened on this line (read to line " in str(caught.value)
    assert evaluation.CSV_FIELD_LIMIT < 1_200_000
    assert f"is longer than {evaluation.CSV_FIELD_LIMIT:,} characters" in str(caught.value)


def test_csvs_own_limit_is_left_as_it_was(tmp_path: Path) -> None:
    """The limit is process-wide: eval left it at 2 GiB for every other reader (ingest's too)."""
    before = csv.field_size_limit(131_072)  # csv's default
    try:
        data = write(tmp_path / "ok.csv", "text,label\ngood,positive\n")
        assert len(load_dataset(data, text_col="text", label_col="label").examples) == 1
        assert csv.field_size_limit() == 131_072
        # A long text, within the bound, is still read.
        long = write(tmp_path / "long.csv", f'text,label\n"{"a" * 200_000}",positive\n')
        loaded = load_dataset(long, text_col="text", label_col="label")
        assert len(loaded.examples[0].text) == 200_000
        assert csv.field_size_limit() == 131_072
    finally:
        csv.field_size_limit(before)


class _Head:
    def save(self, path: Path) -> None:
        np.savez(path, x=np.zeros(1))  # numpy adds .npz to a name without it


def _recipe_file(tmp_path: Path) -> Path:
    write(tmp_path / "d.csv", "text,label\ngood,positive\n")
    return write(tmp_path / "r.yaml", "version: t\ndatasets:\n  - name: d\n    path: d.csv\n")


def test_finetune_script_adds_npz_to_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import streams.sentiment.e5_model

    monkeypatch.setattr(streams.sentiment.e5_model, "build_model_dir", lambda *_a, **_k: tmp_path)
    monkeypatch.setattr(
        finetune,
        "finetune_from_recipe",
        lambda *_a, **_k: recipe.TrainReport(head=_Head(), rows={"d": 1}),  # type: ignore[arg-type]
    )
    finetune.main(["--recipe", str(_recipe_file(tmp_path)), "--out", str(tmp_path / "head")])
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(tmp_path / "head.npz")
    assert (tmp_path / "head.npz").exists()


def test_finetune_script_says_what_is_wrong_with_the_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "r.yaml", "version: t\ndatasets: []\n")
    with pytest.raises(SystemExit) as caught:  # was a RecipeError traceback
        finetune.main(["--recipe", str(bad), "--out", str(tmp_path / "head.npz")])
    assert caught.value.code == 1
    assert capsys.readouterr().err.startswith(f"error: {bad}: datasets:")
