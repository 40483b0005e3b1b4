"""How the NAB score holds up for a quieter brand: the realTweets files, binomially thinned.

    .venv/bin/python benchmarks/nab_thinning.py [--keep 1 0.5 0.25] [--seeds 5]
        [--data ../shared/data/nab/realTweets]
        [--labels ../shared/data/nab/labels/combined_windows.json] [--config FILE] [--json]

Every count is replaced by a binomial draw keeping each tweet with probability ``keep``: the
anomalies stay where NAB labelled them, but they and the brand's ordinary swings become as noisy
as they would be for a brand with ``keep`` times the audience. The volume detector runs with its
default configuration, or the YAML file ``--config`` names (as ``eval nab --config`` takes it),
and is scored exactly as ``stormvarsel eval nab`` scores it (a detection is a row where an
episode opens). Each fraction below 1 is drawn ``--seeds`` times (seeds 0, 1, ..., so a run is
reproducible); the line gives the mean normalised score per profile with the range over the
draws, and the windows detected and false alarms summed over all draws and files.

This is the nearest the data beside the project comes to new files: the same five anomalies,
but a detector tuned to these files' exact counts, rather than to their shape, loses more here.
Mind the fixed volume gate (``spikes.min_volume``, 20 mentions an hour): at a quarter of the
volume CVS's usual two tweets an hour become half a tweet, and its bursts no longer pass it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.config import ConfigError, DetectorConfig
from detectors.nab import corpus, run, scoring

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


@dataclasses.dataclass(frozen=True)
class Draw:
    """One thinned copy of every file, scored."""

    keep: float
    seed: int
    scores: dict[str, float]
    windows: int
    detected: int
    false_alarms: int


def thinned(series: corpus.Series, keep: float, rng: np.random.Generator) -> corpus.Series:
    if keep >= 1.0:
        return series
    counts = np.rint(np.asarray(series.values)).astype(np.int64)
    values = tuple(float(v) for v in rng.binomial(counts, keep))
    return dataclasses.replace(series, values=values)


def score_draw(
    originals: list[tuple[corpus.Series, scoring.RowWeights]],
    keep: float,
    seed: int,
    config: DetectorConfig | None = None,
) -> Draw:
    rng = np.random.default_rng(seed)
    results = []
    for series, weights in originals:
        copy = thinned(series, keep, rng)
        scores = run.anomaly_scores(copy, config)
        labels = [1 if w >= 0 else 0 for w in weights.window]
        results.append(run.FileResult(series.name, copy, weights, scores, labels))
    tallies = [
        scoring.score_file(r.weights, r.scores, run.ALERT_THRESHOLD, scoring.STANDARD)
        for r in results
    ]
    return Draw(
        keep,
        seed,
        run.summary(results),
        sum(t.windows for t in tallies),
        sum(t.windows_detected for t in tallies),
        sum(t.fp for t in tallies),
    )


def summary_line(draws: list[Draw]) -> str:
    parts = [f"keep {draws[0].keep:g} ({len(draws)} draw{'s' if len(draws) > 1 else ''}):"]
    for profile in scoring.PROFILES:
        values = [d.scores[profile.name] for d in draws]
        spread = f" [{min(values):.1f}-{max(values):.1f}]" if len(values) > 1 else ""
        parts.append(f"{profile.name} {statistics.fmean(values):.1f}{spread}")
    detected = sum(d.detected for d in draws)
    windows = sum(d.windows for d in draws)
    false_alarms = sum(d.false_alarms for d in draws)
    parts.append(f"windows {detected}/{windows}, false alarms {false_alarms}")
    return "  ".join(parts)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {text}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--keep",
        type=fraction,
        nargs="+",
        default=[1.0, 0.5, 0.25],
        help="fractions of the tweets to keep (default: 1 0.5 0.25)",
    )
    parser.add_argument(
        "--seeds", type=positive, default=5, help="draws per fraction below 1 (default: 5)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED / "realTweets",
        help="directory of NAB-format files (default: ../shared/data/nab/realTweets)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        default=SHARED / "labels" / "combined_windows.json",
        help="NAB's combined_windows.json",
    )
    parser.add_argument("--config", type=Path, help="detector configuration (YAML)")
    parser.add_argument("--json", action="store_true", help="one JSON object per draw instead")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data: no such directory: {args.data}")
    config = None
    if args.config is not None:
        try:
            config = DetectorConfig.from_yaml(args.config)
        except (ConfigError, OSError) as exc:
            parser.error(f"--config: {exc}")
    paths = corpus.data_files(args.data)
    if not paths:
        parser.error(f"--data: no NAB-format CSV files in {args.data}")
    if not args.labels.is_file():
        parser.error(f"--labels: no such file: {args.labels}")
    try:
        labels = corpus.read_windows(args.labels)
    except ValueError as exc:  # json.JSONDecodeError and bad timestamps alike
        parser.error(f"--labels: {args.labels}: {exc}")
    originals = []
    for path in paths:
        try:
            series = corpus.read_series(path)
            windows = corpus.windows_for(labels, path)
        except (KeyError, ValueError) as exc:
            parser.error(f"{path}: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        originals.append((series, scoring.row_weights(series.times, windows)))
    for keep in args.keep:
        seeds = range(1 if keep >= 1.0 else args.seeds)
        draws = []
        for seed in seeds:
            draw = score_draw(originals, keep, seed, config)
            draws.append(draw)
            if args.json:
                print(json.dumps(dataclasses.asdict(draw)), flush=True)
            else:
                print(
                    f"  keep {keep:g}, seed {seed}: standard "
                    f"{draw.scores[scoring.STANDARD.name]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
        if not args.json:
            print(summary_line(draws), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
