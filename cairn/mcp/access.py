"""Listing what a scoped handle may read under a prefix it may only partly read.

A server granted ``acme/user/u-7`` and ``acme/session/*`` asked for the namespaces under
``acme`` lists through the store and keeps what its grants allow, the way
`memory.context.search_readable` searches. A prefix that no grant reaches (another tenant, or
a branch of this one outside every pattern) is refused before anything is read.
"""

from __future__ import annotations

from cairn.cli.memory import list_entries
from memory import AccessDenied, Entry, ScopedStore
from memory.namespace import Namespace, check_namespace
from memory.policy import matches

SCAN = 5000
"""How many entries a listing reads at most to find those under a prefix."""


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
