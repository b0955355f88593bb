"""Scenario 3: the Temporal server is killed (SIGKILL) and restarted on the same database file.

One chain is in the middle of an agent step (the ``gated`` agent holds it open), another
waits on an approval's timer, when the dev server dies. The worker process keeps running and
reconnects when the server is back; the step completes, the timer fires, both chains finish,
and memory holds every step exactly once with no model call repeated.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from memory import MemoryStore
from tests.fault.checker import History
from tests.fault.runs import start_chain
from tests.fault.servers import DevServer
from tests.workflows.harness import run_ns, step_commits, wait_until
from tests.workflows.test_worker_crash import Workers, chain, counted
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, Step

pytestmark = pytest.mark.fault

TIMER = timedelta(seconds=6)


@pytest.mark.timeout(150)
async def test_server_killed_during_an_activity_and_a_timer(
    dev_server: Callable[..., Awaitable[DevServer]], tmp_path: Path
) -> None:
    server = await dev_server()
    client = await server.client()
    workers = Workers(client, tmp_path)
    in_step = chain(counted("s1"), Step(agent="gated", name="s2", task="s2"), counted("s3"))
    on_timer = chain(counted("t1"), Approval(timeout=TIMER, default="approve"), counted("t2"))
    async with workers.process() as worker:
        a = await start_chain(client, workers.task_queue, in_step)
        b = await start_chain(client, workers.task_queue, on_timer)

        async def both_waiting() -> bool:
            progress = await b.query(ChainWorkflow.progress)
            return "start s2" in workers.log_lines() and progress.waiting_for == "approval"

        await wait_until(both_waiting, timeout=30)
        await server.kill()
        await asyncio.sleep(2)
        await server.start()
        workers.gate.touch()  # the step in flight finishes only now, against the new server
        client = await server.client()
        results = [
            await asyncio.wait_for(client.get_workflow_handle(h.id).result(), 60) for h in (a, b)
        ]
        assert worker.returncode is None, "the worker must ride out the outage"
        worker.send_signal(signal.SIGTERM)

    assert results[0]["status"] == "completed" and results[1]["status"] == "completed"
    calls = Counter(workers.log_lines())
    assert calls == Counter(["call s1", "start s2", "call s2", "call s3", "call t1", "call t2"])
    store = await MemoryStore.open(workers.url)
    try:
        for handle, steps in ((a, ("s1", "s2", "s3")), (b, ("t1", "t2"))):
            history = History()
            for s in steps:
                history.record(s, "ok")
            commits = await step_commits(store, handle.id)
            history.check(name for name, found in commits.items() for _ in found)
        decision = await store.get(run_ns(b.id), "approval:approval")
    finally:
        await store.close()
    assert decision.value == {"approved": True, "by": "timeout", "edited": False}
