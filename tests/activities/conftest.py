"""Fixtures for running the activities on the real dev server with a real memory store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from activities import AgentRegistry, MemoryActivities
from activities.contracts import AgentSpec, StepInput, StepRecord, StepResult
from activities.llm import ChatMessage, ModelReply, ProviderSettings, ToolCall, ToolSpec, Usage
from memory import CommitRecord, MemoryStore, Provenance
from tests.activities.fault_points import with_faults
from tests.activities.workflows_for_tests import WORKFLOWS, StepResults, Steps, StepsWorkflow

TENANT = "acme"


@pytest.fixture
def registry() -> AgentRegistry:
    return AgentRegistry()


@dataclass
class Harness:
    """A client, a task queue and a store: start workers on them and run workflows."""

    client: Client
    task_queue: str
    store: MemoryStore
    registry: AgentRegistry

    @asynccontextmanager
    async def worker(
        self,
        *,
        faults: frozenset[str] = frozenset(),
        providers: ProviderSettings | None = None,
        store: MemoryStore | None = None,
    ) -> AsyncIterator[Worker]:
        acts = with_faults(faults)(store or self.store, self.registry, providers=providers)
        mem = MemoryActivities(store or self.store)
        async with Worker(
            self.client,
            task_queue=self.task_queue,
            workflows=WORKFLOWS,
            activities=[acts.agent_step, acts.compact_transcript, mem.write_memory],
        ) as worker:
            yield worker

    async def start(
        self, workflow: Any, arg: Any, *, prefix: str = "wf"
    ) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            workflow, arg, id=f"{prefix}-{uuid.uuid4().hex[:12]}", task_queue=self.task_queue
        )

    async def steps(self, *steps: StepInput) -> tuple[str, tuple[StepResult, ...]]:
        """Run the steps in one workflow; its id and the results."""
        handle = await self.start(StepsWorkflow.run, Steps(steps=steps))
        done: StepResults = await handle.result()
        return handle.id, done.results

    async def record(self, workflow_id: str, step: str) -> tuple[CommitRecord, StepRecord]:
        """The one commit of ``step`` in the workflow, and its step record."""
        commits = [
            c
            for c in await self.store.list_commits(workflow_id=workflow_id)
            if isinstance(c.result, dict) and c.result.get("step") == step
        ]
        assert len(commits) == 1, commits
        return commits[0], StepRecord.model_validate(commits[0].result)


@pytest.fixture
def harness(
    client: Client, task_queue: str, sqlite_store: MemoryStore, registry: AgentRegistry
) -> Harness:
    return Harness(client, task_queue, sqlite_store, registry)


def agent(name: str = "helper", **kw: Any) -> AgentSpec:
    kw.setdefault("model", "scripted")
    return AgentSpec(name=name, instructions=kw.pop("instructions", f"You are {name}."), **kw)


def step_input(spec: AgentSpec, step: str = "s1", task: str = "Say hello.", **kw: Any) -> StepInput:
    return StepInput(agent=spec, step=step, task=task, tenant=kw.pop("tenant", TENANT), **kw)


@dataclass
class Call:
    system: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]


Reply = str | ModelReply
Answer = Reply | Callable[[Call], Reply]


@dataclass
class Recorder:
    """A scripted model function that records every call and answers from ``answers``.

    Each answer is a reply or a function of the call; the last one repeats.
    """

    answers: Sequence[Answer] = ("ok",)
    calls: list[Call] = field(default_factory=list)

    def __call__(
        self, system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> Reply:
        call = Call(system, tuple(messages), tuple(tools))
        self.calls.append(call)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return answer(call) if callable(answer) else answer


def tool_call(name: str, **arguments: Any) -> ModelReply:
    """A model reply asking for one tool call."""
    return ModelReply(
        tool_calls=(ToolCall(id=f"call-{name}", name=name, arguments=arguments),),
        usage=Usage(input_tokens=1, output_tokens=1),
        finish_reason="tool_calls",
        model="scripted",
        offline=True,
    )


async def seed(
    store: MemoryStore, *writes: tuple[tuple[str, ...], str, Any], agent: str = "seeder"
) -> int:
    """Write entries outside any workflow; returns the commit sequence number."""
    async with store.commit(provenance=Provenance(tenant=TENANT, agent=agent)) as c:
        for ns, key, value in writes:
            c.put(ns, key, value)
    assert c.seq is not None
    return c.seq


async def transcript(store: MemoryStore, session: str, *turns: tuple[str, str]) -> None:
    """Append chat turns ``(role, content)`` to a session transcript."""
    async with store.commit(provenance=Provenance(tenant=TENANT)) as c:
        for role, content in turns:
            c.append((TENANT, "session", session), "transcript", {"role": role, "content": content})


def app_error(error: WorkflowFailureError) -> ApplicationError:
    """The activity's ApplicationError behind a workflow failure."""
    assert isinstance(error.cause, ActivityError), error.cause
    cause = error.cause.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def attempts(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """The attempt number of each activity's last start, in history order."""
    history = await handle.fetch_history()
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


async def failure_types(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The application failure types of retried activity attempts (from the started events)."""
    history = await handle.fetch_history()
    return [
        e.activity_task_started_event_attributes.last_failure.application_failure_info.type
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.HasField("last_failure")
    ]
