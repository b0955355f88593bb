"""The embedded pgvector server starts and answers an HNSW cosine query."""

from __future__ import annotations

import asyncio

import psycopg


def _nearest(url: str) -> list[tuple[str, float]]:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS smoke_items")
        conn.execute("CREATE TABLE smoke_items (name text PRIMARY KEY, embedding vector(3))")
        conn.execute(
            "INSERT INTO smoke_items VALUES "
            "('east', '[1,0,0]'), ('north', '[0,1,0]'), "
            "('north-east', '[1,1,0]'), ('up', '[0,0,1]')"
        )
        conn.execute(
            "CREATE INDEX smoke_items_hnsw ON smoke_items USING hnsw (embedding vector_cosine_ops)"
        )
        # The planner ignores the index on four rows; make it use it.
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT name FROM smoke_items ORDER BY embedding <=> '[1,0.1,0]' LIMIT 2"
        ).fetchall()
        assert any("smoke_items_hnsw" in row[0] for row in plan), plan
        rows = conn.execute(
            "SELECT name, embedding <=> '[1,0.1,0]' FROM smoke_items "
            "ORDER BY embedding <=> '[1,0.1,0]' LIMIT 2"
        ).fetchall()
    return [(str(name), float(distance)) for name, distance in rows]


async def test_hnsw_cosine_query_orders_by_distance(pgvector_url: str) -> None:
    rows = await asyncio.to_thread(_nearest, pgvector_url)
    assert [name for name, _ in rows] == ["east", "north-east"]
    assert rows[0][1] < rows[1][1]
