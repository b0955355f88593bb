"""Direct memory writes a workflow makes: ingesting documents, recording a human decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from activities.contracts import WriteInput, WriteResult
from activities.failures import temporal_failures
from activities.provenance import activity_commit_key, activity_provenance, check_store
from memory import Grants
from memory.namespace import parse

if TYPE_CHECKING:
    from memory.store import MemoryStore


class MemoryActivities:
    """Activities that write memory on a workflow's own behalf (no model involved)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @activity.defn(name="write_memory")
    async def write_memory(self, inp: WriteInput) -> WriteResult:
        """Apply ``inp.writes`` in one commit, exactly once per activity execution.

        Every write must stay inside ``inp.tenant``.
        """
        with temporal_failures():
            identity = check_store(self.store, inp.store)
            memory = self.store.scoped(inp.agent, Grants(write=(inp.tenant,)))
            provenance = activity_provenance(inp.tenant, inp.agent)
            key = activity_commit_key("write")
            async with memory.commit(key=key, provenance=provenance) as commit:
                for w in inp.writes:
                    commit.put(parse(w.namespace), w.key, w.value, tags=w.tags)
        assert commit.seq is not None
        return WriteResult(commit_seq=commit.seq, refs=commit.writes, store=identity)
