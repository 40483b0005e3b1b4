"""``stormvarsel replay``: plan the range on Kafka, run the engine over it, return the result."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.config import DetectorConfig
from streams.agents.score import BatchScorer
from streams.app import load_detector_config, with_brand_timezones
from streams.brand_matching import BrandMatcher
from streams.log_setup import get_logger
from streams.mention import Limits
from streams.replay.engine import ReplayEngine, RunSpec
from streams.replay.result import ReplayCounts, ReplayResult, Stage
from streams.replay.source import (
    NoMentions,
    Plan,
    ReplayOptionError,
    Span,
    consumer,
    extent,
    grace_ms,
    partitions_of,
    plan_range,
    read_plan,
)
from streams.replay.times import DAY_MS, parse_zone, show_time
from streams.sentiment.factory import load_scorer
from streams.settings import Settings
from streams.topics import MENTIONS, MENTIONS_SCORED, MENTIONS_VALID

log = get_logger(__name__)

LIVE_LABEL = "live configuration"
CANDIDATE_LABEL = "candidate"


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay. Times are epoch milliseconds; ``end_ms`` is exclusive."""

    start_ms: int
    end_ms: int
    brands: tuple[str, ...] = ()  # ids, names or aliases from the brands file; empty: all
    topic: str | None = None  # default: the prefixed mentions topic
    stage: Stage | None = None  # default: from the topic's name
    #: History read before the range to teach the detectors (not reported).
    warmup_ms: int = 7 * DAY_MS
    candidate: DetectorConfig | None = None  # --config: a second configuration to compare
    candidate_source: str = ""
    publish_prefix: str | None = None
    timezone: str = "UTC"  # how the report shows times

    @property
    def warmup_start_ms(self) -> int:
        """Where the warm-up starts: a warm-up longer than the epoch means "all history" (Kafka
        refuses negative times, and the report cannot show a time before year 1)."""
        return max(0, self.start_ms - max(0, self.warmup_ms))


