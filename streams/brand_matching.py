"""Which configured brands a mention is about, from its text.

Aliases, @handles and #hashtags from the brands file are matched as whole words, ignoring case and
accents (å/ä -> a, ø/ö -> o, æ -> ae), in Norwegian, Swedish, Danish and English text. A genitive
ending is allowed after a name ("Telenors", "SAS:s", "Nordea's"), because Scandinavian languages
inflect names that way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from streams.brands import Brand, BrandsFile

_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ł": "l", "þ": "th"})
_GENITIVE = r"(?:'s|\u2019s|:s|s|')?"  # re reads \u2019, the typographic apostrophe


def fold(text: str) -> str:
    """Case- and accent-insensitive form used on both sides of a match."""
    lowered = text.casefold().translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _term_pattern(term: str) -> str:
    words = fold(term).split()
    return r"\s+".join(re.escape(word) for word in words)


class BrandMatcher:
    """Compiled once per brands file; :meth:`match` is called for every mention."""

    def __init__(self, brands: Iterable[Brand]) -> None:
        self._brands = {brand.id: brand for brand in brands}
        self._by_term: dict[str, set[str]] = {}
        self._lookup: dict[str, str] = {}
        for brand in self._brands.values():
            for term in (brand.name, *brand.aliases, *brand.handles, *brand.hashtags):
                folded = " ".join(fold(term).split())
                if folded:
                    self._by_term.setdefault(folded, set()).add(brand.id)
            for key in (brand.id, brand.name, *brand.aliases):
                self._lookup.setdefault(" ".join(fold(key).split()), brand.id)
        terms = sorted(self._by_term, key=len, reverse=True)
        if terms:
            alternation = "|".join(_term_pattern(term) for term in terms)
            # Not inside a word, handle or hashtag on the left; only a genitive on the right.
            self._regex: re.Pattern[str] | None = re.compile(
                rf"(?<![\w@#])({alternation}){_GENITIVE}(?![\w])"
            )
        else:
            self._regex = None

    @classmethod
    def from_file(cls, brands: BrandsFile) -> BrandMatcher:
        return cls(brands.brands)

    @property
    def brand_ids(self) -> tuple[str, ...]:
        return tuple(self._brands)

    def resolve(self, given: str) -> str | None:
        """The id of a brand named by a collector (its id, name or an alias), if configured."""
        return self._lookup.get(" ".join(fold(given).split()))

    def match(self, text: str) -> list[str]:
        """Ids of every brand the text names, in configuration order."""
        if self._regex is None:
            return []
        found: set[str] = set()
        for hit in self._regex.finditer(fold(text)):
            found |= self._by_term[" ".join(hit.group(1).split())]
        return [brand_id for brand_id in self._brands if brand_id in found]
