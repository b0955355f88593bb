"""The write transactions, run synchronously on a worker thread by `MemoryStore`.

Each public function here runs inside one database transaction that the caller opened (on
SQLite with ``BEGIN IMMEDIATE``). Head rows are the compare-and-set point: an upsert or a
version-guarded update with ``RETURNING`` decides each new version atomically on both backends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from memory import schema, search
from memory.commit import Applied, Op, dumps, encode_value, loads, reduce
from memory.errors import ConflictError
from memory.models import MemoryRef, Provenance
from memory.namespace import Namespace, decode, encode, prefix_bounds

h, e, c = schema.heads, schema.entries, schema.commits
st, si, sd = schema.streams, schema.stream_items, schema.search_docs


def _upsert(conn: Connection, table: Table) -> Any:
    return (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table)


def under(column: Any, prefix: Namespace) -> Any:
    """SQL condition: ``column`` holds a namespace equal to or under ``prefix``."""
    exact, low, high = prefix_bounds(prefix)
    return or_(column == exact, (column >= low) & (column < high))


def find_commit(conn: Connection, key: str) -> Applied | None:
    """The stored outcome of the commit with ``key``, as a replay, or None."""
    row = conn.execute(select(c.c.seq, c.c.result, c.c.tenant).where(c.c.key == key)).first()
    if row is None:
        return None
    return Applied(row.seq, True, loads(row.result), commit_writes(conn, row.seq), row.tenant)


def commit_writes(conn: Connection, seq: int) -> tuple[MemoryRef, ...]:
    """What commit ``seq`` wrote, derived from the rows it left."""
    refs = [
        MemoryRef(namespace=decode(r.ns), key=r.key, version=r.version, commit_seq=seq)
        for r in conn.execute(
            select(e.c.ns, e.c.key, e.c.version).where(e.c.commit_seq == seq).order_by(e.c.id)
        )
    ]
    refs += [
        MemoryRef(
            namespace=decode(r.ns), key=r.stream, version=r.seq, commit_seq=seq, kind="stream"
        )
        for r in conn.execute(
            select(si.c.ns, si.c.stream, si.c.seq).where(si.c.commit_seq == seq).order_by(si.c.id)
        )
    ]
    return tuple(refs)


# Arbitrary but fixed: the advisory lock every PostgreSQL commit holds from claiming its
# sequence number until it ends.
_PG_COMMIT_LOCK = 0x0C41_C0DE


def _serialize_commits(conn: Connection) -> None:
    # A PostgreSQL sequence hands out numbers in claim order, but transactions become visible
    # in commit order: without this lock, commit 6 could be seen before commit 5, so a read
    # `as_of=6` (or a fork, or a reader of "commits after 5") would change once 5 lands. Held
    # from the claim to the end of the transaction, it makes sequence order visibility order,
    # as SQLite's single writer already does.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_COMMIT_LOCK})


def apply_commit(
    conn: Connection,
    key: str,
    provenance: Provenance,
    ops: Sequence[Op],
    result: str,
    now: datetime,
    max_value_bytes: int,
) -> Applied:
    """Claim ``key`` and apply ``ops``; if the key exists, apply nothing and return the replay."""
    _serialize_commits(conn)
    claim = (
        _upsert(conn, c)
        .values(key=key, created_at=now, result=result, **provenance.model_dump())
        .on_conflict_do_nothing(index_elements=[c.c.key])
        .returning(c.c.seq)
    )
    seq = conn.execute(claim).scalar()
    if seq is None:
        previous = find_commit(conn, key)
        assert previous is not None
        return previous
    writes = [_apply_op(conn, seq, op, now, max_value_bytes) for op in ops]
    return Applied(seq, False, json.loads(result), tuple(writes), provenance.tenant)


def _apply_op(conn: Connection, seq: int, op: Op, now: datetime, limit: int) -> MemoryRef:
    ns = encode(op.namespace)
    if op.kind == "append":
        bump = (
            _upsert(conn, st)
            .values(ns=ns, stream=op.key, last_seq=1)
            .on_conflict_do_update(
                index_elements=[st.c.ns, st.c.stream], set_={"last_seq": st.c.last_seq + 1}
            )
            .returning(st.c.last_seq)
        )
        n = conn.execute(bump).scalar_one()
        conn.execute(
            insert(si).values(
                ns=ns, stream=op.key, seq=n, commit_seq=seq, item=op.value, created_at=now
            )
        )
        body = search.body_of(op.key, loads(op.value))
        _index(conn, ns, op.key, "stream", n, seq, (), body, replace=False)
        return MemoryRef(
            namespace=op.namespace, key=op.key, version=n, commit_seq=seq, kind="stream"
        )

    deleted = op.kind == "delete"
    expires = now + op.ttl if op.ttl else None
    version = _bump_head(conn, op, ns, seq, deleted, expires, now)
    value = op.value
    if op.merge != "replace" and not deleted:
        # An expired previous value is gone for readers, so it must not come back merged.
        previous = conn.execute(
            select(e.c.value).where(
                e.c.ns == ns,
                e.c.key == op.key,
                e.c.version == version - 1,
                ~e.c.deleted,
                _unexpired(e, now),
            )
        ).scalar()
        merged = reduce(op.merge, loads(previous), loads(value))
        value = encode_value(op.namespace, op.key, merged, limit)
    conn.execute(
        insert(e).values(
            ns=ns,
            key=op.key,
            version=version,
            commit_seq=seq,
            value=value,
            tags=" ".join(op.tags),
            expires_at=expires,
            deleted=deleted,
            created_at=now,
        )
    )
    if deleted:
        _unindex(conn, (sd.c.kind == "entry") & (sd.c.ns == ns) & (sd.c.key == op.key))
    else:
        body = search.body_of(op.key, loads(value))
        _index(conn, ns, op.key, "entry", version, seq, op.tags, body, replace=True)
    return MemoryRef(namespace=op.namespace, key=op.key, version=version, commit_seq=seq)


def _unexpired(table: Table, now: datetime) -> Any:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


def _bump_head(
    conn: Connection,
    op: Op,
    ns: str,
    seq: int,
    deleted: bool,
    expires: datetime | None,
    now: datetime,
) -> int:
    # A head that is deleted or expired is no live entry: readers get NotFound for it, so
    # compare-and-set treats it the same way (only expected_version=0 matches it).
    live = ~h.c.deleted & _unexpired(h, now)
    fields = {"commit_seq": seq, "deleted": deleted, "expires_at": expires}
    if op.expected_version is None or op.expected_version == 0:
        stmt = _upsert(conn, h).values(ns=ns, key=op.key, version=1, **fields)
        set_ = {"version": h.c.version + 1, **fields}
        where = ~live if op.expected_version == 0 else None
        stmt = stmt.on_conflict_do_update(index_elements=[h.c.ns, h.c.key], set_=set_, where=where)
        version = conn.execute(stmt.returning(h.c.version)).scalar()
    else:
        stmt = (
            update(h)
            .where(h.c.ns == ns, h.c.key == op.key, h.c.version == op.expected_version, live)
            .values(version=h.c.version + 1, **fields)
            .returning(h.c.version)
        )
        version = conn.execute(stmt).scalar()
    if version is None:
        actual = conn.execute(
            select(h.c.version).where(h.c.ns == ns, h.c.key == op.key, live)
        ).scalar()
        raise ConflictError(op.namespace, op.key, op.expected_version or 0, actual)
    return int(version)


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
        doc_id = conn.execute(
            update(sd)
            .where(sd.c.kind == kind, sd.c.ns == ns, sd.c.key == key)
            .values(**fields)
            .returning(sd.c.id)
        ).scalar()
    if doc_id is None:
        doc_id = conn.execute(
            insert(sd).values(ns=ns, key=key, kind=kind, **fields).returning(sd.c.id)
        ).scalar_one()
    search.index_doc(conn, doc_id, ns, tags, body)


def _unindex(conn: Connection, where: Any) -> int:
    ids = list(conn.execute(select(sd.c.id).where(where)).scalars())
    search.unindex_docs(conn, ids)
    conn.execute(delete(sd).where(where))
    return len(ids)


def snapshot_ops(
    conn: Connection, src: Namespace, dst: Namespace, as_of: int | None, now: datetime
) -> list[Op]:
    """The writes that recreate ``src``'s state as of commit ``as_of`` under ``dst``."""
    seq_ok = e.c.commit_seq <= as_of if as_of is not None else true()
    latest = (
        select(e.c.ns, e.c.key, func.max(e.c.version).label("v"))
        .where(under(e.c.ns, src), seq_ok)
        .group_by(e.c.ns, e.c.key)
        .subquery()
    )
    rows = conn.execute(
        select(e.c.ns, e.c.key, e.c.value, e.c.tags, e.c.expires_at)
        .join(
            latest,
            (e.c.ns == latest.c.ns) & (e.c.key == latest.c.key) & (e.c.version == latest.c.v),
        )
        .where(~e.c.deleted, _unexpired(e, now))
        .order_by(e.c.ns, e.c.key)
    ).all()

    def moved(ns: str) -> Namespace:
        return dst + decode(ns)[len(src) :]

    # A copy expires when its original does: forking must not make data outlive its expiry.
    ops = [
        Op("put", moved(r.ns), r.key, r.value, tuple(r.tags.split()), _remaining(r.expires_at, now))
        for r in rows
    ]
    item_ok = si.c.commit_seq <= as_of if as_of is not None else true()
    ops += [
        Op("append", moved(r.ns), r.stream, r.item)
        for r in conn.execute(
            select(si.c.ns, si.c.stream, si.c.item)
            .where(under(si.c.ns, src), item_ok)
            .order_by(si.c.ns, si.c.stream, si.c.seq)
        )
    ]
    return ops


