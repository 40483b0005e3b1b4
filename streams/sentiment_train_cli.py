"""``stormvarsel sentiment train``: fit an e5 head on labelled files (registered by streams.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli_support import FiniteFloatRange, NonEmptyPath, check_writable_parent

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from streams.sentiment.recipe import Recipe
    from streams.settings import Settings


def _parse_layers(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    """``6,8,10,12`` -> [6, 8, 10, 12]; the range is checked against the encoder later."""
    try:
        layers = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated layer numbers, e.g. 6,8,10,12, got {value!r}"
        ) from None
    return layers


#: How to map unknown labels of --data, as `sentiment eval` says it.
DATA_LABEL_MAP_HINT = "--label-map VALUE=negative,..."

#: Options that describe --data's one-dataset recipe; a --recipe file sets these itself.
_DATA_OPTIONS = (
    "fmt",
    "text_col",
    "label_col",
    "label_map",
    "filters",
    "layers",
    "holdout",
    "version",
)


def _options_given(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    """The flags of ``names`` that the command line (or the environment) set, in help order."""
    from click.core import ParameterSource

    return [
        param.opts[0]
        for param in ctx.command.params
        if param.name in names
        and ctx.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT)
    ]


def _recipe_from_options(
    data: Path,
    fmt: str | None,
    text_col: str,
    label_col: str,
    label_map: str | None,
    filters: tuple[str, ...],
    layers: list[int],
    holdout: float,
    version: str,
) -> Recipe:
    """The one-dataset recipe that --data and its options describe; a value the recipe refuses
    is a usage error naming the option (pydantic's report was five lines)."""
    from pydantic import ValidationError

    from streams.sentiment.evaluation import parse_filters
    from streams.sentiment.labels import parse_label_map
    from streams.sentiment.recipe import DatasetSpec, Recipe

    try:
        return Recipe(
            version=version,
            layers=layers,
            holdout=holdout,
            datasets=[
                DatasetSpec(
                    name=data.stem,
                    path=data,
                    format=fmt,
                    text_col=text_col,
                    label_col=label_col,
                    label_map=dict(parse_label_map(label_map)),
                    filter=dict(parse_filters(filters)),
                )
            ],
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0]) if err.get("loc") else "data"
        option = f"--{field}" if field in {"version", "layers", "holdout"} else "--data"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise click.BadParameter(
            f"{message}, got {err.get('input')!r}", param_hint=option
        ) from None


def _frozen_features(
    settings: Settings, layers: tuple[int, ...], say: Callable[[str], None]
) -> Callable[[list[str], tuple[int, ...]], np.ndarray]:
    """The int8 encoder's pooled features for ``layers``, truncated as the scorer truncates
    (STORMVARSEL_SENTIMENT_MAX_LENGTH): training must see what scoring will see."""
    from streams.sentiment.e5_model import build_model_dir
    from streams.sentiment.e5_scorer import E5Scorer, Head
    from streams.sentiment.factory import building_in_cache, e5_dir, ensure_onnx
    from streams.sentiment.recipe import scorer_features

    with building_in_cache(settings):
        model_dir = build_model_dir(e5_dir(settings), say=say)
        onnx = ensure_onnx(model_dir, layers, say=say) / "encoder-int8.onnx"
    encoder = E5Scorer(
        model_dir,
        Head.placeholder(layers),
        onnx_path=onnx,
        max_length=settings.sentiment_max_length,
    )
    return scorer_features(encoder)


def _no_frozen_features(_texts: list[str], _layers: tuple[int, ...]) -> np.ndarray:
    raise RuntimeError("a finetune recipe computes its features itself")


