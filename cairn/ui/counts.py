"""Entry counts per namespace for the tree and namespace pages, cached for a few seconds.

Counting the live entries of 100k keys is a scan (hundreds of milliseconds on SQLite), while
the same pages are opened again and again. Counts are reused for ``ttl`` seconds, so they may
trail the memory by that much (the entries listed below them never do); the inspector's own
``fork`` and ``forget`` clear them at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from memory import MemoryStore
from memory.namespace import Namespace

Counts = list[tuple[Namespace, int]]


class NamespaceCounts:
    """`MemoryStore.namespaces`, cached per prefix for ``ttl`` seconds."""

    def __init__(self, store: MemoryStore, *, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cache: dict[tuple[Namespace, int], tuple[float, Counts]] = {}

    def clear(self) -> None:
        """Forget every cached count."""
        self._cache.clear()

    async def get(self, prefix: Sequence[str] = (), *, limit: int) -> Counts:
        """The namespaces at or under ``prefix`` holding live entries, with counts."""
        key = (tuple(prefix), limit)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        counts = await self.store.namespaces(prefix, limit=limit)
        self._cache[key] = (time.monotonic(), counts)
        return counts
