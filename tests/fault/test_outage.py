"""Scenarios 4 and 10: the memory database goes away for ten seconds while workflows run.

PostgreSQL goes away behind a TCP proxy (`Proxy.down`: every connection cut, new ones refused;
the machine's PostgreSQL is shared, so it is never stopped itself); a SQLite file is held under
an exclusive lock by another process. Meanwhile chains of agent steps run on a worker and
randomized multi-key transactions (`Transactions`) run against the same database. Afterwards
every chain has completed with each step committed once, and the history checker finds no
lost, duplicated or half-applied transaction and no read of a value never written.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHandle

from memory import MemoryStore
from tests.fault.checker import History
from tests.fault.load import Transactions
from tests.fault.proxy import Proxy
from tests.fault.runs import activity_attempts, failure, spec, start_chain, step
from tests.workflows.harness import Team
from workflows.chain import ChainWorkflow

pytestmark = pytest.mark.fault

OUTAGE = 10.0
STEPS = 40


@asynccontextmanager
async def postgres_down(proxy: Proxy) -> AsyncIterator[None]:
    with proxy.down():
        yield


@asynccontextmanager
async def sqlite_locked(path: str) -> AsyncIterator[None]:
    """Another process holds the file's write lock (``BEGIN EXCLUSIVE``) until the block ends."""
    locker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('COMMIT')\n",
        path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert locker.stdout is not None and locker.stdin is not None
    try:
        assert await asyncio.wait_for(locker.stdout.readline(), 30) == b"locked\n"
        yield
    finally:
        locker.stdin.write(b"release\n")
        await locker.stdin.drain()
        await asyncio.wait_for(locker.wait(), 30)


def failure_types(failure: Failure) -> list[str]:
    """The application failure types along a failure's cause chain."""
    types = []
    while failure.ByteSize():
        types.append(failure.application_failure_info.type)
        failure = failure.cause
    return types


async def retried_for_unavailable(handle: WorkflowHandle[Any, Any]) -> int:
    """How many activities of the run succeeded only on a retry after `StoreUnavailable`."""
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt > 1
        # (Temporal may wrap a long failure in one saying so; the type is in its cause.)
        and "StoreUnavailable"
        in failure_types(e.activity_task_started_event_attributes.last_failure)
    )


async def outage_while_running(
    team: Team, url: str, outage: Callable[[], AbstractAsyncContextManager[None]]
) -> tuple[Transactions, int]:
    """Chains and transactions before, during and after ``outage``; both checked afterwards."""
    chain = spec(
        *(step("echo", f"task {i}", name=f"s{i}") for i in range(STEPS)), agents=("echo=scripted",)
    )
    stores = [await MemoryStore.open(url, pool_size=4) for _ in range(2)]
    load = Transactions(stores)
    try:
        async with team.worker():
            chains = [await start_chain(team.client, team.task_queue, chain) for _ in range(3)]
            running = asyncio.create_task(load.run())
            await asyncio.sleep(1)
            async with outage():
                progress = [await c.query(ChainWorkflow.progress) for c in chains]
                await asyncio.sleep(OUTAGE)
            assert any(p.done < STEPS for p in progress), "the chains ended before the outage"
            await asyncio.sleep(2)
            load.stop.set()
            await asyncio.wait_for(running, 30)
            results = [await asyncio.wait_for(c.result(), 60) for c in chains]
        await load.check(stores[0])
        for handle, result in zip(chains, results, strict=True):
            history = History()
            for i in range(STEPS):
                history.record(f"s{i}", "ok")
            commits = await team.step_commits(handle.id)
            history.check(name for name, found in commits.items() for _ in found)
            assert [s.step for s in result.steps] == [f"s{i}" for i in range(STEPS)]
        retried = sum([await retried_for_unavailable(c) for c in chains])
    finally:
        for s in stores:
            await s.close()
    assert load.history.count("ok") > 50
    return load, retried


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_postgres_down_ten_seconds(team: Team, postgres_schema_url: str) -> None:
    proxy = Proxy()
    await proxy.start()
    url = proxy.url(postgres_schema_url)
    store = await MemoryStore.open(url)
    team.store = store
    try:
        load, retried = await outage_while_running(team, url, lambda: postgres_down(proxy))
    finally:
        await store.close()
        await proxy.close()
    # The outage was felt, retried with backoff by Temporal (steps) and by the clients.
    assert retried >= 1 and load.unavailable > 0
    print(f"{retried} steps retried, {load.replays} commits found applied on a retry")


async def test_sqlite_locked_by_another_process_ten_seconds(team: Team, sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    load, retried = await outage_while_running(team, sqlite_url, lambda: sqlite_locked(path))
    # Writers queue for the lock (busy_timeout) rather than fail: no caller saw an error.
    assert load.unavailable == 0 and retried == 0
    assert load.slowest > OUTAGE / 2


@pytest.mark.postgres
async def test_a_database_error_retrying_cannot_fix_fails_fast(
    team: Team, postgres_schema_url: str
) -> None:
    await (await MemoryStore.open(postgres_schema_url)).close()  # migrated; then read-only
    read_only = f"{postgres_schema_url}%20-cdefault_transaction_read_only%3Don"
    store = await MemoryStore.open(read_only, migrate=False)
    team.store = store
    try:
        async with team.worker():
            handle = await start_chain(
                team.client, team.task_queue, spec(step("echo", "hi"), agents=("echo=scripted",))
            )
            error = await failure(handle)
    finally:
        await store.close()
    assert error.type == "DatabaseError" and error.non_retryable
    assert "read-only transaction" in str(error) and "[parameters" not in str(error)
    assert await activity_attempts(handle) == [1]
