"""NAB's scoring method (Lavin & Ahmad, 2015), reimplemented from its published description.

Every row gets a weight that says what a detection there would be worth: inside a labelled window
it is a true positive weighted by how early in the window it is (earlier is better); outside it is
a false positive whose cost grows with the distance from the most recent window. A window with no
detection costs ``fn_weight``. Only the best (earliest) detection in a window counts; every false
positive counts. Rows in the probationary period (the first 15 %, at most 750 rows) are not scored.

Files are scored independently; a set of files is summarised by the normalised score
``100 * (S - S_null) / (S_perfect - S_null)`` where ``S_perfect`` is one point per window and
``S_null`` (never detecting anything) is ``-fn_weight`` per window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

PROBATION_PERCENT = 0.15
#: NAB caps the probationary period at 15 % of 5,000 rows.
PROBATION_CAP_ROWS = 5000


@dataclass(frozen=True)
class Profile:
    """Application profile: how much a true positive, a missed window and a false alarm weigh."""

    name: str
    tp_weight: float
    fn_weight: float
    fp_weight: float


STANDARD = Profile("standard", 1.0, 1.0, 0.11)
REWARD_LOW_FP = Profile("reward_low_FP_rate", 1.0, 1.0, 0.22)
REWARD_LOW_FN = Profile("reward_low_FN_rate", 1.0, 2.0, 0.11)
PROFILES: tuple[Profile, ...] = (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)


def scaled_sigmoid(position: float) -> float:
    """NAB's scoring curve: +1 far before a window's right edge, 0 at it, -1 far after it."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_rows(n_rows: int) -> float:
    """Rows with an index below this are the probationary period and are never scored."""
    return min(math.floor(PROBATION_PERCENT * n_rows), PROBATION_PERCENT * PROBATION_CAP_ROWS)


@dataclass(frozen=True)
class RowWeights:
    """What a detection at each row of one file would score, before profile weights.

    ``window[i]`` is the index of the labelled window holding row ``i`` (or -1 outside windows);
    ``unweighted[i]`` is the scaled sigmoid value: the true-positive value inside a window, the
    false-positive value (<= 0) outside. ``scorable[i]`` is False in the probationary period.
    """

    window: tuple[int, ...]
    unweighted: tuple[float, ...]
    scorable: tuple[bool, ...]
    n_windows: int
    #: Labelled windows that cover no row of the file (not scored: say so, they are not missed).
    empty: tuple[tuple[datetime, datetime], ...] = ()


class WindowError(ValueError):
    """A labelled window NAB's method cannot score; the message names the window."""


def row_weights(
    timestamps: Sequence[datetime], windows: Sequence[tuple[datetime, datetime]]
) -> RowWeights:
    """Place every row relative to the labelled windows (inclusive bounds), as NAB does.

    A window starts at the first row at or after its start time and ends at the last row at or
    before its end time (NAB's labels always name existing rows, where both rules agree). A
    window covering no row is left out and listed in ``empty``. A window covering one row is a
    :class:`WindowError`: NAB's false-positive cost after a window divides the distance from it
    by the window's width minus one, and NAB's own scorer (``sweeper.py``) fails on such a window
    with a division by zero; no score would be NAB's.
    """
    n = len(timestamps)
    bounds: list[tuple[int, int]] = []
    empty: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        left = next((i for i, t in enumerate(timestamps) if t >= start), n)
        right = max((i for i, t in enumerate(timestamps) if t <= end), default=-1)
        if left > right:
            empty.append((start, end))
        elif left == right:
            raise WindowError(
                f"the labelled window {start:%Y-%m-%d %H:%M:%S} .. {end:%Y-%m-%d %H:%M:%S} "
                f"covers one row only (at {timestamps[left]:%Y-%m-%d %H:%M:%S}); NAB's method "
                "cannot score a window of one row (the cost of a false alarm after it divides "
                "by its width minus one): widen it to cover at least two rows"
            )
        else:
            bounds.append((left, right))
    max_tp = scaled_sigmoid(-1.0)
    window = [-1] * n
    unweighted = [0.0] * n
    prev_right: int | None = None
    prev_width = 0.0
    k = 0
    for i in range(n):
        while k < len(bounds) and bounds[k][1] < i:
            prev_right, prev_width = bounds[k][1], float(bounds[k][1] - bounds[k][0] + 1)
            k += 1
        if k < len(bounds) and bounds[k][0] <= i <= bounds[k][1]:
            left, right = bounds[k]
            width = float(right - left + 1)
            window[i] = k
            unweighted[i] = scaled_sigmoid(-(right - i + 1) / width) / max_tp
        elif prev_right is None:
            unweighted[i] = -1.0
        else:
            unweighted[i] = scaled_sigmoid(abs(i - prev_right) / (prev_width - 1.0))
    probation = probation_rows(n)
    scorable = tuple(i >= probation for i in range(n))
    return RowWeights(tuple(window), tuple(unweighted), scorable, len(bounds), tuple(empty))


