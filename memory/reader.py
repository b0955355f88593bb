"""The read queries, run synchronously by `MemoryStore` (see `memory.runner`).

The hot statements are built once, here, with `bindparam` placeholders: building a statement
and computing its cache key costs several times what running it does on SQLite. Rows of the hot
reads become models through `memory.records.trusted`, without a second validation.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, tuple_

from memory import schema, search
from memory.driver import Read, Rows, Statement
from memory.errors import InvalidInput, NotFound
from memory.namespace import Namespace, check_key, check_namespace, decode, encode
from memory.records import (
    AuditRecord,
    CommitRecord,
    Entry,
    Page,
    Provenance,
    SearchHit,
    StreamItem,
    trusted,
)
from memory.values import loads
from memory.writer import commit_writes, under, unexpired

_PROVENANCE = (
    schema.commits.c.tenant,
    schema.commits.c.workflow_id,
    schema.commits.c.run_id,
    schema.commits.c.activity_id,
    schema.commits.c.attempt,
    schema.commits.c.agent,
    schema.commits.c.trace_id,
)
_PROVENANCE_FIELDS = tuple(col.name for col in _PROVENANCE)
_ENTRY = (
    schema.entries.c.ns,
    schema.entries.c.key,
    schema.entries.c.value,
    schema.entries.c.version,
    schema.entries.c.commit_seq,
    schema.entries.c.created_at,
    schema.entries.c.tags,
    schema.entries.c.expires_at,
    schema.entries.c.deleted,
)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime: every time Cairn stores is UTC, SQLite's come back naive."""
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# Any row of a select, whatever its columns.
AnyRow = Row[*tuple[Any, ...]]


@functools.lru_cache(maxsize=1024)
def _shared_provenance(*values: Any) -> Provenance:
    """The `Provenance` of a row's provenance columns: one object per distinct set of values.

    A `Provenance` is immutable, and the rows a read returns mostly share a few (one commit's
    entries, one agent's run), so it is built once: 0.3 us a row instead of 1.5.
    """
    return trusted(Provenance, dict(zip(_PROVENANCE_FIELDS, values, strict=True)))


def _entry(row: Sequence[Any], namespace: Namespace | None = None) -> Entry:
    """The entry of a row of `_ENTRY` and `_PROVENANCE` columns (of ``namespace``, if known)."""
    # Unpacked by position: a row's attribute lookups by name cost as much as the model.
    ns, key, value, version, seq, created_at, tags, expires_at, deleted, *provenance = row
    return trusted(
        Entry,
        {
            "namespace": namespace or decode(ns),
            "key": key,
            "value": loads(value),
            "version": version,
            "commit_seq": seq,
            "created_at": utc(created_at),
            "tags": tuple(tags.split()),
            "expires_at": utc(expires_at) if expires_at else None,
            "deleted": bool(deleted),
            "provenance": _shared_provenance(*provenance),
        },
    )


def _what(ns: Namespace, key: str) -> str:
    return f"{encode(ns)!r} key {key!r}"


_VERSIONS = select(*_ENTRY, *_PROVENANCE).outerjoin(
    schema.commits, schema.commits.c.seq == schema.entries.c.commit_seq
)
_GET = Statement(
    _VERSIONS.join(
        schema.heads,
        (schema.heads.c.ns == schema.entries.c.ns)
        & (schema.heads.c.key == schema.entries.c.key)
        & (schema.heads.c.version == schema.entries.c.version),
    ).where(schema.heads.c.ns == bindparam("ns"), schema.heads.c.key == bindparam("key"))
)
_GET_AS_OF = Statement(
    _VERSIONS.where(
        schema.entries.c.ns == bindparam("ns"),
        schema.entries.c.key == bindparam("key"),
        schema.entries.c.commit_seq <= bindparam("as_of"),
    )
    .order_by(schema.entries.c.version.desc())
    .limit(1)
)
_HISTORY = _VERSIONS.where(
    schema.entries.c.ns == bindparam("ns"),
    schema.entries.c.key == bindparam("key"),
    unexpired(schema.entries, bindparam("now")),
).order_by(schema.entries.c.version)
_HISTORY_ALL = Statement(_HISTORY)
_HISTORY_LIMIT = Statement(_HISTORY.limit(bindparam("limit")))


