"""Applying commits: the write path, run synchronously on a worker thread by `MemoryStore`.

Forks (`memory.forks`) and deletions for good (`memory.retention`) build on it. Each public
function here runs inside one database transaction that the caller opened (on SQLite with
``BEGIN IMMEDIATE``). Head rows are the compare-and-set point: an upsert or a version-guarded
update with ``RETURNING`` decides each new version atomically on both backends. The statements
of a commit are built once, here, with `bindparam` placeholders (building one costs more than
running it on SQLite); upserts exist once per dialect.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from memory import schema, search, vectors
from memory.commit import Applied, Op
from memory.driver import Statement
from memory.errors import ConflictError
from memory.namespace import Namespace, decode, encode, prefix_bounds
from memory.records import MemoryRef, Provenance, trusted
from memory.values import encode_value, loads, reduce


def _per_dialect(build: Callable[[Any], Any], keys: Sequence[str]) -> Statement:
    """``build(insert)`` for each dialect's ``INSERT`` (they differ in their upsert clauses)."""
    return Statement(
        {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}, keys=keys
    )


def under(column: Any, prefix: Namespace) -> Any:
    """SQL condition: ``column`` holds a namespace equal to or under ``prefix``."""
    exact, low, high = prefix_bounds(prefix)
    # One index range, [exact, high), narrowed by the OR: with the OR alone, SQLite cannot
    # scan the index in order, and a listing under a prefix of 100k entries sorted them all.
    return (column >= exact) & (column < high) & or_(column == exact, column >= low)


_FIND_COMMIT = select(schema.commits.c.seq, schema.commits.c.result, schema.commits.c.tenant).where(
    schema.commits.c.key == bindparam("key")
)
_ENTRY_WRITES = (
    select(schema.entries.c.ns, schema.entries.c.key, schema.entries.c.version)
    .where(schema.entries.c.commit_seq == bindparam("seq"))
    .order_by(schema.entries.c.id)
)
_ITEM_WRITES = (
    select(schema.stream_items.c.ns, schema.stream_items.c.stream, schema.stream_items.c.seq)
    .where(schema.stream_items.c.commit_seq == bindparam("seq"))
    .order_by(schema.stream_items.c.id)
)


def find_commit(conn: Connection, key: str) -> Applied | None:
    """The stored outcome of the commit with ``key``, as a replay, or None."""
    row = conn.execute(_FIND_COMMIT, {"key": key}).first()
    if row is None:
        return None
    return Applied(row.seq, True, loads(row.result), commit_writes(conn, row.seq), row.tenant)


def _ref(
    ns: Namespace, key: str, version: int, seq: int, kind: Literal["entry", "stream"] = "entry"
) -> MemoryRef:
    fields = {"namespace": ns, "key": key, "version": version, "commit_seq": seq, "kind": kind}
    return trusted(MemoryRef, fields)


def commit_writes(conn: Connection, seq: int) -> tuple[MemoryRef, ...]:
    """What commit ``seq`` wrote, derived from the rows it left."""
    refs = [
        _ref(decode(r.ns), r.key, r.version, seq) for r in conn.execute(_ENTRY_WRITES, {"seq": seq})
    ]
    refs += [
        _ref(decode(r.ns), r.stream, r.seq, seq, "stream")
        for r in conn.execute(_ITEM_WRITES, {"seq": seq})
    ]
    return tuple(refs)


# Arbitrary but fixed: the advisory lock every PostgreSQL commit holds from claiming its
# sequence number until it ends.
_PG_COMMIT_LOCK = 0x0C41_C0DE


def serialize_commits(conn: Connection) -> None:
    """Take the PostgreSQL commit lock until this transaction ends (see the comment)."""
    # A PostgreSQL sequence hands out numbers in claim order, but transactions become visible
    # in commit order: without this lock, commit 6 could be seen before commit 5, so a read
    # `as_of=6` (or a fork, or a reader of "commits after 5") would change once 5 lands. Held
    # from the claim to the end of the transaction, it makes sequence order visibility order,
    # as SQLite's single writer already does.
    if conn.dialect.name == "postgresql":
        conn.execute(_COMMIT_LOCK, {"lock_key": _PG_COMMIT_LOCK})


_COMMIT_LOCK = select(func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger)))
_CLAIM_COLUMNS = [
    schema.commits.c.key,
    *(schema.commits.c[field] for field in Provenance.model_fields),
    schema.commits.c.created_at,
    schema.commits.c.result,
]
_SQLITE_CLAIM = Statement(
    sqlite.insert(schema.commits)
    .on_conflict_do_nothing(index_elements=[schema.commits.c.key])
    .returning(schema.commits.c.seq),
    keys=[col.key for col in _CLAIM_COLUMNS] + ["forgotten"],
)
# On PostgreSQL the claim takes the commit lock itself (`serialize_commits`), saving a round
# trip: the CTE holding a volatile function runs once, before its row reaches the INSERT, so
# the lock is held before the sequence number is drawn.
_POSTGRES_CLAIM = Statement(
    postgresql.insert(schema.commits)
    .from_select(
        [*_CLAIM_COLUMNS, schema.commits.c.forgotten],
        select(
            *(bindparam(col.key, type_=col.type) for col in _CLAIM_COLUMNS), false()
        ).select_from(_COMMIT_LOCK.cte("commit_lock")),
    )
    .on_conflict_do_nothing(index_elements=[schema.commits.c.key])
    .returning(schema.commits.c.seq)
)