@dataclass(frozen=True)
class FileScore:
    """NAB's tally for one file at one threshold under one profile."""

    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int
    windows: int
    windows_detected: int


def score_file(
    weights: RowWeights, anomaly_scores: Sequence[float], threshold: float, profile: Profile
) -> FileScore:
    """Raw NAB score of one file: detections are rows whose anomaly score is >= threshold."""
    best: dict[int, float] = {}
    fp_total = 0.0
    tp = tn = fp = fn = total = 0
    for i, value in enumerate(anomaly_scores):
        if not weights.scorable[i]:
            continue
        total += 1
        w = weights.window[i]
        detected = value >= threshold
        if w >= 0:
            if detected:
                tp += 1
                tp_value = profile.tp_weight * weights.unweighted[i]
                if w not in best or tp_value > best[w]:
                    best[w] = tp_value
            else:
                fn += 1
        elif detected:
            fp += 1
            fp_total += profile.fp_weight * weights.unweighted[i]
        else:
            tn += 1
    missed = weights.n_windows - len(best)
    score = sum(best.values()) + fp_total - profile.fn_weight * missed
    return FileScore(score, tp, tn, fp, fn, total, weights.n_windows, len(best))


def normalised(raw_total: float, n_windows: int, profile: Profile) -> float:
    """NAB's normalised score of a set of files: 0 = never detecting, 100 = perfect."""
    null = -profile.fn_weight * n_windows
    perfect = float(n_windows)
    if perfect == null:
        return 0.0
    return 100.0 * (raw_total - null) / (perfect - null)


def best_threshold(
    files: Sequence[tuple[RowWeights, Sequence[float]]], profile: Profile
) -> tuple[float, float]:
    """NAB's swept-threshold optimum over a set of files: (threshold, summed raw score).

    An exact sweep: lowering the threshold past each distinct anomaly score adds that score's
    rows as detections, so the best threshold is one of the scores present. When no threshold
    scores above never detecting anything, the threshold is ``math.inf`` (no detections) and the
    score the null score.
    """
    rows: list[tuple[float, int, int]] = []
    for f, (weights, scores) in enumerate(files):
        rows.extend((scores[i], f, i) for i in range(len(scores)) if weights.scorable[i])
    rows.sort(key=lambda r: -r[0])
    n_windows = sum(weights.n_windows for weights, _ in files)
    best_per_window: dict[tuple[int, int], float] = {}
    fp_total = 0.0
    tp_total = 0.0
    best_score = -profile.fn_weight * n_windows
    best_at = math.inf
    j = 0
    while j < len(rows):
        value = rows[j][0]
        while j < len(rows) and rows[j][0] == value:
            _, f, i = rows[j]
            weights = files[f][0]
            w = weights.window[i]
            if w >= 0:
                tp_value = profile.tp_weight * weights.unweighted[i]
                old = best_per_window.get((f, w))
                if old is None or tp_value > old:
                    tp_total += tp_value - (old or 0.0)
                    best_per_window[(f, w)] = tp_value
            else:
                fp_total += profile.fp_weight * weights.unweighted[i]
            j += 1
        missed = n_windows - len(best_per_window)
        score = tp_total + fp_total - profile.fn_weight * missed
        if score > best_score:
            best_score, best_at = score, value
    return best_at, best_score
