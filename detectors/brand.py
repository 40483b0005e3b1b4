"""One brand's detector: buckets in, bucket summaries and storm / buzz episodes out.

Pure and deterministic: no clocks, no I/O, no randomness. The caller (a Faust agent, a replay,
a benchmark) feeds mentions with :meth:`BrandDetector.observe` and moves event time forward with
:meth:`BrandDetector.advance`; the same ordered calls always give the same outputs. The whole
state is a JSON-serialisable dict of bounded size (:meth:`to_state` / :meth:`from_state`), so it
fits a Faust table keyed by brand and survives a rebalance.

How a bucket becomes evidence (details in docs/detectors.md):

* total volume is scored against the seasonal baseline (:mod:`detectors.spikes`); a volume
  spike that is not more negative than usual feeds the *buzz* state machine;
* negative volume is scored against baseline volume times the brand's usual negative share;
  unless the positives have risen (the negative share has dropped markedly, of all mentions
  and of the negative and positive ones: a positive burst drags some negatives along), it
  feeds the *storm* state machine, as does a significant rise of the negative share itself
  (when there is enough volume for a share to mean anything);
* each machine (:mod:`detectors.states`) turns its score into normal / watch / warning /
  critical and the transitions into episode events with drivers (:mod:`detectors.drivers`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from typing import Any

from detectors.baseline import DecayedMean, SeasonalBaseline
from detectors.buckets import GROUPS, OpenBucket, Post
from detectors.config import DetectorConfig
from detectors.drivers import EpisodeEvidence, LanguageTable
from detectors.episodes import (
    BucketSummary,
    Episode,
    EpisodeEvent,
    Kind,
    Output,
    iso,
    unknown_episode_keys,
)
from detectors.events import MAX_AHEAD_MS, MentionEvent
from detectors.spikes import SpikeScorer, SustainedScorer
from detectors.states import LEVELS, NORMAL, LevelMachine, Transition
from detectors.text import Terms, extract

#: The detector state's format. Readers ignore keys they do not know (named once in the log)
#: and give missing optional keys their defaults, so a key added with a default (``scorer``,
#: 2026-12) needs no new version: the previous release reads the new state and the new release
#: the old one, both ways through a rolling upgrade or a rollback. Raise it when a state
#: written now would be *misread* by the code of the previous version: a key removed or
#: renamed, a value whose meaning, unit or shape changed, or (since readers before 2026-12
#: refused them) a new key inside an episode or a stored post. A reader accepts every version
#: up to its own (converting older ones) and refuses a newer one with :class:`StateMismatch`
#: (upgrade every worker, or reset the state). Kept at 1 in 2026-12: ``brand_replies`` (added
#: to episodes in 2026-12 without a new version) is already in every state of the current
#: release, and a new version now would make those workers drop every state a new one saved
#: during a rolling upgrade.
STATE_VERSION = 1
#: How long a new sentiment model (``sentiment.model``) must have the majority of each closed
#: bucket's scored mentions before the detector relearns its sentiment baselines with it
#: (:meth:`BrandDetector._check_scorer`), and how long the model it replaced last must, to be
#: taken back: a rolling upgrade's mixed buckets do not switch back and forth.
SCORER_CONFIRM_MINUTES = 10.0
SCORER_RETURN_MINUTES = 60.0
#: A bucket with more than this share of its scored mentions from another model than the
#: scorer is not read for sentiment (no storm evidence, no learning of the usual shares).
SCORER_MIXED_SHARE = 0.2
#: Prior of the usual share of negatives among the polar (negative + positive) mentions: even
#: odds, with the weight of ``storm.share_prior_mentions`` polar mentions.
POLAR_PRIOR = 0.5


#: Keys added after states were first saved: left out of the fingerprint while at their
#: default, so a configuration that does not use them keeps the fingerprint it had.
_ADDED_LATER = (("baseline", "timezone"), ("baseline", "brand_timezones"))
_DEFAULTS = DetectorConfig().to_dict()
_log = logging.getLogger(__name__)


def _digest(data: dict[str, Any]) -> str:
    from detectors.episodes import canonical_json

    return hashlib.blake2b(canonical_json(data).encode(), digest_size=6).hexdigest()


def config_fingerprint(config: DetectorConfig) -> str:
    """Short hash of a configuration, stored with state so a mismatch is noticed on load."""
    data = config.to_dict()
    for section, key in _ADDED_LATER:
        if data[section][key] == _DEFAULTS[section][key]:
            del data[section][key]
    return _digest(data)


def layout_fingerprint(config: DetectorConfig) -> str:
    """Short hash of the settings that give a detector's state its shape and meaning: bucket
    and window lengths, and the bounds of the term counters. A state saved under another
    layout cannot continue; one saved under other thresholds or half-lives can."""
    return _digest(
        {
            "bucket_minutes": config.bucket_minutes,
            "windows_minutes": list(config.spikes.windows_minutes),
            "counter_capacity": config.drivers.counter_capacity,
            "max_languages": config.drivers.max_languages,
        }
    )


class StateMismatch(ValueError):
    """A saved detector state that cannot continue under the configuration given."""


def _negative_scorers(cfg: DetectorConfig, minutes: float) -> tuple[SpikeScorer, SustainedScorer]:
    """The negatives' spike and sustained scorers, fresh (a new detector, or a new model)."""
    storm = cfg.storm
    return (
        SpikeScorer(cfg.spikes, minutes, storm.min_negative),
        SustainedScorer(
            storm.sustained_window_minutes,
            minutes,
            storm.sustained_prior_phi,
            storm.sustained_prior_windows,
            storm.sustained_min_ratio,
            storm.sustained_z,
        ),
    )


