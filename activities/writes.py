"""Direct memory writes a workflow makes: ingesting documents, recording a human decision."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from temporalio import activity

from activities.contracts import WriteInput, WriteResult
from activities.failures import database_failure, non_retryable
from activities.provenance import activity_commit_key, activity_provenance
from memory import Grants, InvalidInput, MemoryStore
from memory.errors import AccessDenied
from memory.namespace import parse


class MemoryActivities:
    """Activities that write memory on a workflow's own behalf (no model involved)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @activity.defn(name="write_memory")
    async def write_memory(self, inp: WriteInput) -> WriteResult:
        """Apply ``inp.writes`` in one commit, exactly once per activity execution.

        Every write must stay inside ``inp.tenant``.
        """
        memory = self.store.scoped(inp.agent, Grants(write=(inp.tenant,)))
        provenance = activity_provenance(inp.tenant, inp.agent)
        key = activity_commit_key("write")
        try:
            async with memory.commit(key=key, provenance=provenance) as commit:
                for w in inp.writes:
                    commit.put(parse(w.namespace), w.key, w.value, tags=w.tags)
        except (InvalidInput, AccessDenied) as error:
            raise non_retryable(error) from None
        except DBAPIError as error:
            raise database_failure(error) from None
        assert commit.seq is not None
        return WriteResult(commit_seq=commit.seq, refs=commit.writes)
