"""Deleting data for good: forgetting a namespace prefix, purging expired entries, the audit log.

Each runs as one write transaction and leaves a content-free audit record of what it did.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, tuple_, update

from memory import keys, schema, search, vectors
from memory.namespace import Namespace, encode
from memory.values import dumps
from memory.writer import serialize_commits, under, unindex


def forget(
    conn: Connection, prefix: Namespace, principal: str | None, now: datetime
) -> dict[str, int]:
    """Delete everything at or under ``prefix``, history included, and audit it without content."""
    # No commit may land under the prefix between finding the commits that wrote there and
    # deleting their rows, or its result would escape the scrub.
    serialize_commits(conn)
    touched = set(
        conn.execute(
            select(schema.entries.c.commit_seq).where(under(schema.entries.c.ns, prefix))
        ).scalars()
    )
    touched |= set(
        conn.execute(
            select(schema.stream_items.c.commit_seq).where(under(schema.stream_items.c.ns, prefix))
        ).scalars()
    )
    counts = {"search_docs": unindex(conn, under(schema.search_docs.c.ns, prefix))}
    counts["vectors"] = vectors.drop(conn, under(schema.vectors.c.ns, prefix))
    for name, table in (
        ("versions", schema.entries),
        ("keys", schema.heads),
        ("stream_items", schema.stream_items),
        ("streams", schema.streams),
    ):
        counts[name] = conn.execute(delete(table).where(under(table.c.ns, prefix))).rowcount
    seqs = sorted(touched)
    for start in range(0, len(seqs), 500):
        # The results of steps that wrote here may quote the forgotten data.
        conn.execute(
            update(schema.commits)
            .where(schema.commits.c.seq.in_(seqs[start : start + 500]))
            .values(result=None, forgotten=True)
        )
    counts["commits_scrubbed"] = len(seqs)
    search.purge_deleted_terms(conn)
    # In this transaction: a subject's data and the key to its Temporal payloads go together.
    counts["data_keys"] = keys.destroy(conn, prefix)
    _audit(conn, "forget", encode(prefix), principal, counts, now)
    return counts


def purge_expired(conn: Connection, now: datetime) -> dict[str, int]:
    """Delete expired keys (all their versions) and expired old versions; audit the counts."""
    # Deleting the heads first, with the expiry test in the DELETE itself, means a key that a
    # concurrent commit has just rewritten (PostgreSQL re-checks the row it waited for) is kept.
    expired = conn.execute(
        delete(schema.heads)
        .where(schema.heads.c.expires_at.is_not(None), schema.heads.c.expires_at <= now)
        .returning(schema.heads.c.ns, schema.heads.c.key)
    ).all()
    pairs = [(r.ns, r.key) for r in expired]
    counts = {"keys": len(pairs), "versions": 0}
    for start in range(0, len(pairs), 200):
        chunk = pairs[start : start + 200]
        unindex(
            conn,
            (schema.search_docs.c.kind == "entry")
            & tuple_(schema.search_docs.c.ns, schema.search_docs.c.key).in_(chunk),
        )
        counts["versions"] += conn.execute(
            delete(schema.entries).where(
                tuple_(schema.entries.c.ns, schema.entries.c.key).in_(chunk)
            )
        ).rowcount
        vectors.drop(conn, tuple_(schema.vectors.c.ns, schema.vectors.c.key).in_(chunk))
    old = conn.execute(
        delete(schema.entries)
        .where(schema.entries.c.expires_at.is_not(None), schema.entries.c.expires_at <= now)
        .returning(schema.entries.c.ns, schema.entries.c.key, schema.entries.c.version)
    ).all()
    counts["versions"] += len(old)
    vectors.drop_versions(conn, [(r.ns, r.key, r.version) for r in old])
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