class BrandDetector:
    """Event-time buckets, baselines, scores and state machines for one brand."""

    def __init__(self, brand: str, config: DetectorConfig | None = None) -> None:
        self.brand = brand
        self.config = cfg = (config or DetectorConfig()).for_brand(brand)
        self.minutes = cfg.bucket_minutes
        self.bucket_ms = round(cfg.bucket_minutes * 60_000)
        #: Posts per sentiment group and bucket that are tokenised for driver terms.
        self.sample_size = max(4, round(cfg.drivers.sample_per_minute * cfg.bucket_minutes))
        self.background_size = max(1, round(cfg.drivers.background_per_minute * cfg.bucket_minutes))
        self.top_k = cfg.drivers.top_k
        self.open: dict[int, OpenBucket] = {}
        #: End of the last closed bucket; mentions before it are late.
        self.closed_until: int | None = None
        self.late_total = 0
        self.late_pending = 0
        #: Every mention observed since the detector began (in a bucket or late). Saved with the
        #: state, so it proves each mention was counted once across restarts and rebalances.
        self.observed_total = 0
        #: Mentions dated more than ``MAX_AHEAD_MS`` ahead of their arrival (or of the stream's
        #: clock): counted here (and in ``observed_total``), in no bucket.
        self.dropped_total = 0
        self.baseline = SeasonalBaseline(cfg.baseline)
        self.volume_scorer = SpikeScorer(cfg.spikes, self.minutes)
        self.negative_scorer, self.negative_sustained = _negative_scorers(cfg, self.minutes)
        #: Decayed counts of negative and all mentions, for the usual negative share.
        self.share_negative = DecayedMean()
        self.share_total = DecayedMean()
        #: Decayed counts of negative and positive mentions (neutrals left out): the usual
        #: share of negatives among the polar ones, which tells a positive burst (it falls)
        #: from a neutral wave (it does not).
        self.polar_negative = DecayedMean()
        self.polar_positive = DecayedMean()
        self.reach = DecayedMean()
        window = max(cfg.storm.share_window_minutes, cfg.storm.figures_window_minutes)
        #: (volume, expected volume, negative, reach of negatives) of the latest buckets.
        self.recent: deque[tuple[int, float, int, int]] = deque(
            maxlen=max(1, round(window / self.minutes))
        )
        # Volume and negatives of the buckets in the share window (the latest ones, up to
        # ``share_window_minutes`` back), kept apart so that they sum in a C loop.
        share_span = 0
        while share_span * self.minutes < cfg.storm.share_window_minutes:
            share_span += 1
        span = min(share_span, self.recent.maxlen or 1)
        self.share_volumes: deque[int] = deque(maxlen=span)
        self.share_negatives: deque[int] = deque(maxlen=span)
        self.share_positives: deque[int] = deque(maxlen=span)
        self.machines = {
            "storm": LevelMachine(cfg.states, self.minutes),
            "buzz": LevelMachine(cfg.states, self.minutes),
        }
        #: Start of the current run of abnormal buckets, per kind (the "first abnormal" time).
        self.run_start: dict[str, int | None] = {"storm": None, "buzz": None}
        self.episodes: dict[str, Episode] = {}
        #: The volume evidence belongs to a storm (see :meth:`_close`).
        self.buzz_held = False
        self.background = LanguageTable(cfg.drivers)
        #: Terms of the latest negative posts (about an hour): a storm's build-up.
        self.recent_terms = LanguageTable(cfg.drivers)
        #: The sentiment model (``sentiment.model``) the sentiment baselines (usual negative
        #: and polar shares, negatives' spike and sustained scores, negatives' reach) were
        #: learnt with; None until a scored mention names one (then adopted as it is).
        self.scorer: str | None = None
        #: The model the scorer replaced last, and a model other than the scorer with the
        #: majority of the latest closed buckets and in how many of them in a row.
        self.retired: str | None = None
        self.candidate: str | None = None
        self.streak = 0
        #: Minutes of closed buckets since the scorer was adopted: the sentiment baselines
        #: are warm after ``baseline.warmup_hours`` of them.
        self.scorer_minutes = 0.0
        #: Per open bucket: its mentions scored by a model other than the scorer ("": none).
        self.open_models: dict[int, dict[str, int]] = {}
        #: Keys of the saved state this code did not know (:meth:`from_state`).
        self.ignored_keys: list[str] = []

    # --- input -------------------------------------------------------------------------------

    def observe(self, event: MentionEvent, now_ms: int | None = None) -> None:
        """Add a mention to its bucket. A mention for an already closed bucket is late: it is
        counted (``late_total``, and ``late`` in the next bucket summary), not added.

        A mention dated more than ``MAX_AHEAD_MS`` ahead of its arrival (``received_ms``) or,
        without that stamp, of ``now_ms`` (the stream's clock, which :class:`Replayer` passes)
        is dropped: counted in ``dropped_total``, not added (its bucket would be closed only
        when time got there, or by a final flush closing every bucket up to it)."""
        self.observed_total += 1
        event_ms = event.event_ms
        reference = event.received_ms
        if reference is None:
            reference = now_ms
        if reference is not None and event_ms - reference > MAX_AHEAD_MS:
            self.dropped_total += 1
            return
        start = event_ms - event_ms % self.bucket_ms  # bucket_start, inlined: once per mention
        closed_until = self.closed_until
        if closed_until is not None and start < closed_until:
            self.late_total += 1
            self.late_pending += 1
            return
        bucket = self.open.get(start)
        if bucket is None:
            bucket = self.open[start] = OpenBucket(start)
        bucket.add(event, self.sample_size, self.top_k)
        model = event.model
        if model != self.scorer:  # rare: only while models change (or unscored mentions)
            models = self.open_models.get(start)
            if models is None:
                models = self.open_models[start] = {}
            key = model or ""
            models[key] = models.get(key, 0) + 1

    def start_at(self, boundary_ms: int) -> None:
        """Treat every bucket before ``boundary_ms`` (a bucket boundary) as closed: mentions for
        them are late. For a new brand in a stream whose watermark is already there."""
        if self.closed_until is None:
            self.closed_until = boundary_ms

    def advance(self, watermark_ms: int) -> list[Output]:
        """Close, in order, every bucket that ends at or before ``watermark_ms`` (empty ones too,
        once the brand has been seen) and return what that produced."""
        if self.closed_until is None:
            # A new brand starts at its first bucket, once the watermark has passed that
            # bucket's end: until then a mention for an earlier bucket is still in time.
            if not self.open:
                return []
            first = min(self.open)
            if first + self.bucket_ms > watermark_ms:
                return []
            self.closed_until = first
        out: list[Output] = []
        while self.closed_until + self.bucket_ms <= watermark_ms:
            start = self.closed_until
            bucket = self.open.pop(start, None) or OpenBucket(start)
            self.closed_until = start + self.bucket_ms
            self._close(bucket, out)
        return out

    # --- one bucket --------------------------------------------------------------------------

    def _close(self, bucket: OpenBucket, out: list[Output]) -> None:
        cfg = self.config
        storm_cfg = cfg.storm
        start = bucket.start_ms
        end = start + self.bucket_ms
        models = self.open_models.pop(start, None)
        mixed = self._check_scorer(models, bucket.volume + bucket.brand_replies)
        # Sentiment is read only in a bucket the scorer labelled (almost) all, and once the
        # scorer has taught the baselines as long as the volume baseline learnt (a new brand's
        # detector: from the start) or for the warm-up (after a change of model).
        scorer_minutes = self.scorer_minutes
        sentiment_ok = not mixed and (
            scorer_minutes >= self.baseline.history_minutes
            or scorer_minutes >= cfg.baseline.warmup_hours * 60.0
        )
        rate = self.baseline.expected_rate(start)
        expected = rate * self.minutes
        unseen = 1.0 - self.baseline.seasonal_weight(start)
        confidence = 1.0 / (1.0 + cfg.spikes.cold_start_factor * unseen)
        p0 = self.negative_share()
        q0 = self.polar_share()
        volume = self.volume_scorer.step(bucket.volume, expected, confidence)
        negative = self.negative_scorer.step(bucket.negative, expected * p0, confidence)
        sustained = self.negative_sustained.step(bucket.negative, expected * p0, confidence)
        if negative.gated:
            # The volume gate of the negatives' spike score holds for the sustained score too:
            # with fewer than ``storm.min_negative`` negatives in the last hour nothing counts.
            # A brand with a post a day expects so few negatives in six hours that one post
            # was z = 5 (critical) by itself.
            sustained = 0.0
        negative_score = max(negative.score, sustained)
        self.recent.append((bucket.volume, expected, bucket.negative, bucket.reach_negative))
        self.share_volumes.append(bucket.volume)
        self.share_negatives.append(bucket.negative)
        self.share_positives.append(bucket.positive)
        n = sum(self.share_volumes)
        k = sum(self.share_negatives)
        share_z = (k / n - p0) / math.sqrt(p0 * (1.0 - p0) / n) if n else 0.0
        # A drop of the negative share vetoes the negatives' volume evidence only when the
        # positives rose: a positive burst drags a few negatives along. Against the positives
        # alone (neutrals left out) the negatives' share has then fallen too; in a neutral wave
        # (a breach story shared by thousands, complaints six-fold) it has not, and the extra
        # complaints are a storm.
        polar = k + sum(self.share_positives)
        polar_z = (k / polar - q0) / math.sqrt(q0 * (1.0 - q0) / polar) if polar else 0.0
        drop = -storm_cfg.share_drop_z
        vetoed = share_z <= drop and polar_z <= drop
        storm_score = 0.0 if vetoed else negative_score
        if n >= storm_cfg.share_min_volume and k >= storm_cfg.min_negative:
            storm_score = max(storm_score, share_z * confidence / storm_cfg.share_z)
        # Under a new sentiment model (or in a bucket of mixed models) the negatives are not
        # compared with baselines another model's labels taught: no storm evidence, and the
        # volume evidence is buzz whatever the share says.
        gate_z = share_z
        if not sentiment_ok:
            storm_score = 0.0
            gate_z = 0.0
        # Buzz is volume without extra negativity: not while there is storm evidence.
        # A run of volume evidence that a storm covered stays the storm's: it does not turn
        # into buzz when the storm resolves while the volume score is still coming down.
        if volume.score < cfg.states.watch_exit:
            self.buzz_held = False
        elif self.machines["storm"].level > NORMAL:
            self.buzz_held = True
        stormy = (
            storm_score >= cfg.states.watch_exit
            or self.machines["storm"].level > NORMAL
            or self.buzz_held
        )
        buzz_score = volume.score if gate_z <= storm_cfg.buzz_share_z and not stormy else 0.0

        half_life = cfg.drivers.recent_half_life_minutes
        self.recent_terms.decay(self.minutes, half_life)
        self.background.decay(self.minutes, cfg.drivers.background_half_life_days * 1440.0)
        # Tokenise only what will be counted: a small prefix of each sample (an unbiased
        # sample itself) feeds the background and the recent build-up; the full sample of a
        # group feeds an open episode of its kind.
        bg_limit = self.background_size
        sampled: dict[str, list[tuple[Post, Terms]]] = {}
        for group, kind in (("negative", "storm"), ("other", "buzz")):
            posts = bucket.sample(group)
            if kind not in self.episodes:
                posts = posts[:bg_limit]
            sampled[group] = [(post, extract(post.text, post.lang)) for post in posts]
        counts = {"negative": bucket.negative, "other": bucket.volume - bucket.negative}
        self.recent_terms.add_sample(sampled["negative"], counts["negative"], bg_limit)

        armed = self.baseline.warm
        tracks: tuple[tuple[Kind, float, str], ...] = (
            ("storm", storm_score, "negative"),
            ("buzz", buzz_score, "other"),
        )
        for kind, score, group in tracks:
            self._track(kind, score, bucket, sampled[group], counts[group], end, armed, out)

        if "storm" not in self.episodes and self.machines["storm"].level == NORMAL:
            for group in GROUPS:
                self.background.add_sample(sampled[group], counts[group], bg_limit)

        self.baseline.update(start, bucket.volume / self.minutes, self.minutes, rate)
        self.scorer_minutes = scorer_minutes + self.minutes
        # A bucket of buzz (or with its evidence: volume, the share not above usual) teaches the
        # usual shares no drop beyond chance: a neutral or positive wave is not the brand's
        # usual talk. Only such a bucket: a floor under ordinary or stormy buckets, which are
        # clipped from above only per bucket, would push the usual share up.
        buzzy = self.machines["buzz"].level > NORMAL or (
            volume.score >= cfg.states.watch_exit and gate_z <= storm_cfg.buzz_share_z
        )
        if not mixed:
            learnt = (n, polar) if buzzy else None
            self._learn_share(bucket, expected, p0, q0, learnt, sentiment_ok)
        if self.machines["storm"].level == NORMAL and not mixed:
            # The usual negative reach learns from normal times only: one storm once took it
            # from 48,000 to 1.8 million an hour.
            self.reach.add(
                bucket.reach_negative / self.minutes,
                self.minutes,
                storm_cfg.reach_half_life_days * 1440.0,
            )
        out.append(
            BucketSummary(
                brand=self.brand,
                start_ms=start,
                end_ms=end,
                volume=bucket.volume,
                negative=bucket.negative,
                neutral=bucket.neutral,
                positive=bucket.positive,
                reach_negative=bucket.reach_negative,
                unique_authors=len(bucket.authors),
                languages=dict(sorted(bucket.languages.items())),
                platforms=dict(sorted(bucket.platforms.items())),
                expected_volume=expected,
                negative_share_baseline=p0,
                volume_score=volume.score,
                negative_score=negative_score,
                share_z=share_z,
                storm_level=LEVELS[self.machines["storm"].level],
                buzz_level=LEVELS[self.machines["buzz"].level],
                late=self.late_pending,
                brand_replies=bucket.brand_replies,
            )
        )
        self.late_pending = 0

    def _learn_share(
        self,
        bucket: OpenBucket,
        expected: float,
        p0: float,
        q0: float,
        floor_counts: tuple[int, int] | None,
        sentiment_warm: bool = True,
    ) -> None:
        """Teach the usual negative share a closed bucket, winsorised so that a storm cannot
        poison it.

        Once the baseline is warm, a bucket far busier than expected (a viral post) counts as
        if it had the volume of a busy normal one, and a bucket of a storm (the storm level is
        above normal) as if it had just the expected volume. Its negatives count at most at a
        share chance alone would reach (``share_clip_z`` standard errors above usual). A storm
        then moves the usual share no more than a few unlucky normal buckets would, while a
        lasting change of tone still comes through, a bucket at a time. A bucket of buzz (or
        with its evidence) teaches no drop of the shares beyond what chance gives the last
        hour's mentions (``floor_counts``), so that a neutral or positive wave does not drag
        them down either. Under a new sentiment model (``sentiment_warm`` False) every bucket
        counts as it is, as while the volume baseline warms up: the shares of the old model
        would clip the new one's.
        """
        cfg = self.config
        storm_cfg = cfg.storm
        warm = self.baseline.warm and sentiment_warm
        floor = cfg.baseline.clip_floor_per_hour * self.minutes / 60
        episode = any(m.level > NORMAL for m in self.machines.values())
        ratio = 1.0 if episode else cfg.baseline.clip_ratio
        cap = ratio * expected + floor
        scale = 1.0 if not warm or bucket.volume <= cap else cap / bucket.volume
        total = bucket.volume * scale
        negative = bucket.negative * scale
        positive = bucket.positive * scale
        z = storm_cfg.share_clip_z
        if warm and total > 0:
            # Negatives count at most at a share chance alone reaches in the bucket.
            negative = min(negative, total * min(1.0, p0 + z * math.sqrt(p0 * (1.0 - p0) / total)))
            if floor_counts is not None:
                # ``floor_counts``: the share window's mentions and polar mentions, which set
                # how far below usual chance alone takes the shares the storm tests read.
                n, polar = floor_counts
                negative = max(negative, total * _lowest(p0, z, n))
                q = _lowest(q0, z, polar)
                if q > 0.0 and negative < q * (negative + positive):
                    positive = negative * (1.0 - q) / q  # positives cut to that share instead
        half_life = storm_cfg.share_half_life_days * 1440.0
        self.share_negative.add(negative, self.minutes, half_life)
        self.share_total.add(total, self.minutes, half_life)
        self.polar_negative.add(negative, self.minutes, half_life)
        self.polar_positive.add(positive, self.minutes, half_life)

    def _check_scorer(self, models: dict[str, int] | None, total: int) -> bool:
        """Follow the sentiment model from a closing bucket's mentions (``models``: those of a
        model other than the scorer, "" for unscored ones; ``total``: all its mentions).
        Return whether the bucket is mixed: more than ``SCORER_MIXED_SHARE`` of its scored
        mentions (rule-decided ones, ``rule:...``, left out: the same under any model) from
        another model than the scorer.

        A model other than the scorer with the majority of the scored mentions in every closed
        bucket with any for ``SCORER_CONFIRM_MINUTES`` (``SCORER_RETURN_MINUTES`` for the model
        the scorer replaced) becomes the scorer: see :meth:`_switch_scorer`. A detector that
        does not know its scorer (new, or saved before 2026-12) adopts the first it sees."""
        if models is None:
            if total:
                self.candidate = None
                self.streak = 0
            return False
        excluded = others = best_n = 0
        best: str | None = None
        for name, n in sorted(models.items()):
            if not name or name.startswith("rule:"):
                excluded += n
            elif name != self.scorer:  # (counted before a switch while the bucket was open)
                others += n
                if n > best_n:
                    best, best_n = name, n
        scored = total - excluded
        if scored <= 0 or best is None:
            if scored > 0:
                self.candidate = None
                self.streak = 0
            return False
        if self.scorer is None:
            self.scorer = best
            return False
        if 2 * best_n > scored:
            if best == self.candidate:
                self.streak += 1
            else:
                self.candidate = best
                self.streak = 1
            minutes = SCORER_RETURN_MINUTES if best == self.retired else SCORER_CONFIRM_MINUTES
            if self.streak * self.minutes >= minutes - 1e-9:
                self._switch_scorer(best)
                return False
        else:
            self.candidate = None
            self.streak = 0
        return others > SCORER_MIXED_SHARE * scored

    def _switch_scorer(self, model: str) -> None:
        """Relearn the sentiment baselines under a new model: the usual negative and polar
        shares, the negatives' spike and sustained scores and their usual reach start again
        from their priors, and storms wait ``baseline.warmup_hours`` (as a new brand does);
        the volume baseline and volume scores carry on, so buzz is still caught. A model
        labels the same posts very differently (lexicon 0.36 negative, e5 0.64 on the same
        airline tweets): compared with what the old one taught, the new labels paged every
        brand at once, for the week the shares take to relearn."""
        old = self.scorer
        _log.warning(
            "detect.scorer_changed",
            extra={
                "brand": self.brand,
                "old": old,
                "new": model,
                "closed_until": self.closed_until,
            },
        )
        cfg = self.config
        self.retired = old
        self.scorer = model
        self.candidate = None
        self.streak = 0
        self.scorer_minutes = 0.0
        self.share_negative = DecayedMean()
        self.share_total = DecayedMean()
        self.polar_negative = DecayedMean()
        self.polar_positive = DecayedMean()
        self.reach = DecayedMean()
        self.share_volumes.clear()
        self.share_negatives.clear()
        self.share_positives.clear()
        self.negative_scorer, self.negative_sustained = _negative_scorers(cfg, self.minutes)

    def _track(
        self,
        kind: Kind,
        score: float,
        bucket: OpenBucket,
        sample: list[tuple[Post, Terms]],
        count: int,
        end: int,
        armed: bool,
        out: list[Output],
    ) -> None:
        """Feed one kind's state machine and keep its episode up to date."""
        machine = self.machines[kind]
        start = bucket.start_ms
        if score >= self.config.states.watch_exit:
            if self.run_start[kind] is None:
                self.run_start[kind] = start
        elif machine.level == NORMAL:
            self.run_start[kind] = None
        transition = machine.step(end, score, armed)
        episode = self.episodes.get(kind)
        group = "negative" if kind == "storm" else "other"
        if episode is None and transition is not None and transition.level > NORMAL:
            # A storm starts from the recent negative terms, which already hold this bucket:
            # the build-up is part of the story. Buzz has no such seed, so it counts the
            # terms of the bucket that opened it here (it once never counted them at all).
            seed = self.recent_terms if kind == "storm" else None
            evidence = EpisodeEvidence(self.config.drivers, seed=seed)
            evidence.absorb(bucket, group, count, sample if seed is None else None)
            first = self.run_start[kind]
            episode = Episode(
                brand=self.brand,
                kind=kind,
                start_ms=start,
                first_abnormal_ms=first if first is not None else start,
                evidence=evidence,
                level=transition.level,
                peak_level=transition.level,
                peak_ms=start,
                peak_score=score,
            )
            self.episodes[kind] = episode
            episode.brand_replies += bucket.brand_replies
            self._add_mix(episode, bucket)
            episode.figures = episode.peak_figures = self._figures()
            out.append(EpisodeEvent("opened", end, episode.to_dict(self.background)))
            return
        if episode is None:
            return
        episode.brand_replies += bucket.brand_replies
        episode.evidence.absorb(bucket, group, count, sample)
        self._add_mix(episode, bucket)
        episode.figures = self._figures()
        if score > episode.peak_score:
            episode.peak_score = score
            episode.peak_ms = start
            episode.peak_figures = episode.figures
        if transition is not None:
            self._transition(episode, transition, out)

    @staticmethod
    def _add_mix(episode: Episode, bucket: OpenBucket) -> None:
        """A storm's language and platform mix is its complaints' (the negative group's); a
        buzz episode's is the whole bucket's."""
        if episode.kind == "storm":
            episode.evidence.add_mix(bucket.negative_languages, bucket.negative_platforms)
        else:
            episode.evidence.add_mix(bucket.languages, bucket.platforms)

    def _transition(self, episode: Episode, t: Transition, out: list[Output]) -> None:
        episode.escalations.append(
            {
                "at_ms": t.at_ms,
                "at": iso(t.at_ms),
                "from": LEVELS[t.previous],
                "to": LEVELS[t.level],
            }
        )
        episode.level = max(t.level, NORMAL)
        if t.level > t.previous:
            episode.peak_level = max(episode.peak_level, t.level)
            out.append(EpisodeEvent("escalated", t.at_ms, episode.to_dict(self.background)))
        elif t.level > NORMAL:
            out.append(EpisodeEvent("de-escalated", t.at_ms, episode.to_dict(self.background)))
        else:
            episode.level = NORMAL
            episode.end_ms = t.at_ms
            snapshot = episode.to_dict(self.background)
            snapshot["severity"] = LEVELS[episode.peak_level]
            out.append(EpisodeEvent("resolved", t.at_ms, snapshot))
            del self.episodes[episode.kind]
            self.run_start[episode.kind] = None

    # --- figures -----------------------------------------------------------------------------

    def negative_share(self) -> float:
        """The brand's usual negative share: decayed counts shrunk towards a prior share."""
        s = self.config.storm
        neg = self.share_negative.mean * self.share_negative.weight
        total = self.share_total.mean * self.share_total.weight
        return (neg + s.share_prior * s.share_prior_mentions) / (total + s.share_prior_mentions)

    def polar_share(self) -> float:
        """The usual share of negatives among negative and positive mentions (neutrals left
        out), shrunk towards even odds."""
        m = self.config.storm.share_prior_mentions
        neg = self.polar_negative.mean * self.polar_negative.weight
        pos = self.polar_positive.mean * self.polar_positive.weight
        return (neg + POLAR_PRIOR * m) / (neg + pos + m)

    def _figures(self) -> dict[str, Any]:
        """Now (the figures window) against baseline: volume, negative share, negative reach."""
        window = self.config.storm.figures_window_minutes
        volume = expected = negative = reach = 0.0
        for i, (v, e, neg, r) in enumerate(reversed(self.recent)):
            if i * self.minutes >= window:
                break
            volume += v
            expected += e
            negative += neg
            reach += r
        p0 = self.negative_share()
        return {
            "window_minutes": window,
            "volume": {"now": int(volume), "baseline": round(expected, 2)},
            "negative_share": {
                "now": round(negative / volume, 4) if volume else 0.0,
                "baseline": round(p0, 4),
            },
            "negative_reach": {"now": int(reach), "baseline": round(self.reach.mean * window, 1)},
        }

    # --- state -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this detector is (JSON-serialisable)."""
        return {
            "version": STATE_VERSION,
            "config": config_fingerprint(self.config),
            "layout": layout_fingerprint(self.config),
            "brand": self.brand,
            "open": [b.to_state() for _, b in sorted(self.open.items())],
            "closed_until": self.closed_until,
            "late": [self.late_total, self.late_pending],
            "observed": self.observed_total,
            "dropped": self.dropped_total,
            "baseline": self.baseline.to_state(),
            "volume_scorer": self.volume_scorer.to_state(),
            "negative_scorer": self.negative_scorer.to_state(),
            "negative_sustained": self.negative_sustained.to_state(),
            "share": [
                [self.share_negative.mean, self.share_negative.weight],
                [self.share_total.mean, self.share_total.weight],
            ],
            "polar": [
                [self.polar_negative.mean, self.polar_negative.weight],
                [self.polar_positive.mean, self.polar_positive.weight],
            ],
            "share_positives": list(self.share_positives),
            "buzz_held": self.buzz_held,
            "reach": [self.reach.mean, self.reach.weight],
            "recent": [list(r) for r in self.recent],
            "machines": {k: m.to_state() for k, m in sorted(self.machines.items())},
            "run_start": dict(sorted(self.run_start.items())),
            "episodes": {k: e.to_state() for k, e in sorted(self.episodes.items())},
            "background": self.background.to_state(),
            "recent_terms": self.recent_terms.to_state(),
            "scorer": {
                "model": self.scorer,
                "retired": self.retired,
                "candidate": self.candidate,
                "streak": self.streak,
                "minutes": self.scorer_minutes,
                "open": [
                    [start, dict(sorted(m.items()))]
                    for start, m in sorted(self.open_models.items())
                ],
            },
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], config: DetectorConfig | None = None, *, retune: bool = False
    ) -> BrandDetector:
        """Rebuild a detector saved by :meth:`to_state` with the same configuration.

        With ``retune``, a state saved under another configuration of the same layout (see
        :func:`layout_fingerprint`) continues under this one: the history it learnt stays, the
        new thresholds and half-lives apply from now on. Otherwise, and for another layout,
        :class:`StateMismatch` says what differs.

        Another release's state (see :data:`STATE_VERSION`) reads as far as it can: keys this
        code does not know are ignored (listed in ``ignored_keys``, for the caller to log), and
        a missing optional part starts afresh, as in a new detector. A state that is not one,
        or with a part of the wrong type, raises (``KeyError``, ``TypeError``, ``ValueError``):
        the caller drops it as it drops a :class:`StateMismatch`.
        """
        if not isinstance(state, dict):
            raise TypeError(f"a detector state is an object, not {type(state).__name__}")
        config = (config or DetectorConfig()).for_brand(str(state.get("brand")))
        version = state.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > STATE_VERSION:
            raise StateMismatch(
                f"detector state version {version} was saved by a newer Stormvarsel (this one "
                f"reads up to version {STATE_VERSION}): upgrade every worker to the same release, "
                "or run `stormvarsel topics reset-state` to start the detectors afresh"
            )
        if version != STATE_VERSION:
            raise StateMismatch(f"unsupported detector state version {version!r}")
        if state.get("config") != config_fingerprint(config):
            if not retune:
                raise StateMismatch("detector state was saved with a different configuration")
            if state.get("layout") != layout_fingerprint(config):
                raise StateMismatch(
                    "detector state was saved with other bucket, window or term-counter sizes "
                    "(or before those were recorded); it cannot continue under this configuration"
                )
        brand = state["brand"]
        if not isinstance(brand, str):
            raise TypeError("brand: expected a string")
        d = cls(brand, config)
        ignored = sorted(str(k) for k in state if k not in _STATE_KEYS)
        d.open = {int(b["start_ms"]): OpenBucket.from_state(b) for b in state.get("open", [])}
        closed = state.get("closed_until")
        if closed is not None and (isinstance(closed, bool) or not isinstance(closed, int)):
            raise TypeError("closed_until: expected epoch milliseconds")
        d.closed_until = closed
        d.late_total, d.late_pending = (int(v) for v in state.get("late", (0, 0)))
        d.observed_total = int(state.get("observed", 0))  # absent in states saved before it
        d.dropped_total = int(state.get("dropped", 0))  # likewise
        d.baseline = SeasonalBaseline.from_state(config.baseline, state["baseline"], closed)
        for key, scorer in (
            ("volume_scorer", d.volume_scorer),
            ("negative_scorer", d.negative_scorer),
        ):
            if key in state:
                scorer.load_state(state[key])
        if "negative_sustained" in state:
            d.negative_sustained.load_state(state["negative_sustained"])
        (neg_mean, neg_weight), (tot_mean, tot_weight) = state.get("share", [[0, 0], [0, 0]])
        d.share_negative = DecayedMean(float(neg_mean), float(neg_weight))
        d.share_total = DecayedMean(float(tot_mean), float(tot_weight))
        # "polar" and "share_positives" are absent in states saved before 2026-12: the usual
        # polar share starts afresh (at even odds; the veto then also needs the drop of the
        # whole negative share, the rule it had) and the window's positives at none.
        (pneg_mean, pneg_weight), (ppos_mean, ppos_weight) = state.get("polar", [[0, 0], [0, 0]])
        d.polar_negative = DecayedMean(float(pneg_mean), float(pneg_weight))
        d.polar_positive = DecayedMean(float(ppos_mean), float(ppos_weight))
        d.buzz_held = bool(state.get("buzz_held", False))
        reach_mean, reach_weight = state.get("reach", (0.0, 0.0))
        d.reach = DecayedMean(float(reach_mean), float(reach_weight))
        d.recent.clear()
        d.recent.extend(
            (int(v), float(e), int(n), int(r)) for v, e, n, r in state.get("recent", [])
        )
        d.share_volumes.extend(v for v, _, _, _ in d.recent)
        d.share_negatives.extend(n for _, _, n, _ in d.recent)
        positives = [int(v) for v in state.get("share_positives", ())]
        d.share_positives.extend([0] * (len(d.share_negatives) - len(positives)) + positives)
        machines = state["machines"]
        for kind, machine_state in machines.items():
            if kind in d.machines:
                d.machines[kind].load_state(machine_state)
            else:
                ignored.append(f"machines.{kind}")
        run_start = state.get("run_start", {})
        for kind in d.run_start:
            value = run_start.get(kind)
            d.run_start[kind] = int(value) if value is not None else None
        episodes: dict[str, Episode] = {}
        for kind, saved in state.get("episodes", {}).items():
            if kind not in d.machines:
                raise ValueError(f"episode of unknown kind {kind!r}")
            episode = Episode.from_state(
                EpisodeEvidence.from_state(config.drivers, saved["evidence"]), saved
            )
            if episode.kind != kind:
                raise ValueError(f"episode under {kind!r} is of kind {episode.kind!r}")
            episodes[kind] = episode
            ignored.extend(f"episodes.{key}" for key in unknown_episode_keys(saved))
        d.episodes = episodes
        if "background" in state:
            d.background = LanguageTable.from_state(config.drivers, state["background"])
        if "recent_terms" in state:
            d.recent_terms = LanguageTable.from_state(config.drivers, state["recent_terms"])
        # "scorer" is absent in states saved before 2026-12: the model is not known (the first
        # one seen is adopted as it is) and the sentiment baselines are as old as the volume's.
        followed = state.get("scorer")
        if followed is None:
            d.scorer_minutes = d.baseline.history_minutes
        else:
            d.scorer = _optional_text(followed.get("model"))
            d.retired = _optional_text(followed.get("retired"))
            d.candidate = _optional_text(followed.get("candidate"))
            d.streak = int(followed.get("streak", 0))
            d.scorer_minutes = float(followed.get("minutes", d.baseline.history_minutes))
            d.open_models = {
                int(start): {str(k): int(v) for k, v in counts.items()}
                for start, counts in followed.get("open", [])
            }
        d.ignored_keys = sorted(set(ignored))
        return d


