"""The one helper every workflow runs agent steps with (deterministic).

Activity options are named constants here, so every workflow retries and times out the same
way: transient failures (a model's 429/5xx, an unreachable database) back off and retry.
Which failures are caller mistakes is decided once, by the activities
(`activities.failures`), which raise those as non-retryable ``ApplicationError``s; the retry
policy does not keep a second list of them.

Each workflow runs against one memory store. The first activity's result says which one
(`memory_store`); every later activity input carries it, and an activity on a worker with
another store fails at once (``StoreMismatch``) instead of writing a second, diverging memory.
A workflow that continues as new hands `memory_store()` to its next run, which calls
`begin_on` with it.
"""

from __future__ import annotations

import weakref
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        AGENT_STEP,
        COMPACT_TRANSCRIPT,
        OPEN_SESSION,
        PREVIEW_CHARS,
        WRITE_MEMORY,
        AgentSpec,
        CompactInput,
        CompactResult,
        OpenSession,
        SessionOpened,
        StepInput,
        StepResult,
        WriteInput,
        WriteResult,
    )
    from memory.errors import StoreMismatch
    from memory.records import StoreIdentity
    from workflows.search_attributes import AGENT, SESSION, TEAM, TENANT, missing, upsert_missing

STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
)
STEP_START_TO_CLOSE = timedelta(minutes=10)
# Steps heartbeat every second while they run (`activities.heartbeat`), however long their
# model call takes; a worker silent this long is dead, and its step runs again elsewhere.
STEP_HEARTBEAT = timedelta(seconds=5)
MEMORY_START_TO_CLOSE = timedelta(minutes=1)
# The workflow.patched id guarding the search attributes `run_step` sets: runs recorded
# before it replay without setting them.
STEP_SEARCH_ATTRIBUTES_PATCH = "run-step-search-attributes"

_MemoryResult = TypeVar("_MemoryResult", WriteResult, SessionOpened)

# The store each running workflow began on, by workflow instance: rebuilt by replay, gone with
# the instance. (Workflow code may keep no other state outside its instance.)
_STORES: weakref.WeakKeyDictionary[object, StoreIdentity] = weakref.WeakKeyDictionary()


def memory_store() -> StoreIdentity | None:
    """Inside a workflow: the memory store it began on, once an activity has reported it."""
    return _STORES.get(workflow.instance())


def begin_on(store: StoreIdentity | None) -> None:
    """Inside a workflow: check every activity against ``store`` (carried from an earlier run).

    Raises:
        ApplicationError: The workflow already knows another store (``StoreMismatch``).
    """
    if store is None:
        return
    known = _STORES.setdefault(workflow.instance(), store)
    if known.id != store.id:
        mismatch = StoreMismatch(known, store)
        raise ApplicationError(str(mismatch), type=type(mismatch).__name__, non_retryable=True)


def _search_attributes(agent: AgentSpec, tenant: str, session: str | None) -> None:
    # What a user's workflow built on run_step is filtered by in the Temporal UI. A team's
    # workflow runs several agents, so none of them names it.
    pairs = [SearchAttributePair(TENANT, tenant)]
    if session:
        pairs.append(SearchAttributePair(SESSION, session))
    if workflow.info().typed_search_attributes.get(TEAM) is None:
        pairs.append(SearchAttributePair(AGENT, agent.name))
    # Asked only when something is missing, so that the marker is recorded only by runs that
    # do set them.
    if missing(pairs) and workflow.patched(STEP_SEARCH_ATTRIBUTES_PATCH):
        upsert_missing(pairs)


async def run_step(
    agent: AgentSpec,
    step: str,
    task: str,
    *,
    tenant: str,
    session: str | None = None,
    user: str | None = None,
    user_message: bool = False,
    preview_chars: int = PREVIEW_CHARS,
) -> StepResult:
    """Run one agent step as an activity and return its `StepResult` (references only).

    Sets the workflow's missing search attributes (CairnTenant, CairnSession, and CairnAgent
    unless it runs a team), and checks the step against the workflow's memory store.
    """
    _search_attributes(agent, tenant, session)
    result: StepResult = await workflow.execute_activity(
        AGENT_STEP,
        StepInput(
            agent=agent,
            step=step,
            task=task,
            tenant=tenant,
            session=session,
            user=user,
            user_message=user_message,
            preview_chars=preview_chars,
            store=memory_store(),
        ),
        result_type=StepResult,
        start_to_close_timeout=STEP_START_TO_CLOSE,
        heartbeat_timeout=STEP_HEARTBEAT,
        retry_policy=STEP_RETRY,
        summary=f"{agent.name}: {step}",
    )
    begin_on(result.store)
    return result


async def compact(inp: CompactInput) -> CompactResult:
    """Run transcript compaction (a no-op when the transcript is within budget)."""
    result: CompactResult = await workflow.execute_activity(
        COMPACT_TRANSCRIPT,
        inp.model_copy(update={"store": memory_store()}),
        result_type=CompactResult,
        start_to_close_timeout=STEP_START_TO_CLOSE,
        heartbeat_timeout=STEP_HEARTBEAT,
        retry_policy=STEP_RETRY,
        summary=f"compact transcript of {inp.session}",
    )
    return result


async def _memory_activity(
    name: str, inp: WriteInput | OpenSession, result_type: type[_MemoryResult], summary: str
) -> _MemoryResult:
    """Run a direct memory activity on the workflow's store, and begin on the store it reports."""
    result: _MemoryResult = await workflow.execute_activity(
        name,
        inp.model_copy(update={"store": memory_store()}),
        result_type=result_type,
        start_to_close_timeout=MEMORY_START_TO_CLOSE,
        retry_policy=STEP_RETRY,
        summary=summary,
    )
    begin_on(result.store)
    return result


async def write_memory(inp: WriteInput, summary: str) -> WriteResult:
    """Write values to memory directly, exactly once."""
    return await _memory_activity(WRITE_MEMORY, inp, WriteResult, summary)


async def open_session(inp: OpenSession) -> SessionOpened:
    """Open a fresh session in memory: its earlier turn count, or a ``SessionEnded`` failure."""
    return await _memory_activity(OPEN_SESSION, inp, SessionOpened, f"open session {inp.session}")
