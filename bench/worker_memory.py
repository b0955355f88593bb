"""Worker memory over many steps: resident set size after 1,000 steps against after 10,000.

The production worker (`cairn.runtime.build_worker`) runs in this process on a SQLite store and
a fresh dev server; chains of `bench.steps.chain_spec` agent steps (scripted model, context
read from memory, exactly-once commit) run ``concurrency`` at a time. After a warm-up, the
process's resident set size is read from ``/proc/self/statm`` (after a garbage collection) at
every checkpoint. The client and the bench's own bookkeeping live in the same process; they hold
nothing per step but the finished handles' results, which are dropped.

Target: RSS after 10,000 steps at most 1.1x RSS after 1,000 (quick: 200 and 2,000).
"""

from __future__ import annotations

import asyncio
import gc
import os

from temporalio.client import Client

from activities import AgentRegistry
from bench.databases import scratch
from bench.devserver import cairn_worker, dev_server, task_queue
from bench.runner import Profile, Row, benchmark
from bench.steps import STEPS, register, sides
from memory import MemoryStore

TARGET = 1.1
CONCURRENCY = 10
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident set size now (not the peak), after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


async def run_steps(client: Client, queue: str, steps: int) -> None:
    """``steps`` agent steps as chains of `STEPS`, `CONCURRENCY` chains at a time."""
    (cairn,) = sides(client, {"cairn": queue})
    for _ in range(steps // (STEPS * CONCURRENCY)):
        await asyncio.gather(*(cairn.run_one() for _ in range(CONCURRENCY)))


@benchmark("worker_memory", "Worker RSS after 1,000 and 10,000 agent steps")
async def worker_memory(profile: Profile) -> list[Row]:
    marks = (1_000, 2_500, 5_000, 10_000) if profile.full else (200, 1_000, 2_000)
    rows: list[Row] = []
    with scratch(profile, "sqlite", "rss") as db:
        store = await MemoryStore.open(db.url, pool_size=16)
        try:
            async with dev_server() as client:
                queue = task_queue("rss")
                async with cairn_worker(client, store, queue, register(AgentRegistry())):
                    await run_steps(client, queue, STEPS * CONCURRENCY)  # warm-up
                    done = 0
                    for mark in marks:
                        await run_steps(client, queue, mark - done)
                        done = mark
                        rows.append({"steps": mark, "rss_mb": rss_bytes() / 2**20})
        finally:
            await store.close()
    first = rows[0]["rss_mb"]
    for row in rows:
        row["x_first"] = row["rss_mb"] / first
        row["target_met"] = row["x_first"] <= TARGET if row is rows[-1] else None
    return rows
