"""Starting workflows the fault suite's way (always with an execution timeout) and reading how
they ended: the failure a chain ended with, and how many attempts each activity took."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, FailureError

from tests.workflows.harness import TENANT, agent
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import ChainSpec, Reply, SessionInput, Step, Turn
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id

EXECUTION_TIMEOUT = timedelta(seconds=90)
"""No fault test's workflow may outlive this, whatever goes wrong."""


def spec(*nodes: Any, agents: tuple[str, ...] = (), name: str = "fault", **kw: Any) -> ChainSpec:
    """A chain of ``nodes``; ``agents`` are ``name`` or ``name=model`` (default ``python:name``)."""
    specs = []
    for a in agents or ("snoop",):  # a chain needs an agent, even one that only writes
        label, _, model = a.partition("=")
        specs.append(agent(label, model or f"python:{label}"))
    return ChainSpec(
        name=name, tenant=kw.pop("tenant", TENANT), agents=tuple(specs), nodes=nodes, **kw
    )


def step(agent_name: str, task: str, name: str | None = None) -> Step:
    return Step(agent=agent_name, name=name or agent_name, task=task)


async def start_chain(
    client: Client,
    task_queue: str,
    chain: ChainSpec,
    *,
    id: str | None = None,
    timeout: timedelta = EXECUTION_TIMEOUT,
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        ChainWorkflow.run,
        chain,
        id=id or f"{chain.name}-{uuid.uuid4().hex[:10]}",
        task_queue=task_queue,
        search_attributes=team_search_attributes(chain),
        execution_timeout=timeout,
    )


async def failure(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    """The application error at the root of the workflow's failure (it must have failed)."""
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause: BaseException | None = info.value.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError), info.value
    return cause


async def activity_attempts(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """The attempt number of every activity task started in the run, in order."""
    history = await handle.fetch_history()
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


async def workflow_task_failures(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    )


async def send(client: Client, task_queue: str, inp: SessionInput, msg: str, text: str) -> Reply:
    """A turn that starts the session if it is not running (as `cairn session send` does)."""
    start = WithStartWorkflowOperation(
        SessionWorkflow.run,
        inp,
        id=session_workflow_id(inp.tenant, inp.session),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=session_search_attributes(inp),
        execution_timeout=EXECUTION_TIMEOUT,
    )
    reply: Reply = await client.execute_update_with_start_workflow(
        SessionWorkflow.send, Turn(message_id=msg, text=text), start_workflow_operation=start
    )
    return reply
