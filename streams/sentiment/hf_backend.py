"""Any Hugging Face sequence-classification model as a scorer (``transformers`` backend).

``model`` is a local directory (``config.json``, weights, tokenizer files) or a Hub model id such
as a multilingual XLM-R tweet-sentiment model; production should pin ``revision`` to a commit.
Both go through ``from_pretrained``. A Hub id is looked up in the local Hugging Face cache first,
without any network access, so a worker with a warm cache starts offline and never re-resolves
the branch. Only when the model is not cached does it contact the Hub: one metadata request with
a short timeout (so an unreachable Hub fails in seconds, not after the download's retries) that
also resolves the commit to download, and never when ``HF_HUB_OFFLINE=1`` (or
``TRANSFORMERS_OFFLINE=1``) is set. Any failure is one :class:`ModelLoadError` line.
``trust_remote_code`` is never enabled: only architectures that ship with transformers load.

A tokenizer without a padding token (GPT-2 and Llama style) pads with its end-of-text (else
unknown) token, also set as the model's ``pad_token_id`` so the classifier reads the last real
token; with none of the three the model fails to load. Two probe texts of different lengths are
scored at load, so a model that cannot score fails at start-up, not on every mention.

Labels come from the model's ``id2label`` through :func:`streams.sentiment.labels.map_id2label`.
Texts are sorted by length into batches, so little padding is computed, and returned in input
order; a text longer than ``max_length`` tokens (or the model's position limit) keeps its first
and its last tokens, half the budget each (:mod:`streams.sentiment.truncation`). Empty and
whitespace-only texts are scored as the empty string.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.sentiment.base import Sentiment
from streams.sentiment.e5_scorer import default_threads
from streams.sentiment.labels import LabelMapping, map_id2label
from streams.sentiment.truncation import clip_chars, keep_ends, log_truncated

log = get_logger(__name__)

#: Seconds to wait for the Hub's answer when a model is not cached.
HUB_TIMEOUT_S = 5.0


class ModelLoadError(StormvarselError):
    """The transformers model cannot be loaded (missing, not cached offline, unreachable Hub)."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE forbid network access."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(
        os.environ.get("TRANSFORMERS_OFFLINE")
    )


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")


def _looks_like_path(model: str) -> bool:
    """Meant as a directory: starts with ``.``, ``~`` or ``/``, or is not shaped like a Hub id
    (``name`` or ``org/name``)."""
    return model.startswith((".", "~", "/", os.sep)) or not _HUB_ID.match(model)


def resolve_device(device: str) -> Any:
    """``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (CUDA when available, else CPU)."""
    import torch

    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"sentiment device {device!r}: expected cpu, cuda, cuda:N, mps or auto"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"sentiment device {device!r}: CUDA is not available on this machine")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"sentiment device {device!r}: MPS is not available on this machine")
    return resolved


def set_torch_threads(threads: int) -> int:
    """Run torch with ``threads`` intra-op threads, or when 0 one per CPU this process may use
    (affinity and the cgroup quota, as the e5 backend: torch's own default counts the host's
    cores, so a container limited to 2 CPUs on a 32-core host would be throttled). The inter-op
    pool is capped at the same number; torch allows that only once per process, before any
    parallel work, so a later attempt keeps the pool it has."""
    import torch

    count = default_threads(threads)
    torch.set_num_threads(count)
    if torch.get_num_interop_threads() > count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError as exc:  # already set, or parallel work has started
            log.debug("sentiment.transformers.interop_threads_kept", reason=_one_line(exc))
    return count


