"""Words a brand's statement must never carry: profanity, and the brand's own names in any form.

Shared by the issue naming (``issue_naming``), which drops a driver phrase with such a word,
and by the lint (``statement_lint``), which fails a draft that carries profanity: one list, so
a word the lint would refuse cannot become the issue of a draft.

Profanity is matched by prefix where the Nordic languages build swear-word compounds
("dritdårlig", "skitdålig", "lortedårlig", "helvetesapp", "pissdårlig"), with the ordinary
words that share a prefix left alone ("fanfare", "fantastisk", "fanns", "skitur", "skitrekk",
"Helvetica", "fitted").

Names are compared folded, as the brand matcher (``streams.brand_matching.fold``) compares them:
composed (NFC), case-folded, accents removed (ø and ö as o, ä as æ), typographic apostrophes as
``'``, and the ASCII spellings "aa", "oe" and "ae" of å, ø/ö and æ/ä read as those letters; a
name followed by a possessive or genitive ending ("McDonald's", "Telenors", "SAS:s") is the name.
"""

from __future__ import annotations

import re
import unicodedata

#: Letter folding shared with the brand matcher (``streams.brand_matching`` imports it: the
#: pure detector core does not import the stream code, so it lives here).
FOLD_TABLE = str.maketrans(
    {
        "ä": "æ",
        "ø": "o",
        "œ": "oe",
        "ß": "ss",
        "đ": "d",
        "ł": "l",
        "þ": "th",
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
    }
)
#: ASCII spellings the brand matcher accepts for å, ø/ö and æ/ä ("Fjellbroed", "Blaabaer").
_ASCII_SPELLINGS = (("aa", "a"), ("oe", "o"), ("ae", "æ"))
#: Possessive and genitive endings after a name: "McDonald's", "Norwegian\u2019s", "Telenors",
#: "SAS:s", "Mercedes'".
GENITIVE_ENDINGS = ("'s", ":s", "s", "'")


def fold(text: str) -> str:
    """Case- and accent-insensitive form used on both sides of a brand match, and to keep the
    brand's names out of its statements (ä is written æ)."""
    lowered = unicodedata.normalize("NFC", text.casefold()).translate(FOLD_TABLE)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_key(word: str) -> str:
    """The form a name and a word are compared in: :func:`fold`, with the ASCII spellings of
    the Nordic letters read as the letters (so "fjellbroed", "fjellbrod" and "Fjellbrød" meet)."""
    key = fold(word)
    for ascii_spelling, letter in _ASCII_SPELLINGS:
        key = key.replace(ascii_spelling, letter)
    return key


def name_keys(names: list[str | None]) -> set[str]:
    """The compared forms of every word of ``names`` (a brand's name, id, aliases, handles,
    hashtags, authors' names): "McDonald's" gives "mcdonald's", "mcdonalds" and "mcdonald"."""
    keys: set[str] = set()
    for name in names:
        if not name:
            continue
        for token in re.split(r"[^\w']+", fold(name)):
            token = token.strip("'")
            if not token:
                continue
            keys.add(name_key(token))
            if "'" in token:
                keys.add(name_key(token.replace("'", "")))
                keys.update(name_key(part) for part in token.split("'") if part)
    return keys


def is_name(word: str, keys: set[str]) -> bool:
    """True if ``word`` is one of the names ``keys`` (see :func:`name_keys`) or a name with a
    possessive or genitive ending, or a hyphenated compound with one ("telenor-appen")."""
    parts = [word, *word.split("-")] if "-" in word else [word]
    for part in parts:
        key = name_key(part)
        if key in keys:
            return True
        for ending in GENITIVE_ENDINGS:
            if len(key) > len(ending) and key.endswith(ending) and key[: -len(ending)] in keys:
                return True
    return False


# Swear words and the prefixes of their compounds, in English and the Nordic languages.
# A prefix is followed by \w* only where no ordinary word starts with it.
_PROFANE = (
    # English
    r"fuck\w*",
    r"shit\w*",
    r"bitch\w*",
    r"crap(?:s|py|ped)?",
    r"damn(?:ed|it)?",
    r"dammit",
    r"bastards?",
    r"assholes?",
    r"idiot(?:s|er|ene|en|ar|arna|erna|ic|isk\w*)?",  # not "idiotsikker"
    r"stupid\w*",
    r"morons?",
    r"moronic",
    r"wtf",
    # Norwegian, Swedish, Danish: devil and hell
    r"fa(?:en(?:s|skap\w*)?|nden\w*|ndme|nimej|nken|nskap\w*)",
    r"j(?:æ|ä|a|ae)vl\w*",
    r"helvet(?!i)\w*",  # not "Helvetica", "helvetisk"
    r"helved\w*",
    r"satan\w*",
    # shit, piss
    r"drit\w*",
    r"lort\w*",
    # "skit", its inflections and compounds ("skitdålig", "skitbra", "skittråkig"); not the
    # compounds of "ski" with a word in t ("skitur", "skitrekk", "skitøy", "skitalent").
    r"skit(?:a|ar|en|er|et|it|s|ig\w*|tr\w*|[bcdfghjklmnpqsvwxz]\w*)?",
    r"skide(?:dårlig|godt?|skøn|sjov|træls)\w*",
    r"piss\w*",
    r"pis(?:se\w*)?",
    # genitals, insults
    r"kuk\w*",
    r"fitt(?:a|an|e|en|ene|es|or|orna)",
    r"fitte(?![dr]|st)\w+",  # "fittetryne", not "fitted", "fitter", "fittest"
    r"hor(?:e|a|er|or|ene|orna)",
    r"horunge\w*",
    r"kraftidiot\w*",
    r"kraftedeme",
    r"røvhul\w*",
)
#: Profanity anywhere in a text, by the patterns above (text composed to NFC first: see
#: :func:`has_profanity`).
PROFANITY = re.compile(r"(?<!\w)(?:" + "|".join(_PROFANE) + r")(?!\w)", re.IGNORECASE)
#: Words the issue naming also refuses: not profanity in a statement the brand writes itself,
#: but never the crowd's words to repeat (insults, accusations, chat shorthand).
# fmt: off
RUDE_WORDS = frozenset([
    "ass", "suck", "sucks", "sucked", "omg", "lol", "scam", "scams", "scammers", "thieves",
    "liars", "hell", "fan", "dust", "dumme", "dumma", "svin", "røv", "skitt",
])
# fmt: on


def has_profanity(text: str) -> bool:
    """True if ``text`` carries profanity (composed first, so a decomposed "jävla" counts)."""
    return PROFANITY.search(unicodedata.normalize("NFC", text)) is not None


def is_rude(word: str) -> bool:
    """True if the single ``word`` is profanity or one of :data:`RUDE_WORDS`."""
    composed = unicodedata.normalize("NFC", word).lower()
    return composed in RUDE_WORDS or has_profanity(composed)
