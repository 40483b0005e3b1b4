"""The offline default backend: the e5-small encoder (frozen) and a small trained head.

Features are mean-pooled hidden states of a few encoder layers (which ones the head file says),
computed by ONNX Runtime (int8 or fp32) or by torch. The head is a tiny numpy MLP, so scoring
needs no torch at run time when an ONNX file is present.

Throughput comes from four things: the encoder is cut to 8 layers (the shipped head was trained
with its top layers fine-tuned), texts are tokenised once and sorted by length so each batch pads
little (length bucketing under a token budget), the encoder is int8-quantised for ONNX Runtime,
and batches are small (a few hundred tokens: their activations stay in the CPU cache, measured
1.5x faster per core than 8,192-token batches) and run side by side, one per core, on one
session (single-threaded runs need no thread-pool synchronisation inside each operator).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.sentiment.base import LABELS, Sentiment
from streams.sentiment.truncation import clip_chars, keep_ends, log_truncated

log = get_logger(__name__)

QUERY_PREFIX = "query: "  # e5 models expect a prefix; "query: " suits classification
SHIPPED_HEAD = Path(__file__).with_name("heads") / "e5-small-sentiment.npz"
TOKEN_BUDGET = 512  # padded tokens per batch: small enough for the CPU cache (see above)
TUNED_PREFIX = "tuned/"  # head-file arrays holding fine-tuned encoder weights


class HeadError(StormvarselError):
    """The head file is missing or malformed."""


@dataclass(frozen=True)
class Head:
    """Standardise, one hidden ReLU layer (optional), softmax over LABELS.

    A head may also carry an encoder patch: ``keep_layers`` (the encoder is cut to its first
    that many layers; 0 keeps all) and ``tuned`` (fine-tuned encoder tensors, fp16, named as in
    transformers' ``BertModel``) that replace the packaged weights (see
    :mod:`streams.sentiment.finetune`).
    """

    layers: tuple[int, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[tuple[np.ndarray, np.ndarray], ...]
    version: str
    card: dict[str, Any]
    keep_layers: int = 0
    tuned: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def patches_encoder(self) -> bool:
        return bool(self.keep_layers or self.tuned)

    def encoder_id(self) -> str:
        """Names the patched encoder: the version and a digest of the patch."""
        digest = hashlib.sha256(str(self.keep_layers).encode())
        for name in sorted(self.tuned):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.tuned[name]).tobytes())
        return f"{self.version}-{digest.hexdigest()[:10]}"

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            if not Path(path).is_file():
                raise HeadError(f"cannot read the sentiment head {path}: no such file")
            if not zipfile.is_zipfile(path):
                # numpy's own message for such a file suggests unpickling it: never.
                raise HeadError(
                    f"{path} is not a head file written by 'stormvarsel sentiment train' "
                    "(not an .npz archive)"
                )
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise HeadError(f"cannot read the sentiment head {path}: {reason}") from None
        try:
            card = json.loads(str(arrays["card"]))
            n_layers = int(arrays["n_layers"])
            weights = tuple(
                (arrays[f"w{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32))
                for i in range(n_layers)
            )
            return cls(
                layers=tuple(int(x) for x in arrays["layers"]),
                mean=arrays["mean"].astype(np.float32),
                scale=arrays["scale"].astype(np.float32),
                weights=weights,
                version=str(card["version"]),
                card=card,
                keep_layers=int(arrays["keep_layers"]) if "keep_layers" in arrays else 0,
                tuned={
                    key.removeprefix(TUNED_PREFIX): value
                    for key, value in arrays.items()
                    if key.startswith(TUNED_PREFIX)
                },
            )
        except (KeyError, ValueError) as exc:
            raise HeadError(f"{path} is not a Stormvarsel sentiment head ({exc})") from None

    @classmethod
    def placeholder(cls, layers: tuple[int, ...], width: int = 384) -> Head:
        """An untrained head: lets the encoder run for ``layers`` before a head exists."""
        size = width * len(layers)
        zeros = np.zeros((size, len(LABELS)), dtype=np.float32)
        return cls(
            layers=layers,
            mean=np.zeros(size, dtype=np.float32),
            scale=np.ones(size, dtype=np.float32),
            weights=((zeros, np.zeros(len(LABELS), dtype=np.float32)),),
            version="untrained",
            card={"version": "untrained"},
        )

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "layers": np.asarray(self.layers, dtype=np.int32),
            "mean": self.mean,
            "scale": self.scale,
            "n_layers": np.asarray(len(self.weights)),
            "card": np.asarray(json.dumps(self.card, ensure_ascii=False)),
        }
        for i, (w, b) in enumerate(self.weights):
            arrays[f"w{i}"] = w.astype(np.float32)
            arrays[f"b{i}"] = b.astype(np.float32)
        if self.keep_layers:
            arrays["keep_layers"] = np.asarray(self.keep_layers, dtype=np.int32)
        for name, tensor in self.tuned.items():
            arrays[TUNED_PREFIX + name] = tensor.astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = (features - self.mean) / self.scale
        for i, (w, b) in enumerate(self.weights):
            # einsum, not @: BLAS picks kernels by batch size, so a row's result would depend
            # on how many rows came with it; einsum sums every row the same way.
            x = np.einsum("ij,jk->ik", x, w) + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0.0)
        x = x - x.max(axis=1, keepdims=True)
        e = np.exp(x)
        return np.asarray(e / e.sum(axis=1, keepdims=True))


class FeatureEncoder(Protocol):
    def features(self, ids: list[list[int]]) -> np.ndarray: ...

    def features_many(self, batches: list[list[list[int]]]) -> list[np.ndarray]: ...


def token_batches(lengths: Sequence[int], budget: int, max_batch: int) -> list[list[int]]:
    """Indices grouped by similar length so that len(batch) * longest <= budget."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # ascending order: the newest is the longest
        if current and ((len(current) + 1) * longest > budget or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest row, and the attention mask."""
    longest = max(len(x) for x in ids)
    input_ids = np.full((len(ids), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), longest), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


class OnnxEncoder:
    """Pooled features from an exported ONNX graph (see :mod:`streams.sentiment.e5_export`).

    ``threads`` parallel runs of one session, each single-threaded: :meth:`features_many`
    spreads batches over them (ONNX Runtime runs a session from several threads at once).
    """

    def __init__(self, path: Path, threads: int, pad_id: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.pad_id = pad_id
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def features(self, ids: list[list[int]]) -> np.ndarray:
        input_ids, mask = pad_batch(ids, self.pad_id)
        (out,) = self.session.run(["features"], {"input_ids": input_ids, "attention_mask": mask})
        return np.asarray(out, dtype=np.float32)

    def features_many(self, batches: list[list[list[int]]]) -> list[np.ndarray]:
        if self.threads < 2 or len(batches) < 2:
            return [self.features(batch) for batch in batches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="stormvarsel-onnx")
        return list(self._pool.map(self.features, batches))


class TorchEncoder:
    """Pooled features computed by transformers/torch (the reference; slower)."""

    def __init__(self, model_dir: Path, layers: tuple[int, ...], threads: int, pad_id: int) -> None:
        import torch
        from transformers import AutoModel

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
        self.layers = layers
        self.pad_id = pad_id

    def features(self, ids: list[list[int]]) -> np.ndarray:
        torch = self.torch
        input_ids, mask = pad_batch(ids, self.pad_id)
        with torch.inference_mode():
            ids_t = torch.from_numpy(input_ids)
            mask_t = torch.from_numpy(mask)
            hidden = self.model(
                input_ids=ids_t, attention_mask=mask_t, output_hidden_states=True
            ).hidden_states
            m = mask_t.unsqueeze(-1).float()
            pooled = [(hidden[i] * m).sum(1) / m.sum(1) for i in self.layers]
            return torch.cat(pooled, dim=1).numpy()

    def features_many(self, batches: list[list[list[int]]]) -> list[np.ndarray]:
        return [self.features(batch) for batch in batches]


#: cgroup v2's CPU limit of this process's group (a container's ``--cpus``).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_limit(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """The whole CPUs a cgroup quota allows (``"200000 100000"``: 2), None without a quota.

    The CPU affinity does not see a container's quota: a worker limited to 2 CPUs on a 32-core
    host would run 32 inference threads and be throttled most of each period."""
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):  # "max", no cgroup v2, unreadable
        return None


def default_threads(threads: int, cpu_max: Path | None = None) -> int:
    """``threads``, or when 0, one per CPU this process may use (affinity and cgroup quota;
    ``cpu_max`` defaults to :data:`CGROUP_CPU_MAX`)."""
    if threads:
        return threads
    cpus = max(1, len(os.sched_getaffinity(0)))
    limit = cpu_limit(CGROUP_CPU_MAX if cpu_max is None else cpu_max)
    return min(cpus, limit) if limit is not None else cpus


class E5Scorer:
    """The ``e5`` backend: implements :class:`streams.sentiment.base.Scorer`."""

    def __init__(
        self,
        model_dir: Path,
        head: Head,
        *,
        runtime: str = "onnx-int8",
        onnx_path: Path | None = None,
        threads: int = 0,
        max_length: int = 128,
        max_batch: int = 64,
    ) -> None:
        from tokenizers import Tokenizer

        self.head = head
        self.max_length = max_length
        self.max_batch = max_batch
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()  # keep_ends truncates: the start and the end are scored
        pad_id = self.tokenizer.token_to_id("<pad>")
        pad = 1 if pad_id is None else pad_id
        threads = default_threads(threads)
        self.encoder: FeatureEncoder
        if runtime.startswith("onnx"):
            if onnx_path is None or not onnx_path.exists():
                raise HeadError(
                    f"the ONNX encoder {onnx_path} is missing: stormvarsel models install"
                )
            self.encoder = OnnxEncoder(onnx_path, threads, pad)
        else:
            self.encoder = TorchEncoder(model_dir, head.layers, threads, pad)
        self.version = f"e5-small+{head.version}/{runtime}"
        # int8 graphs quantise activations with one scale per run, so in a shared batch a text's
        # score would depend on its neighbours (2-3% of labels flip between batchings). Alone,
        # every text scores the same live and in a replay, at about a fifth less throughput.
        self.one_text_per_run = runtime == "onnx-int8"

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, at most ``max_length``: a longer text keeps its first and its
        last tokens (:func:`streams.sentiment.truncation.keep_ends`)."""
        # Blank text still gets the prefix, so every input has real tokens to pool over.
        encoded = self.tokenizer.encode_batch(
            [QUERY_PREFIX + clip_chars(t or "", self.max_length) for t in texts]
        )
        log_truncated([len(e.ids) for e in encoded], self.max_length, "e5")
        return [keep_ends(e.ids, self.max_length) for e in encoded]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled encoder features [n, F], run exactly as scoring runs them (training uses this
        too, so a head is fitted on what it will see)."""
        ids = self.tokenize(texts)
        features = np.zeros((len(ids), self.head.mean.shape[0]), dtype=np.float32)
        if not ids:
            return features
        if self.one_text_per_run:
            batches = [[i] for i in range(len(ids))]
        else:
            batches = token_batches([len(x) for x in ids], TOKEN_BUDGET, self.max_batch)
        outputs = self.encoder.features_many([[ids[i] for i in batch] for batch in batches])
        for batch, out in zip(batches, outputs, strict=True):
            features[batch] = out
        return features

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        return self.head.probabilities(self.features(texts))

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        if len(langs) != len(texts):
            raise ValueError(f"langs has {len(langs)} entries for {len(texts)} texts")
        probs = self.probabilities(texts)
        return [Sentiment(float(p[0]), float(p[1]), float(p[2])) for p in probs]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
