"""Whole-prefix reads over the memory store's paginated API, shared by the store and saver."""

from __future__ import annotations

from memory import Entry, MemoryStore
from memory.namespace import Namespace

_PAGE = 1000


async def entries_under(memory: MemoryStore, prefix: Namespace) -> list[Entry]:
    """Every live current entry at or under ``prefix``, in (namespace, key) order."""
    found: list[Entry] = []
    cursor: str | None = None
    while True:
        page = await memory.list(prefix, limit=_PAGE, cursor=cursor)
        found.extend(page.entries)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def namespaces_under(memory: MemoryStore, prefix: Namespace) -> list[Namespace]:
    """The namespaces at or under ``prefix`` that hold live entries, in order."""
    # MemoryStore.namespaces lists them in one query; older stores only page through entries.
    lister = getattr(memory, "namespaces", None)
    if lister is not None:
        return [ns for ns, _ in await lister(prefix, limit=100_000)]
    return sorted({e.namespace for e in await entries_under(memory, prefix)})
