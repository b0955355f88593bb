"""What a step read beyond its assembled context: the versions its tools and agent code read.

A step's lineage (`StepRecord.input_refs`) is its context's references followed by these, so
`cairn memory steps`, the inspector and `purge_run` see a fact recalled through a tool exactly
as they see one placed in the context.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from memory import Entry, MemoryRef, Page, SearchHit, StreamItem
from memory.policy import ScopedStore


class RecordingStore(ScopedStore):
    """A step's scoped memory that notes the exact version of everything read through it."""

    def __init__(self, scope: ScopedStore) -> None:
        super().__init__(scope.store, scope.principal, scope.grants)
        self._reads: dict[tuple[object, ...], MemoryRef] = {}

    @property
    def reads(self) -> tuple[MemoryRef, ...]:
        """Every version read so far, once each, in the order first read."""
        return tuple(self._reads.values())

    def note(self, refs: Iterable[MemoryRef]) -> None:
        """Record ``refs`` as read."""
        for ref in refs:
            self._reads.setdefault((ref.namespace, ref.key, ref.version, ref.kind), ref)

    async def get(self, namespace: Sequence[str], key: str, **kw: Any) -> Any:
        """`ScopedStore.get`, noting the version read (a typed read too)."""
        model: type[BaseModel] | None = kw.pop("model", None)
        entry: Entry = await super().get(namespace, key, **kw)
        self.note([entry.ref])
        if model is None:
            return entry
        # The store's own typed read, on the version already read and noted.
        typed: Any = await super().get(namespace, key, as_of=entry.commit_seq, model=model)
        return typed

    async def history(self, namespace: Sequence[str], key: str, **kw: Any) -> builtins.list[Entry]:
        """`ScopedStore.history`, noting every version listed."""
        entries = await super().history(namespace, key, **kw)
        self.note(e.ref for e in entries if not e.deleted)
        return entries

    async def list(self, prefix: Sequence[str], **kw: Any) -> Page:
        """`ScopedStore.list`, noting the entries on the page."""
        page = await super().list(prefix, **kw)
        self.note(e.ref for e in page.entries)
        return page

    async def tail(
        self, namespace: Sequence[str], stream: str, n: int = 20
    ) -> builtins.list[StreamItem]:
        """`ScopedStore.tail`, noting the items read."""
        items = await super().tail(namespace, stream, n)
        self.note(i.ref for i in items)
        return items

    async def read_stream(
        self, namespace: Sequence[str], stream: str, **kw: Any
    ) -> builtins.list[StreamItem]:
        """`ScopedStore.read_stream`, noting the items read."""
        items = await super().read_stream(namespace, stream, **kw)
        self.note(i.ref for i in items)
        return items

    async def search(self, prefix: Sequence[str], text: str, **kw: Any) -> builtins.list[SearchHit]:
        """`ScopedStore.search`, noting the versions that matched."""
        hits = await super().search(prefix, text, **kw)
        self.note(h.ref for h in hits)
        return hits


def lineage(context: Sequence[MemoryRef], reads: Sequence[MemoryRef]) -> tuple[MemoryRef, ...]:
    """A step's input references: its context's, then what else it read, each once."""
    seen = {(r.namespace, r.key, r.version, r.kind) for r in context}
    extra = [r for r in reads if (r.namespace, r.key, r.version, r.kind) not in seen]
    return (*context, *extra)


__all__ = ["RecordingStore", "lineage"]
