"""ISO 8601 times read strictly enough not to be misread.

Python 3.11's ``datetime.fromisoformat`` takes any single character between the date and the
time: ``2015-02-22+01:00`` is read as 01:00 on the 22nd with no offset (the ``+`` taken as the
separator), and ``2015-02-22Z`` (with ``Z`` written as ``+00:00``) the same way, silently hours
off what was meant. Here a date followed only by an offset is midnight at that offset, and a
date and time must be separated by ``T`` or a space.

A leap second (second 60, which RFC 3339 allows: ``2016-12-31T23:59:60Z``) is read as the last
instant of its minute, ``23:59:59.999999``, whose epoch milliseconds (``int(ts * 1000)``, as
``Mention.event_ms`` computes them) end in ``.999``: Python's datetime has no second 60, and the
time was refused as "not an ISO 8601 time". Second 61 is still refused.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")
_OFFSET = re.compile(r"[Zz]|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?")
#: Second 60 of a date-time (with any fraction), as the time after the date's separator.
_LEAP_SECOND = re.compile(
    r"(?P<head>(?:\d{4}-\d{2}-\d{2}|\d{8})[Tt ]\d{2}(?::\d{2}:|\d{2}))60(?:[.,]\d+)?"
    r"(?P<tail>(?:[+-].*)?)"
)
#: The microsecond a leap second is read at: the minute's last (see the module's docstring).
LEAP_MICROSECOND = 999_999
#: ``%S`` in a strptime format, not ``%%S`` (a literal ``%`` followed by ``S``).
_SECONDS_DIRECTIVE = re.compile(r"(?<!%)((?:%%)*)%S")


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
    leap = _LEAP_SECOND.fullmatch(stripped)
    if leap is not None:
        moment = datetime.fromisoformat(f"{leap['head']}59{leap['tail']}")
        return moment.replace(microsecond=LEAP_MICROSECOND)
    return datetime.fromisoformat(stripped)


def strptime(text: str, fmt: str) -> datetime:
    """``datetime.strptime(text, fmt)``, except that second 60 (a leap second, which ``%S``
    matches but a datetime cannot hold: "second must be in 0..59") is read as the last instant of
    its minute, as :func:`parse_iso` reads it. Second 61 is refused (ValueError)."""
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        try:
            second = time.strptime(text, fmt).tm_sec
        except ValueError:
            second = None
        if second != 60:
            raise
    # Read again with the seconds as the literal 60 they are: the rest (%f, %z) as before.
    literal, count = _SECONDS_DIRECTIVE.subn(r"\g<1>60", fmt)
    if count != 1:
        raise ValueError(f"{text!r}: second 60 is read only with one %S in the format")
    return datetime.strptime(text, literal).replace(second=59, microsecond=LEAP_MICROSECOND)
