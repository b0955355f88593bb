"""The memory layer's tables, declared with SQLModel on a private registry.

The registry is private so that an application using SQLModel for its own tables never sees
Cairn's in its metadata. Hot paths use these tables through SQLAlchemy Core (``Table`` objects),
never the ORM session.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Namespaces and keys compare in byte order on PostgreSQL too, so that a namespace prefix is
# one index range (see memory.namespace.prefix_bounds).
_Name = String(600).with_variant(String(600, collation="C"), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
_Id = BigInteger().with_variant(Integer(), "sqlite")
_Time = DateTime(timezone=True)


class _Table(SQLModel, registry=registry()):
    pass


metadata = _Table.metadata


class SchemaVersion(_Table, table=True):
    """The single row recording which migrations have been applied."""

    __tablename__ = "cairn_schema"
    id: int = Field(sa_column=Column(Integer, primary_key=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    # The store's identity (`memory.records.StoreIdentity`): random, written once at setup.
    store_id: str | None = Field(default=None, sa_column=Column(String(64)))


class CommitRow(_Table, table=True):
    """One applied commit, unique by idempotency key."""

    __tablename__ = "cairn_commits"
    seq: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    # Long enough for keys derived from Temporal ids (a workflow id may be 1,000 bytes);
    # checked as bytes too (memory.namespace.check_commit_key) to stay within a btree entry.
    key: str = Field(sa_column=Column(String(2000), nullable=False, unique=True))
    tenant: str | None = Field(default=None, sa_column=Column(String(64)))
    workflow_id: str | None = Field(default=None, sa_column=Column(String(1000), index=True))
    run_id: str | None = Field(default=None, sa_column=Column(String(100)))
    activity_id: str | None = Field(default=None, sa_column=Column(String(200)))
    attempt: int | None = Field(default=None, sa_column=Column(Integer))
    agent: str | None = Field(default=None, sa_column=Column(String(200)))
    trace_id: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(sa_column=Column(_Time, nullable=False))
    result: str | None = Field(default=None, sa_column=Column(Text))
    writes: str | None = Field(default=None, sa_column=Column(Text))
    forgotten: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))


class HeadRow(_Table, table=True):
    """The current version of each key: the compare-and-set target and the listing index."""

    __tablename__ = "cairn_heads"
    ns: str = Field(sa_column=Column(_Name, primary_key=True))
    key: str = Field(sa_column=Column(_Name, primary_key=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    commit_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    deleted: bool = Field(sa_column=Column(Boolean, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(_Time))


class EntryRow(_Table, table=True):
    """Every version of every key; never updated in place."""

    __tablename__ = "cairn_entries"
    __table_args__ = (
        UniqueConstraint("ns", "key", "version", name="cairn_entries_version"),
        Index("cairn_entries_commit", "commit_seq"),
    )
    id: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    ns: str = Field(sa_column=Column(_Name, nullable=False))
    key: str = Field(sa_column=Column(_Name, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    commit_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: str | None = Field(default=None, sa_column=Column(Text))
    tags: str = Field(default="", sa_column=Column(Text, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(_Time))
    deleted: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column(_Time, nullable=False))


class StreamRow(_Table, table=True):
    """The last sequence number of each stream; its row lock orders concurrent appenders."""

    __tablename__ = "cairn_streams"
    ns: str = Field(sa_column=Column(_Name, primary_key=True))
    stream: str = Field(sa_column=Column(_Name, primary_key=True))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class StreamItemRow(_Table, table=True):
    """One appended stream item."""

    __tablename__ = "cairn_stream_items"
    __table_args__ = (
        UniqueConstraint("ns", "stream", "seq", name="cairn_stream_items_seq"),
        Index("cairn_stream_items_commit", "commit_seq"),
    )
    id: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    ns: str = Field(sa_column=Column(_Name, nullable=False))
    stream: str = Field(sa_column=Column(_Name, nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    commit_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    item: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(_Time, nullable=False))


class SearchDocRow(_Table, table=True):
    """The searchable text of a current entry or a stream item (full-text index per dialect)."""

    __tablename__ = "cairn_search_docs"
    __table_args__ = (Index("cairn_search_docs_key", "ns", "key", "kind"),)
    id: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    ns: str = Field(sa_column=Column(_Name, nullable=False))
    key: str = Field(sa_column=Column(_Name, nullable=False))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    commit_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    tags: str = Field(default="", sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))


class VectorRow(_Table, table=True):
    """The embedding of one entry version, by one model (see `memory.vectors`).

    ``vector`` holds ``dims`` little-endian float32s, so every backend can scan it exactly; on
    PostgreSQL with pgvector a ``embedding vector`` column beside it carries the same numbers
    for the HNSW index (added by the migration when the extension can be created).
    """

    __tablename__ = "cairn_vectors"
    __table_args__ = (
        UniqueConstraint("ns", "key", "version", "model", name="cairn_vectors_version"),
        Index("cairn_vectors_model", "model", "dims", "id"),
        Index("cairn_vectors_commit", "commit_seq"),
    )
    id: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    ns: str = Field(sa_column=Column(_Name, nullable=False))
    key: str = Field(sa_column=Column(_Name, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    commit_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    model: str = Field(sa_column=Column(String(200), nullable=False))
    dims: int = Field(sa_column=Column(Integer, nullable=False))
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditRow(_Table, table=True):
    """A content-free record of a destructive operation."""

    __tablename__ = "cairn_audit"
    id: int | None = Field(
        default=None, sa_column=Column(_Id, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=Column(_Time, nullable=False))
    action: str = Field(sa_column=Column(String(40), nullable=False))
    target: str = Field(sa_column=Column(Text, nullable=False))
    principal: str | None = Field(default=None, sa_column=Column(String(200)))
    detail: str = Field(sa_column=Column(Text, nullable=False))


class DataKeyRow(_Table, table=True):
    """A subject's data key, wrapped by a master key (see `memory.keys`).

    ``subject`` is the namespace whose text the key seals (a session, or a user); ``owner`` is
    the user namespace that session belongs to, once known. Forgetting either deletes the row.
    """

    __tablename__ = "cairn_data_keys"
    __table_args__ = (Index("cairn_data_keys_owner", "owner"),)
    subject: str = Field(sa_column=Column(_Name, primary_key=True))
    owner: str | None = Field(default=None, sa_column=Column(_Name))
    master_key_id: str = Field(sa_column=Column(String(64), nullable=False))
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(_Time, nullable=False))


def _t(model: type[_Table]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


schema_version = _t(SchemaVersion)
commits = _t(CommitRow)
heads = _t(HeadRow)
entries = _t(EntryRow)
streams = _t(StreamRow)
stream_items = _t(StreamItemRow)
search_docs = _t(SearchDocRow)
audit = _t(AuditRow)
vectors = _t(VectorRow)
data_keys = _t(DataKeyRow)
