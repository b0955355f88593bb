"""Stored embeddings: one row per entry version and model, written in the commit of the value.

A commit's vectors are computed before its transaction (`memory.semantic`) and handed to the
writer as a `VectorPlan`, which says, for each entry version the commit writes, which vector
goes with it. Forks and purges copy vectors with the values they copy (`Copied`) rather than
embedding again. Every row records its model and dims; searches only ever compare a query with
rows of the query's own model.

PostgreSQL with pgvector also gets an ``embedding vector`` column (filled beside the float32
bytes) and an HNSW index per vector length; without the extension, and on SQLite, search is an
exact numpy scan (`memory.vector_index`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    bindparam,
    delete,
    exc,
    insert,
    select,
    text,
    tuple_,
)

from memory import schema
from memory.driver import Read, Statement
from memory.embedding.base import Vectors
from memory.embedding.config import EmbeddingConfig, select_config
from memory.namespace import Namespace, prefix_bounds
from memory.values import loads

# Embedding a very long value costs the provider's limit, not more meaning.
MAX_EMBED_CHARS = 32_768


@dataclass(frozen=True, slots=True)
class StoredVector:
    """A vector as stored: its model, its dims and its float32 bytes."""

    model: str
    dims: int
    blob: bytes


def to_blob(vector: Vectors) -> bytes:
    """A float32 vector as the little-endian bytes stored in ``cairn_vectors.vector``."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dims: int) -> Vectors:
    """Stored vectors back as a ``(len(blobs), dims)`` float32 array."""
    if not blobs:
        return np.empty((0, dims), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dims)


def text_to_embed(config: EmbeddingConfig, value: object) -> str | None:
    """The text of ``value`` that ``config`` embeds (capped), or None when there is none."""
    found = config.text(value)
    return found[:MAX_EMBED_CHARS] if found is not None else None


class MissingVectors(Exception):
    """The commit wrote texts whose vectors were not computed (merged values): embed, rerun."""

    def __init__(self, wanted: set[tuple[EmbeddingConfig, str]]) -> None:
        super().__init__(f"{len(wanted)} texts to embed")
        self.wanted = wanted


class VectorPlan(Protocol):
    """What the writer asks for each entry version it writes."""

    def vector_for(self, namespace: Namespace, key: str, value: str) -> StoredVector | None:
        """The vector of the version of ``(namespace, key)`` holding ``value`` (encoded JSON)."""
        ...

    def check(self) -> None:
        """Raise `MissingVectors` if a version was written whose vector is not known."""
        ...


@dataclass
class Embedded:
    """Vectors computed for a commit, found by ``(model, text)``."""

    configs: Sequence[EmbeddingConfig]
    found: dict[tuple[str, str], StoredVector] = field(default_factory=dict)
    missing: set[tuple[EmbeddingConfig, str]] = field(default_factory=set)

    def wanted(self, namespace: Namespace, value: object) -> tuple[EmbeddingConfig, str] | None:
        """The config and text a version of ``namespace`` holding ``value`` is embedded by."""
        config = select_config(self.configs, namespace)
        if config is None:
            return None
        text = text_to_embed(config, value)
        return None if text is None else (config, text)

    def vector_for(self, namespace: Namespace, key: str, value: str) -> StoredVector | None:
        """The precomputed vector of ``value``'s text; None (and noted) when not computed."""
        wanted = self.wanted(namespace, loads(value))
        if wanted is None:
            return None
        vector = self.found.get((wanted[0].embedder.model, wanted[1]))
        if vector is None:
            self.missing.add(wanted)
        return vector

    def check(self) -> None:
        """Raise `MissingVectors` for the texts of merged values, computed only in the commit."""
        if self.missing:
            missing, self.missing = self.missing, set()
            raise MissingVectors(missing)


