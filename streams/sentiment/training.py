"""Train the e5 backend's classification head on frozen encoder features.

The encoder never changes; only a small MLP on its pooled features is fitted. Classes are
balanced, because what we report (and what a comms team needs) is macro-F1: the rare negative
class in review data matters as much as the common neutral one. Without ``sample_weight`` the loss
weighs classes inversely to their frequency; with it (recipes: already balanced per dataset) the
sample weights alone apply, since both together would weigh a class by 1/frequency squared.
Training is deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.sentiment.base import LABELS
from streams.sentiment.e5_scorer import Head


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 256
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-3
    dropout: float = 0.2
    seed: int = 13


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    layers: Sequence[int],
    *,
    config: TrainConfig = TrainConfig(),
    sample_weight: np.ndarray | None = None,
    card: dict[str, Any] | None = None,
) -> Head:
    """Fit standardisation + MLP on ``features`` [n, F] with ``labels`` (indices into LABELS)."""
    import torch

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x = features.astype(np.float32)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    xs = torch.from_numpy((x - mean) / scale)
    y = torch.from_numpy(labels.astype(np.int64))
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float32)
    class_weight = counts.sum() / np.maximum(counts, 1.0) / len(LABELS)
    weight = (
        torch.from_numpy(sample_weight.astype(np.float32)) if sample_weight is not None else None
    )

    layers_list: list[torch.nn.Module] = []
    width = x.shape[1]
    if config.hidden:
        layers_list += [
            torch.nn.Dropout(config.dropout),
            torch.nn.Linear(width, config.hidden),
            torch.nn.ReLU(),
        ]
        width = config.hidden
    layers_list += [torch.nn.Dropout(config.dropout), torch.nn.Linear(width, len(LABELS))]
    net = torch.nn.Sequential(*layers_list)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.from_numpy(class_weight) if weight is None else None, reduction="none"
    )
    n = len(labels)
    batch_size = min(config.batch_size, n)  # fewer examples than a batch: one batch of all
    steps = config.epochs * max(1, n // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=steps
    )
    step = 0
    net.train()
    while step < steps:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            if step >= steps:
                break
            idx = torch.from_numpy(order[start : start + batch_size])
            losses = loss_fn(net(xs[idx]), y[idx])
            if weight is not None:
                losses = losses * weight[idx]
            loss = losses.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
    net.eval()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = tuple(
        (m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears
    )
    card = dict(card or {})
    card.setdefault("version", "head-custom")
    card["train_config"] = config.__dict__
    card["layers"] = list(layers)
    return Head(
        layers=tuple(int(i) for i in layers),
        mean=mean,
        scale=scale,
        weights=weights,
        version=str(card["version"]),
        card=card,
    )


def macro_f1(gold: np.ndarray, predicted: np.ndarray, classes: Sequence[int]) -> float:
    scores = []
    for c in classes:
        tp = float(np.sum((predicted == c) & (gold == c)))
        fp = float(np.sum((predicted == c) & (gold != c)))
        fn = float(np.sum((predicted != c) & (gold == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))


def predict(head: Head, features: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Argmax restricted to ``classes`` (binary data: choose between negative and positive)."""
    probs = head.probabilities(features)
    restricted = np.full_like(probs, -1.0)
    restricted[:, list(classes)] = probs[:, list(classes)]
    return np.asarray(restricted.argmax(axis=1))