def apply_commit(
    conn: Connection,
    key: str,
    provenance: Provenance,
    ops: Sequence[Op],
    result: str,
    now: datetime,
    max_value_bytes: int,
    plan: vectors.VectorPlan | None = None,
) -> Applied:
    """Claim ``key`` and apply ``ops``; if the key exists, apply nothing and return the replay.

    ``plan`` gives the vector of each entry version written, if any; it raises
    `memory.vectors.MissingVectors` (rolling the transaction back) for texts it lacks.
    """
    claim = {"key": key, "created_at": now, "result": result, **provenance.model_dump()}
    if conn.dialect.name == "postgresql":
        seq = _POSTGRES_CLAIM.scalar(conn, claim | {"lock_key": _PG_COMMIT_LOCK})
    else:
        seq = _SQLITE_CLAIM.scalar(conn, claim | {"forgotten": False})
    if seq is None:
        previous = find_commit(conn, key)
        assert previous is not None
        return previous
    writes = [_apply_op(conn, seq, op, now, max_value_bytes, plan) for op in ops]
    if plan is not None:
        plan.check()
    return Applied(seq, False, json.loads(result), tuple(writes), provenance.tenant)


def unexpired(table: Table, now: Any) -> Any:
    """SQL condition: the row of ``table`` has not expired at ``now``."""
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


def remaining(expires_at: datetime | None, now: datetime) -> timedelta | None:
    """The time-to-live left at ``now`` of a stored ``expires_at`` (None: never expires)."""
    if expires_at is None:
        return None
    # SQLite returns naive datetimes; every time Cairn stores is UTC.
    aware = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    return aware - now


_BUMP_STREAM = _per_dialect(
    lambda insert: (
        insert(schema.streams)
        .on_conflict_do_update(
            index_elements=[schema.streams.c.ns, schema.streams.c.stream],
            set_={"last_seq": schema.streams.c.last_seq + 1},
        )
        .returning(schema.streams.c.last_seq)
    ),
    keys=["ns", "stream", "last_seq"],
)
_PREVIOUS_VALUE = Statement(
    select(schema.entries.c.value).where(
        schema.entries.c.ns == bindparam("ns"),
        schema.entries.c.key == bindparam("key"),
        schema.entries.c.version == bindparam("version"),
        ~schema.entries.c.deleted,
        unexpired(schema.entries, bindparam("now")),
    )
)
_INSERT_VERSION = Statement(
    insert(schema.entries),
    keys=[
        "ns",
        "key",
        "version",
        "commit_seq",
        "value",
        "tags",
        "expires_at",
        "deleted",
        "created_at",
    ],
)
_INSERT_ITEM = Statement(
    insert(schema.stream_items), keys=["ns", "stream", "seq", "commit_seq", "item", "created_at"]
)
_ENTRY_DOC = (
    (schema.search_docs.c.kind == "entry")
    & (schema.search_docs.c.ns == bindparam("doc_ns"))
    & (schema.search_docs.c.key == bindparam("doc_key"))
)


def _apply_op(
    conn: Connection,
    seq: int,
    op: Op,
    now: datetime,
    limit: int,
    plan: vectors.VectorPlan | None,
) -> MemoryRef:
    ns = encode(op.namespace)
    if op.kind == "append":
        bump = {"ns": ns, "stream": op.key, "last_seq": 1}
        n = _BUMP_STREAM.scalar(conn, bump)
        item = {"stream": op.key, "seq": n, "item": op.value}
        _INSERT_ITEM.run(conn, {"ns": ns, "commit_seq": seq, "created_at": now, **item})
        body = search.body_of(op.key, loads(op.value))
        _index(conn, ns, op.key, "stream", n, seq, (), body, replace=False)
        return _ref(op.namespace, op.key, n, seq, "stream")

    deleted = op.kind == "delete"
    expires = now + op.ttl if op.ttl else None
    version = _bump_head(conn, op, ns, seq, deleted, expires, now)
    value = op.value
    if op.merge != "replace" and not deleted:
        # An expired previous value is gone for readers, so it must not come back merged.
        where = {"ns": ns, "key": op.key, "version": version - 1, "now": now}
        previous = _PREVIOUS_VALUE.scalar(conn, where)
        merged = reduce(op.merge, loads(previous), loads(value))
        value = encode_value(op.namespace, op.key, merged, limit)
    row = {"ns": ns, "key": op.key, "version": version, "commit_seq": seq, "value": value}
    row |= {"tags": " ".join(op.tags), "expires_at": expires, "deleted": deleted}
    _INSERT_VERSION.run(conn, {**row, "created_at": now})
    if deleted or not op.index:
        # Out of search: a delete, or a put with index=False (an earlier version's doc goes).
        unindex(conn, _ENTRY_DOC, {"doc_ns": ns, "doc_key": op.key})
    else:
        body = search.body_of(op.key, loads(value))
        _index(conn, ns, op.key, "entry", version, seq, op.tags, body, replace=True)
        vector = (
            None if plan is None or value is None else plan.vector_for(op.namespace, op.key, value)
        )
        if vector is not None:
            vectors.write(conn, ns, op.key, version, seq, vector)
    return _ref(op.namespace, op.key, version, seq)


