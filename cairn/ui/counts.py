"""Entry counts per namespace for the tree and namespace pages, cached between commits.

Counting the live entries of 100k keys is a scan (hundreds of milliseconds on SQLite), while
pages are opened far more often than the memory changes. A cached answer is reused until a
newer commit exists (one indexed read tells) or ``ttl`` seconds pass (expiry and ``forget``
change counts without a commit); the inspector's own ``forget`` and ``fork`` clear it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from memory import MemoryStore
from memory.namespace import Namespace

Counts = list[tuple[Namespace, int]]


class NamespaceCounts:
    """`MemoryStore.namespaces`, cached per prefix until the next commit."""

    def __init__(self, store: MemoryStore, *, ttl: float = 30.0) -> None:
        self.store = store
        self.ttl = ttl
        self._seen_seq = 0
        self._born = time.monotonic()
        self._cache: dict[tuple[Namespace, int], Counts] = {}

    def clear(self) -> None:
        """Forget every cached count."""
        self._cache.clear()
        self._born = time.monotonic()

    async def get(self, prefix: Sequence[str] = (), *, limit: int) -> Counts:
        """The namespaces at or under ``prefix`` holding live entries, with counts."""
        newer = await self.store.list_commits(after_seq=self._seen_seq, limit=1)
        if newer or time.monotonic() - self._born > self.ttl:
            self._seen_seq = newer[0].seq if newer else self._seen_seq
            self.clear()
        key = (tuple(prefix), limit)
        if key not in self._cache:
            self._cache[key] = await self.store.namespaces(prefix, limit=limit)
        return self._cache[key]