@dataclass
class Copied:
    """Vectors carried over from other versions (fork, purge restore), by destination key."""

    vectors: dict[tuple[Namespace, str], StoredVector]

    def vector_for(self, namespace: Namespace, key: str, value: str) -> StoredVector | None:
        """The vector of the version this one copies, if it had one."""
        return self.vectors.get((namespace, key))

    def check(self) -> None:
        """Copies never miss: a version without a vector stays without one."""


def write(
    conn: Connection, ns: str, key: str, version: int, seq: int, vector: StoredVector
) -> None:
    """Store ``vector`` as the embedding of the entry version ``(ns, key, version)``."""
    row = {"ns": ns, "key": key, "version": version, "commit_seq": seq}
    row |= {"model": vector.model, "dims": vector.dims, "vector": vector.blob}
    if has_pgvector(conn):
        conn.execute(_INSERT_PGVECTOR, row | {"embedding": literal(vector)})
    else:
        conn.execute(insert(schema.vectors), row)


_INSERT_PGVECTOR = text(
    "INSERT INTO cairn_vectors (ns, key, version, commit_seq, model, dims, vector, embedding) "
    "VALUES (:ns, :key, :version, :commit_seq, :model, :dims, :vector, CAST(:embedding AS vector))"
    " ON CONFLICT ON CONSTRAINT cairn_vectors_version DO NOTHING"
)


def literal(vector: StoredVector) -> str:
    """A vector in pgvector's text form, ``[x,y,...]``."""
    values = np.frombuffer(vector.blob, dtype="<f4")
    return "[" + ",".join(map(repr, values.tolist())) + "]"


def stored(conn: Connection, where: Any) -> Sequence[Any]:
    """Rows ``(ns, key, version, model, dims, vector)`` of the vectors matching ``where``."""
    v = schema.vectors.c
    return conn.execute(
        select(v.ns, v.key, v.version, v.model, v.dims, v.vector).where(where)
    ).all()


def of_versions(conn: Connection, versions: Iterable[tuple[str, str, int]]) -> dict[Any, Any]:
    """The stored vectors of entry versions ``(ns, key, version)``, by that triple."""
    wanted = list(versions)
    found: dict[tuple[str, str, int], StoredVector] = {}
    v = schema.vectors.c
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        for r in stored(conn, tuple_(v.ns, v.key, v.version).in_(chunk)):
            found[(r.ns, r.key, r.version)] = StoredVector(r.model, r.dims, r.vector)
    return found


def drop(conn: Connection, where: Any) -> int:
    """Delete the vectors matching ``where`` (a condition on ``cairn_vectors``); count them."""
    return int(conn.execute(delete(schema.vectors).where(where)).rowcount)


def drop_versions(conn: Connection, versions: Sequence[tuple[str, str, int]]) -> int:
    """Delete the vectors of the entry versions ``(ns, key, version)``."""
    v = schema.vectors.c
    return sum(
        drop(conn, tuple_(v.ns, v.key, v.version).in_(versions[i : i + 200]))
        for i in range(0, len(versions), 200)
    )


# -- PostgreSQL's pgvector ---------------------------------------------------------------------


def add_pgvector(conn: Connection) -> bool:
    """Create pgvector and the ``embedding`` column if the server allows; report whether it did.

    Run by the migration. The extension may be missing from the server or the role may not be
    allowed to create it: both leave the exact scan, and the database unchanged.
    """
    if conn.dialect.name != "postgresql":
        return False
    for ddl in (
        "CREATE EXTENSION IF NOT EXISTS vector",
        "ALTER TABLE cairn_vectors ADD COLUMN IF NOT EXISTS embedding vector",
    ):
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(ddl)
        except exc.DBAPIError:  # any refusal means: no pgvector here
            return False
    return True


_HAS_COLUMN = text(
    "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('cairn_vectors')"
    " AND attname = 'embedding' AND NOT attisdropped"
)
# Whether each engine's database has the pgvector column: asked once per engine.
_PGVECTOR: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def has_pgvector(conn: Connection) -> bool:
    """Whether this database's ``cairn_vectors`` has the pgvector ``embedding`` column."""
    if conn.dialect.name != "postgresql":
        return False
    found = _PGVECTOR.get(conn.engine)
    if found is None:
        found = _PGVECTOR[conn.engine] = conn.execute(_HAS_COLUMN).first() is not None
    return found


