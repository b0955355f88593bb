"""Concurrent writers: commits per second and lost updates, on one store or on several.

Each writer is an asyncio task committing sequentially. In the ``append`` workload every commit
appends ``{"w": writer, "j": n}`` to one shared key with ``merge="append"``; in ``counter``
every writer increments its own counter key with a reducer. At the end the stored value is
checked against the commits that were acknowledged: ``lost`` (must be 0) counts acknowledged
writes missing from it, ``dupes`` writes present twice.
"""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal

from pydantic import JsonValue

from bench.corpus import TENANT
from bench.databases import Backend, Database, backends, scratch
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore, MemoryStoreError, Provenance

Workload = Literal["append", "counter"]


def increment(current: JsonValue, new: JsonValue) -> JsonValue:
    """The counter reducer: add ``new`` to the current count."""
    assert isinstance(new, int) and (current is None or isinstance(current, int))
    return (current or 0) + new


@dataclass
class Tally:
    acked: list[tuple[int, int]] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


async def _writer(
    store: MemoryStore, w: int, n: int, ns: tuple[str, ...], workload: Workload, tally: Tally
) -> None:
    for j in range(n):
        start = time.perf_counter_ns()
        try:
            async with store.commit(
                key=f"{'/'.join(ns)}:{w}:{j}", provenance=Provenance(tenant=TENANT, agent=f"w{w}")
            ) as c:
                if workload == "append":
                    c.put(ns, "log", {"w": w, "j": j}, merge="append")
                else:
                    c.put(ns, f"count-{w}", 1, merge=increment)
        except MemoryStoreError as error:
            name = type(error).__name__
            tally.errors[name] = tally.errors.get(name, 0) + 1
            continue
        tally.latencies_ns.append(time.perf_counter_ns() - start)
        tally.acked.append((w, j))


async def _check(
    store: MemoryStore, ns: tuple[str, ...], workload: Workload, writers: int, tally: Tally
) -> tuple[int, int]:
    """``(lost, dupes)`` of the acknowledged writes against what the store holds."""
    if workload == "append":
        log = (await store.get(ns, "log")).value
        assert isinstance(log, list)
        stored = [(d["w"], d["j"]) for d in log if isinstance(d, dict)]
        return len(set(tally.acked) - set(stored)), len(stored) - len(set(stored))
    lost = dupes = 0
    for w in range(writers):
        expected = sum(1 for a in tally.acked if a[0] == w)
        count = (await store.get(ns, f"count-{w}")).value if expected else 0
        assert isinstance(count, int)
        lost, dupes = lost + max(0, expected - count), dupes + max(0, count - expected)
    return lost, dupes


async def run_config(
    db: Database,
    shared: MemoryStore,
    *,
    writers: int,
    separate: bool,
    workload: Workload,
    total: int,
) -> Row:
    """One configuration: ``writers`` tasks making about ``total`` commits between them."""
    ns = (TENANT, "conc", f"{workload}-{writers}-{'sep' if separate else 'one'}")
    per_writer = math.ceil(total / writers)
    tally = Tally()
    async with AsyncExitStack() as stack:
        stores = [shared] * writers
        if separate:
            stores = [
                await stack.enter_async_context(await MemoryStore.open(db.url, migrate=False))
                for _ in range(writers)
            ]
        start = time.perf_counter()
        await asyncio.gather(
            *(_writer(stores[w], w, per_writer, ns, workload, tally) for w in range(writers))
        )
        elapsed = time.perf_counter() - start
    lost, dupes = await _check(shared, ns, workload, writers, tally)
    ordered = sorted(tally.latencies_ns) or [0]
    return {
        "backend": db.backend,
        "workload": workload,
        "writers": writers,
        "stores": f"{writers} separate" if separate else "1 shared",
        "commits": len(tally.acked),
        "seconds": elapsed,
        "commits_s": len(tally.acked) / elapsed,
        "p50_ms": median(ordered) / 1e6,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1e6,
        "errors": sum(tally.errors.values()),
        "error_kinds": ", ".join(sorted(tally.errors)) or None,
        "lost": lost,
        "dupes": dupes,
        "no_lost_updates": lost == 0 and dupes == 0 and not tally.errors,
    }


def _configs(profile: Profile) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [
        {"writers": n, "separate": False, "workload": "append"} for n in (1, 8, 32)
    ]
    configs += [
        {"writers": n, "separate": True, "workload": "append"}
        for n in ((8, 32) if profile.full else (8,))
    ]
    configs.append({"writers": 32, "separate": False, "workload": "counter"})
    return configs


async def measure(profile: Profile, backend: Backend) -> list[Row]:
    total = 1000 if profile.full else 160
    rows: list[Row] = []
    with scratch(profile, backend, "conc") as db:
        async with await MemoryStore.open(db.url) as store:
            for config in _configs(profile):
                rows.append(await run_config(db, store, total=total, **config))
    return rows


@benchmark("concurrency", "Concurrent writers: commits/s and lost updates")
async def concurrency(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        rows += await measure(profile, backend)
    return rows
