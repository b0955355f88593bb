"""Versioned schema migrations, applied idempotently and safely from many processes at once.

Each migration is a function of a connection inside the migration transaction. The runner takes
a database-wide lock first (a PostgreSQL advisory lock; SQLite's write lock via ``BEGIN
IMMEDIATE``), so workers starting together apply each migration exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import Connection, insert, inspect, select, text, update

from memory import schema, vectors
from memory.errors import MemoryStoreError

SCHEMA_VERSION = 5
# Arbitrary but fixed: the advisory lock key Cairn's migrations serialize on.
_PG_LOCK = 0x0C41_124E


def _v1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    if conn.dialect.name == "sqlite":
        # A separate FTS5 table keyed by the search doc id. `scope` and `tags` hold hashed
        # tokens (see memory.search) so namespace-prefix and tag filters run inside the index.
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS cairn_search_fts "
            "USING fts5(body, scope, tags, tokenize='porter unicode61')"
        )
    else:
        conn.exec_driver_sql(
            "ALTER TABLE cairn_search_docs ADD COLUMN IF NOT EXISTS tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', body)) STORED"
        )
        conn.exec_driver_sql(
            "ALTER TABLE cairn_search_docs ADD COLUMN IF NOT EXISTS tag_list text[] "
            "GENERATED ALWAYS AS (string_to_array(NULLIF(tags, ''), ' ')) STORED"
        )
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS cairn_search_docs_tsv ON cairn_search_docs USING GIN (tsv)"
        )
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS cairn_search_docs_tags "
            "ON cairn_search_docs USING GIN (tag_list)"
        )


def _v2_long_commit_keys(conn: Connection) -> None:
    # Commit keys are built from Temporal ids, and a workflow id alone may be 1,000 bytes.
    # (SQLite does not enforce VARCHAR lengths; a database created at v1 there needs nothing.)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE cairn_commits ALTER COLUMN key TYPE VARCHAR(2000)")


def _v3_vectors(conn: Connection) -> None:
    # Entry versions' embeddings. (v1 creates every table of the metadata, so a database
    # created by this Cairn already has it.) pgvector's column is added where the server can.
    schema.vectors.create(conn, checkfirst=True)
    vectors.add_pgvector(conn)
    vectors.forget_pgvector_state(conn)


def _v4_store_identity(conn: Connection) -> None:
    # The column for the store's id (v1 creates it in a new database); `migrate` fills it.
    columns = {c["name"] for c in inspect(conn).get_columns(schema.schema_version.name)}
    if "store_id" not in columns:
        conn.exec_driver_sql("ALTER TABLE cairn_schema ADD COLUMN store_id VARCHAR(64)")


def _v5_data_keys(conn: Connection) -> None:
    # Subjects' data keys, for crypto-shredding Temporal payloads (v1 creates it in a new
    # database).
    schema.data_keys.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1_initial,
    2: _v2_long_commit_keys,
    3: _v3_vectors,
    4: _v4_store_identity,
    5: _v5_data_keys,
}
assert max(MIGRATIONS) == SCHEMA_VERSION


def current_version(conn: Connection) -> int:
    """The applied schema version, 0 for an empty database."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    version = conn.execute(select(schema.schema_version.c.version)).scalar()
    return int(version or 0)


def migrate(conn: Connection) -> tuple[int, int]:
    """Apply every pending migration in the caller's transaction; return ``(before, after)``.

    The caller opens the transaction (for SQLite with ``BEGIN IMMEDIATE``); this takes the
    PostgreSQL advisory lock, which is released when that transaction ends.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    before = current_version(conn)
    if before > SCHEMA_VERSION:
        raise MemoryStoreError(
            f"the memory database has schema version {before}, newer than this Cairn "
            f"({SCHEMA_VERSION}); upgrade Cairn"
        )
    for version in range(before + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](conn)
    if before == 0:
        conn.execute(insert(schema.schema_version).values(id=1, version=SCHEMA_VERSION))
    elif before < SCHEMA_VERSION:
        conn.execute(update(schema.schema_version).values(version=SCHEMA_VERSION))
    # Written once, under the migration lock: every process that opens the store reads it.
    conn.execute(
        update(schema.schema_version)
        .where(schema.schema_version.c.store_id.is_(None))
        .values(store_id=uuid.uuid4().hex)
    )
    return before, SCHEMA_VERSION


def store_id(conn: Connection) -> str:
    """The store's id, written once by `migrate`."""
    found = conn.execute(select(schema.schema_version.c.store_id)).scalar()
    if not found:
        raise MemoryStoreError("the memory database has no store id: run `cairn memory migrate`")
    return str(found)