@click.command("train")
@click.option(
    "--recipe",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML recipe listing datasets and options (see docs/sentiment.md).",
)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default=None)
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--label-map", default=None, help="e.g. neg=negative,pos=positive")
@click.option("--filter", "filters", multiple=True, help="COL=VALUE, repeatable.")
@click.option(
    "--layers",
    default="6,8,10,12",
    show_default=True,
    callback=_parse_layers,
    help="Encoder layers to pool (0: the embeddings, N: the output of layer N).",
)
@click.option(
    "--holdout",
    type=FiniteFloatRange(min=0, max=0.9, max_open=True),
    default=0.1,
    show_default=True,
    help="Share kept out and scored.",
)
@click.option("--version", "version", default="head-custom", show_default=True)
@click.option(
    "--out",
    type=NonEmptyPath(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the head (.npz); point STORMVARSEL_SENTIMENT_HEAD at it.",
)
def train_command(
    recipe: Path | None,
    data: Path | None,
    fmt: str | None,
    text_col: str,
    label_col: str,
    label_map: str | None,
    filters: tuple[str, ...],
    layers: list[int],
    holdout: float,
    version: str,
    out: Path,
) -> None:
    """Train a classification head for the e5 backend on the frozen encoder's features.

    Give either --recipe (several datasets) or --data with its columns (--format, --text-col,
    --label-col, --label-map, --filter, --layers, --holdout, --version: with --recipe the file
    sets these, so they are refused). A stratified --holdout share of every dataset is kept out
    of training and its macro-F1 is reported. Texts are truncated to
    STORMVARSEL_SENTIMENT_MAX_LENGTH tokens, as scoring truncates them.
    """
    from streams.cli import _fail, _settings
    from streams.errors import StormvarselError
    from streams.sentiment.e5_model import encoder_layer_count
    from streams.sentiment.recipe import (
        RECIPE_LABEL_MAP_HINT,
        Recipe,
        RecipeError,
        load_recipe_data,
        train_from_recipe,
    )

    if (recipe is None) == (data is None):
        raise click.UsageError("give exactly one of --recipe or --data")
    ignored = _options_given(click.get_current_context(), _DATA_OPTIONS) if recipe else []
    if ignored:
        raise click.UsageError(
            f"{', '.join(ignored)} only go with --data; with --recipe, set them in the recipe "
            "file (version, layers, holdout, and per dataset format, text_col, label_col, "
            "label_map, filter)"
        )
    # numpy adds ".npz" to a name without it: say the name the file really gets. Checked before
    # training, so a wrong --out does not cost the run.
    if out.suffix != ".npz":
        out = Path(f"{out}.npz")
    check_writable_parent(out, "--out")
    try:
        if recipe is not None:
            plan = Recipe.load(recipe)
        else:
            assert data is not None
            plan = _recipe_from_options(
                data, fmt, text_col, label_col, label_map, filters, layers, holdout, version
            )
        # Checked before the encoder is built and exported for these layers (the export alone
        # takes about 20 s, and a layer it does not have failed it with a traceback).
        problem = plan.layers_problem(encoder_layer_count())
        if problem is not None:
            if recipe is None:
                raise click.BadParameter(problem, param_hint="--layers")
            raise RecipeError(f"{recipe}: layers: {problem}")
        settings = _settings()
        say = lambda message: click.echo(message, err=True)  # noqa: E731
        # Read before the encoder is built and exported (up to a minute the first time for a
        # layer set): a wrong column or label was found only after that. Rows skipped for a
        # blank or unknown label are counted on stderr (they were dropped without a word), and
        # a dataset left with none is refused (it was a TypeError from numpy).
        datasets = load_recipe_data(
            plan, say, RECIPE_LABEL_MAP_HINT if recipe is not None else DATA_LABEL_MAP_HINT
        )
        # A finetune recipe runs the packaged encoder in torch: exporting the int8 ONNX encoder
        # for its layers (about a minute the first time) was work thrown away.
        features_of = (
            _no_frozen_features
            if plan.finetune is not None
            else _frozen_features(settings, tuple(plan.layers), say)
        )
        report = train_from_recipe(
            plan,
            features_of,
            say=say,
            max_length=settings.sentiment_max_length,
            data=datasets,
        )
    except (StormvarselError, ValueError) as exc:
        _fail(str(exc))
        return
    try:
        report.head.save(out)
    except OSError as exc:
        _fail(f"cannot write the head to {out}: {exc}")
        return
    click.echo(
        json.dumps(
            {"head": str(out), "rows": report.rows, "holdout_macro_f1": report.holdout_scores},
            indent=2,
        )
    )
    click.echo(f"Use it with: STORMVARSEL_SENTIMENT_HEAD={out}", err=True)