class Progress:
    """What the command line shows while a replay runs (a no-op by default)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, read: int) -> None:
        pass

    def grow(self, total: int) -> None:
        """The number of records to read went up to ``total``."""

    def status(self, message: str) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class Prepared:
    """A planned replay, before any record is read (kept apart so checks fail fast)."""

    settings: Settings
    options: ReplayOptions
    topic: str
    stage: Stage
    plan: Plan
    partitions: int
    brands: tuple[str, ...]
    runs: list[RunSpec] = field(default_factory=list)
    #: The topic whose partitions ``partitions`` counts (the replayed scored topic, else the
    #: live mentions.scored), and whether it was missing (``partitions`` is then the setting).
    partitions_topic: str = MENTIONS_SCORED
    partitions_fallback: bool = False


def infer_stage(topic: str) -> Stage:
    """``…mentions.scored`` -> scored, ``…mentions.valid`` -> valid, anything else: raw mentions."""
    if topic.endswith(MENTIONS_SCORED):
        return "scored"
    if topic.endswith(MENTIONS_VALID):
        return "valid"
    return "mentions"


def resolve_brands(matcher: BrandMatcher, given: tuple[str, ...]) -> tuple[str, ...]:
    ids = []
    for name in given:
        brand_id = matcher.resolve(name)
        if brand_id is None:
            known = ", ".join(matcher.brand_ids) or "none (set STORMVARSEL_BRANDS_FILE)"
            raise ReplayOptionError(f"--brand {name!r} is not in the brands file (brands: {known})")
        ids.append(brand_id)
    return tuple(dict.fromkeys(ids))


def empty_range_message(settings: Settings, topic: str, options: ReplayOptions) -> str:
    zone = parse_zone(options.timezone)
    span = f"{show_time(options.start_ms, zone)} and {show_time(options.end_ms, zone)}"
    client = consumer(settings)
    try:
        held = extent(client, topic)
    finally:
        client.close(autocommit=False)
    if held is None:
        return f"no mentions to replay: topic {topic!r} is empty"
    # The oldest record is known only as far as the partitions' first and last records tell:
    # out of time order, an older one can lie between them (reading it all would be needed).
    return (
        f"no mentions to replay: topic {topic!r} has no record between {span} "
        f"(its newest record is dated {show_time(held.newest_ms, zone)}, its oldest "
        f"{show_time(held.oldest_at_most_ms, zone)} or earlier)"
    )


def prepare(settings: Settings, options: ReplayOptions) -> Prepared:
    """Check the options against the settings and Kafka; plan the offsets to read."""
    if options.end_ms <= options.start_ms:
        raise ReplayOptionError("--to must be later than --from")
    parse_zone(options.timezone)
    matcher = BrandMatcher.from_file(settings.brands)
    brands = resolve_brands(matcher, options.brands)
    topic = options.topic or settings.topic(MENTIONS)
    stage = options.stage or infer_stage(topic)
    runs = [RunSpec(LIVE_LABEL, load_detector_config(settings), _config_source(settings))]
    if options.candidate is not None:
        candidate = with_brand_timezones(options.candidate, settings)
        runs.append(RunSpec(CANDIDATE_LABEL, candidate, options.candidate_source))
    published: list[tuple[str, str]] = []
    if options.publish_prefix is not None:
        from streams.replay.publish import check_prefix

        published = check_prefix(settings, options.publish_prefix, len(runs))
    warmup_start = options.warmup_start_ms
    # Read past the end as far as the live watermark needed to close the range's last buckets.
    grace = grace_ms(
        int(settings.detect_lateness_s * 1000),
        max(round(run.config.bucket_minutes * 60_000) for run in runs),
    )
    client = consumer(settings)
    try:
        if options.publish_prefix is not None:  # topics holding records: refused before any work
            from streams.replay.publish import refuse_used_topics

            refuse_used_topics(settings, options.publish_prefix, client, published)
        plan = plan_range(client, topic, warmup_start, options.end_ms, grace)
        in_range = plan_range(client, topic, options.start_ms, options.end_ms, grace)
        fallback = False
        if stage == "scored":
            partitions, partitions_topic = len(plan.spans), topic
        else:
            # The live worker's detector groups are the partitions of mentions.scored as it is.
            partitions_topic = settings.topic(MENTIONS_SCORED)
            found = partitions_of(client, partitions_topic)
            partitions = len(found) if found else settings.topic_partitions
            fallback = not found
    finally:
        client.close(autocommit=False)
    if in_range.total == 0:
        raise NoMentions(empty_range_message(settings, topic, options))
    if fallback:
        log.warning(
            "replay.partitions_fallback",
            topic=partitions_topic,
            partitions=partitions,
            setting="STORMVARSEL_TOPIC_PARTITIONS",
        )
    return Prepared(
        settings,
        options,
        topic,
        stage,
        plan,
        partitions,
        brands,
        runs,
        partitions_topic=partitions_topic,
        partitions_fallback=fallback,
    )


def run_prepared(
    prepared: Prepared,
    *,
    progress: Progress | None = None,
    scorer_factory: Callable[[], BatchScorer] | None = None,
) -> ReplayResult:
    """Read the planned records through the engine; the result for the report."""
    settings, options = prepared.settings, prepared.options
    progress = progress or Progress()
    brands_file = settings.brands
    scorer: BatchScorer | None = None
    version: str | None = None
    if prepared.stage != "scored":
        scorer = (
            scorer_factory()
            if scorer_factory is not None
            else BatchScorer(
                lambda: load_scorer(settings, say=lambda m: log.info("scorer.prepare", step=m))
            )
        )
        progress.status("loading the sentiment model")
        version = scorer.warm_up()
    publisher = None
    if options.publish_prefix is not None:
        from streams.replay.publish import Publisher

        publisher = Publisher(
            settings, options.publish_prefix, len(prepared.runs), prepared.partitions
        )
    engine = ReplayEngine(
        stage=prepared.stage,
        runs=prepared.runs,
        start_ms=options.start_ms,
        end_ms=options.end_ms,
        warmup_start_ms=options.warmup_start_ms,
        lateness_ms=int(settings.detect_lateness_s * 1000),
        partitions=prepared.partitions,
        voices=brands_file.voices(prepared.runs[0].config.baseline.timezone),
        matcher=BrandMatcher.from_file(brands_file),
        limits=Limits(
            max_bytes=settings.mention_max_bytes, max_future_skew_s=settings.max_future_skew_s
        ),
        dedup_window_ms=int(settings.dedup_window_s * 1000),
        scorer=scorer,
        batch_size=settings.sentiment_batch_size,
        brands=frozenset(prepared.brands),
        on_output=publisher.send if publisher is not None else None,
        tail_ms=prepared.plan.grace_ms,
    )
    log.info(
        "replay.start",
        topic=prepared.topic,
        stage=prepared.stage,
        records=prepared.plan.total,
        partitions=prepared.partitions,
        runs=[run.label for run in prepared.runs],
    )
    total = prepared.plan.total
    engine.counts.reordered.update(s.partition for s in prepared.plan.spans if s.reordered)

    def reordered(span: Span, added: int) -> None:
        nonlocal total
        total += added
        engine.counts.reordered.add(span.partition)
        progress.grow(total)

    progress.start(total)
    try:
        for record in read_plan(settings, prepared.plan, reordered):
            engine.feed(record)
            progress.advance(engine.counts.read)
        runs = engine.finish()
        progress.advance(engine.counts.read)
    except BaseException:
        if publisher is not None:  # the replay's own error is the one to report
            with contextlib.suppress(Exception):
                publisher.close()
        raise
    finally:
        progress.stop()
    if publisher is not None:
        publisher.close()  # raises when a result was not written
    result = ReplayResult(
        topic=prepared.topic,
        stage=prepared.stage,
        start_ms=options.start_ms,
        end_ms=options.end_ms,
        warmup_start_ms=options.warmup_start_ms,
        runs=runs,
        counts=engine.counts,
        timezone=options.timezone,
        brand_names={b.id: b.name for b in brands_file.brands},
        selected_brands=prepared.brands,
        partitions=prepared.partitions,
        partitions_topic=prepared.partitions_topic,
        partitions_fallback=prepared.partitions_fallback,
        scorer=version,
        lateness_ms=engine.lateness_ms,
        from_first_record=prepared.plan.from_first_record,
    )
    if engine.counts.in_range == 0:
        raise NoMentions(empty_range_message(settings, prepared.topic, options))
    if not engine.seen_brands:
        check_input_stage(prepared, engine.counts)
        zone = parse_zone(options.timezone)
        which = ", ".join(prepared.brands) if prepared.brands else "any configured brand"
        hint = (
            "; no brands are configured: set STORMVARSEL_BRANDS_FILE"
            if not brands_file.brands and prepared.stage != "scored"
            else ""
        )
        went = where_records_went(prepared.stage, engine.counts)
        raise NoMentions(
            f"no mentions of {which} to replay between {show_time(options.start_ms, zone)} and "
            f"{show_time(options.end_ms, zone)} ({went}){hint}"
            f"{_unreadable_hint(prepared, engine.counts)}"
        )
    log.info(
        "replay.done",
        read=engine.counts.read,
        in_range=engine.counts.in_range,
        alerts=[len(run.alerts) for run in runs],
    )
    return result


#: What each input stage reads its records as, for messages.
_STAGE_RECORDS: dict[str, str] = {
    "mentions": "raw mentions",
    "valid": "validated mentions",
    "scored": "scored mentions",
}


def _unreadable(stage: Stage, counts: ReplayCounts) -> int:
    """Records of the warm-up and the range the chosen input stage could not read at all."""
    if stage == "scored":
        return counts.unreadable
    return counts.dead_letters.get("invalid_json", 0)


def where_records_went(stage: Stage, counts: ReplayCounts) -> str:
    """``1512 records in the range, 0 in the warm-up: 0 name no configured brand, …``."""
    parts = [
        f"{counts.unmatched} name no configured brand",
        f"{sum(counts.dead_letters.values())} dead-lettered",
    ]
    unreadable = _unreadable(stage, counts)
    if stage == "scored":
        parts.append(f"{unreadable} unreadable as {_STAGE_RECORDS[stage]}")
    elif unreadable:
        parts[-1] += f" ({unreadable} of them unreadable as {_STAGE_RECORDS[stage]})"
    shown = ", ".join(parts)
    return f"{counts.in_range} records in the range, {counts.warmup} in the warm-up: {shown}"


def _stage_option(prepared: Prepared) -> str:
    if prepared.options.stage is None:
        return f"--input auto (read from the topic's name as {prepared.stage})"
    return f"--input {prepared.stage}"


def _other_stages(prepared: Prepared) -> str:
    """The other ``--input`` values to try (``auto`` too, when it was not the one used)."""
    others = [f"--input {s}" for s in ("mentions", "valid", "scored") if s != prepared.stage]
    if prepared.options.stage is not None:
        others.insert(0, "--input auto")
    return ", ".join(others[:-1]) + " or " + others[-1]


def check_input_stage(prepared: Prepared, counts: ReplayCounts) -> None:
    """Refuse (exit status 2, a bad option) an input stage none of the records could be read as:
    ``--input scored`` on raw ``mentions`` makes every record unreadable, which is no lack of
    brands. Raw mentions are the first stage: unreadable ones there are bad data, not a bad
    option."""
    considered = counts.in_range + counts.warmup
    unreadable = _unreadable(prepared.stage, counts)
    if prepared.stage == "mentions" or considered == 0 or unreadable < considered:
        return
    log.warning(
        "replay.wrong_input",
        topic=prepared.topic,
        stage=prepared.stage,
        unreadable=unreadable,
    )
    raise ReplayOptionError(
        f"{_stage_option(prepared)}: none of the {considered} records of topic "
        f"{prepared.topic!r} in the warm-up and the range could be read as "
        f"{_STAGE_RECORDS[prepared.stage]}: it holds another stage; use "
        f"{_other_stages(prepared)}"
    )


def _unreadable_hint(prepared: Prepared, counts: ReplayCounts) -> str:
    unreadable = _unreadable(prepared.stage, counts)
    if prepared.stage == "mentions" or unreadable == 0:
        return ""
    return (
        f"; {unreadable} records could not be read as {_STAGE_RECORDS[prepared.stage]}: "
        f"check {_stage_option(prepared)}"
    )


def run_replay(
    settings: Settings, options: ReplayOptions, *, progress: Progress | None = None
) -> ReplayResult:
    """The whole replay: prepare (fails fast on a bad option or an empty range), then run."""
    return run_prepared(prepare(settings, options), progress=progress)


def _config_source(settings: Settings) -> str:
    path = settings.detector_config
    return str(path) if path is not None else "defaults"