def _remaining(expires_at: datetime | None, now: datetime) -> timedelta | None:
    if expires_at is None:
        return None
    # SQLite returns naive datetimes; every time Cairn stores is UTC.
    aware = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    return aware - now


# Arbitrary but fixed: the first key of the advisory locks that serialize forks per tenant.
_PG_FORK_LOCK = 0x0C41_F04C


def lock_tenant_forks(conn: Connection, tenant: str) -> None:
    """Serialize forks into one tenant until this transaction ends (PostgreSQL).

    Without it two concurrent forks could both find the destination empty and both copy into
    it. SQLite needs nothing: its writers already hold the database's one write lock.
    """
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(tenant.encode(), digest_size=4).digest()
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _PG_FORK_LOCK, "b": int.from_bytes(digest, "big", signed=True)},
        )


def is_empty(conn: Connection, prefix: Namespace) -> bool:
    """Whether no entry or stream exists at or under ``prefix``."""
    for column in (h.c.ns, st.c.ns):
        if conn.execute(select(column).where(under(column, prefix)).limit(1)).first():
            return False
    return True


def forget(
    conn: Connection, prefix: Namespace, principal: str | None, now: datetime
) -> dict[str, int]:
    """Delete everything at or under ``prefix``, history included, and audit it without content."""
    # No commit may land under the prefix between finding the commits that wrote there and
    # deleting their rows, or its result would escape the scrub.
    _serialize_commits(conn)
    touched = set(conn.execute(select(e.c.commit_seq).where(under(e.c.ns, prefix))).scalars())
    touched |= set(conn.execute(select(si.c.commit_seq).where(under(si.c.ns, prefix))).scalars())
    counts = {"search_docs": _unindex(conn, under(sd.c.ns, prefix))}
    for name, table in (("versions", e), ("keys", h), ("stream_items", si), ("streams", st)):
        counts[name] = conn.execute(delete(table).where(under(table.c.ns, prefix))).rowcount
    seqs = sorted(touched)
    for start in range(0, len(seqs), 500):
        # The results of steps that wrote here may quote the forgotten data.
        conn.execute(
            update(c)
            .where(c.c.seq.in_(seqs[start : start + 500]))
            .values(result=None, forgotten=True)
        )
    counts["commits_scrubbed"] = len(seqs)
    search.purge_deleted_terms(conn)
    _audit(conn, "forget", encode(prefix), principal, counts, now)
    return counts


