"""A worker process dies in the middle of a chain; another finishes it, every step exactly once.

The workers are real ``python worker.py`` processes sharing one SQLite memory file; their agents
(tests/workflows/crash_agents.py) log each model call to a file, so calls are counted across
processes. A dead worker's activity is retried once its heartbeat timeout (5s) passes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from memory import MemoryStore
from tests.workflows.harness import TENANT, agent, history_events, step_commits, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import ChainResult, ChainSpec, Step
from workflows.steps import STEP_HEARTBEAT, STEP_RETRY

pytestmark = pytest.mark.fault
ROOT = Path(__file__).parents[2]


class Workers:
    """Starts ``python worker.py`` processes on one task queue and memory file."""

    def __init__(self, client: Client, tmp: Path) -> None:
        self.client, self.tmp = client, tmp
        self.calls, self.gate = tmp / "calls.log", tmp / "gate"
        self.task_queue = f"crash-{uuid.uuid4().hex[:8]}"
        self.url = f"sqlite:///{tmp / 'memory.db'}"
        self.count = 0

    @asynccontextmanager
    async def process(
        self, fault: str = "", **extra: str
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """A worker process; ``extra`` environment variables override the defaults.

        ``fault`` names fault points of tests/activities/fault_points.py, which is then loaded
        into the process as one more ``CAIRN_EXTENSIONS`` module.
        """
        self.count += 1
        extensions = extra.pop("CAIRN_EXTENSIONS", "tests.workflows.crash_agents")
        if fault:
            extensions += ",tests.activities.fault_points"
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": self.client.namespace,
            "CAIRN_TASK_QUEUE": self.task_queue,
            "CAIRN_MEMORY_URL": self.url,
            "CAIRN_EXTENSIONS": extensions,
            "CAIRN_TEST_FAULT": fault,
            "CAIRN_SHUTDOWN_GRACE": "1",
            "CAIRN_TEST_CALL_LOG": str(self.calls),
            "CAIRN_TEST_GATE": str(self.gate),
            **extra,
        }
        log = (self.tmp / f"worker-{self.count}.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
            log.close()

    def log_lines(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def worker_logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))


@pytest.fixture
def workers(client: Client, tmp_path: Path) -> Workers:
    return Workers(client, tmp_path)


def chain(*steps: Step) -> ChainSpec:
    return ChainSpec(
        name="crashy",
        tenant=TENANT,
        agents=(agent("counted"), agent("gated", "python:gated")),
        nodes=steps,
    )


def counted(name: str) -> Step:
    return Step(agent="counted", name=name, task=name)


async def started_attempts(
    handle: WorkflowHandle[Any, Any], summary: Callable[[str], bool]
) -> list[int]:
    """Attempt numbers of the activity starts whose scheduled event's summary matches."""
    events = (await handle.fetch_history()).events
    convert = pydantic_data_converter.payload_converter
    wanted = {
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and summary(convert.from_payloads([e.user_metadata.summary])[0])
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in wanted
    ]


async def test_crash_right_after_a_commit_does_not_repeat_the_step(workers: Workers) -> None:
    spec = chain(counted("s1"), counted("s2"), counted("s3"))
    handle = await workers.client.start_workflow(
        ChainWorkflow.run, spec, id=f"crash-{uuid.uuid4().hex[:8]}", task_queue=workers.task_queue
    )
    async with workers.process(fault="crash_after_commit") as first:
        # It commits s1, then dies before Temporal hears of the step's completion.
        assert await asyncio.wait_for(first.wait(), 60) == 137, workers.worker_logs()
    assert workers.log_lines() == ["call s1"]
    async with workers.process():
        result: ChainResult = await asyncio.wait_for(handle.result(), 90)

    assert result.status == "completed"
    assert [s.step for s in result.steps] == ["s1", "s2", "s3"]
    # The model was called once per step, s1 included, though s1's activity ran twice.
    assert workers.log_lines() == ["call s1", "call s2", "call s3"]
    assert await started_attempts(handle, lambda s: s.endswith(": s1")) == [2]
    store = await MemoryStore.open(workers.url)
    try:
        commits = await step_commits(store, handle.id)
    finally:
        await store.close()
    assert {k: len(v) for k, v in commits.items()} == {"s1": 1, "s2": 1, "s3": 1}
    # s1's one commit is the first attempt's; the retry returned it instead of running again.
    assert commits["s1"][0].provenance.attempt == 1
    assert result.steps[0].commit_seq == commits["s1"][0].seq


async def test_sigkill_mid_step_and_a_new_worker_finishes_the_chain(workers: Workers) -> None:
    spec = chain(
        counted("s1"), counted("s2"), Step(agent="gated", name="s3", task="s3"), counted("s4")
    )
    handle = await workers.client.start_workflow(
        ChainWorkflow.run, spec, id=f"kill-{uuid.uuid4().hex[:8]}", task_queue=workers.task_queue
    )
    async with workers.process() as first:

        async def in_step_three() -> bool:
            progress = await handle.query(ChainWorkflow.progress)
            return progress.done == 2 and "start s3" in workers.log_lines()

        await wait_until(in_step_three, timeout=60)
        # The second worker starts while s3 runs, as a live worker would already be there.
        async with workers.process():
            os.kill(first.pid, signal.SIGKILL)
            assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
            workers.gate.touch()
            result: ChainResult = await asyncio.wait_for(handle.result(), 90)

    assert [s.step for s in result.steps] == ["s1", "s2", "s3", "s4"]
    # s3 was cut off mid-call and started again; nothing committed twice, no other call repeated.
    assert workers.log_lines() == [
        "call s1",
        "call s2",
        "start s3",
        "start s3",
        "call s3",
        "call s4",
    ]
    store = await MemoryStore.open(workers.url)
    try:
        commits = await step_commits(store, handle.id)
    finally:
        await store.close()
    assert {k: len(v) for k, v in commits.items()} == {"s1": 1, "s2": 1, "s3": 1, "s4": 1}
    assert [commits[s][0].provenance.attempt for s in ("s1", "s2", "s3", "s4")] == [1, 1, 2, 1]
    # Temporal noticed the dead worker by its missing heartbeats, and retried s3 only.
    retried = [
        e.activity_task_started_event_attributes
        for e in await history_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        if e.activity_task_started_event_attributes.attempt > 1
    ]
    assert len(retried) == 1
    timeout = retried[0].last_failure.timeout_failure_info.timeout_type
    assert timeout == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    # ...within its heartbeat timeout, the retry's backoff and a few seconds of dispatch (the
    # issue's target is 10 s) of s3 being scheduled, which came before the kill.
    scheduled = {
        e.event_id: e.event_time.ToDatetime()
        for e in await history_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    }
    events = await history_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    rerun = next(e for e in events if e.activity_task_started_event_attributes.attempt > 1)
    waited = rerun.event_time.ToDatetime() - scheduled[retried[0].scheduled_event_id]
    assert waited < STEP_HEARTBEAT + STEP_RETRY.initial_interval + timedelta(seconds=4), waited
