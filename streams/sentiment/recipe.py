"""Train an e5 head from a recipe: which labelled files, which encoder layers, how to weigh them.

A recipe is YAML, so the shipped head can be rebuilt exactly (``docs/sentiment/default-head.yaml``)
and a team can train one on its own labelled mentions::

    version: head-acme-1
    layers: [6, 8, 10, 12]
    datasets:
      - name: acme-support
        path: labelled.csv
        text_col: text
        label_col: label
        label_map: {neg: negative, pos: positive}
        filter: {split: train}

Each dataset's classes are balanced (every class of a dataset weighs the same in total) and each
dataset weighs ``weight`` times the same; a ``holdout`` share of every dataset (stratified, seeded)
is kept out of training and scored at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.errors import StormvarselError
from streams.sentiment.base import LABELS
from streams.sentiment.e5_scorer import E5Scorer, Head
from streams.sentiment.evaluation import load_dataset, parse_hash_split
from streams.sentiment.labels import parse_label_map
from streams.sentiment.training import TrainConfig, macro_f1, predict, train_head


class RecipeError(StormvarselError):
    """The recipe file is invalid; the message names the key."""


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    path: Path
    text_col: str = "text"
    label_col: str = "label"
    format: str | None = None
    label_map: dict[str, str] = Field(default_factory=dict)
    filter: dict[str, str] = Field(default_factory=dict)
    weight: float = Field(1.0, gt=0)
    limit: int | None = Field(None, ge=1)
    hash_split: str | None = Field(
        None, description="BUCKETS:KEEP, e.g. 2:0: train on one half, keep the other for eval."
    )


class FinetuneSpec(BaseModel):
    """Fine-tune the encoder's top layers with the head (see :mod:`streams.sentiment.finetune`)."""

    model_config = ConfigDict(extra="forbid")

    keep_layers: int = Field(8, ge=1, le=12)
    train_layers: int = Field(3, ge=1, le=12)
    epochs: int = Field(3, ge=1, le=50)
    learning_rate: float = Field(5e-5, gt=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    warmup: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _tuned_within_kept(self) -> FinetuneSpec:
        if self.train_layers > self.keep_layers:
            raise ValueError(
                f"train_layers {self.train_layers} is more than keep_layers {self.keep_layers}: "
                "only kept layers can be fine-tuned"
            )
        return self


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    layers: list[int] = Field(default_factory=lambda: [6, 8, 10, 12], min_length=1)
    hidden: int = Field(0, ge=0, le=4096)
    epochs: int = Field(30, ge=1, le=1000)
    dropout: float = Field(0.2, ge=0, lt=1)
    weight_decay: float = Field(1e-3, ge=0)
    holdout: float = Field(0.1, ge=0, lt=0.9)
    seed: int = 13
    finetune: FinetuneSpec | None = None
    datasets: list[DatasetSpec] = Field(min_length=1)

    @field_validator("layers")
    @classmethod
    def _ascending(cls, layers: list[int]) -> list[int]:
        # Training builds features in encoder order and scoring pools in this order: any other
        # order would silently feed the head swapped blocks (and a repeat breaks the width).
        if layers != sorted(set(layers)):
            raise ValueError(
                f"expected layer numbers in ascending order without repeats, e.g. "
                f"{sorted(set(layers))}"
            )
        return layers

    @model_validator(mode="after")
    def _pooled_within_kept(self) -> Recipe:
        keep = self.finetune.keep_layers if self.finetune is not None else None
        if keep is not None and max(self.layers) > keep:
            raise ValueError(
                f"layers: {max(self.layers)} is not a layer to pool: finetune.keep_layers keeps "
                f"{keep}; expected numbers from 0 (the embeddings) to {keep}"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> Recipe:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            recipe = cls.model_validate(data)
        except OSError as exc:
            raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: invalid YAML ({exc})") from None
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            message = str(err.get("msg")).removeprefix("Value error, ")
            raise RecipeError(f"{path}: {where + ': ' if where else ''}{message}") from None
        base = path.parent
        for spec in recipe.datasets:
            if not spec.path.is_absolute():
                spec.path = (base / spec.path).resolve()
        return recipe

    def layers_problem(self, encoder_layers: int) -> str | None:
        """Why ``layers`` cannot be pooled from an encoder of ``encoder_layers`` layers, or None.

        Layer 0 is the embeddings, layer i the output of transformer layer i; a fine-tuned
        encoder only has its first ``finetune.keep_layers``.
        """
        top = encoder_layers
        where = f"the encoder has {encoder_layers} layers"
        if self.finetune is not None and self.finetune.keep_layers < encoder_layers:
            top = self.finetune.keep_layers
            where = f"finetune.keep_layers keeps {top} of the encoder's {encoder_layers} layers"
        bad = [layer for layer in self.layers if not 0 <= layer <= top]
        if not bad:
            return None
        return (
            f"{bad[0]} is not a layer to pool: {where}; "
            f"expected numbers from 0 (the embeddings) to {top}"
        )


@dataclass
class TrainReport:
    head: Head
    holdout_scores: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/holdout indices."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    hold: list[int] = []
    for c in range(len(LABELS)):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        cut = round(len(idx) * share)
        hold += idx[:cut].tolist()
        train += idx[cut:].tolist()
    return np.asarray(sorted(train), dtype=np.int64), np.asarray(sorted(hold), dtype=np.int64)


#: Every dataset of a recipe, read: its spec, texts and label indices (into LABELS).
RecipeData = list[tuple[DatasetSpec, list[str], np.ndarray]]


#: How to map unknown labels, said when a recipe's dataset has some.
RECIPE_LABEL_MAP_HINT = "label_map: {VALUE: negative, ...} in the recipe's dataset"


def load_recipe_data(
    recipe: Recipe,
    say: Callable[[str], None] = lambda _m: None,
    label_map_hint: str = RECIPE_LABEL_MAP_HINT,
) -> RecipeData:
    """Every dataset of the recipe: its spec, texts and label indices (into LABELS).

    Rows with a blank or unknown label are skipped, as ``sentiment eval`` skips them: a dataset
    that skipped some is told to ``say`` with its counts and ``label_map_hint`` (how to map the
    unknown values); a dataset left with no row is a :class:`RecipeError` saying the same.
    """
    out: RecipeData = []
    for spec in recipe.datasets:
        loaded = load_dataset(
            spec.path,
            text_col=spec.text_col,
            label_col=spec.label_col,
            fmt=spec.format,
            label_map=parse_label_map([f"{k}={v}" for k, v in spec.label_map.items()]) or None,
            filters=list(spec.filter.items()),
            limit=spec.limit,
            hash_split=parse_hash_split(spec.hash_split),
        )
        if not loaded.examples:
            raise RecipeError(
                f"{spec.path}: dataset {spec.name}: no labelled rows to train on "
                f"({loaded.counts(label_map_hint)})"
            )
        if loaded.skipped:
            say(
                f"{spec.name}: {len(loaded.examples)} rows used, {loaded.skipped} skipped "
                f"({loaded.counts(label_map_hint)})"
            )
        texts = [example.text for example in loaded.examples]
        # int64 whatever the rows: np.asarray([]) is float64, which np.bincount refuses.
        labels = np.asarray(
            [LABELS.index(example.gold) for example in loaded.examples], dtype=np.int64
        )
        out.append((spec, texts, labels))
    return out


def train_from_recipe(
    recipe: Recipe,
    features_of: Callable[[list[str], tuple[int, ...]], np.ndarray],
    say: Callable[[str], None] = lambda _m: None,
    max_length: int = 128,
    data: RecipeData | None = None,
) -> TrainReport:
    """Load every dataset, embed it, train on the rest and score the holdout of each.

    ``max_length`` is the tokens kept per text (``features_of`` must truncate to it; it is
    recorded in the head's card). ``data`` is the recipe's datasets when the caller has read
    them already (:func:`load_recipe_data`); they are read here otherwise. A recipe with
    ``finetune`` trains the encoder's top layers too, on the packaged encoder (torch;
    ``features_of`` is not used): :func:`streams.sentiment.finetune.finetune_from_recipe`.
    """
    if recipe.finetune is not None:
        from streams.sentiment.e5_model import build_model_dir
        from streams.sentiment.factory import e5_dir
        from streams.sentiment.finetune import finetune_from_recipe
        from streams.settings import Settings

        base = build_model_dir(e5_dir(Settings()), say=say)
        return finetune_from_recipe(recipe, base, say=say, max_length=max_length, data=data)
    layers = tuple(recipe.layers)
    parts: list[tuple[str, np.ndarray, np.ndarray, float]] = []
    report_rows: dict[str, int] = {}
    for spec, texts, labels in load_recipe_data(recipe, say) if data is None else data:
        say(f"{spec.name}: embedding {len(texts)} texts ...")
        parts.append((spec.name, features_of(texts, layers), labels, spec.weight))
        report_rows[spec.name] = len(texts)

    train_x, train_y, train_w = [], [], []
    holdouts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, x, y, weight in parts:
        tr, ho = _split(y, recipe.holdout, recipe.seed)
        counts = np.bincount(y[tr], minlength=len(LABELS)).astype(float)
        present = max(1, int((counts > 0).sum()))
        per_class = len(tr) / (present * np.maximum(counts, 1.0))
        train_x.append(x[tr])
        train_y.append(y[tr])
        train_w.append(per_class[y[tr]] / len(tr) * weight)
        if len(ho):
            holdouts[name] = (x[ho], y[ho])
    weights = np.concatenate(train_w)
    if not len(weights):
        raise RecipeError(no_training_rows(recipe.holdout))
    config = TrainConfig(
        hidden=recipe.hidden,
        epochs=recipe.epochs,
        dropout=recipe.dropout,
        weight_decay=recipe.weight_decay,
        seed=recipe.seed,
    )
    say(f"training the head on {len(weights)} examples ...")
    card: dict[str, Any] = {
        "version": recipe.version,
        "datasets": report_rows,
        "max_length": max_length,
    }
    head = train_head(
        np.concatenate(train_x),
        np.concatenate(train_y),
        layers,
        config=config,
        sample_weight=weights / weights.mean(),
        card=card,
    )
    scores = {}
    for name, (x, y) in holdouts.items():
        classes = sorted(set(y.tolist()))
        classes = classes if len(classes) == 2 else list(range(len(LABELS)))
        scores[name] = round(macro_f1(y, predict(head, x, classes), classes), 4)
    head.card["holdout_macro_f1"] = scores
    return TrainReport(head=head, holdout_scores=scores, rows=report_rows)


def no_training_rows(holdout: float) -> str:
    return (
        f"no rows left to train on: the holdout share {holdout:g} keeps every row of every "
        "dataset out of training; lower it or add rows"
    )


def scorer_features(scorer: E5Scorer) -> Callable[[list[str], tuple[int, ...]], np.ndarray]:
    """Features from the runtime encoder itself, run as scoring runs it (int8: one text per
    run), so training sees what scoring will see."""

    def features_of(texts: list[str], layers: tuple[int, ...]) -> np.ndarray:
        if tuple(layers) != scorer.head.layers:
            raise RecipeError(
                f"the encoder was exported for layers {list(scorer.head.layers)}, "
                f"the recipe asks for {list(layers)}"
            )
        return scorer.features(texts)

    return features_of
