"""Evaluate a scorer on a labelled file: per-class precision/recall/F1, macro-F1, confusion, speed.

Rules worth knowing when reading the numbers:

* Rows whose gold label is blank, or unknown after the label map, are skipped and counted.
* Macro-F1 averages F1 over the classes present in the gold labels only.
* Binary data (gold labels of exactly two classes, e.g. the Swedish reviews) is scored as a binary
  task: the prediction is the more likely of those two classes, the third is ignored. A
  three-class scorer would otherwise be charged for every "neutral" on data that has no neutral.
  With one gold class (a tiny sample) all three classes stay in play.
* Ties go to the first class in negative, neutral, positive order.
* Precision of a class that is never predicted is 0.
* Texts per second count only the scorer's own time (not loading, reading or language detection).
"""

from __future__ import annotations

import csv
import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.sentiment.base import LABELS, Label, Scorer, Sentiment
from streams.sentiment.labels import normalise_gold
from streams.sentiment.language import normalise_lang

log = get_logger(__name__)

T = TypeVar("T")

DataFormat = Literal["csv", "json", "jsonl"]
FORMATS: tuple[DataFormat, ...] = ("csv", "json", "jsonl")
_SUFFIXES: dict[str, DataFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class EvalDataError(StormvarselError):
    """The evaluation file cannot be read as asked (format, columns, filters)."""


# --- Reading the data ---


@dataclass(frozen=True)
class Example:
    row: int  # 0-based position of the record in the file (before filtering)
    text: str
    gold: Label
    lang: str | None = None
    id: str | None = None


@dataclass
class LoadedData:
    examples: list[Example]
    rows_read: int = 0
    rows_filtered_out: int = 0
    skipped_blank: int = 0
    skipped_unknown: int = 0
    unknown_labels: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return self.skipped_blank + self.skipped_unknown

    def counts(self, label_map_hint: str = "--label-map VALUE=negative,...") -> str:
        """``12 read, 0 filtered out, 3 blank and 2 unknown labels; unknown values: ...``: what
        was read and why rows were skipped, with how to map unknown labels."""
        return (
            f"{self.rows_read} read, {self.rows_filtered_out} filtered out, "
            f"{self.skipped_blank} blank and {self.skipped_unknown} unknown labels"
            f"{unknown_hint(self.unknown_labels, label_map_hint)}"
        )


def unknown_hint(
    unknown: Counter[str], label_map_hint: str = "--label-map VALUE=negative,..."
) -> str:
    """``; unknown values: 'pos', 'neg'; map them with --label-map ...``, or "" for none."""
    if not unknown:
        return ""
    shown = ", ".join(repr(v) for v, _ in unknown.most_common(5))
    return f"; unknown values: {shown}; map them with {label_map_hint}"


def infer_format(path: Path, fmt: str | None) -> DataFormat:
    if fmt:
        lowered = fmt.lower()
        for known in FORMATS:
            if lowered == known:
                return known
        raise EvalDataError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise EvalDataError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"pass --format {'|'.join(FORMATS)}"
        )
    return found


#: The longest CSV cell read, in characters. csv's own limit (131,072) is below some long
#: labelled texts; this bound (about a megabyte of text, far more than the encoder reads) keeps
#: an unbalanced quote from reading the rest of a large file into one cell. It is set for each
#: row and put back after it: csv's limit is process-wide, and ingest reads under its own.
CSV_FIELD_LIMIT = 1 << 20
_FIELD_LIMIT_ERROR = "field larger than field limit"


