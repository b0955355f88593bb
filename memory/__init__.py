"""Cairn's shared memory layer: versioned, exactly-once, searchable, usable on its own.

>>> store = await MemoryStore.open("sqlite:///memory.db")
>>> async with store.commit(key="step-1", provenance=Provenance(agent="planner")) as c:
...     c.put(("acme", "session", "s-42"), "plan", {"steps": ["research", "write"]})
>>> (await store.get(("acme", "session", "s-42"), "plan")).value
{'steps': ['research', 'write']}
"""

from memory.commit import Commit, Merge
from memory.errors import (
    AccessDenied,
    ConflictError,
    InvalidInput,
    MemoryStoreError,
    NotFound,
    StoreUnavailable,
    ValueTooLarge,
)
from memory.namespace import Namespace
from memory.policy import Grants, ScopedStore
from memory.purge import purge_run
from memory.records import (
    AuditRecord,
    CommitRecord,
    Entry,
    MemoryRef,
    Page,
    Provenance,
    SearchHit,
    StreamItem,
)
from memory.store import MemoryStore

__all__ = [
    "AccessDenied",
    "AuditRecord",
    "Commit",
    "CommitRecord",
    "ConflictError",
    "Entry",
    "Grants",
    "InvalidInput",
    "MemoryRef",
    "MemoryStore",
    "MemoryStoreError",
    "Merge",
    "Namespace",
    "NotFound",
    "Page",
    "Provenance",
    "ScopedStore",
    "SearchHit",
    "StoreUnavailable",
    "StreamItem",
    "ValueTooLarge",
    "purge_run",
]
