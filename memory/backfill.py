"""Backfilling vectors: embedding entries written before their namespace had an embedder.

`MemoryStore.reindex` pages through the current entries under a prefix that have no vector of
their embedder's model (`missing`), embeds a page, and stores the vectors in one short write
transaction (`store`). It is idempotent and resumable (a rerun finds only what is still
missing) and safe beside workers: a vector is stored only while its entry version exists, and
never twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text, tuple_

from memory import schema, vectors
from memory.namespace import Namespace
from memory.writer import serialize_commits, under, unexpired


def _missing_query(prefix: Namespace, models: Sequence[str], now: datetime) -> Any:
    h, e, v = schema.heads.c, schema.entries.c, schema.vectors.c
    has_vector = (
        select(v.id)
        .where(v.ns == e.ns, v.key == e.key, v.version == e.version, v.model.in_(models))
        .exists()
    )
    query = (
        select(e.ns, e.key, e.version, e.commit_seq, e.value)
        .select_from(schema.heads)
        .join(schema.entries, (h.ns == e.ns) & (h.key == e.key) & (h.version == e.version))
        .where(~h.deleted, ~has_vector)
        .where(unexpired(schema.heads, now))
    )
    # An empty prefix is the whole store.
    return query.where(under(h.ns, prefix)) if prefix else query


def count_missing(conn: Connection, prefix: Namespace, models: Sequence[str], now: datetime) -> int:
    """How many current entries under ``prefix`` have no vector of ``models``."""
    query = _missing_query(prefix, models, now).subquery()
    return int(conn.execute(select(func.count()).select_from(query)).scalar_one())


def missing(
    conn: Connection,
    prefix: Namespace,
    models: Sequence[str],
    after: tuple[str, str],
    limit: int,
    now: datetime,
) -> list[Any]:
    """The next ``limit`` entries after ``after`` (ns, key) lacking a vector of ``models``."""
    e = schema.entries.c
    query = _missing_query(prefix, models, now).where(tuple_(e.ns, e.key) > tuple_(*after))
    return list(conn.execute(query.order_by(e.ns, e.key).limit(limit)).all())


_COLUMNS = ("ns", "key", "version", "commit_seq", "model", "dims", "vector")


def _insert(pgvector: bool) -> Any:
    """INSERT a vector only while its entry version exists, and only once."""
    v, e = schema.vectors.c, schema.entries.c
    version = (v.ns == bindparam("ns")) & (v.key == bindparam("key"))
    entry = (e.ns == bindparam("ns")) & (e.key == bindparam("key"))
    entry &= (e.version == bindparam("version")) & ~e.deleted
    version &= (v.version == bindparam("version")) & (v.model == bindparam("model"))
    if pgvector:
        # pgvector's column is not in the table's metadata (it exists only where the
        # extension does); the typed casts say what the untyped parameters are.
        casts = "CAST(:ns AS VARCHAR), CAST(:key AS VARCHAR), CAST(:version AS INTEGER), "
        casts += "CAST(:commit_seq AS BIGINT), CAST(:model AS VARCHAR), CAST(:dims AS INTEGER), "
        return text(
            "INSERT INTO cairn_vectors (ns, key, version, commit_seq, model, dims, vector,"
            f" embedding) SELECT {casts} CAST(:vector AS BYTEA), CAST(:embedding AS vector)"
            " WHERE EXISTS (SELECT 1 FROM cairn_entries AS e WHERE e.ns = :ns AND e.key = :key"
            "   AND e.version = :version AND NOT e.deleted)"
            " AND NOT EXISTS (SELECT 1 FROM cairn_vectors AS v WHERE v.ns = :ns"
            "   AND v.key = :key AND v.version = :version AND v.model = :model) RETURNING id"
        )
    values = select(*(bindparam(name, type_=v[name].type) for name in _COLUMNS)).where(
        select(e.id).where(entry).exists(), ~select(v.id).where(version).exists()
    )
    return insert(schema.vectors).from_select(list(_COLUMNS), values).returning(v.id)


def store(
    conn: Connection, found: Sequence[tuple[str, str, int, int, vectors.StoredVector]]
) -> int:
    """Store vectors of entry versions ``(ns, key, version, commit_seq, vector)``; count them."""
    # Vector rows must become visible in id order (memory.vector_index), as commits' do.
    serialize_commits(conn)
    pgvector = vectors.has_pgvector(conn)
    statement, stored = _insert(pgvector), 0
    for ns, key, version, seq, vector in found:
        row: dict[str, Any] = {"ns": ns, "key": key, "version": version, "commit_seq": seq}
        row |= {"model": vector.model, "dims": vector.dims, "vector": vector.blob}
        if pgvector:
            row["embedding"] = vectors.literal(vector)
        stored += len(conn.execute(statement, row).all())
    return stored
