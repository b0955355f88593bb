"""`CairnSession` inside workflows under Temporal's OpenAI Agents plugin: history across turns,
continue-as-new and sessions, exactly-once writes under activity retries, an oversized item."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from openai import AsyncOpenAI
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.streams import (
    StreamActivities,
)
from cairn.integrations.openai_agents import CairnSession
from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider
from tests.integrations.openai_session.openai_model import last_messages, provider_on, reply
from tests.integrations.openai_session.openai_workflows import (
    Conversation,
    ConversationWorkflow,
    PopWorkflow,
)
from tests.integrations.stream_faults import FailAfterCommit

# The session's store behaviour is covered on both backends by the ported scenarios.
pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True, scope="module")


@pytest.fixture
async def plugin_client(
    temporal_env: WorkflowEnvironment, model_client: AsyncOpenAI
) -> AsyncIterator[Client]:
    """A client (and so its workers) with the OpenAI Agents plugin on the local model server."""
    plugin = OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=10)),
        model_provider=provider_on(model_client),
    )
    base = temporal_env.client
    yield await Client.connect(
        base.service_client.config.target_host, namespace=base.namespace, plugins=[plugin]
    )


@asynccontextmanager
async def worker(client: Client, acts: StreamActivities) -> AsyncIterator[str]:
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ConversationWorkflow, PopWorkflow],
        activities=[
            acts.append_stream_items,
            acts.read_stream_items,
            acts.pop_stream_item,
            acts.clear_stream,
        ],
    ):
        yield queue


async def converse(client: Client, queue: str, conv: Conversation) -> list[str]:
    return await client.execute_workflow(
        ConversationWorkflow.run,
        conv,
        id=f"conv-{uuid.uuid4()}",
        task_queue=queue,
        execution_timeout=timedelta(seconds=60),
    )


async def stored_rows(store: MemoryStore, tenant: str, session_id: str) -> list[Any]:
    """Every item ever appended to the session's stream, hidden ones included."""
    rows = await store.read_stream((tenant, "session", session_id), "items")
    return [row.item for row in rows]


async def test_history_carries_across_turns_and_reads_outside(
    plugin_client: Client, store: MemoryStore, provider: FakeProvider, tenant: str
):
    reply(provider, "San Francisco")
    reply(provider, "California")
    async with worker(plugin_client, StreamActivities(store)) as queue:
        prompts = ["What city is the Golden Gate Bridge in?", "What state is it in?"]
        conv = Conversation(tenant=tenant, session_id="s-1", prompts=prompts)
        assert await converse(plugin_client, queue, conv) == ["San Francisco", "California"]
    sent = [m["content"] for m in last_messages(provider) if m["role"] != "system"]
    assert sent == [*prompts[:1], "San Francisco", prompts[1]]
    outside = await CairnSession("s-1", tenant=tenant, store=store).get_items()
    assert len(outside) == 4
    assert await stored_rows(store, tenant, "s-1") == outside


async def test_continue_as_new_keeps_the_session(
    plugin_client: Client, store: MemoryStore, provider: FakeProvider, tenant: str
):
    for text in ("one", "two", "three"):
        reply(provider, text)
    async with worker(plugin_client, StreamActivities(store)) as queue:
        conv = Conversation(tenant=tenant, session_id="s-can", prompts=["a", "b", "c"])
        conv = conv.model_copy(update={"continue_after": 1})
        assert await converse(plugin_client, queue, conv) == ["one", "two", "three"]
    sent = [m["content"] for m in last_messages(provider) if m["role"] != "system"]
    assert sent == ["a", "one", "b", "two", "c"]
    assert len(await stored_rows(store, tenant, "s-can")) == 6


async def test_two_sessions_of_one_user_stay_apart(
    plugin_client: Client, store: MemoryStore, provider: FakeProvider, tenant: str
):
    async with worker(plugin_client, StreamActivities(store)) as queue:
        reply(provider, "cats noted")
        await converse(
            plugin_client,
            queue,
            Conversation(tenant=tenant, session_id="u7-s1", prompts=["I like cats"]),
        )
        reply(provider, "dogs noted")
        await converse(
            plugin_client,
            queue,
            Conversation(tenant=tenant, session_id="u7-s2", prompts=["I like dogs"]),
        )
        reply(provider, "cats")
        await converse(
            plugin_client,
            queue,
            Conversation(tenant=tenant, session_id="u7-s1", prompts=["Which?"]),
        )
    sent = " ".join(str(m["content"]) for m in last_messages(provider))
    assert "cats" in sent and "dogs" not in sent


async def test_writes_apply_once_when_an_activity_is_retried_after_committing(
    plugin_client: Client, store: MemoryStore, provider: FakeProvider, tenant: str
):
    failing = FailAfterCommit(store)
    reply(provider, "Hello")
    async with worker(plugin_client, failing) as queue:
        conv = Conversation(tenant=tenant, session_id="s-retry", prompts=["Hi"])
        assert await converse(plugin_client, queue, conv) == ["Hello"]
        written = await stored_rows(store, tenant, "s-retry")
        popped = await plugin_client.execute_workflow(
            PopWorkflow.run, conv, id=f"pop-{uuid.uuid4()}", task_queue=queue
        )
    assert [item.get("role") for item in written] == ["user", "assistant"]
    assert popped == written[1]
    assert 2 in failing.attempts  # every write was retried once, and applied once
    live = await CairnSession("s-retry", tenant=tenant, store=store).get_items()
    assert live == [{"role": "user", "content": "Hi"}]


async def test_an_oversized_item_fails_the_workflow_and_writes_nothing(
    plugin_client: Client, store: MemoryStore, tenant: str
):
    async with worker(plugin_client, StreamActivities(store)) as queue:
        conv = Conversation(tenant=tenant, session_id="s-big", prompts=[], extra_item_bytes=70_000)
        with pytest.raises(WorkflowFailureError) as failure:
            await converse(plugin_client, queue, conv)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ValueTooLarge"
    assert "s-big" in str(cause) and "items[0]" in str(cause)
    assert await stored_rows(store, tenant, "s-big") == []
