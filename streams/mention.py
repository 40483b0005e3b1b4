"""The mention schema and the validator that turns raw bytes into a mention or a reason.

Pure code (no Kafka, no asyncio): the validation agent, the HTTP endpoint and ``stormvarsel ingest``
all call :func:`validate_record`, so a record refused in one place is refused everywhere, for the
same machine-readable reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from detectors.events import MAX_COUNT
from streams.iso_time import parse_iso

Platform = Literal[
    "x",
    "instagram",
    "facebook",
    "tiktok",
    "linkedin",
    "youtube",
    "reddit",
    "news",
    "forum",
    "other",
]
PLATFORMS: tuple[str, ...] = Platform.__args__  # type: ignore[attr-defined]
_PLATFORM_ALIASES = {
    "twitter": "x",
    "x.com": "x",
    "twitter.com": "x",
    "ig": "instagram",
    "fb": "facebook",
    "meta": "facebook",
    "yt": "youtube",
    "blog": "forum",
    "web": "other",
}

#: Earliest event time accepted: nothing about a brand on social media predates this.
MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: Deepest nesting kept in unknown fields; deeper input cannot be serialised safely downstream.
MAX_DEPTH = 32
_MS_THRESHOLD = 100_000_000_000  # epoch values above this are milliseconds (year 5138 in seconds)
#: A surrogate code point: JSON's unpaired ``\ud83d`` escapes decode to one, and UTF-8 has none.
_SURROGATE = re.compile("[\ud800-\udfff]")


#: The largest record the worker's producer sends: Faust's ``producer_max_request_size``
#: (1,000,000 bytes; streams/app.py leaves the default), checked by aiokafka on the serialised
#: record (key, value and the record's overhead).
PRODUCER_MAX_REQUEST_BYTES = 1_000_000
#: How many times larger than the record received the validated record forwarded to
#: ``mentions.valid`` can be: it is written with ``", "`` and ``": "`` separators and numbers in
#: Python's form, so an unknown field ``[1e15,1e15,...]`` becomes ``[1000000000000000.0, ...]``,
#: 4.0 times its size (measured: ``[0,0,...]`` 1.5 times, ``[{},{},...]`` 1.33, keys 1.23).
FORWARD_GROWTH = 4
#: Room kept for what the stages add to a mention that does not grow with it (the defaults, the
#: ``created_at`` forms, ``brand``, ``brands``, ``matched_by``, ``received_at_ms``, the sentiment
#: scores, the key and the record's overhead): about 1 KB, and ``brands`` lists every brand the
#: text names (some hundreds of brand ids).
FORWARD_OVERHEAD_BYTES = 16_960
#: The highest ``STORMVARSEL_MENTION_MAX_BYTES``: a mention of up to this many bytes stays under
#: the producer's limit however the validation stage rewrites it (245,760 bytes, 240 KiB).
MENTION_MAX_BYTES_CEILING = (PRODUCER_MAX_REQUEST_BYTES - FORWARD_OVERHEAD_BYTES) // FORWARD_GROWTH


@dataclass(frozen=True)
class Limits:
    """Bounds the validator enforces; the worker takes them from the settings."""

    max_bytes: int = 64 * 1024
    max_future_skew_s: float = 3600.0


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: a machine-readable reason and a sentence for humans."""

    reason: str
    message: str


def _count(value: Any) -> Any:
    """A count is a JSON integer: pydantic's lax mode read ``true`` as 1 and ``"1_000"`` as 1000,
    though the schema says integer. An integral float (``1e3``, ``1840.0``) is a JSON integer."""
    if isinstance(value, bool):
        raise PydanticCustomError("bad_type", "expected an integer, not true or false")
    if isinstance(value, str):
        raise PydanticCustomError("bad_type", "expected an integer, not text")
    return value


