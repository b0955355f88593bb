"""`SessionWorkflow`: one long-lived workflow per conversation (deterministic).

User turns arrive as the ``send`` Update, one at a time, and the reply is the Update's result.
The transcript lives in memory, so the workflow carries only counters and the last few replies;
it continues as new when Temporal suggests it (or after ``turns_per_run`` turns) and a session
of any length keeps a small history.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.contracts import (
        PREVIEW_CHARS,
        SESSION_KEY,
        CompactInput,
        MemoryWrite,
        OpenSession,
        SessionRecord,
        WriteInput,
    )
    from workflows.contracts import Reply, SessionEnd, SessionInput, SessionState, Turn
    from workflows.ids import session_workflow_id as session_workflow_id  # re-exported
    from workflows.links import inspector_link
    from workflows.search_attributes import AGENT, SESSION, TENANT, upsert_missing
    from workflows.steps import (
        begin_on,
        compact,
        memory_store,
        open_session,
        run_step,
        write_memory,
    )

# Replies kept for answering a resent turn; carried across continue-as-new.
REMEMBERED_REPLIES = 64
REPLY_CHARS = 8000
# Of the carried replies, the newest keep their whole text up to this many bytes of it; older
# ones carry a preview. 64 whole replies could reach 2 MB (8,000 four-byte characters each),
# Temporal's payload limit, and a continue-as-new input over the limit fails every workflow
# task after it: the session would be stuck.
CARRIED_REPLY_BYTES = 64 * 1024
# Python agents have no model of their own to summarize with.
FALLBACK_COMPACTION_MODEL = "scripted"
# The workflow.patched id guarding the session's record in memory (`SessionRecord`, opened
# at a fresh start, written again at the end): runs recorded before it replay without it.
SESSION_RECORD_PATCH = "session-record"


def session_search_attributes(inp: SessionInput) -> TypedSearchAttributes:
    """The search attributes a session's workflow carries (tenant, session, agent)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT, inp.tenant),
            SearchAttributePair(SESSION, inp.session),
            SearchAttributePair(AGENT, inp.agent.name),
        ]
    )


