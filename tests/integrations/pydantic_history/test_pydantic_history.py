"""`CairnHistory` under PydanticAI's ``TemporalDurability``: the model sees the whole
conversation, each model-request activity carries a reference instead of it, continue-as-new
carries only the conversation id, and every message is stored once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import MemoryActivities
from activities.streams import StreamActivities
from bench.pydantic_history import model_request_bytes
from memory import MemoryStore
from tests.integrations.pydantic_history.pydantic_workflows import (
    HISTORY,
    Chat,
    ChatWorkflow,
    ManualWorkflow,
    PlainChatWorkflow,
)
from tests.integrations.stream_faults import FailAfterCommit

pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True, scope="module")


@pytest.fixture
async def client(temporal_env: WorkflowEnvironment) -> Client:
    """A client (and so its workers) with PydanticAI's Temporal plugin."""
    base = temporal_env.client
    target = base.service_client.config.target_host
    return await Client.connect(target, namespace=base.namespace, plugins=[PydanticAIPlugin()])


@asynccontextmanager
async def worker(client: Client, acts: StreamActivities) -> AsyncIterator[str]:
    HISTORY.bind(acts.store)
    name = f"tq-{uuid.uuid4()}"
    workflows = [ChatWorkflow, PlainChatWorkflow, ManualWorkflow]
    writes = MemoryActivities(acts.store).write_memory
    async with Worker(
        client, task_queue=name, workflows=workflows, activities=[acts.append_stream_items, writes]
    ):
        yield name


async def run_chat(
    client: Client, queue: str, workflow: object, chat: Chat
) -> tuple[list[str], WorkflowHandle[object, object]]:
    handle = await client.start_workflow(
        workflow,  # type: ignore[arg-type]
        chat,
        id=f"chat-{uuid.uuid4()}",
        task_queue=queue,
        execution_timeout=timedelta(seconds=60),
    )
    return await handle.result(), handle  # type: ignore[return-value]


async def test_the_model_sees_the_conversation_and_dispatches_stay_flat(
    client: Client, store: MemoryStore
):
    conversation = f"c-{uuid.uuid4().hex[:8]}"
    prompts = [f"prompt {n} " + "x" * 200 for n in range(1, 6)]
    chat = Chat(conversation_id=conversation, prompts=prompts)
    async with worker(client, StreamActivities(store)) as queue:
        replies, handle = await run_chat(client, queue, ChatWorkflow.run, chat)
        plain, plain_handle = await run_chat(client, queue, PlainChatWorkflow.run, chat)
    assert replies[-1] == " | ".join(prompts)
    assert plain == replies
    sizes, plain_sizes = await model_request_bytes(handle), await model_request_bytes(plain_handle)
    assert len(sizes) == 5 and max(sizes) - min(sizes) < 64, sizes
    assert plain_sizes[-1] > plain_sizes[0] + 4 * 400 > sizes[-1], (plain_sizes, sizes)
    stored = await HISTORY.history(conversation)
    assert [m.kind for m in stored] == ["request", "response"] * 5


async def test_continue_as_new_carries_only_the_conversation_id(client: Client, store: MemoryStore):
    conversation = f"c-{uuid.uuid4().hex[:8]}"
    chat = Chat(conversation_id=conversation, prompts=["a", "b", "c"], continue_after=2)
    async with worker(client, StreamActivities(store)) as queue:
        replies, _ = await run_chat(client, queue, ChatWorkflow.run, chat)
    assert replies == ["a", "a | b", "a | b | c"]
    assert len(await HISTORY.history(conversation)) == 6


async def test_messages_are_stored_once_when_appends_are_retried(
    client: Client, store: MemoryStore
):
    conversation = f"c-{uuid.uuid4().hex[:8]}"
    failing = FailAfterCommit(store)
    chat = Chat(conversation_id=conversation, prompts=["a", "b"])
    async with worker(client, failing) as queue:
        replies, _ = await run_chat(client, queue, ChatWorkflow.run, chat)
    assert replies == ["a", "a | b"]
    assert 2 in failing.attempts
    assert [m.kind for m in await HISTORY.history(conversation)] == ["request", "response"] * 2


async def test_a_bad_conversation_id_fails_the_workflow_and_writes_nothing(
    client: Client, store: MemoryStore
):
    before = await store.list_commits(tenant="acme", limit=1000)
    chat = Chat(conversation_id="not a segment", prompts=["a"])
    async with worker(client, StreamActivities(store)) as queue:
        with pytest.raises(WorkflowFailureError) as failure:
            await run_chat(client, queue, ChatWorkflow.run, chat)
    assert "conversation id" in str(failure.value.cause)
    assert await store.list_commits(tenant="acme", limit=1000) == before


async def test_a_large_dep_crosses_temporal_once_as_a_value_then_as_a_reference(
    client: Client, store: MemoryStore
):
    chat = Chat(conversation_id=f"c-{uuid.uuid4().hex[:8]}", prompts=["How long is the manual?"])
    async with worker(client, StreamActivities(store)) as queue:
        answer, handle = await run_chat(client, queue, ManualWorkflow.run, chat)
    assert answer == "200000"
    inputs = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            size = sum(len(p.data) for p in attrs.input.payloads)
            inputs[attrs.activity_type.name] = max(size, inputs.get(attrs.activity_type.name, 0))
    assert inputs.pop("write_memory") > 200_000
    assert inputs and max(inputs.values()) < 10_000, inputs
