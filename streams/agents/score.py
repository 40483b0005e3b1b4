"""Scoring stage: validated mentions in, sentiment and language added, ``mentions.scored`` out.

Inference runs in micro-batches (``take_events``: up to N mentions or T seconds) on a dedicated
thread, so a slow model never blocks the event loop that keeps the consumer's heartbeats and the
web server alive. The stage is stateless: more partitions and workers scale it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust

from streams import metrics
from streams.forwarding import Forwarder, ForwardLost
from streams.log_setup import get_logger
from streams.mention import Rejection, has_surrogate
from streams.sentiment.base import Scorer, Sentiment
from streams.sentiment.language import LanguageIdentifier, normalise_lang
from streams.topic_limit import TopicLimit

log = get_logger(__name__)


_LANGUAGE_LABELS = frozenset({"nb", "nn", "sv", "da", "en"})


def language_label(lang: str | None) -> str:
    """Metric label for a language: the four product languages, else other/unknown (bounded)."""
    if not lang:
        return "unknown"
    return lang if lang in _LANGUAGE_LABELS else "other"


@dataclass(frozen=True)
class ScoreConfig:
    batch_size: int
    batch_wait_s: float


def _non_finite(sentiment: Sentiment, model: str, lang: str | None) -> Rejection:
    """A score with NaN or infinite probabilities: the mention is dead-lettered, not scored
    (its label would be a guess, and NaN is not JSON)."""
    probs = (sentiment.negative, sentiment.neutral, sentiment.positive)
    log.warning("scoring.non_finite", model=model, language=language_label(lang), probs=probs)
    return Rejection(
        "internal_error",
        f"scoring: the model {model} gave non-finite probabilities "
        f"(negative, neutral, positive) = {probs} for this text",
    )


class BatchScorer:
    """Everything that runs off the event loop: parse, detect language, score, serialise."""

    def __init__(self, scorer_factory: Callable[[], Scorer]) -> None:
        self._factory = scorer_factory
        self._scorer: Scorer | None = None
        self._languages: LanguageIdentifier | None = None
        self._load_error: BaseException | None = None

    def warm_up(self) -> str:
        """Load the scorer once. A load that failed is not tried again: the same error is raised
        to every later caller (the worker exits on it; a retry would only fail the same way)."""
        if self._load_error is not None:
            raise self._load_error
        if self._scorer is None:
            started = time.monotonic()
            try:
                self._scorer = self._factory()
                self._languages = LanguageIdentifier()
            except BaseException as exc:
                self._scorer = None
                self._load_error = exc
                raise
            log.info(
                "scorer.ready",
                model=self._scorer.version,
                seconds=round(time.monotonic() - started, 1),
            )
        return self._scorer.version

    def run(self, values: Sequence[bytes]) -> list[tuple[bytes, dict[str, Any]] | Rejection]:
        self.warm_up()
        assert self._scorer is not None and self._languages is not None
        parsed: list[dict[str, Any] | Rejection] = []
        for raw in values:
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ValueError("not a validated mention")
                # The send loop stamps the record with this time; a producer other than the
                # validate stage may lack it, and a KeyError there would lose the whole batch.
                stamp = record.get("created_at_ms")
                if (
                    isinstance(stamp, bool)
                    or not isinstance(stamp, int | float)
                    or not math.isfinite(stamp)
                ):
                    raise ValueError("no finite numeric created_at_ms")
            except (ValueError, TypeError) as exc:
                parsed.append(Rejection("invalid_json", f"unreadable validated mention: {exc}"))
                continue
            if has_surrogate(record):
                # JSON's \ud83d escapes decode to lone surrogates, which are not UTF-8: the
                # language detector raised on them for the whole batch, and encoding the scored
                # record would fail too. The validate stage rejects them; another producer may not.
                parsed.append(
                    Rejection("not_utf8", "a string holds a lone surrogate, which is not UTF-8")
                )
                continue
            parsed.append(record)
        good = [r for r in parsed if isinstance(r, dict)]
        texts = [r["text"] for r in good]
        langs = self._languages.detect(texts, [r.get("lang") for r in good])
        sentiments = self._scorer.score(texts, langs)
        version = self._scorer.version
        out: list[tuple[bytes, dict[str, Any]] | Rejection] = []
        scored = iter(zip(good, langs, sentiments, strict=True))
        for item in parsed:
            if isinstance(item, Rejection):
                out.append(item)
                continue
            record, lang, sentiment = next(scored)
            if not sentiment.finite:
                out.append(_non_finite(sentiment, version, lang))
                continue
            # "und", "zxx", Twitter's "qme"... were given but name no language: detected.
            given = normalise_lang(record.get("lang"))
            record["lang_source"] = "collector" if given is not None else "detected"
            record["lang"] = lang
            record["sentiment"] = sentiment.as_dict(version)
            out.append((json.dumps(record, ensure_ascii=False).encode(), record))
        return out

    def run_each(self, values: Sequence[bytes]) -> list[tuple[bytes, dict[str, Any]] | Rejection]:
        """:meth:`run` one record at a time, after a batch failed: the record that breaks the
        model or the language detector becomes an ``internal_error`` dead letter, and the rest
        of its batch is scored. A model that cannot load still raises."""
        self.warm_up()
        out: list[tuple[bytes, dict[str, Any]] | Rejection] = []
        for value in values:
            try:
                out.extend(self.run([value]))
            except Exception as exc:  # a bug or a model failure on this record only
                log.exception("scoring.internal_error", size=len(value or b""))
                out.append(Rejection("internal_error", f"scoring: {type(exc).__name__}: {exc}"))
        return out


def register(
    app: faust.App,
    *,
    source: faust.TopicT,
    scored: faust.TopicT,
    dlq: faust.TopicT,
    scorer_factory: Callable[[], Scorer],
    config: ScoreConfig,
    on_loaded: Callable[[], None] = lambda: None,
    scored_limit: TopicLimit | None = None,
    dlq_limit: TopicLimit | None = None,
) -> Any:
    """The scoring stage. ``on_loaded`` is called once the model has loaded at start-up (after
    Faust recovered the tables: its tasks start then), when the worker is ready.
    ``scored_limit``: the largest record ``scored`` takes (read from Kafka), so that a scored
    mention it cannot take is dead-lettered instead of sent."""
    forwarder = Forwarder(app, scored, dlq, stage="score", limit=scored_limit, dlq_limit=dlq_limit)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stormvarsel-scoring")
    batch_scorer = BatchScorer(scorer_factory)

    async def load_or_crash() -> bool:
        """Load (and on first run, prepare) the model off the loop. On failure the app crashes
        with the error (the worker exits non-zero) and False is returned: the caller must not
        raise, or Faust would restart the agent into the same failure while the app stops, and
        the stop would wait for it forever."""
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(executor, batch_scorer.warm_up)
        except Exception as exc:
            if not app.should_stop:  # the first of the task and the agent to see it
                log.error("scorer.load_failed", error=f"{type(exc).__name__}: {exc}")
                await app.crash(exc)
            return False
        metrics.SCORER_INFO.info({"model": version})
        return True

    @app.task
    async def load_model() -> None:
        # Before mentions arrive, so a model that cannot load stops the worker even when
        # nothing is queued.
        if await load_or_crash():
            on_loaded()

    @app.agent(source, name="stormvarsel.score")
    async def score(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        # Before the first batch is taken: a batch taken is acknowledged (and its offsets
        # committed) whatever the agent does with it, so a model that cannot load must stop
        # the worker with nothing taken.
        if not await load_or_crash():
            return
        batches = stream.take_events(config.batch_size, within=config.batch_wait_s)  # type: ignore[attr-defined]
        async for events in batches:
            values = [event.message.value for event in events]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(executor, batch_scorer.run, values)
            except Exception:
                # Faust acknowledges the batch even if the agent fails, so a failure here would
                # lose every mention in it: find the record that breaks, keep the others.
                log.exception("scoring.batch_failed", size=len(values))
                results = await loop.run_in_executor(executor, batch_scorer.run_each, values)
            metrics.SCORING_BATCH_SECONDS.observe(time.perf_counter() - started)
            metrics.SCORING_BATCH_SIZE.observe(len(values))
            for event, result in zip(events, results, strict=True):
                message = event.message
                if forwarder.halted:
                    break  # stopping without a commit: the batch is read again after the restart
                try:
                    if isinstance(result, Rejection):
                        await forwarder.reject(message, result)
                        continue
                    payload, record = result
                    forwarded = await forwarder.forward(
                        message,
                        key=message.key,
                        value=payload,
                        timestamp=record["created_at_ms"] / 1000,
                    )
                except ForwardLost:
                    break  # a send failed, not for the record: the forwarder halted the worker
                if not forwarded:
                    continue
                metrics.EVENT_LAG_SECONDS.labels(stage="scored").observe(
                    max(0.0, time.time() - record["created_at_ms"] / 1000)
                )
                metrics.MENTIONS_SCORED.labels(
                    sentiment=record["sentiment"]["label"], language=language_label(record["lang"])
                ).inc()

    return score
