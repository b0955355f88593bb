"""An OpenAI Agents agent on Temporal with a `CairnSession`: its worker process is SIGKILLed in
the middle of a turn, another finishes the run, and every session item is written once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider, openai_completion
from tests.integrations.openai_session.openai_model import last_messages
from tests.integrations.openai_session.openai_workflows import Conversation, ConversationWorkflow
from tests.workflows.harness import wait_until

pytestmark = pytest.mark.fault
ROOT = Path(__file__).parents[3]


@asynccontextmanager
async def worker_process(
    client: Client, queue: str, memory_url: str, model_url: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "CAIRN_TASK_QUEUE": queue,
        "CAIRN_MEMORY_URL": memory_url,
        "CAIRN_TEST_MODEL_URL": model_url,
    }
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integrations.openai_session.openai_worker",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)


async def test_a_killed_worker_loses_no_item_and_writes_none_twice(
    client: Client, provider: FakeProvider, tmp_path: Path
):
    queue, url = f"crash-{uuid.uuid4().hex[:8]}", f"sqlite:///{tmp_path / 'memory.db'}"
    held = threading.Event()
    provider.reply(200, openai_completion("San Francisco"))
    provider.reply_after(held, openai_completion("never delivered"))
    provider.reply(200, openai_completion("California"))
    conv = Conversation(
        tenant="acme", session_id="s-crash", prompts=["Which city?", "Which state?"]
    )
    model_url = f"{provider.url}/v1"
    async with worker_process(client, queue, url, model_url, tmp_path / "w1.log") as first:
        handle = await client.start_workflow(
            ConversationWorkflow.run,
            conv,
            id=f"crash-{uuid.uuid4()}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=90),
        )

        async def second_turn_in_flight() -> bool:
            return len(provider.requests) >= 2

        await wait_until(second_turn_in_flight, timeout=30)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    held.set()
    async with worker_process(client, queue, url, model_url, tmp_path / "w2.log"):
        replies = await handle.result()
    assert replies == ["San Francisco", "California"]
    assert len(provider.requests) == 3  # the killed turn's model call ran again, once
    sent = [m["content"] for m in last_messages(provider) if m["role"] != "system"]
    assert sent == ["Which city?", "San Francisco", "Which state?"]
    async with await MemoryStore.open(url) as store:
        rows = await store.read_stream(("acme", "session", "s-crash"), "items")
    roles = [row.item.get("role") for row in rows if isinstance(row.item, dict)]
    assert roles == ["user", "assistant", "user", "assistant"]
