"""Which brand(s) a valid mention goes to, and the record passed downstream for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.brand_matching import BrandMatcher
from streams.mention import Mention, Rejection


@dataclass(frozen=True)
class Routed:
    """A valid mention and the ids of the brands it concerns (empty: it names none)."""

    mention: Mention
    brands: tuple[str, ...]
    matched_by: str  # "given" (the collector named the brand) or "text"

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(brand id, record) for each brand: a mention naming two brands goes to both."""
        base = self.mention.to_record()
        out = []
        for brand_id in self.brands:
            record = dict(base)
            record["brand"] = brand_id
            record["brands"] = list(self.brands)
            record["matched_by"] = self.matched_by
            out.append((brand_id, record))
        return out


def route(mention: Mention, matcher: BrandMatcher) -> Routed | Rejection:
    if mention.brand is not None:
        brand_id = matcher.resolve(mention.brand)
        if brand_id is None:
            shown = mention.brand if len(mention.brand) <= 60 else mention.brand[:57] + "..."
            return Rejection(
                "unknown_brand", f"brand {shown!r} is not in the brands file (id, name or alias)"
            )
        return Routed(mention, (brand_id,), "given")
    return Routed(mention, tuple(matcher.match(mention.text)), "text")
