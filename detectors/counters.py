"""Bounded counters: term counts and top-k lists whose memory does not grow with traffic."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

#: What one entry of :meth:`BoundedCounter.to_state` may add to a saved state besides its key's
#: JSON string: ``": "``, a float's repr (at most 24 characters) and ``", "`` (the separators of
#: Python's ``json.dumps``, which Faust's codec uses).
ENTRY_OVERHEAD = 28


def entry_cost(key: str) -> int:
    """An upper bound on the bytes one counter entry takes in a saved state: its key as JSON with
    every non-ASCII character escaped (``\\u00e5``; the longest form any JSON encoder writes),
    plus the count."""
    return len(encode_basestring_ascii(key)) + ENTRY_OVERHEAD


class BoundedCounter:
    """Counts of keys, kept to at most ``2 * capacity`` entries (a "lossy counting" variant).

    When the table reaches twice its capacity it is cut back to the ``capacity`` largest counts
    (ties broken by key, so the result does not depend on dict order). Frequent keys survive;
    a rare key may be forgotten and counted afresh, which only ever under-counts it. Counts can
    decay, so an always-on counter reflects recent weeks rather than all time.

    ``cost`` is the sum of the entries' :func:`entry_cost`, kept as keys come and go, so a
    caller can bound the bytes a saved state takes as well as the keys (:meth:`shrink`).
    """

    __slots__ = ("capacity", "cost", "counts", "total")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[str, float] = {}
        self.total = 0.0
        self.cost = 0

    def add_all(self, keys: Iterable[str], weight: float = 1.0) -> None:
        counts = self.counts
        get = counts.get
        n = 0
        added = 0
        for key in keys:
            old = get(key)
            if old is None:
                counts[key] = weight
                added += entry_cost(key)
            else:
                counts[key] = old + weight
            n += 1
        self.total += n * weight
        self.cost += added
        if len(counts) >= 2 * self.capacity:
            self.prune()

    def prune(self) -> None:
        keep = heapq.nlargest(self.capacity, self.counts.items(), key=lambda kv: (kv[1], kv[0]))
        self.counts = dict(keep)
        self.cost = sum(entry_cost(k) for k in self.counts)

    def shrink(self, max_cost: int) -> None:
        """Keep the largest counts whose entries cost at most ``max_cost`` in all (what
        :meth:`prune` does for the number of keys, for their bytes; ties by key, so the result
        does not depend on dict order)."""
        kept: dict[str, float] = {}
        cost = 0
        for key, value in sorted(self.counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True):
            c = entry_cost(key)
            if cost + c > max_cost:
                break
            kept[key] = value
            cost += c
        self.counts = kept
        self.cost = cost

    def decay(self, factor: float, floor: float = 0.05) -> None:
        """Multiply every count by ``factor``, forgetting keys that fall below ``floor``."""
        self.counts = {k: v * factor for k, v in self.counts.items() if v * factor >= floor}
        self.total *= factor
        self.cost = sum(entry_cost(k) for k in self.counts)

    def get(self, key: str) -> float:
        return self.counts.get(key, 0.0)

    def most_common(self, n: int) -> list[tuple[str, float]]:
        return heapq.nlargest(n, self.counts.items(), key=lambda kv: (kv[1], kv[0]))

    def copy(self) -> BoundedCounter:
        other = BoundedCounter(self.capacity)
        other.counts = dict(self.counts)
        other.total = self.total
        other.cost = self.cost
        return other

    def to_state(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "total": self.total}

    @classmethod
    def from_state(cls, capacity: int, state: dict[str, Any]) -> BoundedCounter:
        counter = cls(capacity)
        counter.counts = {str(k): float(v) for k, v in state["counts"].items()}
        counter.total = float(state["total"])
        counter.cost = sum(entry_cost(k) for k in counter.counts)
        return counter


class TopK:
    """The ``k`` items with the largest rank seen, one per key (e.g. top posts, top authors)."""

    __slots__ = ("items", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        #: key -> (rank, payload); at most k entries.
        self.items: dict[str, tuple[float, dict[str, Any]]] = {}

    def offer(self, key: str, rank: float, payload: dict[str, Any]) -> None:
        current = self.items.get(key)
        if current is not None:
            if rank > current[0]:
                self.items[key] = (rank, payload)
            return
        if len(self.items) < self.k:
            self.items[key] = (rank, payload)
            return
        low_key = min(self.items, key=lambda k: (self.items[k][0], k))
        if (rank, key) > (self.items[low_key][0], low_key):
            del self.items[low_key]
            self.items[key] = (rank, payload)

    def floor(self) -> float:
        """Rank an item must beat to enter (``-inf`` while not full): a cheap pre-check."""
        if len(self.items) < self.k:
            return float("-inf")
        return min(rank for rank, _ in self.items.values())

    def ranked(self) -> list[dict[str, Any]]:
        ordered = sorted(self.items.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [payload for _, (_, payload) in ordered]

    def to_state(self) -> list[list[Any]]:
        return [[k, r, p] for k, (r, p) in sorted(self.items.items())]

    @classmethod
    def from_state(cls, k: int, state: list[list[Any]]) -> TopK:
        """Restore a list saved under any ``k``: one saved under a larger ``k`` (a retune to a
        smaller ``drivers.top_k``) keeps the ``k`` items :meth:`offer` would have kept."""
        top = cls(k)
        items = {str(key): (float(rank), dict(payload)) for key, rank, payload in state}
        if len(items) > k:
            keep = heapq.nlargest(k, items, key=lambda key: (items[key][0], key))
            items = {key: items[key] for key in sorted(keep)}
        top.items = items
        return top
