"""``POST /mentions`` on the worker's web server, for webhooks.

All or nothing: a batch with any invalid item is refused with ``400`` and a per-item error list,
so the sender can fix and resend it whole (re-sent ids are de-duplicated downstream). Accepted
items go to the ``mentions`` topic keyed by id, with their own time as the record timestamp, and
are validated again by the validation agent like any other record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from typing import Any

import faust

from streams import metrics
from streams.brand_matching import BrandMatcher
from streams.log_setup import get_logger
from streams.mention import Limits, Rejection, validate_object
from streams.routing import route

log = get_logger(__name__)

MAX_ITEMS = 10_000


@dataclass
class Batch:
    """Outcome of checking one request body."""

    records: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # key, value, event ms
    errors: list[dict[str, Any]] = field(default_factory=list)


def check_batch(body: bytes, *, limits: Limits, matcher: BrandMatcher | None) -> Batch:
    """Parse a body holding one mention object or an array of them; never raises."""
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
        outcome = _check_item(item, limits=limits, matcher=matcher)
        if isinstance(outcome, Rejection):
            batch.errors.append(
                {"index": index, "reason": outcome.reason, "message": outcome.message}
            )
        else:
            batch.records.append(outcome)
    return batch


def _not_json(name: str) -> Any:
    """NaN, Infinity and -Infinity: Python reads them, JSON and the validate stage do not."""
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for JSON readers")
    return value


def _check_item(
    item: Any, *, limits: Limits, matcher: BrandMatcher | None
) -> tuple[bytes, bytes, int] | Rejection:
    mention = validate_object(item, limits=limits)  # also bounds nesting before we serialise
    if isinstance(mention, Rejection):
        return mention
    try:
        value = json.dumps(item, ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError:  # a lone surrogate in a field that validation does not read
        return Rejection("not_utf8", "a string holds a lone surrogate, which is not UTF-8")
    if len(value) > limits.max_bytes:
        return Rejection("too_large", f"{len(value)} bytes; the limit is {limits.max_bytes}")
    if matcher is not None:
        routed = route(mention, matcher)
        if isinstance(routed, Rejection):
            return routed
    return mention.id.encode(), value, mention.event_ms


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


async def read_limited(request: Any, max_bytes: int) -> bytes | None:
    """The body, or None when it is larger than ``max_bytes`` (read no further than that)."""
    length = request.content_length
    if length is not None and length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)


def register(
    app: faust.App,
    *,
    mentions: faust.TopicT,
    limits: Limits,
    matcher: BrandMatcher,
    token: str | None,
    max_bytes: int,
) -> None:
    def respond(web: Any, body: dict[str, Any], status: int, **headers: str) -> Any:
        metrics.HTTP_INGEST_REQUESTS.labels(code=str(status)).inc()
        return web.json(body, status=status, headers=headers or None)

    @app.page("/mentions")
    class MentionsView(faust.web.View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            if not authorised(request.headers.get("Authorization"), token):
                return respond(
                    self,
                    {"error": "unauthorized", "message": "a valid bearer token is required"},
                    401,
                    **{"WWW-Authenticate": 'Bearer realm="stormvarsel"'},
                )
            content_type = request.headers.get("Content-Type", "application/json")
            if not content_type.split(";")[0].strip().lower().endswith("json"):
                return respond(
                    self,
                    {"error": "unsupported_media_type", "message": "send application/json"},
                    415,
                )
            body = await read_limited(request, max_bytes)
            if body is None:
                return respond(
                    self,
                    {"error": "too_large", "message": f"the body is over {max_bytes} bytes"},
                    413,
                )
            batch = check_batch(body, limits=limits, matcher=matcher)
            if batch.errors:
                return respond(
                    self,
                    {
                        "error": "invalid",
                        "message": f"{len(batch.errors)} item(s) invalid; nothing was accepted",
                        "errors": batch.errors[:1000],
                    },
                    400,
                )
            for key, value, event_ms in batch.records:
                await mentions.send(key=key, value=value, timestamp=event_ms / 1000)
            log.info("http.ingest", accepted=len(batch.records))
            return respond(self, {"accepted": len(batch.records)}, 202)