class TransformersScorer:
    """A sequence-classification model as a :class:`streams.sentiment.base.Scorer`."""

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        batch_size: int = 32,
        max_length: int = 256,
        threads: int | None = None,
        device: str = "cpu",
        cache_dir: Path | None = None,
        label_overrides: Mapping[str, str] | None = None,
        hub_timeout_s: float = HUB_TIMEOUT_S,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_length < 2:
            raise ValueError("max_length must be at least 2 tokens")
        import torch
        import transformers

        set_torch_threads(threads or 0)
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.model_name = model
        started = time.perf_counter()
        self._tokenizer, self._model, source = self._load(model, revision, cache_dir, hub_timeout_s)
        self._set_padding(model)
        self._model.eval()
        self._model.to(self.device)
        config = self._model.config
        self.mapping: LabelMapping = map_id2label(
            config.id2label, overrides=label_overrides, model=model
        )
        self.max_length = min(max_length, self._position_limit(config))
        self.version = f"transformers:{self._display_name(model, source)}@{source}"
        self._probe(model)
        log.info(
            "sentiment.transformers.loaded",
            model=model,
            version=self.version,
            labels=[config.id2label[i] for i in sorted(config.id2label)],
            mapped=list(self.mapping.classes),
            max_length=self.max_length,
            device=str(self.device),
            threads=torch.get_num_threads(),
            transformers=transformers.__version__,
            seconds=round(time.perf_counter() - started, 2),
        )

    # --- loading ---
    @staticmethod
    def _display_name(model: str, source: str) -> str:
        if source == "local":
            return Path(model).expanduser().resolve().name or model
        return model

    def _load(
        self, model: str, revision: str | None, cache_dir: Path | None, hub_timeout_s: float
    ) -> tuple[Any, Any, str]:
        """(tokenizer, model, source); source is "local" or the revision/commit loaded."""
        path = Path(model).expanduser()
        if path.is_dir():
            try:
                tokenizer, net = self._from_pretrained(str(path), None, None, local_only=True)
            except Exception as exc:
                raise ModelLoadError(f"sentiment model {model!r}: {_one_line(exc)}") from exc
            return tokenizer, net, "local"
        if path.exists() or _looks_like_path(model):
            raise ModelLoadError(
                f"sentiment model {model!r}: no such directory (expected a local model directory "
                "or a Hugging Face model id such as org/name)"
            )
        try:
            return self._load_hub(model, revision, cache_dir, hub_timeout_s)
        except ModelLoadError as exc:
            # models/my-xlmr is shaped like a Hub id, but may have been meant as a directory.
            raise ModelLoadError(
                f"{exc} (and no such local directory: {str(path.resolve())!r})"
            ) from exc.__cause__

    def _load_hub(
        self, model: str, revision: str | None, cache_dir: Path | None, hub_timeout_s: float
    ) -> tuple[Any, Any, str]:
        shown = f"{model}@{revision}" if revision else model
        try:
            tokenizer, net = self._from_pretrained(model, revision, cache_dir, local_only=True)
        except Exception as cached_exc:
            if hub_offline():
                raise ModelLoadError(
                    f"sentiment model {shown} is not in the Hugging Face cache and HF_HUB_OFFLINE "
                    "is set, so it cannot be downloaded; fetch it on a connected machine (same "
                    "HF_HOME) or point to a local model directory"
                ) from cached_exc
            commit = self._hub_commit(model, revision, hub_timeout_s)
            log.info("sentiment.transformers.download", model=model, revision=commit)
            try:
                tokenizer, net = self._from_pretrained(model, commit, cache_dir, local_only=False)
            except Exception as exc:
                raise ModelLoadError(
                    f"sentiment model {shown}: download from the Hugging Face Hub failed "
                    f"({_one_line(exc)})"
                ) from exc
            return tokenizer, net, revision or commit
        cached_commit = getattr(net.config, "_commit_hash", None)
        return tokenizer, net, revision or cached_commit or "main"

    @staticmethod
    def _hub_commit(model: str, revision: str | None, timeout_s: float) -> str:
        """Ask the Hub (one request, short timeout, no retries) which commit to download.

        This fails fast when the Hub is unreachable, instead of the download's own retries with
        back-off, and names a missing repository or revision plainly.
        """
        from huggingface_hub import HfApi
        from huggingface_hub.errors import (
            GatedRepoError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        shown = f"{model}@{revision}" if revision else model
        try:
            info = HfApi().model_info(model, revision=revision, timeout=timeout_s)
        except RevisionNotFoundError as exc:
            raise ModelLoadError(
                f"sentiment model {model}: revision {revision!r} does not exist on the Hub"
            ) from exc
        except GatedRepoError as exc:
            raise ModelLoadError(
                f"sentiment model {model} is gated: accept its terms on the Hub and set HF_TOKEN"
            ) from exc
        except RepositoryNotFoundError as exc:
            raise ModelLoadError(
                f"sentiment model {model} was not found on the Hugging Face Hub (private models "
                "need HF_TOKEN)"
            ) from exc
        except Exception as exc:
            raise ModelLoadError(
                f"sentiment model {shown} is not cached and the Hugging Face Hub is unreachable "
                f"({_one_line(exc)}); set HF_HUB_OFFLINE=1 to skip the Hub, or use a local "
                "model directory"
            ) from exc
        return info.sha or revision or "main"

    @staticmethod
    def _from_pretrained(
        name: str, revision: str | None, cache_dir: Path | None, *, local_only: bool
    ) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        kwargs: dict[str, Any] = {
            "revision": revision,
            "local_files_only": local_only,
            "trust_remote_code": False,
        }
        if cache_dir is not None:
            kwargs["cache_dir"] = str(cache_dir)
        hf_logging.disable_progress_bar()  # no progress bars in the worker's log
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        net = AutoModelForSequenceClassification.from_pretrained(name, **kwargs)
        return tokenizer, net

    def _set_padding(self, model: str) -> None:
        """Give a tokenizer without a pad token one (eos, else unk) and tell the model."""
        tokenizer, config = self._tokenizer, self._model.config
        if tokenizer.pad_token is None:
            stand_in = tokenizer.eos_token or tokenizer.unk_token
            if stand_in is None:
                raise ModelLoadError(
                    f"sentiment model {model!r}: its tokenizer has no padding, end-of-text or "
                    "unknown token to pad a batch with"
                )
            tokenizer.pad_token = stand_in
            log.info("sentiment.transformers.pad_token", model=model, pad_token=stand_in)
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = tokenizer.pad_token_id

    def _probe(self, model: str) -> None:
        """Score two texts of different lengths (so a batch is padded) or fail to load."""
        try:
            probs = self.predict_proba(["ok", "the probe text is longer than the other one"])
        except Exception as exc:
            raise ModelLoadError(
                f"sentiment model {model!r} cannot score a probe text: {_one_line(exc)}"
            ) from exc
        if not np.isfinite(probs).all():
            raise ModelLoadError(f"sentiment model {model!r} gives non-finite scores on a probe")

    def _position_limit(self, config: Any) -> int:
        """Longest input the model accepts, in tokens (position embeddings, tokeniser limit)."""
        limit = 1 << 30
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            model_type = str(getattr(config, "model_type", ""))
            # RoBERTa-style models reserve padding_idx + 1 positions (2 for XLM-R).
            offset = 2 if "roberta" in model_type or "camembert" in model_type else 0
            limit = min(limit, positions - offset)
        tokenizer_limit = getattr(self._tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit)
        return limit

    # --- scoring ---
    def _prepare(self, text: str) -> str:
        if not text or text.isspace():
            return ""
        return clip_chars(text, self.max_length)

    def _encode(self, texts: list[str]) -> dict[str, Any]:
        """A padded batch of ``texts``, each cut to ``max_length`` tokens by its middle."""
        # Not truncated by the tokeniser (that keeps the start only); verbose=False: no warning
        # about sequences longer than the model's limit, they are cut below.
        encoded = self._tokenizer(
            texts, truncation=False, padding=False, return_attention_mask=False, verbose=False
        )
        lengths = [len(ids) for ids in encoded["input_ids"]]
        log_truncated(lengths, self.max_length, "transformers")
        features = {
            key: [keep_ends(row, self.max_length) for row in rows] for key, rows in encoded.items()
        }
        padded: dict[str, Any] = self._tokenizer.pad(
            features, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        return padded

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities over negative/neutral/positive, in input order."""
        import torch

        prepared = [self._prepare(t) for t in texts]
        out = np.zeros((len(prepared), 3), dtype=np.float64)
        if not prepared:
            return out
        order = sorted(range(len(prepared)), key=lambda i: len(prepared[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                encoded = self._encode([prepared[i] for i in batch])
                encoded = {k: v.to(self.device) for k, v in encoded.items()}
                logits = self._model(**encoded).logits.float()
                probs = torch.softmax(logits, dim=-1).cpu().numpy()
                out[batch] = self.mapping.apply(probs)
        return out

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[Sentiment]:
        """Score ``texts``; ``langs`` are not needed by a multilingual model and are ignored."""
        if len(langs) != len(texts):
            raise ValueError(f"langs has {len(langs)} entries for {len(texts)} texts")
        return [
            Sentiment(negative=float(row[0]), neutral=float(row[1]), positive=float(row[2]))
            for row in self.predict_proba(texts)
        ]
