"""First checks on raw mention bytes. Pure functions: the agent decides where results go."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MENTION_BYTES = 64 * 1024
REQUIRED_FIELDS = ("id", "text", "created_at")


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: a machine-readable reason and a sentence for humans."""

    reason: str
    message: str


def decode_mention(raw: bytes | None) -> dict[str, Any] | Rejection:
    """Parse one record's value into a mention object, or say why it cannot be one."""
    if raw is None:
        return Rejection("empty", "the record has no value")
    if len(raw) > MAX_MENTION_BYTES:
        return Rejection(
            "too_large", f"the record is {len(raw)} bytes; the limit is {MAX_MENTION_BYTES}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"the value is not UTF-8 (byte {exc.start})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return Rejection("invalid_json", "the JSON is nested too deeply")
    if not isinstance(value, dict):
        return Rejection("bad_type:mention", f"expected a JSON object, got {type(value).__name__}")
    for name in REQUIRED_FIELDS:
        if value.get(name) in (None, ""):
            return Rejection(f"missing_field:{name}", f"the mention has no {name!r}")
    if not isinstance(value["text"], str):
        return Rejection("bad_type:text", "'text' must be a string")
    return value
