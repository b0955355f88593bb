"""Subjects' data keys in memory (memory.keys): created once, destroyed with the data by forget."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from memory import MemoryStore

SESSION = ("acme", "session", "s-1")
OTHER = ("acme", "session", "s-2")
USER = ("acme", "user", "u-1")


async def test_the_first_key_of_a_subject_wins_and_later_ones_are_ignored(
    store: MemoryStore,
) -> None:
    assert await store.data_key(SESSION) is None
    results = await asyncio.gather(
        *(store.create_data_key(SESSION, "m1", bytes([n]) * 40) for n in range(1, 6))
    )
    stored = await store.data_key(SESSION)
    assert stored is not None and not stored.forgotten
    assert {r.wrapped for r in results} == {stored.wrapped}
    assert (stored.subject, stored.master_key_id) == ("acme/session/s-1", "m1")


async def test_forgetting_a_session_destroys_its_key_and_leaves_a_tombstone(
    store: MemoryStore,
) -> None:
    await store.create_data_key(SESSION, "m1", b"w" * 40)
    await store.create_data_key(OTHER, "m1", b"v" * 40)
    async with store.commit(key="turn") as c:
        c.append(SESSION, "transcript", {"role": "user", "content": "hello"})

    counts = await store.forget(SESSION, principal="dpo")

    assert counts["data_keys"] == 1 and counts["stream_items"] == 1
    gone = await store.data_key(SESSION)
    assert gone is not None and gone.forgotten and gone.master_key_id == ""
    # A tombstone is never replaced by a fresh key: the subject stays forgotten.
    again = await store.create_data_key(SESSION, "m1", b"x" * 40)
    assert again.forgotten
    kept = await store.data_key(OTHER)
    assert kept is not None and kept.wrapped == b"v" * 40
    [audit] = await store.audit_log()
    assert (audit.action, audit.detail["data_keys"]) == ("forget", 1)


async def test_forgetting_a_user_destroys_the_keys_of_the_sessions_it_owns(
    store: MemoryStore,
) -> None:
    await store.create_data_key(SESSION, "m1", b"w" * 40)
    await store.create_data_key(OTHER, "m1", b"v" * 40)
    assert await store.bind_data_key_owner(SESSION, USER)
    # The first owner stays: a session belongs to one user.
    assert not await store.bind_data_key_owner(SESSION, ("acme", "user", "u-2"))

    counts = await store.forget(USER)

    assert counts["data_keys"] == 1
    gone, kept = await store.data_key(SESSION), await store.data_key(OTHER)
    assert gone is not None and gone.forgotten
    assert kept is not None and not kept.forgotten
    assert (await store.forget(USER))["data_keys"] == 0


async def test_bad_subjects_and_wrapped_keys_are_refused(store: MemoryStore) -> None:
    with pytest.raises(ValueError, match="namespace"):
        await store.data_key(("acme", "bad segment"))
    with pytest.raises(ValueError, match="wrapped data key"):
        await store.create_data_key(SESSION, "m1", b"")
    assert await store.data_key(SESSION) is None


def crash_before(engine: Engine, event: str) -> None:
    """Make the next ``event`` (``INSERT ON cairn_audit``, ...) abort its transaction."""
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS crash"))
        conn.execute(
            text(
                f"CREATE TRIGGER crash BEFORE {event} "
                "BEGIN SELECT RAISE(ABORT, 'crash during forget'); END"
            )
        )


@pytest.mark.parametrize(
    "event",
    [
        # The audit row is written last, after the data and the key are gone: failing it is
        # a crash between those deletes and the commit of their transaction.
        "INSERT ON cairn_audit",
        # A crash while destroying the key keeps the data deleted just before it.
        "UPDATE ON cairn_data_keys",
    ],
)
async def test_a_crash_inside_forget_keeps_both_the_data_and_the_key(
    sqlite_url: str, event: str
) -> None:
    store = await MemoryStore.open(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        await store.create_data_key(SESSION, "m1", b"w" * 40)
        async with store.commit(key="turn") as c:
            c.append(SESSION, "transcript", {"role": "user", "content": "hello"})
        crash_before(engine, event)
        with pytest.raises(IntegrityError, match="crash during forget"):
            await store.forget(SESSION)
        kept = await store.data_key(SESSION)
        assert kept is not None and not kept.forgotten
        assert [i.item for i in await store.tail(SESSION, "transcript", 5)] == [
            {"role": "user", "content": "hello"}
        ]
    finally:
        engine.dispose()
        await store.close()
