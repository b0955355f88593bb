"""Helpers for the workflow tests: run the production worker and workflows, read results."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities import AgentContext, AgentOutput, AgentRegistry
from activities.contracts import AgentSpec, StepRecord
from cairn.runtime import Settings, build_worker
from memory import CommitRecord, MemoryStore
from memory.context import ContextSpec
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import ChainResult, ChainSpec, Reply, SessionInput, Turn
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id

TENANT = "acme"
T = TypeVar("T")


def agent(name: str, model: str = "scripted", **kw: Any) -> AgentSpec:
    """An agent for chains: no transcript unless given a context."""
    kw.setdefault("context", ContextSpec(transcript=None))
    kw.setdefault("instructions", f"You are {name}.")
    return AgentSpec(name=name, model=model, **kw)


def run_ns(workflow_id: str) -> tuple[str, ...]:
    return (TENANT, "run", workflow_id)


def gated_agent(
    registry: AgentRegistry, name: str, text: str = "done"
) -> tuple[asyncio.Event, asyncio.Event]:
    """Register a Python agent that sets the first event when called and answers ``text``
    once the second is set."""
    started, release = asyncio.Event(), asyncio.Event()

    @registry.agent(name)
    async def gated(ctx: AgentContext) -> AgentOutput:
        started.set()
        await release.wait()
        return AgentOutput(text=text)

    return started, release


async def wait_until(probe: Callable[[], Awaitable[T]], *, timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(0.05)


async def history_events(handle: WorkflowHandle[Any, Any], kind: int) -> list[Any]:
    """The events of one type in a workflow run's history."""
    history = await handle.fetch_history()
    return [e for e in history.events if e.event_type == kind]


@dataclass
class Team:
    """A client, task queue, store and registry: run workers and workflows on them."""

    client: Client
    task_queue: str
    store: MemoryStore
    registry: AgentRegistry

    @asynccontextmanager
    async def worker(self, store: MemoryStore | None = None) -> AsyncIterator[Worker]:
        settings = Settings(task_queue=self.task_queue, shutdown_grace=1)
        async with build_worker(self.client, store or self.store, settings, self.registry) as w:
            yield w

    async def start(self, spec: ChainSpec, *, id: str | None = None) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            ChainWorkflow.run,
            spec,
            id=id or f"{spec.name}-{uuid.uuid4().hex[:10]}",
            task_queue=self.task_queue,
            search_attributes=team_search_attributes(spec),
        )

    async def run(self, spec: ChainSpec, **kw: Any) -> tuple[WorkflowHandle[Any, Any], ChainResult]:
        handle = await self.start(spec, **kw)
        return handle, await handle.result()

    async def send(
        self, inp: SessionInput, message_id: str, text: str, *, user: str | None = None
    ) -> Reply:
        """A user turn, starting the session when it is not running (update-with-start)."""
        start = WithStartWorkflowOperation(
            SessionWorkflow.run,
            inp,
            id=session_workflow_id(inp.tenant, inp.session),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=session_search_attributes(inp),
        )
        reply: Reply = await self.client.execute_update_with_start_workflow(
            SessionWorkflow.send,
            Turn(message_id=message_id, text=text, user=user),
            start_workflow_operation=start,
        )
        return reply

    def session(self, inp: SessionInput) -> WorkflowHandle[Any, Any]:
        """The session's handle (its latest run)."""
        return self.client.get_workflow_handle_for(
            SessionWorkflow.run, session_workflow_id(inp.tenant, inp.session)
        )

    async def text(self, ns: tuple[str, ...], key: str) -> str:
        """The ``text`` of an entry's current version."""
        value = (await self.store.get(ns, key)).value
        assert isinstance(value, dict)
        return str(value["text"])

    async def step_commits(self, workflow_id: str) -> dict[str, list[CommitRecord]]:
        """The workflow's agent-step commits, by step name."""
        return await step_commits(self.store, workflow_id)


async def step_commits(store: MemoryStore, workflow_id: str) -> dict[str, list[CommitRecord]]:
    """A workflow's agent-step commits, by step name."""
    out: dict[str, list[CommitRecord]] = {}
    after = 0
    while page := await store.list_commits(workflow_id=workflow_id, after_seq=after, limit=1000):
        for c in page:
            if c.key.startswith("step:"):
                out.setdefault(StepRecord.model_validate(c.result).step, []).append(c)
        after = page[-1].seq
    return out
