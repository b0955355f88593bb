"""Scenario 7: the worker gets SIGTERM while workflows wait on timers; a new worker resumes them.

Three chains wait for an approval with a timeout when their only worker process is told to
stop. It drains and exits cleanly. While no worker runs, two timers fire and a person answers
the third approval (the update waits for a worker). A new worker process finishes all three:
the timeouts' default and the person's decision are both recorded, and no step runs twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest

from memory import MemoryStore
from tests.fault.checker import History
from tests.fault.runs import start_chain
from tests.workflows.harness import run_ns, step_commits, wait_until
from tests.workflows.test_worker_crash import Workers, chain, counted
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, Decision

pytestmark = pytest.mark.fault

TIMEOUT = timedelta(seconds=5)


async def test_sigterm_while_waiting_on_timers_drains_and_a_new_worker_resumes(
    workers: Workers,
) -> None:
    # The first waits for a person (its timer would fire long after); the others time out.
    timeouts = [timedelta(minutes=1), TIMEOUT, TIMEOUT]
    handles = [
        await start_chain(
            workers.client,
            workers.task_queue,
            chain(counted(f"a{i}"), Approval(timeout=t, default="approve"), counted(f"b{i}")),
        )
        for i, t in enumerate(timeouts)
    ]
    async with workers.process() as first:

        async def all_waiting() -> bool:
            progress = [await h.query(ChainWorkflow.progress) for h in handles]
            return all(p.waiting_for == "approval" for p in progress)

        await wait_until(all_waiting, timeout=30)
        stopped = time.monotonic()
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 20) == 0, workers.worker_logs()
        drained = time.monotonic() - stopped
    # With no worker: a person decides one approval (the update waits for a worker)...
    deciding = asyncio.create_task(
        handles[0].execute_update(ChainWorkflow.decide, Decision(approve=True, by="alice"))
    )
    # ...and the other two timers fire.
    await asyncio.sleep(TIMEOUT.total_seconds())
    assert not deciding.done()
    async with workers.process():
        ack = await asyncio.wait_for(deciding, 30)
        results = [await asyncio.wait_for(h.result(), 30) for h in handles]

    assert drained < 10 and ack.approved
    assert all(r.status == "completed" for r in results)
    calls = Counter(workers.log_lines())
    assert calls == Counter(f"call {s}{i}" for s in "ab" for i in range(3))
    store = await MemoryStore.open(workers.url)
    try:
        decided = [(await store.get(run_ns(h.id), "approval:approval")).value for h in handles]
        for i, handle in enumerate(handles):
            history = History()
            history.record(f"a{i}", "ok")
            history.record(f"b{i}", "ok")
            commits = await step_commits(store, handle.id)
            history.check(name for name, found in commits.items() for _ in found)
    finally:
        await store.close()
    assert [d["by"] for d in decided] == ["alice", "timeout", "timeout"]  # type: ignore[index]
    assert all(d["approved"] for d in decided)  # type: ignore[index]
