"""``stormvarsel eval``: score the detectors on public benchmarks (NAB, the airline storm)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from detectors.config import ConfigError, DetectorConfig
from streams.cli_support import NonEmptyPath, leaves_on_interrupt

if TYPE_CHECKING:
    from detectors.nab.corpus import SkippedFile
    from detectors.reasons import Coverage

T = TypeVar("T")


def _load_config(path: Path | None) -> DetectorConfig:
    if path is None:
        return DetectorConfig()
    try:
        return DetectorConfig.from_yaml(path)
    except OSError as exc:
        message = f"cannot read {path} ({exc.strerror})"
        raise click.BadParameter(message, param_hint="--config") from None
    except ConfigError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from exc


def _with_progress(label: str, work: Callable[[Callable[[int, int], None]], T]) -> T:
    """Run ``work`` with a progress callback that draws a bar on stderr when it is a terminal
    (and does nothing otherwise, so piped and ``--json`` output stay clean)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return work(lambda done, total: None)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return work(update)


@click.group("eval")
def eval_group() -> None:
    """Score the detectors on public benchmarks."""


@eval_group.command("nab")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of NAB data files (timestamp,value), e.g. ../shared/data/nab/realTweets.",
)
@click.option(
    "--labels",
    "labels_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="NAB label windows, e.g. ../shared/data/nab/labels/combined_windows.json.",
)
@click.option(
    "--results-dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    help="Write NAB-format results (and per-profile score tables) here.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Detector configuration (YAML); the built-in default when absent.",
)
@click.option("--detector-name", default="stormvarsel", show_default=True)
@click.option(
    "--leave-one-out",
    is_flag=True,
    help="Also choose a configuration on all files but one, score it on that one (about a "
    "minute; a progress bar on a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def eval_nab(
    data_dir: Path,
    labels_file: Path,
    results_dir: Path | None,
    config_file: Path | None,
    detector_name: str,
    leave_one_out: bool,
    as_json: bool,
) -> None:
    """Run the volume detector over every NAB file in DATA and print NAB's normalised scores.

    A detection is a row whose anomaly score is >= 0.5, which is exactly where the detector
    opens an episode (its alert). NAB's own swept-threshold optimum is shown for comparison.
    """
    from detectors.nab import corpus, run

    config = _load_config(config_file)
    if results_dir is not None:
        # Made before the run (it was found unwritable only after it, as an errno repr).
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot create the directory {results_dir} ({exc.strerror})",
                param_hint="--results-dir",
            ) from None
    paths, skipped = corpus.scan_data_files(data_dir)
    if not paths:
        raise click.UsageError(_no_data_files(data_dir, skipped))
    if leave_one_out and len(paths) < 2:
        # One file leaves nothing to choose a configuration on: the "cross-validated" score was
        # the first grid configuration's, chosen on no data.
        raise click.UsageError(
            f"--leave-one-out needs at least 2 data files (one held out, the others to choose "
            f"on); {data_dir} has {len(paths)}"
        )
    for other in skipped:
        click.echo(f"warning: skipped {other.describe()}", err=True)
    try:
        labels = corpus.read_windows(labels_file)
    except ValueError as exc:  # json.JSONDecodeError too
        raise click.BadParameter(str(exc), param_hint="--labels") from exc
    try:
        results = run.run_files(paths, labels, config)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(str(exc)) from exc
    for result in results:
        for start, end in result.weights.empty:
            click.echo(
                f"warning: {result.name}: the labelled window {start:%Y-%m-%d %H:%M:%S} .. "
                f"{end:%Y-%m-%d %H:%M:%S} covers no row of the file; it is not scored",
                err=True,
            )
    if results_dir is not None:
        try:
            run.write_all(results, results_dir, detector_name)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write the results in {results_dir} ({exc.strerror})",
                param_hint="--results-dir",
            ) from None
    reports = run.report(results)
    loo: dict[str, Any] | None = None
    if leave_one_out:
        from detectors.nab import crossval

        folds, cv, default = _with_progress(
            "leave one file out",
            lambda progress: crossval.leave_one_out(paths, labels, config, progress),
        )
        loo = {
            "cross_validated_standard": round(cv, 3),
            "default_standard": round(default, 3),
            "folds": [
                {
                    "held_out": f.held_out,
                    "chosen": f.chosen,
                    "train_standard": round(f.train_normalised, 3),
                    "held_out_standard": round(f.held_out_normalised, 3),
                    "default_held_out_standard": round(f.default_held_out_normalised, 3),
                }
                for f in folds
            ],
        }
    if as_json:
        payload: dict[str, Any] = {
            "detector": detector_name,
            "threshold": run.ALERT_THRESHOLD,
            "files": [r.name for r in results],
            "profiles": {
                rep.profile: {
                    "normalised": round(rep.normalised, 3),
                    "per_file_raw": {k: round(v, 6) for k, v in rep.per_file_raw.items()},
                    "per_file_normalised": {
                        k: round(v, 3) for k, v in rep.per_file_normalised.items()
                    },
                    # null: no threshold beats never detecting (was Infinity, not JSON)
                    "swept_threshold": rep.swept_threshold,
                    "swept_normalised": round(rep.swept_normalised, 3),
                }
                for rep in reports
            },
        }
        if loo is not None:
            payload["leave_one_out"] = loo
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    names = [r.name for r in results]
    width = max(len(n) for n in [*names, "overall"])
    click.echo(f"{'file':<{width}}  " + "  ".join(f"{rep.profile:>18}" for rep in reports))
    for name in names:
        cells = "  ".join(
            f"{rep.per_file_normalised[name]:>9.1f} ({rep.per_file_raw[name]:+6.2f})"
            for rep in reports
        )
        click.echo(f"{name:<{width}}  {cells}")
    click.echo(f"{'overall':<{width}}  " + "  ".join(f"{rep.normalised:>18.1f}" for rep in reports))
    click.echo("")
    click.echo("Per file: normalised score (raw NAB score). Detections: anomaly_score >= 0.5.")
    for rep in reports:
        at = (
            f"{rep.swept_threshold:.4f} (for information)"
            if rep.swept_threshold is not None
            else "none (no threshold beats never detecting; for information)"
        )
        click.echo(
            f"NAB swept optimum, {rep.profile}: {rep.swept_normalised:.1f} at threshold {at}"
        )
    if loo is not None:
        click.echo("")
        click.echo("Leave one file out (standard profile; grid in detectors/nab/crossval.py):")
        for fold in loo["folds"]:
            click.echo(
                f"  {fold['held_out']:<{width}}  chosen {fold['chosen']}  train "
                f"{fold['train_standard']:.1f}  held out {fold['held_out_standard']:.1f} "
                f"(default {fold['default_held_out_standard']:.1f})"
            )
        click.echo(
            f"  cross-validated standard score {loo['cross_validated_standard']:.1f} "
            f"(default configuration {loo['default_standard']:.1f})"
        )


