"""Naming the issue of a storm in plain words taken from its drivers ("cancelled flights").

A statement may repeat what many people write about, never what one person wrote: the words come
from the episode's driver terms (counted over many posts), and only plain lower-case words pass:
no handles, hashtags, links, numbers or number words, function words, the brand's own names
(in any spelling the brand matcher accepts, and with a genitive ending), author names or
profanity, and only phrases clearly over-represented in the storm (z of at least the drivers'
``SIGNIFICANT_Z``). Anything else falls back to a neutral phrase ("the problems you are
experiencing").
"""

from __future__ import annotations

import re
from typing import Any

from detectors.alerting.voice import BrandVoice
from detectors.alerting.wording import is_name, is_rude, name_keys
from detectors.drivers import SIGNIFICANT_Z
from detectors.stopwords import STOP_WORDS

#: A plain word: letters (any script), optionally joined by one hyphen or apostrophe.
_PLAIN_WORD = re.compile(r"^[^\W\d_]{2,24}(?:[-'][^\W\d_]{1,24})?$", re.UNICODE)
MIN_SCORE = SIGNIFICANT_Z
"""Driver phrases below this log-odds z are not clearly over-represented in the storm (the
drivers' own threshold of significance): they do not name it. Below it come phrases such as
"two times" or "come back" that any busy hour has."""

GENERIC_ISSUE = {
    "en": "the problems you are experiencing",
    "nb": "problemene dere opplever",
    "nn": "problema de opplever",
    "sv": "problemen ni upplever",
    "da": "de problemer, I oplever",
}

# Number words: "two times", "tre ganger" count, they do not name what is wrong.
_NUMBERS_EN = (
    "one two three four five six seven eight nine ten eleven twelve twenty thirty hundred "
    "thousand million millions billion once twice thrice dozen first second third fourth"
)
_NUMBERS_SV = (
    "en ett två tre fyra fem sex sju åtta nio tio elva tolv tjugo trettio hundra tusen "
    "miljon miljoner miljard första andra tredje fjärde gång gånger"
)
_NUMBERS_DA = (
    "en et to tre fire fem seks syv otte ni ti elleve tolv tyve tredive hundrede tusind "
    "million millioner milliard første anden tredje fjerde gang gange"
)
_NUMBERS_NB = (
    "en ei et ett ein eitt to tre fire fem seks sju syv åtte ni ti elleve tolv tjue tretti hundre "
    "tusen million millioner milliard første andre tredje fjerde gang ganger gonger"
)
NUMBER_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_NUMBERS_EN.split()),
    "nb": frozenset(_NUMBERS_NB.split()),
    "nn": frozenset(_NUMBERS_NB.split()),
    "sv": frozenset(_NUMBERS_SV.split()),
    "da": frozenset(_NUMBERS_DA.split()),
}
#: The Nordic languages' function words together: a post's language is often told apart from
#: its neighbours' wrongly ("helt enkelt" read as Swedish has the Danish "helt").
_NORDIC_STOPS = STOP_WORDS["nb"] | STOP_WORDS["nn"] | STOP_WORDS["sv"] | STOP_WORDS["da"]
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": STOP_WORDS["en"] | NUMBER_WORDS["en"],
    **{lang: _NORDIC_STOPS | NUMBER_WORDS[lang] for lang in ("nb", "nn", "sv", "da")},
}


def _blocked_words(voice: BrandVoice, drivers: dict[str, Any]) -> set[str]:
    """The brand's own names and the names of people seen in the evidence, as compared forms
    (see :func:`detectors.alerting.wording.name_keys`)."""
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
    return name_keys(names)


def plain_phrase(term: str, blocked: set[str], lang: str | None = None) -> str | None:
    """``term`` if every word in it is a plain, printable, non-offensive word; else ``None``.

    ``blocked`` are compared forms of names (see :func:`_blocked_words`): a word that is one of
    them, in any case, spelling or accent, or one of them with a possessive or genitive ending
    ("mcdonald's", "telenors"), is refused. With ``lang``, a phrase with a function word or a
    number word of that language is refused too ("två gånger", "helt enkelt")."""
    words = term.split(" ")
    if not 1 <= len(words) <= 3:
        return None
    function_words = _FUNCTION_WORDS.get(lang, frozenset()) if lang else frozenset()
    for word in words:
        if not _PLAIN_WORD.match(word) or is_rude(word) or is_name(word, blocked):
            return None
        if word.lower() in function_words:
            return None
    return " ".join(words)


def name_issue(drivers: dict[str, Any], lang: str, voice: BrandVoice) -> str | None:
    """The plain words naming the issue in language ``lang``, or ``None`` when none qualify.

    Only the two-word driver phrases ("delayed refunds", "customer service") can name it: a
    single word ("hold", "time") reads as nonsense in a sentence as often as not, and a neutral
    phrase is better than a wrong one. So is a phrase that is not clearly the storm's (z under
    :data:`MIN_SCORE`: "komma tillbaka" in a busy hour), or one with a function or number word
    ("två gånger", "helt enkelt").
    """
    blocked = _blocked_words(voice, drivers)
    for entry in drivers.get("phrases", []):
        if entry.get("lang") != lang or float(entry.get("score", 0.0)) < MIN_SCORE:
            continue
        phrase = plain_phrase(str(entry.get("term", "")), blocked, lang)
        if phrase is not None:
            return phrase
    return None


def issue_in(drivers: dict[str, Any], lang: str, voice: BrandVoice) -> tuple[str, bool]:
    """(phrase, named): the named issue, or the language's neutral phrase with ``False``."""
    named = name_issue(drivers, lang, voice)
    if named is None:
        return GENERIC_ISSUE[lang], False
    return named, True
