"""Naming the issue of a storm in plain words taken from its drivers ("cancelled flights").

A statement may repeat what many people write about, never what one person wrote: the words come
from the episode's driver terms (counted over many posts), and only plain lower-case words pass:
no handles, hashtags, links, numbers, the brand's own names, author names or profanity. Anything
else falls back to a neutral phrase ("the problems you are experiencing").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from detectors.alerting.voice import BrandVoice

#: A plain word: letters (any script), optionally joined by one hyphen or apostrophe.
_PLAIN_WORD = re.compile(r"^[^\W\d_]{2,24}(?:[-'][^\W\d_]{1,24})?$", re.UNICODE)
MIN_SCORE = 0.0
"""Driver phrases at or below this log-odds z are not over-represented: they do not name it."""

GENERIC_ISSUE = {
    "en": "the problems you are experiencing",
    "nb": "problemene dere opplever",
    "nn": "problema de opplever",
    "sv": "problemen ni upplever",
    "da": "de problemer, I oplever",
}

# Words that must never be echoed into a brand's statement, whatever the crowd writes.
# fmt: off
_PROFANITY = frozenset([
    "fuck", "fucking", "fucked", "fucks", "shit", "shitty", "crap", "crappy", "damn", "dammit",
    "bitch", "bastard", "ass", "asshole", "idiot", "idiots", "stupid", "morons", "moron", "suck",
    "sucks", "sucked", "wtf", "omg", "lol", "scam", "scammers", "thieves", "liars", "hell", "faen",
    "fanden", "fan", "jævla", "jævlig", "helvete", "dritt", "drit", "kuk", "fitte", "hore",
    "idiot", "idioter", "dust", "dumme", "jävla", "jävlar", "fan", "helvete", "skit", "skitig",
    "kuk", "fitta", "hora", "idioter", "dumma", "fandme", "lort", "lorte", "pis", "røv",
    "kraftedeme", "satan", "svin",
])
# fmt: on


def _tokens(values: Iterable[str | None]) -> set[str]:
    out: set[str] = set()
    for value in values:
        if value:
            out.update(t for t in re.split(r"[^\w]+", value.lower().lstrip("@#")) if t)
    return out


def _blocked_words(voice: BrandVoice, drivers: dict[str, Any]) -> set[str]:
    """The brand's own names and the names of people seen in the evidence."""
    names: list[str | None] = [voice.name, voice.brand_id, *voice.aliases]
    for post in list(drivers.get("top_posts_by_reach", [])) + list(
        drivers.get("top_posts_by_engagement", [])
    ):
        author = post.get("author")
        names.append(author if isinstance(author, str) else None)
    for author in drivers.get("top_authors", []):
        for key in ("author", "handle", "name", "id"):
            value = author.get(key) if isinstance(author, dict) else None
            names.append(value if isinstance(value, str) else None)
    return _tokens(names)


def plain_phrase(term: str, blocked: set[str]) -> str | None:
    """``term`` if every word in it is a plain, printable, non-offensive word; else ``None``."""
    words = term.split(" ")
    if not 1 <= len(words) <= 3:
        return None
    for word in words:
        if not _PLAIN_WORD.match(word) or word in _PROFANITY or word in blocked:
            return None
    return " ".join(words)


def name_issue(drivers: dict[str, Any], lang: str, voice: BrandVoice) -> str | None:
    """The plain words naming the issue in language ``lang``, or ``None`` when none qualify.

    Only the two-word driver phrases ("delayed refunds", "customer service") can name it: a
    single word ("hold", "time") reads as nonsense in a sentence as often as not, and a neutral
    phrase is better than a wrong one.
    """
    blocked = _blocked_words(voice, drivers)
    for entry in drivers.get("phrases", []):
        if entry.get("lang") != lang or float(entry.get("score", 0.0)) <= MIN_SCORE:
            continue
        phrase = plain_phrase(str(entry.get("term", "")), blocked)
        if phrase is not None:
            return phrase
    return None


def issue_in(drivers: dict[str, Any], lang: str, voice: BrandVoice) -> tuple[str, bool]:
    """(phrase, named): the named issue, or the language's neutral phrase with ``False``."""
    named = name_issue(drivers, lang, voice)
    if named is None:
        return GENERIC_ISSUE[lang], False
    return named, True
