"""Listing what a scoped handle may read under a prefix it may only partly read.

A server granted ``acme/user/u-7`` and ``acme/session/*`` asked for the namespaces under
``acme`` lists through the store and keeps what its grants allow, the way
`memory.context.search_readable` searches; namespaces are listed under each grant's literal
head (``acme/user/u-7``, ``acme/session``), not the whole prefix. A prefix that no grant
reaches (another tenant, or a branch of this one outside every pattern) is refused before
anything is read.
"""

from __future__ import annotations

from cairn.cli.memory import list_entries
from memory import AccessDenied, Entry, ScopedStore
from memory.namespace import Namespace, check_namespace, matches

SCAN = 5000
"""How many entries a listing reads at most to find those under a prefix."""
NAMESPACES_ASKED = 100_000
"""The most namespaces one listing asks the store for (`MemoryStore.namespaces`' own cap)."""


def reaches(memory: ScopedStore, prefix: Namespace) -> bool:
    """Whether some grant covers ``prefix`` or lies under it."""
    patterns = (*memory.grants.read, *memory.grants.write)
    return prefix[0] == memory.tenant and any(
        matches(tuple(p.strip("/").split("/"))[: len(prefix)], prefix) for p in patterns
    )


async def readable_entries(
    memory: ScopedStore, prefix: Namespace, *, scan: int = SCAN
) -> tuple[list[Entry], bool]:
    """Current readable entries under ``prefix`` and whether the scan stopped short.

    Raises:
        AccessDenied: No grant reaches ``prefix``.
    """
    prefix = check_namespace(prefix)
    if not reaches(memory, prefix):
        raise AccessDenied(memory.principal, prefix, "read")
    entries = await list_entries(memory.store, prefix, limit=scan)
    readable = [e for e in entries if memory.grants.allows("read", e.namespace)]
    return readable, len(entries) == scan


async def readable_namespaces(
    memory: ScopedStore, prefix: Namespace, *, limit: int
) -> list[tuple[Namespace, int]]:
    """The first ``limit`` readable namespaces at or under ``prefix`` holding entries, counted.

    Namespaces holding only streams are not among them (`MemoryStore.namespaces`).

    Raises:
        AccessDenied: No grant reaches ``prefix``.
    """
    prefix = check_namespace(prefix)
    if not reaches(memory, prefix):
        raise AccessDenied(memory.principal, prefix, "read")
    found: dict[Namespace, int] = {}
    for base in _bases(memory, prefix):
        found.update(await _readable_under(memory, base, limit))
    return sorted(found.items())[:limit]


def _bases(memory: ScopedStore, prefix: Namespace) -> list[Namespace]:
    """Where to list: each grant's literal head within ``prefix``, none under another."""
    bases: set[Namespace] = set()
    for pattern in (*memory.grants.read, *memory.grants.write):
        segments = tuple(pattern.strip("/").split("/"))
        head = segments[: segments.index("*")] if "*" in segments else segments
        if len(head) >= len(prefix) and head[: len(prefix)] == prefix:
            bases.add(head)
        elif len(head) < len(prefix) and matches(segments[: len(prefix)], prefix):
            bases.add(prefix)
    return [b for b in bases if not any(o != b and b[: len(o)] == o for o in bases)]


async def _readable_under(
    memory: ScopedStore, base: Namespace, limit: int
) -> list[tuple[Namespace, int]]:
    # A grant with a wildcard inside (acme/*/u-7) lists namespaces it may not read as well:
    # ask for more until ``limit`` readable ones are found or the store has no more.
    asked = limit
    while True:
        counts = await memory.store.namespaces(base, limit=asked)
        readable = [(n, k) for n, k in counts if memory.grants.allows("read", n)]
        if len(readable) >= limit or len(counts) < asked or asked >= NAMESPACES_ASKED:
            return readable[:limit]
        asked = min(asked * 4, NAMESPACES_ASKED)
