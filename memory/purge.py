"""Purging by provenance: everything one workflow wrote, and everything derived from it.

For memory poisoning: when a run is found to have written something it should not have
(instructions posing as data, say), `MemoryStore.purge_run` removes it for good. The commits to
purge are the workflow's own (every run) and, transitively, every commit whose recorded reads
used what a purged commit wrote: a step's result lists the exact versions its context was built
from (``input_refs``), so an agent that read the poison loses what it wrote too. In one write
transaction the versions and stream items those commits wrote are deleted, history included;
their results are scrubbed (they may quote the data); one new commit puts every key whose
current version was purged back to its latest surviving version, or deletes it when none
survives; and an audit record keeps the counts, never content.

Derivation follows recorded reads only: a value merged into a later version by a reducer, or
copied by a tool without a recorded read, is not found this way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from memory import schema, search, vectors
from memory.commit import Op
from memory.errors import NotFound
from memory.namespace import decode
from memory.records import Provenance, PurgeReport
from memory.values import dumps
from memory.writer import apply_commit, remaining, serialize_commits, unexpired, unindex

Written = tuple[str, str, str, int]
"""What a commit wrote: ``(kind, stored namespace, key or stream, version or seq)``."""


def purge(
    conn: Connection, workflow_id: str, principal: str | None, now: datetime, limit: int
) -> PurgeReport:
    """Purge ``workflow_id``'s commits and those derived from them, in ``conn``'s transaction.

    Raises:
        NotFound: The workflow made no commits.
    """
    # No commit may land between finding what to purge and purging it.
    serialize_commits(conn)
    own = set(
        conn.execute(
            select(schema.commits.c.seq).where(schema.commits.c.workflow_id == workflow_id)
        ).scalars()
    )
    if not own:
        raise NotFound(f"commits of workflow {workflow_id!r}")
    purged = set(own)
    written = _written(conn, purged)
    frontier = set(written)
    while frontier:
        readers = {
            seq
            for seq, result in conn.execute(
                select(schema.commits.c.seq, schema.commits.c.result).where(
                    schema.commits.c.seq > min(purged), schema.commits.c.result.is_not(None)
                )
            )
            if seq not in purged and frontier & _reads(result)
        }
        purged |= readers
        frontier = _written(conn, readers)
        written |= frontier

    keys = {(ns, key) for kind, ns, key, _ in written if kind == "entry"}
    # Keys whose current version goes: they are put back (or deleted) by the purge commit.
    current = {
        (r.ns, r.key)
        for r in conn.execute(
            select(schema.heads.c.ns, schema.heads.c.key).where(
                schema.heads.c.commit_seq.in_(purged)
            )
        )
    }
    counts = {"stream_items": 0, "versions": 0}
    for kind, ns, key, version in written:
        doc = (
            (schema.search_docs.c.ns == ns)
            & (schema.search_docs.c.key == key)
            & (schema.search_docs.c.version == version)
        )
        unindex(conn, doc & (schema.search_docs.c.kind == kind))
    for name, table in (("versions", schema.entries), ("stream_items", schema.stream_items)):
        counts[name] = conn.execute(delete(table).where(table.c.commit_seq.in_(purged))).rowcount
    vectors.drop(conn, schema.vectors.c.commit_seq.in_(purged))
    restores = [_restore(conn, ns, key, now) for ns, key in sorted(current & keys)]
    ops = [op for op, _ in restores]
    # A restored version is the surviving one again: it takes that version's vector along.
    kept = vectors.of_versions(conn, [v for _, v in restores if v is not None])
    plan = vectors.Copied({(decode(ns), key): kept[ns, key, v] for ns, key, v in kept})
    result = {"purged_workflow": workflow_id, "commits": len(purged)}
    applied = apply_commit(
        conn,
        f"purge:{workflow_id}:{uuid.uuid4()}"[:2000],
        Provenance(agent=principal),
        ops,
        dumps(result),
        now,
        limit,
        plan,
    )
    # The scrubbed commits keep their provenance (who wrote, when) for the audit trail.
    conn.execute(
        update(schema.commits)
        .where(schema.commits.c.seq.in_(purged))
        .values(result=None, forgotten=True)
    )
    search.purge_deleted_terms(conn)
    restored = sum(1 for op in ops if op.kind == "put")
    detail = {**counts, "commits": len(purged), "restored": restored}
    audit = {"action": "purge_run", "target": workflow_id, "principal": principal}
    conn.execute(insert(schema.audit).values(at=now, detail=dumps(detail), **audit))
    return PurgeReport(
        workflow_id=workflow_id,
        commits=tuple(sorted(own)),
        derived=tuple(sorted(purged - own)),
        restored=restored,
        deleted=len(ops) - restored,
        purge_commit=applied.seq,
        **counts,
    )


def _written(conn: Connection, seqs: Iterable[int]) -> set[Written]:
    seqs = list(seqs)
    if not seqs:
        return set()
    found = {
        ("entry", r.ns, r.key, r.version)
        for r in conn.execute(
            select(schema.entries.c.ns, schema.entries.c.key, schema.entries.c.version).where(
                schema.entries.c.commit_seq.in_(seqs)
            )
        )
    }
    found |= {
        ("stream", r.ns, r.stream, r.seq)
        for r in conn.execute(
            select(
                schema.stream_items.c.ns, schema.stream_items.c.stream, schema.stream_items.c.seq
            ).where(schema.stream_items.c.commit_seq.in_(seqs))
        )
    }
    return found


def _reads(result: str) -> set[Written]:
    """The versions a commit's result says its step read (a step's ``input_refs``)."""
    try:
        refs: Any = json.loads(result).get("input_refs", [])
        return {
            (r.get("kind", "entry"), "/".join(r["namespace"]), r["key"], int(r["version"]))
            for r in refs
        }
    except (ValueError, AttributeError, KeyError, TypeError):
        return set()


def _restore(
    conn: Connection, ns: str, key: str, now: datetime
) -> tuple[Op, tuple[str, str, int] | None]:
    """Put a key back to its latest surviving version, or delete it when none survives.

    Returns the write, and the surviving version it copies.
    """
    row = conn.execute(
        select(
            schema.entries.c.version,
            schema.entries.c.value,
            schema.entries.c.tags,
            schema.entries.c.expires_at,
            schema.entries.c.deleted,
        )
        .where(
            schema.entries.c.ns == ns, schema.entries.c.key == key, unexpired(schema.entries, now)
        )
        .order_by(schema.entries.c.version.desc())
        .limit(1)
    ).first()
    if row is None or row.deleted:
        return Op("delete", decode(ns), key), None
    ttl = remaining(row.expires_at, now)
    op = Op("put", decode(ns), key, row.value, tuple(row.tags.split()), ttl)
    return op, (ns, key, row.version)
