"""The README's `CairnSession` examples work as written (memory URL and model server swapped)."""

from __future__ import annotations

import importlib
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from openai import AsyncOpenAI
from temporalio.client import Client
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.streams import StreamActivities
from cairn.integrations.openai_agents import CairnSession
from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider
from tests.integrations.openai_session.openai_model import provider_on, reply
from tests.integrations.readme_blocks import python_blocks, run_async


async def test_the_direct_session_example_runs(sqlite_url: str):
    source = python_blocks()[1].replace('"sqlite:///.cairn/memory.db"', repr(sqlite_url))
    scope = await run_async(source)
    store: MemoryStore = scope["store"]
    try:
        assert await CairnSession("s-42", tenant="acme", store=store).get_items() == []
        assert len(await store.read_stream(("acme", "session", "s-42"), "items")) == 1
    finally:
        await store.close()


async def test_the_workflow_example_runs(
    temporal_env: WorkflowEnvironment,
    model_client: AsyncOpenAI,
    provider: FakeProvider,
    sqlite_store: MemoryStore,
    tmp_path: Path,
):
    module_name = f"readme_session_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module_name}.py").write_text(python_blocks()[0])
    sys.path.insert(0, str(tmp_path))  # the workflow sandbox re-imports the module by name
    try:
        module = importlib.import_module(module_name)
        plugin = OpenAIAgentsPlugin(
            model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=10)),
            model_provider=provider_on(model_client),
        )
        base = temporal_env.client
        client = await Client.connect(
            base.service_client.config.target_host, namespace=base.namespace, plugins=[plugin]
        )
        acts, queue = StreamActivities(sqlite_store), f"tq-{uuid.uuid4()}"
        reply(provider, "Reset it from the settings page.")
        activities = [
            acts.append_stream_items,
            acts.read_stream_items,
            acts.pop_stream_item,
            acts.clear_stream,
        ]
        async with Worker(
            client, task_queue=queue, workflows=[module.SupportWorkflow], activities=activities
        ):
            answer = await client.execute_workflow(
                module.SupportWorkflow.run,
                module.Question(session_id="s-7", text="How do I reset my password?"),
                id=f"support-{uuid.uuid4()}",
                task_queue=queue,
            )
    finally:
        sys.path.remove(str(tmp_path))
    assert answer == "Reset it from the settings page."
    items = await CairnSession("s-7", tenant="acme", store=sqlite_store).get_items()
    assert [item.get("role") for item in items] == ["user", "assistant"]
