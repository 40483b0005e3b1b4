"""Which configured brands a mention is about, from its text.

Aliases, @handles and #hashtags from the brands file are matched as whole words, ignoring case and
accents (å -> a, ø/ö -> o), in Norwegian, Swedish, Danish and English text. æ and ä are one letter
(Danish/Norwegian and Swedish spellings of it): each matches the other and the plain-ASCII
spelling "ae" ("Blåbær" matches "Blåbär" and "Blabaer"). A name spelt with ä also matches a plain
"a", as accents are ignored ("Tänk" matches "Tank"); one spelt with æ does not, since "Tænk" is not
the English "tank". In a word of four letters or more, ø/ö also matches the ASCII spelling "oe"
and å "aa" ("Fjellbroed", "#blaabaer", "Kiwi Koebmand"); not in shorter words, where they make
English words ("Tø" is not "toe"). Typographic apostrophes (U+2019, U+2018) are read as '. A
hashtag or handle that is exactly a brand's name or alias, spaces removed, names the brand
("#Telenor", "@nordlysenergi"); text inside a longer one does not.

A genitive ending is allowed after a name ("Telenors", "SAS:s", "Nordea's"), because Scandinavian
languages inflect names that way. After a name written all in capitals in the brands file (SAS,
DNB, H&M) a bare "s" is allowed only where the text writes the name in capitals and the "s" in
lower case ("DNBs nettbank", "H&Ms klær": the Norwegian, Swedish and Danish genitive of an
abbreviation), so "Sass", "sass" and "SASS" do not name SAS.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from detectors.alerting.wording import FOLD_TABLE, fold
from streams.brands import Brand, BrandsFile

_GENITIVE = r"(?:'s|:s|s|')?"
_GENITIVE_CAPS = r"(?:'s|:s|')?"  # after SAS or IBM a bare "s" makes another word ("Sass")


def lookup_form(name: str) -> str:
    """What :meth:`BrandMatcher.resolve` looks a brand's id, name or alias up by: :func:`fold`,
    with runs of spaces as one (the brands file refuses two brands sharing one)."""
    return _spaced(fold(name))


def _fold_with_origins(text: str) -> tuple[str, list[int]]:
    """:func:`fold` of ``text``, and for each folded character the index in ``text`` of the
    character it came from: folding changes lengths ("ß" -> "ss", "a" + U+0308 -> "æ")."""
    folded: list[str] = []
    origins: list[int] = []
    start = 0
    for end in range(1, len(text) + 1):
        if end < len(text) and unicodedata.combining(text[end]):
            continue  # a letter and its combining marks fold together
        piece = fold(text[start:end])
        folded.append(piece)
        origins.extend([start] * len(piece))
        start = end
    return "".join(folded), origins


def _spaced(folded: str) -> str:
    return " ".join(folded.split())


# Stand-ins, in a folded name, for the letters folded from ø/ö and from å (see _marked).
_O_MARK, _A_MARK = "\x01", "\x02"
_MARK = str.maketrans({"ø": _O_MARK, "ö": _O_MARK, "å": _A_MARK})
_UNMARK = str.maketrans({_O_MARK: "o", _A_MARK: "a"})


def _marked(spelling: str) -> str:
    """:func:`fold` of a name from the brands file, with the letters folded from ø/ö and å
    marked, so that a pattern can also take their ASCII spellings "oe" and "aa"."""
    casefolded = unicodedata.normalize("NFC", spelling.casefold())
    lowered = casefolded.translate(_MARK).translate(FOLD_TABLE)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _merge_marks(old: str | None, new: str) -> str:
    """One marked form of a term from two spellings that fold alike ("Fjellbrød", "Fjellbrod"):
    a letter is marked when either spelling marks it."""
    if old is None:
        return new
    return "".join(a if a in (_O_MARK, _A_MARK) else b for a, b in zip(old, new, strict=True))


def _ae(plain_a: bool) -> dict[str, str]:
    """Patterns for the folded letter æ (æ or ä) and for a plain "ae"; with ``plain_a`` (a name
    spelt with ä, whose accent is ignored like å's) a plain "a" matches the letter too."""
    return {"æ": "(?:æ|ae?)" if plain_a else "(?:æ|ae)", "ae": "(?:ae|æ)"}


def _word_pattern(word: str, plain_a: bool) -> str:
    letters = _ae(plain_a)
    long_word = sum(ch.isalpha() or ch in (_O_MARK, _A_MARK) for ch in word) >= 4
    letters[_O_MARK] = "(?:o|oe)" if long_word else "o"
    letters[_A_MARK] = "(?:a|aa)" if long_word else "a"
    parts = re.split(f"(æ|ae|{_O_MARK}|{_A_MARK})", word)
    return "".join(letters.get(part) or re.escape(part) for part in parts)


def _term_pattern(term: str, plain_a: bool = False) -> str:
    """The pattern of a folded term, its ø/ö and å marked (see :func:`_marked`)."""
    return r"\s+".join(_word_pattern(word, plain_a) for word in term.split())


def _with_a_umlaut(spelling: str) -> bool:
    return "ä" in unicodedata.normalize("NFC", spelling.casefold())


def _group(hit: re.Match[str]) -> int:
    """Index of the term a hit matched: each term is the only capturing group of its branch."""
    return (hit.lastindex or 1) - 1


class BrandMatcher:
    """Compiled once per brands file; :meth:`match` is called for every mention."""

    def __init__(self, brands: Iterable[Brand]) -> None:
        self._brands = {brand.id: brand for brand in brands}
        self._by_term: dict[str, set[str]] = {}
        capitals: dict[str, bool] = {}  # every spelling of the term is written in capitals
        plain_a: dict[str, bool] = {}  # a spelling of the term has ä (see _ae)
        marks: dict[str, str] = {}  # the term with its ø/ö and å marked (see _marked)
        self._lookup: dict[str, str] = {}
        for brand in self._brands.values():
            for spelling, marked in _terms(brand):
                folded = marked.translate(_UNMARK)
                if folded:
                    self._by_term.setdefault(folded, set()).add(brand.id)
                    capitals[folded] = capitals.get(folded, True) and spelling.isupper()
                    plain_a[folded] = plain_a.get(folded, False) or _with_a_umlaut(spelling)
                    marks[folded] = _merge_marks(marks.get(folded), marked)
            for key in (brand.id, brand.name, *brand.aliases):
                marked = _spaced(_marked(key))
                folded_key = marked.translate(_UNMARK)
                self._lookup.setdefault(folded_key, brand.id)
                plain_a[folded_key] = plain_a.get(folded_key, False) or _with_a_umlaut(key)
                marks[folded_key] = _merge_marks(marks.get(folded_key), marked)
        self._terms = sorted(self._by_term, key=len, reverse=True)
        self._regex: re.Pattern[str] | None = None
        if self._terms:
            alternation = "|".join(
                f"({_term_pattern(marks[term], plain_a[term])})"
                + (_GENITIVE_CAPS if capitals[term] else _GENITIVE)
                for term in self._terms
            )
            # Not inside a word, handle or hashtag on the left; only a genitive on the right.
            self._regex = re.compile(rf"(?<![\w@#])(?:{alternation})(?!\w)")
        # Names in capitals with a bare "s" ("DNBs"), checked against the text's own case.
        self._caps_terms = [t for t in self._terms if capitals[t] and t[0] not in "@#"]
        self._caps_s: re.Pattern[str] | None = None
        if self._caps_terms:
            alternation = "|".join(
                f"({_term_pattern(marks[t], plain_a[t])})" for t in self._caps_terms
            )
            self._caps_s = re.compile(rf"(?<![\w@#])(?:{alternation})s(?!\w)")
        self._keys = list(self._lookup)
        self._loose: re.Pattern[str] | None = None
        if self._keys:
            self._loose = re.compile(
                "|".join(f"({_term_pattern(marks[key], plain_a[key])})" for key in self._keys)
            )

    @classmethod
    def from_file(cls, brands: BrandsFile) -> BrandMatcher:
        return cls(brands.brands)

    @property
    def brand_ids(self) -> tuple[str, ...]:
        return tuple(self._brands)

    def resolve(self, given: str) -> str | None:
        """The id of a brand named by a collector (its id, name or an alias), if configured."""
        folded = lookup_form(given)
        exact = self._lookup.get(folded)
        if exact is not None or self._loose is None:
            return exact
        hit = self._loose.fullmatch(folded)  # "Blåbär" or "Blabaer" for "Blåbær"
        return self._lookup[self._keys[_group(hit)]] if hit else None

    def match(self, text: str) -> list[str]:
        """Ids of every brand the text names, in configuration order."""
        if self._regex is None:
            return []
        found: set[str] = set()
        folded = fold(text)
        for hit in self._regex.finditer(folded):
            found |= self._by_term[self._terms[_group(hit)]]
        if self._caps_s is not None and self._caps_s.search(folded):
            found |= self._capitals_genitives(text)  # rare: maps back to the text's own case
        return [brand_id for brand_id in self._brands if brand_id in found]

    def _capitals_genitives(self, text: str) -> set[str]:
        """Brands named in capitals with a bare lower-case "s" ("DNBs", "H&Ms")."""
        assert self._caps_s is not None
        folded, origins = _fold_with_origins(text)
        found: set[str] = set()
        for hit in self._caps_s.finditer(folded):
            name = text[origins[hit.start()] : origins[hit.end() - 1]]
            if name.isupper() and text[origins[hit.end() - 1]] == "s":
                found |= self._by_term[self._caps_terms[_group(hit)]]
        return found


def _terms(brand: Brand) -> Iterable[tuple[str, str]]:
    """(spelling in the brands file, folded term with ø/ö and å marked) for everything that names
    the brand in a text: its name, aliases, handles and hashtags, and its name and aliases as a
    hashtag or handle."""
    for spelling in (brand.name, *brand.aliases, *brand.handles, *brand.hashtags):
        yield spelling, _spaced(_marked(spelling))
    for spelling in (brand.name, *brand.aliases):
        compact = "".join(_marked(spelling).split())
        if compact:
            yield spelling, f"#{compact}"
            yield spelling, f"@{compact}"
