"""End to end: a LangGraph team under temporalio-langgraph, two workflows sharing one
`CairnStore` namespace, and the worker SIGKILLed mid-node. A second worker finishes both
workflows; every node's writes landed exactly once (examples/langgraph_team)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from cairn.integrations.langgraph import CairnStore
from examples.langgraph_team.graph import FINDINGS, REPORTS, TALLY
from examples.langgraph_team.run import ROOT as STORE_ROOT
from examples.langgraph_team.workflow import TeamWorkflow
from memory import MemoryStore
from tests.workflows.harness import history_events, wait_until

pytestmark = pytest.mark.fault
ROOT = Path(__file__).parents[3]


@asynccontextmanager
async def worker(
    client: Client, tmp: Path, queue: str, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A ``python -m examples.langgraph_team.run worker`` process, ready to poll."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examples.langgraph_team.run",
        "worker",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
            "TEAM_TASK_QUEUE": queue,
            "CAIRN_MEMORY_URL": f"sqlite:///{tmp / 'memory.db'}",
            "TEAM_LOG": str(tmp / "team.log"),
            **env,
        },
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_worker_killed_mid_node_loses_and_duplicates_nothing(
    client: Client, tmp_path: Path
) -> None:
    queue = f"team-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "team.log"

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    async with worker(client, tmp_path, queue, TEAM_HOLD_WRITER="a") as first:
        handles = [
            await client.start_workflow(
                TeamWorkflow.run, topic, id=f"team-{topic}-{queue}", task_queue=queue
            )
            for topic in ("a", "b")
        ]

        async def writers_ran() -> bool:
            return {"writer a attempt 1", "writer b attempt 1"} <= set(lines())

        # Writer "a" has committed its report and its tally bump and now hangs mid-node.
        await wait_until(writers_ran, timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    async with worker(client, tmp_path, queue):
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)

    assert results == [["researched a", "wrote a"], ["researched b", "wrote b"]]
    assert "writer a attempt 2" in lines()
    # The writer of "a" ran twice: killed, then retried on the second worker (a history
    # records the start of an activity's last attempt only) ...
    started = await history_events(handles[0], EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert [e.activity_task_started_event_attributes.attempt for e in started] == [1, 2]

    async with await MemoryStore.open(f"sqlite:///{tmp_path / 'memory.db'}") as memory:
        store = CairnStore(memory, namespace=STORE_ROOT)
        # ... yet each node run is counted once: 2 workflows x 2 nodes, four versions in all.
        tally = await store.aget(TALLY, "node-runs")
        assert tally is not None and tally.value == {"n": 4} and tally.version == 4
        report_ns = store.labels.to_cairn(REPORTS)
        reports = {t: await memory.history(report_ns, t) for t in ("a", "b")}
        assert {t: len(h) for t, h in reports.items()} == {"a": 1, "b": 1}
        assert reports["a"][0].provenance is not None
        assert reports["a"][0].provenance.attempt == 1  # the retry replayed it
        found = await store.asearch(FINDINGS, limit=10)
        assert sorted(i.key for i in found) == ["a", "b"]
        store.close()
