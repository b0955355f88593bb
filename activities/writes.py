"""Direct memory writes a workflow makes: documents, a human decision, a session's record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    SESSION_KEY,
    OpenSession,
    SessionOpened,
    SessionRecord,
    WriteInput,
    WriteResult,
)
from activities.failures import temporal_failures
from activities.provenance import activity_commit_key, activity_provenance, check_store
from memory import Grants, NotFound
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

    @activity.defn(name="open_session")
    async def open_session(self, inp: OpenSession) -> SessionOpened:
        """Open a session starting fresh: resume its turn count, or refuse it once ended.

        The first open records its `SessionRecord` (agent and user), exactly once.

        Raises:
            ApplicationError: Non-retryable, of type ``SessionEnded`` (details: the record)
                when the session was ended, or ``SessionUserMismatch`` when it belongs to
                another user.
        """
        with temporal_failures():
            identity = check_store(self.store, inp.store)
            ns = (inp.tenant, "session", inp.session)
            try:
                record = await self.store.get(ns, SESSION_KEY, model=SessionRecord)
            except NotFound:
                record = SessionRecord(agent=inp.agent, user=inp.user)
                provenance = activity_provenance(inp.tenant, inp.agent)
                key = activity_commit_key("session")
                async with self.store.commit(key=key, provenance=provenance) as commit:
                    commit.put(ns, SESSION_KEY, record.model_dump(mode="json"))
            if record.user is not None:
                # Forgetting the user then destroys the key of this session's payloads too
                # (cairn.subject_codec); without encryption there is no key and this is a no-op.
                await self.store.bind_data_key_owner(ns, (inp.tenant, "user", record.user))
        if record.ended:
            when = record.ended_at.isoformat(timespec="seconds") if record.ended_at else "?"
            raise ApplicationError(
                f"session {inp.session!r} ended at {when} after {record.turns} "
                f"turn{'' if record.turns == 1 else 's'}; start a new session id",
                record.model_dump(mode="json"),
                type="SessionEnded",
                non_retryable=True,
            )
        if record.user != inp.user:
            raise ApplicationError(
                f"session {inp.session!r} belongs to user {record.user!r}, not {inp.user!r}",
                type="SessionUserMismatch",
                non_retryable=True,
            )
        return SessionOpened(turns=record.turns, store=identity)