def purge_expired(conn: Connection, now: datetime) -> dict[str, int]:
    """Delete expired keys (all their versions) and expired old versions; audit the counts."""
    # Deleting the heads first, with the expiry test in the DELETE itself, means a key that a
    # concurrent commit has just rewritten (PostgreSQL re-checks the row it waited for) is kept.
    expired = conn.execute(
        delete(h)
        .where(h.c.expires_at.is_not(None), h.c.expires_at <= now)
        .returning(h.c.ns, h.c.key)
    ).all()
    pairs = [(r.ns, r.key) for r in expired]
    counts = {"keys": len(pairs), "versions": 0}
    for start in range(0, len(pairs), 200):
        chunk = pairs[start : start + 200]
        _unindex(conn, (sd.c.kind == "entry") & tuple_(sd.c.ns, sd.c.key).in_(chunk))
        counts["versions"] += conn.execute(
            delete(e).where(tuple_(e.c.ns, e.c.key).in_(chunk))
        ).rowcount
    counts["versions"] += conn.execute(
        delete(e).where(e.c.expires_at.is_not(None), e.c.expires_at <= now)
    ).rowcount
    if pairs:
        search.purge_deleted_terms(conn)
    _audit(conn, "purge_expired", "*", None, counts, now)
    return counts


def _audit(
    conn: Connection,
    action: str,
    target: str,
    principal: str | None,
    detail: dict[str, int],
    now: datetime,
) -> None:
    conn.execute(
        insert(schema.audit).values(
            at=now, action=action, target=target, principal=principal, detail=dumps(detail)
        )
    )
