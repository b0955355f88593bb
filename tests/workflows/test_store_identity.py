"""Two workers on one task queue with two memories: a workflow's steps stay on its first store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError

from memory import MemoryStore
from tests.workflows.harness import TENANT, Team, agent, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, ChainSpec, Decision, SessionInput, Step


@pytest.fixture
async def other_store(postgres_schema_url: str) -> AsyncIterator[MemoryStore]:
    """A second memory (on the other backend), as a misconfigured worker would have."""
    async with await MemoryStore.open(postgres_schema_url) as store:
        yield store


def assert_names_both(error: BaseException, first: MemoryStore, other: MemoryStore) -> None:
    cause = error.cause if isinstance(error, ActivityError) else error
    assert isinstance(cause, ApplicationError) and cause.type == "StoreMismatch"
    assert cause.non_retryable
    message = str(cause)
    assert str(first.identity) in message and str(other.identity) in message
    assert "postgres@" not in message  # names, never credentials


async def test_a_chain_refuses_a_step_on_another_store(
    team: Team, other_store: MemoryStore
) -> None:
    spec = ChainSpec(
        name="pinned",
        tenant=TENANT,
        agents=(agent("a"), agent("b")),
        nodes=(Step(agent="a"), Approval(name="go"), Step(agent="b")),
        input="Hello",
    )
    async with team.worker():
        handle = await team.start(spec)

        async def waiting() -> bool:
            return (await handle.query(ChainWorkflow.progress)).waiting_for == "go"

        await wait_until(waiting)
    async with team.worker(other_store):
        await handle.execute_update(ChainWorkflow.decide, Decision(approval="go", approve=True))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert_names_both(failed.value.cause, team.store, other_store)
    # Nothing of this workflow reached the other store.
    assert await other_store.list_commits(workflow_id=handle.id) == []


async def test_a_session_carries_its_store_across_continue_as_new(
    team: Team, other_store: MemoryStore
) -> None:
    inp = SessionInput(
        tenant=TENANT, session=f"s-{uuid.uuid4().hex[:8]}", agent=agent("a"), turns_per_run=1
    )
    async with team.worker():
        first = await team.send(inp, "m1", "Hello")
        run = (await team.session(inp).describe()).run_id

        async def continued() -> bool:
            return (await team.session(inp).describe()).run_id != run

        await wait_until(continued)
    assert first.output.store == team.store.identity
    async with team.worker(other_store):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await team.send(inp, "m2", "Hello again")
    assert_names_both(refused.value.cause, team.store, other_store)
    assert await other_store.list_commits(tenant=TENANT) == []