def carried_replies(replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
    """The replies a new run starts with, so that every resent turn is still recognised.

    Their size stays bounded: the newest whole, up to `CARRIED_REPLY_BYTES` of text and
    read references, the rest as previews without references (what a turn read stays in its
    commit's lineage).
    """
    budget = CARRIED_REPLY_BYTES
    kept: list[Reply] = []
    for reply in reversed(replies[-REMEMBERED_REPLIES:]):
        reads = sum(len(ref.model_dump_json()) for ref in reply.output.reads)
        size = len(reply.text.encode("utf-8")) + reads
        if size <= budget:
            budget -= size
            kept.append(reply)
        else:
            budget = 0  # so that no older reply is carried whole after a cut one
            output = reply.output.model_copy(update={"reads": ()})
            kept.append(
                reply.model_copy(update={"text": reply.text[:PREVIEW_CHARS], "output": output})
            )
    return tuple(reversed(kept))


# Input that fails validation (a malformed start or continue-as-new payload, a task over its
# size limit) can never succeed: it fails the workflow instead of retrying its task forever.
@workflow.defn(failure_exception_types=[ValidationError])
class SessionWorkflow:
    """A conversation with one agent; see the module docstring."""

    @workflow.init
    def __init__(self, inp: SessionInput) -> None:
        # Takes the input so that update handlers, which may run before `run`, see the state
        # carried across continue-as-new (resent turns are recognised from the first task).
        self._inp = inp
        self._lock = asyncio.Lock()
        self._replies: dict[str, Reply] = {r.message_id: r for r in inp.replies}
        self._turns = inp.turns
        self._turns_this_run = 0
        self._compact_due = False
        self._ended = False
        self._closed = False
        self._opened = False
        self._refusal: Exception | None = None

    @workflow.run
    async def run(self, inp: SessionInput) -> SessionEnd:
        """Serve turns until the session is ended or idle, continuing as new along the way."""
        upsert_missing(session_search_attributes(inp).search_attributes)
        begin_on(inp.store)
        if not await self._open(inp):
            self._closed = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            return SessionEnd(turns=self._turns, reason="refused")
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._compact_due or self._ended or self._should_continue(),
                    timeout=inp.idle_timeout,
                )
            except TimeoutError:
                if not workflow.all_handlers_finished():
                    continue  # a turn is still running: the session is not idle
                reason = "idle"
                break
            if self._compact_due:
                self._compact_due = False
                await self._compact(inp)
            if self._ended:
                reason = "ended"
                break
            if self._should_continue():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    inp.model_copy(
                        update={
                            "turns": self._turns,
                            "replies": carried_replies(tuple(self._replies.values())),
                            "store": memory_store(),
                        }
                    )
                )
        self._closed = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        if workflow.patched(SESSION_RECORD_PATCH):
            await self._record(inp, ended=reason == "ended")
        return SessionEnd(turns=self._turns, reason=reason)

    async def _open(self, inp: SessionInput) -> bool:
        """At a fresh start, resume the turn count memory has; False when memory refuses."""
        try:
            if inp.turns == 0 and not inp.replies and workflow.patched(SESSION_RECORD_PATCH):
                opened = await open_session(
                    OpenSession(
                        tenant=inp.tenant, session=inp.session, agent=inp.agent.name, user=inp.user
                    )
                )
                self._turns = opened.turns
        except ActivityError as error:
            # Ended, or another user's: every turn sent to this run gets the reason.
            self._refusal = error.cause if isinstance(error.cause, ApplicationError) else error
            return False
        finally:
            self._opened = True
        return True

    async def _record(self, inp: SessionInput, *, ended: bool) -> None:
        record = SessionRecord(
            agent=inp.agent.name,
            user=inp.user,
            turns=self._turns,
            ended=ended,
            ended_at=workflow.now() if ended else None,
        )
        write = MemoryWrite(
            namespace=f"{inp.tenant}/session/{inp.session}",
            key=SESSION_KEY,
            value=record.model_dump(mode="json"),
        )
        summary = "record the session's end" if ended else "record the idle session"
        await write_memory(WriteInput(tenant=inp.tenant, writes=(write,), agent="session"), summary)

    async def _compact(self, inp: SessionInput) -> None:
        model = inp.agent.model
        try:
            await compact(
                CompactInput(
                    tenant=inp.tenant,
                    session=inp.session,
                    budget_tokens=inp.compact_budget,
                    model=FALLBACK_COMPACTION_MODEL if model.startswith("python:") else model,
                )
            )
        except ActivityError as error:
            # Compaction only keeps contexts small; turns read the transcript either way. A
            # failed one (its retries spent, or a non-retryable model or size error) must not
            # fail the session and the turn in flight: the next turn tries again.
            workflow.logger.warning("transcript compaction failed: %s", error.cause or error)

    def _should_continue(self) -> bool:
        return self._turns_this_run >= self._inp.turns_per_run or (
            workflow.info().is_continue_as_new_suggested()
        )

    @workflow.update
    async def send(self, turn: Turn) -> Reply:
        """Process one user turn and return the agent's reply."""
        async with self._lock:
            if turn.message_id in self._replies:
                return self._replies[turn.message_id]
            inp = self._inp
            begin_on(inp.store)  # an update may run before `run` has
            await workflow.wait_condition(lambda: self._opened)
            if self._refusal is not None:
                raise self._refusal
            # Named by turn number: unique across runs, whatever the client's message ids.
            result = await run_step(
                inp.agent,
                f"turn-{self._turns + 1}",
                turn.text,
                tenant=inp.tenant,
                session=inp.session,
                user=inp.user,
                user_message=True,
                preview_chars=REPLY_CHARS,
            )
            self._turns += 1
            self._turns_this_run += 1
            reply = Reply(
                message_id=turn.message_id,
                text=result.preview,
                # The reply's text is the full preview; the reference need not carry it twice.
                output=result.model_copy(update={"preview": result.preview[:PREVIEW_CHARS]}),
                turn=self._turns,
            )
            self._replies[turn.message_id] = reply
            while len(self._replies) > REMEMBERED_REPLIES:
                del self._replies[next(iter(self._replies))]
            self._compact_due = True
            link = inspector_link(inp.ui_url, workflow.info().workflow_id)
            workflow.set_current_details(f"{self._turns} turns; last: {reply.text[:80]}{link}")
            return reply

    @send.validator
    def _check_turn(self, turn: Turn) -> None:
        if self._closed or self._ended:
            raise ValueError("this session has ended; start a new one")
        if turn.user is not None and turn.user != self._inp.user:
            raise ValueError(
                f"session {self._inp.session!r} belongs to user {self._inp.user!r}, "
                f"not {turn.user!r}"
            )

    @workflow.signal
    def end(self) -> None:
        """End the session after any turn in progress."""
        self._ended = True

    @workflow.query
    def state(self) -> SessionState:
        """The session's counters and last reply."""
        last = next(reversed(self._replies.values()), None)
        return SessionState(
            tenant=self._inp.tenant,
            session=self._inp.session,
            turns=self._turns,
            turns_this_run=self._turns_this_run,
            last_reply=last.text if last else None,
            closed=self._closed,
        )
