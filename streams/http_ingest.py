"""``POST /mentions`` on the worker's web server, for webhooks.

All or nothing: a batch with any invalid item is refused with ``400`` and a per-item error list,
so the sender can fix and resend it whole (re-sent ids are de-duplicated downstream). Accepted
items go to the ``mentions`` topic keyed by id, with their own time as the record timestamp, and
are validated again by the validation agent like any other record.

An item larger than the ``mentions`` topic takes (its ``max.message.bytes``, read from Kafka at
the first request and again every ``topic_limit.LIMIT_REFRESH_S``, or sooner once Kafka refused an
item as too large) is refused before anything is sent, with its size and the limit: ``413`` when
that is the batch's only problem. Sent, Kafka would refuse it with a bare
``MessageSizeTooLargeError``, and the answer told the sender to send again an item that can never
fit.

``202`` means Kafka acknowledged every item. Kafka can fail part way through a valid batch,
after some items were written: that cannot be undone, so the answer is ``503`` saying how many
were acknowledged and which items were not confirmed (those may or may not be in Kafka). Sending
them again, or the whole batch, is safe: the validation stage drops a mention whose platform and
id it has already passed on to the same brand (:mod:`streams.dedup`,
``STORMVARSEL_DEDUP_WINDOW_S``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
from aiohttp.web import RequestPayloadError

from streams import metrics
from streams.brand_matching import BrandMatcher
from streams.kafka_send import publish
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection, validate_object
from streams.routing import route
from streams.settings import Settings
from streams.topic_limit import (
    TOO_LARGE_FOR_TOPIC,
    RecordLimit,
    TopicLimit,
    worker_topic_limit,
)

log = get_logger(__name__)

MAX_ITEMS = 10_000
#: JSON Lines media types: each line a document, which one ``json.loads`` of the body cannot read.
_JSON_LINES = ("ndjson", "jsonl", "jsonlines", "json-seq", "x-json-stream")
#: How long a request waits for Kafka to acknowledge its items; longer, and they are reported as
#: not confirmed (Faust's producer may keep trying for far longer than an HTTP client waits).
ACK_TIMEOUT_S = 30.0
#: Seconds the sender is asked to wait before trying a batch Kafka did not confirm again.
RETRY_AFTER_S = 5
#: Seconds a sender has to send the whole body (``STORMVARSEL_WEB_READ_TIMEOUT_S``).
READ_TIMEOUT_S = 30.0
#: Requests handled at once, from reading the body to Kafka's acknowledgement; one more is
#: answered ``503`` with ``Retry-After`` at once, before its body is read. This bounds the
#: memory held by bodies (this many times ``STORMVARSEL_HTTP_MAX_BYTES``) and the threads
#: checking them.
MAX_CONCURRENT = 8
#: Seconds a sender refused because MAX_CONCURRENT requests are in hand is asked to wait.
BUSY_RETRY_AFTER_S = 1
#: Hands one record (key, value, event time in ms) to the producer; the awaitable it returns
#: completes when Kafka acknowledges the record, or fails.
Send = Callable[[bytes, bytes, int], Awaitable[Awaitable[Any]]]


@dataclass
class Batch:
    """Outcome of checking one request body."""

    records: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # key, value, event ms
    errors: list[dict[str, Any]] = field(default_factory=list)


def check_batch(
    body: bytes,
    *,
    limits: Limits,
    matcher: BrandMatcher | None,
    topic_limit: RecordLimit | None = None,
) -> Batch:
    """Parse a body holding one mention object or an array of them; never raises. An item
    over ``topic_limit`` (the largest record the topic takes) is refused too."""
    batch = Batch()
    try:
        payload = json.loads(
            body.decode("utf-8"), parse_constant=_not_json, parse_float=_finite_float
        )
    except UnicodeDecodeError:
        batch.errors.append({"index": None, "reason": "not_utf8", "message": "body is not UTF-8"})
        return batch
    except RecursionError:
        message = "nested too deeply"
        batch.errors.append({"index": None, "reason": "invalid_json", "message": message})
        return batch
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of over 4,300 digits
        message = str(exc)
        if "integer string conversion" in message:
            message = "an integer with more digits than JSON readers accept (4,300)"
        batch.errors.append({"index": None, "reason": "invalid_json", "message": message})
        return batch
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        batch.errors.append({"index": None, "reason": "empty", "message": "empty array"})
    if len(items) > MAX_ITEMS:
        batch.errors.append(
            {"index": None, "reason": "too_many", "message": f"more than {MAX_ITEMS} items"}
        )
        return batch
    for index, item in enumerate(items):
        outcome = _check_item(item, limits=limits, matcher=matcher, topic_limit=topic_limit)
        if isinstance(outcome, Rejection):
            batch.errors.append(
                {"index": index, "reason": outcome.reason, "message": outcome.message}
            )
        else:
            batch.records.append(outcome)
    return batch


async def check_off_loop(
    body: bytes,
    *,
    limits: Limits,
    matcher: BrandMatcher | None,
    topic_limit: RecordLimit | None = None,
) -> Batch:
    """:func:`check_batch` in a worker thread: parsing and checking 10,000 items (1 MiB) takes
    about a quarter of a second, which on the event loop stalled the agents, Kafka heartbeats and
    ``/healthz`` meanwhile. At most ``MAX_CONCURRENT`` run at once (one per request in hand)."""
    return await asyncio.to_thread(
        check_batch, body, limits=limits, matcher=matcher, topic_limit=topic_limit
    )


def _not_json(name: str) -> Any:
    """NaN, Infinity and -Infinity: Python reads them, JSON and the validate stage do not."""
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for JSON readers")
    return value


def _check_item(
    item: Any, *, limits: Limits, matcher: BrandMatcher | None, topic_limit: RecordLimit | None
) -> tuple[bytes, bytes, int] | Rejection:
    mention = validate_object(item, limits=limits)  # also bounds nesting before we serialise
    if isinstance(mention, Rejection):
        return mention
    try:
        value = json.dumps(item, ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError:  # validate_object refuses lone surrogates: a second guard
        return Rejection("not_utf8", "a string holds a lone surrogate, which is not UTF-8")
    if len(value) > limits.max_bytes:
        return Rejection("too_large", f"{len(value)} bytes; the limit is {limits.max_bytes}")
    if matcher is not None:
        routed = route(mention, matcher)
        if isinstance(routed, Rejection):
            return routed
    key = mention.id.encode()
    if topic_limit is not None and (refusal := topic_limit.refusal(key, value)) is not None:
        return refusal
    return key, value, mention.event_ms


@dataclass
class Delivery:
    """What Kafka made of a valid batch: the items it acknowledged, and the others."""

    accepted: int = 0
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)  # index, reason, message


def _unconfirmed(index: int, error: BaseException | None) -> dict[str, Any]:
    if error is None:
        return {
            "index": index,
            "reason": "send_failed:not_confirmed",
            "message": f"Kafka did not acknowledge the item within {ACK_TIMEOUT_S:g} s",
        }
    return {
        "index": index,
        "reason": f"send_failed:{type(error).__name__}",
        "message": (str(error) or repr(error))[:300],
    }


async def deliver(
    records: list[tuple[bytes, bytes, int]], send: Send, *, timeout_s: float = ACK_TIMEOUT_S
) -> Delivery:
    """Hand every record to the producer and wait until Kafka has acknowledged each, all
    within ``timeout_s``. Once the producer refuses one, the items after it are not tried: they are
    reported as not confirmed too, as is anything Kafka has not answered in time."""
    delivery = Delivery()
    queued: list[tuple[int, asyncio.Future[Any]]] = []
    loop = asyncio.get_running_loop()
    # One deadline for handing the items over and for their answers: the producer waits for
    # room when a partition's batch is full, for up to its request timeout (20 minutes) while
    # Kafka is away, and the collector had no answer for as long, its slot held.
    deadline = loop.time() + timeout_s
    for index, (key, value, event_ms) in enumerate(records):
        try:
            async with asyncio.timeout_at(deadline):
                handed = await send(key, value, event_ms)
            queued.append((index, asyncio.ensure_future(handed)))
        except TimeoutError:  # not handed over: not sent (the item was not added)
            delivery.unconfirmed.extend(
                _unconfirmed(later, None) for later in range(index, len(records))
            )
            break
        except Exception as exc:  # the producer's errors are not one family
            delivery.unconfirmed.extend(
                _unconfirmed(later, exc) for later in range(index, len(records))
            )
            break
    if queued:
        await asyncio.wait(
            [future for _, future in queued], timeout=max(0.0, deadline - loop.time())
        )
    failed: list[dict[str, Any]] = []
    for index, future in queued:
        if not future.done():
            failed.append(_unconfirmed(index, None))
        elif future.cancelled():
            failed.append(_unconfirmed(index, asyncio.CancelledError()))
        elif (error := future.exception()) is not None:
            failed.append(_unconfirmed(index, error))
        else:
            delivery.accepted += 1
    delivery.unconfirmed[:0] = failed  # in index order: queued items come first
    return delivery


def answer(delivery: Delivery, total: int) -> tuple[dict[str, Any], int]:
    """The response body and status for a valid batch of ``total`` items."""
    if not delivery.unconfirmed:
        return {"accepted": delivery.accepted}, 202
    missing = len(delivery.unconfirmed)
    message = (
        f"Kafka acknowledged {delivery.accepted} of {total} item(s); {missing} were not "
        "confirmed and may or may not have been queued (see errors). Send them again, or the "
        "whole batch: the worker drops a mention id it has already taken (de-duplication by "
        "platform and id, STORMVARSEL_DEDUP_WINDOW_S)"
    )
    body = {
        "error": "not_confirmed",
        "message": message,
        "accepted": delivery.accepted,
        "errors": delivery.unconfirmed[:1000],
    }
    return body, 503


def media_type_problem(content_type: str | None) -> str | None:
    """Why a body declared as ``content_type`` is refused (415), or None: JSON is read."""
    given = "application/json" if content_type is None else content_type
    subtype = given.split(";")[0].strip().lower().rpartition("/")[2]
    if subtype.endswith("json") and not subtype.endswith(_JSON_LINES):
        return None
    if subtype.endswith(_JSON_LINES):
        return (
            "JSON Lines (one document per line) is not read: send application/json, a JSON "
            "array of mention objects or one object"
        )
    return "send application/json: a JSON array of mention objects or one object"


def encoding_problem(content_encoding: str | None) -> str | None:
    """Why a body sent with ``Content-Encoding`` is refused (415), or None. Compressed bodies
    are not read: aiohttp unpacked them on the event loop, also the ones it drops after an
    early answer (a 401 before the token was known good), so a gigabyte of gzipped spaces in
    1 MB stalled every stage for seconds, without a token (``web_listener``)."""
    given = (content_encoding or "identity").strip().lower()
    if given in ("", "identity"):
        return None
    return f"Content-Encoding {given[:40]!r} is not read: send the JSON uncompressed"


def authorised(header: str | None, token: str | None) -> bool:
    """Constant-time check of ``Authorization: Bearer <token>`` (always true without a token).

    Both sides are hashed first, so the comparison always runs over 32 bytes: its time tells
    neither how much of the token was right nor how long the token is.
    """
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
    token_digest = hashlib.sha256(token.encode("utf-8")).digest()
    # Compare even on a wrong scheme so timing does not tell which part was wrong.
    matches = hmac.compare_digest(given_digest, token_digest)
    return scheme.lower() == "bearer" and matches


class BodyTimeout(Exception):
    """The client did not send its whole body within the time allowed."""


class BodyBroken(Exception):
    """The body ended before it was whole: the client went away, or sent broken chunks."""


async def read_limited(
    request: Any, max_bytes: int, timeout_s: float = READ_TIMEOUT_S
) -> bytes | None:
    """The body, or None when it is larger than ``max_bytes`` (read no further than that);
    BodyTimeout when it has not all arrived within ``timeout_s`` (a client sending a byte now and
    then would otherwise hold the connection, and up to ``max_bytes`` of memory, for ever);
    BodyBroken when the client hung up before it was whole."""
    length = request.content_length
    if length is not None and length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                chunk = await request.content.read(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > max_bytes:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    except (ConnectionError, RequestPayloadError):
        # a traceback per client that hangs up mid-body would be a log flood of its own
        raise BodyBroken from None


def register(
    app: faust.App,
    *,
    mentions: faust.TopicT,
    limits: Limits,
    matcher: BrandMatcher,
    token: str | None,
    max_bytes: int,
    ack_timeout_s: float = ACK_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
    max_concurrent: int = MAX_CONCURRENT,
    settings: Settings | None = None,
    topic_limit: TopicLimit | None = None,
) -> None:
    """Serve ``POST /mentions``. ``settings`` connect to Kafka to read the topic's record limit
    (the environment's when None); ``topic_limit`` replaces that reading (tests)."""
    in_hand = 0  # requests between their slot and their answer (one event loop: no lock)
    topic_name = mentions.get_topic_name()
    if topic_limit is None:
        topic_limit = worker_topic_limit(app, settings, topic_name)
    limit_cache = topic_limit  # named apart: the handler's check_off_loop takes a topic_limit

    async def send(key: bytes, value: bytes, event_ms: int) -> Awaitable[Any]:
        return await publish(mentions, key=key, value=value, timestamp=event_ms / 1000)

    def respond(web: Any, body: dict[str, Any], status: int, **headers: str) -> Any:
        metrics.HTTP_INGEST_REQUESTS.labels(code=str(status)).inc()
        return web.json(body, status=status, headers=headers or None)

    async def handle(web: Any, request: Any) -> Any:
        try:
            body = await read_limited(request, max_bytes, read_timeout_s)
        except BodyTimeout:
            return respond(
                web,
                {
                    "error": "timeout",
                    "message": f"the body did not arrive within {read_timeout_s:g} s",
                },
                408,
                Connection="close",
            )
        except BodyBroken:
            return respond(
                web,
                {"error": "incomplete", "message": "the body ended before it was whole"},
                400,
                Connection="close",
            )
        if body is None:
            return respond(
                web,
                {"error": "too_large", "message": f"the body is over {max_bytes} bytes"},
                413,
            )
        batch = await check_off_loop(
            body, limits=limits, matcher=matcher, topic_limit=await limit_cache.get()
        )
        if batch.errors and all(e["reason"] == TOO_LARGE_FOR_TOPIC for e in batch.errors):
            return respond(
                web,
                {
                    "error": TOO_LARGE_FOR_TOPIC,
                    "message": f"{len(batch.errors)} item(s) larger than Kafka topic "
                    f"{topic_name!r} takes; nothing was accepted: send the others without "
                    "them (see errors)",
                    "errors": batch.errors[:1000],
                },
                413,
            )
        if batch.errors:
            return respond(
                web,
                {
                    "error": "invalid",
                    "message": f"{len(batch.errors)} item(s) invalid; nothing was accepted",
                    "errors": batch.errors[:1000],
                },
                400,
            )
        delivery = await deliver(batch.records, send, timeout_s=ack_timeout_s)
        reply, status = answer(delivery, len(batch.records))
        if any(e["reason"] == "send_failed:MessageSizeTooLargeError" for e in delivery.unconfirmed):
            limit_cache.forget()  # the topic's limit was lowered since it was read
        if status == 202:
            log.info("http.ingest", accepted=delivery.accepted)
            return respond(web, reply, status)
        log.warning(
            "http.ingest_not_confirmed",
            accepted=delivery.accepted,
            not_confirmed=len(delivery.unconfirmed),
            reason=delivery.unconfirmed[0]["reason"],
        )
        return respond(web, reply, status, **{"Retry-After": str(RETRY_AFTER_S)})

    @app.page("/mentions")
    class MentionsView(faust.web.View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            nonlocal in_hand
            if not authorised(request.headers.get("Authorization"), token):
                return respond(
                    self,
                    {"error": "unauthorized", "message": "a valid bearer token is required"},
                    401,
                    **{"WWW-Authenticate": 'Bearer realm="stormvarsel"'},
                )
            problem = media_type_problem(request.headers.get("Content-Type"))
            problem = problem or encoding_problem(request.headers.get("Content-Encoding"))
            if problem is not None:
                return respond(self, {"error": "unsupported_media_type", "message": problem}, 415)
            if in_hand >= max_concurrent:
                return respond(
                    self,
                    {
                        "error": "busy",
                        "message": f"{max_concurrent} requests are being handled; nothing was "
                        f"read or accepted: send the batch again in {BUSY_RETRY_AFTER_S} s",
                    },
                    503,
                    **{"Retry-After": str(BUSY_RETRY_AFTER_S)},
                )
            in_hand += 1
            try:
                return await handle(self, request)
            finally:
                in_hand -= 1
