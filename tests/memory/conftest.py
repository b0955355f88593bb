"""Helpers for the memory contract suite: raw row counts, a settable clock, store factories.

The `store`, `store_url`, `sqlite_url` and `postgres_schema_url` fixtures come from
``tests/conftest.py``; everything here runs against both backends through them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from memory import InvalidInput, MemoryStore
from tests.memory.pgvector_server import pgvector_server

NS = ("acme", "session", "s-1")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if n.startswith("cairn_")]
        return {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


async def row_counts(store: MemoryStore) -> dict[str, int]:
    """Row count of every ``cairn_*`` table (FTS shadow tables included), read raw."""
    return await asyncio.to_thread(_counts, store.engine)


def _dump(engine: Engine) -> str:
    with engine.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if n.startswith("cairn_")]
        # FTS5's segment tables included: its words are stored there as plain bytes.
        rows = [repr(tuple(r)) for n in names for r in conn.execute(text(f'SELECT * FROM "{n}"'))]
    return "\n".join(rows)


async def raw_dump(store: MemoryStore) -> str:
    """Every row of every ``cairn_*`` table as text (lower case): to prove something is gone."""
    return (await asyncio.to_thread(_dump, store.engine)).lower()


async def assert_rejected(
    store: MemoryStore, action: Callable[[], Awaitable[Any]], match: str
) -> InvalidInput:
    """Run ``action``, expect `InvalidInput` matching ``match``, and check nothing was written."""
    before = await row_counts(store)
    with pytest.raises(InvalidInput, match=match) as info:
        await action()
    assert await row_counts(store) == before
    return info.value


async def put(store: MemoryStore, ns: tuple[str, ...], key: str, value: Any, **kw: Any) -> int:
    """Write one value in its own commit; return the commit's sequence number."""
    async with store.commit() as c:
        c.put(ns, key, value, **kw)
    assert c.seq is not None
    return c.seq


class Clock:
    """A clock the test moves by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def clock_store(store_url: str) -> AsyncIterator[tuple[MemoryStore, Clock]]:
    """A store on each backend whose notion of "now" the test controls."""
    clock = Clock()
    store = await MemoryStore.open(store_url, clock=clock)
    yield store, clock
    await store.close()


@pytest.fixture
async def open_store(store_url: str) -> AsyncIterator[Callable[..., Awaitable[MemoryStore]]]:
    """Open more stores on the same database as `store`; they are closed after the test."""
    opened: list[MemoryStore] = []

    async def factory(**kw: Any) -> MemoryStore:
        s = await MemoryStore.open(store_url, **kw)
        opened.append(s)
        return s

    yield factory
    for s in opened:
        await s.close()


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    """URL of a session-wide PostgreSQL server with the ``vector`` extension created.

    Started on first use (`tests.memory.pgvector_server`), stopped and deleted at the end.
    """
    with pgvector_server() as url:
        yield url
