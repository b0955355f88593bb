"""Forks: copying a namespace's state as of a commit into an empty one, as one new commit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, func, select, text, true

from memory import schema, vectors
from memory.commit import Applied, Op
from memory.errors import InvalidInput
from memory.namespace import Namespace, decode
from memory.records import Provenance
from memory.values import dumps
from memory.writer import apply_commit, find_commit, remaining, under, unexpired


def fork(
    conn: Connection,
    src: Namespace,
    dst: Namespace,
    as_of: int | None,
    key: str,
    provenance: Provenance,
    clock: Callable[[], datetime],
    max_value_bytes: int,
) -> Applied:
    """Copy ``src`` as of ``as_of`` into the empty ``dst`` as the commit ``key``.

    Rerunning it replays: it finds ``dst`` filled by the commit under ``key``.
    """
    lock_tenant_forks(conn, dst[0])
    if not is_empty(conn, dst):
        previous = find_commit(conn, key)
        if previous is not None:
            return previous
        raise InvalidInput(f"fork destination {'/'.join(dst)!r} is not empty")
    now = clock()
    ops, plan = snapshot_ops(conn, src, dst, as_of, now)
    done = {"source": "/".join(src), "as_of": as_of}
    return apply_commit(conn, key, provenance, ops, dumps(done), now, max_value_bytes, plan)


def snapshot_ops(
    conn: Connection, src: Namespace, dst: Namespace, as_of: int | None, now: datetime
) -> tuple[list[Op], vectors.Copied]:
    """The writes that recreate ``src``'s state as of commit ``as_of`` under ``dst``.

    With them, the vectors of the copied versions: a copy is embedded as its original was.
    """
    seq_ok = schema.entries.c.commit_seq <= as_of if as_of is not None else true()
    latest = (
        select(
            schema.entries.c.ns, schema.entries.c.key, func.max(schema.entries.c.version).label("v")
        )
        .where(under(schema.entries.c.ns, src), seq_ok)
        .group_by(schema.entries.c.ns, schema.entries.c.key)
        .subquery()
    )
    rows = conn.execute(
        select(
            schema.entries.c.ns,
            schema.entries.c.key,
            schema.entries.c.version,
            schema.entries.c.value,
            schema.entries.c.tags,
            schema.entries.c.expires_at,
        )
        .join(
            latest,
            (schema.entries.c.ns == latest.c.ns)
            & (schema.entries.c.key == latest.c.key)
            & (schema.entries.c.version == latest.c.v),
        )
        .where(~schema.entries.c.deleted, unexpired(schema.entries, now))
        .order_by(schema.entries.c.ns, schema.entries.c.key)
    ).all()

    def moved(ns: str) -> Namespace:
        return dst + decode(ns)[len(src) :]

    # A copy expires when its original does: forking must not make data outlive its expiry.
    ops = [
        Op("put", moved(r.ns), r.key, r.value, tuple(r.tags.split()), remaining(r.expires_at, now))
        for r in rows
    ]
    found = vectors.of_versions(conn, [(r.ns, r.key, r.version) for r in rows])
    plan = vectors.Copied({(moved(ns), key): v for (ns, key, _), v in found.items()})
    item_ok = schema.stream_items.c.commit_seq <= as_of if as_of is not None else true()
    ops += [
        Op("append", moved(r.ns), r.stream, r.item)
        for r in conn.execute(
            select(
                schema.stream_items.c.ns, schema.stream_items.c.stream, schema.stream_items.c.item
            )
            .where(under(schema.stream_items.c.ns, src), item_ok)
            .order_by(
                schema.stream_items.c.ns, schema.stream_items.c.stream, schema.stream_items.c.seq
            )
        )
    ]
    return ops, plan


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
    for column in (schema.heads.c.ns, schema.streams.c.ns):
        if conn.execute(select(column).where(under(column, prefix)).limit(1)).first():
            return False
    return True