class Author(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str | None = Field(None, max_length=256, description="Platform id of the author.")
    handle: str | None = Field(None, max_length=256, description="Public handle, e.g. @kari.")
    followers: int = Field(
        0, ge=0, le=MAX_COUNT, description="Follower count, for reach weighting."
    )

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("followers", mode="before")
    @classmethod
    def _followers(cls, value: Any) -> Any:
        return _count(value)


class Engagement(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    likes: int = Field(0, ge=0, le=MAX_COUNT)
    shares: int = Field(0, ge=0, le=MAX_COUNT)
    replies: int = Field(0, ge=0, le=MAX_COUNT)

    @field_validator("likes", "shares", "replies", mode="before")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        return _count(value)


class Mention(BaseModel):
    """One social-media post that may concern a monitored brand. Unknown fields are kept."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        title="Stormvarsel mention",
        json_schema_extra={"$id": "https://stormvarsel.dev/schemas/mention.schema.json"},
    )

    id: str = Field(
        min_length=1, max_length=256, description="Stable id of the post on its platform."
    )
    text: str = Field(min_length=1, description="The post's text as written.")
    created_at: datetime = Field(
        description=(
            "Event time: ISO 8601 with a UTC offset (2026-11-24T10:15:00+01:00), or epoch "
            "seconds or milliseconds. Normalised to UTC."
        ),
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": 946684800},
            ]
        },
    )
    brand: str | None = Field(
        None,
        max_length=120,
        description="Brand id (or name) from the brands file; matched from the text when absent.",
    )
    platform: Platform = Field("other", description="Where the post appeared.")
    lang: str | None = Field(
        None,
        max_length=35,
        pattern=r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$",
        description="Language code given by the collector (nb, nn, sv, da, en, ...), or a "
        "BCP 47 tag (zh-Hant-TW); wins over detection.",
    )
    author: Author = Field(default_factory=lambda: Author())
    url: str | None = Field(None, max_length=2048, description="Link to the post (http or https).")
    engagement: Engagement = Field(default_factory=lambda: Engagement())
    in_reply_to: str | None = Field(None, max_length=256, description="Id of the parent post.")
    is_brand_reply: bool = Field(False, description="True when the brand itself wrote the post.")

    @field_validator("id", "in_reply_to", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # Platforms hand out numeric ids; they are identifiers, not numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("created_at", mode="before")
    @classmethod
    def _event_time(cls, value: Any) -> datetime:
        return parse_event_time(value)

    @field_validator("is_brand_reply", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        # Lax mode read "yes", "on", "1", 1 and 1.0 as true: a collector's stray value took a
        # customer's post out of volume, sentiment and reach without a word.
        if not isinstance(value, bool):
            raise PydanticCustomError("bad_type", "expected true or false")
        return value

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: Any) -> Any:
        if isinstance(value, str):
            folded = value.strip().lower()
            return _PLATFORM_ALIASES.get(folded, folded)
        return value

    @field_validator("brand", mode="before")
    @classmethod
    def _brand(cls, value: Any) -> Any:
        # A blank brand is no brand: matched from the text, like a blank lang is detected.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("lang", mode="before")
    @classmethod
    def _lang(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace("_", "-")
            return value or None
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "the text is blank")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise PydanticCustomError("url_scheme", "only http and https links are accepted")
        return value

    @property
    def event_ms(self) -> int:
        return int(self.created_at.timestamp() * 1000)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict with the event time in ISO 8601 UTC and as epoch milliseconds."""
        data = self.model_dump(mode="json")
        data["created_at"] = self.created_at.isoformat().replace("+00:00", "Z")
        data["created_at_ms"] = self.event_ms
        return data


def parse_event_time(value: Any) -> datetime:
    """ISO 8601 with an offset, or epoch seconds/milliseconds (numbers or digit strings), to UTC."""
    if isinstance(value, bool):
        raise PydanticCustomError("bad_type", "expected ISO 8601 text or epoch seconds")
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").replace(".", "", 1).isdigit():
            value = float(text)
        else:
            try:
                parsed = parse_iso(text)
            except ValueError:
                raise PydanticCustomError(
                    "bad_value", "not an ISO 8601 time (e.g. 2026-11-24T10:15:00+01:00)"
                ) from None
            if parsed.tzinfo is None:
                raise PydanticCustomError(
                    "bad_value", "the time has no UTC offset (add Z or +01:00)"
                )
            try:
                return parsed.astimezone(UTC)
            except OverflowError:  # year 1 or 9999, moved past the calendar by its offset
                raise PydanticCustomError(
                    "timestamp_out_of_range", "the time is out of range in UTC"
                ) from None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise PydanticCustomError(
                "timestamp_out_of_range", "the epoch time is out of range"
            ) from None
        if not math.isfinite(number):
            raise PydanticCustomError("timestamp_out_of_range", "the time is not finite")
        seconds = number / 1000 if abs(number) >= _MS_THRESHOLD else number
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise PydanticCustomError(
                "timestamp_out_of_range", "the epoch time is out of range"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PydanticCustomError("bad_value", "the time has no UTC offset")
        return value.astimezone(UTC)
    raise PydanticCustomError("bad_type", "expected ISO 8601 text or epoch seconds")


_TYPE_ERRORS = {
    "string_type",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "model_type",
    "model_attributes_type",
    "dict_type",
    "bad_type",
    "literal_error",
}
_KNOWN_PATHS = {
    ("id",),
    ("text",),
    ("created_at",),
    ("brand",),
    ("platform",),
    ("lang",),
    ("author",),
    ("author", "id"),
    ("author", "handle"),
    ("author", "followers"),
    ("url",),
    ("engagement",),
    ("engagement", "likes"),
    ("engagement", "shares"),
    ("engagement", "replies"),
    ("in_reply_to",),
    ("is_brand_reply",),
}


def _field_path(loc: tuple[Any, ...]) -> str:
    """The schema field an error is about, never text taken from the input (bounded labels)."""
    parts = tuple(str(p) for p in loc)
    while parts and parts not in _KNOWN_PATHS:
        parts = parts[:-1]
    return ".".join(parts) or "mention"


def rejection_from(exc: ValidationError) -> Rejection:
    err = exc.errors(include_url=False)[0]
    kind = err.get("type", "")
    field = _field_path(tuple(err.get("loc", ())))
    message = f"{field}: {err.get('msg', 'invalid')}"
    if kind == "missing":
        return Rejection(f"missing_field:{field}", f"the mention has no {field!r}")
    if kind == "timestamp_out_of_range":
        return Rejection("timestamp_out_of_range", message)
    if kind in _TYPE_ERRORS:
        if kind == "literal_error" and field == "platform" and isinstance(err.get("input"), str):
            return Rejection("bad_value:platform", f"platform: expected one of {PLATFORMS}")
        return Rejection(f"bad_type:{field}", message)
    return Rejection(f"bad_value:{field}", message)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def validate_record(
    raw: bytes | None, *, limits: Limits = Limits(), now: datetime | None = None
) -> Mention | Rejection:
    """Decode, parse and validate one record. Never raises for any input."""
    if raw is None or raw == b"":
        return Rejection("empty", "the record has no value")
    if len(raw) > limits.max_bytes:
        return Rejection(
            "too_large", f"the record is {len(raw)} bytes; the limit is {limits.max_bytes}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"the value is not UTF-8 (byte {exc.start})")
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        return Rejection("invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return Rejection("invalid_json", "the JSON is nested too deeply")
    except ValueError as exc:
        return Rejection("invalid_json", str(exc))
    return validate_object(value, limits=limits, now=now)


def validate_object(
    value: Any, *, limits: Limits = Limits(), now: datetime | None = None
) -> Mention | Rejection:
    """Validate an already-parsed JSON value (the HTTP endpoint parses a whole batch at once)."""
    if not isinstance(value, dict):
        return Rejection("bad_type:mention", f"expected a JSON object, got {_json_type(value)}")
    depth = nesting_depth(value)
    if depth > MAX_DEPTH:
        return Rejection("too_deep", f"nested {depth} levels deep; the limit is {MAX_DEPTH}")
    if has_surrogate(value):  # before the model: it calls one in `text` a bad_value:text
        return Rejection("not_utf8", "a string holds a lone surrogate, which is not UTF-8")
    if has_overflow(value):  # unknown fields are passed on: as null, it would not be untouched
        return Rejection("invalid_json", "a number is beyond the range of a double (e.g. 1e400)")
    try:
        mention = Mention.model_validate(value)
    except ValidationError as exc:
        return rejection_from(exc)
    except RecursionError:
        return Rejection("invalid_json", "the JSON is nested too deeply")
    now = now or datetime.now(UTC)
    if mention.created_at < MIN_EVENT_TIME:
        return Rejection(
            "timestamp_out_of_range",
            f"created_at {mention.created_at.isoformat()} is before {MIN_EVENT_TIME.date()}",
        )
    skew = (mention.created_at - now).total_seconds()
    if skew > limits.max_future_skew_s:
        return Rejection(
            "timestamp_out_of_range",
            f"created_at is {skew:.0f} s in the future (allowed: {limits.max_future_skew_s:.0f} s)",
        )
    return mention


def _scalars(value: Any) -> Iterator[Any]:
    """Every key and every value that is not an array or object in a parsed JSON value, walked
    without recursion (input may be hostile)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def has_overflow(value: Any) -> bool:
    """Whether a parsed JSON value holds a number that became an infinity (``1e400``): valid
    JSON text, but it cannot be written back as JSON."""
    return any(isinstance(item, float) and not math.isfinite(item) for item in _scalars(value))


def has_surrogate(value: Any) -> bool:
    """Whether a string (a value or a key) in a parsed JSON value cannot be encoded as UTF-8."""
    return any(isinstance(item, str) and _SURROGATE.search(item) for item in _scalars(value))


def nesting_depth(value: Any) -> int:
    """Depth of nested arrays/objects, computed without recursion (input may be hostile)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a mention (docs/mention.schema.json is generated from it)."""
    schema = Mention.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    props = schema["properties"]
    created = props["created_at"]
    for key in ("type", "format"):
        created.pop(key, None)  # the anyOf above says it: text or epoch number
    # Numeric ids are accepted and kept as text.
    props["id"] = {
        "anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}],
        "description": props["id"]["description"],
    }
    for where, name in ((props, "in_reply_to"), (schema["$defs"]["Author"]["properties"], "id")):
        where[name]["anyOf"].insert(1, {"type": "integer"})
    return schema
