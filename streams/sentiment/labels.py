"""Label names: a model's ``id2label`` onto negative / neutral / positive, and dataset gold labels.

Model labels (:func:`map_id2label`) are matched case-insensitively, one label at a time:

* word prefixes: ``neg``/``negativ``/``negative``/``NEG`` -> negative; ``neu``/``neutral``/
  ``nøytral``/``noytral`` -> neutral; ``pos``/``positiv``/``positive`` -> positive. A leading
  ``very``/``strongly``/``slightly``/``somewhat``/``mostly``/``extremely`` is ignored, so
  five-point scales such as "Very negative .. Very positive" map too;
* star ratings (``1 star`` .. ``5 stars``): 1-2 -> negative, 3 -> neutral, 4-5 -> positive;
* the anonymous ``LABEL_0, LABEL_1, LABEL_2`` of a three-label model are read in the cardinal order
  negative, neutral, positive, with a warning: nothing in the model says so, it is only the most
  common convention (cardiffnlp's tweet models use it).

Several labels may land on the same class; their probabilities are summed. A model without a
neutral label (binary neg/pos) gets a neutral probability of 0. A label that fits none of these
rules is an error naming it; ``overrides`` (label name -> class, from
``STORMVARSEL_SENTIMENT_LABEL_MAP`` or ``sentiment eval --model-label-map``) settles it explicitly.
An override whose key is none of the model's labels is an error too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.sentiment.base import LABELS, Label

log = get_logger(__name__)

_PREFIXES: tuple[tuple[str, Label], ...] = (
    ("neg", "negative"),
    ("neu", "neutral"),
    ("nøy", "neutral"),
    ("noy", "neutral"),
    ("pos", "positive"),
)
_QUALIFIERS = re.compile(r"^(?:very|strongly|slightly|somewhat|mostly|extremely)[\s_-]+")
_STARS = re.compile(r"^([1-5])\s*[_-]?\s*stars?$")
_ANONYMOUS = re.compile(r"^label_(\d+)$")
_STAR_CLASS: dict[int, Label] = {
    1: "negative",
    2: "negative",
    3: "neutral",
    4: "positive",
    5: "positive",
}


class LabelMappingError(StormvarselError):
    """A model's labels or a dataset's label map cannot be read as negative/neutral/positive."""


def _as_label(value: str) -> Label | None:
    lowered = value.strip().lower()
    for label in LABELS:
        if lowered == label:
            return label
    return None


def classify_label_name(name: str) -> Label | None:
    """The class one model label stands for, or None when no rule fits (LABEL_n included)."""
    text = _QUALIFIERS.sub("", name.strip().lower())
    stars = _STARS.match(text)
    if stars:
        return _STAR_CLASS[int(stars.group(1))]
    for prefix, label in _PREFIXES:
        if text.startswith(prefix):
            return label
    return None


@dataclass(frozen=True)
class LabelMapping:
    """How a model's outputs become the three classes.

    ``matrix`` has one row per model output and one column per class in ``LABELS`` order, with a
    single 1 per row, so ``probs @ matrix`` sums each class's outputs.
    """

    classes: tuple[Label, ...]  # the class of model output i
    matrix: np.ndarray
    scheme: str  # "names", "stars", "cardinal" or "override"

    @property
    def has_neutral(self) -> bool:
        return "neutral" in self.classes

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """(n, num_model_labels) probabilities -> (n, 3) probabilities over ``LABELS``."""
        return np.asarray(probs, dtype=np.float64) @ self.matrix


def _build(classes: list[Label], scheme: str) -> LabelMapping:
    matrix = np.zeros((len(classes), len(LABELS)), dtype=np.float64)
    for row, label in enumerate(classes):
        matrix[row, LABELS.index(label)] = 1.0
    return LabelMapping(classes=tuple(classes), matrix=matrix, scheme=scheme)


def _normalise_id2label(id2label: Mapping[int | str, str]) -> list[str]:
    try:
        items = sorted((int(key), str(value)) for key, value in id2label.items())
    except (TypeError, ValueError) as exc:
        raise LabelMappingError(f"id2label keys must be integers, got {list(id2label)}") from exc
    if [key for key, _ in items] != list(range(len(items))):
        raise LabelMappingError(
            f"id2label keys must be 0..{len(items) - 1}, got {[key for key, _ in items]}"
        )
    return [value for _, value in items]


def map_id2label(
    id2label: Mapping[int | str, str],
    overrides: Mapping[str, str] | None = None,
    model: str = "the model",
) -> LabelMapping:
    """Map a model's ``id2label`` onto negative/neutral/positive (rules in the module docstring).

    ``overrides`` maps model label names (case-insensitive) to ``negative``/``neutral``/
    ``positive`` and wins over the rules. Raises :class:`LabelMappingError` naming the labels that
    fit no rule, an override key that names no label of the model, or when the mapped labels lack
    a negative or a positive class.
    """
    names = _normalise_id2label(id2label)
    if not names:
        raise LabelMappingError(f"{model} has no labels (id2label is empty)")
    wanted: dict[str, Label] = {}
    for key, value in (overrides or {}).items():
        label = _as_label(value)
        if label is None:
            raise LabelMappingError(
                f"label override {key}={value}: expected negative, neutral or positive"
            )
        wanted[key.strip().lower()] = label

    known = {name.strip().lower() for name in names}
    unknown = [key for key in (overrides or {}) if key.strip().lower() not in known]
    if unknown:
        # A typo (LABEL_O) or a map meant for another model would otherwise change nothing.
        raise LabelMappingError(
            f"{model}: label override {', '.join(unknown)} matches none of the model's labels "
            f"{names} (STORMVARSEL_SENTIMENT_LABEL_MAP or --model-label-map)"
        )
    classes: list[Label | None] = []
    for name in names:
        override = wanted.get(name.strip().lower())
        classes.append(override if override is not None else classify_label_name(name))
    scheme = "override" if wanted else "names"
    if all(_STARS.match(n.strip().lower()) for n in names):
        scheme = "stars"

    unmapped = [name for name, label in zip(names, classes, strict=True) if label is None]
    if unmapped and not wanted and all(_ANONYMOUS.match(n.strip().lower()) for n in names):
        if len(names) == 3:
            log.warning(
                "sentiment.labels.cardinal_order",
                model=model,
                labels=names,
                assumed=["negative", "neutral", "positive"],
                hint="the model's labels carry no names; LABEL_0/1/2 are read as "
                "negative/neutral/positive (the usual order). Check the model card.",
            )
            return _build(["negative", "neutral", "positive"], "cardinal")
        raise LabelMappingError(
            f"{model} has anonymous labels {names}; only a three-label model's LABEL_0..2 can be "
            "read (as negative/neutral/positive). Name each label's class explicitly with "
            "STORMVARSEL_SENTIMENT_LABEL_MAP, e.g. LABEL_0=negative,LABEL_1=positive"
        )
    if unmapped:
        raise LabelMappingError(
            f"{model}: cannot map labels {unmapped} (of {names}) onto negative/neutral/positive; "
            "expected names starting with neg/neu/pos (any case), '1 star'..'5 stars', or "
            "a class for each in STORMVARSEL_SENTIMENT_LABEL_MAP"
        )
    mapped = [label for label in classes if label is not None]
    missing = [label for label in ("negative", "positive") if label not in mapped]
    if missing:
        raise LabelMappingError(
            f"{model}: labels {names} have no {' and no '.join(missing)} class; a sentiment model "
            "needs at least a negative and a positive label"
        )
    return _build(mapped, scheme)


def parse_label_overrides(spec: str | None) -> dict[str, Label]:
    """Parse a model's label overrides, ``LABEL_0=negative,LABEL_1=positive``.

    Keys are model label names (matched case-insensitively by :func:`map_id2label`); each value
    names negative, neutral or positive. Blank or None: no overrides.
    """
    table: dict[str, Label] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        label = _as_label(value)
        if not sep or not key.strip() or label is None:
            raise LabelMappingError(
                "expected MODEL_LABEL=CLASS pairs with CLASS negative, neutral or positive, "
                f"e.g. LABEL_0=negative,LABEL_1=positive, got {part.strip()!r}"
            )
        table[key.strip()] = label
    return table


# --- Dataset (gold) labels ---


def parse_label_map(spec: str | Iterable[str] | None) -> dict[str, Label]:
    """Parse ``neg=negative,pos=positive`` (or several such strings) into a lookup table.

    Keys are matched case-insensitively and without surrounding spaces; values must name one of
    negative/neutral/positive (any case).
    """
    if spec is None:
        return {}
    parts: list[str] = []
    for chunk in [spec] if isinstance(spec, str) else list(spec):
        parts.extend(p for p in chunk.split(",") if p.strip())
    table: dict[str, Label] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise LabelMappingError(
                f"label map entry {part.strip()!r}: expected DATASET_LABEL=CLASS, "
                "e.g. neg=negative,pos=positive"
            )
        label = _as_label(value)
        if label is None:
            raise LabelMappingError(
                f"label map entry {part.strip()!r}: the class must be negative, neutral or positive"
            )
        table[key.strip().lower()] = label
    return table


def normalise_gold(value: object, label_map: Mapping[str, Label] | None = None) -> Label | None:
    """A dataset's label as a class, or None when blank or unknown.

    The label map wins; otherwise negative/neutral/positive are accepted in any case (NoReC's
    Positive/Neutral/Negative included).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if label_map:
        mapped = label_map.get(text.lower())
        if mapped is not None:
            return mapped
    return _as_label(text)