def get(ns: Namespace, key: str, as_of: int | None, clock: Callable[[], datetime]) -> Read[Entry]:
    """The current (or as-of) live version of a key, else `NotFound`."""

    def found(rows: Rows) -> Entry:
        row = rows[0] if rows else None
        # Columns 7 and 8: expires_at, deleted (see _ENTRY). The clock is read only for an
        # entry that can expire.
        if row is None or row[8] or (row[7] and utc(row[7]) <= clock()):
            suffix = f" as of commit {as_of}" if as_of is not None else ""
            raise NotFound(_what(ns, key) + suffix)
        return _entry(row, ns)

    if as_of is None:
        return Read(_GET, {"ns": encode(ns), "key": key}, found)
    return Read(_GET_AS_OF, {"ns": encode(ns), "key": key, "as_of": as_of}, found)


def history(ns: Namespace, key: str, limit: int | None, now: datetime) -> Read[list[Entry]]:
    """Every unexpired version of a key, oldest first, with provenance; `NotFound` if none."""

    def found(rows: Rows) -> list[Entry]:
        if not rows:
            raise NotFound(_what(ns, key))
        return [_entry(r, ns) for r in rows]

    params = {"ns": encode(ns), "key": key, "now": now, "limit": limit}
    return Read(_HISTORY_LIMIT if limit else _HISTORY_ALL, params, found)


def _cursor(cursor: str) -> tuple[str, str]:
    try:
        ns, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(ns, str) and isinstance(key, str):
            # A forged cursor must not smuggle what no namespace or key may hold (NUL bytes,
            # lone surrogates) into a query.
            check_namespace(decode(ns))
            return ns, check_key(key)
    except (ValueError, TypeError):  # InvalidInput is a ValueError too
        pass
    raise InvalidInput(f"invalid list cursor {cursor[:40]!r}; pass back a next_cursor unchanged")


