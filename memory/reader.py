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

from sqlalchemy import Connection, Row, bindparam, or_, select, tuple_

from memory import schema, search
from memory.commit import loads
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
from memory.writer import commit_writes, under

h, e, c = schema.heads, schema.entries, schema.commits
si = schema.stream_items

_PROVENANCE = (
    c.c.tenant,
    c.c.workflow_id,
    c.c.run_id,
    c.c.activity_id,
    c.c.attempt,
    c.c.agent,
    c.c.trace_id,
)
_PROVENANCE_FIELDS = tuple(col.name for col in _PROVENANCE)
_ENTRY = (
    e.c.ns,
    e.c.key,
    e.c.value,
    e.c.version,
    e.c.commit_seq,
    e.c.created_at,
    e.c.tags,
    e.c.expires_at,
    e.c.deleted,
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


def _live(now: Any) -> Any:
    return or_(e.c.expires_at.is_(None), e.c.expires_at > now)


def _what(ns: Namespace, key: str) -> str:
    return f"{encode(ns)!r} key {key!r}"


_VERSIONS = select(*_ENTRY, *_PROVENANCE).outerjoin(c, c.c.seq == e.c.commit_seq)
_GET = Statement(
    _VERSIONS.join(
        h, (h.c.ns == e.c.ns) & (h.c.key == e.c.key) & (h.c.version == e.c.version)
    ).where(h.c.ns == bindparam("ns"), h.c.key == bindparam("key"))
)
_GET_AS_OF = Statement(
    _VERSIONS.where(
        e.c.ns == bindparam("ns"), e.c.key == bindparam("key"), e.c.commit_seq <= bindparam("as_of")
    )
    .order_by(e.c.version.desc())
    .limit(1)
)
_HISTORY = _VERSIONS.where(
    e.c.ns == bindparam("ns"), e.c.key == bindparam("key"), _live(bindparam("now"))
).order_by(e.c.version)
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
        .select_from(h)
        .join(e, (h.c.ns == e.c.ns) & (h.c.key == e.c.key) & (h.c.version == e.c.version))
        .outerjoin(c, c.c.seq == e.c.commit_seq)
        .where(under(h.c.ns, prefix), ~h.c.deleted)
        .where(or_(h.c.expires_at.is_(None), h.c.expires_at > now))
    )
    for tag in tags:
        # Tags are validated segments (no spaces), stored space-separated.
        stmt = stmt.where((" " + e.c.tags + " ").contains(f" {tag} ", autoescape=True))
    if cursor is not None:
        stmt = stmt.where(tuple_(h.c.ns, h.c.key) > tuple_(*_cursor(cursor)))
    rows = conn.execute(stmt.order_by(h.c.ns, h.c.key).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(json.dumps([last.ns, last.key]).encode()).decode()
    return Page(entries=tuple(_entry(r) for r in rows), next_cursor=next_cursor)


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


_ITEMS = select(si.c.ns, si.c.stream, si.c.seq, si.c.commit_seq, si.c.item, si.c.created_at).where(
    si.c.ns == bindparam("ns"), si.c.stream == bindparam("stream"), si.c.seq >= bindparam("start")
)
_TAIL = Statement(_ITEMS.order_by(si.c.seq.desc()).limit(bindparam("limit")))
_RANGE = Statement(_ITEMS.order_by(si.c.seq).limit(bindparam("limit")))
_RANGE_END = Statement(
    _ITEMS.where(si.c.seq < bindparam("end")).order_by(si.c.seq).limit(bindparam("limit"))
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


_GET_COMMIT = select(c).where(c.c.key == bindparam("key"))


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
    stmt = select(c).where(c.c.seq > after_seq)
    if workflow_id is not None:
        stmt = stmt.where(c.c.workflow_id == workflow_id)
    if tenant is not None:
        stmt = stmt.where(c.c.tenant == tenant)
    return [_commit(conn, r) for r in conn.execute(stmt.order_by(c.c.seq).limit(limit)).all()]


def audit_log(conn: Connection, limit: int) -> list[AuditRecord]:
    """The newest audit records first."""
    a = schema.audit
    rows = conn.execute(select(a).order_by(a.c.id.desc()).limit(limit)).all()
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
