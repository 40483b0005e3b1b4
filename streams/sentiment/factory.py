"""Pick and prepare the configured scorer backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streams.errors import StormvarselError
from streams.sentiment.base import Scorer
from streams.settings import Settings


class ScorerUnavailable(StormvarselError):
    """The configured backend cannot run here; the message says what to do."""


def e5_dir(settings: Settings) -> Path:
    return settings.models_dir / "multilingual-e5-small"


def install_e5(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Build the transformers directory and the ONNX files of the default encoder (once)."""
    from streams.sentiment.e5_model import build_model_dir
    from streams.sentiment.e5_scorer import SHIPPED_HEAD, Head

    model_dir = build_model_dir(e5_dir(settings), say=say)
    head = Head.load(settings.sentiment_head or SHIPPED_HEAD)
    ensure_onnx(model_dir, head.layers, say=say)
    return model_dir


def onnx_dir(model_dir: Path, layers: tuple[int, ...]) -> Path:
    return model_dir / "onnx" / "-".join(str(i) for i in layers)


def ensure_onnx(
    model_dir: Path, layers: tuple[int, ...], say: Callable[[str], None] = lambda _m: None
) -> Path:
    """The ONNX encoder files pooling ``layers`` (exported on first use, about a minute)."""
    from streams.sentiment.e5_export import export_onnx

    directory = onnx_dir(model_dir, layers)
    if not (directory / "encoder-int8.onnx").exists():
        export_onnx(model_dir, layers, directory, say=say)
    return directory


def load_scorer(
    settings: Settings,
    backend: str | None = None,
    model: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Scorer:
    backend = backend or settings.sentiment_backend
    if backend == "lexicon":
        from streams.sentiment.lexicon import LexiconScorer

        return LexiconScorer()
    if backend == "transformers":
        name = model or settings.sentiment_model
        if not name:
            raise ScorerUnavailable(
                "STORMVARSEL_SENTIMENT_MODEL: expected a Hugging Face model id or a local "
                "directory for the transformers backend"
            )
        from streams.sentiment.hf_backend import TransformersScorer

        return TransformersScorer(
            name,
            revision=settings.sentiment_model_revision,
            batch_size=settings.sentiment_batch_size,
            max_length=settings.sentiment_max_length,
            threads=settings.sentiment_threads,
            device=settings.sentiment_device,
        )
    if backend == "e5":
        from streams.sentiment.e5_scorer import SHIPPED_HEAD, E5Scorer, Head

        head = Head.load(settings.sentiment_head or SHIPPED_HEAD)
        model_dir = install_e5(settings, say=say)
        onnx = "encoder-int8.onnx" if settings.sentiment_runtime == "onnx-int8" else "encoder.onnx"
        return E5Scorer(
            model_dir,
            head,
            runtime=settings.sentiment_runtime,
            onnx_path=onnx_dir(model_dir, head.layers) / onnx,
            threads=settings.sentiment_threads,
            max_length=settings.sentiment_max_length,
            max_batch=min(64, settings.sentiment_batch_size),
        )
    raise ScorerUnavailable(
        f"unknown sentiment backend {backend!r}: expected e5, transformers or lexicon"
    )