def _read_csv(path: Path, handle: Iterable[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """(header, rows) of a CSV, each row read under :data:`CSV_FIELD_LIMIT`. A cell over the
    limit, or a quote never closed (csv reads the rest of the file as one cell, and said
    nothing), is an :class:`EvalDataError` naming the line where the cell opened."""
    taken: list[str] = []  # the physical lines of the row being read

    def lines() -> Iterator[str]:
        for line in handle:
            taken.append(line)
            yield line

    reader = csv.DictReader(lines())

    def read_one(read: Callable[[], T]) -> tuple[int, T]:
        """(first line, what ``read`` returned): one row read under the limit."""
        before = reader.line_num
        taken.clear()
        previous = csv.field_size_limit(CSV_FIELD_LIMIT)
        try:
            value = read()
        except csv.Error as exc:
            start, end = before + 1 + _blank_lines(taken), before + len(taken)
            if not str(exc).startswith(_FIELD_LIMIT_ERROR):
                raise EvalDataError(f"{path}, line {start}: not valid CSV ({exc})") from None
            cell = (
                f"a quoted cell opened on this line (read to line {end})"
                if end > start
                else "a cell on this line"
            )
            raise EvalDataError(
                f"{path}, line {start}: {cell} is longer than {CSV_FIELD_LIMIT:,} characters; "
                "the CSV cannot be read past it: an unbalanced quote?"
            ) from None
        finally:
            csv.field_size_limit(previous)
        return before + 1 + _blank_lines(taken), value

    _, header = read_one(lambda: list(reader.fieldnames or []))
    rows: list[dict[str, Any]] = []
    last: tuple[int, list[str]] = (0, [])
    while True:
        start, row = read_one(lambda: next(reader, None))
        if row is None:
            break
        rows.append(row)
        last = (start, list(taken))
    if rows and _open_quote_at_end(last[1]):
        raise EvalDataError(
            f"{path}, line {last[0]}: a quote opened on this line is never closed, so every "
            f"line after it (to line {reader.line_num}) was read as one cell; close or remove "
            "the quote"
        )
    return header, rows


def _blank_lines(lines: Sequence[str]) -> int:
    """How many empty lines start ``lines`` (csv skips them before a row)."""
    return next((i for i, text in enumerate(lines) if text.strip("\r\n")), len(lines))


def _open_quote_at_end(lines: Sequence[str]) -> bool:
    """Whether the last row of a CSV (its physical lines) ends inside a quoted cell: csv reads
    such a row to the end of the file as one cell, without a word unless it is strict."""
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        for _ in csv.reader(lines, strict=True):
            pass
    except csv.Error as exc:
        return str(exc) == "unexpected end of data"
    finally:
        csv.field_size_limit(previous)
    return False


def read_records(path: Path, fmt: DataFormat) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names seen, records) from a CSV (header row), JSON list or JSON-lines file."""
    try:
        if fmt == "csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                return _read_csv(path, handle)
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalDataError(f"{path}: cannot read it as {fmt}: {exc}") from exc
    records: list[Any]
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, list):
            raise EvalDataError(f"{path}: expected a JSON list of objects (use jsonl for lines)")
        records = data
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
    columns: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise EvalDataError(f"{path}: record {index} is not a JSON object")
        if index < 1000:
            columns.update(dict.fromkeys(record))
    return list(columns), records


def parse_filters(specs: Iterable[str]) -> list[tuple[str, str]]:
    """``["split=dev", "airline=Delta"]`` -> [(column, value), ...]; all must match."""
    filters: list[tuple[str, str]] = []
    for spec in specs:
        column, sep, value = spec.partition("=")
        if not sep or not column.strip():
            raise EvalDataError(f"--filter {spec!r}: expected COLUMN=VALUE, e.g. split=dev")
        filters.append((column.strip(), value.strip()))
    return filters


def _cell(record: Mapping[str, Any], column: str | None) -> str | None:
    if column is None:
        return None
    value = record.get(column)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def hash_bucket(text: str, buckets: int) -> int:
    """Stable bucket of a text (crc32), to split one file into train and held-out parts."""
    return zlib.crc32(text.encode("utf-8")) % buckets


def parse_hash_split(spec: str | None) -> tuple[int, frozenset[int]] | None:
    """``"2:1"`` -> rows whose text hashes to bucket 1 of 2 (``"4:0,1"``: buckets 0 and 1 of 4)."""
    if not spec:
        return None
    try:
        buckets_text, _, keep_text = spec.partition(":")
        buckets = int(buckets_text)
        keep = frozenset(int(x) for x in keep_text.split(","))
    except ValueError:
        raise EvalDataError(f"--hash-split {spec}: expected BUCKETS:KEEP, e.g. 2:1") from None
    if buckets < 2 or not keep or not all(0 <= k < buckets for k in keep):
        raise EvalDataError(f"--hash-split {spec}: expected BUCKETS >= 2 and KEEP in 0..BUCKETS-1")
    return buckets, keep


def load_dataset(
    path: Path,
    *,
    text_col: str,
    label_col: str,
    fmt: str | None = None,
    label_map: Mapping[str, Label] | None = None,
    filters: Sequence[tuple[str, str]] = (),
    limit: int | None = None,
    lang_col: str | None = None,
    id_col: str | None = None,
    hash_split: tuple[int, frozenset[int]] | None = None,
) -> LoadedData:
    """Read labelled examples; rows with blank or unknown gold labels are counted and skipped."""
    data_format = infer_format(path, fmt)
    columns, records = read_records(path, data_format)
    wanted = {"--text-col": text_col, "--label-col": label_col}
    wanted.update({f"--filter {c}=": c for c, _ in filters})
    if lang_col:
        wanted["--lang-col"] = lang_col
    if id_col:
        wanted["--id-col"] = id_col
    if records:
        for option, column in wanted.items():
            if column not in columns:
                raise EvalDataError(
                    f"{option} {column}: no such column in {path.name} "
                    f"(columns: {', '.join(columns) or 'none'})"
                )
    loaded = LoadedData(examples=[], rows_read=len(records))
    for row, record in enumerate(records):
        if any((_cell(record, c) or "").strip() != v for c, v in filters):
            loaded.rows_filtered_out += 1
            continue
        if (
            hash_split
            and hash_bucket(_cell(record, text_col) or "", hash_split[0]) not in hash_split[1]
        ):
            loaded.rows_filtered_out += 1
            continue
        raw_label = _cell(record, label_col)
        if raw_label is None or not raw_label.strip():
            loaded.skipped_blank += 1
            continue
        gold = normalise_gold(raw_label, label_map)
        if gold is None:
            loaded.skipped_unknown += 1
            loaded.unknown_labels[raw_label.strip()] += 1
            continue
        # Normalised as the live stage does (sv-SE -> sv, nob -> nb, und -> None), so eval and
        # live pick the same lexicon whatever --lang says.
        lang = normalise_lang(_cell(record, lang_col))
        loaded.examples.append(
            Example(
                row=row,
                text=_cell(record, text_col) or "",
                gold=gold,
                lang=lang,
                id=_cell(record, id_col),
            )
        )
        if limit is not None and len(loaded.examples) >= limit:
            break
    return loaded


# --- Metrics ---


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int  # gold examples of the class
    predicted: int  # examples predicted as the class


@dataclass(frozen=True)
class Metrics:
    classes: tuple[Label, ...]  # gold classes present: macro-F1 averages over these
    shown: tuple[Label, ...]  # gold or predicted classes: rows/columns of the confusion matrix
    per_class: dict[Label, ClassMetrics]
    macro_f1: float
    accuracy: float
    confusion: dict[Label, dict[Label, int]]  # confusion[gold][predicted]
    n: int


def compute_metrics(gold: Sequence[Label], predicted: Sequence[Label]) -> Metrics:
    """Per-class precision/recall/F1, macro-F1 over the gold classes, accuracy, confusion."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    present = set(gold)
    classes = tuple(label for label in LABELS if label in present)
    shown = tuple(label for label in LABELS if label in present or label in set(predicted))
    confusion: dict[Label, dict[Label, int]] = {g: dict.fromkeys(shown, 0) for g in shown}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class: dict[Label, ClassMetrics] = {}
    for label in shown:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted_n = sum(confusion[g][label] for g in shown)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassMetrics(precision, recall, f1, support, predicted_n)
    macro = sum(per_class[c].f1 for c in classes) / len(classes) if classes else 0.0
    correct = sum(confusion[c][c] for c in shown)
    return Metrics(
        classes=classes,
        shown=shown,
        per_class=per_class,
        macro_f1=macro,
        accuracy=correct / len(gold) if gold else 0.0,
        confusion=confusion,
        n=len(gold),
    )


def allowed_classes(gold: Iterable[Label]) -> tuple[Label, ...]:
    """The classes predictions are chosen from: the two gold classes of binary data, else all."""
    present = set(gold)
    if len(present) == 2:
        return tuple(label for label in LABELS if label in present)
    return LABELS


def predict_label(sentiment: Sentiment, allowed: Sequence[Label] = LABELS) -> Label:
    """The most likely of ``allowed``; ties go to the earliest in LABELS order."""
    probs = {
        "negative": sentiment.negative,
        "neutral": sentiment.neutral,
        "positive": sentiment.positive,
    }
    ordered = [label for label in LABELS if label in allowed]
    return max(ordered, key=lambda label: probs[label])


# --- Running a scorer ---


@dataclass(frozen=True)
class Prediction:
    example: Example
    lang: str | None
    sentiment: Sentiment
    predicted: Label

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"row": self.example.row}
        if self.example.id is not None:
            record["id"] = self.example.id
        record.update(
            gold=self.example.gold,
            predicted=self.predicted,
            negative=round(self.sentiment.negative, 4),
            neutral=round(self.sentiment.neutral, 4),
            positive=round(self.sentiment.positive, 4),
            lang=self.lang,
            text=self.example.text,
        )
        return record


