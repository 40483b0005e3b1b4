"""ISO 8601 times read strictly enough not to be misread.

Python 3.11's ``datetime.fromisoformat`` takes any single character between the date and the
time: ``2015-02-22+01:00`` is read as 01:00 on the 22nd with no offset (the ``+`` taken as the
separator), and ``2015-02-22Z`` (with ``Z`` written as ``+00:00``) the same way, silently hours
off what was meant. Here a date followed only by an offset is midnight at that offset, and a
date and time must be separated by ``T`` or a space.
"""

from __future__ import annotations

import re
from datetime import datetime

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")
_OFFSET = re.compile(r"[Zz]|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?")


def parse_iso(text: str) -> datetime:
    """``text`` (stripped) as a datetime, aware when it gives an offset (``Z`` for UTC);
    raises ValueError for anything else."""
    stripped = text.strip()
    date = _DATE.match(stripped)
    if date is not None:
        rest = stripped[date.end() :]
        if rest and _OFFSET.fullmatch(rest):
            stripped = f"{date.group()}T00:00{rest}"
        elif rest and rest[0] not in "Tt ":
            raise ValueError(f"{text.strip()!r}: a date and a time are separated by T or a space")
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1] + "+00:00"
    return datetime.fromisoformat(stripped)
