"""Subjects' data keys: stored wrapped, destroyed by `forget` in the same transaction as the data.

A data key belongs to a subject, the namespace whose text it seals (``("acme", "session",
"s-42")``), and optionally to an owner, the user namespace that session belongs to. Memory
holds only the wrapped form; wrapping and unwrapping are the caller's (`cairn.subject_codec`).
Forgetting a prefix destroys every key whose subject or owner is under it and leaves a
tombstone (a row without key material), so that a forgotten subject is told apart from an
unknown one and never silently gets a fresh key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from memory import schema
from memory.namespace import Namespace, encode
from memory.writer import under

__all__ = ["WrappedKey", "bind_owner", "create", "destroy", "fetch"]

_MAX_WRAPPED_BYTES = 1024


@dataclass(frozen=True)
class WrappedKey:
    """A subject's data key as memory holds it.

    Attributes:
        subject: The namespace the key seals, encoded (``"acme/session/s-42"``).
        master_key_id: The master key id that wrapped it; empty once forgotten.
        wrapped: The wrapped key; empty once forgotten.
    """

    subject: str
    master_key_id: str
    wrapped: bytes

    @property
    def forgotten(self) -> bool:
        """True when `forget` destroyed the key: what it sealed can never be read again."""
        return not self.wrapped


def fetch(conn: Connection, subject: Namespace) -> WrappedKey | None:
    """The subject's key, a tombstone if it was forgotten, or None if it never had one."""
    row = conn.execute(
        select(schema.data_keys.c.master_key_id, schema.data_keys.c.wrapped).where(
            schema.data_keys.c.subject == encode(subject)
        )
    ).first()
    if row is None:
        return None
    return WrappedKey(encode(subject), row.master_key_id, bytes(row.wrapped))


def create(
    conn: Connection, subject: Namespace, master_key_id: str, wrapped: bytes, now: datetime
) -> WrappedKey:
    """Store a new key for ``subject`` unless it has one (or a tombstone); return the stored one.

    Two processes creating the first key of a subject at once both get the winner's.
    """
    if not wrapped or len(wrapped) > _MAX_WRAPPED_BYTES:
        raise ValueError(f"a wrapped data key must be 1 to {_MAX_WRAPPED_BYTES} bytes")
    values = {
        "subject": encode(subject),
        "master_key_id": master_key_id,
        "wrapped": wrapped,
        "created_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(schema.data_keys).values(values).on_conflict_do_nothing())
    stored = fetch(conn, subject)
    assert stored is not None
    return stored


def bind_owner(conn: Connection, subject: Namespace, owner: Namespace) -> bool:
    """Record that ``subject``'s key belongs to ``owner`` too; True if a key took the owner."""
    found = conn.execute(
        update(schema.data_keys)
        .where(schema.data_keys.c.subject == encode(subject), schema.data_keys.c.owner.is_(None))
        .values(owner=encode(owner))
    )
    return bool(found.rowcount)


def destroy(conn: Connection, prefix: Namespace) -> int:
    """Destroy the keys of subjects or owners at or under ``prefix``; return how many.

    Runs in the caller's transaction (`memory.retention.forget`'s), so the data and its keys go
    together or not at all.
    """
    table = schema.data_keys
    return int(
        conn.execute(
            update(table)
            .where(or_(under(table.c.subject, prefix), under(table.c.owner, prefix)))
            .where(table.c.wrapped != b"")
            .values(master_key_id="", wrapped=b"")
        ).rowcount
    )