@dataclass(frozen=True)
class EvalReport:
    scorer: str
    metrics: Metrics
    allowed: tuple[Label, ...]
    predictions: list[Prediction]
    score_seconds: float
    lang_seconds: float
    langs: Counter[str]

    @property
    def texts_per_s(self) -> float:
        return self.metrics.n / self.score_seconds if self.score_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "scorer": self.scorer,
            "n": m.n,
            "classes": list(m.classes),
            "predicted_among": list(self.allowed),
            "macro_f1": round(m.macro_f1, 4),
            "accuracy": round(m.accuracy, 4),
            "per_class": {
                label: {
                    "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4),
                    "f1": round(c.f1, 4),
                    "support": c.support,
                    "predicted": c.predicted,
                }
                for label, c in m.per_class.items()
            },
            "confusion": {
                "labels": list(m.shown),
                "matrix": [[m.confusion[g][p] for p in m.shown] for g in m.shown],
            },
            "texts_per_s": round(self.texts_per_s, 1),
            "score_seconds": round(self.score_seconds, 3),
            "lang_seconds": round(self.lang_seconds, 3),
            "langs": dict(self.langs.most_common()),
        }


LangDetector = Callable[[Sequence[str], Sequence[str | None]], list[str | None]]


def evaluate(
    scorer: Scorer,
    examples: Sequence[Example],
    *,
    batch_size: int = 64,
    detect: LangDetector | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Score ``examples`` in batches and compare with their gold labels.

    ``detect`` (e.g. :meth:`LanguageIdentifier.detect`) fills in languages the examples do not
    carry, as the worker does for mentions; without it those stay None.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    texts = [e.text for e in examples]
    given = [e.lang for e in examples]
    started = time.perf_counter()
    langs = detect(texts, given) if detect is not None else list(given)
    lang_seconds = time.perf_counter() - started if detect is not None else 0.0
    allowed = allowed_classes(e.gold for e in examples)
    sentiments: list[Sentiment] = []
    score_seconds = 0.0
    for start in range(0, len(examples), batch_size):
        batch_texts = texts[start : start + batch_size]
        batch_langs = langs[start : start + batch_size]
        t0 = time.perf_counter()
        scored = scorer.score(batch_texts, batch_langs)
        score_seconds += time.perf_counter() - t0
        if len(scored) != len(batch_texts):
            raise StormvarselError(
                f"scorer {scorer.version} returned {len(scored)} results for "
                f"{len(batch_texts)} texts"
            )
        sentiments.extend(scored)
        if progress is not None:
            progress(len(sentiments), len(examples))
    predictions = [
        Prediction(example=e, lang=lang, sentiment=s, predicted=predict_label(s, allowed))
        for e, lang, s in zip(examples, langs, sentiments, strict=True)
    ]
    metrics = compute_metrics([e.gold for e in examples], [p.predicted for p in predictions])
    report = EvalReport(
        scorer=scorer.version,
        metrics=metrics,
        allowed=allowed,
        predictions=predictions,
        score_seconds=score_seconds,
        lang_seconds=lang_seconds,
        langs=Counter(lang or "none" for lang in langs),
    )
    log.info(
        "sentiment.eval.done",
        scorer=scorer.version,
        n=metrics.n,
        macro_f1=round(metrics.macro_f1, 4),
        texts_per_s=round(report.texts_per_s, 1),
    )
    return report


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> int:
    """One JSON object per line; returns how many were written."""
    count = 0
    try:
        with path.open("w", encoding="utf-8") as handle:
            for prediction in predictions:
                handle.write(json.dumps(prediction.as_dict(), ensure_ascii=False) + "\n")
                count += 1
    except OSError as exc:
        raise EvalDataError(f"--predictions {path}: cannot write it: {exc.strerror}") from exc
    return count