def list_entries(
    conn: Connection,
    prefix: Namespace,
    limit: int,
    cursor: str | None,
    tags: tuple[str, ...],
    now: datetime,
) -> Page:
    """Live current entries at or under ``prefix`` in (namespace, key) order, one page."""
    stmt = (
        select(*_ENTRY, *_PROVENANCE)
        .select_from(schema.heads)
        .join(
            schema.entries,
            (schema.heads.c.ns == schema.entries.c.ns)
            & (schema.heads.c.key == schema.entries.c.key)
            & (schema.heads.c.version == schema.entries.c.version),
        )
        .outerjoin(schema.commits, schema.commits.c.seq == schema.entries.c.commit_seq)
        .where(under(schema.heads.c.ns, prefix), ~schema.heads.c.deleted)
        .where(unexpired(schema.heads, now))
    )
    for tag in tags:
        # Tags are validated segments (no spaces), stored space-separated.
        stmt = stmt.where((" " + schema.entries.c.tags + " ").contains(f" {tag} ", autoescape=True))
    if cursor is not None:
        stmt = stmt.where(tuple_(schema.heads.c.ns, schema.heads.c.key) > tuple_(*_cursor(cursor)))
    rows = conn.execute(stmt.order_by(schema.heads.c.ns, schema.heads.c.key).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(json.dumps([last.ns, last.key]).encode()).decode()
    return Page(entries=tuple(_entry(r) for r in rows), next_cursor=next_cursor)


def namespace_counts(
    conn: Connection, prefix: Namespace, limit: int, now: datetime
) -> list[tuple[Namespace, int]]:
    """Namespaces at or under ``prefix`` holding live current entries, with their counts."""
    ns = schema.heads.c.ns
    stmt = (
        select(ns, func.count())
        .where(~schema.heads.c.deleted)
        .where(unexpired(schema.heads, now))
        .group_by(ns)
        .order_by(ns)
        .limit(limit)
    )
    if prefix:
        stmt = stmt.where(under(ns, prefix))
    return [(decode(row[0]), int(row[1])) for row in conn.execute(stmt)]


def _item(row: Sequence[Any]) -> StreamItem:
    ns, stream, seq, commit_seq, item, created_at = row
    return trusted(
        StreamItem,
        {
            "namespace": decode(ns),
            "stream": stream,
            "seq": seq,
            "item": loads(item),
            "commit_seq": commit_seq,
            "created_at": utc(created_at),
        },
    )


_ITEMS = select(
    schema.stream_items.c.ns,
    schema.stream_items.c.stream,
    schema.stream_items.c.seq,
    schema.stream_items.c.commit_seq,
    schema.stream_items.c.item,
    schema.stream_items.c.created_at,
).where(
    schema.stream_items.c.ns == bindparam("ns"),
    schema.stream_items.c.stream == bindparam("stream"),
    schema.stream_items.c.seq >= bindparam("start"),
)
_TAIL = Statement(_ITEMS.order_by(schema.stream_items.c.seq.desc()).limit(bindparam("limit")))
_RANGE = Statement(_ITEMS.order_by(schema.stream_items.c.seq).limit(bindparam("limit")))
_RANGE_END = Statement(
    _ITEMS.where(schema.stream_items.c.seq < bindparam("end"))
    .order_by(schema.stream_items.c.seq)
    .limit(bindparam("limit"))
)


def _items(rows: Rows) -> list[StreamItem]:
    return [_item(r) for r in rows]


def _items_reversed(rows: Rows) -> list[StreamItem]:
    return [_item(r) for r in reversed(rows)]


def stream_items(
    ns: Namespace,
    stream: str,
    *,
    start: int = 1,
    end: int | None = None,
    last: int | None = None,
    limit: int = 1000,
) -> Read[list[StreamItem]]:
    """Items with ``start <= seq < end`` oldest first, or the ``last`` n items."""
    params = {"ns": encode(ns), "stream": stream, "start": start}
    if last is not None:
        return Read(_TAIL, {**params, "limit": last}, _items_reversed)
    if end is None:
        return Read(_RANGE, {**params, "limit": limit}, _items)
    return Read(_RANGE_END, {**params, "end": end, "limit": limit}, _items)


def search_hits(
    conn: Connection,
    prefix: Namespace,
    query: str,
    limit: int,
    tags: tuple[str, ...],
    now: datetime,
) -> list[SearchHit]:
    """Ranked keyword matches among current entries and stream items under ``prefix``."""
    rows = search.search_rows(conn, prefix, search.query_terms(query), tags, limit, now)
    return [
        trusted(
            SearchHit,
            {
                "namespace": decode(r[0]),
                "key": r[1],
                "kind": r[2],
                "version": r[3],
                "commit_seq": r[4],
                "score": float(r[5]),
                "value": loads(r[6]),
            },
        )
        for r in rows
    ]


def _commit(conn: Connection, row: AnyRow) -> CommitRecord:
    return CommitRecord(
        seq=row.seq,
        key=row.key,
        provenance=_shared_provenance(*(getattr(row, f) for f in _PROVENANCE_FIELDS)),
        created_at=utc(row.created_at),
        result=loads(row.result),
        writes=commit_writes(conn, row.seq),
        forgotten=row.forgotten,
    )


_GET_COMMIT = select(schema.commits).where(schema.commits.c.key == bindparam("key"))


def get_commit(conn: Connection, key: str) -> CommitRecord:
    """The commit stored under an idempotency key, else `NotFound`."""
    row = conn.execute(_GET_COMMIT, {"key": key}).first()
    if row is None:
        raise NotFound(f"commit {key!r}")
    return _commit(conn, row)


def list_commits(
    conn: Connection, workflow_id: str | None, tenant: str | None, after_seq: int, limit: int
) -> list[CommitRecord]:
    """Commits in sequence order, optionally of one workflow or tenant."""
    stmt = select(schema.commits).where(schema.commits.c.seq > after_seq)
    if workflow_id is not None:
        stmt = stmt.where(schema.commits.c.workflow_id == workflow_id)
    if tenant is not None:
        stmt = stmt.where(schema.commits.c.tenant == tenant)
    return [
        _commit(conn, r)
        for r in conn.execute(stmt.order_by(schema.commits.c.seq).limit(limit)).all()
    ]


def audit_log(conn: Connection, limit: int) -> list[AuditRecord]:
    """The newest audit records first."""
    rows = conn.execute(select(schema.audit).order_by(schema.audit.c.id.desc()).limit(limit)).all()
    return [
        AuditRecord(
            id=r.id,
            at=utc(r.at),
            action=r.action,
            target=r.target,
            principal=r.principal,
            detail=json.loads(r.detail),
        )
        for r in rows
    ]