def _bump_head(
    conn: Connection,
    op: Op,
    ns: str,
    seq: int,
    deleted: bool,
    expires: datetime | None,
    now: datetime,
) -> int:
    fields = {"commit_seq": seq, "deleted": deleted, "expires_at": expires}
    if op.expected_version is None or op.expected_version == 0:
        row = {"ns": ns, "key": op.key, "version": 1, **fields}
        if op.expected_version is None:
            version = _PUT_HEAD.scalar(conn, row)
        else:
            version = _CREATE_HEAD.scalar(conn, row | {"now": now})
    else:
        where = {"b_ns": ns, "b_key": op.key, "expected": op.expected_version, "now": now}
        version = _SET_HEAD.scalar(conn, where | fields)
    if version is None:
        found = {"b_ns": ns, "b_key": op.key, "now": now}
        actual = _LIVE_VERSION.scalar(conn, found)
        raise ConflictError(op.namespace, op.key, op.expected_version or 0, actual)
    return int(version)


# A head that is deleted or expired is no live entry: readers get NotFound for it, so
# compare-and-set treats it the same way (only expected_version=0 matches it).
_LIVE_HEAD = ~schema.heads.c.deleted & unexpired(schema.heads, bindparam("now"))
_HEAD_KEY = (schema.heads.c.ns == bindparam("b_ns")) & (schema.heads.c.key == bindparam("b_key"))


def _upsert_head(insert: Any, *, only_if_missing: bool) -> Any:
    stmt = insert(schema.heads)
    fields = ("commit_seq", "deleted", "expires_at")
    set_ = {"version": schema.heads.c.version + 1, **{f: stmt.excluded[f] for f in fields}}
    where = ~_LIVE_HEAD if only_if_missing else None
    return stmt.on_conflict_do_update(
        index_elements=[schema.heads.c.ns, schema.heads.c.key], set_=set_, where=where
    ).returning(schema.heads.c.version)


_HEAD_COLUMNS = ["ns", "key", "version", "commit_seq", "deleted", "expires_at"]
_PUT_HEAD = _per_dialect(functools.partial(_upsert_head, only_if_missing=False), keys=_HEAD_COLUMNS)
_CREATE_HEAD = _per_dialect(
    functools.partial(_upsert_head, only_if_missing=True), keys=_HEAD_COLUMNS
)
_SET_HEAD = Statement(
    update(schema.heads)
    .where(_HEAD_KEY, schema.heads.c.version == bindparam("expected"), _LIVE_HEAD)
    .values(version=schema.heads.c.version + 1)
    .returning(schema.heads.c.version),
    keys=["commit_seq", "deleted", "expires_at"],
)
_LIVE_VERSION = Statement(select(schema.heads.c.version).where(_HEAD_KEY, _LIVE_HEAD))


def _index(
    conn: Connection,
    ns: str,
    key: str,
    kind: str,
    version: int,
    seq: int,
    tags: Sequence[str],
    body: str,
    *,
    replace: bool,
) -> None:
    fields = {"version": version, "commit_seq": seq, "tags": " ".join(tags), "body": body}
    doc_id = None
    if replace:
        where = {"b_kind": kind, "b_ns": ns, "b_key": key}
        doc_id = _UPDATE_DOC.scalar(conn, where | fields)
    if doc_id is None:
        doc_id = _INSERT_DOC.scalar(conn, {"ns": ns, "key": key, "kind": kind, **fields})
    search.index_doc(conn, doc_id, ns, tags, body)


_DOC_FIELDS = ["version", "commit_seq", "tags", "body"]
_UPDATE_DOC = Statement(
    update(schema.search_docs)
    .where(
        schema.search_docs.c.kind == bindparam("b_kind"),
        schema.search_docs.c.ns == bindparam("b_ns"),
        schema.search_docs.c.key == bindparam("b_key"),
    )
    .returning(schema.search_docs.c.id),
    keys=_DOC_FIELDS,
)
_INSERT_DOC = Statement(
    insert(schema.search_docs).returning(schema.search_docs.c.id),
    keys=["ns", "key", "kind", *_DOC_FIELDS],
)


def unindex(conn: Connection, where: Any, params: dict[str, Any] | None = None) -> int:
    """Delete the search docs matching ``where`` and their full-text rows; count them."""
    ids = list(conn.execute(select(schema.search_docs.c.id).where(where), params).scalars())
    search.unindex_docs(conn, ids)
    conn.execute(delete(schema.search_docs).where(where), params)
    return len(ids)
