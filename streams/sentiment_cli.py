"""``stormvarsel sentiment ...``: evaluate the sentiment scorers on labelled files.

Registered in :mod:`streams.cli` with ``main.add_command(sentiment_group)``. ``streams.cli`` (for
``friendly_errors`` and ``_settings``) and the scorer factory are imported when a command runs,
so this module can be imported from anywhere in ``streams.cli`` without an import cycle.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from streams.cli_support import NonEmptyPath, WholeNumberRange, check_writable_parent
from streams.errors import StormvarselError

if TYPE_CHECKING:
    from streams.sentiment.evaluation import EvalReport, LoadedData

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """``streams.cli.friendly_errors``, looked up at call time (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from streams.cli import friendly_errors

        return friendly_errors(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _parse_lang(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """``--lang``: auto, none, or a supported language after the collector aliases (``nb-NO``,
    ``nob``, ``sv_SE`` ...); anything else (``se``, ``swedish``) would silently get English."""
    from streams.sentiment.language import SUPPORTED, normalise_lang

    fixed = value.strip().lower()
    if fixed in ("auto", "none"):
        return fixed
    code = normalise_lang(fixed)
    if code not in SUPPORTED:
        raise click.BadParameter(
            f"{value!r} is not a supported language: expected one of "
            f"{', '.join(SUPPORTED)} (or an alias such as nb-NO, nob, sv_SE), auto or none"
        )
    return code


@click.group("sentiment")
def sentiment_group() -> None:
    """Sentiment scoring: evaluate the backends on labelled data."""


@sentiment_group.command("eval")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled file: CSV with a header row, a JSON list of objects, or JSON lines.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"], case_sensitive=False),
    default=None,
    help="File format [default: from the suffix].",
)
@click.option("--text-col", default="text", show_default=True, help="Column holding the text.")
@click.option("--label-col", default="label", show_default=True, help="Column of gold labels.")
@click.option(
    "--label-map",
    multiple=True,
    metavar="A=B,...",
    help="Dataset labels to classes, e.g. neg=negative,pos=positive (negative/neutral/positive "
    "in any case are always accepted).",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="COL=VALUE",
    help="Keep only rows whose column equals the value (repeatable; all must match).",
)
@click.option(
    "--limit", type=WholeNumberRange(min=1), default=None, help="Evaluate the first N rows."
)
@click.option(
    "--hash-split",
    default=None,
    metavar="BUCKETS:KEEP",
    help="Keep rows whose text hashes (crc32) to these buckets, e.g. 2:1 (the held-out half).",
)
@click.option(
    "--lang",
    default="auto",
    show_default=True,
    callback=_parse_lang,
    help="Language of every text (nb, nn, sv, da, en; aliases such as nb-NO, nob or sv_SE too), "
    "'auto' to detect per text, or 'none'.",
)
@click.option("--lang-col", default=None, help="Column with a language code per row (wins).")
@click.option("--id-col", default=None, help="Column copied into --predictions as 'id'.")
@click.option(
    "--backend",
    type=click.Choice(["e5", "transformers", "lexicon"]),
    default=None,
    help="Scorer backend [default: STORMVARSEL_SENTIMENT_BACKEND].",
)
@click.option(
    "--model",
    default=None,
    metavar="ID_OR_DIR",
    help="transformers backend: model id or directory [default: STORMVARSEL_SENTIMENT_MODEL]; "
    "implies --backend transformers.",
)
@click.option(
    "--model-label-map",
    default=None,
    metavar="LABEL=CLASS,...",
    help="transformers backend: class of each model label, e.g. LABEL_0=negative,LABEL_1=positive "
    "[default: STORMVARSEL_SENTIMENT_LABEL_MAP].",
)
@click.option(
    "--batch-size",
    type=WholeNumberRange(min=1),
    default=64,
    show_default=True,
    help="Texts per scorer call.",
)
@click.option(
    "--predictions",
    "predictions_path",
    type=NonEmptyPath(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write one JSON line per evaluated row (gold, prediction, probabilities, text).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@_friendly
def sentiment_eval(
    data_path: Path,
    fmt: str | None,
    text_col: str,
    label_col: str,
    label_map: tuple[str, ...],
    filters: tuple[str, ...],
    limit: int | None,
    hash_split: str | None,
    lang: str,
    lang_col: str | None,
    id_col: str | None,
    backend: str | None,
    model: str | None,
    model_label_map: str | None,
    batch_size: int,
    predictions_path: Path | None,
    as_json: bool,
) -> None:
    """Score a labelled file; print per-class precision/recall/F1, macro-F1, confusion, speed.

    \b
    Examples:
      stormvarsel sentiment eval --data airline_tweets.csv --label-col airline_sentiment \\
          --filter split=dev --backend lexicon
      stormvarsel sentiment eval --data norec_sentence_3class_dev.json --lang nb
      stormvarsel sentiment eval --data swedish_reviews_small.csv --label-col sentiment

    Rows with a blank or unknown gold label are skipped (and counted). When the gold labels have
    only two classes, each prediction is the likelier of those two (binary evaluation).
    """
    import dataclasses
    import json
    import time

    from streams.cli import _settings
    from streams.sentiment.evaluation import (
        evaluate,
        load_dataset,
        parse_filters,
        parse_hash_split,
        write_predictions,
    )
    from streams.sentiment.labels import parse_label_map

    backend = _backend_for(backend, model, model_label_map)
    settings = _settings()
    if model_label_map is not None and (backend or settings.sentiment_backend) != "transformers":
        raise click.UsageError(
            "--model-label-map needs the transformers backend (--backend transformers or --model)"
        )
    if predictions_path is not None:
        # Checked before any scoring: a wrong path must not cost the whole evaluation, or the
        # labelled input.
        if predictions_path.resolve() == data_path.resolve():
            raise click.BadParameter(
                "is the --data file; it would be overwritten", param_hint="--predictions"
            )
        check_writable_parent(predictions_path, "--predictions")

    loaded = load_dataset(
        data_path,
        text_col=text_col,
        label_col=label_col,
        fmt=fmt,
        label_map=parse_label_map(label_map),
        filters=parse_filters(filters),
        limit=limit,
        lang_col=lang_col,
        id_col=id_col,
        hash_split=parse_hash_split(hash_split),
    )
    if not loaded.examples:
        raise StormvarselError(
            f"{data_path}: no labelled rows to evaluate ({loaded.rows_read} read, "
            f"{loaded.rows_filtered_out} filtered out, {loaded.skipped_blank} blank and "
            f"{loaded.skipped_unknown} unknown labels{_unknown_hint(loaded.unknown_labels)})"
        )

    examples = loaded.examples
    detect = None
    if lang == "auto":
        from streams.sentiment.language import LanguageIdentifier

        detect = LanguageIdentifier().detect
    elif lang != "none":  # a supported code (_parse_lang)
        examples = [e if e.lang else dataclasses.replace(e, lang=lang) for e in examples]

    try:
        from streams.sentiment.factory import load_scorer
    except ImportError as exc:  # pragma: no cover - the factory ships with the package
        raise StormvarselError(f"the sentiment backends are not available: {exc}") from exc
    loading = time.perf_counter()
    scorer = load_scorer(
        settings,
        backend=backend,
        model=model,
        label_map=model_label_map,
        say=lambda m: click.echo(m, err=True),
    )
    load_seconds = time.perf_counter() - loading

    report = evaluate(scorer, examples, batch_size=batch_size, detect=detect)
    if predictions_path is not None:
        write_predictions(predictions_path, report.predictions)

    if as_json:
        payload = {
            "file": str(data_path),
            "rows_read": loaded.rows_read,
            "rows_filtered_out": loaded.rows_filtered_out,
            "skipped_blank_label": loaded.skipped_blank,
            "skipped_unknown_label": loaded.skipped_unknown,
            "unknown_labels": dict(loaded.unknown_labels.most_common(10)),
            "load_seconds": round(load_seconds, 3),
            **report.to_dict(),
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    _print_report(data_path, loaded, report, load_seconds, predictions_path)


def _backend_for(backend: str | None, model: str | None, label_map: str | None) -> str | None:
    """The backend asked for: ``--model`` alone means transformers; with another backend it
    would be silently ignored, so that is a usage error. ``--model-label-map`` is checked here."""
    if label_map is not None:
        from streams.sentiment.labels import LabelMappingError, parse_label_overrides

        try:
            parse_label_overrides(label_map)
        except LabelMappingError as exc:
            raise click.BadParameter(str(exc), param_hint="--model-label-map") from None
    if model is None:
        return backend
    if backend not in (None, "transformers"):
        raise click.UsageError(
            f"--model is for the transformers backend; drop it or --backend {backend}"
        )
    return "transformers"


def _unknown_hint(unknown: Counter[str]) -> str:
    from streams.sentiment.evaluation import unknown_hint

    return unknown_hint(unknown)


def _print_report(
    data_path: Path,
    loaded: LoadedData,
    report: EvalReport,
    load_seconds: float,
    predictions_path: Path | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report.metrics
    console.print(f"[bold]{data_path}[/bold] scored by [bold]{report.scorer}[/bold]")
    console.print(
        f"{m.n} rows evaluated; {loaded.rows_read} read, {loaded.rows_filtered_out} filtered "
        f"out, {loaded.skipped} skipped ({loaded.skipped_blank} blank and "
        f"{loaded.skipped_unknown} unknown labels{_unknown_hint(loaded.unknown_labels)})",
        highlight=False,
    )
    langs = ", ".join(f"{k} {v}" for k, v in report.langs.most_common())
    console.print(f"languages: {langs}", highlight=False)
    if len(report.allowed) == 2:
        console.print(
            f"binary gold labels: each prediction is the likelier of {' / '.join(report.allowed)}"
        )

    table = Table(title="per class")
    for name in ("class", "precision", "recall", "F1", "support", "predicted"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for label, c in m.per_class.items():
        note = "" if label in m.classes else " (not in gold)"
        table.add_row(
            label + note,
            f"{c.precision:.3f}",
            f"{c.recall:.3f}",
            f"{c.f1:.3f}",
            str(c.support),
            str(c.predicted),
        )
    console.print(table)

    confusion = Table(title="confusion (rows: gold, columns: predicted)")
    confusion.add_column("gold \\ predicted")
    for label in m.shown:
        confusion.add_column(label, justify="right")
    for gold in m.shown:
        confusion.add_row(gold, *(str(m.confusion[gold][p]) for p in m.shown))
    console.print(confusion)

    console.print(
        f"macro-F1 [bold]{m.macro_f1:.4f}[/bold] over {', '.join(m.classes)}; "
        f"accuracy {m.accuracy:.4f}; {report.texts_per_s:.0f} texts/s "
        f"(scoring {report.score_seconds:.2f} s, language id {report.lang_seconds:.2f} s, "
        f"model load {load_seconds:.2f} s)",
        highlight=False,
    )
    if predictions_path is not None:
        console.print(f"predictions written to {predictions_path}", highlight=False)
