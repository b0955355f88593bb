"""Scenarios 8 and 9: many writers on one key, on both backends; two processes on one SQLite file.

Writers record what they saw in a `History`; the checker then compares it with what is stored.
Conflicts may surface only as `ConflictError` (and only to compare-and-set writers, who retry);
nothing else, "database is locked" least of all, may reach a caller.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from pathlib import Path

import pytest

from memory import ConflictError, MemoryStore
from tests.fault.checker import History
from tests.fault.sqlite_writer import NS

pytestmark = pytest.mark.fault

ROOT = Path(__file__).parents[2]
WRITERS = 50
CAS_ATTEMPTS = 500
SQLITE_SECONDS = 20
# thousands of commits of two processes


async def test_fifty_appenders_and_fifty_cas_writers_on_one_key(store_url: str) -> None:
    # Two stores, as two worker processes would have, each with its own connections.
    stores = [await MemoryStore.open(store_url, pool_size=20) for _ in range(2)]
    try:
        async with stores[0].commit() as c:
            c.put(NS, "board", [])
        history = History()
        conflicts = 0

        async def appender(i: int) -> None:
            op = f"append-{i}"
            async with stores[i % 2].commit(key=op) as c:
                c.put(NS, "board", op, merge="append")  # merged under the lock: no conflict
                c.append(NS, "log", op)
            history.record(op, "ok")

        async def cas_writer(i: int) -> None:
            nonlocal conflicts
            op, store = f"cas-{i}", stores[i % 2]
            for _ in range(CAS_ATTEMPTS):
                board = await store.get(NS, "board")
                for item in board.value:
                    history.read(item)
                try:
                    async with store.commit(key=op) as c:
                        c.put(NS, "board", [*board.value, op], expected_version=board.version)
                        c.append(NS, "log", op)
                except ConflictError:
                    conflicts += 1
                    await asyncio.sleep(random.random() / 100)
                    continue
                history.record(op, "ok")
                return
            history.record(op, "failed")

        await asyncio.gather(
            *(appender(i) for i in range(WRITERS)), *(cas_writer(i) for i in range(WRITERS))
        )
        board = await stores[1].get(NS, "board")
        log = await stores[1].tail(NS, "log", 1000)
        versions = await stores[1].history(NS, "board", limit=1000)
    finally:
        for s in stores:
            await s.close()

    assert history.count("ok") == 2 * WRITERS, "a writer gave up"
    history.check(board.value)
    history.check(item.item for item in log)
    assert [i.seq for i in log] == list(range(1, 2 * WRITERS + 1))
    # Every successful write made one version; each version extends the one before.
    assert board.version == 2 * WRITERS + 1 == len(versions)
    for older, newer in itertools.pairwise(versions):
        assert newer.value[: len(older.value)] == older.value
    print(f"{conflicts} conflicts retried")


async def test_two_processes_write_one_sqlite_file_and_no_caller_sees_a_lock(
    sqlite_url: str,
) -> None:
    store = await MemoryStore.open(sqlite_url)
    async with store.commit() as c:
        c.put(NS, "counter", 0)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fault.sqlite_writer",
            sqlite_url,
            name,
            str(SQLITE_SECONDS),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("p1", "p2")
    ]
    history = History()
    try:
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            assert await asyncio.wait_for(p.stdout.readline(), 30) == b"ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        # Meanwhile this process reads: it may only ever see values some writer wrote.
        deadline = time.monotonic() + SQLITE_SECONDS
        reads = 0
        while time.monotonic() < deadline:
            for item in await store.tail(NS, "log", 20):
                history.read(item.item)
            reads += 1
        outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        log = await store.tail(NS, "log", 10_000)
        counter = await store.get(NS, "counter")
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await store.close()

    errors = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
        for line in out.decode().splitlines():
            record = json.loads(line)
            history.record(record["op"], record["outcome"])
            if record["error"]:
                errors.append(record["error"])
    assert errors == [], errors[:5]
    assert "locked" not in "".join(e.decode() for _, e in outputs)
    history.check(item.item for item in log)
    assert counter.value == history.count("ok") == len(log)
    assert history.count("ok") > 100 and reads > 10
    print(f"{history.count('ok')} commits by two processes, {reads} reads")
