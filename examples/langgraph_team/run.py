"""Run the example offline: ``python -m examples.langgraph_team.run``.

That starts a local dev server and uses SQLite. ``... run worker`` runs one worker process
instead, configured by ``TEMPORAL_ADDRESS``, ``TEAM_TASK_QUEUE`` and ``CAIRN_MEMORY_URL``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.langgraph import LangGraphPlugin
from temporalio.worker import Worker

from cairn.devserver import start_local
from cairn.integrations.langgraph import CairnStore
from examples.langgraph_team.graph import REPORTS, TALLY, build, use_store
from examples.langgraph_team.workflow import TeamWorkflow
from memory import MemoryStore

ROOT = ("acme", "langgraph")


def team_worker(client: Client, task_queue: str) -> Worker:
    """A worker running the team workflow, its graph's nodes as activities."""
    plugin = LangGraphPlugin(graphs={"team": build()})
    return Worker(client, task_queue=task_queue, workflows=[TeamWorkflow], plugins=[plugin])


async def worker_process() -> None:
    """One worker, until killed."""
    client = await Client.connect(
        os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"),
        namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
        data_converter=pydantic_data_converter,
    )
    async with await MemoryStore.open(os.environ["CAIRN_MEMORY_URL"]) as memory:
        use_store(CairnStore(memory, namespace=ROOT))
        async with team_worker(client, os.environ.get("TEAM_TASK_QUEUE", "langgraph-team")):
            print("ready", flush=True)
            await asyncio.Event().wait()


async def demo() -> None:
    """Two workflows on a local dev server, sharing one store namespace."""
    env = await start_local()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            memory = await MemoryStore.open(f"sqlite:///{Path(tmp) / 'memory.db'}")
            store = CairnStore(memory, namespace=ROOT)
            use_store(store)
            queue = f"langgraph-team-{uuid.uuid4().hex[:6]}"
            async with team_worker(env.client, queue):
                notes = await asyncio.gather(
                    *(
                        env.client.execute_workflow(
                            TeamWorkflow.run, topic, id=f"team-{topic}-{queue}", task_queue=queue
                        )
                        for topic in ("pricing", "churn")
                    )
                )
            for topic, topic_notes in zip(("pricing", "churn"), notes, strict=True):
                report = await store.aget(REPORTS, topic)
                print(topic, topic_notes, "report:", report.value if report else None)
            tally = await store.aget(TALLY, "node-runs")
            print("node runs counted once each:", tally.value if tally else None)
            store.close()
            await memory.close()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(worker_process() if sys.argv[1:] == ["worker"] else demo())
