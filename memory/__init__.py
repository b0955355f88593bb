"""Cairn's shared memory layer: versioned, exactly-once, searchable, usable on its own.

>>> store = await MemoryStore.open("sqlite:///memory.db")
>>> async with store.commit(key="step-1", provenance=Provenance(agent="planner")) as c:
...     c.put(("acme", "session", "s-42"), "plan", {"steps": ["research", "write"]})
>>> (await store.get(("acme", "session", "s-42"), "plan")).value
{'steps': ['research', 'write']}

Public submodules: `memory.records` (value models), `memory.values` (the value codec),
`memory.namespace`, `memory.errors`, `memory.context`, `memory.policy`, `memory.store`. The
store is loaded on first use, so importing `memory` for its models loads no database driver.
"""

from typing import TYPE_CHECKING, Any

from memory.commit import Commit
from memory.errors import (
    AccessDenied,
    ConflictError,
    InvalidInput,
    MemoryStoreError,
    NotFound,
    StoreMismatch,
    StoreUnavailable,
    ValueTooLarge,
)
from memory.namespace import Namespace
from memory.policy import Grants, ScopedStore
from memory.records import (
    AuditRecord,
    CommitRecord,
    Entry,
    MemoryRef,
    Page,
    Provenance,
    PurgeReport,
    SearchHit,
    StoreIdentity,
    StreamItem,
)
from memory.values import Merge

if TYPE_CHECKING:
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
    "PurgeReport",
    "ScopedStore",
    "SearchHit",
    "StoreIdentity",
    "StoreMismatch",
    "StoreUnavailable",
    "StreamItem",
    "ValueTooLarge",
]


def __getattr__(name: str) -> Any:
    # PEP 562: the store pulls in SQLAlchemy and the database drivers, which workflows (and
    # anyone importing only the models) must not pay for.
    if name == "MemoryStore":
        from memory.store import MemoryStore

        return MemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
