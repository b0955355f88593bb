"""Concurrency: compare-and-set races, exactly-once commits across stores, SQLite multi-process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import memory
from memory import ConflictError, InvalidInput, MemoryStore
from memory.migrations import SCHEMA_VERSION
from tests.memory.conftest import NS, put

ATTEMPTS = 50


async def test_concurrent_compare_and_set_loses_no_update(
    open_store: Callable[..., Awaitable[MemoryStore]],
) -> None:
    # One connection per attempt, so reads and writes really interleave in the database.
    store = await open_store(pool_size=ATTEMPTS)
    await put(store, NS, "counter", 0)

    async def attempt(i: int) -> bool:
        # Unequal amounts of work first, so that reads land before, between and after commits.
        for _ in range(i % 8):
            await store.get(NS, "counter")
        current = await store.get(NS, "counter")
        try:
            async with store.commit() as c:
                c.put(NS, "counter", current.value + 1, expected_version=current.version)
                c.append(NS, "applied", current.version)
        except ConflictError as error:
            assert error.expected == current.version
            assert error.actual is not None and error.actual > current.version
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS)))
    successes = sum(outcomes)
    assert successes >= 1
    final = await store.get(NS, "counter")
    assert final.value == successes
    assert final.version == successes + 1
    history = await store.history(NS, "counter")
    assert [h.value for h in history] == list(range(successes + 1))
    # A failed attempt left nothing behind, not even its stream append.
    applied = await store.tail(NS, "applied", 1000)
    assert sorted(i.item for i in applied) == list(range(1, successes + 1))


async def test_one_commit_key_applies_once_across_two_stores(
    open_store: Callable[..., Awaitable[MemoryStore]],
) -> None:
    first, second = await open_store(), await open_store()
    rounds = 10
    for n in range(rounds):
        # Both bodies start (neither sees a stored commit) before either applies.
        both_inside = asyncio.Barrier(2)

        async def step(store: MemoryStore, who: str, n: int = n, gate=both_inside) -> bool:
            async with store.commit(key=f"wf/run/{n}") as c:
                assert not c.replayed
                await gate.wait()
                c.put(NS, f"out-{n}", who)
                c.append(NS, "log", {"n": n, "who": who})
                c.result = who
            assert c.result in ("first", "second")
            return c.replayed

        replayed = await asyncio.gather(step(first, "first"), step(second, "second"))
        assert sorted(replayed) == [False, True]
        winner = "first" if not replayed[0] else "second"
        assert (await first.get(NS, f"out-{n}")).value == winner
        assert (await second.get_commit(f"wf/run/{n}")).result == winner
    assert len(await first.history(NS, "out-0")) == 1
    log = await first.tail(NS, "log", 1000)
    assert sorted(i.item["n"] for i in log) == list(range(rounds))


WRITER = """
import asyncio, sys
from memory import MemoryStore

async def main(url, name, tasks, commits):
    store = await MemoryStore.open(url)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent starts every writer at once

    async def writer(t):
        for i in range(commits):
            async with store.commit(key=f"{name}/{t}/{i}") as c:
                c.put(("acme", "shared"), "all", f"{name}/{t}/{i}", merge="append")
                c.put(("acme", "shared"), f"count-{name}-{t}", i + 1)
                c.append(("acme", "shared"), "log", f"{name}/{t}/{i}")

    await asyncio.gather(*(writer(t) for t in range(tasks)))
    await store.close()
    print("done", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


@pytest.mark.timeout(120)
async def test_sqlite_writers_in_tasks_and_processes_lose_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    tasks, commits = 6, 20
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = str(Path(memory.__file__).resolve().parent.parent)
    store: MemoryStore | None = None
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            sqlite_url,
            name,
            str(tasks),
            str(commits),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=root,
            env={"PYTHONPATH": root, "PATH": ""},
        )
        for name in ("p1", "p2")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), 60)
            assert line == b"ready\n", (line, await p.stderr.read() if p.stderr else b"")
        # The processes created and migrated the file, racing each other; this store finds it so.
        store = await MemoryStore.open(sqlite_url)
        assert await store.setup() == (SCHEMA_VERSION, SCHEMA_VERSION)

        async def writer(t: int) -> None:
            for i in range(commits):
                async with store.commit(key=f"main/{t}/{i}") as c:
                    c.put(("acme", "shared"), "all", f"main/{t}/{i}", merge="append")
                    c.put(("acme", "shared"), f"count-main-{t}", i + 1)
                    c.append(("acme", "shared"), "log", f"main/{t}/{i}")

        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        await asyncio.gather(*(writer(t) for t in range(tasks)))
        results = [await asyncio.wait_for(p.communicate(), 90) for p in procs]
        await _check_totals(store, procs, results, tasks, commits)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        if store is not None:
            await store.close()


async def _check_totals(
    store: MemoryStore,
    procs: list[asyncio.subprocess.Process],
    results: list[tuple[bytes, bytes]],
    tasks: int,
    commits: int,
) -> None:
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.endswith(b"done\n")
        assert b"locked" not in err and b"Unavailable" not in err
    names = [
        f"{w}/{t}/{i}" for w in ("main", "p1", "p2") for t in range(tasks) for i in range(commits)
    ]
    shared = ("acme", "shared")
    everything = await store.get(shared, "all")
    assert sorted(everything.value) == sorted(names)
    assert everything.version == len(names)
    log = await store.tail(shared, "log", 10_000)
    assert [i.seq for i in log] == list(range(1, len(names) + 1))
    assert sorted(i.item for i in log) == sorted(names)
    for w in ("main", "p1", "p2"):
        for t in range(tasks):
            counter = await store.get(shared, f"count-{w}-{t}")
            assert (counter.value, counter.version) == (commits, commits)
    assert {r.key for r in await store.list_commits(limit=1000)} == set(names)


async def test_concurrent_forks_into_one_destination_copy_once(
    open_store: Callable[..., Awaitable[MemoryStore]],
) -> None:
    first, second = await open_store(), await open_store()
    src = ("acme", "session", "src")
    async with first.commit() as c:
        for i in range(20):
            c.put(src, f"k{i}", i)
        c.append(src, "log", "only once")
    for n in range(8):
        dst = ("acme", "session", f"copy-{n}")
        outcomes = await asyncio.gather(
            first.fork(src, dst), second.fork(src, dst), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failures) == 1, outcomes
        assert isinstance(failures[0], InvalidInput) and "not empty" in str(failures[0])
        assert [i.item for i in await first.tail(dst, "log")] == ["only once"]
        assert (await first.get(dst, "k0")).version == 1


async def test_commit_sequence_numbers_follow_commit_order(
    open_store: Callable[..., Awaitable[MemoryStore]],
) -> None:
    # Time travel and "commits after seq N" are only repeatable if a commit with a lower
    # sequence number can never become visible after one with a higher number.
    store = await open_store(pool_size=10)

    async def step(i: int) -> int:
        async with store.commit() as c:
            for j in range(i % 5):
                c.put(NS, f"k{i}-{j}", j)
            c.append(NS, "log", i)
        assert c.seq is not None
        return c.seq

    seqs = await asyncio.gather(*(step(i) for i in range(40)))
    items = await store.tail(NS, "log", 100)
    assert [i.commit_seq for i in items] == sorted(seqs)