def _no_data_files(data_dir: Path, skipped: list[SkippedFile]) -> str:
    message = f"no NAB data files (timestamp,value) in {data_dir}"
    if not skipped:
        return f"{message}: it has no .csv files"
    shown = "; ".join(other.describe() for other in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{message}: {shown}{more}"


@eval_group.command("airline")
@click.option(
    "--data",
    "data_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="airline_tweets.csv (Twitter US Airline Sentiment).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Detector configuration (YAML); the built-in default when absent.",
)
@click.option(
    "--timezone",
    "zone_name",
    default="America/Los_Angeles",
    show_default=True,
    help="IANA zone of tweet_created times written without an offset (the data set's own zone); "
    "times with an offset (2015-02-24 11:35:52 -0800) keep it. Local times are shown in it. A "
    "local time the clocks skip is refused; one they show twice is placed so that the time "
    "does not go back in the file's own direction (oldest or newest first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the episode events as JSON lines.")
def eval_airline(data_file: Path, config_file: Path | None, zone_name: str, as_json: bool) -> None:
    """Replay the airline tweets through the brand detectors and list the episodes.

    Episode times are UTC (ISO 8601, as in the episode records), followed by the local time.
    """
    from datetime import datetime

    from detectors.datasets import airline_complaints, airline_tweets
    from detectors.episodes import EpisodeEvent, canonical_json
    from detectors.reasons import judge_drivers, page_terms
    from detectors.replay import replay
    from streams.ingest import OptionError, parse_timezone

    config = _load_config(config_file)
    try:
        zone = parse_timezone(zone_name)
    except OptionError as exc:
        raise click.BadParameter(exc.message, param_hint="--timezone") from exc

    def local(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, zone).strftime("%m-%d %H:%M %Z")

    try:
        events = airline_tweets(data_file, zone)
    except ValueError as exc:  # names the file and line
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:
        raise click.UsageError(f"{data_file}: cannot read ({exc.strerror})") from exc
    blank = sum(1 for event in events if not event.brand.strip())
    if blank:
        # Refused as the file's other bad rows are: it was replayed as a brand named "".
        raise click.UsageError(
            f"{data_file}, line {_first_blank_airline(data_file)}: the airline is blank "
            f"({blank:,} {'row has' if blank == 1 else 'rows have'} none); every row must name "
            "its airline (the brand)"
        )
    try:
        complaints = airline_complaints(data_file, zone)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # Episodes are printed as the replay finds them: a Ctrl-C leaves those.
    leaves_on_interrupt("the episodes printed so far; nothing written")
    first_pages: dict[str, list[str]] = {}
    judged: list[tuple[Coverage, Coverage]] = []
    for output in replay(events, config):
        if not isinstance(output, EpisodeEvent):
            continue
        if as_json:
            click.echo(canonical_json(output.to_dict()))
            continue
        ep = output.episode
        if output.type == "opened":
            first_pages[ep["episode_id"]] = page_terms(ep)
        if output.type not in ("opened", "resolved"):
            continue
        line = (
            f"{output.type:<9} {ep['kind']:<5} {ep['brand']:<15} {ep['severity']:<8} "
            f"start {ep['start']} ({local(ep['start_ms'])})"
        )
        if output.type == "resolved":
            words = ", ".join(t["term"] for t in ep["drivers"]["words"][:6])
            phrases = ", ".join(t["term"] for t in ep["drivers"]["phrases"][:4])
            line += (
                f" end {ep['end']} ({local(ep['end_ms'])}) peak {ep['peak_severity']}\n"
                f"          words: {words}\n          phrases: {phrases}"
            )
            if ep["kind"] == "storm" and complaints:
                judgement = judge_drivers(ep, first_pages.get(ep["episode_id"], []), complaints)
                if judgement is not None:
                    judged.append(judgement)
                    line += "\n" + _reasons_text(*judgement)
        click.echo(line)
    if judged:
        first = sum(f.share for f, _ in judged) / len(judged)
        final = sum(e.share for _, e in judged) / len(judged)
        click.echo(
            f"drivers against the annotators' reasons ({len(judged)} storm episodes): the page's "
            f"terms name the reasons of {first:.0%} of the complaints on the first page, "
            f"{final:.0%} at the end (mean over episodes)"
        )


def _first_blank_airline(path: Path) -> int:
    """The line of the first row of an airline file (read whole before) with a blank airline."""
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if not (row.get("airline") or "").strip():
                return reader.line_num
    return 0


def _reasons_text(first: Coverage, final: Coverage) -> str:
    total = final.complaints
    shown = list(final.reasons.items())[:5]
    mix = ", ".join(f"{reason} {count / total:.0%}" for reason, count in shown)
    if len(final.reasons) > len(shown):
        mix += f" and {len(final.reasons) - len(shown)} more"
    named = ", ".join(final.named) or "none"
    return (
        f"          reasons ({total:,} labelled complaints): {mix}\n"
        f"          the page's terms name {final.share:.0%} of them ({named}); "
        f"the first page's {first.share:.0%}"
    )
