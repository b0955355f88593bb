"""A worker process for the crash test: Cairn's worker (`build_worker`) with the OpenAI Agents
plugin on its client, the model on the local server at ``CAIRN_TEST_MODEL_URL``."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from openai import AsyncOpenAI
from temporalio.client import Client
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin

from cairn.runtime import Settings, build_worker
from memory import MemoryStore
from tests.integrations.openai_session.openai_model import provider_on
from tests.integrations.openai_session.openai_workflows import ConversationWorkflow


async def main() -> None:
    model = AsyncOpenAI(
        base_url=os.environ["CAIRN_TEST_MODEL_URL"], api_key="sk-test", max_retries=0
    )
    plugin = OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=4)),
        model_provider=provider_on(model),
    )
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ["TEMPORAL_NAMESPACE"], plugins=[plugin]
    )
    settings = Settings(
        task_queue=os.environ["CAIRN_TASK_QUEUE"], memory_url=os.environ["CAIRN_MEMORY_URL"]
    )
    async with await MemoryStore.open(settings.memory_url) as store:
        await build_worker(client, store, settings, workflows=[ConversationWorkflow]).run()


if __name__ == "__main__":
    import agents

    agents.set_tracing_disabled(True)
    asyncio.run(main())
