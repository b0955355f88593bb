"""PostgreSQL with pgvector: vectors in an HNSW-indexed column, searched through the index."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from memory import MemoryStore
from tests.memory.conftest import Clock
from tests.memory.semantic_helpers import NOTES, config, vector_rows


@pytest.fixture
def vector_schema_url(pgvector_url: str) -> Iterator[str]:
    """A fresh schema on the pgvector server (``public``, holding the extension, after it)."""
    schema = f"cairn_vec_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pgvector_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pgvector_url else "?"
    yield f"{pgvector_url}{sep}options=-csearch_path%3D{schema},public"
    with psycopg.connect(pgvector_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def pg_store(vector_schema_url: str) -> AsyncIterator[MemoryStore]:
    store = await MemoryStore.open(vector_schema_url, embedders=[config()])
    yield store
    await store.close()


def _plan(url: str) -> tuple[set[str], str]:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'cairn_vectors' AND table_schema = current_schema()"
            )
        }
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM cairn_vectors WHERE dims = 64 "
            "ORDER BY embedding::vector(64) <=> (SELECT embedding::vector(64) FROM cairn_vectors"
            " LIMIT 1) LIMIT 5"
        ).fetchall()
    return columns, "\n".join(r[0] for r in plan)


async def test_vectors_go_to_an_hnsw_indexed_column(
    pg_store: MemoryStore, vector_schema_url: str
) -> None:
    import asyncio

    async with pg_store.commit() as c:
        for i, text in enumerate(["green tea", "black coffee", "train to Lyon"]):
            c.put(NOTES, f"k{i}", text)
    columns, plan = await asyncio.to_thread(_plan, vector_schema_url)
    assert "embedding" in columns
    assert "cairn_vectors_hnsw_64" in plan
    hits = await pg_store.search(NOTES, "coffee", mode="vector", limit=2)
    assert hits[0].value == "black coffee"
    assert hits[0].score == pytest.approx(1.0, abs=0.5)


async def test_pgvector_search_sees_only_current_live_versions(pg_store: MemoryStore) -> None:
    for text in ("green tea", "black coffee"):
        async with pg_store.commit() as c:
            c.put(NOTES, "drink", text)
    hits = await pg_store.search(NOTES, "green tea", mode="vector")
    assert [h.value for h in hits] == ["black coffee"]
    await pg_store.forget(NOTES)
    assert await vector_rows(pg_store) == []
    assert await pg_store.search(NOTES, "coffee", mode="vector") == []


async def test_reindex_fills_the_pgvector_column(vector_schema_url: str) -> None:
    plain = await MemoryStore.open(vector_schema_url)
    async with plain.commit() as c:
        c.put(NOTES, "tea", "green tea in the morning")
        c.put(NOTES, "train", "the train to Lyon")
    await plain.close()
    store = await MemoryStore.open(vector_schema_url, embedders=[config()])
    try:
        assert await store.reindex(NOTES) == {"embedded": 2, "skipped": 0}
        hits = await store.search(NOTES, "morning tea", mode="vector", limit=1)
        assert [h.key for h in hits] == ["tea"]
    finally:
        await store.close()


async def test_pgvector_search_drops_deleted_expired_and_filtered_entries(
    vector_schema_url: str,
) -> None:
    """The HNSW statement excludes dead versions itself; a tag filter reads a wider batch."""
    clock = Clock()
    store = await MemoryStore.open(vector_schema_url, clock=clock, embedders=[config()])
    try:
        async with store.commit() as c:
            for i in range(30):
                c.put(NOTES, f"tea{i}", f"green tea number {i}", tags=["odd"] if i == 29 else [])
            c.put(NOTES, "gone", "green tea gone")
            c.put(NOTES, "old", "green tea old", ttl=10)
        async with store.commit() as c:
            c.delete(NOTES, "gone")
        clock.advance(11)
        hits = await store.search(NOTES, "green tea", mode="vector", limit=40)
        assert {h.key for h in hits} == {f"tea{i}" for i in range(30)}
        tagged = await store.search(NOTES, "green tea", mode="vector", tags=["odd"])
        assert [h.key for h in tagged] == ["tea29"]
        assert tagged[0].value == "green tea number 29"
    finally:
        await store.close()
