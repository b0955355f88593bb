"""LangGraph on Cairn memory against LangGraph's own persistence, in one run each.

``langgraph_checkpoints``: the chain of `bench.langgraph_side` (planner -> researcher ->
writer, a growing conversation on one thread) run 100 times on ``SqliteSaver`` and on
`CairnSaver` (SQLite), alternating; with PostgreSQL, also ``PostgresSaver`` against
`CairnSaver` on PostgreSQL. Storage after the runs (SQLite: file plus WAL after a checkpoint;
PostgreSQL: the schema's total relation size) and time per step.

``langgraph_store``: the same operations on LangGraph's ``AsyncSqliteStore`` and
``AsyncPostgresStore`` and on `CairnStore` on the same backend: single puts, gets, filtered
searches (limit 10) and namespace listings, sequentially, as operations per second.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from statistics import median
from typing import Any

from bench.databases import Backend, Database, backends, scratch
from bench.langgraph_side import sqlite_bytes
from bench.multiagent import AGENTS, langgraph_chain, langgraph_input
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore

RUNS = 100


def _schema_url(db: Database) -> str:
    """A libpq URL whose connections use ``db``'s schema."""
    assert db.conninfo is not None and db.schema is not None
    sep = "&" if "?" in db.conninfo else "?"
    return f"{db.conninfo}{sep}options=-csearch_path%3D{db.schema}"


def _pg_bytes(db: Database) -> int:
    with db.postgres() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (db.schema,),
        ).fetchone()
    assert row is not None
    return int(row[0])


@asynccontextmanager
async def _savers(db: Database, lg_db: Database) -> AsyncIterator[dict[str, Any]]:
    """LangGraph's saver on ``lg_db`` (first) and `CairnSaver` on ``db``."""
    from cairn.integrations.langgraph import CairnSaver

    memory = await MemoryStore.open(db.url)
    cairn = CairnSaver(memory, namespace=("bench", "checkpoints"))
    try:
        if lg_db.path is not None:
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(lg_db.path, check_same_thread=False)
            try:
                yield {"SqliteSaver": SqliteSaver(conn), "CairnSaver": cairn}
            finally:
                conn.close()
        else:
            from langgraph.checkpoint.postgres import PostgresSaver

            with PostgresSaver.from_conn_string(_schema_url(lg_db)) as saver:
                saver.setup()
                yield {"PostgresSaver": saver, "CairnSaver": cairn}
    finally:
        cairn.close()
        await memory.close()


def _bytes(db: Database) -> int:
    return sqlite_bytes(db.path) if db.path is not None else _pg_bytes(db)


async def _checkpoints(profile: Profile, backend: Backend) -> list[Row]:
    times: dict[str, list[float]] = {}
    with scratch(profile, backend, "lgc") as db, scratch(profile, backend, "lg") as lg_db:
        async with _savers(db, lg_db) as savers:
            graphs = {name: langgraph_chain(s) for name, s in savers.items()}
            times = {name: [] for name in graphs}
            config = {"configurable": {"thread_id": f"session-{uuid.uuid4().hex[:6]}"}}
            for turn in range(1, RUNS + 1):
                order = list(graphs.items())
                for name, graph in order if turn % 2 else order[::-1]:
                    t0 = time.perf_counter()
                    result = await asyncio.to_thread(graph.invoke, langgraph_input(turn), config)
                    times[name].append((time.perf_counter() - t0) / len(AGENTS))
                    assert len(result["messages"]) == 4 * turn
        baseline = next(iter(times))
        sizes = {baseline: _bytes(lg_db), "CairnSaver": _bytes(db)}
    step_ms = {n: median(t) * 1000 for n, t in times.items()}
    return [
        {
            "backend": backend,
            "saver": name,
            "runs": RUNS,
            "db_bytes": sizes[name],
            "x_langgraph_bytes": sizes[name] / sizes[baseline],
            "step_ms": step_ms[name],
            "x_langgraph_step": step_ms[name] / step_ms[baseline],
        }
        for name in (baseline, "CairnSaver")
    ]


@benchmark(
    "langgraph_checkpoints", "Checkpoint storage: CairnSaver vs LangGraph's savers, 100 runs"
)
async def checkpoints(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        rows += await _checkpoints(profile, backend)
    return rows


# --- store throughput ------------------------------------------------------------------------


async def _rate(n: int, op: Callable[[int], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await op(i)
    return n / (time.perf_counter() - t0)


async def _throughput(store: Any, n: int) -> dict[str, float]:
    root = f"bench-{uuid.uuid4().hex[:6]}"

    def ns(i: int) -> tuple[str, ...]:
        return (root, "users", f"u{i % 20}")

    async def put(i: int) -> None:
        await store.aput(ns(i), f"k{i}", {"text": f"fact {i}", "kind": f"k{i % 5}", "n": i})

    async def get(i: int) -> None:
        assert await store.aget(ns(i), f"k{i}") is not None

    async def search(i: int) -> None:
        await store.asearch((root, "users", f"u{i % 20}"), filter={"kind": f"k{i % 5}"}, limit=10)

    async def namespaces(i: int) -> None:
        assert len(await store.alist_namespaces(prefix=(root,), limit=100)) == 20

    return {
        "put_per_s": await _rate(n, put),
        "get_per_s": await _rate(n, get),
        "search_per_s": await _rate(n // 5, search),
        "list_namespaces_per_s": await _rate(n // 10, namespaces),
    }


@asynccontextmanager
async def _stores(db: Database, lg_db: Database) -> AsyncIterator[dict[str, Any]]:
    from cairn.integrations.langgraph import CairnStore

    memory = await MemoryStore.open(db.url)
    cairn = CairnStore(memory, namespace=("bench", "store"))
    try:
        if db.backend == "sqlite":
            from langgraph.store.sqlite.aio import AsyncSqliteStore

            async with AsyncSqliteStore.from_conn_string(str(lg_db.path)) as lg:
                await lg.setup()
                yield {"AsyncSqliteStore": lg, "CairnStore": cairn}
        else:
            from langgraph.store.postgres.aio import AsyncPostgresStore

            async with AsyncPostgresStore.from_conn_string(_schema_url(lg_db)) as lg:
                await lg.setup()
                yield {"AsyncPostgresStore": lg, "CairnStore": cairn}
    finally:
        cairn.close()
        await memory.close()


@benchmark("langgraph_store", "Store throughput: CairnStore vs LangGraph's SQLite/Postgres stores")
async def store_throughput(profile: Profile) -> list[Row]:
    n = 2000 if profile.full else 500
    rows: list[Row] = []
    for backend in backends(profile):
        with scratch(profile, backend, "stc") as db, scratch(profile, backend, "st") as lg_db:
            async with _stores(db, lg_db) as stores:
                rates = {name: await _throughput(s, n) for name, s in stores.items()}
        baseline = next(name for name in rates if name != "CairnStore")
        for name, rate in rates.items():
            row: Row = {"backend": backend, "store": name, "items": n, **rate}
            for op, value in rate.items():
                row[f"x_{op.removesuffix('_per_s')}"] = value / rates[baseline][op]
            rows.append(row)
    return rows
