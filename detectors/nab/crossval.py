"""Leave-one-file-out check that the default configuration is not tuned to its five files.

For each file, a configuration is chosen from a small grid around the default by its NAB
standard score on the *other* files, and then scored on the held-out file. If the chosen
configurations score on their held-out files about as well as the default does, the choice
generalises; the summed held-out scores give a cross-validated overall score.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.config import DetectorConfig
from detectors.nab import corpus, run, scoring

#: The knobs that matter most, around their defaults.
GRID: dict[str, tuple[float, ...]] = {
    "spike_tails": (2.0, 2.5, 3.0),
    "cusum_limit": (4.0, 8.0, 16.0),
    "tail_quantile": (0.99, 0.995),
}


@dataclass(frozen=True)
class Fold:
    held_out: str
    chosen: dict[str, float]
    train_normalised: float
    held_out_normalised: float
    default_held_out_normalised: float


def grid_configs(base: DetectorConfig) -> list[tuple[dict[str, float], DetectorConfig]]:
    out = []
    for values in itertools.product(*GRID.values()):
        knobs = dict(zip(GRID, values, strict=True))
        spikes = dataclasses.replace(base.spikes, **knobs)  # type: ignore[arg-type]
        out.append((knobs, dataclasses.replace(base, spikes=spikes)))
    return out


def leave_one_out(
    paths: Sequence[Path],
    labels: dict[str, corpus.Windows],
    base: DetectorConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Fold], float, float]:
    """Folds, the cross-validated standard score, and the default's standard score (at least
    two files, else a ValueError).

    Runs every grid configuration, and the default, over every file (about a minute on the
    five realTweets files); ``progress(done, total)`` is told the runs done before each run
    and once at the end.
    """
    if len(paths) < 2:
        # With one file nothing is left to choose on: the grid's first configuration won by
        # default and its score was printed as cross-validated.
        raise ValueError(f"leaving one file out needs at least 2 files, got {len(paths)}")
    base = base or DetectorConfig()
    profile = scoring.STANDARD
    candidates = grid_configs(base)
    # raw[c][file] and windows per file
    raw: list[dict[str, float]] = []
    windows: dict[str, int] = {}
    total = len(candidates) + 1
    for done, (_, config) in enumerate(candidates):
        if progress is not None:
            progress(done, total)
        results = run.run_files(paths, labels, config)
        raw.append(
            {
                r.name: scoring.score_file(r.weights, r.scores, run.ALERT_THRESHOLD, profile).score
                for r in results
            }
        )
        windows = {r.name: r.weights.n_windows for r in results}
    if progress is not None:
        progress(len(candidates), total)
    default_results = run.run_files(paths, labels, base)
    if progress is not None:
        progress(total, total)
    default_raw = {
        r.name: scoring.score_file(r.weights, r.scores, run.ALERT_THRESHOLD, profile).score
        for r in default_results
    }
    folds = []
    held_total = 0.0
    for held in sorted(windows):
        train = [f for f in windows if f != held]
        train_windows = sum(windows[f] for f in train)

        def train_score(i: int, train: list[str] = train, n: int = train_windows) -> float:
            return scoring.normalised(sum(raw[i][f] for f in train), n, profile)

        best = max(range(len(candidates)), key=lambda i: (train_score(i), -i))
        held_total += raw[best][held]
        folds.append(
            Fold(
                held,
                candidates[best][0],
                train_score(best),
                scoring.normalised(raw[best][held], windows[held], profile),
                scoring.normalised(default_raw[held], windows[held], profile),
            )
        )
    n_windows = sum(windows.values())
    return (
        folds,
        scoring.normalised(held_total, n_windows, profile),
        scoring.normalised(sum(default_raw.values()), n_windows, profile),
    )
