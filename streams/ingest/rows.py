"""One input record as read, before it is mapped to a mention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.mention import Rejection

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Row:
    """One input record before mapping: its fields, or why it could not even be read."""

    line: int
    raw: str
    fields: dict[str, Any] | None = None
    rejection: Rejection | None = None
    raw_bytes: bytes | None = None  # only when the bytes are not UTF-8
    from_text: bool = False  # CSV: every value is text