def pgvector_known(engine: Engine) -> bool | None:
    """The remembered `has_pgvector` answer for ``engine``; None before it was asked."""
    return _PGVECTOR.get(engine)


def forget_pgvector_state(conn: Connection) -> None:
    """Drop the remembered `has_pgvector` answer (the migration may just have changed it)."""
    _PGVECTOR.pop(conn.engine, None)


# Arbitrary but fixed: serializes creating HNSW indexes across workers starting together.
_PG_INDEX_LOCK = 0x0C41_7EC7


def ensure_hnsw(conn: Connection, dims: Sequence[int]) -> None:
    """An HNSW cosine index for vectors of each length in ``dims`` (pgvector only)."""
    if not has_pgvector(conn):
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_INDEX_LOCK})
    for n in sorted(set(dims)):
        # Partial and cast: a pgvector index needs one length, and models differ in theirs.
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS cairn_vectors_hnsw_{int(n)} ON cairn_vectors "
            f"USING hnsw ((embedding::vector({int(n)})) vector_cosine_ops) WHERE dims = {int(n)}"
        )


@functools.lru_cache(maxsize=64)
def _nearest_statement(dims: int, limit: int) -> Statement:
    """The HNSW search of the ``limit`` nearest vectors of length ``dims``."""
    vec = f"CAST(:q AS vector({dims}))"
    # One statement: the heads join drops superseded, deleted and expired versions while the
    # index is walked (iterative scan), and the entries join brings the values along.
    sql = text(
        f"SELECT v.ns, v.key, v.version, e.commit_seq, e.value, e.tags,"
        f" 1 - (v.embedding::vector({dims}) <=> {vec}) AS sim"
        " FROM cairn_vectors AS v JOIN cairn_heads AS h"
        "   ON h.ns = v.ns AND h.key = v.key AND h.version = v.version"
        " JOIN cairn_entries AS e ON e.ns = h.ns AND e.key = h.key AND e.version = h.version"
        f" WHERE v.dims = {dims} AND v.model = :model AND NOT h.deleted"
        "   AND (h.expires_at IS NULL OR h.expires_at > :now)"
        "   AND (v.ns = :exact OR (v.ns >= :low AND v.ns < :high))"
        f" ORDER BY v.embedding::vector({dims}) <=> {vec} LIMIT {int(limit)}"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
    # Prepared from its fifth run (planning the joins cost 0.3 ms of a 1 ms query); the LIMIT is
    # a literal so that the generic plan knows it and walks the index like the custom ones.
    return Statement(sql)


def nearest_pgvector(
    model: str,
    query: Vectors,
    prefix: Namespace,
    now: datetime,
    exclude: Sequence[tuple[str, str, int]],
    limit: int,
) -> Read[list[tuple[Any, ...]]]:
    """The read of the ``limit`` nearest current, live versions through HNSW, best first.

    Its rows are ``(ns, key, version, commit_seq, value, tags, similarity)``; the versions in
    ``exclude`` (found by an earlier, smaller read) are left out. One statement: a point read.
    """
    dims = int(query.shape[0])
    exact, low, high = prefix_bounds(prefix)
    params: dict[str, Any] = {
        "q": literal(StoredVector(model, dims, to_blob(query))),
        "model": model,
        "now": now,
    }
    params |= {"exact": exact, "low": low, "high": high}
    skip = set(exclude)

    def build(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        kept = [r for r in rows if (r[0], r[1], r[2]) not in skip]
        # relaxed_order may return neighbours slightly out of order.
        return sorted(kept, key=lambda r: -float(r[6]))[:limit]

    return Read(_nearest_statement(dims, limit + len(exclude)), params, build)
