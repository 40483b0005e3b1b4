"""Bounded counters: term counts and top-k lists whose memory does not grow with traffic."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any


class BoundedCounter:
    """Counts of keys, kept to at most ``2 * capacity`` entries (a "lossy counting" variant).

    When the table reaches twice its capacity it is cut back to the ``capacity`` largest counts
    (ties broken by key, so the result does not depend on dict order). Frequent keys survive;
    a rare key may be forgotten and counted afresh, which only ever under-counts it. Counts can
    decay, so an always-on counter reflects recent weeks rather than all time.
    """

    __slots__ = ("capacity", "counts", "total")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[str, float] = {}
        self.total = 0.0

    def add_all(self, keys: Iterable[str], weight: float = 1.0) -> None:
        counts = self.counts
        get = counts.get
        n = 0
        for key in keys:
            counts[key] = get(key, 0.0) + weight
            n += 1
        self.total += n * weight
        if len(counts) >= 2 * self.capacity:
            self.prune()

    def prune(self) -> None:
        keep = heapq.nlargest(self.capacity, self.counts.items(), key=lambda kv: (kv[1], kv[0]))
        self.counts = dict(keep)

    def decay(self, factor: float, floor: float = 0.05) -> None:
        """Multiply every count by ``factor``, forgetting keys that fall below ``floor``."""
        self.counts = {k: v * factor for k, v in self.counts.items() if v * factor >= floor}
        self.total *= factor

    def get(self, key: str) -> float:
        return self.counts.get(key, 0.0)

    def most_common(self, n: int) -> list[tuple[str, float]]:
        return heapq.nlargest(n, self.counts.items(), key=lambda kv: (kv[1], kv[0]))

    def copy(self) -> BoundedCounter:
        other = BoundedCounter(self.capacity)
        other.counts = dict(self.counts)
        other.total = self.total
        return other

    def to_state(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "total": self.total}

    @classmethod
    def from_state(cls, capacity: int, state: dict[str, Any]) -> BoundedCounter:
        counter = cls(capacity)
        counter.counts = {str(k): float(v) for k, v in state["counts"].items()}
        counter.total = float(state["total"])
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