#: The keys :meth:`BrandDetector.to_state` writes.
_STATE_KEYS = frozenset(
    (
        "version",
        "config",
        "layout",
        "brand",
        "open",
        "closed_until",
        "late",
        "observed",
        "dropped",
        "baseline",
        "volume_scorer",
        "negative_scorer",
        "negative_sustained",
        "share",
        "polar",
        "share_positives",
        "buzz_held",
        "reach",
        "recent",
        "machines",
        "run_start",
        "episodes",
        "background",
        "recent_terms",
        "scorer",
    )
)
#: Ignored keys already named in this process's log (see :func:`first_report`).
_REPORTED: set[str] = set()


def first_report(keys: list[str]) -> list[str]:
    """The ``keys`` (ignored in a saved state) not named before in this process: a rollback
    would otherwise log the same unknown key once for every brand."""
    new = [key for key in keys if key not in _REPORTED]
    _REPORTED.update(new)
    return new


def _optional_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _lowest(p: float, z: float, n: int) -> float:
    """The share ``z`` standard errors below ``p`` for ``n`` mentions (at least 0)."""
    return max(0.0, p - z * math.sqrt(p * (1.0 - p) / max(n, 1)))


def abandoned_episodes(state: Any, config: DetectorConfig | None = None) -> list[EpisodeEvent]:
    """An ``abandoned`` event for each episode still open in a saved state that cannot continue
    (:class:`StateMismatch`), dated at the end of its last closed bucket.

    A dropped state takes with it the only machine that could resolve its episodes: without
    these events a storm alert stays firing for good (the notifier re-sends what it last heard).
    Drivers come from the saved evidence where the current configuration can read it, and are
    left empty otherwise; an episode whose identity (kind, start) is unreadable is skipped, as
    no alert id can be derived for it, and so is a state that is not an object at all."""
    if not isinstance(state, dict):
        return []
    drivers = (config or DetectorConfig()).for_brand(str(state.get("brand"))).drivers
    at = state.get("closed_until")
    episodes = state.get("episodes")
    if not isinstance(at, int) or not isinstance(episodes, dict):
        return []
    try:
        background = LanguageTable.from_state(drivers, state["background"])
    except (KeyError, TypeError, ValueError, AttributeError):
        background = LanguageTable(drivers)
    out: list[EpisodeEvent] = []
    for _kind, saved in sorted(episodes.items()):
        try:
            evidence = EpisodeEvidence.from_state(drivers, saved["evidence"])
        except (KeyError, TypeError, ValueError, AttributeError):
            evidence = EpisodeEvidence(drivers)
        try:
            episode = Episode.from_state(evidence, saved)
            if episode.end_ms is not None:
                continue
            episode.end_ms = at
            snapshot = episode.to_dict(background)
            snapshot["severity"] = LEVELS[episode.peak_level]
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue
        out.append(EpisodeEvent("abandoned", at, snapshot))
    return out
